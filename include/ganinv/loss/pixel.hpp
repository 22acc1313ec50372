/// @file pixel.hpp
/// @brief Pixel losses: Mse, L1 and Charbonnier, each the per-image mean over all C*H*W values
///        of a pointwise function of d = pred - target. The gradient is that of the sum over
///        images of the per-image values, so image i's gradient is f'(d) / (C*H*W).
///
/// The math lives in backend-free pointwise functions (`pointwise`, `pointwise_grad`, callable on
/// the host and in CUDA kernels), which Masked<L> also uses to normalise by the mask area; the
/// loops are the backend's `BufferOps<B>::pixel_loss` (backend/cpu_buffer_ops.hpp, backend/cuda_buffer_ops.cuh).
#pragma once

#include "ganinv/core/host_device.hpp"
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

/// The Loss-concept plumbing shared by the pixel losses (CRTP: Derived supplies name() and the
/// pointwise functions); the reduction is the backend's `BufferOps<B>::pixel_loss`.
template <class Derived, class Backend>
class PixelLossBase {
public:
    using backend_type = Backend;
    using Buffer = typename BufferOps<Backend>::Buffer;
    static constexpr bool differentiable = true;

    LossResult evaluate(const Buffer& pred, const Buffer& target, Buffer* grad) const {
        const Derived& self = static_cast<const Derived&>(*this);
        check_pair(pred, target, self.name());
        return single_term(self.name(), BufferOps<Backend>::pixel_loss(self, pred, target, nullptr, grad));
    }
    /// values[n] += weight * the value of image n, kept in backend memory (no read-back, no wait):
    /// for the device inversion loops, on backends whose BufferOps can (CUDA). grad as in
    /// evaluate. V: float (the Adam loop) or double (the L-BFGS loop: with weight 1 into zeros,
    /// the very double that evaluate() returns).
    template <class V = float>
    void evaluate_on_device(const Buffer& pred, const Buffer& target, Buffer* grad, V* values,
                            float weight = 1.0f) const
        requires requires(const Derived& d, const Buffer& b, Buffer* g, V* v) {
            BufferOps<Backend>::pixel_loss(d, b, b, nullptr, g, v, 1.0f);
        }
    {
        const Derived& self = static_cast<const Derived&>(*this);
        check_pair(pred, target, self.name());
        BufferOps<Backend>::pixel_loss(self, pred, target, nullptr, grad, values, weight);
    }
};

}  // namespace detail

/// Mean squared error per image: mean((pred - target)^2).
template <class Backend = Cpu>
class Mse : public detail::PixelLossBase<Mse<Backend>, Backend> {
public:
    std::string name() const { return "mse"; }
    GANINV_HOST_DEVICE double pointwise(double d) const { return d * d; }
    GANINV_HOST_DEVICE double pointwise_grad(double d) const { return 2.0 * d; }
};

/// Mean absolute error per image: mean(|pred - target|); the gradient at d = 0 is 0.
template <class Backend = Cpu>
class L1 : public detail::PixelLossBase<L1<Backend>, Backend> {
public:
    std::string name() const { return "l1"; }
    GANINV_HOST_DEVICE double pointwise(double d) const { return fabs(d); }
    GANINV_HOST_DEVICE double pointwise_grad(double d) const { return d > 0.0 ? 1.0 : (d < 0.0 ? -1.0 : 0.0); }
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
    GANINV_HOST_DEVICE double pointwise(double d) const { return sqrt(d * d + eps_ * eps_); }
    GANINV_HOST_DEVICE double pointwise_grad(double d) const { return d / sqrt(d * d + eps_ * eps_); }

private:
    double eps_;
};

}  // namespace ganinv
