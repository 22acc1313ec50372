/// @file launch.cuh
/// @brief Launch helpers for the simple (element-wise, reduction) kernels: grid-stride loops,
///        block sums, and a checked 1-D launch on an explicit stream.
#pragma once

#include "ganinv/core/tensor.hpp"
#include "ganinv/cuda/check.hpp"

#include <cuda_runtime.h>

#include <algorithm>

namespace ganinv::cuda {

constexpr int kBlock = 256;

/// Blocks for a grid-stride loop over n elements (capped; the loop covers the rest).
inline unsigned blocks_for(Index n, Index cap = 65536) {
    return static_cast<unsigned>(std::max<Index>(1, std::min<Index>((n + kBlock - 1) / kBlock, cap)));
}

#define GANINV_GRID_STRIDE(i, n) \
    for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < (n); i += static_cast<long long>(gridDim.x) * blockDim.x)

/// Launches `kernel<<<blocks_for(n), kBlock, 0, stream>>>(args...)` when n > 0, then checks it.
template <class... KArgs, class... Args>
void launch_1d(void (*kernel)(KArgs...), Index n, cudaStream_t stream, Args&&... args) {
    if (n <= 0) return;
    kernel<<<blocks_for(n), kBlock, 0, stream>>>(std::forward<Args>(args)...);
    GANINV_CUDA_CHECK_LAUNCH();
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/// Sum over a block of kBlock threads; the result is valid in thread 0. Uses 32 floats of shared memory.
__device__ __forceinline__ float block_sum(float v) {
    __shared__ float part[kBlock / 32];
    v = warp_sum(v);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    __syncthreads();  // part[] may still be read by a previous call
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = threadIdx.x < kBlock / 32 ? part[threadIdx.x] : 0.0f;
    if (warp == 0) v = warp_sum(v);
    return v;
}

}  // namespace ganinv::cuda
