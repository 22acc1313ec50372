/// @file optimizer_ops.hpp
/// @brief Plain descriptions of the optimiser work a backend runs for the device-resident
///        inversion loop (invert/device_loop.hpp), and the per-element / per-row math that the
///        Cpu loops and the CUDA kernels share (so both backends compute the same numbers).
///
/// Everything a step reads that changes from step to step (its index, the learning rate, the
/// exploration-noise scale, which images still run) lives in backend memory: a CUDA graph of the
/// step stays valid while they change.
#pragma once

#include "ganinv/core/host_device.hpp"
#include "ganinv/core/tensor.hpp"

#include <cmath>

namespace ganinv::nn {

/// One parameter block of the batch, [rows, row_len] row-major, with its Adam moments and its
/// gradient (grad + grad2_scale * grad2; grad2 may be null: the noise regulariser's gradient).
struct ParamSegment {
    float* param = nullptr;
    float* m = nullptr;
    float* v = nullptr;
    const float* grad = nullptr;
    const float* grad2 = nullptr;
    float grad2_scale = 0.0f;
    Index row_len = 0;
};

/// Per-step values in backend memory: `step` (one float, the 0-based step index; exact below
/// 2^24) indexes the learning-rate and noise-scale tables; `running[r]` is 1 while row r runs.
struct StepState {
    const float* step = nullptr;
    const float* learning_rate = nullptr;  ///< [steps]
    const float* noise_scale = nullptr;    ///< [steps]
    const float* running = nullptr;        ///< [rows]
};

struct AdamConstants {
    float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
};

/// The Stopper of the host loop (invert/inverter.hpp) as data: an image stops once its loss is
/// <= target_loss (when has_target) or after `patience` steps without a relative gain.
struct StopRule {
    bool has_target = false;
    float target_loss = 0.0f;
    Index patience = 0;
    float min_relative_improvement = 1e-4f;
};

/// Per-row stop state, all [rows] except history [steps, rows]; stopped_at < 0 while running.
struct StopState {
    float* best = nullptr;
    float* since = nullptr;
    float* stopped_at = nullptr;
    float* running = nullptr;
    float* history = nullptr;
};

/// The scalar step sizes of Adam step t (1-based): lr / (1 - beta1^t) and sqrt(1 - beta2^t).
struct AdamStepSize {
    float step_size, bias2_sqrt;
};
GANINV_HOST_DEVICE inline AdamStepSize adam_step_size(const AdamConstants& c, float lr, float step) {
    const double t = static_cast<double>(step) + 1.0;
    return {static_cast<float>(lr / (1.0 - std::pow(static_cast<double>(c.beta1), t))),
            static_cast<float>(std::sqrt(1.0 - std::pow(static_cast<double>(c.beta2), t)))};
}

/// One Adam element update (torch.optim.Adam's order of operations, float moments).
GANINV_HOST_DEVICE inline void adam_element(const AdamConstants& c, const AdamStepSize& s, float g, float& p, float& m,
                                            float& v) {
    m = c.beta1 * m + (1.0f - c.beta1) * g;
    v = c.beta2 * v + (1.0f - c.beta2) * g * g;
    const float denom = std::sqrt(v) / s.bias2_sqrt + c.eps;
    p -= s.step_size * m / denom;
}

/// One row's stop-rule update for loss `value` at `step` (no-op for a row that stopped).
GANINV_HOST_DEVICE inline void stop_update(const StopRule& rule, float value, float step, float& best, float& since,
                                           float& stopped_at, float& running) {
    if (stopped_at >= 0.0f) return;
    const bool finite_best = best == best && best < 3.0e38f && best > -3.0e38f;
    if (value < best * (1.0f - rule.min_relative_improvement) || !finite_best) {
        best = value;
        since = 0.0f;
    } else {
        since += 1.0f;
    }
    if ((rule.has_target && value <= rule.target_loss) ||
        (rule.patience > 0 && since >= static_cast<float>(rule.patience))) {
        stopped_at = step + 1.0f;
        running = 0.0f;
    }
}

}  // namespace ganinv::nn
