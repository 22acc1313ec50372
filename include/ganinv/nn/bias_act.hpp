/// @file bias_act.hpp
/// @brief Bias + activation + gain + clamp, the epilogue of every StyleGAN2 layer, with its
///        backward. Semantics of StyleGAN2-ADA's bias_act: y = clamp(act(x + b) * gain, ±clamp).
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"

#include <cmath>
#include <numbers>

namespace ganinv::nn {

/// Below this many element operations a loop runs on one thread: on small or shared machines an
/// OpenMP fork/join can cost more than the loop (measured: batch-1 synthesis 5x slower).
inline constexpr Index kParallelMinWork = Index{1} << 18;

enum class Activation { linear, lrelu };

struct BiasActParams {
    Activation act = Activation::linear;
    float alpha = 0.2f;   ///< lrelu slope
    float gain = 1.0f;    ///< multiplies after the activation
    float clamp = -1.0f;  ///< < 0: no clamp

    /// The defaults of the official code: lrelu gets gain sqrt(2), linear gets 1.
    static BiasActParams lrelu(float extra_gain = 1.0f, float clamp = -1.0f) {
        return {Activation::lrelu, 0.2f, std::numbers::sqrt2_v<float> * extra_gain,
                clamp >= 0 ? clamp * extra_gain : -1.0f};
    }
    static BiasActParams linear(float clamp = -1.0f) { return {Activation::linear, 0.2f, 1.0f, clamp}; }
};

/// In place on x[N, C, spatial]: x = clamp(act(x + b[c]) * gain). Keeps nothing: the backward
/// recomputes the derivative from the output (the sign survives lrelu and the positive gain).
inline void bias_act_forward(float* x, Index n, Index c, Index spatial, const float* bias, const BiasActParams& p) {
    const bool lrelu = p.act == Activation::lrelu;
#pragma omp parallel for schedule(static) if (n * c * spatial > kParallelMinWork)
    for (Index nc = 0; nc < n * c; ++nc) {
        const float b = bias ? bias[nc % c] : 0.0f;
        float* row = x + nc * spatial;
        for (Index i = 0; i < spatial; ++i) {
            float v = row[i] + b;
            if (lrelu && v < 0.0f) v *= p.alpha;
            v *= p.gain;
            if (p.clamp >= 0.0f) v = std::fmin(std::fmax(v, -p.clamp), p.clamp);
            row[i] = v;
        }
    }
}

/// Given y (the forward output) and grad_y, writes grad_x (may alias grad_y) and accumulates
/// grad_bias[c] when non-null. A clamped element passes no gradient, as in torch.clamp (an
/// output exactly at the clamp value is treated as clamped: a measure-zero difference).
inline void bias_act_backward(const float* y, const float* grad_y, Index n, Index c, Index spatial,
                              const BiasActParams& p, float* grad_x, float* grad_bias) {
    const bool lrelu = p.act == Activation::lrelu;
    std::vector<double> bias_acc(grad_bias ? static_cast<std::size_t>(n * c) : 0, 0.0);
#pragma omp parallel for schedule(static) if (n * c * spatial > kParallelMinWork)
    for (Index nc = 0; nc < n * c; ++nc) {
        const float* yr = y + nc * spatial;
        const float* gr = grad_y + nc * spatial;
        float* gx = grad_x + nc * spatial;
        double acc = 0.0;
        for (Index i = 0; i < spatial; ++i) {
            const float v = yr[i];
            float g = gr[i];
            if (p.clamp >= 0.0f && std::fabs(v) >= p.clamp) g = 0.0f;  // clamped: no gradient
            g *= p.gain;
            if (lrelu && v < 0.0f) g *= p.alpha;
            gx[i] = g;
            acc += g;
        }
        if (grad_bias) bias_acc[static_cast<std::size_t>(nc)] = acc;
    }
    if (grad_bias)
        for (Index nc = 0; nc < n * c; ++nc) grad_bias[nc % c] += static_cast<float>(bias_acc[static_cast<std::size_t>(nc)]);
}

}  // namespace ganinv::nn
