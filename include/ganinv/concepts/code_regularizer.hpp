/// @file code_regularizer.hpp
/// @brief Concept `CodeRegularizer`: a differentiable penalty on latent codes that an inverter
///        adds to each image's objective, evaluated on the codes' ws [rows, num_ws, w_dim]
///        (W and W+ inversions). It may run networks of its own (the generator, an encoder):
///        in-domain inversion's ||w - E(G(w))||^2 is one.
///
/// Satisfied by: ganinv::DomainRegularizer<G, E> (invert/domain_regularizer.hpp).
#pragma once

#include "ganinv/core/tensor.hpp"

#include <concepts>
#include <string>
#include <vector>

namespace ganinv {

template <class R>
concept CodeRegularizer = requires(R& r, const Tensor<float>& ws, Tensor<float>* grad_ws) {
    /// The name of its term in progress reports (InversionProgress::terms).
    { r.name() } -> std::convertible_to<std::string>;
    /// One value per row of ws; dR/dws ([rows, num_ws, w_dim], overwritten) when grad_ws is non-null.
    { r.evaluate(ws, grad_ws) } -> std::same_as<std::vector<double>>;
};

}  // namespace ganinv
