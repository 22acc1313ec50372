/// @file latent_discriminator.hpp
/// @brief A discriminator on W codes (an MLP: w_dim -> hidden x layers -> one logit, leaky
///        ReLU), as e4e (Tov et al. 2021) and force-in-domain inversion (Leng et al. 2021) use
///        to push an encoder's codes onto the distribution of the mapping network's w. CPU,
///        forward and backward with respect to its weights and to the codes; the non-saturating
///        GAN losses on its logits.
///
/// Weights live in one flat [1, P] tensor (one Adam row), like the encoder's.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/rng.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/nn/linear.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace ganinv {

struct LatentDiscriminatorConfig {
    Index w_dim = 128;
    Index hidden = 128;  ///< width of each hidden layer
    Index layers = 3;    ///< hidden layers (e4e: 3 of width 512 for w_dim 512)

    void validate() const {
        GANINV_CHECK(w_dim >= 1 && hidden >= 1 && layers >= 1, ValueError,
                     "latent discriminator: w_dim, hidden and layers must be positive (", w_dim, ", ", hidden, ", ",
                     layers, ")");
    }
};

class LatentDiscriminator {
public:
    /// Every layer's input and output; filled by forward(), read by backward().
    struct Cache {
        Index rows = 0;
        std::vector<Tensor<float>> acts;  ///< acts[0] = input codes, acts[l + 1] = layer l's output
    };

    /// Random weights from `seed` (unit normal: the layers scale by 1/sqrt(fan-in) at run time).
    explicit LatentDiscriminator(LatentDiscriminatorConfig config, std::uint64_t seed = 0) : config_(config) {
        config_.validate();
        Index total = 0;
        for (Index l = 0; l <= config_.layers; ++l) {
            const nn::LinearParams p = layer(l);
            offsets_.push_back({total, total + p.in * p.out});
            total += p.in * p.out + p.out;
        }
        params_ = Tensor<float>({1, total}, 0.0f);
        Rng rng(seed);
        for (Index l = 0; l <= config_.layers; ++l) {
            const nn::LinearParams p = layer(l);
            float* w = params_.data() + offsets_[static_cast<std::size_t>(l)].weight;
            for (Index i = 0; i < p.in * p.out; ++i) w[i] = static_cast<float>(rng.normal());
        }
    }

    const LatentDiscriminatorConfig& config() const { return config_; }
    Index num_params() const { return params_.numel(); }
    Tensor<float>& params() { return params_; }
    const Tensor<float>& params() const { return params_; }

    /// logits [M] for codes [M, w_dim] (any number of rows: every w vector of a W+ batch).
    Tensor<float> forward(const Tensor<float>& codes, Cache* cache = nullptr) const {
        GANINV_CHECK(codes.rank() == 2 && codes.dim(0) >= 1 && codes.dim(1) == config_.w_dim, ShapeError,
                     "LatentDiscriminator::forward: codes must be [M, ", config_.w_dim, "], got ",
                     shape_to_string(codes.shape()));
        Cache local;
        Cache& k = cache ? *cache : local;
        const Index M = codes.dim(0);
        k.rows = M;
        k.acts.assign(1, codes);
        for (Index l = 0; l <= config_.layers; ++l) {
            const nn::LinearParams p = layer(l);
            const auto& o = offsets_[static_cast<std::size_t>(l)];
            Tensor<float> y({M, p.out});
            nn::linear_forward(k.acts.back().data(), M, params_.data() + o.weight, params_.data() + o.bias, p, y.data());
            k.acts.push_back(std::move(y));
        }
        return Tensor<float>({M}, std::vector<float>(k.acts.back().values().begin(), k.acts.back().values().end()));
    }

    /// Given dL/dlogits [M]: accumulates dL/dparams into grad_params ([1, P], may be null) and
    /// returns dL/dcodes [M, w_dim].
    Tensor<float> backward(const Cache& k, const Tensor<float>& grad_logits, Tensor<float>* grad_params) const {
        GANINV_CHECK(k.rows >= 1 && static_cast<Index>(k.acts.size()) == config_.layers + 2, ValueError,
                     "LatentDiscriminator::backward: the cache holds no forward pass of this discriminator");
        expect_shape(grad_logits, {k.rows}, "LatentDiscriminator::backward: grad_logits");
        if (grad_params) expect_shape(*grad_params, {1, num_params()}, "LatentDiscriminator::backward: grad_params");
        std::vector<float> gy(grad_logits.values().begin(), grad_logits.values().end());
        for (Index l = config_.layers; l >= 0; --l) {
            const nn::LinearParams p = layer(l);
            const auto& o = offsets_[static_cast<std::size_t>(l)];
            const Tensor<float>& x = k.acts[static_cast<std::size_t>(l)];
            std::vector<float> gx(static_cast<std::size_t>(k.rows * p.in));
            nn::linear_backward(x.data(), k.rows, params_.data() + o.weight, k.acts[static_cast<std::size_t>(l + 1)].data(),
                                gy.data(), p, gx.data(), grad_params ? grad_params->data() + o.weight : nullptr,
                                grad_params ? grad_params->data() + o.bias : nullptr);
            gy = std::move(gx);
        }
        return Tensor<float>({k.rows, config_.w_dim}, std::move(gy));
    }

private:
    struct Offsets {
        Index weight = 0, bias = 0;
    };
    /// Layer l: w_dim or hidden in, hidden out with leaky ReLU; the last one gives the logit.
    nn::LinearParams layer(Index l) const {
        const Index in = l == 0 ? config_.w_dim : config_.hidden;
        const bool last = l == config_.layers;
        return nn::LinearParams::make(in, last ? 1 : config_.hidden, 1.0f, last ? nn::Activation::linear : nn::Activation::lrelu);
    }

    LatentDiscriminatorConfig config_;
    std::vector<Offsets> offsets_;
    Tensor<float> params_;
};

/// log(1 + e^x), without overflow for large |x|.
inline double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

/// The non-saturating GAN losses on logits, as means over the rows, with their gradients:
/// the discriminator's softplus(-real) + softplus(fake), the generator side's softplus(-fake).
struct GanLoss {
    double value = 0;
    Tensor<float> grad;  ///< d value / d logits
};
inline GanLoss discriminator_loss(const Tensor<float>& logits, bool real) {
    GanLoss r{0.0, Tensor<float>(logits.shape())};
    const double n = static_cast<double>(logits.numel());
    for (Index i = 0; i < logits.numel(); ++i) {
        const double x = logits[i];
        r.value += (real ? softplus(-x) : softplus(x)) / n;
        r.grad[i] = static_cast<float>((real ? -sigmoid(-x) : sigmoid(x)) / n);
    }
    return r;
}
/// What the encoder minimises: its codes should look real (softplus(-D(codes))).
inline GanLoss adversarial_loss(const Tensor<float>& fake_logits) { return discriminator_loss(fake_logits, true); }

}  // namespace ganinv
