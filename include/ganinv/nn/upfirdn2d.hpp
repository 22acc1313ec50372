/// @file upfirdn2d.hpp
/// @brief Up-sample (zero insertion), pad/crop, FIR filter, down-sample — on the CPU, forward and
///        its exact adjoint. Semantics of StyleGAN2-ADA's upfirdn2d with a 2-D filter: the filter is
///        convolved (not correlated) unless flip_filter, and scaled by `gain`.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/nn/bias_act.hpp"

#include <array>
#include <cstdint>

namespace ganinv::nn {

/// Geometry of one upfirdn2d call. Padding order is x0, x1, y0, y1 as in the official code;
/// negative values crop.
struct Upfirdn2dParams {
    int up = 1;
    int down = 1;
    int pad_x0 = 0, pad_x1 = 0, pad_y0 = 0, pad_y1 = 0;
    float gain = 1.0f;
    bool flip_filter = false;

    Index out_h(Index in_h, Index filter_h) const { return out_size(in_h, filter_h, pad_y0, pad_y1); }
    Index out_w(Index in_w, Index filter_w) const { return out_size(in_w, filter_w, pad_x0, pad_x1); }

    void validate(Index in_h, Index in_w, Index fh, Index fw) const {
        GANINV_CHECK(up >= 1 && down >= 1, ValueError, "upfirdn2d: up and down must be >= 1 (got ", up, ", ", down,
                     ")");
        GANINV_CHECK(fh >= 1 && fw >= 1, ShapeError, "upfirdn2d: empty filter");
        GANINV_CHECK(out_h(in_h, fh) >= 1 && out_w(in_w, fw) >= 1, ShapeError,
                     "upfirdn2d: padding/filter leave no output for a ", in_h, "x", in_w, " input");
    }

    /// The official helper parameters for a filter of size fw x fh.
    static Upfirdn2dParams upsample2d(int filter_size, int factor = 2) {
        Upfirdn2dParams p;
        p.up = factor;
        p.pad_x0 = p.pad_y0 = (filter_size + factor - 1) / 2;
        p.pad_x1 = p.pad_y1 = (filter_size - factor) / 2;
        p.gain = static_cast<float>(factor * factor);
        return p;
    }
    static Upfirdn2dParams downsample2d(int filter_size, int factor = 2) {
        Upfirdn2dParams p;
        p.down = factor;
        p.pad_x0 = p.pad_y0 = (filter_size - factor + 1) / 2;
        p.pad_x1 = p.pad_y1 = (filter_size - factor) / 2;
        return p;
    }
    static Upfirdn2dParams filter2d(int filter_size, int padding = 0) {
        Upfirdn2dParams p;
        p.pad_x0 = p.pad_y0 = padding + filter_size / 2;
        p.pad_x1 = p.pad_y1 = padding + (filter_size - 1) / 2;
        return p;
    }

private:
    Index out_size(Index in, Index f, int p0, int p1) const {
        const Index span = in * up + p0 + p1 - f;  // last valid start in the padded, up-sampled signal
        return span < 0 ? 0 : span / down + 1;
    }
};

namespace detail {

/// Visits every (output, input, weight) triple of one plane; forward gathers, backward scatters
/// with the same visitor, so the two are exact adjoints by construction.
template <class Visit>
void upfirdn2d_plane(Index in_h, Index in_w, const float* filter, Index fh, Index fw, const Upfirdn2dParams& p,
                     Visit&& visit) {
    const Index out_h = p.out_h(in_h, fh), out_w = p.out_w(in_w, fw);
    for (Index oy = 0; oy < out_h; ++oy) {
        for (Index a = 0; a < fh; ++a) {
            const Index uy = oy * p.down + a - p.pad_y0;  // index in the up-sampled signal
            if (uy < 0 || uy >= in_h * p.up || uy % p.up != 0) continue;
            const Index iy = uy / p.up;
            const Index ka = p.flip_filter ? a : fh - 1 - a;
            for (Index ox = 0; ox < out_w; ++ox) {
                for (Index b = 0; b < fw; ++b) {
                    const Index ux = ox * p.down + b - p.pad_x0;
                    if (ux < 0 || ux >= in_w * p.up || ux % p.up != 0) continue;
                    const Index kb = p.flip_filter ? b : fw - 1 - b;
                    visit(oy * out_w + ox, iy * in_w + ux / p.up, filter[ka * fw + kb] * p.gain);
                }
            }
        }
    }
}

}  // namespace detail

/// y[planes, out_h, out_w] = upfirdn2d(x[planes, in_h, in_w]); planes = N*C.
inline void upfirdn2d_forward(const float* x, Index planes, Index in_h, Index in_w, const float* filter, Index fh,
                              Index fw, const Upfirdn2dParams& p, float* y) {
    p.validate(in_h, in_w, fh, fw);
    const Index out_hw = p.out_h(in_h, fh) * p.out_w(in_w, fw);
#pragma omp parallel for schedule(static) if (planes * out_hw * fh * fw > kParallelMinWork)
    for (Index c = 0; c < planes; ++c) {
        const float* xc = x + c * in_h * in_w;
        float* yc = y + c * out_hw;
        for (Index i = 0; i < out_hw; ++i) yc[i] = 0.0f;
        detail::upfirdn2d_plane(in_h, in_w, filter, fh, fw, p,
                                [&](Index o, Index i, float w) { yc[o] += w * xc[i]; });
    }
}

/// grad_x = adjoint of upfirdn2d applied to grad_y (overwrites grad_x).
inline void upfirdn2d_backward(const float* grad_y, Index planes, Index in_h, Index in_w, const float* filter,
                               Index fh, Index fw, const Upfirdn2dParams& p, float* grad_x) {
    p.validate(in_h, in_w, fh, fw);
    const Index out_hw = p.out_h(in_h, fh) * p.out_w(in_w, fw);
#pragma omp parallel for schedule(static) if (planes * out_hw * fh * fw > kParallelMinWork)
    for (Index c = 0; c < planes; ++c) {
        const float* gy = grad_y + c * out_hw;
        float* gx = grad_x + c * in_h * in_w;
        for (Index i = 0; i < in_h * in_w; ++i) gx[i] = 0.0f;
        detail::upfirdn2d_plane(in_h, in_w, filter, fh, fw, p,
                                [&](Index o, Index i, float w) { gx[i] += w * gy[o]; });
    }
}

/// Tensor convenience: x [N, C, H, W], filter [fh, fw].
inline Tensor<float> upfirdn2d(const Tensor<float>& x, const Tensor<float>& filter, const Upfirdn2dParams& p) {
    GANINV_CHECK(x.rank() == 4, ShapeError, "upfirdn2d: input must be [N, C, H, W], got ", shape_to_string(x.shape()));
    GANINV_CHECK(filter.rank() == 2, ShapeError, "upfirdn2d: filter must be 2-D, got ",
                 shape_to_string(filter.shape()));
    const Index fh = filter.dim(0), fw = filter.dim(1);
    p.validate(x.dim(2), x.dim(3), fh, fw);
    Tensor<float> y({x.dim(0), x.dim(1), p.out_h(x.dim(2), fh), p.out_w(x.dim(3), fw)});
    upfirdn2d_forward(x.data(), x.dim(0) * x.dim(1), x.dim(2), x.dim(3), filter.data(), fh, fw, p, y.data());
    return y;
}

/// The normalised separable FIR filter outer(k, k) / sum(k)^2, e.g. k = [1, 3, 3, 1].
inline Tensor<float> make_resample_filter(const std::vector<float>& k) {
    GANINV_CHECK(!k.empty(), ValueError, "resample filter taps must not be empty");
    double sum = 0;
    for (float v : k) sum += v;
    GANINV_CHECK(sum != 0.0, ValueError, "resample filter taps sum to zero");
    const Index n = static_cast<Index>(k.size());
    Tensor<float> f({n, n});
    for (Index i = 0; i < n; ++i)
        for (Index j = 0; j < n; ++j) f[i * n + j] = static_cast<float>(k[i] * k[j] / (sum * sum));
    return f;
}

}  // namespace ganinv::nn
