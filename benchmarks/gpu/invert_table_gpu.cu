// Inversion quality table with StyleGAN2<Cuda> and the CUDA MSE (benchmarks/invert_table_impl.hpp
// has the options); same rows and numbers as invert_table on the CPU, in a fraction of the time.
#include "../invert_table_impl.hpp"

#include <ganinv/backend/cuda.cuh>
#include <ganinv/cuda/stream.hpp>

#include <cstdio>

int main(int argc, char** argv) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        std::puts("SKIPPED: no CUDA device");
        return 77;
    }
    try {
        ganinv::cuda::Stream stream;
        cudaDeviceProp prop{};
        GANINV_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
        return ganinv::bench::invert_table_main(argc, argv, ganinv::Cuda(stream), prop.name);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "invert_table_gpu: %s\n", e.what());
        return 1;
    }
}
