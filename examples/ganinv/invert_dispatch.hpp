/// @file invert_dispatch.hpp
/// @brief Turns the run-time --space and --optimizer strings of the ganinv subcommands into one
///        compile-time Inverter<G, Space, Loss, Opt> run, for any generator (StyleGAN2<Cpu> or
///        StyleGAN2<Cuda>) and loss type. Used by invert (CPU and CUDA paths) and restore.
#pragma once

#include "cli.hpp"
#include "loss_spec.hpp"

#include <ganinv/invert/inverter.hpp>
#include <ganinv/latent/spaces.hpp>
#include <ganinv/optim/optim.hpp>

#include <string>
#include <utility>

namespace ganinv::cli {

template <class Space, class G, class LossT, class Opt>
InversionResult run_inverter(G& g, const LossT& loss, Opt opt, const InverterOptions& o, const Tensor<float>& t) {
    Inverter<G, Space, LossT, Opt> inv(g, loss, std::move(opt), o);
    return inv.run(t);
}

/// adam | lbfgs, and with kGradientFree also cmaes | basincma. Every optimizer is a full Inverter
/// instantiation, so commands whose losses always have gradients leave the last two out.
template <class Space, bool kGradientFree, class G, class LossT>
InversionResult run_optimizer(const std::string& optimizer, const Args& a, G& g, const LossT& loss,
                              const InverterOptions& o, const Tensor<float>& t) {
    if (optimizer == "adam") return run_inverter<Space>(g, loss, Adam(ProjectorSchedule{}.adam_options()), o, t);
    if (optimizer == "lbfgs") {
        LbfgsOptions lo;
        lo.history_size = a.integer("lbfgs-history", 10);
        return run_inverter<Space>(g, loss, Lbfgs(lo), o, t);
    }
    if constexpr (kGradientFree) {
        if (optimizer == "cmaes") {
            CmaEsOptions co;
            co.population = a.integer("population", 0);
            co.sigma = a.number("sigma", 0.5);
            co.seed = o.seed;
            return run_inverter<Space>(g, loss, CmaEs(co), o, t);
        }
        if (optimizer == "basincma") {
            BasinCmaOptions bo;
            bo.outer_iterations = o.steps;
            bo.inner_steps = a.integer("inner-steps", 30);
            bo.final_steps = a.integer("final-steps", 300);
            bo.sigma = a.number("sigma", 0.5);
            bo.cma.population = a.integer("population", 0);
            bo.cma.seed = o.seed;
            return run_inverter<Space>(g, loss, BasinCma(bo), o, t);
        }
        throw UsageError("unknown optimizer '" + optimizer + "' (adam, lbfgs, cmaes or basincma)");
    }
    throw UsageError("unknown optimizer '" + optimizer + "' (adam or lbfgs: this command's losses have gradients)");
}

/// z | w | wplus | s, then the optimizer.
template <bool kGradientFree = true, class G, class LossT>
InversionResult run_inversion(const std::string& space, const std::string& optimizer, const Args& a, G& g,
                              const LossT& loss, const InverterOptions& o, const Tensor<float>& t) {
    if (space == "w") return run_optimizer<WSpace, kGradientFree>(optimizer, a, g, loss, o, t);
    if (space == "wplus") return run_optimizer<WPlusSpace, kGradientFree>(optimizer, a, g, loss, o, t);
    if (space == "z") return run_optimizer<ZSpace, kGradientFree>(optimizer, a, g, loss, o, t);
    if (space == "s") return run_optimizer<SSpace, kGradientFree>(optimizer, a, g, loss, o, t);
    throw UsageError("unknown space '" + space + "' (z, w, wplus or s)");
}

}  // namespace ganinv::cli
