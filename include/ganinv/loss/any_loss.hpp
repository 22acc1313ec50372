/// @file any_loss.hpp
/// @brief Losses chosen at run time: `AnyLoss<B>` erases the type of any differentiable loss,
///        `WeightedLossSum<B>` adds weighted AnyLosses and reports each term. For losses fixed at
///        compile time prefer `Sum<...>` / `Weighted<L>` (compose.hpp): no virtual calls.
#pragma once

#include "ganinv/backend/cpu_fwd.hpp"
#include "ganinv/concepts/loss.hpp"
#include "ganinv/loss/detail/common.hpp"

#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace ganinv {

template <class Backend = Cpu>
class AnyLoss {
public:
    using backend_type = Backend;
    using Buffer = typename detail::BufferOps<Backend>::Buffer;
    static constexpr bool differentiable = true;

    template <class L>
        requires(DifferentiableLoss<L> && std::is_same_v<typename L::backend_type, Backend> &&
                 !std::is_same_v<std::decay_t<L>, AnyLoss>)
    explicit AnyLoss(L loss) : impl_(std::make_shared<Model<L>>(std::move(loss))) {}

    std::string name() const { return impl_->name(); }
    LossResult evaluate(const Buffer& pred, const Buffer& target, Buffer* grad) { return impl_->evaluate(pred, target, grad); }
    /// Whether the wrapped loss keeps its values in backend memory (evaluate_on_device works).
    bool values_on_device() const { return impl_->values_on_device(); }
    /// values[n] += weight * value of image n in backend memory (the wrapped loss's
    /// evaluate_on_device); a ValueError when !values_on_device().
    void evaluate_on_device(const Buffer& pred, const Buffer& target, Buffer* grad, float* values, float weight = 1.0f) {
        impl_->evaluate_on_device(pred, target, grad, values, weight);
    }

private:
    struct Concept {
        virtual ~Concept() = default;
        virtual std::string name() const = 0;
        virtual LossResult evaluate(const Buffer& pred, const Buffer& target, Buffer* grad) = 0;
        virtual bool values_on_device() const = 0;
        virtual void evaluate_on_device(const Buffer& pred, const Buffer& target, Buffer* grad, float* values,
                                        float weight) = 0;
    };
    template <class L>
    struct Model final : Concept {
        static constexpr bool kOnDevice = requires(L& l, const Buffer& b, Buffer* g, float* v) {
            l.evaluate_on_device(b, b, g, v, 1.0f);
        };
        explicit Model(L l) : loss(std::move(l)) {}
        std::string name() const override { return loss.name(); }
        LossResult evaluate(const Buffer& pred, const Buffer& target, Buffer* grad) override {
            return loss.evaluate(pred, target, grad);
        }
        bool values_on_device() const override { return kOnDevice; }
        void evaluate_on_device(const Buffer& pred, const Buffer& target, Buffer* grad, float* values,
                                float weight) override {
            if constexpr (kOnDevice) loss.evaluate_on_device(pred, target, grad, values, weight);
            else throw ValueError("AnyLoss: '" + loss.name() + "' returns its values on the host (no evaluate_on_device)");
        }
        L loss;
    };
    std::shared_ptr<Concept> impl_;  // shared: losses may hold large weights (VGG), copies share them
};

template <class Backend = Cpu>
class WeightedLossSum {
public:
    using backend_type = Backend;
    using Buffer = typename detail::BufferOps<Backend>::Buffer;
    static constexpr bool differentiable = true;

    void add(AnyLoss<Backend> loss, double weight) {
        GANINV_CHECK(std::isfinite(weight), ValueError, "loss weight of '", loss.name(), "' is not finite");
        parts_.push_back({std::move(loss), weight});
    }
    bool empty() const { return parts_.empty(); }

    std::string name() const {
        std::string s;
        for (const auto& p : parts_) {  // appended in two steps: GCC 12 warns (-Wrestrict) on `"+" + name()`
            if (!s.empty()) s += '+';
            s += p.loss.name();
        }
        return s;
    }

    LossResult evaluate(const Buffer& pred, const Buffer& target, Buffer* grad) {
        GANINV_CHECK(!parts_.empty(), ValueError, "WeightedLossSum: no loss terms were added");
        LossResult total;
        for (std::size_t k = 0; k < parts_.size(); ++k) {
            auto& p = parts_[k];
            const LossResult r = p.loss.evaluate(pred, target, grad ? &part_grad_ : nullptr);
            if (total.per_image.empty()) total.per_image.assign(r.per_image.size(), 0.0);
            for (std::size_t i = 0; i < r.per_image.size(); ++i) total.per_image[i] += p.weight * r.per_image[i];
            for (const auto& t : r.terms) {
                LossTerm wt{t.name, t.per_image};
                for (double& v : wt.per_image) v *= p.weight;
                total.terms.push_back(std::move(wt));
            }
            if (grad) accumulate_grad(grad, k, p.weight);
        }
        return total;
    }

    /// Whether every term keeps its values in backend memory.
    bool values_on_device() const {
        for (const auto& p : parts_)
            if (!p.loss.values_on_device()) return false;
        return !parts_.empty();
    }
    /// values[n] += weight * the weighted sum of image n's terms in backend memory (no read-back);
    /// grad as in evaluate. Only when values_on_device().
    void evaluate_on_device(const Buffer& pred, const Buffer& target, Buffer* grad, float* values, float weight = 1.0f) {
        GANINV_CHECK(!parts_.empty(), ValueError, "WeightedLossSum: no loss terms were added");
        for (std::size_t k = 0; k < parts_.size(); ++k) {
            auto& p = parts_[k];
            p.loss.evaluate_on_device(pred, target, grad ? &part_grad_ : nullptr, values,
                                      weight * static_cast<float>(p.weight));
            if (grad) accumulate_grad(grad, k, p.weight);
        }
    }

private:
    /// grad = weight * part_grad_ for the first term, += for the others.
    void accumulate_grad(Buffer* grad, std::size_t k, double weight) {
        if (k == 0) {
            *grad = part_grad_;
            detail::BufferOps<Backend>::scale(*grad, static_cast<float>(weight));
        } else {
            detail::BufferOps<Backend>::add(*grad, part_grad_, static_cast<float>(weight));
        }
    }

    struct Part {
        AnyLoss<Backend> loss;
        double weight;
    };
    Buffer part_grad_;  ///< kept between calls: a captured step keeps its address
    std::vector<Part> parts_;
};

}  // namespace ganinv
