/// @file projector_schedule.hpp
/// @brief `ProjectorSchedule`, the learning-rate ramp and latent-noise schedule of the official
///        StyleGAN2-ADA projector, and `projector_w_std`. The inverter applies it to first-order
///        optimisers (invert/inverter.hpp); it is a property of the projection, not of Adam.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/optim/adam.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

namespace ganinv {

/// The official projector's regularize_noise_weight: the one place the number is written.
inline constexpr double kProjectorNoiseWeight = 1e5;

/// The schedule of the official StyleGAN2-ADA `projector.py` (`project()`), as a preset. For step t
/// of T (t = 0 .. T-1, t_frac = t / T):
///   w_noise_scale = w_std * initial_noise_factor * max(0, 1 - t_frac / noise_ramp_length)^2
///   lr_ramp = min(1, (1 - t_frac) / lr_rampdown_length);  lr_ramp = 0.5 - 0.5 cos(pi lr_ramp)
///   lr_ramp *= min(1, t_frac / lr_rampup_length);        lr = initial_learning_rate * lr_ramp
/// The projector minimises dist + regularize_noise_weight * noise_reg with Adam(betas 0.9, 0.999,
/// eps 1e-8), adds N(0, w_noise_scale^2) to w before synthesis and renormalises the noise maps to
/// zero mean / unit variance after every step; those two belong to the latent space, this struct
/// only supplies the numbers. Note that step 0 has learning rate 0 (the ramp-up starts at 0).
struct ProjectorSchedule {
    Index num_steps = 1000;
    double initial_learning_rate = 0.1;
    double initial_noise_factor = 0.05;
    double lr_rampdown_length = 0.25;
    double lr_rampup_length = 0.05;
    double noise_ramp_length = 0.75;
    /// The projector's noise-regulariser weight; InverterOptions::noise_regularization defaults to it.
    static constexpr double regularize_noise_weight = kProjectorNoiseWeight;

    /// The official defaults for a run of `steps` steps.
    static ProjectorSchedule official(Index steps = 1000) {
        ProjectorSchedule s;
        s.num_steps = steps;
        return s;
    }

    double t_frac(Index step) const {
        GANINV_CHECK(num_steps > 0, ValueError, "ProjectorSchedule: num_steps must be positive, got ", num_steps);
        GANINV_CHECK(step >= 0 && step < num_steps, ValueError, "ProjectorSchedule: step ", step,
                     " outside [0, ", num_steps, ")");
        return static_cast<double>(step) / static_cast<double>(num_steps);
    }

    /// A ramp length of 0 switches that ramp off (the official numbers never do).
    double learning_rate(Index step) const {
        const double t = t_frac(step);
        GANINV_CHECK(lr_rampdown_length >= 0 && lr_rampup_length >= 0, ValueError,
                     "ProjectorSchedule: ramp lengths must be >= 0, got ramp-down ", lr_rampdown_length, ", ramp-up ",
                     lr_rampup_length);
        double ramp = 1.0;
        if (lr_rampdown_length > 0) {
            ramp = std::min(1.0, (1.0 - t) / lr_rampdown_length);
            ramp = 0.5 - 0.5 * std::cos(ramp * std::numbers::pi);
        }
        if (lr_rampup_length > 0) ramp *= std::min(1.0, t / lr_rampup_length);
        return initial_learning_rate * ramp;
    }

    /// Standard deviation of the Gaussian noise added to w at this step.
    double w_noise_scale(Index step, double w_std) const {
        const double t = t_frac(step);
        const double ramp = std::max(0.0, 1.0 - t / noise_ramp_length);
        return w_std * initial_noise_factor * ramp * ramp;
    }

    /// Adam settings of the official projector.
    AdamOptions adam_options() const { return AdamOptions{initial_learning_rate, 0.9, 0.999, 1e-8}; }

    /// Sets the optimiser's learning rate for `step` (call before `Adam::step`).
    void apply(Adam& adam, Index step) const { adam.set_learning_rate(learning_rate(step)); }
};

/// w_std as the official projector computes it from mapped samples w [S, C]: the root of the
/// summed squared deviation from the sample mean, divided by S (not S * C): the expected distance
/// of a w from w_avg, not a per-channel deviation.
inline double projector_w_std(const Tensor<float>& w_samples) {
    GANINV_CHECK(w_samples.rank() == 2 && w_samples.dim(0) > 0, ShapeError,
                 "projector_w_std: w_samples must be [S, C] with S > 0, got ", shape_to_string(w_samples.shape()));
    const Index s = w_samples.dim(0), c = w_samples.dim(1);
    std::vector<double> avg(static_cast<std::size_t>(c), 0.0);
    for (Index i = 0; i < s; ++i)
        for (Index j = 0; j < c; ++j) avg[static_cast<std::size_t>(j)] += w_samples[i * c + j];
    for (double& a : avg) a /= static_cast<double>(s);
    double sum = 0.0;
    for (Index i = 0; i < s; ++i)
        for (Index j = 0; j < c; ++j) {
            const double d = w_samples[i * c + j] - avg[static_cast<std::size_t>(j)];
            sum += d * d;
        }
    return std::sqrt(sum / static_cast<double>(s));
}

}  // namespace ganinv
