/// @file inverter.hpp
/// @brief `Inverter<G, Space, Loss, Opt>`: composes a generator, a latent space, a loss and an
///        optimizer at compile time and inverts a batch of images. Unsupported combinations are
///        rejected by static_assert with a readable message.
#pragma once

#include "ganinv/concepts/generator.hpp"
#include "ganinv/concepts/latent_space.hpp"
#include "ganinv/concepts/loss.hpp"
#include "ganinv/concepts/optimizer.hpp"
#include "ganinv/core/eigen.hpp"
#include "ganinv/core/view.hpp"
#include "ganinv/invert/device_cma.hpp"
#include "ganinv/invert/device_lbfgs.hpp"
#include "ganinv/invert/device_loop.hpp"
#include "ganinv/invert/objective.hpp"
#include "ganinv/invert/options.hpp"
#include "ganinv/invert/projector_schedule.hpp"
#include "ganinv/invert/stopper.hpp"
#include "ganinv/optim/adam.hpp"
#include "ganinv/optim/cmaes.hpp"
#include "ganinv/optim/lbfgs.hpp"

#include <chrono>
#include <limits>
#include <string>
#include <type_traits>

namespace ganinv {

/// The backend's guard that keeps forms derived from the weights for a run (Cuda::freeze_weights),
/// or nothing on a backend without one.
template <class B>
auto freeze_weights_of(const B& b) {
    if constexpr (requires { b.freeze_weights(); }) return b.freeze_weights();
    else return 0;
}

template <class G, class Space, class LossT, class Opt>
class Inverter {
    static_assert(StyleGenerator<G>, "ganinv::Inverter: G must model StyleGenerator (e.g. StyleGAN2<Cpu>)");
    static_assert(LatentSpace<Space, G>, "ganinv::Inverter: Space must be a latent space (ZSpace, WSpace, WPlusSpace, SSpace)");
    static_assert(Loss<LossT>, "ganinv::Inverter: LossT must model the Loss concept (evaluate(pred, target, grad))");
    static_assert(std::is_same_v<typename LossT::backend_type, typename G::backend_type>,
                  "ganinv::Inverter: the loss runs on another backend than the generator "
                  "(use e.g. Mse<Cuda> with StyleGAN2<Cuda>)");
    static constexpr bool kFirstOrder = FirstOrderOptimizer<Opt>;
    static constexpr bool kLineSearch = ObjectiveOptimizer<Opt>;
    static constexpr bool kAskTell = AskTellOptimizer<Opt>;
    static constexpr bool kWholeRun = WholeRunOptimizer<Opt>;
    static_assert(kFirstOrder || kLineSearch || kAskTell || kWholeRun,
                  "ganinv::Inverter: Opt must be a FirstOrderOptimizer (Adam), an ObjectiveOptimizer (Lbfgs), "
                  "an AskTellOptimizer (CmaEs) or a WholeRunOptimizer (BasinCma)");
    static_assert(kAskTell || LossT::differentiable,
                  "ganinv::Inverter: this optimizer needs gradients but the loss is not differentiable; "
                  "use a gradient-free optimizer (CmaEs) or a differentiable loss");

public:
    Inverter(G& generator, LossT loss, Opt optimizer = {}, InverterOptions options = {}, Space space = {})
        : objective_(generator, std::move(loss), std::move(space), options), opt_(std::move(optimizer)) {
        // Mixed .cu/.cpp programs whose TUs disagree on Eigen's alignment would crash later, far
        // from the cause (core/eigen.hpp).
        if (const std::string mismatch = eigen_abi_mismatch(); !mismatch.empty()) throw ValueError(mismatch);
    }

    const InverterOptions& options() const { return objective_.options(); }
    InverterObjective<G, Space, LossT>& objective() { return objective_; }
    /// Where the last run's steps ran: "host", or "device, graph" / "device, plain (...)" (Adam,
    /// device_loop.hpp) / "device, lbfgs" (device_lbfgs.hpp) / "device, cmaes" (device_cma.hpp).
    const std::string& launch_mode() const { return launch_mode_; }

    /// Targets in the caller's memory (any strides, e.g. interleaved images or rows of an
    /// Eigen matrix through core/eigen_view.hpp): gathered once into the host tensor the
    /// backend's upload reads; the view is not kept.
    InversionResult run(const TensorView<const float, 4>& targets) { return run(to_tensor(targets)); }

    /// Inverts targets [N, C, R, R] in [-1, 1] (the generator's resolution and channel count).
    InversionResult run(const Tensor<float>& targets) {
        const auto t0 = std::chrono::steady_clock::now();
        objective_.set_targets(targets);
        const InverterOptions& o = objective_.options();
        const Index n = targets.dim(0);
        Tensor<float> params = objective_.initial_params();
        InversionResult res;
        res.stopped_at.assign(static_cast<std::size_t>(n), o.steps);
        ImageStopper stop(o, n);
        bool on_device = false;
        launch_mode_ = "host";
        // The generator does not change during an inversion: a backend that derives forms from the
        // weights at every call may keep them for the run (CUDA: cuda/weight_prep.hpp).
        [[maybe_unused]] const auto frozen = freeze_weights_of(objective_.generator().backend());

        if constexpr (std::is_same_v<Opt, Adam>) {
            if (DeviceAdamLoop<G, Space, LossT>::supported(o, n)) {
                DeviceAdamLoop<G, Space, LossT> loop(objective_, opt_.options());
                params = loop.run(params, res);
                launch_mode_ = "device, " + loop.launch_mode();
                on_device = true;
            }
        }
        if constexpr (std::is_same_v<Opt, Lbfgs>) {
            if (DeviceLbfgsLoop<G, Space, LossT>::supported(o, n)) {
                DeviceLbfgsLoop<G, Space, LossT> loop(objective_, opt_.options());
                params = loop.run(params, res);
                launch_mode_ = "device, " + loop.launch_mode();
                on_device = true;
            }
        }
        if constexpr (std::is_same_v<Opt, CmaEs>) {
            if (DeviceCmaLoop<G, Space, LossT>::supported(o, n)) {
                DeviceCmaLoop<G, Space, LossT> loop(objective_, opt_.options());
                params = loop.run(params, res);
                launch_mode_ = "device, " + loop.launch_mode();
                on_device = true;
            }
        }
        if (on_device) {
            // A device loop ran the steps and filled the history, steps_run and stopped_at.
        } else if constexpr (kFirstOrder) {
            opt_.reset(n, params.dim(1));
            Rng rng(o.seed ^ 0x5EEDULL);
            Tensor<float> grads;
            for (Index step = 0; step < o.steps && stop.running(); ++step) {
                double noise_scale = 0;
                if constexpr (requires { opt_.set_learning_rate(0.0); }) {
                    const StepSchedule at = step_schedule(o, o.steps, step, objective_.statistics().w_std);
                    opt_.set_learning_rate(at.learning_rate);
                    noise_scale = at.w_noise_scale;
                }
                const Tensor<float> before = params;
                const auto values = objective_.evaluate(params, &grads, noise_scale, &rng);
                opt_.step(params, grads);
                stop.freeze_stopped(params, before);
                objective_.renormalize_noise(params);
                record(res, stop, values, step);
            }
        } else if constexpr (kLineSearch) {
            opt_.reset(n, params.dim(1));
            const BatchObjective f = objective_.batch_objective();
            std::vector<double> values = f(params, nullptr);
            for (Index step = 0; step < o.steps && stop.running(); ++step) {
                const Tensor<float> before = params;
                values = opt_.step(params, f);
                stop.freeze_stopped(params, before);
                record(res, stop, values, step);
            }
        } else if constexpr (kWholeRun) {  // before ask/tell: BasinCma also has ask/tell for its outer loop
            const auto run = opt_.minimize(params, objective_.batch_objective());
            for (std::size_t i = 0; i < run.history.size(); ++i) record(res, stop, run.history[i], static_cast<Index>(i));
            params = run.best_params;
        } else {
            opt_.reset(params);
            const BatchObjective f = objective_.batch_objective();
            for (Index step = 0; step < o.steps && stop.running(); ++step) {
                const Tensor<float> population = opt_.ask();
                opt_.tell(f(population, nullptr));
                record(res, stop, opt_.best_values(), step);
            }
            params = opt_.best();
        }
        objective_.finish(params, res);
        if (!on_device) res.stopped_at = stop.stopped_at(res.steps_run);
        res.evaluations = objective_.evaluations();
        res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        res.launch_mode = launch_mode_;
        return res;
    }

private:
    void record(InversionResult& res, ImageStopper& stop, const std::vector<double>& values, Index step) {
        res.loss_history.push_back(values);
        res.steps_run = step + 1;
        stop.update(values, step);
        const InverterOptions& o = objective_.options();
        if (o.on_progress && ((step + 1) % std::max<Index>(1, o.progress_every) == 0 || step + 1 == o.steps)) {
            InversionProgress p;
            p.step = step + 1;
            p.total_steps = o.steps;
            p.loss = &values;
            p.terms = &objective_.last_terms();
            p.images_running = stop.count_running();
            o.on_progress(p);
        }
    }

    InverterObjective<G, Space, LossT> objective_;
    Opt opt_;
    std::string launch_mode_ = "host";
};

}  // namespace ganinv
