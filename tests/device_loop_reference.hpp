/// @file device_loop_reference.hpp
/// @brief The reference the device-resident Adam loop (invert/device_loop.hpp) is tested against:
///        the host loop of before (host rows, the host Adam with double moments, the objective's
///        host evaluate, the host re-normalisation), with the device loop's exploration noise
///        (Philox) so both follow the same trajectory. Shared by the CPU and CUDA tests.
#pragma once

#include <ganinv/core/philox.hpp>
#include <ganinv/invert/objective.hpp>
#include <ganinv/invert/projector_schedule.hpp>
#include <ganinv/optim/adam.hpp>

#include <vector>

namespace ganinv::test {

struct ReferenceRun {
    Tensor<float> params;
    std::vector<std::vector<double>> history;
};

/// o.steps Adam steps of the projector's loop from the objective's initial rows (no priors, no
/// stop rule), every step's per-image loss in history.
template <class Space, class G, class LossT>
ReferenceRun reference_adam_run(G& g, LossT loss, InverterOptions o, const Tensor<float>& targets) {
    o.device_loop = false;
    InverterObjective<G, Space, LossT> f(g, std::move(loss), Space{}, o);
    f.set_targets(targets);
    ReferenceRun run;
    run.params = f.initial_params();
    const Index n = run.params.dim(0), width = run.params.dim(1), code_dim = f.code_dim();
    const ProjectorSchedule sched = ProjectorSchedule::official(o.steps);
    Adam adam(sched.adam_options());
    adam.reset(n, width);
    Tensor<float> grads;
    for (Index step = 0; step < o.steps; ++step) {
        double lr = o.learning_rate, scale = 0.0;
        if (o.projector_schedule) {
            lr = o.learning_rate / sched.initial_learning_rate * sched.learning_rate(step);
            scale = o.w_noise_factor / sched.initial_noise_factor * sched.w_noise_scale(step, f.statistics().w_std);
        }
        const float s = static_cast<float>(scale);
        Tensor<float> perturbed = run.params;
        for (Index r = 0; r < n; ++r)
            for (Index j = 0; j < code_dim; ++j)
                if (s != 0.0f)
                    perturbed[r * width + j] += s * philox_normal(o.seed ^ 0x5EEDULL, static_cast<std::uint64_t>(step),
                                                                  static_cast<std::uint64_t>(r * code_dim + j));
        run.history.push_back(f.evaluate(perturbed, &grads, 0.0, nullptr));
        adam.set_learning_rate(lr);
        adam.step(run.params, grads);
        f.renormalize_noise(run.params);
    }
    return run;
}

/// ||a - b|| / ||b|| over all entries.
inline double relative_l2(const Tensor<float>& a, const Tensor<float>& b) {
    double num = 0, den = 0;
    for (Index i = 0; i < a.numel(); ++i) {
        num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
        den += static_cast<double>(b[i]) * b[i];
    }
    return std::sqrt(num / std::max(den, 1e-300));
}

}  // namespace ganinv::test
