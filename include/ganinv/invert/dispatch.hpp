/// @file dispatch.hpp
/// @brief Run-time choice of the latent space ("z", "w", "wplus", "s") and the optimizer ("adam",
///        "lbfgs", "cmaes", "basincma") for one compile-time Inverter<G, Space, Loss, Opt> run, for
///        any generator and loss type. Front ends that take names from their users (the ganinv
///        tool, the Python package) share it, so the same names give the same numbers everywhere.
#pragma once

#include "ganinv/invert/inverter.hpp"
#include "ganinv/latent/spaces.hpp"
#include "ganinv/optim/optim.hpp"

#include <string>
#include <utility>

namespace ganinv {

/// The settings of the optimizers that InverterOptions does not hold (defaults as the ganinv tool).
struct OptimizerSettings {
    Index lbfgs_history = 10;  ///< L-BFGS history size
    Index population = 0;      ///< CMA-ES / BasinCMA population; 0 = 4 + 3 ln n
    double sigma = 0.5;        ///< CMA-ES / BasinCMA initial step size
    Index inner_steps = 30;    ///< BasinCMA: Adam steps per sample
    Index final_steps = 300;   ///< BasinCMA: final Adam steps
};

template <class Space, class G, class LossT, class Opt>
InversionResult run_inverter(G& g, const LossT& loss, Opt opt, const InverterOptions& o, const Tensor<float>& t) {
    Inverter<G, Space, LossT, Opt> inv(g, loss, std::move(opt), o);
    return inv.run(t);
}

/// adam | lbfgs, and with kGradientFree also cmaes | basincma. Every optimizer is a full Inverter
/// instantiation, so callers whose losses always have gradients leave the last two out.
/// An unknown name is a ValueError listing the known ones.
template <class Space, bool kGradientFree, class G, class LossT>
InversionResult run_optimizer(const std::string& optimizer, const OptimizerSettings& s, G& g, const LossT& loss,
                              const InverterOptions& o, const Tensor<float>& t) {
    if (optimizer == "adam") return run_inverter<Space>(g, loss, Adam(ProjectorSchedule{}.adam_options()), o, t);
    if (optimizer == "lbfgs") {
        LbfgsOptions lo;
        lo.history_size = s.lbfgs_history;
        return run_inverter<Space>(g, loss, Lbfgs(lo), o, t);
    }
    if constexpr (kGradientFree) {
        if (optimizer == "cmaes") {
            CmaEsOptions co;
            co.population = s.population;
            co.sigma = s.sigma;
            co.seed = o.seed;
            return run_inverter<Space>(g, loss, CmaEs(co), o, t);
        }
        if (optimizer == "basincma") {
            BasinCmaOptions bo;
            bo.outer_iterations = o.steps;
            bo.inner_steps = s.inner_steps;
            bo.final_steps = s.final_steps;
            bo.sigma = s.sigma;
            bo.cma.population = s.population;
            bo.cma.seed = o.seed;
            return run_inverter<Space>(g, loss, BasinCma(bo), o, t);
        }
        throw ValueError("unknown optimizer '" + optimizer + "' (adam, lbfgs, cmaes or basincma)");
    }
    throw ValueError("unknown optimizer '" + optimizer + "' (adam or lbfgs: these losses have gradients)");
}

/// z | w | wplus | s, then the optimizer.
template <bool kGradientFree = true, class G, class LossT>
InversionResult run_inversion(const std::string& space, const std::string& optimizer, const OptimizerSettings& s,
                              G& g, const LossT& loss, const InverterOptions& o, const Tensor<float>& t) {
    if (space == "w") return run_optimizer<WSpace, kGradientFree>(optimizer, s, g, loss, o, t);
    if (space == "wplus") return run_optimizer<WPlusSpace, kGradientFree>(optimizer, s, g, loss, o, t);
    if (space == "z") return run_optimizer<ZSpace, kGradientFree>(optimizer, s, g, loss, o, t);
    if (space == "s") return run_optimizer<SSpace, kGradientFree>(optimizer, s, g, loss, o, t);
    throw ValueError("unknown space '" + space + "' (z, w, wplus or s)");
}

}  // namespace ganinv
