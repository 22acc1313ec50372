/// @file noise_reg_kernels.cuh
/// @brief The projector's noise regulariser on the GPU (the arithmetic of nn/noise_reg_plane.hpp:
///        levels in double) and its launcher: one block per plane for small maps, a multi-block
///        pipeline for large ones.
///
/// Why two paths: one block per plane walks the whole pyramid with __syncthreads between levels.
/// That is the cheapest launch for the 4^2..64^2 maps, but a 1024^2 map then runs its million
/// doubles through 256 threads of one SM: 1.4 ms per map, 24 ms of an official-objective step at
/// 1024^2 (session 20's ncu profile). Above kNoiseRegOneBlockMax values per plane the work is
/// split over the whole GPU in four launches:
///  1. pyramid: 32x32 tiles of a level, each pooled in shared memory down five levels (a second
///     pass from level 5 when the pyramid is deeper), every level written to the workspace;
///  2. partials: each level cut into chunks of kNoiseRegChunk values, one block per chunk summing
///     the lag-1 products in x and y;
///  3. finish: per plane, each level's chunk sums added in a fixed order (deterministic), the
///     coefficients 2 c / (h w) and the value;
///  4. gradient: one thread per full-size value, summing the levels' terms from the coarsest down
///     as the CPU's pooling adjoint does (v = v / 4 + term), so no level's gradient is stored.
/// The sums are in another order than the CPU's sequential loops (double: ~1e-16 relative).
#pragma once

#include "ganinv/cuda/check.hpp"
#include "ganinv/cuda/launch.cuh"
#include "ganinv/cuda/memory_pool.hpp"

#include <algorithm>

namespace ganinv::cuda {

/// The pyramid of one noise map: level l is h[l] x w[l] at offset[l] of a plane's workspace; for
/// the multi-block path, level l's chunks are blocks first_block[l] .. first_block[l + 1] - 1.
struct NoiseRegLevels {
    static constexpr int kMax = 32;
    int count = 0;
    long long h[kMax], w[kMax], offset[kMax];
    long long first_block[kMax + 1];
    long long total = 0;  ///< doubles per plane
};

/// Planes of at most this many values take the one-block kernel.
inline constexpr long long kNoiseRegOneBlockMax = 64 * 64;
/// Values per block of the multi-block partial sums.
inline constexpr long long kNoiseRegChunk = 2048;
/// Edge of a pyramid tile; log2 of it = levels pooled per pass.
inline constexpr int kNoiseRegTile = 32, kNoiseRegTileLevels = 5;

namespace kernels {

/// One block per plane n: value into value[n], gradient (nullable) into grad. ws/gws: N * total
/// doubles each.
template <int = 0>  // a template: defined once however many TUs include this
__global__ void noise_reg_planes(const float* maps, NoiseRegLevels L, double* ws, double* gws, float* grad,
                                 double* value) {
    const long long n = blockIdx.x, H = L.h[0], W = L.w[0];
    double* a = ws + n * L.total;
    for (long long i = threadIdx.x; i < H * W; i += kBlock) a[i] = maps[n * H * W + i];
    __syncthreads();
    __shared__ double cx[NoiseRegLevels::kMax], cy[NoiseRegLevels::kMax];
    for (int l = 0; l < L.count; ++l) {
        const long long h = L.h[l], w = L.w[l];
        const double* al = a + L.offset[l];
        double sx = 0.0, sy = 0.0;
        for (long long i = threadIdx.x; i < h * w; i += kBlock) {
            const long long y = i / w, x = i - y * w;
            sx += al[i] * al[y * w + (x + w - 1) % w];
            sy += al[i] * al[((y + h - 1) % h) * w + x];
        }
        sx = block_sum<double>(sx);
        sy = block_sum<double>(sy);
        if (threadIdx.x == 0) {
            cx[l] = sx / static_cast<double>(h * w);
            cy[l] = sy / static_cast<double>(h * w);
        }
        if (l + 1 < L.count) {  // 2x2 average pool, odd sizes floored
            const long long ow = L.w[l + 1];
            double* next = a + L.offset[l + 1];
            for (long long o = threadIdx.x; o < L.h[l + 1] * ow; o += kBlock) {
                const long long i = o / ow, j = o - i * ow;
                next[o] = 0.25 * (al[2 * i * w + 2 * j] + al[2 * i * w + 2 * j + 1] + al[(2 * i + 1) * w + 2 * j] +
                                  al[(2 * i + 1) * w + 2 * j + 1]);
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        double reg = 0.0;
        for (int l = 0; l < L.count; ++l) reg += cx[l] * cx[l] + cy[l] * cy[l];
        value[n] = reg;
    }
    if (!grad) return;
    // Coarsest level first: each level's own term, plus the pooling adjoint of the level above.
    double* g = gws + n * L.total;
    for (int l = L.count - 1; l >= 0; --l) {
        const long long h = L.h[l], w = L.w[l];
        const double* al = a + L.offset[l];
        const double kx = 2.0 * cx[l] / static_cast<double>(h * w), ky = 2.0 * cy[l] / static_cast<double>(h * w);
        for (long long i = threadIdx.x; i < h * w; i += kBlock) {
            const long long y = i / w, x = i - y * w;
            double v = 0.0;
            if (l + 1 < L.count && y < 2 * L.h[l + 1] && x < 2 * L.w[l + 1])
                v = 0.25 * g[L.offset[l + 1] + (y / 2) * L.w[l + 1] + x / 2];
            v += kx * (al[y * w + (x + w - 1) % w] + al[y * w + (x + 1) % w]) +
                 ky * (al[((y + h - 1) % h) * w + x] + al[((y + 1) % h) * w + x]);
            if (l == 0) grad[n * H * W + i] = static_cast<float>(v);
            else g[L.offset[l] + i] = v;
        }
        __syncthreads();
    }
}

/// grid (tiles x, tiles y, N): the 32x32 tile (blockIdx.x, blockIdx.y) of level `from` pooled down
/// to level from + 5 (or the last level) in shared memory; levels from + 1.. (and level 0 itself
/// when from == 0, read from the float maps) written to the workspace.
template <int = 0>  // a template: defined once however many TUs include this
__global__ void noise_reg_pyramid(const float* maps, NoiseRegLevels L, int from, double* ws) {
    __shared__ double buf[2][kNoiseRegTile * kNoiseRegTile];
    const long long n = blockIdx.z;
    double* plane = ws + n * L.total;
    {
        const long long h = L.h[from], w = L.w[from], oy = blockIdx.y * kNoiseRegTile, ox = blockIdx.x * kNoiseRegTile;
        for (int i = threadIdx.x; i < kNoiseRegTile * kNoiseRegTile; i += kBlock) {
            const long long y = oy + i / kNoiseRegTile, x = ox + i % kNoiseRegTile;
            double v = 0.0;
            if (y < h && x < w) {
                if (from == 0) {
                    v = maps[(n * h + y) * w + x];
                    plane[y * w + x] = v;
                } else {
                    v = plane[L.offset[from] + y * w + x];
                }
            }
            buf[0][i] = v;
        }
    }
    __syncthreads();
    int src = 0;
    for (int k = 1, size = kNoiseRegTile / 2; k <= kNoiseRegTileLevels && from + k < L.count; ++k, size /= 2) {
        const int l = from + k;
        const long long h = L.h[l], w = L.w[l], oy = static_cast<long long>(blockIdx.y) * size,
                        ox = static_cast<long long>(blockIdx.x) * size;
        const double* s = buf[src];
        double* d = buf[1 - src];
        const int pitch = 2 * size;
        for (int i = threadIdx.x; i < size * size; i += kBlock) {
            const int ty = i / size, tx = i % size;
            double v = 0.0;
            if (oy + ty < h && ox + tx < w) {  // floor pooling: both children exist
                const double* c = s + 2 * ty * pitch + 2 * tx;
                v = 0.25 * (c[0] + c[1] + c[pitch] + c[pitch + 1]);
                plane[L.offset[l] + (oy + ty) * w + ox + tx] = v;
            }
            d[i] = v;
        }
        __syncthreads();
        src = 1 - src;
    }
}

/// grid (blocks per plane, N): block b sums the lag-1 products of one chunk of one level into
/// partials[(n * blocks + b) * 2 + {0, 1}] (x, y).
template <int = 0>  // a template: defined once however many TUs include this
__global__ void noise_reg_partials(NoiseRegLevels L, const double* ws, double* partials) {
    const long long n = blockIdx.y, b = blockIdx.x, blocks = L.first_block[L.count];
    int l = 0;
    while (l + 1 < L.count && b >= L.first_block[l + 1]) ++l;
    const long long h = L.h[l], w = L.w[l];
    const double* a = ws + n * L.total + L.offset[l];
    const long long begin = (b - L.first_block[l]) * kNoiseRegChunk;
    const long long end = begin + kNoiseRegChunk < h * w ? begin + kNoiseRegChunk : h * w;
    double sx = 0.0, sy = 0.0;
    for (long long i = begin + threadIdx.x; i < end; i += kBlock) {
        const long long y = i / w, x = i - y * w;
        sx += a[i] * a[y * w + (x + w - 1) % w];
        sy += a[i] * a[((y + h - 1) % h) * w + x];
    }
    sx = block_sum<double>(sx);
    sy = block_sum<double>(sy);
    if (threadIdx.x == 0) {
        partials[(n * blocks + b) * 2] = sx;
        partials[(n * blocks + b) * 2 + 1] = sy;
    }
}

/// grid N: per level, the block adds the level's chunk sums (strided, then the fixed-order block
/// sum); coef[(n * count + l) * 2] = 2 cx / (h w) (then y); value[n] = sum over levels of cx^2 + cy^2.
template <int = 0>  // a template: defined once however many TUs include this
__global__ void noise_reg_finish(NoiseRegLevels L, const double* partials, double* coef, double* value) {
    const long long n = blockIdx.x, blocks = L.first_block[L.count];
    double reg = 0.0;
    for (int l = 0; l < L.count; ++l) {
        double sx = 0.0, sy = 0.0;
        for (long long b = L.first_block[l] + threadIdx.x; b < L.first_block[l + 1]; b += kBlock) {
            sx += partials[(n * blocks + b) * 2];
            sy += partials[(n * blocks + b) * 2 + 1];
        }
        sx = block_sum<double>(sx);
        sy = block_sum<double>(sy);
        if (threadIdx.x == 0) {
            const double hw = static_cast<double>(L.h[l] * L.w[l]), cx = sx / hw, cy = sy / hw;
            coef[(n * L.count + l) * 2] = 2.0 * cx / hw;
            coef[(n * L.count + l) * 2 + 1] = 2.0 * cy / hw;
            reg += cx * cx + cy * cy;
        }
    }
    if (threadIdx.x == 0) value[n] = reg;
}

/// grid (blocks over H * W, N): d reg / d map, every level's term at once from the coarsest
/// (the pooling adjoint unrolled: a level-l value reaches the full-size pixel (y, x) at
/// (y >> l, x >> l) when that lies inside level l, divided by 4 per level on the way).
template <int = 0>  // a template: defined once however many TUs include this
__global__ void noise_reg_gradient(NoiseRegLevels L, const double* ws, const double* coef, float* grad) {
    const long long n = blockIdx.y, H = L.h[0], W = L.w[0];
    const double* plane = ws + n * L.total;
    const double* k = coef + n * L.count * 2;
    for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < H * W;
         i += static_cast<long long>(gridDim.x) * blockDim.x) {
        const long long y = i / W, x = i - y * W;
        double v = 0.0;
        for (int l = L.count - 1; l >= 0; --l) {
            const long long h = L.h[l], w = L.w[l], yy = y >> l, xx = x >> l;
            if (yy >= h || xx >= w) continue;  // outside this level: so are the coarser ones (v == 0)
            const double* a = plane + L.offset[l];
            v = 0.25 * v + (k[2 * l] * (a[yy * w + (xx + w - 1) % w] + a[yy * w + (xx + 1) % w]) +
                            k[2 * l + 1] * (a[((yy + h - 1) % h) * w + xx] + a[((yy + 1) % h) * w + xx]));
        }
        grad[n * H * W + i] = static_cast<float>(v);
    }
}

}  // namespace kernels

/// The pyramid levels of an H x W map (the CPU's do-while: stop after the level with h <= 8).
inline NoiseRegLevels noise_reg_levels(Index H, Index W) {
    NoiseRegLevels L;
    for (Index h = H, w = W;;) {
        GANINV_CHECK(L.count < NoiseRegLevels::kMax, ShapeError, "CUDA noise regulariser: too many pyramid levels for a ",
                     H, "x", W, " map");
        L.h[L.count] = h;
        L.w[L.count] = w;
        L.offset[L.count] = L.total;
        L.total += h * w;
        ++L.count;
        if (h <= 8) break;
        h /= 2;
        w /= 2;
    }
    L.first_block[0] = 0;
    for (int l = 0; l < L.count; ++l)
        L.first_block[l + 1] = L.first_block[l] + (L.h[l] * L.w[l] + kNoiseRegChunk - 1) / kNoiseRegChunk;
    return L;
}

/// value[n] (device) = the regulariser of plane n of `maps` (N planes of H x W, float); grad
/// (nullable, device, N x H x W) = its gradient. Scratch comes from `pool` and is released
/// (stream-ordered) before returning. `multi_block`: -1 chooses by size, 0/1 force a path (tests).
inline void launch_noise_regularizer(const float* maps, Index N, Index H, Index W, float* grad, double* value,
                                     MemoryPool& pool, cudaStream_t stream, int multi_block = -1) {
    GANINV_CHECK(N >= 1 && N <= 65535, ShapeError, "CUDA noise regulariser: batch ", N, " outside 1..65535");
    const NoiseRegLevels L = noise_reg_levels(H, W);
    const bool split = multi_block < 0 ? H * W > kNoiseRegOneBlockMax : multi_block == 1;
    if (!split) {
        const std::size_t work = sizeof(double) * static_cast<std::size_t>(N * L.total);
        const Block scratch = pool.allocate(2 * work);
        double* ws = static_cast<double*>(scratch.ptr);
        kernels::noise_reg_planes<><<<static_cast<unsigned>(N), kBlock, 0, stream>>>(maps, L, ws, ws + N * L.total, grad,
                                                                                     value);
        pool.release(scratch);
        GANINV_CUDA_CHECK_LAUNCH();
        return;
    }
    const long long blocks = L.first_block[L.count];
    const auto tiles = [](long long n) { return static_cast<unsigned>((n + kNoiseRegTile - 1) / kNoiseRegTile); };
    GANINV_CHECK(blocks <= 2147483647LL && tiles(H) <= 65535, ShapeError, "CUDA noise regulariser: a ", H, "x", W,
                 " map is too large");
    const std::size_t doubles = static_cast<std::size_t>(N * L.total + N * blocks * 2 + N * L.count * 2);
    const Block scratch = pool.allocate(sizeof(double) * doubles);
    double* ws = static_cast<double*>(scratch.ptr);
    double* partials = ws + N * L.total;
    double* coef = partials + N * blocks * 2;
    cudaError_t e = cudaSuccess;
    // Pass k pools level 5k down to level 5k + 5 (or the last level); a level of width 0 has no tiles.
    for (int from = 0; e == cudaSuccess; from += kNoiseRegTileLevels) {
        const dim3 grid(tiles(L.w[from]), tiles(L.h[from]), static_cast<unsigned>(N));
        if (grid.x > 0 && grid.y > 0) kernels::noise_reg_pyramid<><<<grid, kBlock, 0, stream>>>(maps, L, from, ws);
        e = cudaGetLastError();
        if (from + kNoiseRegTileLevels >= L.count - 1) break;
    }
    if (e == cudaSuccess && blocks > 0)
        kernels::noise_reg_partials<><<<dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(N)), kBlock, 0, stream>>>(
            L, ws, partials);
    if (e == cudaSuccess) e = cudaGetLastError();
    if (e == cudaSuccess) kernels::noise_reg_finish<><<<static_cast<unsigned>(N), kBlock, 0, stream>>>(L, partials, coef, value);
    if (e == cudaSuccess) e = cudaGetLastError();
    if (e == cudaSuccess && grad)
        kernels::noise_reg_gradient<><<<dim3(blocks_for(H * W, 4096), static_cast<unsigned>(N)), kBlock, 0, stream>>>(
            L, ws, coef, grad);
    if (e == cudaSuccess) e = cudaGetLastError();
    pool.release(scratch);
    GANINV_CUDA_CHECK(e);
}

}  // namespace ganinv::cuda
