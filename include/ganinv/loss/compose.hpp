/// @file compose.hpp
/// @brief Composition of losses at compile time: `Weighted<L>` (a constant factor) and
///        `Sum<L...>` (the total of several losses, reporting each part as a named term), plus
///        `evaluate_with_gradient`, the entry point for code that needs a gradient: it refuses a
///        non-differentiable loss at compile time with a readable message.
///
/// Example: `Sum<Lpips<>, Weighted<Mse<>>> loss(Lpips<>::load(...), Weighted(Mse<>{}, 0.1));`
/// reports terms "lpips" and "mse" (the latter already multiplied by 0.1) whose sum is the total.
#pragma once

#include "ganinv/concepts/loss.hpp"
#include "ganinv/loss/detail/common.hpp"

#include <cmath>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

namespace ganinv {

/// `weight * L`. The per-image values and every term are scaled, so terms still add up to the
/// total; the term names stay those of L.
template <class L>
class Weighted {
    static_assert(Loss<L>, "ganinv::Weighted<L>: L must satisfy the ganinv::Loss concept (concepts/loss.hpp)");

public:
    using backend_type = typename L::backend_type;
    using Buffer = typename L::Buffer;
    static constexpr bool differentiable = L::differentiable;

    explicit Weighted(L inner, double weight = 1.0) : inner_(std::move(inner)), weight_(weight) {
        GANINV_CHECK(std::isfinite(weight), ValueError, "Weighted: weight must be finite, got ", weight);
    }

    std::string name() const { return inner_.name(); }
    double weight() const { return weight_; }
    L& inner() { return inner_; }
    const L& inner() const { return inner_; }

    LossResult evaluate(const Buffer& pred, const Buffer& target, Buffer* grad) {
        LossResult r = inner_.evaluate(pred, target, grad);
        for (double& v : r.per_image) v *= weight_;
        for (auto& t : r.terms)
            for (double& v : t.per_image) v *= weight_;
        if (grad) detail::BufferOps<backend_type>::scale(*grad, static_cast<float>(weight_));
        return r;
    }

private:
    L inner_;
    double weight_;
};

/// The sum of several losses of one backend. Terms: those of every part, in order.
template <class... Ls>
class Sum {
    static_assert(sizeof...(Ls) >= 1, "ganinv::Sum<L...>: give at least one loss");
    static_assert((Loss<Ls> && ...),
                  "ganinv::Sum<L...>: every argument must satisfy the ganinv::Loss concept (concepts/loss.hpp)");
    using First = std::tuple_element_t<0, std::tuple<Ls...>>;
    static_assert((std::is_same_v<typename Ls::backend_type, typename First::backend_type> && ...),
                  "ganinv::Sum<L...>: all losses must run on the same backend (e.g. do not mix Mse<Cpu> with "
                  "Lpips<Cuda>); nothing crosses between backends inside a loss");

public:
    using backend_type = typename First::backend_type;
    using Buffer = typename First::Buffer;
    static constexpr bool differentiable = (Ls::differentiable && ...);

    explicit Sum(Ls... losses) : parts_(std::move(losses)...) {}

    std::string name() const {
        std::string s;
        std::apply([&](const auto&... l) { ((s = s.empty() ? l.name() : concat(s, "+", l.name())), ...); }, parts_);
        return s;
    }

    template <std::size_t I>
    auto& get() {
        return std::get<I>(parts_);
    }

    LossResult evaluate(const Buffer& pred, const Buffer& target, Buffer* grad) {
        LossResult total;
        bool first = true;
        Buffer scratch;
        auto one = [&](auto& loss) {
            Buffer* g = grad ? (first ? grad : &scratch) : nullptr;
            LossResult r = loss.evaluate(pred, target, g);
            if (first) total.per_image.assign(r.per_image.size(), 0.0);
            GANINV_CHECK(r.per_image.size() == total.per_image.size(), ShapeError, "Sum: '", loss.name(), "' returned ",
                         r.per_image.size(), " values for a batch of ", total.per_image.size());
            for (std::size_t i = 0; i < r.per_image.size(); ++i) total.per_image[i] += r.per_image[i];
            for (auto& t : r.terms) total.terms.push_back(std::move(t));
            if (grad && !first) detail::BufferOps<backend_type>::add(*grad, scratch);
            first = false;
        };
        std::apply([&](auto&... l) { (one(l), ...); }, parts_);
        return total;
    }

private:
    std::tuple<Ls...> parts_;
};

/// Evaluates `loss` and its gradient. Use this (not evaluate with a null check) wherever a
/// gradient is required: a non-differentiable loss is then a compile error, not a silent zero.
template <class L>
LossResult evaluate_with_gradient(L& loss, const typename L::Buffer& pred, const typename L::Buffer& target,
                                  typename L::Buffer& grad) {
    static_assert(Loss<L>, "ganinv::evaluate_with_gradient: L must satisfy the ganinv::Loss concept");
    static_assert(L::differentiable,
                  "ganinv: this loss is not differentiable (L::differentiable is false), so it cannot give the "
                  "gradient a gradient-based optimiser needs; use it as a metric or with a gradient-free optimiser "
                  "(CMA-ES)");
    return loss.evaluate(pred, target, &grad);
}

}  // namespace ganinv
