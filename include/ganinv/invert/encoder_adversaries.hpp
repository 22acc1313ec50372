/// @file encoder_adversaries.hpp
/// @brief The discriminators an encoder can train against, each with its own Adam: a latent one
///        on the encoder's codes (e4e, force-in-domain inversion) and an image one on its
///        reconstructions (the domain-guided encoder of in-domain inversion). Per trainer
///        iteration each takes one step on the non-saturating GAN loss (real vs fake, the fake
///        held constant) and then gives the encoder's gradient of softplus(-D(fake)) with
///        respect to the fake. Both are saved in, and restored from, the trainer's checkpoints.
///        Optionally the discriminator's step adds the R1 penalty on the real samples.
#pragma once

#include "ganinv/backend/cpu.hpp"
#include "ganinv/io/safetensors.hpp"
#include "ganinv/models/encoder_config.hpp"
#include "ganinv/models/latent_discriminator.hpp"
#include "ganinv/models/psp_encoder.hpp"
#include "ganinv/optim/adam.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

namespace ganinv {

/// What one adversarial step gives: the two losses (the discriminator's before its update) and
/// the encoder's gradient with respect to the fake (same shape as the fake).
struct AdversaryStep {
    double adversarial = 0, discriminator = 0;
    double r1 = 0;  ///< the R1 penalty added to the discriminator's loss (0 when off)
    Tensor<float> grad;
};

namespace detail {

/// A discriminator's weights and Adam state in a checkpoint, as trainer.NAME* (moments exact, F64).
inline void save_adversary(SafetensorsWriter& w, const std::string& name, const Tensor<float>& params, const Adam& adam,
                           Index steps_done) {
    w.add("trainer." + name, params);
    if (steps_done == 0) return;
    const AdamState s = adam.state();
    w.add_f64("trainer." + name + "_adam_m", {params.numel()}, s.m);
    w.add_f64("trainer." + name + "_adam_v", {params.numel()}, s.v);
    w.set_metadata("trainer_" + name + "_adam_t", std::to_string(s.t.at(0)));
}

inline void load_adversary(const SafetensorsFile& f, const std::filesystem::path& path, const std::string& name,
                           Tensor<float>& params, Adam& adam, Index steps_done) {
    GANINV_CHECK(f.contains("trainer." + name), FormatError, "'", path.string(), "' was trained with a discriminator (",
                 name, ") but does not hold it");
    params = f.load("trainer." + name, {1, params.numel()});
    if (steps_done == 0) return;
    AdamState s;
    s.rows = 1;
    s.dim = params.numel();
    s.m = f.load_f64("trainer." + name + "_adam_m");
    s.v = f.load_f64("trainer." + name + "_adam_v");
    s.t = {static_cast<Index>(std::stoll(f.metadata("trainer_" + name + "_adam_t").value_or("0")))};
    adam.set_state(s);
}

/// The R1 penalty (Mescheder et al. 2018) on real samples: gamma/2 * mean over the M rows of
/// ||dD(x_i)/dx_i||^2; adds its weight gradient into `grad_params` and returns the value.
///
/// The weight gradient is (gamma/M) sum_i (dg_i/dtheta)^T g_i with g_i = dD(x_i)/dx_i, which is
/// the derivative along the g_i of the weight gradient of sum_i D: d/de grad_theta sum_i D(x_i +
/// e g_i) at e = 0 (swap the two derivatives). It is taken as a central difference of two
/// ordinary backward passes, with the step e scaled so that e*g is 1e-3 of x in RMS: no second-
/// order backward is needed. For a piecewise-linear network (the latent discriminator: linear
/// layers and leaky ReLU) grad_theta D is piecewise linear in x and the difference is exact
/// unless x +- e g crosses a kink; with group norm (the image discriminator) it is exact to O(e^2).
template <class Net, class ToLogits, class FromLogits>
double r1_penalty(Net& net, const Tensor<float>& real, double gamma, ToLogits to_logits, FromLogits from_logits,
                  Tensor<float>& grad_params) {
    typename Net::Cache k;
    const Tensor<float> logits = to_logits(net.forward(real, &k));
    const Index M = logits.numel();
    const Tensor<float> g = net.backward(k, from_logits(Tensor<float>(logits.shape(), 1.0f)), nullptr);  // rows independent
    double g2 = 0, x2 = 0;
    for (Index i = 0; i < g.numel(); ++i) g2 += static_cast<double>(g[i]) * g[i];
    for (Index i = 0; i < real.numel(); ++i) x2 += static_cast<double>(real[i]) * real[i];
    const double value = 0.5 * gamma * g2 / static_cast<double>(M);
    if (g2 == 0) return value;
    const double e = 1e-3 * std::sqrt(std::max(x2, 1e-12) / g2);
    Tensor<float> plus(real.shape()), minus(real.shape());
    for (Index i = 0; i < real.numel(); ++i) {
        plus[i] = static_cast<float>(real[i] + e * g[i]);
        minus[i] = static_cast<float>(real[i] - e * g[i]);
    }
    Tensor<float> gp({1, net.num_params()}, 0.0f), gm({1, net.num_params()}, 0.0f);
    typename Net::Cache kp, km;
    const Tensor<float> ones(logits.shape(), 1.0f);
    (void)net.forward(plus, &kp);
    net.backward(kp, from_logits(ones), &gp);
    (void)net.forward(minus, &km);
    net.backward(km, from_logits(ones), &gm);
    // The step actually taken in float: (plus - minus) / 2 per element is e * g up to rounding,
    // so divide by the e the float inputs realise, measured along g.
    double along = 0;
    for (Index i = 0; i < real.numel(); ++i) along += (static_cast<double>(plus[i]) - minus[i]) * g[i];
    const double e_real = along / (2.0 * g2);
    const double scale = gamma / static_cast<double>(M) / (2.0 * e_real);
    for (Index i = 0; i < gp.numel(); ++i) grad_params[i] += static_cast<float>(scale * (static_cast<double>(gp[i]) - gm[i]));
    return value;
}

/// One discriminator step on (real, fake) logits (plus R1 on the real ones when r1_gamma > 0),
/// then the adversarial term of the fake's logits from the updated discriminator.
/// `forward(x, cache)` gives logits, `backward(cache, grad, params grad or null)` the input
/// gradient; `to_logits`/`from_logits` convert the network's outputs.
template <class Net, class ToLogits, class FromLogits>
AdversaryStep adversary_step(Net& net, Adam& adam, const Tensor<float>& real, const Tensor<float>& fake, ToLogits to_logits,
                             FromLogits from_logits, double r1_gamma = 0.0) {
    typename Net::Cache kr, kf, ke;
    const GanLoss on_real = discriminator_loss(to_logits(net.forward(real, &kr)), true);
    const GanLoss on_fake = discriminator_loss(to_logits(net.forward(fake, &kf)), false);
    Tensor<float> gd({1, net.num_params()}, 0.0f);
    net.backward(kr, from_logits(on_real.grad), &gd);
    net.backward(kf, from_logits(on_fake.grad), &gd);
    const double r1 = r1_gamma > 0 ? r1_penalty(net, real, r1_gamma, to_logits, from_logits, gd) : 0.0;
    adam.step(net.params(), gd);
    const GanLoss adv = adversarial_loss(to_logits(net.forward(fake, &ke)));
    return {adv.value, on_real.value + on_fake.value, r1, net.backward(ke, from_logits(adv.grad), nullptr)};
}

}  // namespace detail

/// A LatentDiscriminator (w_dim -> three hidden layers of w_dim -> a logit, e4e's shape).
class LatentAdversary {
public:
    LatentAdversary(Index w_dim, std::uint64_t seed, double learning_rate, double r1_gamma = 0.0)
        : d_(LatentDiscriminatorConfig{w_dim, w_dim, 3}, seed), adam_(AdamOptions{learning_rate, 0.9, 0.999, 1e-8}),
          r1_gamma_(r1_gamma) {}

    /// real: w vectors of the mapping network [M, w_dim]; codes: the encoder's [N, num_ws, w_dim],
    /// every w vector a fake. The gradient has the codes' shape.
    AdversaryStep step(const Tensor<float>& real, const Tensor<float>& codes) {
        const Index D = codes.dim(codes.rank() - 1);
        const Tensor<float> fake({codes.numel() / D, D}, std::vector<float>(codes.values().begin(), codes.values().end()));
        const auto same = [](const Tensor<float>& t) { return t; };
        AdversaryStep r = detail::adversary_step(d_, adam_, real, fake, same, same, r1_gamma_);
        r.grad = Tensor<float>(codes.shape(), std::vector<float>(r.grad.values().begin(), r.grad.values().end()));
        return r;
    }
    const LatentDiscriminator& discriminator() const { return d_; }
    void save(SafetensorsWriter& w, Index steps_done) const { detail::save_adversary(w, "latent_d", d_.params(), adam_, steps_done); }
    void load(const SafetensorsFile& f, const std::filesystem::path& path, Index steps_done) {
        detail::load_adversary(f, path, "latent_d", d_.params(), adam_, steps_done);
    }

private:
    LatentDiscriminator d_;
    Adam adam_;
    double r1_gamma_;
};

/// An image discriminator: the encoder's preset network for the generator with one scalar output
/// (num_ws = w_dim = 1, w_avg 0), so its weight and input gradients are the tested encoder's.
class ImageAdversary {
public:
    ImageAdversary(Index resolution, Index channels, std::uint64_t seed, double learning_rate, double r1_gamma = 0.0)
        : d_(EncoderConfig::for_generator(resolution, channels, 1, 1), seed), adam_(AdamOptions{learning_rate, 0.9, 0.999, 1e-8}),
          r1_gamma_(r1_gamma) {}
    ImageAdversary(const ImageAdversary&) = delete;  // net_ refers to d_
    ImageAdversary& operator=(const ImageAdversary&) = delete;

    /// real: the batch's images, fake: their reconstructions [N, C, R, R]; the gradient is the
    /// reconstructions'.
    AdversaryStep step(const Tensor<float>& real, const Tensor<float>& fake) {
        const Index N = real.dim(0);
        const auto to_logits = [N](const Tensor<float>& out) {
            return Tensor<float>({N}, std::vector<float>(out.values().begin(), out.values().end()));
        };
        const auto from_logits = [N](const Tensor<float>& g) {
            return Tensor<float>({N, 1, 1}, std::vector<float>(g.values().begin(), g.values().end()));
        };
        return detail::adversary_step(net_, adam_, real, fake, to_logits, from_logits, r1_gamma_);
    }
    const PspEncoder& discriminator() const { return d_; }
    void save(SafetensorsWriter& w, Index steps_done) const { detail::save_adversary(w, "image_d", d_.params(), adam_, steps_done); }
    void load(const SafetensorsFile& f, const std::filesystem::path& path, Index steps_done) {
        detail::load_adversary(f, path, "image_d", d_.params(), adam_, steps_done);
    }

private:
    /// PspEncoder's backward with the input gradient always on, as adversary_step calls it.
    struct Net {
        using Cache = PspEncoder::Cache;
        PspEncoder& e;
        Tensor<float> forward(const Tensor<float>& x, Cache* k) const { return e.forward(x, k); }
        Tensor<float> backward(const Cache& k, const Tensor<float>& g, Tensor<float>* gp) const {
            return e.backward(k, g, gp, gp == nullptr);  // the input gradient only where it is used
        }
        Index num_params() const { return e.num_params(); }
        Tensor<float>& params() { return e.params(); }
    };
    PspEncoder d_;
    Adam adam_;
    double r1_gamma_;
    Net net_{d_};
};

}  // namespace ganinv
