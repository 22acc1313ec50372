/// @file upfirdn2d.cuh
/// @brief upfirdn2d on the GPU (up-sample by zero insertion, pad/crop, 2-D FIR, down-sample),
///        forward as a gather per output pixel and its exact adjoint as a gather per input pixel,
///        with the same index arithmetic as nn::upfirdn2d_forward/backward. Options used by the
///        modulated conv: a per-plane scale, and (forward) a fused noise + bias + activation
///        epilogue writing a second output.
#pragma once

#include "ganinv/cuda/conv_gemm.cuh"
#include "ganinv/cuda/launch.cuh"
#include "ganinv/nn/upfirdn2d.hpp"

#include <algorithm>

namespace ganinv::cuda {

struct FirGeom {
    int in_h = 0, in_w = 0, out_h = 0, out_w = 0, fh = 0, fw = 0;
    int up = 1, down = 1, pad_x0 = 0, pad_y0 = 0;
    float gain = 1.0f;
    bool flip = false;

    static FirGeom make(Index in_h, Index in_w, Index fh, Index fw, const nn::Upfirdn2dParams& p) {
        p.validate(in_h, in_w, fh, fw);
        FirGeom g;
        g.in_h = static_cast<int>(in_h);
        g.in_w = static_cast<int>(in_w);
        g.out_h = static_cast<int>(p.out_h(in_h, fh));
        g.out_w = static_cast<int>(p.out_w(in_w, fw));
        g.fh = static_cast<int>(fh);
        g.fw = static_cast<int>(fw);
        g.up = p.up;
        g.down = p.down;
        g.pad_x0 = p.pad_x0;
        g.pad_y0 = p.pad_y0;
        g.gain = p.gain;
        g.flip = p.flip_filter;
        return g;
    }
};

/// Extras of the forward pass: y *= plane_scale[plane]; out2 = act(y + strength * noise + bias[c]).
struct FirEpilogue {
    const float* plane_scale = nullptr;
    int channels = 1;  ///< planes = batch * channels (for bias and noise indexing)
    float* out2 = nullptr;
    const float* noise = nullptr;
    bool noise_per_sample = false;
    const float* strength = nullptr;
    const float* bias = nullptr;
    nn::BiasActParams act{};
};

/// A 4x4 stencil with zero padding: out[y][x] = sum_{a,b} w[a][b] * in[y + a - py][x + b - px].
/// The forward FIR without resampling is one (w[a][b] = gain * the filter, flipped unless `flip`),
/// and so is its adjoint (the filter turned by 180 degrees, py = 3 - pad_y0): `adjoint` picks the
/// tap order (nn::fir4_stencil_tap, checked on the CPU by test_nn), read from the device filter `f`
/// when the kernel starts.
struct Stencil4 {
    const float* f = nullptr;
    float gain = 1.0f;
    bool flip = false, adjoint = false;
    int py = 0, px = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;

    __host__ __device__ int tap(int a, int b) const { return nn::fir4_stencil_tap(flip, adjoint, a, b); }
};
inline constexpr int kFirTileW = 32, kFirRowsPerThread = 8, kFirTileH = 8 * kFirRowsPerThread;

namespace kernels {

/// Grid: (pixel blocks, planes), both grid-strided. UP / DOWN: compile-time factors, KF: a
/// compile-time square filter size (0 = all from the geometry at run time). The plane comes from
/// the grid so that no thread divides 64-bit indices, and with KF the taps unroll: the generic
/// form spent its time on index arithmetic (0.76 ms for a 1024^2 x 32-channel FIR on an H100).
template <int UP, int DOWN, int KF, class T = float>
__global__ void upfirdn2d_fwd(const T* x, int planes, FirGeom g, const float* f, FirEpilogue epi, float* y) {
    const int up = UP ? UP : g.up, down = DOWN ? DOWN : g.down;
    const int fh = KF ? KF : g.fh, fw = KF ? KF : g.fw;
    const int out_hw = g.out_h * g.out_w;
    const int up_h = g.in_h * up, up_w = g.in_w * up;
    for (int plane = blockIdx.y; plane < planes; plane += gridDim.y)
    for (int o = blockIdx.x * blockDim.x + threadIdx.x; o < out_hw; o += gridDim.x * blockDim.x) {
        const long long i = static_cast<long long>(plane) * out_hw + o;
        const int oy = o / g.out_w, ox = o - oy * g.out_w;
        const T* xp = x + static_cast<long long>(plane) * g.in_h * g.in_w;
        float acc = 0.0f;
#pragma unroll
        for (int a = 0; a < fh; ++a) {
            const int uy = oy * down + a - g.pad_y0;
            if (uy < 0 || uy >= up_h || uy % up != 0) continue;
            const int iy = uy / up, ka = g.flip ? a : fh - 1 - a;
#pragma unroll
            for (int b = 0; b < fw; ++b) {
                const int ux = ox * down + b - g.pad_x0;
                if (ux < 0 || ux >= up_w || ux % up != 0) continue;
                const int kb = g.flip ? b : fw - 1 - b;
                acc += f[ka * fw + kb] * g.gain * xp[iy * g.in_w + ux / up];
            }
        }
        if (epi.plane_scale) acc *= epi.plane_scale[plane];
        y[i] = acc;
        if (epi.out2) {
            const int n = plane / epi.channels, c = plane - n * epi.channels;
            float u = acc;
            if (epi.noise) u += *epi.strength * epi.noise[(epi.noise_per_sample ? static_cast<long long>(n) * out_hw : 0) + o];
            if (epi.bias) u += epi.bias[c];
            epi.out2[i] = gemm::apply_bias_act(u, epi.act);
        }
    }
}

/// gx = adjoint(gy) * plane_scale[plane] (overwrites gx). Grid and templates as the forward.
template <int UP, int DOWN, int KF, class T = float>
__global__ void upfirdn2d_bwd(const T* gy, int planes, FirGeom g, const float* f, const float* plane_scale, float* gx) {
    const int up = UP ? UP : g.up, down = DOWN ? DOWN : g.down;
    const int fh = KF ? KF : g.fh, fw = KF ? KF : g.fw;
    const int in_hw = g.in_h * g.in_w, out_hw = g.out_h * g.out_w;
    for (int plane = blockIdx.y; plane < planes; plane += gridDim.y)
    for (int q = blockIdx.x * blockDim.x + threadIdx.x; q < in_hw; q += gridDim.x * blockDim.x) {
        const long long i = static_cast<long long>(plane) * in_hw + q;
        const int iy = q / g.in_w, ix = q - iy * g.in_w;
        const T* gp = gy + static_cast<long long>(plane) * out_hw;
        float acc = 0.0f;
#pragma unroll
        for (int a = 0; a < fh; ++a) {
            const int ty = iy * up + g.pad_y0 - a;  // = oy * down
            if (ty < 0 || ty % down != 0) continue;
            const int oy = ty / down;
            if (oy >= g.out_h) continue;
            const int ka = g.flip ? a : fh - 1 - a;
#pragma unroll
            for (int b = 0; b < fw; ++b) {
                const int tx = ix * up + g.pad_x0 - b;
                if (tx < 0 || tx % down != 0) continue;
                const int ox = tx / down;
                if (ox >= g.out_w) continue;
                const int kb = g.flip ? b : fw - 1 - b;
                acc += f[ka * fw + kb] * g.gain * gp[oy * g.out_w + ox];
            }
        }
        gx[i] = plane_scale ? acc * plane_scale[plane] : acc;
    }
}


/// grid (tiles x, tiles y, planes), block (32, 8): a 32 x 64 output tile from a (64 + 3) x (32 + 3)
/// input tile in shared memory; thread (x, y) computes the 8 outputs of column x, rows 8y..8y+7,
/// from 11 x 4 values it reads once (each value feeds up to 16 taps). Taps add up in the order of
/// upfirdn2d_fwd/bwd (rows, then columns), so the results equal theirs. The gather kernels above
/// load every tap and every filter value per output: 0.43 ms for the 1024^2 x 32-channel FIR on
/// an H100, ~0.9 TB/s; this one reads each input value from memory about once.
/// Forward: y = acc * plane_scale, out2 = act(y + noise + bias) (FirEpilogue); adjoint: gx = acc * plane_scale.
template <int = 0>  // a template: defined once however many TUs include this
__global__ void __launch_bounds__(256) fir4_tiled(const float* in, Stencil4 s, FirEpilogue epi, const float* plane_scale,
                                                  float* out) {
    constexpr int TW = kFirTileW, R = kFirRowsPerThread, TH = kFirTileH;
    __shared__ float tile[TH + 3][TW + 3];
    const int plane = blockIdx.z, x0 = blockIdx.x * TW, y0 = blockIdx.y * TH;
    const float* src = in + static_cast<long long>(plane) * s.in_h * s.in_w;
    for (int i = threadIdx.y * TW + threadIdx.x; i < (TH + 3) * (TW + 3); i += TW * 8) {
        const int r = i / (TW + 3), c = i - r * (TW + 3);
        const int iy = y0 + r - s.py, ix = x0 + c - s.px;
        tile[r][c] = iy >= 0 && iy < s.in_h && ix >= 0 && ix < s.in_w ? src[iy * s.in_w + ix] : 0.0f;
    }
    __syncthreads();
    const int tx = threadIdx.x, ty = threadIdx.y * R, ox = x0 + tx;
    if (ox >= s.out_w) return;
    float w[4][4];
#pragma unroll
    for (int a = 0; a < 4; ++a)
#pragma unroll
        for (int b = 0; b < 4; ++b) w[a][b] = s.f[s.tap(a, b)] * s.gain;
    float v[R + 3][4];
#pragma unroll
    for (int j = 0; j < R + 3; ++j)
#pragma unroll
        for (int b = 0; b < 4; ++b) v[j][b] = tile[ty + j][tx + b];
    const float scale = plane_scale ? plane_scale[plane] : 1.0f;
    const int out_hw = s.out_h * s.out_w;
    const int n = plane / epi.channels, c = plane - n * epi.channels;
#pragma unroll
    for (int r = 0; r < R; ++r) {
        const int oy = y0 + ty + r;
        if (oy >= s.out_h) break;
        float acc = 0.0f;
#pragma unroll
        for (int a = 0; a < 4; ++a)
#pragma unroll
            for (int b = 0; b < 4; ++b) acc += w[a][b] * v[r + a][b];
        if (plane_scale) acc *= scale;
        const int o = oy * s.out_w + ox;
        const long long i = static_cast<long long>(plane) * out_hw + o;
        out[i] = acc;
        if (epi.out2) {
            float u = acc;
            if (epi.noise) u += *epi.strength * epi.noise[(epi.noise_per_sample ? static_cast<long long>(n) * out_hw : 0) + o];
            if (epi.bias) u += epi.bias[c];
            epi.out2[i] = gemm::apply_bias_act(u, epi.act);
        }
    }
}

}  // namespace kernels

namespace detail {
inline void check_fir_size(Index planes, const FirGeom& g) {
    const Index big = Index{1} << 31;
    GANINV_CHECK(planes < big && Index{g.in_h} * g.in_w < big && Index{g.out_h} * g.out_w < big, ShapeError,
                 "upfirdn2d: ", planes, " planes of ", g.in_h, "x", g.in_w, " exceed the 32-bit plane indexing");
}
}  // namespace detail

namespace detail {
/// Launches kernel<UP, DOWN, KF> for the geometry's factors (1/2 compile-time, others at run
/// time) and a compile-time 4x4 filter (the [1,3,3,1] resampling filter) where it applies.
template <template <int, int, int, class> class K, class... Args>
void launch_fir(const FirGeom& g, Index planes, Index pixels, cudaStream_t stream, Args&&... args) {
    if (planes <= 0 || pixels <= 0) return;
    const dim3 grid(blocks_for(pixels, 4096), static_cast<unsigned>(std::min<Index>(planes, 65535)));
    const bool f4 = g.fh == 4 && g.fw == 4;
    auto go = [&](auto kernel) {
        kernel<<<grid, kBlock, 0, stream>>>(std::forward<Args>(args)...);
        GANINV_CUDA_CHECK_LAUNCH();
    };
    if (g.up == 1 && g.down == 1) f4 ? go(K<1, 1, 4, float>::fn) : go(K<1, 1, 0, float>::fn);
    else if (g.up == 2 && g.down == 1) f4 ? go(K<2, 1, 4, float>::fn) : go(K<2, 1, 0, float>::fn);
    else if (g.up == 1 && g.down == 2) f4 ? go(K<1, 2, 4, float>::fn) : go(K<1, 2, 0, float>::fn);
    else go(K<0, 0, 0, float>::fn);
}
template <int UP, int DOWN, int KF, class T>
struct FirForward {
    static constexpr auto fn = kernels::upfirdn2d_fwd<UP, DOWN, KF, T>;
};
template <int UP, int DOWN, int KF, class T>
struct FirBackward {
    static constexpr auto fn = kernels::upfirdn2d_bwd<UP, DOWN, KF, T>;
};
}  // namespace detail

namespace detail {
/// Whether the tiled 4x4 stencil takes this FIR: no resampling, a 4x4 filter, planes that fit the
/// grid, and outputs of at least one tile's width (smaller planes stay on the gather kernels).
inline bool fir4_tiled_applies(const FirGeom& g, Index planes) {
    return g.up == 1 && g.down == 1 && g.fh == 4 && g.fw == 4 && planes <= 65535 && g.out_w >= kFirTileW && g.out_h >= 8;
}
inline void launch_fir4_tiled(const float* in, Index planes, const Stencil4& s, const FirEpilogue& epi,
                              const float* plane_scale, float* out, cudaStream_t stream) {
    const dim3 grid(static_cast<unsigned>((s.out_w + kFirTileW - 1) / kFirTileW),
                    static_cast<unsigned>((s.out_h + kFirTileH - 1) / kFirTileH), static_cast<unsigned>(planes));
    kernels::fir4_tiled<><<<grid, dim3(kFirTileW, 8), 0, stream>>>(in, s, epi, plane_scale, out);
    GANINV_CUDA_CHECK_LAUNCH();
}
}  // namespace detail

inline void upfirdn2d_forward(const float* x, Index planes, const FirGeom& g, const float* f, float* y,
                              cudaStream_t stream, const FirEpilogue& epi = {}) {
    detail::check_fir_size(planes, g);
    if (detail::fir4_tiled_applies(g, planes)) {
        const Stencil4 s{f, g.gain, g.flip, false, g.pad_y0, g.pad_x0, g.in_h, g.in_w, g.out_h, g.out_w};
        detail::launch_fir4_tiled(x, planes, s, epi, epi.plane_scale, y, stream);
        return;
    }
    detail::launch_fir<detail::FirForward>(g, planes, Index{g.out_h} * g.out_w, stream, x, static_cast<int>(planes), g,
                                           f, epi, y);
}

inline void upfirdn2d_backward(const float* gy, Index planes, const FirGeom& g, const float* f, float* gx,
                               cudaStream_t stream, const float* plane_scale = nullptr) {
    detail::check_fir_size(planes, g);
    if (detail::fir4_tiled_applies(g, planes) && g.in_w >= kFirTileW && g.in_h >= 8) {
        const Stencil4 s{f, g.gain, g.flip, true, 3 - g.pad_y0, 3 - g.pad_x0, g.out_h, g.out_w, g.in_h, g.in_w};
        detail::launch_fir4_tiled(gy, planes, s, FirEpilogue{}, plane_scale, gx, stream);
        return;
    }
    detail::launch_fir<detail::FirBackward>(g, planes, Index{g.in_h} * g.in_w, stream, gy, static_cast<int>(planes), g,
                                            f, plane_scale, gx);
}

}  // namespace ganinv::cuda
