/// @file pixel.hpp
/// @brief Pixel losses: Mse, L1 and Charbonnier, each the per-image mean over all C*H*W values
///        of a pointwise function of d = pred - target. The gradient is that of the sum over
///        images of the per-image values, so image i's gradient is f'(d) / (C*H*W).
///
/// The math lives in backend-free pointwise functions (`pointwise`, `pointwise_grad`), which
/// Masked<L> also uses to normalise by the mask area; the Cpu loop is `detail::pixel_loss_cpu`.
#pragma once

#include "ganinv/loss/detail/common.hpp"

#include <cmath>
#include <string>
#include <vector>

namespace ganinv {

/// A loss made of a pointwise function of pred - target (lets Masked<L> renormalise it).
template <class L>
concept PixelLoss = requires(const L& l, double d) {
    { l.pointwise(d) } -> std::convertible_to<double>;
    { l.pointwise_grad(d) } -> std::convertible_to<double>;
};

namespace detail {

/// per_image[n] = sum_i f(p - t) * norm over the n-th block of `m` values; grad (nullable)
/// = f'(p - t) * norm. `norm` is 1/m for the plain mean.
template <class L>
void pixel_loss_cpu(const L& loss, const float* pred, const float* target, Index batch, Index m, double norm,
                    double* per_image, float* grad) {
#pragma omp parallel for schedule(static) if (batch > 1 && batch * m > 65536)
    for (Index n = 0; n < batch; ++n) {
        double acc = 0.0;
        const float* p = pred + n * m;
        const float* t = target + n * m;
        for (Index i = 0; i < m; ++i) {
            const double d = static_cast<double>(p[i]) - static_cast<double>(t[i]);
            acc += loss.pointwise(d);
            if (grad) grad[n * m + i] = static_cast<float>(loss.pointwise_grad(d) * norm);
        }
        per_image[n] = acc * norm;
    }
}

/// The Loss-concept plumbing shared by the pixel losses (CRTP: Derived supplies name() and the
/// pointwise functions).
template <class Derived, class Backend>
class PixelLossBase {
    static_assert(std::is_same_v<Backend, Cpu>,
                  "ganinv pixel losses: only the Cpu backend is implemented so far (CUDA comes later)");

public:
    using backend_type = Backend;
    using Buffer = typename Backend::Buffer;
    static constexpr bool differentiable = true;

    LossResult evaluate(const Buffer& pred, const Buffer& target, Buffer* grad) const {
        const Derived& self = static_cast<const Derived&>(*this);
        check_pair(pred, target, self.name());
        const Index batch = pred.shape()[0], m = pred.numel() / batch;
        std::vector<double> per_image(static_cast<std::size_t>(batch));
        if (grad) BufferOps<Backend>::ensure(*grad, pred.shape());
        pixel_loss_cpu(self, pred.data(), target.data(), batch, m, 1.0 / static_cast<double>(m), per_image.data(),
                       grad ? grad->data() : nullptr);
        return single_term(self.name(), std::move(per_image));
    }
};

}  // namespace detail

/// Mean squared error per image: mean((pred - target)^2).
template <class Backend = Cpu>
class Mse : public detail::PixelLossBase<Mse<Backend>, Backend> {
public:
    std::string name() const { return "mse"; }
    double pointwise(double d) const { return d * d; }
    double pointwise_grad(double d) const { return 2.0 * d; }
};

/// Mean absolute error per image: mean(|pred - target|); the gradient at d = 0 is 0.
template <class Backend = Cpu>
class L1 : public detail::PixelLossBase<L1<Backend>, Backend> {
public:
    std::string name() const { return "l1"; }
    double pointwise(double d) const { return std::abs(d); }
    double pointwise_grad(double d) const { return d > 0.0 ? 1.0 : (d < 0.0 ? -1.0 : 0.0); }
};

/// Charbonnier (smooth L1) per image: mean(sqrt((pred - target)^2 + eps^2)). Differentiable
/// everywhere; behaves like L1 for |d| >> eps and like d^2 / (2 eps) near 0. eps is not
/// subtracted, so identical images score eps.
template <class Backend = Cpu>
class Charbonnier : public detail::PixelLossBase<Charbonnier<Backend>, Backend> {
public:
    explicit Charbonnier(double eps = 1e-3) : eps_(eps) {
        GANINV_CHECK(eps > 0.0 && std::isfinite(eps), ValueError, "Charbonnier: eps must be positive and finite, got ",
                     eps);
    }
    std::string name() const { return "charbonnier"; }
    double eps() const { return eps_; }
    double pointwise(double d) const { return std::sqrt(d * d + eps_ * eps_); }
    double pointwise_grad(double d) const { return d / std::sqrt(d * d + eps_ * eps_); }

private:
    double eps_;
};

}  // namespace ganinv
