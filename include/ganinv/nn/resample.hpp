/// @file resample.hpp
/// @brief Differentiable separable resampling of NCHW planes: y = Wy * x * Wx^T with the sparse
///        per-axis weights of core/axis_weights.hpp (exact area averaging) or bilinear ones, and its
///        adjoint, so losses can shrink their inputs (the projector's 256x256 area down-sampling,
///        the face crop's resize to 150x150) and still pass gradients back to the full image.
#pragma once

#include "ganinv/core/axis_weights.hpp"
#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace ganinv::nn {

using AxisWeights = ganinv::detail::AxisWeights;

/// Bilinear interpolation with half-pixel centres (PyTorch align_corners = False, without
/// antialiasing): src = (o + 0.5) * in / out - 0.5, clamped to [0, in - 1].
inline AxisWeights bilinear_weights(Index in, Index out) {
    AxisWeights a{in, out, {0}, {}, {}};
    const double scale = static_cast<double>(in) / static_cast<double>(out);
    for (Index o = 0; o < out; ++o) {
        const double src = std::clamp((static_cast<double>(o) + 0.5) * scale - 0.5, 0.0, static_cast<double>(in - 1));
        const auto i0 = static_cast<Index>(std::floor(src));
        const Index i1 = std::min(i0 + 1, in - 1);
        const double f = src - static_cast<double>(i0);
        a.add_tap(i0, 1.0 - f);
        if (i1 != i0 && f > 0.0) a.add_tap(i1, f);
        a.finish_output();
    }
    return a;
}

/// Exact area (box) weights when an axis shrinks or keeps its size, bilinear when it grows.
inline AxisWeights area_or_bilinear_weights(Index in, Index out) {
    return out > in ? bilinear_weights(in, out) : ganinv::detail::area_weights(in, out);
}

/// y[p] = Wy x[p] Wx^T for `planes` planes of wy.in_size x wx.in_size (double accumulation).
inline void resample_forward(const float* x, Index planes, const AxisWeights& wy, const AxisWeights& wx, float* y) {
    const Index H = wy.in_size, W = wx.in_size, OH = wy.out_size, OW = wx.out_size;
#pragma omp parallel for schedule(static) if (planes > 1 && planes * OH * OW > 65536)
    for (Index p = 0; p < planes; ++p) {
        std::vector<double> rows(static_cast<std::size_t>(H * OW));
        const float* src = x + p * H * W;
        for (Index i = 0; i < H; ++i)
            for (Index o = 0; o < OW; ++o) {
                double acc = 0.0;
                for (Index k = wx.begin[o]; k < wx.begin[o + 1]; ++k) acc += wx.weight[k] * src[i * W + wx.source[k]];
                rows[i * OW + o] = acc;
            }
        float* dst = y + p * OH * OW;
        for (Index o = 0; o < OH; ++o)
            for (Index j = 0; j < OW; ++j) {
                double acc = 0.0;
                for (Index k = wy.begin[o]; k < wy.begin[o + 1]; ++k) acc += wy.weight[k] * rows[wy.source[k] * OW + j];
                dst[o * OW + j] = static_cast<float>(acc);
            }
    }
}

/// Adjoint: gx[p] = Wy^T gy[p] Wx (overwritten).
inline void resample_backward(const float* gy, Index planes, const AxisWeights& wy, const AxisWeights& wx, float* gx) {
    const Index H = wy.in_size, W = wx.in_size, OH = wy.out_size, OW = wx.out_size;
#pragma omp parallel for schedule(static) if (planes > 1 && planes * H * W > 65536)
    for (Index p = 0; p < planes; ++p) {
        std::vector<double> rows(static_cast<std::size_t>(H * OW), 0.0);
        const float* g = gy + p * OH * OW;
        for (Index o = 0; o < OH; ++o)
            for (Index k = wy.begin[o]; k < wy.begin[o + 1]; ++k)
                for (Index j = 0; j < OW; ++j) rows[wy.source[k] * OW + j] += wy.weight[k] * g[o * OW + j];
        std::vector<double> acc(static_cast<std::size_t>(W));
        float* dst = gx + p * H * W;
        for (Index i = 0; i < H; ++i) {
            std::fill(acc.begin(), acc.end(), 0.0);
            for (Index o = 0; o < OW; ++o)
                for (Index k = wx.begin[o]; k < wx.begin[o + 1]; ++k) acc[wx.source[k]] += wx.weight[k] * rows[i * OW + o];
            for (Index j = 0; j < W; ++j) dst[i * W + j] = static_cast<float>(acc[j]);
        }
    }
}

/// A resize of [N, C, H, W] tensors to out_h x out_w that remembers its weights for the backward.
class Resampler {
public:
    Resampler() = default;
    Resampler(Index in_h, Index in_w, Index out_h, Index out_w)
        : wy_(area_or_bilinear_weights(in_h, out_h)), wx_(area_or_bilinear_weights(in_w, out_w)) {
        GANINV_CHECK(in_h > 0 && in_w > 0 && out_h > 0 && out_w > 0, ShapeError, "resample: sizes must be positive (",
                     in_h, "x", in_w, " -> ", out_h, "x", out_w, ")");
    }
    bool identity() const { return wy_.in_size == wy_.out_size && wx_.in_size == wx_.out_size; }

    Tensor<float> forward(const Tensor<float>& x) const {
        check(x, wy_.in_size, wx_.in_size, "input");
        Tensor<float> y({x.dim(0), x.dim(1), wy_.out_size, wx_.out_size});
        resample_forward(x.data(), x.dim(0) * x.dim(1), wy_, wx_, y.data());
        return y;
    }
    Tensor<float> backward(const Tensor<float>& gy) const {
        check(gy, wy_.out_size, wx_.out_size, "gradient");
        Tensor<float> gx({gy.dim(0), gy.dim(1), wy_.in_size, wx_.in_size});
        resample_backward(gy.data(), gy.dim(0) * gy.dim(1), wy_, wx_, gx.data());
        return gx;
    }

private:
    static void check(const Tensor<float>& t, Index h, Index w, const char* what) {
        GANINV_CHECK(t.rank() == 4 && t.dim(2) == h && t.dim(3) == w, ShapeError, "resample: ", what, " has shape ",
                     shape_to_string(t.shape()), ", expected [N, C, ", h, ", ", w, "]");
    }
    AxisWeights wy_, wx_;
};

}  // namespace ganinv::nn
