/// @file cpu_buffer_ops.hpp
/// @brief `BufferOps<Cpu>`: the per-backend buffer arithmetic the losses and their wrappers are
///        written against (pixel-loss reductions, masking, the degradation operators, sums and
///        scales). `BufferOps<Cuda>` (backend/cuda_buffer_ops.cuh) has the same members over device tensors,
///        so Mse, Masked, Degraded, Weighted and Sum are one template per backend.
#pragma once

#include "ganinv/backend/buffer_ops.hpp"
#include "ganinv/backend/cpu_fwd.hpp"
#include "ganinv/core/color.hpp"
#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/nn/noise_reg_plane.hpp"

#include <cstring>
#include <type_traits>
#include <vector>

namespace ganinv {
namespace detail {

/// Offset of the mask plane for image n, channel c: the mask is [N or 1, 1 or C, H, W].
inline Index mask_plane(Index n, Index c, Index mask_n, Index mask_c, Index hw) {
    return ((mask_n == 1 ? 0 : n) * mask_c + (mask_c == 1 ? 0 : c)) * hw;
}

template <>
struct BufferOps<Cpu> {
    using Buffer = Tensor<float>;

    /// Makes `b` a tensor of `shape` (reallocating only when the shape differs). `like` names
    /// the memory `b` should come from (unused on the host).
    static void ensure(Buffer& b, const Shape& shape, const Buffer& /*like*/) {
        if (b.shape() != shape) b = Buffer(shape);
    }
    static void scale(Buffer& b, float w) {
        float* p = b.data();
        for (Index i = 0; i < b.numel(); ++i) p[i] *= w;
    }
    /// dst += alpha * src (same shape).
    static void add(Buffer& dst, const Buffer& src, float alpha = 1.0f) {
        float* d = dst.data();
        const float* s = src.data();
        for (Index i = 0; i < dst.numel(); ++i) d[i] += alpha * s[i];
    }
    /// out = x * (mask > 0), mask [N or 1, 1 or C, H, W] broadcast over x [N, C, H, W].
    static Buffer apply_binary_mask(const Buffer& x, const Buffer& mask) {
        Buffer out(x.shape());
        const Index N = x.dim(0), C = x.dim(1), HW = x.dim(2) * x.dim(3);
        for (Index n = 0; n < N; ++n)
            for (Index c = 0; c < C; ++c) {
                const float* m = mask.data() + mask_plane(n, c, mask.dim(0), mask.dim(1), HW);
                const float* src = x.data() + (n * C + c) * HW;
                float* dst = out.data() + (n * C + c) * HW;
                for (Index i = 0; i < HW; ++i) dst[i] = m[i] > 0.0f ? src[i] : 0.0f;
            }
        return out;
    }

    /// Per image: sum of loss.pointwise(p - t) over the values selected by `mask` (all when
    /// null), times norm = 1 / (number of selected values); an image with none scores 0. grad
    /// (nullable, resized) = pointwise_grad * norm on selected values, 0 elsewhere.
    template <class L>
    static std::vector<double> pixel_loss(const L& loss, const Buffer& pred, const Buffer& target, const Buffer* mask,
                                          Buffer* grad) {
        const Index N = pred.dim(0), C = pred.dim(1), HW = pred.dim(2) * pred.dim(3), m = C * HW;
        if (grad) ensure(*grad, pred.shape(), pred);
        std::vector<double> per_image(static_cast<std::size_t>(N), 0.0);
#pragma omp parallel for schedule(static) if (N > 1 && N * m > 65536)
        for (Index n = 0; n < N; ++n) {
            Index count = m;
            if (mask) {
                count = 0;
                for (Index c = 0; c < C; ++c) {
                    const float* mk = mask->data() + mask_plane(n, c, mask->dim(0), mask->dim(1), HW);
                    for (Index i = 0; i < HW; ++i) count += mk[i] > 0.0f ? 1 : 0;
                }
            }
            const double norm = count > 0 ? 1.0 / static_cast<double>(count) : 0.0;
            double acc = 0.0;
            for (Index c = 0; c < C; ++c) {
                const float* mk = mask ? mask->data() + mask_plane(n, c, mask->dim(0), mask->dim(1), HW) : nullptr;
                const Index off = (n * C + c) * HW;
                for (Index i = 0; i < HW; ++i) {
                    const bool on = !mk || mk[i] > 0.0f;
                    const double d = static_cast<double>(pred[off + i]) - static_cast<double>(target[off + i]);
                    if (on) acc += loss.pointwise(d);
                    if (grad) (*grad)[off + i] = on ? static_cast<float>(loss.pointwise_grad(d) * norm) : 0.0f;
                }
            }
            per_image[static_cast<std::size_t>(n)] = acc * norm;
        }
        return per_image;
    }

    /// per_image[n] += the noise regulariser of plane n of `map` (N planes of H x W); grad
    /// (nullable, already map's shape) receives its gradient.
    static void add_noise_regularizer(const Buffer& map, Index N, Index H, Index W, Buffer* grad,
                                      std::vector<double>& per_image) {
        for (Index n = 0; n < N; ++n)
            per_image[static_cast<std::size_t>(n)] +=
                noise_reg_plane(map.data() + n * H * W, H, W, grad ? grad->data() + n * H * W : nullptr);
    }

    /// Mean over k x k blocks: [N, C, H, W] -> [N, C, H/k, W/k] (shape checked by the caller).
    static Buffer area_downsample(const Buffer& x, Index k) {
        const Shape& s = x.shape();
        Buffer y({s[0], s[1], s[2] / k, s[3] / k});
        const Index planes = s[0] * s[1], OH = s[2] / k, OW = s[3] / k, W = s[3];
        const float inv = 1.0f / static_cast<float>(k * k);
        for (Index p = 0; p < planes; ++p)
            for (Index i = 0; i < OH; ++i)
                for (Index j = 0; j < OW; ++j) {
                    float acc = 0.0f;
                    for (Index a = 0; a < k; ++a)
                        for (Index b = 0; b < k; ++b) acc += x[(p * OH * k + i * k + a) * W + j * k + b];
                    y[(p * OH + i) * OW + j] = acc * inv;
                }
        return y;
    }
    /// Adjoint of area_downsample: every input pixel receives gy / k^2 of its block.
    static Buffer area_downsample_backward(const Buffer& gy, Index k, const Shape& in) {
        Buffer gx(in);
        const Index planes = in[0] * in[1], OH = in[2] / k, OW = in[3] / k, W = in[3];
        const float inv = 1.0f / static_cast<float>(k * k);
        for (Index p = 0; p < planes; ++p)
            for (Index i = 0; i < OH * k; ++i)
                for (Index j = 0; j < W; ++j) gx[(p * OH * k + i) * W + j] = gy[(p * OH + i / k) * OW + j / k] * inv;
        return gx;
    }
    /// [N, 3, H, W] -> [N, 1, H, W] by BT.601 luma.
    static Buffer to_gray(const Buffer& x) {
        const Index N = x.dim(0), HW = x.dim(2) * x.dim(3);
        Buffer y({N, 1, x.dim(2), x.dim(3)});
        for (Index n = 0; n < N; ++n)
            for (Index i = 0; i < HW; ++i)
                y[n * HW + i] = LumaWeights::r * x[(n * 3) * HW + i] + LumaWeights::g * x[(n * 3 + 1) * HW + i] +
                                LumaWeights::b * x[(n * 3 + 2) * HW + i];
        return y;
    }
    /// Adjoint of to_gray: [N, 1, H, W] -> [N, 3, H, W].
    static Buffer to_gray_backward(const Buffer& gy) {
        const Index N = gy.dim(0), HW = gy.dim(2) * gy.dim(3);
        Buffer gx({N, 3, gy.dim(2), gy.dim(3)});
        for (Index n = 0; n < N; ++n)
            for (Index i = 0; i < HW; ++i) {
                const float g = gy[n * HW + i];
                gx[(n * 3) * HW + i] = LumaWeights::r * g;
                gx[(n * 3 + 1) * HW + i] = LumaWeights::g * g;
                gx[(n * 3 + 2) * HW + i] = LumaWeights::b * g;
            }
        return gx;
    }
};

}  // namespace detail
}  // namespace ganinv
