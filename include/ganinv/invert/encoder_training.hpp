/// @file encoder_training.hpp
/// @brief What the encoder trainers share — EncoderTrainer (CPU, encoder_trainer.hpp) and
///        EncoderTrainerCuda (GPU, encoder_trainer_cuda.cuh): their options and per-step losses,
///        a step's random draws (the generated samples' z, then the real images' indices: both
///        trainers see the same batches for the same seed and step), e4e's progressive schedule,
///        and the checkpoint file (the encoder file plus Adam's moments in F64, step, options and
///        loss history), written and read in one place so that a checkpoint of either trainer
///        resumes on the other.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/json.hpp"
#include "ganinv/core/rng.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/io/safetensors.hpp"
#include "ganinv/models/encoder_file.hpp"
#include "ganinv/models/psp_encoder.hpp"
#include "ganinv/optim/adam.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace ganinv {

struct EncoderTrainerOptions {
    Index batch = 8;
    std::uint64_t seed = 0;
    double learning_rate = 1e-3;
    /// Cosine decay of the learning rate from `learning_rate` at step lr_decay_start to zero at
    /// step lr_decay_steps (0: a constant rate). A rate annealed at the end of a run settles the
    /// weights that a constant one keeps moving around; starting the decay late keeps the full
    /// rate while the network is still far from its best. A resumed run continues the same curve.
    Index lr_decay_steps = 0;
    Index lr_decay_start = 0;
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
        GANINV_CHECK(lr_decay_steps >= 0, ValueError, "encoder training: the learning-rate decay's end must be >= 0 steps, got ",
                     lr_decay_steps);
        GANINV_CHECK(lr_decay_start >= 0 && (lr_decay_start == 0 || lr_decay_start < lr_decay_steps), ValueError,
                     "encoder training: the learning-rate decay must start at a step >= 0 before its end (start ",
                     lr_decay_start, ", end ", lr_decay_steps, ")");
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
    /// The rate of training step `step` (0-based): constant, or constant until lr_decay_start and
    /// on the cosine down to zero at lr_decay_steps (and zero past it).
    double learning_rate_at(Index step) const {
        if (lr_decay_steps <= 0 || step <= lr_decay_start) return learning_rate;
        if (step >= lr_decay_steps) return 0.0;
        return learning_rate *
               cosine_decay(static_cast<double>(step - lr_decay_start) / static_cast<double>(lr_decay_steps - lr_decay_start));
    }
    Json to_json() const {
        Json j{Json::Object{}};
        j.set("batch", static_cast<std::int64_t>(batch));
        j.set("seed", std::to_string(seed));  // 64 bits do not survive a JSON double
        j.set("learning_rate", learning_rate);
        if (lr_decay_steps > 0) j.set("lr_decay_steps", static_cast<std::int64_t>(lr_decay_steps));
        if (lr_decay_start > 0) j.set("lr_decay_start", static_cast<std::int64_t>(lr_decay_start));
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
        if (const Json* v = j.find("lr_decay_steps")) o.lr_decay_steps = v->as_int();  // absent: constant rate
        if (const Json* v = j.find("lr_decay_start")) o.lr_decay_start = v->as_int();
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

/// The random numbers of step `step` (0-based: the steps done before it) of a run with `seed`:
/// a function of (seed, step) alone, so a resumed run draws the batches a straight run would.
inline Rng encoder_step_rng(std::uint64_t seed, Index step) {
    return Rng(seed ^ (0x9E3779B97F4A7C15ULL * static_cast<std::uint64_t>(step + 1)));
}

/// A step's batch: `generated` samples from z (mapped and synthesised by the trainer), then
/// `real` images picked from the real set.
struct EncoderBatchDraw {
    Index generated = 0, real = 0;
    Tensor<float> z;                  ///< [generated, z_dim]; empty without generated samples
    std::vector<Index> real_indices;  ///< [real], each in [0, real images)
};

/// Draws a step's batch from `rng` (encoder_step_rng's): z first, then the real indices. The
/// trainers keep drawing from `rng` afterwards (the CPU's latent adversary does).
inline EncoderBatchDraw draw_encoder_batch(Rng& rng, const EncoderTrainerOptions& o, Index z_dim, Index real_images) {
    EncoderBatchDraw d;
    d.real = real_images > 0 ? std::min<Index>(o.batch, static_cast<Index>(std::lround(o.real_ratio * static_cast<double>(o.batch))))
                             : 0;
    d.generated = o.batch - d.real;
    if (d.generated > 0) {
        d.z = Tensor<float>({d.generated, z_dim});
        rng.fill_normal(d.z.values());
    }
    for (Index r = 0; r < d.real; ++r)
        d.real_indices.push_back(static_cast<Index>(rng.below(static_cast<std::uint64_t>(real_images))));
    return d;
}

/// e4e's progressive schedule: the offsets in use at `step` (all num_ws - 1 without one).
inline Index encoder_active_offsets_at(const EncoderTrainerOptions& o, Index num_ws, Index step) {
    const Index all = num_ws - 1;
    return o.progressive_every > 0 ? std::min(all, step / o.progressive_every) : all;
}

/// The first option the GPU trainer (EncoderTrainerCuda) does not have, as "what (--flag)", or
/// nullptr: a custom image loss, the latent and image adversaries, R1 need the CPU trainer.
inline const char* encoder_option_not_on_gpu(const EncoderTrainerOptions& o) {
    if (!o.image_loss.empty()) return "a custom image loss (--loss)";
    if (o.latent_adversarial > 0) return "the latent adversary (--latent-adversarial)";
    if (o.image_adversarial > 0) return "the image adversary (--image-adversarial)";
    if (o.r1_gamma > 0) return "R1 on the discriminators (--r1)";
    return nullptr;
}

/// Writes a training checkpoint: the encoder file (`e`: its weights, w_avg, config), then with
/// step > 0 Adam's moments (exact, F64) and step count from `adam` (called only then: the GPU
/// trainer downloads them), the loss history, what `more` adds (the CPU trainer's
/// discriminators), the step and the options.
inline void write_encoder_checkpoint(const std::filesystem::path& path, const PspEncoder& e, Index step,
                                     const EncoderTrainerOptions& o, const std::vector<std::vector<double>>& history,
                                     const std::function<AdamState()>& adam,
                                     const std::function<void(SafetensorsWriter&)>& more = {}) {
    SafetensorsWriter w;
    add_encoder_tensors(w, e);
    if (step > 0) {
        const AdamState s = adam();
        w.add_f64("trainer.adam_m", {e.num_params()}, s.m);
        w.add_f64("trainer.adam_v", {e.num_params()}, s.v);
        w.set_metadata("trainer_adam_t", std::to_string(s.t.at(0)));
    }
    if (!history.empty()) {
        const std::size_t cols = history[0].size();
        std::vector<double> flat;
        for (const auto& row : history) flat.insert(flat.end(), row.begin(), row.end());
        w.add_f64("trainer.loss_history", {static_cast<Index>(history.size()), static_cast<Index>(cols)}, flat);
        w.set_metadata("trainer_history_columns", std::to_string(cols));
    }
    if (more) more(w);
    w.set_metadata("trainer_step", std::to_string(step));
    w.set_metadata("trainer_options", o.to_json().dump());
    w.write(path);
}

/// A training checkpoint as read back.
struct EncoderCheckpoint {
    PspEncoder encoder;  ///< its weights and config (active_offsets: the schedule's at the last step)
    Index step = 0;
    EncoderTrainerOptions options;
    std::vector<std::vector<double>> history;
    AdamState adam;  ///< rows 1, dim num_params (when step > 0; else empty)
};

/// Reads a checkpoint written by write_encoder_checkpoint for an encoder of config `running`
/// (refused when the networks differ; e4e's active_offsets is progress, not the network).
inline EncoderCheckpoint read_encoder_checkpoint(const std::filesystem::path& path, const EncoderConfig& running) {
    PspEncoder loaded = load_encoder(path);
    EncoderConfig expected = running;
    if (loaded.config().e4e && expected.e4e) expected.active_offsets = loaded.config().active_offsets;
    GANINV_CHECK(loaded.config().to_json().dump() == expected.to_json().dump(), ValueError, "'", path.string(),
                 "': its encoder config differs from the encoder being trained");
    const SafetensorsFile f(path);
    const auto step = f.metadata("trainer_step");
    const auto opts = f.metadata("trainer_options");
    GANINV_CHECK(step && opts, FormatError, "'", path.string(), "' is an encoder but not a training checkpoint (no trainer state)");
    EncoderCheckpoint c{std::move(loaded), std::stoll(*step), EncoderTrainerOptions::from_json(Json::parse(*opts)), {}, {}};
    if (f.contains("trainer.loss_history")) {
        const std::vector<double> flat = f.load_f64("trainer.loss_history");
        const auto cols = static_cast<std::size_t>(std::stoll(f.metadata("trainer_history_columns").value_or("0")));
        GANINV_CHECK(cols >= 1 && flat.size() % cols == 0 && flat.size() / cols <= static_cast<std::size_t>(c.step),
                     FormatError, "'", path.string(), "': its loss history (", flat.size(), " values in ", cols,
                     " columns) does not fit its ", c.step, " steps");
        for (std::size_t i = 0; i < flat.size(); i += cols)
            c.history.emplace_back(flat.begin() + static_cast<std::ptrdiff_t>(i), flat.begin() + static_cast<std::ptrdiff_t>(i + cols));
    }
    if (c.step > 0) {
        c.adam.rows = 1;
        c.adam.dim = c.encoder.num_params();
        c.adam.m = f.load_f64("trainer.adam_m");
        c.adam.v = f.load_f64("trainer.adam_v");
        c.adam.t = {static_cast<Index>(std::stoll(f.metadata("trainer_adam_t").value_or("0")))};
        GANINV_CHECK(c.adam.m.size() == static_cast<std::size_t>(c.adam.dim) && c.adam.v.size() == c.adam.m.size(),
                     FormatError, "'", path.string(), "': Adam's moments hold ", c.adam.m.size(), " and ", c.adam.v.size(),
                     " values for ", c.adam.dim, " weights");
    }
    return c;
}

/// Refuses to train an encoder that records another bootstrapping encoder than `fingerprint`
/// (a resumed checkpoint of a run bootstrapped from a different E_0).
inline void check_same_bootstrap(const EncoderConfig& c, const std::string& fingerprint) {
    GANINV_CHECK(c.bootstrap.empty() || c.bootstrap == fingerprint, ValueError, "encoder training: the encoder was trained to "
                 "refine the codes of another bootstrapping encoder (", c.bootstrap, "; this one is ", fingerprint,
                 "): give the same --bootstrap file");
}

/// Refuses a checkpoint this run cannot continue: another reconstruction term (`image_loss`:
/// the run's spec, empty for the pixel MSE), or real images in its batches when the run has none.
inline void check_checkpoint_resumable(const EncoderCheckpoint& c, const std::filesystem::path& path,
                                       const std::string& image_loss, bool has_real) {
    const EncoderTrainerOptions& o = c.options;
    GANINV_CHECK(o.image_loss == image_loss, ValueError, "'", path.string(), "' was trained with ",
                 o.image_loss.empty() ? std::string("the pixel MSE") : "the image loss '" + o.image_loss + "'",
                 " but this run has ", image_loss.empty() ? std::string("the pixel MSE") : "'" + image_loss + "'",
                 "; resume it with the same loss");
    GANINV_CHECK(o.real_ratio == 0 || has_real, ValueError, "'", path.string(), "' was trained with ", o.real_ratio,
                 " real images per batch; give the real images again to resume it");
}

}  // namespace ganinv
