/// @file masked.hpp
/// @brief `Masked<L>`: only the pixels where mask > 0 count (inpainting: the mask marks the
///        known pixels of the target).
///
/// Normalisation (the choice matters for weighting against other terms):
/// - pixel losses (Mse, L1, Charbonnier: anything with `pointwise`): per image, the sum of the
///   pointwise loss over the selected values divided by their count, i.e. the mean over the
///   known region, so a small hole and a large one weigh the same per known pixel. An image
///   whose mask selects nothing scores 0 with a zero gradient.
/// - any other loss (Lpips, VggPerceptual, Identity): both images are multiplied by the binary
///   mask (unknown pixels become 0 in both) and L is evaluated on the results; L keeps its own
///   normalisation. The gradient is L's gradient times the mask.
/// The mask is [N or 1, 1 or C, H, W]; its values are thresholded at 0 (soft masks are binary).
#pragma once

#include "ganinv/concepts/loss.hpp"
#include "ganinv/loss/detail/common.hpp"
#include "ganinv/loss/pixel.hpp"

#include <string>
#include <utility>
#include <vector>

namespace ganinv {

template <class L>
class Masked {
    static_assert(Loss<L>, "ganinv::Masked<L>: L must satisfy the ganinv::Loss concept (concepts/loss.hpp)");

public:
    using backend_type = typename L::backend_type;
    using Buffer = typename L::Buffer;
    static constexpr bool differentiable = L::differentiable;

    explicit Masked(L inner, Buffer mask = {}) : inner_(std::move(inner)), mask_(std::move(mask)) {}

    void set_mask(Buffer mask) { mask_ = std::move(mask); }
    const Buffer& mask() const { return mask_; }
    std::string name() const { return concat(inner_.name(), "[mask]"); }
    L& inner() { return inner_; }

    LossResult evaluate(const Buffer& pred, const Buffer& target, Buffer* grad) {
        detail::check_pair(pred, target, name());
        detail::check_mask(mask_, pred.shape(), name());
        if constexpr (PixelLoss<L>) {
            return evaluate_pixel(pred, target, grad);
        } else {
            using Ops = detail::BufferOps<backend_type>;
            const Buffer pm = Ops::apply_binary_mask(pred, mask_);
            const Buffer tm = Ops::apply_binary_mask(target, mask_);
            LossResult r = inner_.evaluate(pm, tm, grad);
            if (grad) *grad = Ops::apply_binary_mask(*grad, mask_);
            for (auto& t : r.terms) t.name = concat(t.name, "[mask]");
            return r;
        }
    }

private:
    LossResult evaluate_pixel(const Buffer& pred, const Buffer& target, Buffer* grad) const {
        return detail::single_term(name(),
                                   detail::BufferOps<backend_type>::pixel_loss(inner_, pred, target, &mask_, grad));
    }

    L inner_;
    Buffer mask_;
};

}  // namespace ganinv
