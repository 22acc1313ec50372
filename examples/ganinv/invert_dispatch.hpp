/// @file invert_dispatch.hpp
/// @brief The --space and --optimizer options of the ganinv subcommands: the library's run-time
///        dispatch (ganinv/invert/dispatch.hpp) with the optimizer settings read from the command
///        line. Used by invert (CPU and CUDA paths) and restore.
#pragma once

#include "cli.hpp"
#include "loss_spec.hpp"

#include <ganinv/invert/dispatch.hpp>

#include <string>

namespace ganinv::cli {

/// --lbfgs-history, --population, --sigma, --inner-steps, --final-steps (defaults as the library's).
inline OptimizerSettings optimizer_settings_from_args(const Args& a) {
    const OptimizerSettings defaults;
    OptimizerSettings s;
    s.lbfgs_history = a.integer("lbfgs-history", defaults.lbfgs_history);
    s.population = a.integer("population", defaults.population);
    s.sigma = a.number("sigma", defaults.sigma);
    s.inner_steps = a.integer("inner-steps", defaults.inner_steps);
    s.final_steps = a.integer("final-steps", defaults.final_steps);
    return s;
}

/// Space and optimizer names were checked with the other arguments (space_option,
/// optimizer_option) before any work, so the library's ValueError for an unknown name is not
/// reached from the command line.
template <bool kGradientFree = true, class G, class LossT>
InversionResult run_inversion(const std::string& space, const std::string& optimizer, const Args& a, G& g,
                              const LossT& loss, const InverterOptions& o, const Tensor<float>& t) {
    return ganinv::run_inversion<kGradientFree>(space, optimizer, optimizer_settings_from_args(a), g, loss, o, t);
}

}  // namespace ganinv::cli
