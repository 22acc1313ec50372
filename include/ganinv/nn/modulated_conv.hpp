/// @file modulated_conv.hpp
/// @brief StyleGAN2's modulated convolution on the CPU, forward and backward.
///
/// Computed in the "input scaling" form: y = d[n,o] * conv(x * s[n,c], w), which equals the
/// per-sample weight form w'[n,o,c] = w * s * d of the official fused path, but lets every sample
/// share one weight matrix (no N copies of the weights). Convolutions are GEMMs over shifted
/// views of a zero-padded input ("padded-row" trick: a k x k conv is k*k GEMMs on contiguous
/// slices of the padded plane), so no im2col buffer is built. up = 2 is the official
/// stride-2 transposed convolution followed by the FIR filter with gain 4.
#pragma once

#include "ganinv/nn/linear.hpp"
#include "ganinv/nn/modconv_shape.hpp"
#include "ganinv/nn/upfirdn2d.hpp"

#include "ganinv/core/eigen.hpp"

#include <cmath>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace ganinv::nn {



namespace detail {

inline int max_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
inline int thread_id() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/// Runs body(begin, length) over [0, n) in chunks: across threads when called outside a parallel
/// region and the work is large (batch 1), serially inside one (the batch loop already splits).
template <class Body>
void parallel_chunks(Index n, Index work_per_item, Body&& body) {
    const int threads = max_threads();
#ifdef _OPENMP
    const bool split = !omp_in_parallel() && threads > 1 && n * work_per_item > (Index{1} << 22) && n >= 2 * threads;
#else
    const bool split = false;
#endif
    if (!split) {
        body(Index{0}, n);
        return;
    }
    const Index chunks = threads, step = (n + chunks - 1) / chunks;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (Index c = 0; c < chunks; ++c) {
        const Index b = c * step, e = std::min(n, b + step);
        if (b < e) body(b, e - b);
    }
}

/// Rearranges w[O, C, k*k] to stacked rows [k*k * O, C] (row kidx*O + o), one GEMM operand per tap.
inline RowMatrix stack_taps(const float* weight, Index O, Index C, Index kk) {
    RowMatrix s(kk * O, C);
    for (Index o = 0; o < O; ++o)
        for (Index c = 0; c < C; ++c)
            for (Index t = 0; t < kk; ++t) s(t * O + o, c) = weight[(o * C + c) * kk + t];
    return s;
}

inline void unstack_taps_add(const RowMatrix& s, Index O, Index C, Index kk, float* grad_weight) {
    for (Index o = 0; o < O; ++o)
        for (Index c = 0; c < C; ++c)
            for (Index t = 0; t < kk; ++t) grad_weight[(o * C + c) * kk + t] += s(t * O + o, c);
}

/// out[O, OH*OW] = conv(xs[C, H*W], w) for one sample: no modulation, no demodulation.
inline void conv_sample_forward(const RowMatrix& taps, const float* xs, const float* filter, const ModConvShape& sh,
                                float* out) {
    const Index C = sh.in_channels, O = sh.out_channels, H = sh.in_h, W = sh.in_w, k = sh.kernel, kk = k * k;
    if (sh.up == 1) {
        const Index p = sh.padding(), Wp = W + 2 * p, Hp = H + 2 * p;
        RowMatrix xpad = RowMatrix::Zero(C, Hp * Wp + k);  // + k: the last tap's slice overruns by k-1
        for (Index c = 0; c < C; ++c)
            for (Index i = 0; i < H; ++i)
                for (Index j = 0; j < W; ++j) xpad(c, (i + p) * Wp + j + p) = xs[(c * H + i) * W + j];
        RowMatrix grid = RowMatrix::Zero(O, H * Wp);
        parallel_chunks(H * Wp, O * C * kk, [&](Index c0, Index len) {
            for (Index t = 0; t < kk; ++t)
                grid.middleCols(c0, len).noalias() +=
                    taps.middleRows(t * O, O) * xpad.middleCols((t / k) * Wp + (t % k) + c0, len);
        });
        for (Index o = 0; o < O; ++o)
            for (Index i = 0; i < H; ++i)
                for (Index j = 0; j < W; ++j) out[(o * H + i) * W + j] = grid(o, i * Wp + j);
        return;
    }
    RowMatrix cols(kk * O, H * W);
    const ConstRowMap xs_mat(xs, C, H * W);
    parallel_chunks(H * W, kk * O * C, [&](Index c0, Index len) {
        cols.middleCols(c0, len).noalias() = taps * xs_mat.middleCols(c0, len);
    });
    const Index TH = sh.transposed_h(), TW = sh.transposed_w();
    std::vector<float> yt(static_cast<std::size_t>(O * TH * TW), 0.0f);
    for (Index t = 0; t < kk; ++t) {
        const Index ky = t / k, kx = t % k;
        for (Index o = 0; o < O; ++o)
            for (Index i = 0; i < H; ++i)
                for (Index j = 0; j < W; ++j)
                    yt[static_cast<std::size_t>((o * TH + i * sh.up + ky) * TW + j * sh.up + kx)] +=
                        cols(t * O + o, i * W + j);
    }
    upfirdn2d_forward(yt.data(), O, TH, TW, filter, sh.filter_size, sh.filter_size, sh.fir_params(), out);
}

/// Adjoint of conv_sample_forward: grad_xs[C, H*W] (overwritten) and grad_taps (accumulated)
/// from g[O, OH*OW].
inline void conv_sample_backward(const RowMatrix& taps, const float* xs, const float* g, const float* filter,
                                 const ModConvShape& sh, float* grad_xs, RowMatrix* grad_taps) {
    const Index C = sh.in_channels, O = sh.out_channels, H = sh.in_h, W = sh.in_w, k = sh.kernel, kk = k * k;
    if (sh.up == 1) {
        const Index p = sh.padding(), Wp = W + 2 * p, Hp = H + 2 * p;
        RowMatrix grid = RowMatrix::Zero(O, H * Wp);  // the junk columns j >= W stay zero
        for (Index o = 0; o < O; ++o)
            for (Index i = 0; i < H; ++i)
                for (Index j = 0; j < W; ++j) grid(o, i * Wp + j) = g[(o * H + i) * W + j];
        RowMatrix gpad = RowMatrix::Zero(C, Hp * Wp + k);
        RowMatrix xpad;
        if (grad_taps) {
            xpad = RowMatrix::Zero(C, Hp * Wp + k);
            for (Index c = 0; c < C; ++c)
                for (Index i = 0; i < H; ++i)
                    for (Index j = 0; j < W; ++j) xpad(c, (i + p) * Wp + j + p) = xs[(c * H + i) * W + j];
        }
        for (Index t = 0; t < kk; ++t) {  // taps in sequence: their slices of gpad overlap
            const Index off = (t / k) * Wp + (t % k);
            parallel_chunks(H * Wp, O * C, [&](Index c0, Index len) {
                gpad.middleCols(off + c0, len).noalias() +=
                    taps.middleRows(t * O, O).transpose() * grid.middleCols(c0, len);
            });
            if (grad_taps)
                parallel_chunks(O, C * H * Wp, [&](Index r0, Index len) {
                    grad_taps->middleRows(t * O + r0, len).noalias() +=
                        grid.middleRows(r0, len) * xpad.middleCols(off, H * Wp).transpose();
                });
        }
        for (Index c = 0; c < C; ++c)
            for (Index i = 0; i < H; ++i)
                for (Index j = 0; j < W; ++j) grad_xs[(c * H + i) * W + j] = gpad(c, (i + p) * Wp + j + p);
        return;
    }
    const Index TH = sh.transposed_h(), TW = sh.transposed_w();
    std::vector<float> gt(static_cast<std::size_t>(O * TH * TW));
    upfirdn2d_backward(g, O, TH, TW, filter, sh.filter_size, sh.filter_size, sh.fir_params(), gt.data());
    RowMatrix gathered(kk * O, H * W);
    for (Index t = 0; t < kk; ++t) {
        const Index ky = t / k, kx = t % k;
        for (Index o = 0; o < O; ++o)
            for (Index i = 0; i < H; ++i)
                for (Index j = 0; j < W; ++j)
                    gathered(t * O + o, i * W + j) =
                        gt[static_cast<std::size_t>((o * TH + i * sh.up + ky) * TW + j * sh.up + kx)];
    }
    RowMap gxs(grad_xs, C, H * W);
    parallel_chunks(H * W, kk * O * C, [&](Index c0, Index len) {
        gxs.middleCols(c0, len).noalias() = taps.transpose() * gathered.middleCols(c0, len);
    });
    if (grad_taps)
        parallel_chunks(kk * O, C * H * W, [&](Index r0, Index len) {
            grad_taps->middleRows(r0, len).noalias() += gathered.middleRows(r0, len) * ConstRowMap(xs, C, H * W).transpose();
        });
}

}  // namespace detail

/// dcoefs[N, O] = rsqrt(sum_{c,k} (w[o,c,k] s[n,c])^2 + 1e-8), the demodulation coefficients.
inline void modconv_demod_coefficients(const float* weight, const float* styles, const ModConvShape& sh,
                                       float* dcoefs) {
    const Index C = sh.in_channels, O = sh.out_channels, kk = sh.kernel * sh.kernel;
    std::vector<float> w2(static_cast<std::size_t>(O * C));
    for (Index o = 0; o < O; ++o)
        for (Index c = 0; c < C; ++c) {
            float acc = 0;
            for (Index t = 0; t < kk; ++t) acc += weight[(o * C + c) * kk + t] * weight[(o * C + c) * kk + t];
            w2[static_cast<std::size_t>(o * C + c)] = acc;
        }
    for (Index n = 0; n < sh.batch; ++n)
        for (Index o = 0; o < O; ++o) {
            float acc = 0;
            for (Index c = 0; c < C; ++c) {
                const float s = styles[n * C + c];
                acc += w2[static_cast<std::size_t>(o * C + c)] * s * s;
            }
            dcoefs[n * O + o] = 1.0f / std::sqrt(acc + 1e-8f);
        }
}

/// y[N, O, out_h, out_w] = modulated conv of x[N, C, H, W] with styles[N, C]. dcoefs[N, O]
/// receives the demodulation coefficients (ones when !demodulate); filter is the
/// [filter_size, filter_size] resample filter (used when up == 2).
inline void modconv_forward(const float* x, const float* weight, const float* styles, const float* filter,
                            const ModConvShape& sh, float* y, float* dcoefs) {
    sh.validate();
    const Index C = sh.in_channels, O = sh.out_channels, HW = sh.in_h * sh.in_w, OHW = sh.out_h() * sh.out_w();
    if (sh.demodulate) modconv_demod_coefficients(weight, styles, sh, dcoefs);
    else std::fill(dcoefs, dcoefs + sh.batch * O, 1.0f);
    const RowMatrix taps = detail::stack_taps(weight, O, C, sh.kernel * sh.kernel);
#pragma omp parallel for schedule(dynamic) if (sh.batch > 1)
    for (Index n = 0; n < sh.batch; ++n) {
        std::vector<float> xs(static_cast<std::size_t>(C * HW));
        for (Index c = 0; c < C; ++c)
            for (Index i = 0; i < HW; ++i) xs[static_cast<std::size_t>(c * HW + i)] = x[(n * C + c) * HW + i] * styles[n * C + c];
        float* yn = y + n * O * OHW;
        detail::conv_sample_forward(taps, xs.data(), filter, sh, yn);
        for (Index o = 0; o < O; ++o)
            for (Index i = 0; i < OHW; ++i) yn[o * OHW + i] *= dcoefs[n * O + o];
    }
}

/// Backward of modconv_forward. `y` is the forward output, `grad_y` its gradient. grad_x and
/// grad_styles are overwritten (grad_x may be null); grad_weight accumulates (may be null).
inline void modconv_backward(const float* x, const float* weight, const float* styles, const float* filter,
                             const float* dcoefs, const float* y, const float* grad_y, const ModConvShape& sh,
                             float* grad_x, float* grad_styles, float* grad_weight) {
    sh.validate();
    const Index C = sh.in_channels, O = sh.out_channels, HW = sh.in_h * sh.in_w, OHW = sh.out_h() * sh.out_w();
    const Index kk = sh.kernel * sh.kernel;
    const RowMatrix taps = detail::stack_taps(weight, O, C, kk);
    const int threads = sh.batch > 1 ? detail::max_threads() : 1;
    std::vector<RowMatrix> grad_taps(grad_weight ? static_cast<std::size_t>(threads) : 0);
    for (auto& m : grad_taps) m = RowMatrix::Zero(kk * O, C);
    std::vector<float> grad_d(static_cast<std::size_t>(sh.batch * O));

#pragma omp parallel for schedule(dynamic) num_threads(threads)
    for (Index n = 0; n < sh.batch; ++n) {
        std::vector<float> xs(static_cast<std::size_t>(C * HW)), gxs(static_cast<std::size_t>(C * HW));
        std::vector<float> g0(static_cast<std::size_t>(O * OHW));
        for (Index c = 0; c < C; ++c)
            for (Index i = 0; i < HW; ++i) xs[static_cast<std::size_t>(c * HW + i)] = x[(n * C + c) * HW + i] * styles[n * C + c];
        for (Index o = 0; o < O; ++o) {
            const float d = dcoefs[n * O + o];
            double gd = 0.0;  // dL/dd = sum(grad_y * y / d): y / d is the pre-demodulation output
            for (Index i = 0; i < OHW; ++i) {
                const Index idx = (n * O + o) * OHW + i;
                g0[static_cast<std::size_t>(o * OHW + i)] = grad_y[idx] * d;
                gd += static_cast<double>(grad_y[idx]) * y[idx];
            }
            grad_d[static_cast<std::size_t>(n * O + o)] = static_cast<float>(gd / d);
        }
        RowMatrix* acc = grad_weight ? &grad_taps[static_cast<std::size_t>(threads > 1 ? detail::thread_id() : 0)] : nullptr;
        detail::conv_sample_backward(taps, xs.data(), g0.data(), filter, sh, gxs.data(), acc);
        for (Index c = 0; c < C; ++c) {
            const float s = styles[n * C + c];
            double gs = 0.0;
            for (Index i = 0; i < HW; ++i) {
                const float gx = gxs[static_cast<std::size_t>(c * HW + i)];
                gs += static_cast<double>(gx) * x[(n * C + c) * HW + i];
                if (grad_x) grad_x[(n * C + c) * HW + i] = gx * s;
            }
            grad_styles[n * C + c] = static_cast<float>(gs);
        }
    }
    if (grad_weight)
        for (const auto& m : grad_taps) detail::unstack_taps_add(m, O, C, kk, grad_weight);
    if (!sh.demodulate) return;

    // Through d = (sum_{c,k} w^2 s^2 + eps)^-1/2:  dd/ds = -d^3 s W2[o,c],  dd/dw = -d^3 w s^2.
    std::vector<float> w2(static_cast<std::size_t>(O * C));
    for (Index o = 0; o < O; ++o)
        for (Index c = 0; c < C; ++c) {
            float a = 0;
            for (Index t = 0; t < kk; ++t) a += weight[(o * C + c) * kk + t] * weight[(o * C + c) * kk + t];
            w2[static_cast<std::size_t>(o * C + c)] = a;
        }
    std::vector<float> coef(static_cast<std::size_t>(sh.batch * O));  // grad_d * d^3
    for (Index i = 0; i < sh.batch * O; ++i) {
        const float d = dcoefs[i];
        coef[static_cast<std::size_t>(i)] = grad_d[static_cast<std::size_t>(i)] * d * d * d;
    }
    for (Index n = 0; n < sh.batch; ++n)
        for (Index c = 0; c < C; ++c) {
            double a = 0.0;
            for (Index o = 0; o < O; ++o) a += static_cast<double>(coef[static_cast<std::size_t>(n * O + o)]) * w2[static_cast<std::size_t>(o * C + c)];
            grad_styles[n * C + c] -= static_cast<float>(a) * styles[n * C + c];
        }
    if (grad_weight) {
        for (Index o = 0; o < O; ++o)
            for (Index c = 0; c < C; ++c) {
                double a = 0.0;
                for (Index n = 0; n < sh.batch; ++n) {
                    const float s = styles[n * C + c];
                    a += static_cast<double>(coef[static_cast<std::size_t>(n * O + o)]) * s * s;
                }
                for (Index t = 0; t < kk; ++t)
                    grad_weight[(o * C + c) * kk + t] -= static_cast<float>(a) * weight[(o * C + c) * kk + t];
            }
    }
}

}  // namespace ganinv::nn
