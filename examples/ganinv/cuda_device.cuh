/// @file cuda_device.cuh
/// @brief What the tool's GPU paths (invert_cuda.cu, tune_cuda.cu) say about the device: a
///        readable refusal on machines without one, and the line printed as "device: ...".
#pragma once

#include "cli.hpp"

#include <ganinv/backend/cuda.cuh>

#include <string>

namespace ganinv::cli {

/// A readable refusal on machines without a usable GPU (before any stream or allocation).
inline void require_cuda_device() {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0)
        throw CudaError(concat("--device cuda: no usable CUDA device on this machine (",
                               e != cudaSuccess ? cudaGetErrorString(e) : "no devices", "); use --device cpu"),
                        e != cudaSuccess ? e : cudaErrorNoDevice);
}

/// "NVIDIA H200 (sm_90), convolutions tf32 on wgmma kernels".
inline std::string describe_cuda_device(const Cuda& backend) {
    int dev = 0;
    GANINV_CUDA_CHECK(cudaGetDevice(&dev));
    cudaDeviceProp prop{};
    GANINV_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
    const cuda::Precision prec = backend.options().precision;
    return concat(prop.name, " (sm_", prop.major, prop.minor, "), convolutions ", cuda::to_string(prec),
                  prec == cuda::Precision::fp32 ? "" : (backend.wgmma_enabled() ? " on wgmma kernels" : " on mma.sync kernels"));
}

}  // namespace ganinv::cli
