/// @file latent_space.hpp
/// @brief Concept `LatentSpace`: what an inverter optimises. A space owns the meaning of a
///        per-image parameter row (z, w, w+, styles): its size, its initialisation, the map to an
///        image through the generator, the backward of that map, and the codes it saves.
///
/// Satisfied by: ganinv::ZSpace, ganinv::WSpace, ganinv::WPlusSpace, ganinv::SSpace
///               (latent/spaces.hpp), for any StyleGenerator.
#pragma once

#include "ganinv/concepts/generator.hpp"
#include "ganinv/core/tensor.hpp"

#include <concepts>

namespace ganinv {

struct LatentStatistics;
struct LatentInit;

template <class S, class G>
concept LatentSpace = StyleGenerator<G> &&
    requires(S& space, G& g, const Tensor<float>& params, typename S::template Cache<G>& cache,
             const typename G::Buffer& grad_img, const NoiseInput<typename G::backend_type>& noise,
             const LatentStatistics& stats, const LatentInit& init) {
        { S::name } -> std::convertible_to<const char*>;
        { space.dim(g) } -> std::convertible_to<Index>;
        /// [N, dim] starting parameters
        { space.initial(g, stats, init, Index{}) } -> std::same_as<Tensor<float>>;
        /// image [N, C, R, R] from params [N, dim]; keeps what backward needs in cache
        { space.forward(g, params, noise, cache) } -> std::same_as<typename G::Buffer>;
        /// d(loss)/d(params) [N, dim] from d(loss)/d(image); the synthesis gradients (noise) in cache
        { space.backward(g, cache, grad_img) } -> std::same_as<Tensor<float>>;
        /// ws [N, num_ws, w_dim] the params stand for (S space: the ws it started from)
        { space.to_ws(g, params) } -> std::same_as<Tensor<float>>;
        /// whether Gaussian exploration noise of scale w_std may be added (W and W+ only)
        { S::w_like } -> std::convertible_to<bool>;
    };

}  // namespace ganinv
