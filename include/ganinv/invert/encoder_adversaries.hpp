/// @file encoder_adversaries.hpp
/// @brief The discriminators an encoder can train against, each with its own Adam: a latent one
///        on the encoder's codes (e4e, force-in-domain inversion) and an image one on its
///        reconstructions (the domain-guided encoder of in-domain inversion). Per trainer
///        iteration each takes one step on the non-saturating GAN loss (real vs fake, the fake
///        held constant) and then gives the encoder's gradient of softplus(-D(fake)) with
///        respect to the fake. Both are saved in, and restored from, the trainer's checkpoints.
#pragma once

#include "ganinv/backend/cpu.hpp"
#include "ganinv/io/safetensors.hpp"
#include "ganinv/models/encoder_config.hpp"
#include "ganinv/models/latent_discriminator.hpp"
#include "ganinv/models/psp_encoder.hpp"
#include "ganinv/optim/adam.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace ganinv {

/// What one adversarial step gives: the two losses (the discriminator's before its update) and
/// the encoder's gradient with respect to the fake (same shape as the fake).
struct AdversaryStep {
    double adversarial = 0, discriminator = 0;
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

/// One discriminator step on (real, fake) logits, then the adversarial term of the fake's logits
/// from the updated discriminator. `forward(x, cache)` gives logits, `backward(cache, grad, params
/// grad or null)` the input gradient; `to_logits`/`from_logits` convert the network's outputs.
template <class Net, class ToLogits, class FromLogits>
AdversaryStep adversary_step(Net& net, Adam& adam, const Tensor<float>& real, const Tensor<float>& fake, ToLogits to_logits,
                             FromLogits from_logits) {
    typename Net::Cache kr, kf, ke;
    const GanLoss on_real = discriminator_loss(to_logits(net.forward(real, &kr)), true);
    const GanLoss on_fake = discriminator_loss(to_logits(net.forward(fake, &kf)), false);
    Tensor<float> gd({1, net.num_params()}, 0.0f);
    net.backward(kr, from_logits(on_real.grad), &gd);
    net.backward(kf, from_logits(on_fake.grad), &gd);
    adam.step(net.params(), gd);
    const GanLoss adv = adversarial_loss(to_logits(net.forward(fake, &ke)));
    return {adv.value, on_real.value + on_fake.value, net.backward(ke, from_logits(adv.grad), nullptr)};
}

}  // namespace detail

/// A LatentDiscriminator (w_dim -> three hidden layers of w_dim -> a logit, e4e's shape).
class LatentAdversary {
public:
    LatentAdversary(Index w_dim, std::uint64_t seed, double learning_rate)
        : d_(LatentDiscriminatorConfig{w_dim, w_dim, 3}, seed), adam_(AdamOptions{learning_rate, 0.9, 0.999, 1e-8}) {}

    /// real: w vectors of the mapping network [M, w_dim]; codes: the encoder's [N, num_ws, w_dim],
    /// every w vector a fake. The gradient has the codes' shape.
    AdversaryStep step(const Tensor<float>& real, const Tensor<float>& codes) {
        const Index D = codes.dim(codes.rank() - 1);
        const Tensor<float> fake({codes.numel() / D, D}, std::vector<float>(codes.values().begin(), codes.values().end()));
        const auto same = [](const Tensor<float>& t) { return t; };
        AdversaryStep r = detail::adversary_step(d_, adam_, real, fake, same, same);
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
};

/// An image discriminator: the encoder's preset network for the generator with one scalar output
/// (num_ws = w_dim = 1, w_avg 0), so its weight and input gradients are the tested encoder's.
class ImageAdversary {
public:
    ImageAdversary(Index resolution, Index channels, std::uint64_t seed, double learning_rate)
        : d_(EncoderConfig::for_generator(resolution, channels, 1, 1), seed), adam_(AdamOptions{learning_rate, 0.9, 0.999, 1e-8}) {}
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
        return detail::adversary_step(net_, adam_, real, fake, to_logits, from_logits);
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
    Net net_{d_};
};

}  // namespace ganinv
