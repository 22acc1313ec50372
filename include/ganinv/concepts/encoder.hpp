/// @file encoder.hpp
/// @brief Concept `Encoder`: a network that maps an image batch to codes in one forward pass
///        (learning-based inversion), with a backward to its weights (training) and to its input
///        (losses on the image side, iterative refinement), keeping what the backward needs in a cache.
///
/// Satisfied by: ganinv::PspEncoder (CPU), ganinv::PspEncoderCuda (CUDA, models/psp_encoder_cuda.cuh).
#pragma once

#include "ganinv/core/tensor.hpp"

#include <concepts>

namespace ganinv {

template <class E>
concept Encoder = requires(const E& e, const typename E::Buffer& images, typename E::Cache& cache,
                           const typename E::Buffer& grad_codes, typename E::Buffer* grad_params) {
    typename E::backend_type;
    typename E::Buffer;
    typename E::Cache;
    /// The generator the codes are for: codes are [N, num_ws, w_dim] (W+).
    { e.num_ws() } -> std::convertible_to<Index>;
    { e.w_dim() } -> std::convertible_to<Index>;
    { e.resolution() } -> std::convertible_to<Index>;
    { e.in_channels() } -> std::convertible_to<Index>;
    { e.num_params() } -> std::convertible_to<Index>;
    /// codes from images [N, in_channels, R, R]
    { e.forward(images, &cache) } -> std::same_as<typename E::Buffer>;
    /// dL/dimages from dL/dcodes; dL/dweights accumulate into grad_params ([1, num_params]) when non-null
    { e.backward(cache, grad_codes, grad_params) } -> std::same_as<typename E::Buffer>;
};

}  // namespace ganinv
