/// @file optim_kernels.cuh
/// @brief Kernels and thin launchers behind Cuda's optimizer operations (the device-resident
///        inversion loop, invert/device_loop.hpp): exploration noise into ws, Adam over a table
///        of parameter segments, per-row re-normalisation, the stop rule + loss history + step
///        counter. The math per element / row is nn/optimizer_ops.hpp's, shared with Cpu.
///
/// Every launch reads the step index and the running flags from device memory and takes the
/// segment table by value, so a CUDA graph that captured them stays valid from step to step.
#pragma once

#include "ganinv/core/philox.hpp"
#include "ganinv/cuda/check.hpp"
#include "ganinv/cuda/launch.cuh"
#include "ganinv/cuda/memory_pool.hpp"
#include "ganinv/nn/optimizer_ops.hpp"

#include <algorithm>
#include <span>

namespace ganinv::cuda {

/// At most this many segments per launch (the code block and 17 noise maps at 1024^2 fit in one;
/// longer lists, e.g. a generator's weights when tuning, take several launches).
inline constexpr int kMaxParamSegments = 32;
struct ParamSegmentTable {
    nn::ParamSegment seg[kMaxParamSegments];
    int count = 0;
};

namespace kernels {

template <int = 0>  // a template: defined once however many TUs include this
__global__ void exploration_ws(const float* code, long long rows, long long code_dim, long long repeat,
                               nn::StepState s, unsigned long long seed, float* ws) {
    const auto step = static_cast<unsigned long long>(*s.step);
    const float scale = s.noise_scale[step];
    const long long n = rows * code_dim;
    for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<long long>(gridDim.x) * blockDim.x) {
        const float x = code[i] + (scale != 0.0f ? scale * philox_normal(seed, step, static_cast<unsigned long long>(i)) : 0.0f);
        const long long r = i / code_dim, j = i - r * code_dim;
        for (long long k = 0; k < repeat; ++k) ws[(r * repeat + k) * code_dim + j] = x;
    }
}

/// grid (blocks per row, rows, segments).
template <int = 0>  // a template: defined once however many TUs include this
__global__ void adam_segments(ParamSegmentTable t, nn::AdamConstants c, nn::StepState s) {
    const nn::ParamSegment& g = t.seg[blockIdx.z];
    const long long r = blockIdx.y;
    if (s.running[r] == 0.0f) return;
    const float step = *s.step;
    const nn::AdamStepSize sz = nn::adam_step_size(c, s.learning_rate[static_cast<long long>(step)], step);
    const long long base = r * g.row_len;
    for (long long j = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; j < g.row_len;
         j += static_cast<long long>(gridDim.x) * blockDim.x) {
        const float grad = g.grad[base + j] + (g.grad2 ? g.grad2_scale * g.grad2[base + j] : 0.0f);
        nn::adam_element(c, sz, grad, g.param[base + j], g.m[base + j], g.v[base + j]);
    }
}

/// Re-normalisation of each running row of each segment to zero mean and unit variance, in three
/// launches over grid (chunks, rows, segments): chunk c of a row is values [c, c + 1) *
/// kRenormChunk. One block per row (the first version) ran a 1024^2 noise map's million values
/// through one SM: 3 ms of a 1024^2 step. Partial sums go to part[((seg * rows + r) * chunks + c) * 2]
/// (sum, then centred squares); every block that needs the mean or the scale adds its row's
/// partials itself, in chunk order, so the result does not depend on which block runs first.
inline constexpr long long kRenormChunk = 8192;

/// Chunk sums of one row's partials (slot 0: sums, 1: centred squares), in chunk order.
__device__ inline double renorm_row_total(const double* part, long long chunks, int slot) {
    double t = 0.0;
    for (long long c = 0; c < chunks; ++c) t += part[c * 2 + slot];
    return t;
}

/// pass 0: chunk sums of x; pass 1: chunk sums of (x - mean)^2; pass 2: x = (x - mean) / std.
template <int = 0>  // a template: defined once however many TUs include this
__global__ void renormalize_pass(ParamSegmentTable t, nn::StepState s, int pass, double* part) {
    const nn::ParamSegment& g = t.seg[blockIdx.z];
    const long long r = blockIdx.y, c = blockIdx.x, rows = gridDim.y, stride = gridDim.x;
    const long long chunks = (g.row_len + kRenormChunk - 1) / kRenormChunk;
    if (s.running[r] == 0.0f || c >= chunks) return;
    float* x = g.param + r * g.row_len;
    double* row_part = part + ((static_cast<long long>(blockIdx.z) * rows + r) * stride) * 2;
    const long long begin = c * kRenormChunk, end = begin + kRenormChunk < g.row_len ? begin + kRenormChunk : g.row_len;
    __shared__ double mean_s, inv_s;
    if (pass > 0 && threadIdx.x == 0) {
        mean_s = renorm_row_total(row_part, chunks, 0) / static_cast<double>(g.row_len);
        if (pass == 2)
            inv_s = 1.0 / sqrt(renorm_row_total(row_part, chunks, 1) / static_cast<double>(g.row_len) + 1e-30);
    }
    __syncthreads();
    if (pass == 2) {
        const double mean = mean_s, inv = inv_s;
        for (long long i = begin + threadIdx.x; i < end; i += blockDim.x) x[i] = static_cast<float>((x[i] - mean) * inv);
        return;
    }
    const double mean = pass == 1 ? mean_s : 0.0;
    double acc = 0;
    for (long long i = begin + threadIdx.x; i < end; i += blockDim.x)
        acc += pass == 0 ? static_cast<double>(x[i]) : (x[i] - mean) * (x[i] - mean);
    acc = block_sum(acc);
    if (threadIdx.x == 0) row_part[c * 2 + pass] = acc;
}

/// out[n] += weight * v[n] (per-image values that stay on the device), in T: float for the Adam
/// loop's values, double for the L-BFGS loop's (where 0 + 1.0 * v, then + v' ..., is exactly the
/// host objective's double sum).
template <class T = float>  // a template: defined once however many TUs include this
__global__ void accumulate_values(const double* v, long long n, float weight, T* out) {
    for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<long long>(gridDim.x) * blockDim.x)
        out[i] += static_cast<T>(weight) * static_cast<T>(v[i]);
}

/// One block: history, stop rule per row, then the step counter (after every row read it).
template <int = 0>  // a template: defined once however many TUs include this
__global__ void stop_and_advance(const float* values, long long rows, nn::StopRule rule, nn::StopState st, float* step) {
    const float t = *step;
    for (long long r = threadIdx.x; r < rows; r += blockDim.x) {
        st.history[static_cast<long long>(t) * rows + r] = values[r];
        nn::stop_update(rule, values[r], t, st.best[r], st.since[r], st.stopped_at[r], st.running[r]);
    }
    __syncthreads();
    if (threadIdx.x == 0) *step = t + 1.0f;
}

}  // namespace kernels

/// Calls launch(table, count) once per group of at most kMaxParamSegments segments: the segments
/// are independent (each kernel works on its own slice), so a generator tuner's 60+ parameter
/// tensors take a few launches instead of a limit on the model.
template <class Launch>
void for_each_segment_group(std::span<const nn::ParamSegment> segs, Launch&& launch) {
    for (std::size_t first = 0; first < segs.size(); first += kMaxParamSegments) {
        ParamSegmentTable t;
        const std::size_t last = std::min(segs.size(), first + kMaxParamSegments);
        for (std::size_t i = first; i < last; ++i) t.seg[t.count++] = segs[i];
        launch(t);
    }
}

inline void exploration_ws(const float* code, Index rows, Index code_dim, Index repeat, const nn::StepState& s,
                           std::uint64_t seed, float* ws, cudaStream_t stream) {
    launch_1d(kernels::exploration_ws<>, rows * code_dim, stream, code, static_cast<long long>(rows),
              static_cast<long long>(code_dim), static_cast<long long>(repeat), s,
              static_cast<unsigned long long>(seed), ws);
}

inline void adam_segments(std::span<const nn::ParamSegment> segs, Index rows, const nn::AdamConstants& c,
                          const nn::StepState& s, cudaStream_t stream) {
    if (segs.empty() || rows <= 0) return;
    GANINV_CHECK(rows <= 65535, ShapeError, "adam_segments: ", rows, " rows exceed the grid's 65535");
    Index longest = 0;
    for (const nn::ParamSegment& g : segs) longest = std::max(longest, g.row_len);
    for_each_segment_group(segs, [&](const ParamSegmentTable& t) {
        const dim3 grid(blocks_for(longest, 1024), static_cast<unsigned>(rows), static_cast<unsigned>(t.count));
        kernels::adam_segments<><<<grid, kBlock, 0, stream>>>(t, c, s);
        GANINV_CUDA_CHECK_LAUNCH();
    });
}

/// Scratch: 2 doubles per (segment, row, chunk) of each group, from `pool` (released
/// stream-ordered, so a captured step replays with the same block).
inline void renormalize_segments(std::span<const nn::ParamSegment> segs, Index rows, const nn::StepState& s,
                                 MemoryPool& pool, cudaStream_t stream) {
    if (segs.empty() || rows <= 0) return;
    GANINV_CHECK(rows <= 65535, ShapeError, "renormalize_segments: ", rows, " rows exceed the grid's 65535");
    Index longest = 0;
    for (const nn::ParamSegment& g : segs) longest = std::max(longest, g.row_len);
    const Index chunks = std::max<Index>(1, (longest + kernels::kRenormChunk - 1) / kernels::kRenormChunk);
    GANINV_CHECK(chunks <= 2147483647LL, ShapeError, "renormalize_segments: a row of ", longest, " values is too long");
    const std::size_t per_group = static_cast<std::size_t>(std::min<Index>(Index(segs.size()), kMaxParamSegments));
    const Block scratch = pool.allocate(sizeof(double) * 2 * per_group * static_cast<std::size_t>(rows * chunks));
    cudaError_t e = cudaSuccess;
    for_each_segment_group(segs, [&](const ParamSegmentTable& t) {
        const dim3 grid(static_cast<unsigned>(chunks), static_cast<unsigned>(rows), static_cast<unsigned>(t.count));
        for (int pass = 0; pass < 3 && e == cudaSuccess; ++pass) {
            kernels::renormalize_pass<><<<grid, kBlock, 0, stream>>>(t, s, pass, static_cast<double*>(scratch.ptr));
            e = cudaGetLastError();
        }
    });
    pool.release(scratch);
    GANINV_CUDA_CHECK(e);
}

inline void stop_and_advance(const float* values, Index rows, const nn::StopRule& rule, const nn::StopState& st,
                             float* step, cudaStream_t stream) {
    kernels::stop_and_advance<><<<1, kBlock, 0, stream>>>(values, static_cast<long long>(rows), rule, st, step);
    GANINV_CUDA_CHECK_LAUNCH();
}

}  // namespace ganinv::cuda
