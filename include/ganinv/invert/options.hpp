/// @file options.hpp
/// @brief Settings, progress reports and results of an inversion run.
#pragma once

#include "ganinv/concepts/code_regularizer.hpp"
#include "ganinv/concepts/generator_inputs.hpp"
#include "ganinv/concepts/loss.hpp"
#include "ganinv/invert/projector_schedule.hpp"
#include "ganinv/latent/statistics.hpp"
#include "ganinv/metrics/metrics.hpp"

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ganinv {

struct InversionProgress {
    Index step = 0;         ///< steps (or generations) done
    Index total_steps = 0;
    const std::vector<double>* loss = nullptr;         ///< per image, total objective
    const std::vector<LossTerm>* terms = nullptr;      ///< per image, each named term
    Index images_running = 0;                          ///< not yet stopped
};

/// A CodeRegularizer behind a uniform type, so that options stay one type for every generator,
/// space and regulariser (shared: the options are copied per batch, the regulariser is not).
struct CodeRegularizerHook {
    std::string name;
    std::function<std::vector<double>(const Tensor<float>& ws, Tensor<float>* grad_ws)> evaluate;
};

template <CodeRegularizer R>
CodeRegularizerHook make_code_regularizer_hook(std::shared_ptr<R> r) {
    GANINV_CHECK(r != nullptr, ValueError, "make_code_regularizer_hook: no regulariser");
    return {std::string(r->name()), [r](const Tensor<float>& ws, Tensor<float>* g) { return r->evaluate(ws, g); }};
}

struct InverterOptions {
    Index steps = 1000;          ///< optimiser steps (CMA-ES: generations; BasinCMA: outer iterations)
    std::uint64_t seed = 0;      ///< exploration noise, random init, noise-map init, CMA sampling
    LatentInit init{};           ///< start from the mean w (default), a random code, or given codes
    Index w_statistics_samples = 10000;  ///< z samples behind the mean w and w_std (as the projector)
    /// Shared between runs with ONE generator (e.g. the batches of a command): the first run that
    /// needs the statistics fills it, later runs reuse it instead of mapping the samples again.
    std::shared_ptr<LatentStatistics> w_statistics_cache;

    // Noise maps.
    bool optimize_noise = false;             ///< noise maps become variables (official projector: yes)
    double noise_regularization = kProjectorNoiseWeight;  ///< weight of the projector's noise regulariser
    NoiseMode fixed_noise = NoiseMode::constant;  ///< noise when not optimised

    // Adam and the official projector schedule.
    bool projector_schedule = true;  ///< lr ramp-up/cosine ramp-down and w exploration noise (Adam only)
    double learning_rate = 0.1;      ///< initial (schedule) or constant learning rate
    double w_noise_factor = 0.05;    ///< exploration noise: factor * w_std * max(0, 1 - t/0.75)^2
    /// The schedule's ramps as fractions of the run (the projector's 0.05 and 0.25; 0 = no ramp).
    /// A start near the answer (an encoder's codes) wants a longer ramp-up and no exploration
    /// noise: use_refinement_schedule below.
    double lr_rampup = 0.05;
    double lr_rampdown = 0.25;

    // Priors on the code (W and W+ rows; 0 = off).
    double w_avg_prior = 0.0;         ///< weight * mean((w - w_avg)^2)
    double wplus_spread_prior = 0.0;  ///< weight * mean over layers of (w_l - mean_l w)^2 (W+)
    /// A penalty on the ws of the (unperturbed) codes, added to each row's objective (W and W+;
    /// the optimisation then runs on the host loop): e.g. in-domain inversion's
    /// DomainRegularizer (invert/domain_regularizer.hpp).
    std::optional<CodeRegularizerHook> code_regularizer;

    /// Report each final code's mean Mahalanobis distance under the W distribution (a Gaussian
    /// fitted to the w_statistics_samples mapped samples; InversionResult::w_mahalanobis).
    bool w_mahalanobis = false;

    // Stopping, per image.
    std::optional<double> target_loss;     ///< an image stops once its loss <= this
    Index patience = 0;                    ///< stop after this many steps without relative gain; 0 = off
    double min_relative_improvement = 1e-4;

    // Where Adam, L-BFGS and CMA-ES run (W and W+ without priors or code regulariser;
    // invert/device_loop.hpp, invert/device_lbfgs.hpp, invert/device_cma.hpp).
    bool device_loop = true;   ///< parameters, moments, schedule, stop state on the generator's backend
    bool device_graph = true;  ///< on CUDA: capture the step once as a graph and replay it

    Index eval_batch = 64;  ///< most rows per generator call (population evaluation)
    Index progress_every = 1;
    std::function<void(const InversionProgress&)> on_progress;
};

/// The schedule for a start near the answer (hybrid inversion from an encoder's codes): the
/// projector's, with Adam's rate ramped up over the first 20% of the steps (not 5%) and no
/// exploration noise. The projector's schedule is made for a start at the mean code: from an
/// encoder's codes its noise and its early full-rate steps (Adam's first steps move every
/// coordinate by about the rate, whatever its gradient) throw away part of the start. Measured on
/// the demo model, test images 0-63, 100 W+ steps (docs/encoders.md): projector 26.44 dB, constant
/// rate 27.47, this 28.84 (500 steps from the mean code: 27.98 in the same session).
inline void use_refinement_schedule(InverterOptions& o) {
    o.projector_schedule = true;
    o.lr_rampup = 0.2;
    o.lr_rampdown = 0.25;
    o.w_noise_factor = 0.0;
}

/// The learning rate and exploration-noise scale of step `step` of `steps` as InverterOptions ask:
/// the projector's schedule with the options' rate, ramps and noise factor, or a constant rate
/// and no noise (`projector_schedule = false`). The host loop and the device loops both ask here.
struct StepSchedule {
    double learning_rate = 0;
    double w_noise_scale = 0;
};

inline StepSchedule step_schedule(const InverterOptions& o, Index steps, Index step, double w_std) {
    if (!o.projector_schedule) return {o.learning_rate, 0.0};
    ProjectorSchedule sched = ProjectorSchedule::official(std::max<Index>(steps, 1));
    sched.lr_rampup_length = o.lr_rampup;
    sched.lr_rampdown_length = o.lr_rampdown;
    return {o.learning_rate / sched.initial_learning_rate * sched.learning_rate(step),
            o.w_noise_factor / sched.initial_noise_factor * sched.w_noise_scale(step, w_std)};
}

struct InversionResult {
    std::string space;
    Tensor<float> params;                ///< [N, dim] the optimised rows (code, then noise maps)
    Tensor<float> ws;                    ///< [N, num_ws, w_dim] (S space: the ws it started from)
    Tensor<float> z;                     ///< [N, z_dim] (Z space only)
    Tensor<float> styles;                ///< [N, style_dim] (S space only)
    std::vector<Tensor<float>> noise;    ///< per layer [N, R, R] when noise was optimised
    Tensor<float> reconstruction;        ///< [N, C, R, R] with the final code (and noise)
    Tensor<float> reconstruction_fixed_noise;  ///< with the generator's fixed noise, when noise was optimised
    std::vector<metrics::Comparison> metrics;              ///< reconstruction vs target (range [-1, 1])
    std::vector<metrics::Comparison> metrics_fixed_noise;  ///< when noise was optimised
    /// Per image, with InverterOptions::w_mahalanobis (Z, W, W+; empty for S): the final ws'
    /// Mahalanobis distance under the W distribution, averaged over the layers.
    std::vector<double> w_mahalanobis;
    std::vector<std::vector<double>> loss_history;  ///< [step][image]
    std::vector<Index> stopped_at;       ///< the step each image stopped at
    Index steps_run = 0;
    Index evaluations = 0;               ///< generator batches evaluated
    double seconds = 0;
    /// How the steps ran (Inverter::launch_mode()): "host", "device, graph", "device, plain (why)", "device, lbfgs".
    std::string launch_mode;
};

}  // namespace ganinv
