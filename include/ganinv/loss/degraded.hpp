/// @file degraded.hpp
/// @brief `Degraded<L, Op>`: compares a degraded version of the prediction with the target,
///        L(Op(pred), target), for restoration through inversion: super-resolution
///        (AreaDownsample<k>), colorization (ToGray), inpainting (MaskOp). Every op has a forward
///        and its adjoint, so the gradient reaches pred.
///
/// The target may be given degraded (the observation: Op(pred)'s shape) or clean (pred's shape,
/// e.g. in synthetic experiments); a clean target is degraded with the same op first. Note the
/// normalisation: Degraded<Mse, MaskOp> averages over all pixels (the masked-out ones count as
/// zero error), Masked<Mse> over the known ones only.
#pragma once

#include "ganinv/concepts/loss.hpp"
#include "ganinv/core/color.hpp"
#include "ganinv/loss/detail/common.hpp"

#include <concepts>
#include <string>
#include <utility>

namespace ganinv {

/// A differentiable linear image operator: forward, its adjoint (backward) and the shape map.
template <class Op>
concept DegradationOp = requires(const Op& op, const typename Op::Buffer& x, const Shape& s) {
    typename Op::backend_type;
    { op.name() } -> std::convertible_to<std::string>;
    { op.output_shape(s) } -> std::convertible_to<Shape>;
    { op.forward(x) } -> std::same_as<typename Op::Buffer>;
    { op.backward(x, s) } -> std::same_as<typename Op::Buffer>;
};

/// Mean over k x k blocks ([N, C, H, W] -> [N, C, H/k, W/k]; H and W must be multiples of k):
/// the area down-sampling of the super-resolution forward model.
template <int K, class Backend = Cpu>
struct AreaDownsample {
    static_assert(K >= 1, "AreaDownsample<k>: k must be >= 1");
    using backend_type = Backend;
    using Buffer = typename detail::BufferOps<Backend>::Buffer;

    std::string name() const { return concat("area_down", K); }
    Shape output_shape(const Shape& s) const {
        GANINV_CHECK(s.size() == 4 && s[2] % K == 0 && s[3] % K == 0, ShapeError, "AreaDownsample<", K,
                     ">: image size must be a multiple of ", K, ", got shape ", shape_to_string(s));
        return {s[0], s[1], s[2] / K, s[3] / K};
    }
    Buffer forward(const Buffer& x) const {
        output_shape(x.shape());
        return detail::BufferOps<Backend>::area_downsample(x, K);
    }
    Buffer backward(const Buffer& gy, const Shape& in) const {
        expect_shape(gy, output_shape(in), name() + " backward: gradient");
        return detail::BufferOps<Backend>::area_downsample_backward(gy, K, in);
    }
};

/// RGB -> gray by BT.601 luma (0.299, 0.587, 0.114), as io/image_ops.hpp's to_channels; a
/// 1-channel input passes through. The colorization forward model.
template <class Backend = Cpu>
struct ToGray {
    using backend_type = Backend;
    using Buffer = typename detail::BufferOps<Backend>::Buffer;
    static constexpr float kR = LumaWeights::r, kG = LumaWeights::g, kB = LumaWeights::b;

    std::string name() const { return "gray"; }
    Shape output_shape(const Shape& s) const {
        GANINV_CHECK(s.size() == 4 && (s[1] == 1 || s[1] == 3), ShapeError,
                     "ToGray: images must be [N, 1 or 3, H, W], got shape ", shape_to_string(s));
        return {s[0], 1, s[2], s[3]};
    }
    Buffer forward(const Buffer& x) const {
        output_shape(x.shape());
        if (x.shape()[1] == 1) return x;
        return detail::BufferOps<Backend>::to_gray(x);
    }
    Buffer backward(const Buffer& gy, const Shape& in) const {
        expect_shape(gy, output_shape(in), "ToGray backward: gradient");
        if (in[1] == 1) return gy;
        return detail::BufferOps<Backend>::to_gray_backward(gy);
    }
};

/// x * (mask > 0) with a [N or 1, 1 or C, H, W] mask: the inpainting forward model. Self-adjoint.
template <class Backend = Cpu>
struct MaskOp {
    using backend_type = Backend;
    using Buffer = typename detail::BufferOps<Backend>::Buffer;
    Buffer mask;

    std::string name() const { return "mask"; }
    Shape output_shape(const Shape& s) const {
        detail::check_mask(mask, s, "MaskOp");
        return s;
    }
    Buffer forward(const Buffer& x) const {
        output_shape(x.shape());
        return detail::BufferOps<Backend>::apply_binary_mask(x, mask);
    }
    Buffer backward(const Buffer& gy, const Shape& in) const {
        expect_shape(gy, output_shape(in), "MaskOp backward: gradient");
        return detail::BufferOps<Backend>::apply_binary_mask(gy, mask);
    }
};

template <class L, class Op>
class Degraded {
    static_assert(Loss<L>, "ganinv::Degraded<L, Op>: L must satisfy the ganinv::Loss concept (concepts/loss.hpp)");
    static_assert(DegradationOp<Op>, "ganinv::Degraded<L, Op>: Op must provide name, output_shape, forward and "
                                     "backward (see DegradationOp in loss/degraded.hpp)");
    static_assert(std::is_same_v<typename L::backend_type, typename Op::backend_type>,
                  "ganinv::Degraded<L, Op>: the loss and the op must run on the same backend");

public:
    using backend_type = typename L::backend_type;
    using Buffer = typename L::Buffer;
    static constexpr bool differentiable = L::differentiable;

    explicit Degraded(L inner, Op op = {}) : inner_(std::move(inner)), op_(std::move(op)) {}

    std::string name() const { return concat(inner_.name(), "[", op_.name(), "]"); }
    Op& op() { return op_; }
    L& inner() { return inner_; }

    LossResult evaluate(const Buffer& pred, const Buffer& target, Buffer* grad) {
        GANINV_CHECK(pred.shape().size() == 4 && pred.numel() > 0, ShapeError, name(),
                     ": pred must be a non-empty [N, C, H, W] tensor, got shape ", shape_to_string(pred.shape()));
        const Shape degraded = op_.output_shape(pred.shape());
        const Buffer y = op_.forward(pred);
        Buffer t_local;
        const Buffer* t = &target;
        if (target.shape() == pred.shape()) {
            t_local = op_.forward(target);
            t = &t_local;
        } else {
            GANINV_CHECK(target.shape() == degraded, ShapeError, name(), ": target has shape ",
                         shape_to_string(target.shape()), "; expected the degraded shape ", shape_to_string(degraded),
                         " (an observation) or pred's shape ", shape_to_string(pred.shape()), " (a clean image)");
        }
        Buffer gy;
        LossResult r = inner_.evaluate(y, *t, grad ? &gy : nullptr);
        if (grad) *grad = op_.backward(gy, pred.shape());
        for (auto& term : r.terms) term.name = concat(term.name, "[", op_.name(), "]");
        return r;
    }

private:
    L inner_;
    Op op_;
};

}  // namespace ganinv
