// GPU benchmark of one inversion step (benchmarks/invert_step_impl.hpp) with StyleGAN2<Cuda> and
// the CUDA MSE: the demo generator at batch 1, 8 and 64, 256x256 (channel_base 16384) at batch 1
// and 8, 1024x1024 (channel_base 32768) at batch 1. projector_step_torch.py times the official
// projector's step in PyTorch on the same configs; scripts/gpu_check.sh joins the two.
// Usage: bench_invert_step_gpu [--quick] [--json OUT.json] [--precision fp32|tf32|bf16]
#include "../invert_step_impl.hpp"

#include <ganinv/backend/cuda.cuh>
#include <ganinv/cuda/stream.hpp>

#include <cstring>

using namespace ganinv;

int main(int argc, char** argv) {
    std::string json_path = "bench_invert_step_gpu.json", precision = "fp32";
    bool quick = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--quick")) quick = true;
        else if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
        else if (!std::strcmp(argv[i], "--precision") && i + 1 < argc) precision = argv[++i];
        else {
            std::cerr << "usage: bench_invert_step_gpu [--quick] [--json OUT.json] [--precision fp32|tf32|bf16]\n";
            return 2;
        }
    }
    try {
        int count = 0;
        if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
            std::puts("SKIPPED: no CUDA device");
            return 77;
        }
        cuda::Stream stream;
        cuda::CudaOptions o;
        o.precision = cuda::parse_precision(precision);
        const Cuda backend(stream, o);
        std::vector<bench::StepConfig> configs = {{"fmnist32 (demo)", {}, GANINV_DEFAULT_MODEL, {1, 8, 64}},
                                                  {"256x256 random (cb 16384, cm 512)", bench::square_config(256, 16384), "", {1, 8}}};
        if (!quick) configs.push_back({"1024x1024 random (cb 32768, cm 512)", bench::square_config(1024, 32768), "", {1}});
        cudaDeviceProp prop{};
        GANINV_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
        return bench::invert_step_main(configs, backend, concat(prop.name, " [", precision, "]"), json_path);
    } catch (const std::exception& e) {
        std::cerr << "bench_invert_step_gpu: " << e.what() << "\n";
        return 1;
    }
}
