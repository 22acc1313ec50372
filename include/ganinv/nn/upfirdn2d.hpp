/// @file upfirdn2d.hpp
/// @brief Up-sample (zero insertion), pad/crop, FIR filter, down-sample — on the CPU, forward and
///        its exact adjoint. Semantics of StyleGAN2-ADA's upfirdn2d with a 2-D filter: the filter is
///        convolved (not correlated) unless flip_filter, and scaled by `gain`.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/host_device.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/nn/bias_act.hpp"

#include <array>
#include <cstdint>
#include <vector>

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

/// The taps of one axis: for output index o, the pairs (input index, filter index) in
/// [begin[o], begin[o + 1]) of `input`/`tap` that land on real samples. Built once per call:
/// testing every tap of every output (with a modulo) cost more than the arithmetic, since an
/// up-sampling by 2 leaves 3 of 4 taps on inserted zeros.
struct AxisTaps {
    std::vector<Index> begin, input, tap;

    AxisTaps(Index out, Index in, Index f, int up, int down, int pad0, bool flip) {
        begin.reserve(static_cast<std::size_t>(out) + 1);
        begin.push_back(0);
        for (Index o = 0; o < out; ++o) {
            for (Index a = 0; a < f; ++a) {
                const Index u = o * down + a - pad0;  // index in the padded, up-sampled signal
                if (u < 0 || u >= in * up || u % up != 0) continue;
                input.push_back(u / up);
                tap.push_back(flip ? a : f - 1 - a);
            }
            begin.push_back(static_cast<Index>(input.size()));
        }
    }
};

/// The columns one filter column reaches: outputs first + k * out_step read inputs
/// in_first + k * in_step (k < count). The outputs a tap reaches on real samples are an interval
/// (the padding) intersected with a residue class (the zero insertion), so an arithmetic
/// progression: the innermost loop runs along a row with fixed strides and vectorises.
struct ColumnRun {
    Index tap = 0, first = 0, count = 0, out_step = 1, in_first = 0, in_step = 1;
};

inline std::vector<ColumnRun> column_runs(Index out, Index in, Index f, int up, int down, int pad0, bool flip) {
    std::vector<ColumnRun> runs;
    for (Index b = 0; b < f; ++b) {
        ColumnRun run;
        run.tap = flip ? b : f - 1 - b;
        for (Index o = 0; o < out; ++o) {
            const Index u = o * down + b - pad0;
            if (u < 0 || u >= in * up || u % up != 0) continue;
            if (run.count == 0) {
                run.first = o;
                run.in_first = u / up;
            } else if (run.count == 1) {
                run.out_step = o - run.first;
                run.in_step = u / up - run.in_first;
            }
            ++run.count;
        }
        if (run.count > 0) runs.push_back(run);
    }
    return runs;
}

/// The geometry of one call: the row taps, the column runs and the filter scaled by the gain.
struct PlaneTaps {
    Index in_h, in_w, out_h, out_w, fw;
    AxisTaps rows;
    std::vector<ColumnRun> cols;
    std::vector<float> weights;  // filter * gain, row-major [fh, fw]

    PlaneTaps(Index in_h_, Index in_w_, const float* filter, Index fh, Index fw_, const Upfirdn2dParams& p)
        : in_h(in_h_), in_w(in_w_), out_h(p.out_h(in_h_, fh)), out_w(p.out_w(in_w_, fw_)), fw(fw_),
          rows(out_h, in_h_, fh, p.up, p.down, p.pad_y0, p.flip_filter),
          cols(column_runs(out_w, in_w_, fw_, p.up, p.down, p.pad_x0, p.flip_filter)),
          weights(static_cast<std::size_t>(fh * fw_)) {
        for (Index i = 0; i < fh * fw_; ++i) weights[static_cast<std::size_t>(i)] = filter[i] * p.gain;
    }
};

/// Visits every (output, input, weight) triple of one plane; forward gathers, backward scatters
/// with the same visitor, so the two are exact adjoints by construction. Order: output rows,
/// filter rows, filter columns, output columns — each output still sums its taps in filter
/// order (row-major), and the innermost loop is a strided run along one row.
template <class Visit>
void upfirdn2d_plane(const PlaneTaps& t, Visit&& visit) {
    for (Index oy = 0; oy < t.out_h; ++oy) {
        const Index out_row = oy * t.out_w;
        for (Index r = t.rows.begin[oy]; r < t.rows.begin[oy + 1]; ++r) {
            const Index in_row = t.rows.input[r] * t.in_w;
            const float* w = t.weights.data() + t.rows.tap[r] * t.fw;
            for (const ColumnRun& c : t.cols) {
                const float wc = w[c.tap];
                const Index o0 = out_row + c.first, i0 = in_row + c.in_first;
                if (c.out_step == 1 && c.in_step == 1) {  // no resampling along x: unit strides
                    for (Index k = 0; k < c.count; ++k) visit(o0 + k, i0 + k, wc);
                } else {
                    for (Index k = 0; k < c.count; ++k) visit(o0 + k * c.out_step, i0 + k * c.in_step, wc);
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
    const detail::PlaneTaps taps(in_h, in_w, filter, fh, fw, p);
    const Index out_hw = taps.out_h * taps.out_w;
#pragma omp parallel for schedule(static) if (planes * out_hw * fh * fw > kParallelMinWork)
    for (Index c = 0; c < planes; ++c) {
        const float* xc = x + c * in_h * in_w;
        float* yc = y + c * out_hw;
        for (Index i = 0; i < out_hw; ++i) yc[i] = 0.0f;
        detail::upfirdn2d_plane(taps, [&](Index o, Index i, float w) { yc[o] += w * xc[i]; });
    }
}

/// grad_x = adjoint of upfirdn2d applied to grad_y (overwrites grad_x).
inline void upfirdn2d_backward(const float* grad_y, Index planes, Index in_h, Index in_w, const float* filter,
                               Index fh, Index fw, const Upfirdn2dParams& p, float* grad_x) {
    p.validate(in_h, in_w, fh, fw);
    const detail::PlaneTaps taps(in_h, in_w, filter, fh, fw, p);
    const Index out_hw = taps.out_h * taps.out_w;
#pragma omp parallel for schedule(static) if (planes * out_hw * fh * fw > kParallelMinWork)
    for (Index c = 0; c < planes; ++c) {
        const float* gy = grad_y + c * out_hw;
        float* gx = grad_x + c * in_h * in_w;
        for (Index i = 0; i < in_h * in_w; ++i) gx[i] = 0.0f;
        detail::upfirdn2d_plane(taps, [&](Index o, Index i, float w) { gx[i] += w * gy[o]; });
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

/// Without resampling (up = down = 1) a 4x4 FIR and its adjoint are one zero-padded stencil,
///   out[y][x] = sum_{a,b} gain * f[fir4_stencil_tap(flip, adjoint, a, b)] * in[y + a - py][x + b - px],
/// forward: py = pad_y0, px = pad_x0, in = x; adjoint: py = 3 - pad_y0, px = 3 - pad_x0, in = grad_y.
/// The filter is convolved (taps mirrored) unless flip_filter, and the adjoint mirrors it once
/// more. The tiled CUDA kernel (cuda/upfirdn2d.cuh, fir4_tiled) reads its taps through this rule;
/// test_nn checks the stencil form against upfirdn2d_forward / upfirdn2d_backward.
GANINV_HOST_DEVICE inline int fir4_stencil_tap(bool flip, bool adjoint, int a, int b) {
    const bool mirror = flip == adjoint;
    return (mirror ? 3 - a : a) * 4 + (mirror ? 3 - b : b);
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
