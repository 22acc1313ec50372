/// @file lbfgs_kernels.cuh
/// @brief Kernels and thin launchers behind Cuda's L-BFGS operations (the device-resident L-BFGS
///        loop, invert/device_lbfgs.hpp): generic row maps and deterministic row reductions that
///        run nn/lbfgs_ops.hpp's functors (the same math Cpu runs), and the copies between the
///        [rows, width] L-BFGS vectors and the generator's inputs and gradients.
///
/// A row reduction runs in two launches: (chunks, rows) blocks each reduce a fixed slice of a
/// row in a fixed tree order into a partial, then one thread per row merges its partials in
/// order and calls the functor's finish. The result does not depend on timing (no atomics),
/// though its rounding differs from the Cpu's in-order sums. The partials live in a pool block
/// (stream-ordered: no synchronisation).
#pragma once

#include "ganinv/cuda/check.hpp"
#include "ganinv/cuda/launch.cuh"
#include "ganinv/cuda/memory_pool.hpp"
#include "ganinv/nn/lbfgs_ops.hpp"

#include <algorithm>
#include <span>

namespace ganinv::cuda {

/// At most this many row blocks per launch (the code and 17 noise maps at 1024^2 fit in one).
inline constexpr int kMaxRowBlocks = 32;
struct RowBlockTable {
    nn::RowBlock block[kMaxRowBlocks];
    int count = 0;
};

namespace kernels {

/// m(r, j) for every element of every active row (grid-stride over rows * len).
template <class M>
__global__ void lbfgs_map(M m, long long rows, long long len) {
    GANINV_GRID_STRIDE(i, rows * len) {
        const long long r = i / len;
        if (m.active(r)) m(r, i - r * len);
    }
}

/// Block (c, r): the functor's sums over slice c of row r, merged in a fixed order.
template <class T>
__global__ void lbfgs_row_partials(T t, long long len, int chunks, double* partial) {
    constexpr int K = T::kSums;
    const long long r = blockIdx.y;
    double acc[K];
#pragma unroll
    for (int k = 0; k < K; ++k) acc[k] = 0.0;
    if (t.active(r)) {
        const long long per = (len + chunks - 1) / chunks, begin = blockIdx.x * per;
        const long long end = begin + per < len ? begin + per : len;
        for (long long j = begin + threadIdx.x; j < end; j += blockDim.x) t.add(acc, r, j);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
#pragma unroll
        for (int k = 0; k < K; ++k) acc[k] = T::merge(k, acc[k], __shfl_xor_sync(0xffffffffu, acc[k], o));
    __shared__ double part[kBlock / 32][K];
    if (threadIdx.x % 32 == 0)
#pragma unroll
        for (int k = 0; k < K; ++k) part[threadIdx.x / 32][k] = acc[k];
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < kBlock / 32; ++w)
#pragma unroll
            for (int k = 0; k < K; ++k) acc[k] = T::merge(k, acc[k], part[w][k]);
#pragma unroll
        for (int k = 0; k < K; ++k) partial[(r * chunks + blockIdx.x) * K + k] = acc[k];
    }
}

/// One thread per row: its partials merged in order, then the functor's finish.
template <class T>
__global__ void lbfgs_row_finish(T t, long long rows, int chunks, const double* partial) {
    constexpr int K = T::kSums;
    GANINV_GRID_STRIDE(r, rows) {
        double acc[K];
#pragma unroll
        for (int k = 0; k < K; ++k) acc[k] = partial[r * chunks * K + k];
        for (int c = 1; c < chunks; ++c)
#pragma unroll
            for (int k = 0; k < K; ++k) acc[k] = T::merge(k, acc[k], partial[(r * chunks + c) * K + k]);
        t.finish(r, acc);
    }
}

/// grid (blocks per row, rows, table entries): block inputs from a [rows, width] point.
template <int = 0>  // a template: defined once however many TUs include this
__global__ void scatter_row_blocks(const float* point, long long width, RowBlockTable t) {
    const nn::RowBlock& b = t.block[blockIdx.z];
    const long long r = blockIdx.y, n = b.repeat * b.len;
    for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < n;
         e += static_cast<long long>(gridDim.x) * blockDim.x) {
        const long long j = e % b.len;
        b.input[r * n + e] = point[r * width + b.offset + j];
    }
}

/// grid (blocks per row, rows, table entries): a [rows, width] gradient from the blocks' gradients.
template <int = 0>  // a template: defined once however many TUs include this
__global__ void gather_row_blocks(RowBlockTable t, long long width, float* grad) {
    const nn::RowBlock& b = t.block[blockIdx.z];
    const long long r = blockIdx.y;
    for (long long j = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; j < b.len;
         j += static_cast<long long>(gridDim.x) * blockDim.x)
        grad[r * width + b.offset + j] = nn::row_block_grad(b, r, j);
}

}  // namespace kernels

/// The Cuda loops behind the functors (nn::lbfgs_direction_passes calls map and reduce).
struct LbfgsLaunch {
    MemoryPool& pool;
    cudaStream_t stream;
    Index rows, len;

    template <class M>
    void map(const M& m) const {
        launch_1d(kernels::lbfgs_map<M>, rows * len, stream, m, static_cast<long long>(rows), static_cast<long long>(len));
    }
    template <class T>
    void reduce(const T& t) const {
        if (rows <= 0) return;
        GANINV_CHECK(rows <= 65535, ShapeError, "L-BFGS row reduction: ", rows, " rows exceed the grid's 65535");
        // Enough blocks to fill the device for a few rows, each slice at least 4 elements a thread.
        const int chunks = static_cast<int>(std::clamp<Index>((len + 4 * kBlock - 1) / (4 * kBlock), 1, 128));
        const Block scratch = pool.allocate(sizeof(double) * static_cast<std::size_t>(rows * chunks * T::kSums));
        double* partial = static_cast<double*>(scratch.ptr);
        kernels::lbfgs_row_partials<T><<<dim3(static_cast<unsigned>(chunks), static_cast<unsigned>(rows)), kBlock, 0,
                                         stream>>>(t, static_cast<long long>(len), chunks, partial);
        const cudaError_t launched = cudaGetLastError();
        if (launched == cudaSuccess)
            launch_1d(kernels::lbfgs_row_finish<T>, rows, stream, t, static_cast<long long>(rows), chunks,
                      static_cast<const double*>(partial));
        pool.release(scratch);  // stream-ordered: reused only by later work on this stream
        GANINV_CUDA_CHECK(launched);
    }
};

/// Calls launch(table) once per group of at most kMaxRowBlocks blocks (they are independent).
template <class Launch>
void for_each_row_block_group(std::span<const nn::RowBlock> blocks, Launch&& launch) {
    for (std::size_t first = 0; first < blocks.size(); first += kMaxRowBlocks) {
        RowBlockTable t;
        const std::size_t last = std::min(blocks.size(), first + kMaxRowBlocks);
        for (std::size_t i = first; i < last; ++i) t.block[t.count++] = blocks[i];
        launch(t);
    }
}

inline void scatter_row_blocks(const float* point, Index rows, Index width, std::span<const nn::RowBlock> blocks,
                               cudaStream_t stream) {
    if (blocks.empty() || rows <= 0) return;
    GANINV_CHECK(rows <= 65535, ShapeError, "scatter_row_blocks: ", rows, " rows exceed the grid's 65535");
    for_each_row_block_group(blocks, [&](const RowBlockTable& t) {
        Index longest = 0;
        for (int i = 0; i < t.count; ++i) longest = std::max(longest, t.block[i].repeat * t.block[i].len);
        const dim3 grid(blocks_for(longest, 1024), static_cast<unsigned>(rows), static_cast<unsigned>(t.count));
        kernels::scatter_row_blocks<><<<grid, kBlock, 0, stream>>>(point, static_cast<long long>(width), t);
        GANINV_CUDA_CHECK_LAUNCH();
    });
}

inline void gather_row_blocks(std::span<const nn::RowBlock> blocks, Index rows, Index width, float* grad,
                              cudaStream_t stream) {
    if (blocks.empty() || rows <= 0) return;
    GANINV_CHECK(rows <= 65535, ShapeError, "gather_row_blocks: ", rows, " rows exceed the grid's 65535");
    for_each_row_block_group(blocks, [&](const RowBlockTable& t) {
        Index longest = 0;
        for (int i = 0; i < t.count; ++i) longest = std::max(longest, t.block[i].len);
        const dim3 grid(blocks_for(longest, 1024), static_cast<unsigned>(rows), static_cast<unsigned>(t.count));
        kernels::gather_row_blocks<><<<grid, kBlock, 0, stream>>>(t, static_cast<long long>(width), grad);
        GANINV_CUDA_CHECK_LAUNCH();
    });
}

}  // namespace ganinv::cuda
