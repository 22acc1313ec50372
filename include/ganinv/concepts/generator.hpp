/// @file generator.hpp
/// @brief Concept `Generator`: maps per-layer codes (ws) to images and back-propagates image
///        gradients to the codes, keeping what the backward needs in a cache.
///
/// Satisfied by: ganinv::StyleGAN2<Cpu>, ganinv::StyleGAN2<Cuda>.
#pragma once

#include "ganinv/core/tensor.hpp"
#include "ganinv/concepts/generator_inputs.hpp"

#include <concepts>

namespace ganinv {

template <class G>
concept Generator = requires(G& g, const typename G::Buffer& ws, typename G::Cache& cache,
                             const NoiseInput<typename G::backend_type>& noise) {
    typename G::backend_type;
    typename G::Buffer;
    typename G::Cache;
    { g.num_ws() } -> std::convertible_to<Index>;
    { g.w_dim() } -> std::convertible_to<Index>;
    { g.resolution() } -> std::convertible_to<Index>;
    { g.img_channels() } -> std::convertible_to<Index>;
    /// img [N, C, R, R] from ws [N, num_ws, w_dim]
    { g.synthesis(ws, noise, &cache) } -> std::same_as<typename G::Buffer>;
    /// dL/dws from dL/dimg
    { g.synthesis_backward_ws(cache, ws) } -> std::same_as<typename G::Buffer>;
};

/// A generator with a z -> w mapping network and per-layer styles (Z and S latent spaces need it).
template <class G>
concept StyleGenerator = Generator<G> && requires(G& g, const typename G::Buffer& t, typename G::MapCache& mc) {
    typename G::MapCache;
    { g.z_dim() } -> std::convertible_to<Index>;
    { g.style_dim() } -> std::convertible_to<Index>;
    { g.mapping(t, Truncation{}, &mc) } -> std::same_as<typename G::Buffer>;
    { g.mapping_backward(mc, t) } -> std::same_as<typename G::Buffer>;
    { g.styles(t) } -> std::same_as<typename G::Buffer>;
};

}  // namespace ganinv
