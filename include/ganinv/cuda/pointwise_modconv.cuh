/// @file pointwise_modconv.cuh
/// @brief The 1x1 modulated conv with at most four output channels (StyleGAN2's ToRGB), forward
///        and backward, as two memory-bound kernels: a GEMM tile would leave 60 of 64 rows empty
///        and run the grad-input as a K = 3 product, so each thread instead walks the channels of
///        a few pixels. Arithmetic is FP32 in every precision mode (no tensor cores: it would save
///        nothing on a pass that is bound by reading x once).
///
///   forward:  y[n, o, p] = d[n, o] * sum_c w[o, c] s[n, c] x[n, c, p]   (+ fused noise/bias/act)
///   backward: t[c, p] = sum_o w[o, c] d[n, o] gy[n, o, p]
///             grad_x[n, c, p] (=|+=) s[n, c] t[c, p],   grad_s[n, c] += sum_p t x,
///             grad_w[o, c] += s[n, c] sum_n,p d[n, o] gy[n, o, p] x[n, c, p]
#pragma once

#include "ganinv/cuda/check.hpp"
#include "ganinv/cuda/conv_gemm.cuh"
#include "ganinv/cuda/gemm_core.cuh"
#include "ganinv/cuda/launch.cuh"
#include "ganinv/nn/bias_act.hpp"
#include "ganinv/nn/modconv_shape.hpp"

namespace ganinv::cuda {

constexpr int kPointwiseMaxOut = 4;    ///< output channels the kernels keep in registers
constexpr int kPointwiseMaxIn = 1024;  ///< input channels that fit the shared-memory tables

/// Whether modconv_forward / modconv_backward run `sh` on these kernels.
inline bool pointwise_modconv_eligible(const nn::ModConvShape& sh) {
    return sh.kernel == 1 && sh.up == 1 && sh.out_channels <= kPointwiseMaxOut && sh.in_channels <= kPointwiseMaxIn;
}

/// The noise + bias + activation that follow a synthesis conv, fused into its last pass.
struct ModconvFusedEpilogue {
    float* out = nullptr;  ///< [N, O, OH, OW]: bias_act(y + strength * noise + bias)
    const float* noise = nullptr;  ///< [N or 1, OH, OW] or null
    bool noise_per_sample = false;
    const float* strength = nullptr;
    const float* bias = nullptr;
    nn::BiasActParams act{};
};

namespace kernels {

/// Grid (pixel tiles, N); dynamic shared memory O * C floats (w * s of this sample) + one
/// partial sum per (group, pixel slot, output) for the reduction over the channel groups.
template <int O>
__global__ void __launch_bounds__(kBlock) pointwise_modconv_forward(const float* __restrict__ x, const float* __restrict__ w,
                                                                    const float* __restrict__ s, const float* __restrict__ d,
                                                                    int C, long long P, int groups, float* __restrict__ y,
                                                                    ModconvFusedEpilogue epi) {
    extern __shared__ float sm[];
    float* ws = sm;                // [O][C]
    float* part = sm + O * C;      // [groups][tile][O]
    const int n = blockIdx.y;
    for (int i = threadIdx.x; i < O * C; i += blockDim.x) ws[i] = w[i] * s[static_cast<long long>(n) * C + i % C];
    __syncthreads();
    const PixelChannelSplit split(groups);
    const float* xs = x + static_cast<long long>(n) * C * P;
    float acc[kPixelsPerLane][O] = {};
#pragma unroll 4
    for (int c = split.group; c < C; c += groups) {
        float v[kPixelsPerLane];
#pragma unroll
        for (int i = 0; i < kPixelsPerLane; ++i) {
            const long long p = split.pixel(i);
            v[i] = p < P ? xs[c * P + p] : 0.0f;
        }
#pragma unroll
        for (int o = 0; o < O; ++o) {
            const float wv = ws[o * C + c];
#pragma unroll
            for (int i = 0; i < kPixelsPerLane; ++i) acc[i][o] = fmaf(wv, v[i], acc[i][o]);
        }
    }
    if (groups > 1) {
#pragma unroll
        for (int i = 0; i < kPixelsPerLane; ++i)
#pragma unroll
            for (int o = 0; o < O; ++o) part[(split.group * split.tile + split.slot_of(i)) * O + o] = acc[i][o];
        __syncthreads();
        if (split.group != 0) return;
#pragma unroll
        for (int i = 0; i < kPixelsPerLane; ++i)
            for (int g = 1; g < groups; ++g)
#pragma unroll
                for (int o = 0; o < O; ++o) acc[i][o] += part[(g * split.tile + split.slot_of(i)) * O + o];
    }
#pragma unroll
    for (int i = 0; i < kPixelsPerLane; ++i) {
        const long long p = split.pixel(i);
        if (p >= P) continue;
        const float nz = epi.out && epi.noise ? *epi.strength * epi.noise[(epi.noise_per_sample ? n * P : 0) + p] : 0.0f;
#pragma unroll
        for (int o = 0; o < O; ++o) {
            const float v = acc[i][o] * (d ? d[n * O + o] : 1.0f);
            const long long idx = (static_cast<long long>(n) * O + o) * P + p;
            y[idx] = v;
            if (epi.out) epi.out[idx] = gemm::apply_bias_act(v + nz + (epi.bias ? epi.bias[o] : 0.0f), epi.act);
        }
    }
}

/// Grid (pixel tiles, N); dynamic shared memory (O + 1 + O) * C floats: w, the block's grad_s
/// sums and (with grad_w) its weight-gradient sums. The channel groups need no reduction here
/// (each channel's gradient is its own), nor do channel chunks across blocks (gridDim.z); grad_s
/// and grad_w accumulate with atomics.
template <int O>
__global__ void __launch_bounds__(kBlock) pointwise_modconv_backward(
    const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ s, const float* __restrict__ d,
    const float* __restrict__ gy, int C, long long P, int groups, float* grad_x, bool accumulate,
    float* __restrict__ grad_s, float* __restrict__ grad_w) {
    extern __shared__ float sm[];
    float* wt = sm;              // [O][C]
    float* red_s = sm + O * C;   // [C]
    float* red_w = red_s + C;    // [O][C], only with grad_w
    const int n = blockIdx.y;
    for (int i = threadIdx.x; i < O * C; i += blockDim.x) wt[i] = w[i];
    for (int i = threadIdx.x; i < (grad_w ? O + 1 : 1) * C; i += blockDim.x) red_s[i] = 0.0f;
    __syncthreads();
    const PixelChannelSplit split(groups);
    float g[kPixelsPerLane][O];
#pragma unroll
    for (int i = 0; i < kPixelsPerLane; ++i) {
        const long long p = split.pixel(i);
#pragma unroll
        for (int o = 0; o < O; ++o)
            g[i][o] = p < P ? gy[(static_cast<long long>(n) * O + o) * P + p] * (d ? d[n * O + o] : 1.0f) : 0.0f;
    }
    const long long base = static_cast<long long>(n) * C * P;
    const int lane = threadIdx.x % 32;
#pragma unroll 2
    for (int c = PixelChannelSplit::chunk_first(C) + split.group; c < PixelChannelSplit::chunk_last(C); c += groups) {
        const float sc = s[static_cast<long long>(n) * C + c];
        float part = 0.0f, pw[O] = {};
#pragma unroll
        for (int i = 0; i < kPixelsPerLane; ++i) {
            const long long p = split.pixel(i);
            if (p >= P) continue;
            float t = 0.0f;
#pragma unroll
            for (int o = 0; o < O; ++o) t = fmaf(wt[o * C + c], g[i][o], t);
            const long long idx = base + c * P + p;
            const float xv = x[idx];
            if (grad_x) grad_x[idx] = accumulate ? grad_x[idx] + t * sc : t * sc;
            part = fmaf(t, xv, part);
            if (grad_w) {
#pragma unroll
                for (int o = 0; o < O; ++o) pw[o] = fmaf(g[i][o], xv, pw[o]);
            }
        }
        part = warp_sum(part);
        if (lane == 0) atomicAdd(&red_s[c], part);
        if (grad_w) {
#pragma unroll
            for (int o = 0; o < O; ++o) {
                const float v = warp_sum(pw[o]);
                if (lane == 0) atomicAdd(&red_w[o * C + c], v * sc);
            }
        }
    }
    __syncthreads();
    for (int c = threadIdx.x; c < C; c += blockDim.x) atomicAdd(&grad_s[static_cast<long long>(n) * C + c], red_s[c]);
    if (grad_w)
        for (int i = threadIdx.x; i < O * C; i += blockDim.x) atomicAdd(&grad_w[i], red_w[i]);
}

}  // namespace kernels

namespace detail {

template <template <int> class Launch, class... Args>
void with_pointwise_out(int O, Args&&... args) {
    switch (O) {
        case 1: return Launch<1>::run(args...);
        case 2: return Launch<2>::run(args...);
        case 3: return Launch<3>::run(args...);
        case 4: return Launch<4>::run(args...);
        default: throw ValueError(concat("pointwise modconv: ", O, " output channels (at most ", kPointwiseMaxOut, ")"));
    }
}

inline dim3 pointwise_grid(const nn::ModConvShape& sh, int groups) {
    const long long P = sh.in_h * sh.in_w, tile = pixel_tile(groups);
    GANINV_CHECK(sh.batch <= 65535 && (P + tile - 1) / tile < (1LL << 31), ShapeError, "pointwise modconv: batch ",
                 sh.batch, " or plane ", P, " exceeds the grid limits");
    return dim3(static_cast<unsigned>((P + tile - 1) / tile), static_cast<unsigned>(sh.batch));
}

template <int O>
struct PointwiseForward {
    static void run(const float* x, const float* w, const float* s, const float* d, const nn::ModConvShape& sh, float* y,
                    const ModconvFusedEpilogue& epi, cudaStream_t stream) {
        const int C = static_cast<int>(sh.in_channels), groups = channel_groups(C);
        const std::size_t smem = sizeof(float) * O * (C + (groups > 1 ? groups * pixel_tile(groups) : 0));
        kernels::pointwise_modconv_forward<O><<<pointwise_grid(sh, groups), kBlock, smem, stream>>>(
            x, w, s, d, C, sh.in_h * sh.in_w, groups, y, epi);
        GANINV_CUDA_CHECK_LAUNCH();
    }
};

template <int O>
struct PointwiseBackward {
    static void run(const float* x, const float* w, const float* s, const float* d, const float* gy,
                    const nn::ModConvShape& sh, float* grad_x, bool accumulate, float* grad_s, float* grad_w,
                    int num_sms, cudaStream_t stream) {
        const int C = static_cast<int>(sh.in_channels), groups = channel_groups(C);
        const std::size_t smem = sizeof(float) * (O + 1 + (grad_w ? O : 0)) * C;
        dim3 grid = pointwise_grid(sh, groups);
        grid.z = static_cast<unsigned>(channel_chunks(Index{grid.x} * grid.y, C, groups, num_sms));
        kernels::pointwise_modconv_backward<O><<<grid, kBlock, smem, stream>>>(
            x, w, s, d, gy, C, sh.in_h * sh.in_w, groups, grad_x, accumulate, grad_s, grad_w);
        GANINV_CUDA_CHECK_LAUNCH();
    }
};

}  // namespace detail

/// y (and epi.out) of a pointwise_modconv_eligible shape; d may be null (no demodulation).
inline void pointwise_modconv_forward(const float* x, const float* w, const float* s, const float* d,
                                      const nn::ModConvShape& sh, float* y, const ModconvFusedEpilogue& epi,
                                      cudaStream_t stream) {
    detail::with_pointwise_out<detail::PointwiseForward>(static_cast<int>(sh.out_channels), x, w, s, d, sh, y, epi, stream);
}

/// grad_x (overwritten, or accumulated into with `accumulate`; may be null), grad_s (accumulates:
/// zero it first) and grad_w (may be null; accumulates) of a pointwise_modconv_eligible shape.
/// The demodulation terms of the gradients are not included (modconv_backward adds them).
inline void pointwise_modconv_backward(const float* x, const float* w, const float* s, const float* d, const float* gy,
                                       const nn::ModConvShape& sh, float* grad_x, bool accumulate, float* grad_s,
                                       float* grad_w, int num_sms, cudaStream_t stream) {
    detail::with_pointwise_out<detail::PointwiseBackward>(static_cast<int>(sh.out_channels), x, w, s, d, gy, sh, grad_x,
                                                          accumulate, grad_s, grad_w, num_sms, stream);
}

}  // namespace ganinv::cuda
