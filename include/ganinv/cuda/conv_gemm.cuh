/// @file conv_gemm.cuh
/// @brief Implicit-GEMM convolution kernel shared by the modulated-conv forward pass and its
///        gradient w.r.t. the input: C[m, p] = sum_k A[m, k] * B[k, p] per sample, where A is a
///        dense weight matrix and B gathers activations through the convolution taps (zero
///        padding, stride, per-channel scale) without ever building an im2col buffer.
///
///   forward, up = 1:   m = out channel, k = (in channel, tap), p = output pixel
///   forward, up = 2:   one launch per output phase (Y % 2, X % 2) of the stride-2 transposed
///                      conv; k runs over the taps that reach that phase only (no zero MACs)
///   grad input:        m = in channel, k = (out channel, tap), p = input pixel
/// Two epilogues: FwdEpilogue (demodulation scale, optional fused noise + bias + activation)
/// and BwdDataEpilogue (x the style, and the style gradient sum(grad * x) reduced in place).
#pragma once

#include "ganinv/cuda/check.hpp"
#include "ganinv/cuda/gemm_core.cuh"
#include "ganinv/nn/bias_act.hpp"

#include <cstdint>

namespace ganinv::cuda::gemm {

/// Dense row-major A[M][K] (+ n * sample_stride for per-sample weights).
struct DenseA {
    const float* ptr = nullptr;
    long long sample_stride = 0;
    int ld = 0;
};

/// B[k, p] = src[n, c, oy * stride + dy, ox * stride + dx] * scale[n, c] (0 outside the source),
/// with k = c * T + j, tap j = (jy, jx) = (j / ntx, j % ntx), dy = ay + by * jy, dx = ax + bx * jx,
/// and p = oy * OW + ox over the OH x OW output grid.
struct ConvGeom {
    const float* src = nullptr;
    const float* scale = nullptr;  ///< [batch][C] or null
    int C = 0, SH = 0, SW = 0;     ///< source channels and plane
    int OH = 0, OW = 0;            ///< output grid (GEMM N = OH * OW)
    int T = 1, ntx = 1;            ///< taps per channel, taps along x
    int ay = 0, by = 1, ax = 0, bx = 1;
    int stride = 1;
};

struct DenseALoader {
    static constexpr TileMap kMap = TileMap::col4;
    const float* row;
    bool ok, vec;
    int K;
    __device__ DenseALoader(const DenseA& a, int n, int m0, int M, int K_) : K(K_) {
        const int m = m0 + static_cast<int>(threadIdx.x) / 4;
        ok = m < M;
        row = a.ptr + n * a.sample_stride + static_cast<long long>(ok ? m : 0) * a.ld;
        vec = a.ld % 4 == 0 && a.sample_stride % 4 == 0 && reinterpret_cast<std::uintptr_t>(a.ptr) % 16 == 0;
    }
    __device__ void load(int k0, float (&r)[4]) const {
        const int k = k0 + (threadIdx.x % 4) * 4;
        if (vec && ok && k + 3 < K) {  // one 16-byte load
            const float4 v = __ldg(reinterpret_cast<const float4*>(row + k));
            r[0] = v.x, r[1] = v.y, r[2] = v.z, r[3] = v.w;
            return;
        }
#pragma unroll
        for (int j = 0; j < 4; ++j) r[j] = (ok && k + j < K) ? __ldg(row + k + j) : 0.0f;
    }
};

/// Taps per channel a conv GEMM supports (k x k up to 8 x 8); their offsets live in shared memory.
constexpr int kMaxTaps = 64;

/// Stateful: consecutive load() calls must advance k0 by kBK (the main loop does), so the
/// (channel, tap) of the thread's k row is stepped, not divided out, every tile.
struct ConvGatherB {
    static constexpr TileMap kMap = TileMap::row4;
    ConvGeom g;
    const float* base;
    const float* scale;
    const int2* taps;  ///< (dy, dx) per tap, in shared memory
    int K, c = 0, t = 0, cq, tq;
    bool started = false;
    int iy[4], ix[4];
    bool valid[4];
    __device__ ConvGatherB(const ConvGeom& geom, int n, int n0, int K_, const int2* tap_table)
        : g(geom), taps(tap_table), K(K_) {
        base = g.src + static_cast<long long>(n) * g.C * g.SH * g.SW;
        scale = g.scale ? g.scale + static_cast<long long>(n) * g.C : nullptr;
        cq = kBK / g.T;
        tq = kBK - cq * g.T;
        const int p = n0 + (threadIdx.x % 16) * 4;
        int oy = p / g.OW, ox = p - oy * g.OW;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            valid[j] = p + j < g.OH * g.OW;
            iy[j] = oy * g.stride;
            ix[j] = ox * g.stride;
            if (++ox == g.OW) {
                ox = 0;
                ++oy;
            }
        }
    }
    /// Fills taps[0, T) with the (dy, dx) of every tap; call from all threads, then __syncthreads().
    __device__ static void fill_taps(const ConvGeom& g, int2* taps) {
        for (int i = threadIdx.x; i < g.T; i += blockDim.x) {
            const int jy = i / g.ntx, jx = i - jy * g.ntx;
            taps[i] = make_int2(g.ay + g.by * jy, g.ax + g.bx * jx);
        }
    }
    __device__ void load(int k0, float (&r)[4]) {
        const int k = k0 + static_cast<int>(threadIdx.x) / 16;
        if (!started) {
            c = k / g.T;
            t = k - c * g.T;
            started = true;
        } else {
            c += cq;
            t += tq;
            if (t >= g.T) {
                t -= g.T;
                ++c;
            }
        }
        if (k >= K) {
#pragma unroll
            for (int j = 0; j < 4; ++j) r[j] = 0.0f;
            return;
        }
        const int2 d = taps[t];
        const float* plane = base + static_cast<long long>(c) * g.SH * g.SW;
        const float sc = scale ? __ldg(scale + c) : 1.0f;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int y = iy[j] + d.x, x = ix[j] + d.y;
            const bool in = valid[j] && static_cast<unsigned>(y) < static_cast<unsigned>(g.SH) &&
                            static_cast<unsigned>(x) < static_cast<unsigned>(g.SW);
            r[j] = in ? __ldg(plane + y * g.SW + x) * sc : 0.0f;
        }
    }
};

__device__ __forceinline__ float apply_bias_act(float v, const nn::BiasActParams& p) {
    if (p.act == nn::Activation::lrelu && v < 0.0f) v *= p.alpha;
    v *= p.gain;
    if (p.clamp >= 0.0f) v = fminf(fmaxf(v, -p.clamp), p.clamp);
    return v;
}

/// Forward: out[n, m, oy * ostride + oy0, ox * ostride + ox0] = acc * dscale[n, m]. With `out2`
/// (up = 1, no split-K only): out2 = bias_act(out + strength * noise + bias) in the same pass.
struct FwdEpilogue {
    float* out = nullptr;
    int M = 0, OH = 0, OW = 0;
    int outH = 0, outW = 0, ostride = 1, oy0 = 0, ox0 = 0;
    const float* dscale = nullptr;
    bool atomic = false;
    float* out2 = nullptr;
    const float* noise = nullptr;
    bool noise_per_sample = false;
    const float* strength = nullptr;
    const float* bias = nullptr;
    nn::BiasActParams act{};

    template <Precision P>
    __device__ void apply(const Acc& acc, int n, int m0, int n0) const {
        const int N = OH * OW;
        const float st = (out2 && noise) ? *strength : 0.0f;
#pragma unroll
        for (int e = 0; e < 16; ++e) {
            int mi, ni;
            Math<P>::coord(e, mi, ni);
            const int m = m0 + mi, p = n0 + ni;
            if (m >= M || p >= N) continue;
            const float v = acc.v[e] * (dscale ? dscale[n * M + m] : 1.0f);
            const int oy = p / OW, ox = p - oy * OW;
            const long long idx = (static_cast<long long>(n) * M + m) * outH * outW +
                                  static_cast<long long>(oy * ostride + oy0) * outW + ox * ostride + ox0;
            if (atomic) {
                atomicAdd(out + idx, v);
            } else {
                out[idx] = v;
                if (out2) {
                    float u = v;
                    if (noise) u += st * noise[(noise_per_sample ? static_cast<long long>(n) * N : 0) + p];
                    if (bias) u += bias[m];
                    out2[idx] = apply_bias_act(u, act);
                }
            }
        }
    }
};

/// Grad input: grad_x[n, m, p] = acc * s[n, m] (when grad_x), grad_s[n, m] += sum_p acc * x[n, m, p].
struct BwdDataEpilogue {
    float* grad_x = nullptr;
    const float* s = nullptr;
    const float* x = nullptr;
    float* grad_s = nullptr;
    int M = 0, N = 0;
    bool atomic = false;

    template <Precision P>
    __device__ void apply(const Acc& acc, int n, int m0, int n0) const {
        __shared__ float red[kBM];
        if (threadIdx.x < kBM) red[threadIdx.x] = 0.0f;
        __syncthreads();
#pragma unroll
        for (int e = 0; e < 16; ++e) {
            int mi, ni;
            Math<P>::coord(e, mi, ni);
            const int m = m0 + mi, p = n0 + ni;
            if (m >= M || p >= N) continue;
            const long long idx = (static_cast<long long>(n) * M + m) * N + p;
            const float v = acc.v[e];
            if (grad_x) {
                const float gx = v * s[n * M + m];
                if (atomic) atomicAdd(grad_x + idx, gx);
                else grad_x[idx] = gx;
            }
            atomicAdd(&red[mi], v * x[idx]);
        }
        __syncthreads();
        if (threadIdx.x < kBM && m0 + static_cast<int>(threadIdx.x) < M)
            atomicAdd(grad_s + n * M + m0 + threadIdx.x, red[threadIdx.x]);
    }
};

template <Precision P, class Epi>
__global__ void __launch_bounds__(kThreads) conv_gemm_kernel(DenseA a, ConvGeom g, Epi epi, int M, int K,
                                                             int splits, int tiles_per_split) {
    __shared__ Smem sm;
    const int split = static_cast<int>(blockIdx.z) % splits, n = static_cast<int>(blockIdx.z) / splits;
    const int m0 = static_cast<int>(blockIdx.y) * kBM, n0 = static_cast<int>(blockIdx.x) * kBN;
    const int kb = split * tiles_per_split * kBK;
    const int ke = min(K, kb + tiles_per_split * kBK);
    if (kb >= ke) return;
    __shared__ int2 taps[kMaxTaps];
    ConvGatherB::fill_taps(g, taps);
    __syncthreads();
    DenseALoader la(a, n, m0, M, K);
    ConvGatherB lb(g, n, n0, K, taps);
    Acc acc;
#pragma unroll
    for (int e = 0; e < 16; ++e) acc.v[e] = 0.0f;
    mainloop<P>(la, lb, kb, ke, acc, sm);
    epi.template apply<P>(acc, n, m0, n0);
}

/// Launches conv_gemm_kernel for `batch` samples: C[M, OH*OW] per sample, K = g.C * g.T.
template <class Epi>
void launch_conv_gemm(Precision prec, const DenseA& a, const ConvGeom& g, const Epi& epi, int batch, int M,
                      const SplitK& sk, cudaStream_t stream) {
    const int K = g.C * g.T;
    const long long N = static_cast<long long>(g.OH) * g.OW;
    GANINV_CHECK(M > 0 && K > 0 && N > 0 && batch > 0, ShapeError, "conv GEMM: empty problem");
    GANINV_CHECK(g.T <= kMaxTaps, ValueError, "conv GEMM: ", g.T, " taps per channel (at most ", kMaxTaps,
                 ", a kernel of 8 x 8) are not supported by the CUDA kernels");
    GANINV_CHECK((M + kBM - 1) / kBM <= 65535 && static_cast<long long>(batch) * sk.splits <= 65535, ShapeError,
                 "conv GEMM: ", M, " rows x ", batch, " samples x ", sk.splits, " k-slices exceed the grid limits");
    const dim3 grid(static_cast<unsigned>((N + kBN - 1) / kBN), static_cast<unsigned>((M + kBM - 1) / kBM),
                    static_cast<unsigned>(batch * sk.splits));
    switch (prec) {
        case Precision::fp32:
            conv_gemm_kernel<Precision::fp32, Epi><<<grid, kThreads, 0, stream>>>(a, g, epi, M, K, sk.splits, sk.tiles_per_split);
            break;
        case Precision::tf32:
            conv_gemm_kernel<Precision::tf32, Epi><<<grid, kThreads, 0, stream>>>(a, g, epi, M, K, sk.splits, sk.tiles_per_split);
            break;
        case Precision::bf16:
            conv_gemm_kernel<Precision::bf16, Epi><<<grid, kThreads, 0, stream>>>(a, g, epi, M, K, sk.splits, sk.tiles_per_split);
            break;
    }
    GANINV_CUDA_CHECK_LAUNCH();
}

}  // namespace ganinv::cuda::gemm
