/// @file noise_reg_kernels.cuh
/// @brief The projector's noise regulariser on the GPU (the arithmetic of nn/noise_reg_plane.hpp:
///        levels in double) for a whole list of noise maps at once, and its launcher.
///
/// Why batched: the regulariser is a few MB of work spread over 17 maps (1024^2 generator) of
/// 4^2 .. 1024^2. Run map by map it took five launches per large map and one single-block launch
/// per small one, ~60 launches and 0.6 ms of an 11 ms step (session 22's profile), almost all of
/// it launch latency, single-block walks of small pyramids and 64-bit index divisions. Here every
/// map of the list goes through the same five launches:
///  1. pyramid (one launch per five levels, usually two): 32x32 tiles of level 5p of every map
///     deep enough, pooled five levels down in shared memory, levels 5p+1.. written to the
///     workspace (level 0 is never copied: it is read from the float map itself);
///  2. partials: every level of every map cut into chunks of kNoiseRegChunk values, one block per
///     chunk summing the lag-1 products in x and y;
///  3. finish: one block per (map, plane), one warp per level adding the level's chunk sums in a
///     fixed order (deterministic), then the coefficients 2 c / (h w) and the map's value;
///  4. gradient: one thread per full-size value, summing the levels' terms from the coarsest down
///     as the CPU's pooling adjoint does (v = v / 4 + term), so no level's gradient is stored;
///  5. the values: per plane, the maps' values added in list order (the order the CPU adds them).
/// The sums are in another order than the CPU's sequential loops (double: ~1e-16 relative).
#pragma once

#include "ganinv/cuda/check.hpp"
#include "ganinv/cuda/launch.cuh"
#include "ganinv/cuda/memory_pool.hpp"

#include <algorithm>
#include <vector>

namespace ganinv::cuda {

/// Values per block of the partial sums.
inline constexpr int kNoiseRegChunk = 2048;
/// Edge of a pyramid tile; log2 of it = levels pooled per pass.
inline constexpr int kNoiseRegTile = 32, kNoiseRegTileLevels = 5;
/// Pyramid levels a map may have (a 2^31-value plane has 13).
inline constexpr int kNoiseRegMaxLevels = 16;

/// One noise map of a batch: N planes of H x W at `map`, its gradient (nullable) at `grad`.
/// Level l is (H >> l) x (W >> l) (the CPU's repeated floor halving); levels 1.. of plane n live
/// at ws + n * ws_per_plane + ws_offset; chunks and gradient blocks are numbered across the batch.
struct NoiseRegMap {
    const float* map = nullptr;
    float* grad = nullptr;
    int H = 0, W = 0, levels = 0;
    long long ws_offset = 0, first_chunk = 0, first_grad_block = 0;
};

/// Up to kMaxMaps maps with a shared batch N (a kernel parameter: ~1.8 KB).
struct NoiseRegBatch {
    static constexpr int kMaxMaps = 32;
    int maps = 0;
    NoiseRegMap m[kMaxMaps];
    long long ws_per_plane = 0, chunks = 0, grad_blocks = 0;
};

namespace noise_reg {

__device__ __forceinline__ int level_h(const NoiseRegMap& e, int l) { return e.H >> l; }
__device__ __forceinline__ int level_w(const NoiseRegMap& e, int l) { return e.W >> l; }
/// Offset of level l >= 1 inside a plane's part of the workspace.
__device__ __forceinline__ long long level_offset(const NoiseRegMap& e, int l) {
    long long off = e.ws_offset;
    for (int j = 1; j < l; ++j) off += static_cast<long long>(e.H >> j) * (e.W >> j);
    return off;
}
__device__ __forceinline__ int level_chunks(const NoiseRegMap& e, int l) {
    return static_cast<int>((static_cast<long long>(e.H >> l) * (e.W >> l) + kNoiseRegChunk - 1) / kNoiseRegChunk);
}
/// The map whose range [first(k), first(k + 1)) holds `b` (ranges in batch order).
template <class First>
__device__ __forceinline__ int find_map(const NoiseRegBatch& B, long long b, First first) {
    int k = 0;
    while (k + 1 < B.maps && b >= first(B.m[k + 1])) ++k;
    return k;
}
/// Reads level l of plane n: level 0 from the float map, the others from the workspace.
struct LevelView {
    const float* f = nullptr;
    const double* d = nullptr;
    __device__ double operator[](long long i) const { return f ? static_cast<double>(f[i]) : d[i]; }
};
__device__ __forceinline__ LevelView level_view(const NoiseRegMap& e, const double* ws, long long ws_per_plane, int n,
                                                int l) {
    LevelView v;
    if (l == 0) v.f = e.map + static_cast<long long>(n) * e.H * e.W;
    else v.d = ws + n * ws_per_plane + level_offset(e, l);
    return v;
}
__device__ __forceinline__ int left(int x, int w) { return x == 0 ? w - 1 : x - 1; }
__device__ __forceinline__ int right(int x, int w) { return x + 1 == w ? 0 : x + 1; }
/// Tiles of level `from` of map e in a pyramid pass that starts there (0 when e has no level
/// below `from` to pool into).
__device__ __forceinline__ long long pass_tiles(const NoiseRegMap& e, int from) {
    if (from + 1 >= e.levels) return 0;
    const long long h = e.H >> from, w = e.W >> from;
    return ((h + kNoiseRegTile - 1) / kNoiseRegTile) * ((w + kNoiseRegTile - 1) / kNoiseRegTile);
}

}  // namespace noise_reg

namespace kernels {

/// grid (tiles of level `from` over all maps, N): one 32x32 tile pooled to level from + 5 (or
/// each map's last level) in shared memory, levels from + 1.. written to the workspace.
template <int = 0>  // a template: defined once however many TUs include this
__global__ void noise_reg_pyramid(NoiseRegBatch B, int from, double* ws) {
    using namespace noise_reg;
    __shared__ double buf[2][kNoiseRegTile * kNoiseRegTile];
    __shared__ long long first[NoiseRegBatch::kMaxMaps + 1];
    if (threadIdx.x == 0) {  // this pass's tiles of each map, as a prefix sum
        first[0] = 0;
        for (int k = 0; k < B.maps; ++k) first[k + 1] = first[k] + pass_tiles(B.m[k], from);
    }
    __syncthreads();
    const long long b = blockIdx.x;
    int k = 0;
    while (k + 1 < B.maps && b >= first[k + 1]) ++k;
    const NoiseRegMap& e = B.m[k];
    const int n = static_cast<int>(blockIdx.y);
    const int h0 = level_h(e, from), w0 = level_w(e, from), tiles_x = (w0 + kNoiseRegTile - 1) / kNoiseRegTile;
    const int t = static_cast<int>(b - first[k]), ty0 = t / tiles_x, tx0 = t - ty0 * tiles_x;
    {
        const LevelView src = level_view(e, ws, B.ws_per_plane, n, from);
        const int oy = ty0 * kNoiseRegTile, ox = tx0 * kNoiseRegTile;
        for (int i = threadIdx.x; i < kNoiseRegTile * kNoiseRegTile; i += kBlock) {
            const int y = oy + i / kNoiseRegTile, x = ox + i % kNoiseRegTile;
            buf[0][i] = (y < h0 && x < w0) ? src[static_cast<long long>(y) * w0 + x] : 0.0;
        }
    }
    __syncthreads();
    int s = 0;
    for (int j = 1, size = kNoiseRegTile / 2; j <= kNoiseRegTileLevels && from + j < e.levels; ++j, size /= 2) {
        const int l = from + j, h = level_h(e, l), w = level_w(e, l), oy = ty0 * size, ox = tx0 * size;
        double* plane = ws + n * B.ws_per_plane + level_offset(e, l);
        const double* src = buf[s];
        double* dst = buf[1 - s];
        const int pitch = 2 * size;
        for (int i = threadIdx.x; i < size * size; i += kBlock) {
            const int ty = i / size, tx = i % size;
            double v = 0.0;
            if (oy + ty < h && ox + tx < w) {  // floor pooling: both children exist
                const double* c = src + 2 * ty * pitch + 2 * tx;
                v = 0.25 * (c[0] + c[1] + c[pitch] + c[pitch + 1]);
                plane[static_cast<long long>(oy + ty) * w + ox + tx] = v;
            }
            dst[i] = v;
        }
        __syncthreads();
        s = 1 - s;
    }
}

/// grid (chunks of all maps' levels, N): block b sums the lag-1 products of one chunk into
/// partials[(n * chunks + b) * 2 + {0, 1}] (x, y).
template <int = 0>  // a template: defined once however many TUs include this
__global__ void noise_reg_partials(NoiseRegBatch B, const double* ws, double* partials) {
    using namespace noise_reg;
    const long long b = blockIdx.x;
    const int n = static_cast<int>(blockIdx.y);
    const int k = find_map(B, b, [](const NoiseRegMap& e) { return e.first_chunk; });
    const NoiseRegMap& e = B.m[k];
    int l = 0;
    long long c = b - e.first_chunk;
    while (l + 1 < e.levels && c >= level_chunks(e, l)) c -= level_chunks(e, l++);
    const int h = level_h(e, l), w = level_w(e, l);
    const LevelView a = level_view(e, ws, B.ws_per_plane, n, l);
    const int begin = static_cast<int>(c) * kNoiseRegChunk;
    const long long size = static_cast<long long>(h) * w;
    const int end = static_cast<int>(begin + kNoiseRegChunk < size ? begin + kNoiseRegChunk : size);
    double sx = 0.0, sy = 0.0;
    for (int i = begin + static_cast<int>(threadIdx.x); i < end; i += kBlock) {
        const int y = i / w, x = i - y * w;
        const double v = a[i];
        sx += v * a[static_cast<long long>(y) * w + left(x, w)];
        sy += v * a[static_cast<long long>(left(y, h)) * w + x];
    }
    sx = block_sum<double>(sx);
    sy = block_sum<double>(sy);
    if (threadIdx.x == 0) {
        partials[(n * B.chunks + b) * 2] = sx;
        partials[(n * B.chunks + b) * 2 + 1] = sy;
    }
}

/// grid (maps, N), kBlock threads: warp j adds the chunk sums of levels j, j + 8, ..; then
/// coef[((n * maps + k) * kNoiseRegMaxLevels + l) * 2 + {0, 1}] = 2 c / (h w) and
/// value[n * maps + k] = sum over levels (in order) of cx^2 + cy^2.
template <int = 0>  // a template: defined once however many TUs include this
__global__ void noise_reg_finish(NoiseRegBatch B, const double* partials, double* coef, double* value) {
    using namespace noise_reg;
    __shared__ double cx[kNoiseRegMaxLevels], cy[kNoiseRegMaxLevels];
    const int k = static_cast<int>(blockIdx.x), n = static_cast<int>(blockIdx.y);
    const NoiseRegMap& e = B.m[k];
    const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
    double* kc = coef + (static_cast<long long>(n) * B.maps + k) * kNoiseRegMaxLevels * 2;
    long long first = e.first_chunk;
    for (int l = 0; l < e.levels; ++l) {
        const int chunks = level_chunks(e, l);
        if (l % (kBlock / 32) == warp) {
            double sx = 0.0, sy = 0.0;
            for (int c = lane; c < chunks; c += 32) {
                sx += partials[(n * B.chunks + first + c) * 2];
                sy += partials[(n * B.chunks + first + c) * 2 + 1];
            }
            sx = warp_sum(sx);
            sy = warp_sum(sy);
            if (lane == 0) {
                const double hw = static_cast<double>(level_h(e, l)) * level_w(e, l);
                cx[l] = sx / hw;
                cy[l] = sy / hw;
                kc[2 * l] = 2.0 * cx[l] / hw;
                kc[2 * l + 1] = 2.0 * cy[l] / hw;
            }
        }
        first += chunks;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double reg = 0.0;
        for (int l = 0; l < e.levels; ++l) reg += cx[l] * cx[l] + cy[l] * cy[l];
        value[static_cast<long long>(n) * B.maps + k] = reg;
    }
}

/// grid (gradient blocks of all maps, N): d reg / d map, one thread per full-size value, every
/// level's term from the coarsest (the pooling adjoint unrolled: a level-l value reaches the
/// pixel (y, x) at (y >> l, x >> l) when that lies inside level l, divided by 4 per level).
template <int = 0>  // a template: defined once however many TUs include this
__global__ void noise_reg_gradient(NoiseRegBatch B, const double* ws, const double* coef) {
    using namespace noise_reg;
    const long long b = blockIdx.x;
    const int n = static_cast<int>(blockIdx.y);
    const int k = find_map(B, b, [](const NoiseRegMap& e) { return e.first_grad_block; });
    const NoiseRegMap& e = B.m[k];
    if (!e.grad) return;
    const long long pixel = (b - e.first_grad_block) * kBlock + threadIdx.x;
    if (pixel >= static_cast<long long>(e.H) * e.W) return;
    const int i = static_cast<int>(pixel), y = i / e.W, x = i - y * e.W;
    const double* kc = coef + (static_cast<long long>(n) * B.maps + k) * kNoiseRegMaxLevels * 2;
    double v = 0.0;
    for (int l = e.levels - 1; l >= 0; --l) {
        const int h = level_h(e, l), w = level_w(e, l), yy = y >> l, xx = x >> l;
        if (yy >= h || xx >= w) continue;  // outside this level: so are the coarser ones (v == 0)
        const LevelView a = level_view(e, ws, B.ws_per_plane, n, l);
        const long long row = static_cast<long long>(yy) * w;
        v = 0.25 * v + (kc[2 * l] * (a[row + left(xx, w)] + a[row + right(xx, w)]) +
                        kc[2 * l + 1] * (a[static_cast<long long>(left(yy, h)) * w + xx] +
                                         a[static_cast<long long>(right(yy, h)) * w + xx]));
    }
    e.grad[static_cast<long long>(n) * e.H * e.W + i] = static_cast<float>(v);
}

/// out[n] += weight * value[n * maps + k] for k = 0, 1, .. in order (the loop's out block: T
/// float or double), as the per-map accumulate_values launches added them.
template <class T>
__global__ void noise_reg_values(const double* value, int maps, long long N, float weight, T* out) {
    for (long long n = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; n < N;
         n += static_cast<long long>(gridDim.x) * blockDim.x)
        for (int k = 0; k < maps; ++k) out[n] += static_cast<T>(weight) * static_cast<T>(value[n * maps + k]);
}

}  // namespace kernels

/// Levels of an H x W map: the CPU's do-while (stop after the level with h <= 8).
inline int noise_reg_level_count(Index H) {
    int count = 1;
    for (Index h = H; h > 8; h /= 2) ++count;
    return count;
}

/// One map for launch_noise_regularizers: N planes of H x W (device), grad nullable.
struct NoiseRegInput {
    const float* map = nullptr;
    float* grad = nullptr;
    Index H = 0, W = 0;
};

/// For every plane n: value[n * maps.size() + k] (device doubles) = the regulariser of plane n of
/// map k; each map's gradient (when given) overwritten. All maps share the batch N. Scratch comes
/// from `pool` and is released (stream-ordered) before returning. Maps beyond kMaxMaps go in
/// further rounds of the same kernels.
inline void launch_noise_regularizers(const std::vector<NoiseRegInput>& maps, Index N, double* value,
                                      MemoryPool& pool, cudaStream_t stream) {
    GANINV_CHECK(N >= 1 && N <= 65535, ShapeError, "CUDA noise regulariser: batch ", N, " outside 1..65535");
    const Index count = static_cast<Index>(maps.size());
    for (Index first = 0; first < count; first += NoiseRegBatch::kMaxMaps) {
        NoiseRegBatch B;
        B.maps = static_cast<int>(std::min<Index>(NoiseRegBatch::kMaxMaps, count - first));
        int deepest = 1;
        for (int k = 0; k < B.maps; ++k) {
            const NoiseRegInput& in = maps[static_cast<std::size_t>(first + k)];
            GANINV_CHECK(in.H >= 1 && in.W >= 1 && in.H * in.W < (Index{1} << 31), ShapeError,
                         "CUDA noise regulariser: a ", in.H, "x", in.W, " map (planes of 1 .. 2^31 - 1 values)");
            NoiseRegMap& e = B.m[k];
            e.map = in.map, e.grad = in.grad, e.H = static_cast<int>(in.H), e.W = static_cast<int>(in.W);
            e.levels = noise_reg_level_count(in.H);
            GANINV_CHECK(e.levels <= kNoiseRegMaxLevels, ShapeError, "CUDA noise regulariser: too many pyramid levels");
            deepest = std::max(deepest, e.levels);
            e.ws_offset = B.ws_per_plane, e.first_chunk = B.chunks, e.first_grad_block = B.grad_blocks;
            for (int l = 0; l < e.levels; ++l) {
                const long long hw = static_cast<long long>(e.H >> l) * (e.W >> l);
                if (l > 0) B.ws_per_plane += hw;
                B.chunks += (hw + kNoiseRegChunk - 1) / kNoiseRegChunk;
            }
            B.grad_blocks += (static_cast<long long>(e.H) * e.W + kBlock - 1) / kBlock;
        }
        GANINV_CHECK(B.chunks <= 2147483647LL && B.grad_blocks <= 2147483647LL, ShapeError,
                     "CUDA noise regulariser: the maps are too large");
        const std::size_t doubles = static_cast<std::size_t>(N * B.ws_per_plane + N * B.chunks * 2 +
                                                             N * B.maps * kNoiseRegMaxLevels * 2 + N * B.maps);
        const Block scratch = pool.allocate(sizeof(double) * std::max<std::size_t>(doubles, 1));
        double* ws = static_cast<double*>(scratch.ptr);
        double* partials = ws + N * B.ws_per_plane;
        double* coef = partials + N * B.chunks * 2;
        double* vals = coef + N * B.maps * kNoiseRegMaxLevels * 2;
        const unsigned planes = static_cast<unsigned>(N);
        cudaError_t e = cudaSuccess;
        for (int from = 0; from + 1 < deepest && e == cudaSuccess; from += kNoiseRegTileLevels) {
            long long tiles = 0;
            for (int k = 0; k < B.maps; ++k) {
                const NoiseRegMap& m = B.m[k];
                if (from + 1 >= m.levels) continue;
                const long long h = m.H >> from, w = m.W >> from;
                tiles += ((h + kNoiseRegTile - 1) / kNoiseRegTile) * ((w + kNoiseRegTile - 1) / kNoiseRegTile);
            }
            if (tiles > 0) kernels::noise_reg_pyramid<><<<dim3(static_cast<unsigned>(tiles), planes), kBlock, 0, stream>>>(B, from, ws);
            e = cudaGetLastError();
        }
        if (e == cudaSuccess)
            kernels::noise_reg_partials<><<<dim3(static_cast<unsigned>(B.chunks), planes), kBlock, 0, stream>>>(B, ws, partials);
        if (e == cudaSuccess) e = cudaGetLastError();
        if (e == cudaSuccess)
            kernels::noise_reg_finish<><<<dim3(static_cast<unsigned>(B.maps), planes), kBlock, 0, stream>>>(B, partials, coef, vals);
        if (e == cudaSuccess) e = cudaGetLastError();
        if (e == cudaSuccess)
            kernels::noise_reg_gradient<><<<dim3(static_cast<unsigned>(B.grad_blocks), planes), kBlock, 0, stream>>>(B, ws, coef);
        if (e == cudaSuccess) e = cudaGetLastError();
        // This round's values into their columns of `value` ([N][maps.size()]).
        if (e == cudaSuccess)
            e = cudaMemcpy2DAsync(value + first, sizeof(double) * static_cast<std::size_t>(count), vals,
                                  sizeof(double) * static_cast<std::size_t>(B.maps), sizeof(double) * static_cast<std::size_t>(B.maps),
                                  static_cast<std::size_t>(N), cudaMemcpyDeviceToDevice, stream);
        pool.release(scratch);
        GANINV_CUDA_CHECK(e);
    }
}

/// value[n] (device) = the regulariser of plane n of one H x W map; grad nullable.
inline void launch_noise_regularizer(const float* map, Index N, Index H, Index W, float* grad, double* value,
                                     MemoryPool& pool, cudaStream_t stream) {
    launch_noise_regularizers({NoiseRegInput{map, grad, H, W}}, N, value, pool, stream);
}

}  // namespace ganinv::cuda
