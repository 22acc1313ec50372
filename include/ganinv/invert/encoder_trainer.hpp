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
///        bit for bit.
///
/// A step's random numbers come from (seed, step) alone, so a resumed run draws exactly the
/// batches a straight run would, and a run is reproducible for its seed.
#pragma once

#include "ganinv/backend/cpu.hpp"
#include "ganinv/invert/encoder_adversaries.hpp"
#include "ganinv/invert/encoder_refine.hpp"
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

struct EncoderTrainerOptions {
    Index batch = 8;
    std::uint64_t seed = 0;
    double learning_rate = 1e-3;
    double code_weight = 1.0;   ///< mean squared W+ code error (generated samples)
    double pixel_weight = 1.0;  ///< mean squared pixel error of G(E(x)) (every sample)
    double real_ratio = 0.0;    ///< fraction of a batch taken from the real images (needs some)
    float truncation_psi = 1.0f;
    /// e4e only: weight of the offsets' norm penalty (e4e's delta regulariser), and steps per
    /// newly enabled offset (progressive training: offset i joins at step i * progressive_every;
    /// 0 enables them all from the start).
    double offset_weight = 2e-4;
    Index progressive_every = 0;
    /// The reconstruction term's loss spec ("l1", "mse,vgg:0.5": loss/loss_spec.hpp) when it is
    /// not the built-in pixel MSE (empty). Recorded so that a checkpoint resumes with the same
    /// term; the loss itself is given with EncoderTrainer::set_image_loss.
    std::string image_loss;
    /// Weight of the latent adversarial term (e4e's latent discriminator, force-in-domain's):
    /// the encoder minimises softplus(-D(w)) over its code vectors while a LatentDiscriminator D,
    /// trained alongside with its own Adam (discriminator_lr), tells them from the mapping
    /// network's w. 0: off (no discriminator). e4e used the weight 0.1 and the learning rate
    /// 2e-5 on PyTorch's weight scale (~1/sqrt(fan-in)); the discriminator's weights here are
    /// unit-scale (equalised learning rate), where the same relative step is ~sqrt(fan-in) times
    /// larger: 2e-4 for w_dim 128.
    double latent_adversarial = 0.0;
    double discriminator_lr = 2e-4;
    /// Weight of the image adversarial term of the domain-guided encoder (in-domain inversion):
    /// an image discriminator (the encoder's network with one scalar output), trained alongside
    /// at discriminator_lr, tells the batch's images from their reconstructions G(E(x)); the
    /// encoder minimises softplus(-D(G(E(x)))) through the generator. Needs the pixel term's
    /// reconstructions (pixel_weight > 0). 0: off.
    double image_adversarial = 0.0;
    /// R1 (Mescheder et al. 2018): each discriminator's step adds r1_gamma/2 * the mean squared
    /// norm of its gradient on the real samples (the mapping network's w, the real images), which
    /// keeps it from growing steep around the real data. 0: off; needs a discriminator.
    double r1_gamma = 0.0;

    void validate() const {
        GANINV_CHECK(batch >= 1, ValueError, "encoder training: batch must be >= 1, got ", batch);
        GANINV_CHECK(std::isfinite(learning_rate) && learning_rate > 0, ValueError,
                     "encoder training: learning rate must be positive, got ", learning_rate);
        GANINV_CHECK(code_weight >= 0 && pixel_weight >= 0 && code_weight + pixel_weight > 0, ValueError,
                     "encoder training: code and pixel weights must be >= 0 and not both 0");
        GANINV_CHECK(real_ratio >= 0 && real_ratio <= 1, ValueError, "encoder training: real ratio must be in [0, 1], got ",
                     real_ratio);
        GANINV_CHECK(std::isfinite(latent_adversarial) && latent_adversarial >= 0 && std::isfinite(discriminator_lr) &&
                         discriminator_lr > 0, ValueError, "encoder training: the latent adversarial weight must be >= 0 and "
                         "the discriminator's learning rate positive (", latent_adversarial, ", ", discriminator_lr, ")");
        GANINV_CHECK(std::isfinite(image_adversarial) && image_adversarial >= 0 && (image_adversarial == 0 || pixel_weight > 0),
                     ValueError, "encoder training: the image adversarial weight must be >= 0 and needs the "
                     "reconstruction term (pixel weight > 0), got ", image_adversarial, " with pixel weight ", pixel_weight);
        GANINV_CHECK(std::isfinite(r1_gamma) && r1_gamma >= 0 && (r1_gamma == 0 || latent_adversarial > 0 || image_adversarial > 0),
                     ValueError, "encoder training: the R1 weight must be >= 0 and needs a discriminator (latent or image "
                     "adversarial weight > 0), got ", r1_gamma);
        GANINV_CHECK(std::isfinite(offset_weight) && offset_weight >= 0 && progressive_every >= 0, ValueError,
                     "encoder training: the offset weight and progressive_every must be >= 0 (", offset_weight, ", ",
                     progressive_every, ")");
    }
    Json to_json() const {
        Json j{Json::Object{}};
        j.set("batch", static_cast<std::int64_t>(batch));
        j.set("seed", std::to_string(seed));  // 64 bits do not survive a JSON double
        j.set("learning_rate", learning_rate);
        j.set("code_weight", code_weight);
        j.set("pixel_weight", pixel_weight);
        j.set("real_ratio", real_ratio);
        j.set("truncation_psi", static_cast<double>(truncation_psi));
        j.set("offset_weight", offset_weight);
        j.set("progressive_every", static_cast<std::int64_t>(progressive_every));
        if (!image_loss.empty()) j.set("image_loss", image_loss);
        if (latent_adversarial > 0) j.set("latent_adversarial", latent_adversarial);
        if (image_adversarial > 0) j.set("image_adversarial", image_adversarial);
        if (latent_adversarial > 0 || image_adversarial > 0) j.set("discriminator_lr", discriminator_lr);
        if (r1_gamma > 0) j.set("r1_gamma", r1_gamma);
        return j;
    }
    static EncoderTrainerOptions from_json(const Json& j) {
        EncoderTrainerOptions o;
        o.batch = j.at("batch").as_int();
        o.seed = std::stoull(j.at("seed").as_string());
        o.learning_rate = j.at("learning_rate").as_number();
        o.code_weight = j.at("code_weight").as_number();
        o.pixel_weight = j.at("pixel_weight").as_number();
        o.real_ratio = j.at("real_ratio").as_number();
        o.truncation_psi = static_cast<float>(j.at("truncation_psi").as_number());
        // Absent from checkpoints written before e4e existed (pSp ignores both).
        if (const Json* v = j.find("offset_weight")) o.offset_weight = v->as_number();
        if (const Json* v = j.find("progressive_every")) o.progressive_every = v->as_int();
        if (const Json* v = j.find("image_loss")) o.image_loss = v->as_string();
        if (const Json* v = j.find("latent_adversarial")) o.latent_adversarial = v->as_number();
        if (const Json* v = j.find("image_adversarial")) o.image_adversarial = v->as_number();
        if (const Json* v = j.find("discriminator_lr")) o.discriminator_lr = v->as_number();
        if (const Json* v = j.find("r1_gamma")) o.r1_gamma = v->as_number();
        o.validate();
        return o;
    }
};

/// One step's losses; for an iterative encoder the means over its iterations.
struct EncoderStepStats {
    Index step = 0;          ///< steps done after this one
    double loss = 0;         ///< code_weight * code + pixel_weight * pixel
    double code_loss = 0;    ///< mean squared code error over the generated samples (0 without any)
    double pixel_loss = 0;   ///< mean squared pixel error (images in [-1, 1])
    std::vector<double> iteration_pixel_loss;  ///< pixel_loss of each refinement iteration (one for a single pass)
    double offset_loss = 0;  ///< e4e: offset_penalty() (batch mean of the offsets' norms)
    /// With a latent discriminator: the encoder's adversarial term (mean softplus(-D(codes))) and
    /// the discriminator's loss (mean softplus(-D(w)) + mean softplus(D(codes))), before its step.
    double adversarial_loss = 0, discriminator_loss = 0;
    double r1 = 0;  ///< the discriminators' R1 penalties (EncoderTrainerOptions::r1_gamma), summed
    /// With an image discriminator: the same two for images (reconstructions vs the batch).
    double image_adversarial_loss = 0, image_discriminator_loss = 0;
    Index active_offsets = 0;  ///< e4e: offsets in use in this step
    Index generated = 0, real = 0;
};

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
        Rng rng(o_.seed ^ (0x9E3779B97F4A7C15ULL * static_cast<std::uint64_t>(step_ + 1)));
        EncoderStepStats st;
        st.real = real_.numel() > 0 ? std::min<Index>(B, static_cast<Index>(std::lround(o_.real_ratio * static_cast<double>(B)))) : 0;
        st.generated = B - st.real;
        const Index per_img = C * R * R;
        Tensor<float> x({B, C, R, R}), ws_true;
        if (st.generated > 0) {
            Tensor<float> z({st.generated, g_.z_dim()});
            rng.fill_normal(z.values());
            ws_true = g_.mapping(z, Truncation{o_.truncation_psi, std::nullopt});
            const Tensor<float> img = g_.synthesis(ws_true, NoiseInput<Cpu>{});
            std::copy(img.data(), img.data() + img.numel(), x.data());
        }
        for (Index r = 0; r < st.real; ++r) {
            const Index k = static_cast<Index>(rng.below(static_cast<std::uint64_t>(real_.dim(0))));
            std::copy(real_.data() + k * per_img, real_.data() + (k + 1) * per_img, x.data() + (st.generated + r) * per_img);
        }
        // A single-pass encoder runs once from x; an iterative one K times from [x, G(w_t)],
        // each iteration trained on its own (its input codes and image are constants here).
        const Index K = e_.config().iterations;
        if (e_.config().e4e) e_.set_active_offsets(active_offsets_at(step_));
        st.active_offsets = e_.config().active_offsets;
        RefineState s;
        if (e_.iterative()) s = refinement_start(g_, e_, B);
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

    /// e4e's progressive schedule: the offsets in use at a step (all of them without one).
    Index active_offsets_at(Index step) const {
        const Index all = e_.num_ws() - 1;
        return o_.progressive_every > 0 ? std::min(all, step / o_.progressive_every) : all;
    }

    /// The encoder file plus what resuming needs: Adam's moments (exact, F64), step, options.
    void save_checkpoint(const std::filesystem::path& path) const {
        SafetensorsWriter w;
        add_encoder_tensors(w, e_);
        if (step_ > 0) {
            const AdamState s = adam_.state();
            w.add_f64("trainer.adam_m", {e_.num_params()}, s.m);
            w.add_f64("trainer.adam_v", {e_.num_params()}, s.v);
            w.set_metadata("trainer_adam_t", std::to_string(s.t.at(0)));
        }
        if (!history_.empty()) {
            const std::size_t cols = history_[0].size();
            std::vector<double> flat;
            for (const auto& row : history_) flat.insert(flat.end(), row.begin(), row.end());
            w.add_f64("trainer.loss_history", {static_cast<Index>(history_.size()), static_cast<Index>(cols)}, flat);
            w.set_metadata("trainer_history_columns", std::to_string(cols));
        }
        // The discriminators and their optimizers: a resumed run continues them.
        if (latent_adv_) latent_adv_->save(w, step_);
        if (image_adv_) image_adv_->save(w, step_);
        w.set_metadata("trainer_step", std::to_string(step_));
        w.set_metadata("trainer_options", o_.to_json().dump());
        w.write(path);
    }

    /// Continues a checkpoint written by save_checkpoint: weights, moments, step and options
    /// (the file's options replace the constructor's).
    void resume(const std::filesystem::path& path) {
        const PspEncoder loaded = load_encoder(path);
        // e4e's active_offsets is training progress, not the network: the checkpoint's applies.
        if (loaded.config().e4e && e_.config().e4e) e_.set_active_offsets(loaded.config().active_offsets);
        GANINV_CHECK(loaded.config().to_json().dump() == e_.config().to_json().dump(), ValueError, "'", path.string(),
                     "': its encoder config differs from the encoder being trained");
        const SafetensorsFile f(path);
        const auto step = f.metadata("trainer_step");
        const auto opts = f.metadata("trainer_options");
        GANINV_CHECK(step && opts, FormatError, "'", path.string(), "' is an encoder but not a training checkpoint (no trainer state)");
        const EncoderTrainerOptions o = EncoderTrainerOptions::from_json(Json::parse(*opts));
        GANINV_CHECK(o.image_loss == o_.image_loss, ValueError, "'", path.string(), "' was trained with ",
                     o.image_loss.empty() ? std::string("the pixel MSE") : "the image loss '" + o.image_loss + "'",
                     " but this run has ", o_.image_loss.empty() ? std::string("the pixel MSE") : "'" + o_.image_loss + "'",
                     "; resume it with the same loss");
        e_.params() = loaded.params();
        step_ = std::stoll(*step);
        history_.clear();
        if (f.contains("trainer.loss_history")) {
            const std::vector<double> flat = f.load_f64("trainer.loss_history");
            const auto cols = static_cast<std::size_t>(std::stoll(f.metadata("trainer_history_columns").value_or("0")));
            GANINV_CHECK(cols >= 1 && flat.size() % cols == 0 && flat.size() / cols <= static_cast<std::size_t>(step_),
                         FormatError, "'", path.string(), "': its loss history (", flat.size(), " values in ", cols,
                         " columns) does not fit its ", step_, " steps");
            for (std::size_t i = 0; i < flat.size(); i += cols)
                history_.emplace_back(flat.begin() + static_cast<std::ptrdiff_t>(i), flat.begin() + static_cast<std::ptrdiff_t>(i + cols));
        }
        GANINV_CHECK(o.real_ratio == 0 || real_.numel() > 0, ValueError, "'", path.string(), "' was trained with ",
                     o.real_ratio, " real images per batch; give the real images again to resume it");
        o_ = o;
        adam_ = Adam(AdamOptions{o_.learning_rate, 0.9, 0.999, 1e-8});
        if (step_ > 0) {
            AdamState s;
            s.rows = 1;
            s.dim = e_.num_params();
            s.m = f.load_f64("trainer.adam_m");
            s.v = f.load_f64("trainer.adam_v");
            s.t = {static_cast<Index>(std::stoll(f.metadata("trainer_adam_t").value_or("0")))};
            adam_.set_state(s);
        }
        make_discriminator();
        if (latent_adv_) latent_adv_->load(f, path, step_);
        if (image_adv_) image_adv_->load(f, path, step_);
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
    Index step_ = 0;
    std::vector<std::vector<double>> history_;
};

}  // namespace ganinv
