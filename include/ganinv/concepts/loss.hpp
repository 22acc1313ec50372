/// @file loss.hpp
/// @brief Concept `Loss`: compares a batch of generated images with targets, returning one
///        value per image (and named per-term values for composite losses), and — for
///        differentiable losses — the gradient of the sum of the per-image values w.r.t. pred.
///
/// Satisfied by: ganinv::Mse<B>, L1<B>, Charbonnier<B>, Lpips<B>, VggPerceptual<B>, Identity<B>,
///               Masked<L>, Degraded<L, Op>, Weighted<L>, Sum<L...> (loss/*.hpp).
#pragma once

#include "ganinv/core/tensor.hpp"

#include <concepts>
#include <string>
#include <vector>

namespace ganinv {

struct LossTerm {
    std::string name;
    std::vector<double> per_image;
};

struct LossResult {
    std::vector<double> per_image;  ///< total per image (what optimisers minimise)
    std::vector<LossTerm> terms;    ///< the named parts (one entry for a plain loss)
};

template <class L>
concept Loss = requires(L& loss, const typename L::Buffer& pred, const typename L::Buffer& target,
                        typename L::Buffer* grad) {
    typename L::backend_type;
    typename L::Buffer;
    { L::differentiable } -> std::convertible_to<bool>;
    { loss.name() } -> std::convertible_to<std::string>;
    /// pred, target [N, C, H, W]; grad (nullable) receives d(sum_i value_i)/dpred, same shape.
    { loss.evaluate(pred, target, grad) } -> std::same_as<LossResult>;
};

/// A loss the gradient-based optimisers can use.
template <class L>
concept DifferentiableLoss = Loss<L> && L::differentiable;

}  // namespace ganinv
