/// @file conv2d.hpp
/// @brief Plain 2-D convolution on the CPU (NCHW activations, OIHW weights as PyTorch stores
///        them, one stride for both axes, symmetric zero padding, optional bias), forward and
///        backward (input, weight, bias), plus ReLU. Used by the VGG16 trunk of the perceptual
///        losses and by the face-descriptor ResNet.
///
/// Each sample is processed in chunks of output rows: the chunk's patches are unfolded into a
/// [C*kh*kw, rows*OW] buffer (im2col) and multiplied by the [O, C*kh*kw] weight matrix in one
/// Eigen GEMM. Chunking bounds the buffer (a full 256x256 im2col of a 64-channel layer would
/// take 150 MB) and gives OpenMP independent work items even at batch 1.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/nn/linear.hpp"

#include "ganinv/core/eigen.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace ganinv::nn {

struct Conv2dShape {
    Index batch = 1, in_channels = 0, out_channels = 0, in_h = 0, in_w = 0;
    Index kernel_h = 3, kernel_w = 3;
    Index stride = 1;
    Index pad_h = 0, pad_w = 0;  ///< zeros added on each side (top = bottom, left = right)
    /// Multiply in double (reference mode for parity checks, several times slower). A float32
    /// GEMM's rounding can flip the sign of a near-zero output and so a ReLU/max-pool decision;
    /// double accumulation rules that out when comparing with another implementation.
    bool precise = false;

    Index out_h() const { return (in_h + 2 * pad_h - kernel_h) / stride + 1; }
    Index out_w() const { return (in_w + 2 * pad_w - kernel_w) / stride + 1; }
    Index patch() const { return in_channels * kernel_h * kernel_w; }

    void validate() const {
        GANINV_CHECK(batch >= 1 && in_channels >= 1 && out_channels >= 1, ShapeError,
                     "conv2d: batch and channel counts must be positive (batch ", batch, ", in ", in_channels,
                     ", out ", out_channels, ")");
        GANINV_CHECK(kernel_h >= 1 && kernel_w >= 1 && stride >= 1 && pad_h >= 0 && pad_w >= 0, ValueError,
                     "conv2d: invalid kernel ", kernel_h, "x", kernel_w, ", stride ", stride, " or padding ", pad_h,
                     "/", pad_w);
        GANINV_CHECK(in_h + 2 * pad_h >= kernel_h && in_w + 2 * pad_w >= kernel_w, ShapeError, "conv2d: input ",
                     in_h, "x", in_w, " (padding ", pad_h, "/", pad_w, ") is smaller than the ", kernel_h, "x",
                     kernel_w, " kernel");
    }

    /// A k x k convolution that keeps the size at stride 1 (pad k/2), the VGG and ResNet "same" conv.
    static Conv2dShape same(Index batch, Index in_c, Index out_c, Index h, Index w, Index k = 3) {
        return {batch, in_c, out_c, h, w, k, k, 1, k / 2, k / 2};
    }
};

namespace detail {

inline int conv_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
inline int conv_thread_id() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/// Output rows per chunk: about 1 MB of im2col buffer, never fewer rows than the kernel height
/// (the backward's two-pass col2im relies on chunks two apart touching disjoint input rows).
inline Index conv_chunk_rows(const Conv2dShape& s) {
    const Index budget = Index{1} << 18;  // floats
    const Index rows = budget / std::max<Index>(1, s.patch() * s.out_w());
    return std::clamp<Index>(rows, std::max<Index>(1, s.kernel_h), s.out_h());
}

/// True when the convolution is a plain channel mix (1x1, stride 1, no padding): no im2col needed.
inline bool conv_is_pointwise(const Conv2dShape& s) {
    return s.kernel_h == 1 && s.kernel_w == 1 && s.stride == 1 && s.pad_h == 0 && s.pad_w == 0;
}

/// cols[(c*kh + ky)*kw + kx, (r - r0)*OW + ox] = x[c, r*s - ph + ky, ox*s - pw + kx] (0 outside).
inline void im2col_rows(const float* x, const Conv2dShape& s, Index r0, Index r1, float* cols) {
    const Index OW = s.out_w(), ncols = (r1 - r0) * OW;
    for (Index c = 0; c < s.in_channels; ++c)
        for (Index ky = 0; ky < s.kernel_h; ++ky)
            for (Index kx = 0; kx < s.kernel_w; ++kx) {
                float* row = cols + ((c * s.kernel_h + ky) * s.kernel_w + kx) * ncols;
                // Output columns whose input column lies inside the image: lo <= ox < hi.
                const Index off = kx - s.pad_w;
                const Index lo = std::min(OW, off >= 0 ? 0 : (-off + s.stride - 1) / s.stride);
                const Index hi = std::max(lo, std::min(OW, (s.in_w - 1 - off) / s.stride + 1));
                for (Index r = r0; r < r1; ++r) {
                    float* dst = row + (r - r0) * OW;
                    const Index iy = r * s.stride - s.pad_h + ky;
                    if (iy < 0 || iy >= s.in_h || s.in_w - 1 - off < 0) {
                        std::fill(dst, dst + OW, 0.0f);
                        continue;
                    }
                    const float* src = x + (c * s.in_h + iy) * s.in_w;  // input row; column ox*s + off
                    std::fill(dst, dst + lo, 0.0f);
                    if (s.stride == 1) std::memcpy(dst + lo, src + lo + off, sizeof(float) * static_cast<std::size_t>(hi - lo));
                    else
                        for (Index ox = lo; ox < hi; ++ox) dst[ox] = src[ox * s.stride + off];
                    std::fill(dst + hi, dst + OW, 0.0f);
                }
            }
}

/// Adjoint of im2col_rows: gx[c, iy, ix] += cols[...] for every patch entry inside the image.
inline void col2im_rows_add(const float* cols, const Conv2dShape& s, Index r0, Index r1, float* gx) {
    const Index OW = s.out_w(), ncols = (r1 - r0) * OW;
    for (Index c = 0; c < s.in_channels; ++c)
        for (Index ky = 0; ky < s.kernel_h; ++ky)
            for (Index kx = 0; kx < s.kernel_w; ++kx) {
                const float* row = cols + ((c * s.kernel_h + ky) * s.kernel_w + kx) * ncols;
                const Index off = kx - s.pad_w;
                const Index lo = std::min(OW, off >= 0 ? 0 : (-off + s.stride - 1) / s.stride);
                const Index hi = std::max(lo, std::min(OW, (s.in_w - 1 - off) / s.stride + 1));
                for (Index r = r0; r < r1; ++r) {
                    const Index iy = r * s.stride - s.pad_h + ky;
                    if (iy < 0 || iy >= s.in_h || s.in_w - 1 - off < 0) continue;
                    const float* src = row + (r - r0) * OW;
                    float* dst = gx + (c * s.in_h + iy) * s.in_w;
                    for (Index ox = lo; ox < hi; ++ox) dst[ox * s.stride + off] += src[ox];
                }
            }
}

using StridedMap = Eigen::Map<RowMatrix, 0, Eigen::OuterStride<>>;
using ConstStridedMap = Eigen::Map<const RowMatrix, 0, Eigen::OuterStride<>>;

}  // namespace detail

/// y[N, O, OH, OW] = conv(x[N, C, H, W], weight[O, C, kh, kw]) + bias[O]. bias may be null.
inline void conv2d_forward(const float* x, const float* weight, const float* bias, const Conv2dShape& s, float* y) {
    s.validate();
    const Index C = s.in_channels, O = s.out_channels, HW = s.in_h * s.in_w;
    const Index OW = s.out_w(), OHW = s.out_h() * OW, K = s.patch();
    const Index R = detail::conv_chunk_rows(s), chunks = (s.out_h() + R - 1) / R, items = s.batch * chunks;
    const ConstRowMap Wm(weight, O, K);
    const Eigen::MatrixXd Wd = s.precise ? Eigen::MatrixXd(Wm.cast<double>()) : Eigen::MatrixXd();
    const bool pointwise = detail::conv_is_pointwise(s);
    std::vector<std::vector<float>> scratch(static_cast<std::size_t>(detail::conv_threads()));
#pragma omp parallel for schedule(dynamic)
    for (Index item = 0; item < items; ++item) {
        const Index n = item / chunks, r0 = (item % chunks) * R, r1 = std::min(s.out_h(), r0 + R);
        const Index ncols = (r1 - r0) * OW;
        detail::StridedMap Y(y + n * O * OHW + r0 * OW, O, ncols, Eigen::OuterStride<>(OHW));
        if (pointwise) {
            const detail::ConstStridedMap X(x + n * C * HW + r0 * OW, C, ncols, Eigen::OuterStride<>(HW));
            if (s.precise) Y = (Wd * X.cast<double>()).cast<float>();
            else Y.noalias() = Wm * X;
        } else {
            auto& buf = scratch[static_cast<std::size_t>(detail::conv_thread_id())];
            buf.resize(static_cast<std::size_t>(K * ncols));
            detail::im2col_rows(x + n * C * HW, s, r0, r1, buf.data());
            if (s.precise) Y = (Wd * ConstRowMap(buf.data(), K, ncols).cast<double>()).cast<float>();
            else Y.noalias() = Wm * ConstRowMap(buf.data(), K, ncols);
        }
        if (bias)
            for (Index o = 0; o < O; ++o) Y.row(o).array() += bias[o];
    }
}

/// Backward of conv2d_forward given dL/dy. grad_x is overwritten; grad_weight and grad_bias
/// accumulate (the convention of linear_backward). Any of the three may be null.
inline void conv2d_backward(const float* x, const float* weight, const float* grad_y, const Conv2dShape& s,
                            float* grad_x, float* grad_weight, float* grad_bias) {
    s.validate();
    const Index C = s.in_channels, O = s.out_channels, HW = s.in_h * s.in_w;
    const Index OW = s.out_w(), OHW = s.out_h() * OW, K = s.patch();
    const Index R = detail::conv_chunk_rows(s), chunks = (s.out_h() + R - 1) / R;
    const ConstRowMap Wm(weight, O, K);
    const Eigen::MatrixXd Wd = s.precise && grad_x ? Eigen::MatrixXd(Wm.cast<double>()) : Eigen::MatrixXd();
    const bool pointwise = detail::conv_is_pointwise(s);
    const int threads = detail::conv_threads();
    std::vector<std::vector<float>> scratch(static_cast<std::size_t>(threads));
    std::vector<RowMatrix> gw(grad_weight ? static_cast<std::size_t>(threads) : 0);
    for (auto& m : gw) m = RowMatrix::Zero(O, K);
    if (grad_x) std::fill(grad_x, grad_x + s.batch * C * HW, 0.0f);

    // Chunks two apart touch disjoint input rows, so even chunks run together, then odd ones:
    // col2im needs no atomics. A static schedule gives every thread the same items on every call,
    // so the per-thread weight-gradient sums add up in the same order: training is reproducible.
    for (Index parity = 0; parity < 2; ++parity) {
        const Index per_sample = (chunks + 1 - parity) / 2, items = s.batch * per_sample;
#pragma omp parallel for schedule(static)
        for (Index item = 0; item < items; ++item) {
            const Index n = item / per_sample, chunk = 2 * (item % per_sample) + parity;
            const Index r0 = chunk * R, r1 = std::min(s.out_h(), r0 + R), ncols = (r1 - r0) * OW;
            const detail::ConstStridedMap G(grad_y + n * O * OHW + r0 * OW, O, ncols, Eigen::OuterStride<>(OHW));
            const int tid = detail::conv_thread_id();
            auto& buf = scratch[static_cast<std::size_t>(tid)];
            if (pointwise) {
                if (grad_x) {
                    detail::StridedMap GX(grad_x + n * C * HW + r0 * OW, C, ncols, Eigen::OuterStride<>(HW));
                    if (s.precise) GX = (Wd.transpose() * G.cast<double>()).cast<float>();
                    else GX.noalias() = Wm.transpose() * G;
                }
                if (grad_weight)
                    gw[static_cast<std::size_t>(tid)].noalias() +=
                        G * detail::ConstStridedMap(x + n * C * HW + r0 * OW, C, ncols, Eigen::OuterStride<>(HW))
                                .transpose();
                continue;
            }
            buf.resize(static_cast<std::size_t>(K * ncols));
            if (grad_weight) {
                detail::im2col_rows(x + n * C * HW, s, r0, r1, buf.data());
                gw[static_cast<std::size_t>(tid)].noalias() += G * ConstRowMap(buf.data(), K, ncols).transpose();
            }
            if (grad_x) {
                if (s.precise) RowMap(buf.data(), K, ncols) = (Wd.transpose() * G.cast<double>()).cast<float>();
                else RowMap(buf.data(), K, ncols).noalias() = Wm.transpose() * G;
                detail::col2im_rows_add(buf.data(), s, r0, r1, grad_x + n * C * HW);
            }
        }
    }
    if (grad_weight)
        for (const auto& m : gw) RowMap(grad_weight, O, K) += m;
    if (grad_bias)
        for (Index o = 0; o < O; ++o) {
            double acc = 0.0;
            for (Index n = 0; n < s.batch; ++n) {
                const float* g = grad_y + (n * O + o) * OHW;
                for (Index i = 0; i < OHW; ++i) acc += g[i];
            }
            grad_bias[o] += static_cast<float>(acc);
        }
}

/// Tensor form of conv2d_forward: x [N, C, H, W], weight [O, C, kh, kw], bias [O] or empty.
inline Tensor<float> conv2d(const Tensor<float>& x, const Tensor<float>& weight, const Tensor<float>& bias,
                            Index stride, Index pad) {
    GANINV_CHECK(x.rank() == 4, ShapeError, "conv2d: input must be [N, C, H, W], got ", shape_to_string(x.shape()));
    GANINV_CHECK(weight.rank() == 4 && weight.dim(1) == x.dim(1), ShapeError, "conv2d: weight ",
                 shape_to_string(weight.shape()), " does not fit input ", shape_to_string(x.shape()));
    GANINV_CHECK(bias.empty() || bias.numel() == weight.dim(0), ShapeError, "conv2d: bias has ", bias.numel(),
                 " values for ", weight.dim(0), " output channels");
    const Conv2dShape s{x.dim(0), x.dim(1), weight.dim(0), x.dim(2), x.dim(3), weight.dim(2), weight.dim(3),
                        stride, pad, pad};
    s.validate();
    Tensor<float> y({s.batch, s.out_channels, s.out_h(), s.out_w()});
    conv2d_forward(x.data(), weight.data(), bias.empty() ? nullptr : bias.data(), s, y.data());
    return y;
}

/// In-place ReLU.
inline void relu_forward(float* x, Index n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (Index i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/// g *= (y > 0), with y the ReLU output (in place on the gradient).
inline void relu_backward(const float* y, float* g, Index n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (Index i = 0; i < n; ++i)
        if (!(y[i] > 0.0f)) g[i] = 0.0f;
}

}  // namespace ganinv::nn
