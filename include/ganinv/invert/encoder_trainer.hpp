/// @file encoder_trainer.hpp
/// @brief Training an encoder against a frozen generator on the CPU (learning-based inversion):
///        each step draws generated samples with known codes (W+ code regression + pixel
///        reconstruction through the generator) and, at a given ratio, real images
///        (reconstruction only), and takes one Adam step on the encoder's weights — or, for an
///        iterative (ReStyle) encoder, runs its K refinement iterations on the batch with a loss
///        and an Adam step at each, the previous iterate's codes and image held constant. An e4e
///        encoder also pays its offsets' norms and gets its offsets one layer at a time. The
///        reconstruction term is the pixel MSE or any library loss (L1, perceptual, ...); a
///        latent discriminator, trained alongside, can pull the codes onto W (e4e, force-in-domain),
///        and an image discriminator the reconstructions onto the images (in-domain inversion).
///        Checkpoints (safetensors: weights, Adam moments, step, options, loss history) resume
///        bit for bit; their format, the options and a step's draws are encoder_training.hpp's,
///        shared with the GPU trainer (encoder_trainer_cuda.cuh).
///
/// A step's random numbers come from (seed, step) alone, so a resumed run draws exactly the
/// batches a straight run would, and a run is reproducible for its seed.
#pragma once

#include "ganinv/backend/cpu.hpp"
#include "ganinv/invert/encoder_adversaries.hpp"
#include "ganinv/invert/encoder_refine.hpp"
#include "ganinv/invert/encoder_training.hpp"
#include "ganinv/loss/any_loss.hpp"
#include "ganinv/models/encoder_file.hpp"
#include "ganinv/models/psp_encoder.hpp"
#include "ganinv/models/stylegan2.hpp"
#include "ganinv/optim/adam.hpp"

#include <cmath>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ganinv {

class EncoderTrainer {
public:
    /// `real` holds real images [M, C, R, R] in [-1, 1] (empty: generated samples only). The
    /// encoder's w_avg is set to the generator's on a fresh start.
    EncoderTrainer(StyleGAN2<Cpu>& g, PspEncoder& e, EncoderTrainerOptions o, Tensor<float> real = {})
        : g_(g), e_(e), o_(o), real_(std::move(real)), adam_(AdamOptions{o.learning_rate, 0.9, 0.999, 1e-8}) {
        o_.validate();
        check_encoder_fits(e.config(), g.num_ws(), g.w_dim(), g.img_channels(), g.resolution(), "being trained");
        GANINV_CHECK(o_.real_ratio == 0 || real_.numel() > 0, ValueError,
                     "encoder training: a real ratio of ", o_.real_ratio, " needs real images");
        make_discriminator();
        if (real_.numel() > 0)
            expect_shape(real_, {real_.dim(0), g.img_channels(), g.resolution(), g.resolution()}, "encoder training: real images");
        e_.set_w_avg(g.backend().download(g.param("mapping.w_avg")));
    }

    const EncoderTrainerOptions& options() const { return o_; }
    Index steps_done() const { return step_; }
    /// The loss curve: per step, the loss and then (with a pixel term) each iteration's pixel
    /// loss; row i is step history_first_step() + i + 1 (0 unless resumed from a checkpoint
    /// written before histories were kept).
    const std::vector<std::vector<double>>& history() const { return history_; }
    Index history_first_step() const { return step_ - static_cast<Index>(history_.size()); }

    EncoderStepStats step() {
        const Index B = o_.batch, L = g_.num_ws(), D = g_.w_dim(), C = g_.img_channels(), R = g_.resolution();
        Rng rng = encoder_step_rng(o_.seed, step_);
        const EncoderBatchDraw draw = draw_encoder_batch(rng, o_, g_.z_dim(), real_.numel() > 0 ? real_.dim(0) : 0);
        EncoderStepStats st;
        st.real = draw.real;
        st.generated = draw.generated;
        const Index per_img = C * R * R;
        Tensor<float> x({B, C, R, R}), ws_true;
        if (st.generated > 0) {
            ws_true = g_.mapping(draw.z, Truncation{o_.truncation_psi, std::nullopt});
            const Tensor<float> img = g_.synthesis(ws_true, NoiseInput<Cpu>{});
            std::copy(img.data(), img.data() + img.numel(), x.data());
        }
        for (Index r = 0; r < st.real; ++r) {
            const Index k = draw.real_indices[static_cast<std::size_t>(r)];
            std::copy(real_.data() + k * per_img, real_.data() + (k + 1) * per_img, x.data() + (st.generated + r) * per_img);
        }
        // A single-pass encoder runs once from x; an iterative one K times from [x, G(w_t)],
        // each iteration trained on its own (its input codes and image are constants here).
        const Index K = e_.config().iterations;
        if (e_.config().e4e) e_.set_active_offsets(active_offsets_at(step_));
        st.active_offsets = e_.config().active_offsets;
        RefineState s;
        if (e_.iterative()) {
            check_refinement_start(e_, bootstrap_ != nullptr);
            s = bootstrap_ ? bootstrap_start(g_, *bootstrap_, x) : refinement_start(g_, e_, B);
        }
        for (Index t = 0; t < K; ++t) {
            PspEncoder::Cache cache;
            const Tensor<float> codes = e_.iterative() ? e_.forward(refinement_input(x, s.reconstruction), &cache, &s.codes)
                                                       : e_.forward(x, &cache);
            Tensor<float> grad_codes({B, L, D}, 0.0f);
            if (st.generated > 0 && o_.code_weight > 0) {
                const double n = static_cast<double>(st.generated * L * D);
                double sum = 0;
                for (Index i = 0; i < st.generated * L * D; ++i) {
                    const double d = static_cast<double>(codes[i]) - ws_true[i];
                    sum += d * d;
                    grad_codes[i] = static_cast<float>(o_.code_weight * 2.0 * d / n);
                }
                st.code_loss += sum / n / static_cast<double>(K);
            }
            Tensor<float> recon;
            if (o_.pixel_weight > 0) {
                StyleGAN2<Cpu>::Cache gc;
                recon = g_.synthesis(codes, NoiseInput<Cpu>{}, &gc);
                Tensor<float> grad_img(x.shape());
                double value = 0;
                if (loss_) {  // per-image values; their batch mean is the term
                    const LossResult r = loss_->evaluate(recon, x, &grad_img);
                    for (double v : r.per_image) value += v / static_cast<double>(B);
                    for (Index i = 0; i < grad_img.numel(); ++i)
                        grad_img[i] = static_cast<float>(o_.pixel_weight / static_cast<double>(B) * grad_img[i]);
                } else {
                    const double n = static_cast<double>(x.numel());
                    for (Index i = 0; i < x.numel(); ++i) {
                        const double d = static_cast<double>(recon[i]) - x[i];
                        value += d * d;
                        grad_img[i] = static_cast<float>(o_.pixel_weight * 2.0 * d / n);
                    }
                    value /= n;
                }
                if (image_adv_) {  // the image discriminator's step, and its gradient on the reconstructions
                    const AdversaryStep a = image_adv_->step(x, recon);
                    for (Index i = 0; i < a.grad.numel(); ++i)
                        grad_img[i] += static_cast<float>(o_.image_adversarial * a.grad[i]);
                    st.image_adversarial_loss += a.adversarial / static_cast<double>(K);
                    st.image_discriminator_loss += a.discriminator / static_cast<double>(K);
                    st.r1 += a.r1 / static_cast<double>(K);
                }
                st.iteration_pixel_loss.push_back(value);
                st.pixel_loss += value / static_cast<double>(K);
                const Tensor<float> gws = g_.synthesis_backward_ws(gc, grad_img);
                for (Index i = 0; i < grad_codes.numel(); ++i) grad_codes[i] += gws[i];
            } else if (t + 1 < K) {
                recon = g_.synthesis(codes, NoiseInput<Cpu>{});
            }
            st.offset_loss += e_.offset_penalty(cache) / static_cast<double>(K);
            if (latent_adv_) {  // the latent discriminator's step on fresh w vs the codes, then its gradient
                const AdversaryStep a = latent_adv_->step(mapped_w(rng, B), codes);
                for (Index i = 0; i < a.grad.numel(); ++i)
                    grad_codes[i] += static_cast<float>(o_.latent_adversarial * a.grad[i]);
                st.adversarial_loss += a.adversarial / static_cast<double>(K);
                st.discriminator_loss += a.discriminator / static_cast<double>(K);
                st.r1 += a.r1 / static_cast<double>(K);
            }
            Tensor<float> grad_params({1, e_.num_params()}, 0.0f);
            e_.backward(cache, grad_codes, &grad_params, false, e_.config().e4e ? o_.offset_weight : 0.0);
            adam_.set_learning_rate(o_.learning_rate_at(step_));  // every pass of a step at the step's rate
            adam_.step(e_.params(), grad_params);
            s.codes = codes;  // the next iterate starts here; no gradient flows back into this one
            s.reconstruction = std::move(recon);
        }
        st.loss = o_.code_weight * st.code_loss + o_.pixel_weight * st.pixel_loss +
                  (e_.config().e4e ? o_.offset_weight * st.offset_loss : 0.0) + o_.latent_adversarial * st.adversarial_loss +
                  o_.image_adversarial * st.image_adversarial_loss;
        history_.emplace_back(1, st.loss);
        history_.back().insert(history_.back().end(), st.iteration_pixel_loss.begin(), st.iteration_pixel_loss.end());
        st.step = ++step_;
        return st;
    }

    /// The reconstruction term becomes pixel_weight * batch mean of `loss`'s per-image values
    /// (perceptual terms, L1, ...) instead of the pixel MSE; `spec` names it in checkpoints, and
    /// resume() refuses a checkpoint trained with another one. Call before the first step.
    void set_image_loss(std::string spec, WeightedLossSum<Cpu> loss) {
        GANINV_CHECK(!spec.empty() && !loss.empty(), ValueError, "encoder training: an image loss needs a spec and terms");
        GANINV_CHECK(step_ == 0, ValueError, "encoder training: the image loss is set before the first step");
        o_.image_loss = std::move(spec);
        loss_ = std::move(loss);
    }

    /// ReStyle's encoder bootstrapping in training: every batch's refinement starts at the codes
    /// of `bootstrap` (a frozen single-pass encoder of the same generator, kept by the caller)
    /// instead of the mean code, so the iterative encoder learns to refine what it will be given
    /// at `encode --bootstrap`. Call before the first step and before resume().
    /// The encoder records E_0's fingerprint (EncoderConfig::bootstrap); one that already records
    /// another E_0 (a checkpoint being resumed) is refused.
    void set_bootstrap(const PspEncoder& bootstrap) {
        check_bootstrap(e_, bootstrap);
        GANINV_CHECK(step_ == 0, ValueError, "encoder training: the bootstrapping encoder is set before the first step");
        const std::string fingerprint = encoder_fingerprint(bootstrap);
        check_same_bootstrap(e_.config(), fingerprint);
        bootstrap_ = &bootstrap;
        e_.set_bootstrap(fingerprint);
    }

    /// e4e's progressive schedule: the offsets in use at a step (all of them without one).
    Index active_offsets_at(Index step) const { return encoder_active_offsets_at(o_, e_.num_ws(), step); }

    /// The encoder file plus what resuming needs: Adam's moments (exact, F64), step, options
    /// (encoder_training.hpp's format, shared with EncoderTrainerCuda), and the discriminators.
    void save_checkpoint(const std::filesystem::path& path) const {
        write_encoder_checkpoint(path, e_, step_, o_, history_, [&] { return adam_.state(); },
                                 [&](SafetensorsWriter& w) {  // a resumed run continues them
                                     if (latent_adv_) latent_adv_->save(w, step_);
                                     if (image_adv_) image_adv_->save(w, step_);
                                 });
    }

    /// Continues a checkpoint written by save_checkpoint (or by EncoderTrainerCuda): weights,
    /// moments, step and options (the file's options replace the constructor's).
    void resume(const std::filesystem::path& path) {
        EncoderCheckpoint c = read_encoder_checkpoint(path, e_.config());
        check_checkpoint_resumable(c, path, o_.image_loss, real_.numel() > 0);
        // e4e's active_offsets is training progress, not the network: the checkpoint's applies.
        if (c.encoder.config().e4e && e_.config().e4e) e_.set_active_offsets(c.encoder.config().active_offsets);
        e_.params() = c.encoder.params();
        step_ = c.step;
        history_ = std::move(c.history);
        o_ = c.options;
        adam_ = Adam(AdamOptions{o_.learning_rate, 0.9, 0.999, 1e-8});
        if (step_ > 0) adam_.set_state(c.adam);
        make_discriminator();
        if (latent_adv_ || image_adv_) {
            const SafetensorsFile f(path);
            if (latent_adv_) latent_adv_->load(f, path, step_);
            if (image_adv_) image_adv_->load(f, path, step_);
        }
    }

    /// The latent discriminator (null without the adversarial term).
    const LatentDiscriminator* latent_discriminator() const { return latent_adv_ ? &latent_adv_->discriminator() : nullptr; }
    /// The image discriminator (null without the image adversarial term): logits are its [N, 1, 1] codes.
    const PspEncoder* image_discriminator() const { return image_adv_ ? &image_adv_->discriminator() : nullptr; }

private:
    /// The discriminators the options ask for, seeded from the run's seed.
    void make_discriminator() {
        latent_adv_.reset();
        image_adv_.reset();
        if (o_.latent_adversarial > 0) latent_adv_.emplace(g_.w_dim(), o_.seed ^ 0xD15C0ULL, o_.discriminator_lr, o_.r1_gamma);
        if (o_.image_adversarial > 0)
            image_adv_.emplace(g_.resolution(), g_.img_channels(), o_.seed ^ 0x1D15CULL, o_.discriminator_lr, o_.r1_gamma);
    }

    /// n fresh w vectors of the mapping network [n, w_dim] (the latent discriminator's real side).
    Tensor<float> mapped_w(Rng& rng, Index n) const {
        Tensor<float> z({n, g_.z_dim()});
        rng.fill_normal(z.values());
        const Tensor<float> ws = g_.mapping(z, Truncation{o_.truncation_psi, std::nullopt});
        const Index L = g_.num_ws(), D = g_.w_dim();
        Tensor<float> w({n, D});
        for (Index b = 0; b < n; ++b) std::copy(ws.data() + b * L * D, ws.data() + b * L * D + D, w.data() + b * D);
        return w;
    }

    StyleGAN2<Cpu>& g_;
    PspEncoder& e_;
    EncoderTrainerOptions o_;
    Tensor<float> real_;
    Adam adam_;
    std::optional<WeightedLossSum<Cpu>> loss_;
    std::optional<LatentAdversary> latent_adv_;
    std::optional<ImageAdversary> image_adv_;
    const PspEncoder* bootstrap_ = nullptr;  // ReStyle's w_0 = E_0(x) (set_bootstrap), else the mean code
    Index step_ = 0;
    std::vector<std::vector<double>> history_;
};

}  // namespace ganinv
