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

/// How a per-pixel walk over the channels (ToRGB, the fused bias_act/noise backward) shares a
/// block of kBlock threads: `groups` channel groups x (kBlock / 32 / groups) warps along the
/// pixels, each lane on kPixelsPerLane pixels 32 apart. Deep layers get more groups, so that a
/// thread walks C / groups channels: on a 4x4 plane with 512 channels, one group would leave 16
/// threads walking 512 channels each.
constexpr int kPixelsPerLane = 4;
inline int channel_groups(Index channels) { return channels >= 128 ? 8 : channels >= 64 ? 4 : channels >= 32 ? 2 : 1; }
/// Pixels per block for `groups` channel groups.
inline Index pixel_tile(int groups) { return Index{kBlock / 32 / groups} * 32 * kPixelsPerLane; }

/// Channel chunks (grid.z) for a channel walk over `blocks` pixel-tile blocks: split the channels
/// across blocks until the grid has ~4 blocks per SM or a thread's share would drop below 4.
inline int channel_chunks(Index blocks, Index channels, int groups, int num_sms) {
    int chunks = 1;
    while (blocks * chunks < 4LL * num_sms && channels / (Index{groups} * chunks * 2) >= 4 && chunks < 64) chunks *= 2;
    return chunks;
}

struct PixelChannelSplit {
    int group, groups, slot;  ///< this thread's channel group; its first pixel's slot in the block tile
    long long tile;           ///< pixels per block
    __device__ explicit PixelChannelSplit(int groups_) : groups(groups_) {
        const int warp = static_cast<int>(threadIdx.x) / 32, cols = kBlock / 32 / groups_;
        group = warp / cols;
        slot = (warp % cols) * 32 * kPixelsPerLane + static_cast<int>(threadIdx.x) % 32;
        tile = static_cast<long long>(cols) * 32 * kPixelsPerLane;
    }
    /// Slot in the block tile and pixel index of this thread's i-th pixel.
    __device__ int slot_of(int i) const { return slot + 32 * i; }
    __device__ long long pixel(int i) const { return static_cast<long long>(blockIdx.x) * tile + slot_of(i); }
    /// This block's channel range [first, last) when gridDim.z chunks share `channels`.
    __device__ static int chunk_first(int channels) { return static_cast<int>(blockIdx.z * ((channels + gridDim.z - 1) / gridDim.z)); }
    __device__ static int chunk_last(int channels) { return min(channels, chunk_first(channels) + static_cast<int>((channels + gridDim.z - 1) / gridDim.z)); }
};

}  // namespace ganinv::cuda
