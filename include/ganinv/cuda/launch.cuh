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

/// Sum over a warp (float, or double where a reduction must match the CPU's double sums).
template <class T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/// Sum over a block of kBlock threads in a fixed order (deterministic); the result is valid in
/// thread 0. Uses kBlock / 32 values of T in shared memory.
template <class T>
__device__ __forceinline__ T block_sum(T v) {
    __shared__ T part[kBlock / 32];
    v = warp_sum(v);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    __syncthreads();  // part[] may still be read by a previous call
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = threadIdx.x < kBlock / 32 ? part[threadIdx.x] : T(0);
    if (warp == 0) v = warp_sum(v);
    return v;
}

}  // namespace ganinv::cuda
