/// @file pixel_loss_cases.hpp
/// @brief One driver per backend for the pixel losses and the loss wrappers (Masked, Degraded
///        with every op, Weighted, Sum, WeightedLossSum/AnyLoss): cpu_reference_losses.cpp runs it
///        on Cpu, test_cuda_pixel_losses.cu on Cuda, and the test compares the two.
#pragma once

#include <ganinv/core/error.hpp>
#include <ganinv/core/rng.hpp>
#include <ganinv/core/tensor.hpp>
#include <ganinv/loss/any_loss.hpp>
#include <ganinv/loss/compose.hpp>
#include <ganinv/loss/degraded.hpp>
#include <ganinv/loss/masked.hpp>
#include <ganinv/loss/pixel.hpp>

#include <string>
#include <vector>

namespace ganinv::test {

/// Every case the driver knows; each needs images of the shape pixel_case_shape gives.
inline const std::vector<std::string>& pixel_case_names() {
    static const std::vector<std::string> names = {
        "mse", "l1", "charbonnier", "masked_mse_shared", "masked_l1_per_image", "masked_lpips_like_path",
        "degraded_area2", "degraded_area4_observed", "degraded_gray", "degraded_mask", "weighted_sum", "any_loss_sum"};
    return names;
}

/// Odd sizes and batches on purpose; colour cases use RGB.
inline Shape pixel_case_shape(const std::string& name) {
    if (name == "degraded_gray") return {3, 3, 11, 13};
    if (name == "degraded_area2") return {3, 2, 14, 18};
    if (name == "degraded_area4_observed") return {1, 1, 32, 32};
    return {3, 2, 13, 17};
}

struct PixelCaseInputs {
    Tensor<float> pred, target, mask;
};

/// pred, target ~ N(0, 0.5); the masks select ~40 % of the pixels, and image 1 of the
/// per-image mask selects nothing (the loss must be 0 with a zero gradient there).
inline PixelCaseInputs pixel_case_inputs(const std::string& name, std::uint64_t seed) {
    const Shape s = pixel_case_shape(name);
    PixelCaseInputs in{Tensor<float>(s), Tensor<float>(s), {}};
    Rng rng(seed);
    for (float& v : in.pred.values()) v = static_cast<float>(0.5 * rng.normal());
    for (float& v : in.target.values()) v = static_cast<float>(0.5 * rng.normal());
    const bool per_image = name == "masked_l1_per_image";
    in.mask = Tensor<float>({per_image ? s[0] : 1, per_image ? s[1] : 1, s[2], s[3]});
    for (float& v : in.mask.values()) v = rng.uniform() < 0.4 ? 1.0f : 0.0f;
    if (per_image) std::fill(in.mask.data() + s[1] * s[2] * s[3], in.mask.data() + 2 * s[1] * s[2] * s[3], 0.0f);
    if (name == "degraded_area4_observed") {  // the target is the low-resolution observation
        Tensor<float> low({s[0], s[1], s[2] / 4, s[3] / 4});
        for (float& v : low.values()) v = static_cast<float>(0.5 * rng.normal());
        in.target = low;
    }
    return in;
}

struct PixelCaseResult {
    std::vector<double> per_image;
    std::vector<std::string> term_names;
    Tensor<float> grad;
};

/// Runs case `name` on backend B: `up`/`down` move host tensors to B's buffers and back, and
/// `poison` fills a buffer with NaN (to prove the loss writes every gradient element).
template <class B, class Up, class Down, class Poison>
PixelCaseResult run_pixel_case(const std::string& name, const PixelCaseInputs& in, Up up, Down down, Poison poison) {
    using Buf = typename detail::BufferOps<B>::Buffer;
    const Buf pred = up(in.pred), target = up(in.target), mask = up(in.mask);
    Buf grad = up(in.pred);
    poison(grad);
    LossResult r;
    auto run = [&](auto&& loss) { r = loss.evaluate(pred, target, &grad); };
    if (name == "mse") run(Mse<B>{});
    else if (name == "l1") run(L1<B>{});
    else if (name == "charbonnier") run(Charbonnier<B>{0.05});
    else if (name == "masked_mse_shared" || name == "masked_l1_per_image") {
        if (name == "masked_mse_shared") run(Masked<Mse<B>>(Mse<B>{}, mask));
        else run(Masked<L1<B>>(L1<B>{}, mask));
    } else if (name == "masked_lpips_like_path") {  // a non-pixel inner loss: masks both images
        run(Masked<Weighted<Mse<B>>>(Weighted<Mse<B>>(Mse<B>{}, 2.0), mask));
    } else if (name == "degraded_area2") run(Degraded<Mse<B>, AreaDownsample<2, B>>(Mse<B>{}));
    else if (name == "degraded_area4_observed") run(Degraded<L1<B>, AreaDownsample<4, B>>(L1<B>{}));
    else if (name == "degraded_gray") run(Degraded<Mse<B>, ToGray<B>>(Mse<B>{}));
    else if (name == "degraded_mask") run(Degraded<Mse<B>, MaskOp<B>>(Mse<B>{}, MaskOp<B>{mask}));
    else if (name == "weighted_sum") run(Sum<Mse<B>, Weighted<L1<B>>>(Mse<B>{}, Weighted<L1<B>>(L1<B>{}, 0.25)));
    else if (name == "any_loss_sum") {
        WeightedLossSum<B> sum;
        sum.add(AnyLoss<B>(Charbonnier<B>{0.01}), 0.5);
        sum.add(AnyLoss<B>(Masked<Mse<B>>(Mse<B>{}, mask)), 3.0);
        run(sum);
    } else {
        throw ValueError("run_pixel_case: unknown case " + name);
    }
    PixelCaseResult out{r.per_image, {}, down(grad)};
    for (const auto& t : r.terms) out.term_names.push_back(t.name);
    return out;
}

}  // namespace ganinv::test
