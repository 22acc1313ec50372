/// @file optimizer.hpp
/// @brief Optimizer concepts. Parameters are a batch of independent problems, one row of a
///        [N, dim] host tensor per image; every optimizer keeps separate state per row.
///
///  - `FirstOrderOptimizer`: `step(params, grads)` (Adam).
///    Satisfied by: ganinv::Adam.
///  - `ObjectiveOptimizer`: `step(params, objective)`, evaluating the objective as often as it
///    needs (line searches).  Satisfied by: ganinv::Lbfgs.
///  - `AskTellOptimizer`: gradient-free; `ask()` a population [N * lambda, dim] to evaluate as one
///    batch, `tell(values)`.  Satisfied by: ganinv::CmaEs.
///  - `WholeRunOptimizer`: runs its own schedule to the end from a start, given a gradient
///    objective over population rows.  Satisfied by: ganinv::BasinCma.
#pragma once

#include "ganinv/core/tensor.hpp"

#include <concepts>
#include <functional>
#include <vector>

namespace ganinv {

/// Per-row objective: fills grads (same shape as params, when non-null) and returns one value per row.
using BatchObjective = std::function<std::vector<double>(const Tensor<float>& params, Tensor<float>* grads)>;

template <class O>
concept FirstOrderOptimizer = requires(O& opt, Tensor<float>& params, const Tensor<float>& grads) {
    opt.reset(Index{}, Index{});  ///< rows, dim: clears the state
    opt.step(params, grads);
};

template <class O>
concept ObjectiveOptimizer = requires(O& opt, Tensor<float>& params, const BatchObjective& f) {
    opt.reset(Index{}, Index{});
    { opt.step(params, f) } -> std::same_as<std::vector<double>>;  ///< values at the new params
};

template <class O>
concept AskTellOptimizer = requires(O& opt, const Tensor<float>& mean, const std::vector<double>& values) {
    opt.reset(mean);                                 ///< [N, dim] starting means
    { opt.ask() } -> std::same_as<Tensor<float>>;   ///< [N * population, dim]
    opt.tell(values);                                ///< N * population values
    { opt.best() } -> std::same_as<Tensor<float>>;  ///< [N, dim] best point seen per row
};

/// Any optimiser whose minimize(start, f) returns an object with best_params, best_values and
/// history (one row of per-problem best values per outer iteration).
template <class O>
concept WholeRunOptimizer = requires(O& opt, const Tensor<float>& start, const BatchObjective& f) {
    { opt.minimize(start, f).best_params } -> std::convertible_to<Tensor<float>>;
    { opt.minimize(start, f).best_values } -> std::convertible_to<std::vector<double>>;
    { opt.minimize(start, f).history } -> std::convertible_to<std::vector<std::vector<double>>>;
};

}  // namespace ganinv
