/// @file test_loss_support.hpp
/// @brief Helpers of the loss tests: random images, dot products and the finite-difference
///        gradient check every loss goes through.
#pragma once

#include "test_support.hpp"

#include <ganinv/concepts/loss.hpp>
#include <ganinv/core/rng.hpp>
#include <ganinv/core/tensor.hpp>
#include <ganinv/io/safetensors.hpp>

#include <algorithm>
#include <cmath>
#include <span>
#include <string>

namespace ganinv::test {

inline Tensor<float> random_tensor(const Shape& shape, Rng& rng, float scale = 1.0f) {
    Tensor<float> t(shape);
    rng.fill_normal(t.values(), 0.0, scale);
    return t;
}

/// Uniform values in [-0.9, 0.9]: an image in the generator's [-1, 1] range.
inline Tensor<float> random_image(const Shape& shape, Rng& rng) {
    Tensor<float> t(shape);
    for (float& v : t.values()) v = static_cast<float>(1.8 * rng.uniform() - 0.9);
    return t;
}

inline double dot(std::span<const float> a, std::span<const float> b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
    return s;
}

inline double total(const LossResult& r) {
    double s = 0;
    for (double v : r.per_image) s += v;
    return s;
}

/// Compares <grad, delta> with L(p + h v) - L(p - h v), delta = (p + h v) - (p - h v) as
/// rounded in float (so the input's quantisation is not mistaken for a gradient error), along
/// three random directions v; L = sum of the per-image values (accumulated in double). `tol`
/// bounds the relative difference. `step(pred, v)` picks h per direction: networks with ReLU and
/// max pooling are only piecewise smooth, so their tests choose an h at which no ReLU or
/// max-pool decision changes between the two points (see flip_free_step).
///
/// `local` > 0: v is nonzero only in a random local x local window of one image. Directions
/// whose step comes out below `min_h` are redrawn (up to 20 times). For deep networks this keeps
/// both the number of ReLU/max-pool decisions the step can flip and the float rounding noise of
/// L(p + h v) - L(p - h v) small (features outside the window's receptive field do not change).
template <class L, class Step>
void check_gradient_with(L& loss, const Tensor<float>& pred, const Tensor<float>& target, Rng& rng, double tol,
                         const std::string& what, Step step, Index local = 0, double min_h = 0.0) {
    Tensor<float> grad;
    const LossResult r0 = loss.evaluate(pred, target, &grad);
    REQUIRE(grad.shape() == pred.shape());
    for (double v : r0.per_image) REQUIRE(std::isfinite(v));
    for (int dir = 0, tries = 0; dir < 3; ++dir) {
        Tensor<float> v = random_tensor(pred.shape(), rng);
        if (local > 0) {
            const Index n = static_cast<Index>(rng.below(static_cast<std::uint64_t>(pred.dim(0))));
            const Index y0 = static_cast<Index>(rng.below(static_cast<std::uint64_t>(pred.dim(2) - local + 1)));
            const Index x0 = static_cast<Index>(rng.below(static_cast<std::uint64_t>(pred.dim(3) - local + 1)));
            for (Index i = 0; i < v.numel(); ++i) {
                const Index x = i % pred.dim(3), y = (i / pred.dim(3)) % pred.dim(2);
                const Index img = i / (pred.dim(1) * pred.dim(2) * pred.dim(3));
                if (img != n || y < y0 || y >= y0 + local || x < x0 || x >= x0 + local) v[i] = 0.0f;
            }
        }
        const double h = step(pred, v);
        if (h < min_h && ++tries < 20) {  // the window sits next to a kink: too small a step to resolve, redraw
            --dir;
            continue;
        }
        Tensor<float> plus = pred, minus = pred;
        double an = 0.0, typical = 0.0;
        for (Index i = 0; i < pred.numel(); ++i) {
            plus[i] += static_cast<float>(h) * v[i];
            minus[i] -= static_cast<float>(h) * v[i];
            const double term = static_cast<double>(grad[i]) * (static_cast<double>(plus[i]) - static_cast<double>(minus[i]));
            an += term;
            typical += term * term;
        }
        const double fd = total(loss.evaluate(plus, target, nullptr)) - total(loss.evaluate(minus, target, nullptr));
        // Relative to the larger of the two and of the typical size of a random-direction
        // derivative, ||g o delta||: a direction that happens to cancel out is no failure.
        const double rel = std::abs(fd - an) / std::max({std::abs(fd), std::abs(an), std::sqrt(typical), 1e-300});
        INFO(what << ": direction " << dir << ", h " << h << ": finite difference " << fd << ", analytic " << an
                  << ", rel " << rel);
        CHECK(rel <= tol);
    }
}

template <class L>
void check_gradient(L& loss, const Tensor<float>& pred, const Tensor<float>& target, Rng& rng, double tol,
                    const std::string& what, double h = 1e-3) {
    check_gradient_with(loss, pred, target, rng, tol, what, [h](const Tensor<float>&, const Tensor<float>&) { return h; });
}

/// The largest h = h0 / 2^k for which `pattern(p + h v) == pattern(p - h v)`: the network's
/// ReLU signs and max-pool winners (its linear piece) stay the same along the whole step.
template <class Pattern>
double flip_free_step(const Tensor<float>& p, const Tensor<float>& v, Pattern pattern, double h0 = 1e-2) {
    double h = h0;
    for (int k = 0; k < 40; ++k, h *= 0.5) {
        Tensor<float> plus = p, minus = p;
        for (Index i = 0; i < p.numel(); ++i) {
            plus[i] += static_cast<float>(h) * v[i];
            minus[i] -= static_cast<float>(h) * v[i];
        }
        if (pattern(plus) == pattern(minus)) return h;
    }
    FAIL("no flip-free step found");
    return h;
}

}  // namespace ganinv::test
