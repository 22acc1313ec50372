// GPU: the pSp encoder (PspEncoderCuda, issue 16) per image at a training batch: the forward
// (what `encode` and ReStyle refinement run) and forward + backward with every parameter
// gradient (a training step without the generator), for the demo model's encoder
// (models/fmnist32_encoder.safetensors, 32x32 grayscale) and the 256x256 RGB preset
// (EncoderConfig::for_generator(256, 3, 14, 512), random weights). Device time from CUDA events,
// median of the repetitions after a warm-up (cuDNN plans, the memory pool).
// Usage: bench_encoder_gpu [--quick] [--json OUT.json] [--batch 64] [--precisions fp32,tf32]
#include "../bench_common.hpp"
#include "device_timing.hpp"

#include <ganinv/backend/cuda.cuh>
#include <ganinv/cuda/stream.hpp>
#include <ganinv/models/encoder_file.hpp>
#include <ganinv/models/psp_encoder_cuda.cuh>

#include <cstring>
#include <iostream>

using namespace ganinv;

namespace {

struct Model {
    std::string name;
    PspEncoder host;
};

}  // namespace

int main(int argc, char** argv) {
    std::string json_path = "bench_encoder_gpu.json", prec_list = "fp32,tf32";
    Index batch = 64;
    bool quick = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--quick")) quick = true;
        else if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
        else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) batch = std::stoll(argv[++i]);
        else if (!std::strcmp(argv[i], "--precisions") && i + 1 < argc) prec_list = argv[++i];
        else {
            std::cerr << "usage: bench_encoder_gpu [--quick] [--json OUT.json] [--batch 64] [--precisions fp32,tf32]\n";
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
        cudaDeviceProp prop{};
        GANINV_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
        const int reps = quick ? 3 : 10;
        std::vector<Model> models;
        models.push_back({"fmnist32 demo (32x32x1)", load_encoder(GANINV_ENCODER_MODEL)});
        models.push_back({"preset 256x256x3", PspEncoder(EncoderConfig::for_generator(256, 3, 14, 512), 1)});
        std::vector<bench::Row> rows;
        for (const Model& m : models) {
            const EncoderConfig& c = m.host.config();
            Tensor<float> x({batch, m.host.in_channels(), c.resolution, c.resolution});
            Rng(3).fill_normal(x.values(), 0.0, 0.5);
            Tensor<float> gc({batch, c.num_ws, c.w_dim});
            Rng(4).fill_normal(gc.values());
            for (const std::string& prec : bench::split_list(prec_list)) {
                cuda::CudaOptions co;
                co.precision = cuda::parse_precision(prec);
                const Cuda backend(stream, co);
                const PspEncoderCuda enc(m.host, backend);
                const cuda::DeviceTensor dx = backend.upload(x), dgc = backend.upload(gc);
                cuda::DeviceTensor grads = backend.zeros({1, enc.num_params()});
                PspEncoderCuda::Cache cache;
                const bench::Timing fwd = bench::time_device(stream, 2, reps, [&] { (void)enc.forward(dx); });
                const bench::Timing step = bench::time_device(stream, 2, reps, [&] {
                    (void)enc.forward(dx, &cache);
                    (void)enc.backward(cache, dgc, &grads, false);
                });
                const double n = static_cast<double>(batch);
                bench::Row r;
                r.cells = {m.name, prec, std::to_string(batch), bench::fmt(static_cast<double>(enc.num_params()) / 1e6, 2),
                           bench::fmt(fwd.median_ms, 3), bench::fmt(fwd.median_ms / n * 1e3, 1),
                           bench::fmt(n / fwd.median_ms * 1e3, 0), bench::fmt(step.median_ms, 3),
                           bench::fmt(step.median_ms / n * 1e3, 1)};
                Json j{Json::Object{}};
                j.set("model", m.name);
                j.set("resolution", static_cast<std::int64_t>(c.resolution));
                j.set("channels", static_cast<std::int64_t>(c.in_channels));
                j.set("precision", prec);
                j.set("batch", static_cast<std::int64_t>(batch));
                j.set("params", static_cast<std::int64_t>(enc.num_params()));
                j.set("forward_ms", fwd.median_ms);
                j.set("forward_min_ms", fwd.min_ms);
                j.set("forward_us_per_image", fwd.median_ms / n * 1e3);
                j.set("forward_images_per_s", n / fwd.median_ms * 1e3);
                j.set("forward_backward_ms", step.median_ms);
                j.set("forward_backward_us_per_image", step.median_ms / n * 1e3);
                j.set("device", std::string(prop.name));
                r.json = j;
                rows.push_back(r);
                std::cout << "." << std::flush;
            }
        }
        std::cout << "\npSp encoder on " << prop.name << ", batch " << batch << " (device time, median of " << reps
                  << ")\n";
        bench::print_table({"encoder", "precision", "batch", "M params", "fwd ms", "fwd us/img", "img/s",
                            "fwd+bwd ms", "fwd+bwd us/img"},
                           rows);
        bench::write_json(json_path, "encoder_gpu", rows);
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "bench_encoder_gpu: " << e.what() << "\n";
        return 1;
    }
}
