/// @file encoder_trainer_cuda.cuh
/// @brief `EncoderTrainerCuda`: EncoderTrainer (encoder_trainer.hpp) on the GPU — a frozen
///        StyleGAN2<Cuda> and a PspEncoderCuda, the same options, the same batches per (seed,
///        step) and the same checkpoint file (encoder_training.hpp), so a run started on one
///        device resumes on the other. Per step: W+ code MSE on the generated samples, pixel MSE
///        of G(E(x)) with its gradient through synthesis_backward_ws, the encoder's backward into
///        a device gradient and Adam on the device (the backend's adam_segments over the flat
///        weights, as the Tuner's); single-pass pSp, iterative ReStyle (K iterations per step, an
///        Adam step each) and e4e (offsets, progressive schedule, offset penalty).
///
/// What crosses to the host in a step: z and the batch's real images go up (one upload each);
/// the step's loss values (2 doubles per iteration) come back in one copy, plus, for e4e, the
/// encoder's offset penalty per iteration. Weights, gradients and Adam's moments stay on the GPU.
/// Not ported (refused in the constructor and by resume(), naming the option): a custom image
/// loss, the latent and image adversaries, R1 — they need the CPU trainer.
#pragma once

#include "ganinv/backend/cuda.cuh"
#include "ganinv/cuda/squared_error.cuh"
#include "ganinv/invert/device_loop_support.hpp"
#include "ganinv/invert/encoder_refine_cuda.cuh"
#include "ganinv/invert/encoder_training.hpp"
#include "ganinv/models/psp_encoder_cuda.cuh"
#include "ganinv/models/stylegan2.hpp"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ganinv {

/// Throws a ValueError naming the first option the GPU trainer does not have.
inline void refuse_options_not_on_gpu(const EncoderTrainerOptions& o) {
    const char* which = encoder_option_not_on_gpu(o);
    GANINV_CHECK(which == nullptr, ValueError, "encoder training on the GPU: ", which,
                 " is not available on CUDA; it needs --device cpu (the CPU trainer)");
}

class EncoderTrainerCuda {
public:
    using Buffer = cuda::DeviceTensor;

    /// `real` holds real images [M, C, R, R] in [-1, 1] on the host (empty: generated samples
    /// only); a step uploads the ones it draws. The encoder's w_avg is set to the generator's.
    EncoderTrainerCuda(StyleGAN2<Cuda>& g, PspEncoderCuda& e, EncoderTrainerOptions o, Tensor<float> real = {})
        : g_(g), e_(e), o_(std::move(o)), real_(std::move(real)) {
        o_.validate();
        refuse_options_not_on_gpu(o_);
        GANINV_CHECK(&e.backend().pool() == &g.backend().pool(), ValueError,
                     "encoder training on the GPU: the encoder and the generator must share one backend (stream and pool)");
        check_encoder_fits(e.config(), g.num_ws(), g.w_dim(), g.img_channels(), g.resolution(), "being trained");
        GANINV_CHECK(o_.real_ratio == 0 || real_.numel() > 0, ValueError,
                     "encoder training: a real ratio of ", o_.real_ratio, " needs real images");
        if (real_.numel() > 0)
            expect_shape(real_, {real_.dim(0), g.img_channels(), g.resolution(), g.resolution()}, "encoder training: real images");
        e_.set_w_avg(g.param("mapping.w_avg"));
        const Cuda& b = backend();
        const Index P = e_.num_params();
        m_ = b.zeros({1, P});
        v_ = b.zeros({1, P});
        grad_ = b.zeros({1, P});
        adam_step_ = b.zeros({1});
        running_ = b.empty({1});
        b.fill(running_, 1.0f);
        fill_learning_rates(1024);
        values_ = detail::double_block(b, 2 * e_.config().iterations);
        partials_ = detail::double_block(b, cuda::kSquaredErrorParts);
    }

    const EncoderTrainerOptions& options() const { return o_; }
    Index steps_done() const { return step_; }
    /// As EncoderTrainer::history: per step the loss, then each iteration's pixel loss.
    const std::vector<std::vector<double>>& history() const { return history_; }
    Index history_first_step() const { return step_ - static_cast<Index>(history_.size()); }
    /// Adam steps taken (steps x iterations; the checkpoint's trainer_adam_t).
    Index adam_steps() const { return adam_t_; }
    /// As EncoderTrainer::set_bootstrap: the refinement of every batch starts at `bootstrap`'s
    /// codes (a frozen single-pass encoder on this backend, kept by the caller); `fingerprint` is
    /// encoder_fingerprint of its host copy, recorded in the encoder's config.
    void set_bootstrap(const PspEncoderCuda& bootstrap, std::string fingerprint) {
        check_bootstrap(e_, bootstrap);
        GANINV_CHECK(step_ == 0, ValueError, "encoder training: the bootstrapping encoder is set before the first step");
        GANINV_CHECK(&bootstrap.backend().pool() == &g_.backend().pool(), ValueError,
                     "encoder training on the GPU: the bootstrapping encoder must share the generator's backend");
        check_same_bootstrap(e_.config(), fingerprint);
        bootstrap_ = &bootstrap;
        e_.set_bootstrap(std::move(fingerprint));
    }
    /// e4e's progressive schedule (encoder_active_offsets_at).
    Index active_offsets_at(Index step) const { return encoder_active_offsets_at(o_, e_.num_ws(), step); }

    EncoderStepStats step() {
        const Cuda& b = backend();
        const Index B = o_.batch, L = g_.num_ws(), D = g_.w_dim(), C = g_.img_channels(), R = g_.resolution();
        const Index per_img = C * R * R;
        Rng rng = encoder_step_rng(o_.seed, step_);
        const EncoderBatchDraw draw = draw_encoder_batch(rng, o_, g_.z_dim(), real_.numel() > 0 ? real_.dim(0) : 0);
        EncoderStepStats st;
        st.real = draw.real;
        st.generated = draw.generated;
        Buffer x = b.empty({B, C, R, R}), ws_true;
        if (st.generated > 0) {
            ws_true = g_.mapping(b.upload(draw.z), Truncation{o_.truncation_psi, std::nullopt});
            const Buffer img = g_.synthesis(ws_true, NoiseInput<Cuda>{});
            b.copy(img.data(), x.data(), img.numel());
        }
        if (st.real > 0) {  // the drawn real images, gathered on the host: one upload
            Tensor<float> picked({st.real, C, R, R});
            for (Index r = 0; r < st.real; ++r) {
                const Index k = draw.real_indices[static_cast<std::size_t>(r)];
                std::copy(real_.data() + k * per_img, real_.data() + (k + 1) * per_img, picked.data() + r * per_img);
            }
            const Buffer up = b.upload(picked);
            b.copy(up.data(), x.data() + st.generated * per_img, up.numel());
        }
        // As the CPU trainer: one pass from x, or K from [x, G(w_t)], each trained on its own.
        const Index K = e_.config().iterations;
        const bool e4e = e_.config().e4e;
        if (e4e) e_.set_active_offsets(active_offsets_at(step_));
        st.active_offsets = e_.config().active_offsets;
        RefineStateCuda s;
        if (e_.iterative()) {
            check_refinement_start(e_, bootstrap_ != nullptr);
            s = bootstrap_ ? bootstrap_start(g_, *bootstrap_, x) : refinement_start(g_, e_, B);
        }
        b.fill(values_, 0.0f);  // [code, pixel] per iteration, doubles (all-zero bits: 0.0)
        double* values = detail::as_doubles(values_);
        double* partials = detail::as_doubles(partials_);
        std::vector<double> offsets(static_cast<std::size_t>(K), 0.0);
        for (Index t = 0; t < K; ++t) {
            PspEncoderCuda::Cache cache;
            const Buffer codes = e_.iterative() ? e_.forward(refinement_input(b, x, s.reconstruction), &cache, &s.codes)
                                                : e_.forward(x, &cache);
            Buffer grad_codes = b.zeros({B, L, D});
            if (st.generated > 0 && o_.code_weight > 0)
                cuda::mean_squared_error(codes.data(), ws_true.data(), st.generated * L * D, o_.code_weight * 2.0,
                                         grad_codes.data(), partials, values + 2 * t, b.stream());
            Buffer recon;
            if (o_.pixel_weight > 0) {
                StyleGAN2<Cuda>::Cache gc;
                recon = g_.synthesis(codes, NoiseInput<Cuda>{}, &gc);
                Buffer grad_img = b.empty(x.shape());
                cuda::mean_squared_error(recon.data(), x.data(), x.numel(), o_.pixel_weight * 2.0, grad_img.data(),
                                         partials, values + 2 * t + 1, b.stream());
                const Buffer gws = g_.synthesis_backward_ws(gc, grad_img);
                b.axpy(grad_codes.numel(), 1.0f, gws.data(), grad_codes.data());
            } else if (t + 1 < K) {
                recon = g_.synthesis(codes, NoiseInput<Cuda>{});
            }
            if (e4e) offsets[static_cast<std::size_t>(t)] = e_.offset_penalty(cache);
            b.fill(grad_, 0.0f);
            e_.backward(cache, grad_codes, &grad_, false, e4e ? o_.offset_weight : 0.0);
            adam_step();
            s.codes = codes;  // the next iterate starts here; no gradient flows back into this one
            s.reconstruction = std::move(recon);
        }
        const Tensor<float> raw = b.download(values_);  // the step's one read-back
        std::vector<double> v(static_cast<std::size_t>(2 * K));
        std::memcpy(v.data(), raw.data(), sizeof(double) * v.size());
        for (Index t = 0; t < K; ++t) {
            const auto i = static_cast<std::size_t>(t);
            st.code_loss += v[2 * i] / static_cast<double>(K);
            if (o_.pixel_weight > 0) {
                st.iteration_pixel_loss.push_back(v[2 * i + 1]);
                st.pixel_loss += v[2 * i + 1] / static_cast<double>(K);
            }
            st.offset_loss += offsets[i] / static_cast<double>(K);
        }
        st.loss = o_.code_weight * st.code_loss + o_.pixel_weight * st.pixel_loss + (e4e ? o_.offset_weight * st.offset_loss : 0.0);
        // The CPU's Adam refuses a non-finite gradient before stepping; here the step is done
        // by the time the values arrive, so the run stops at once instead.
        GANINV_CHECK(std::isfinite(st.loss), ValueError, "encoder training on the GPU: the loss of step ", step_ + 1, " is ",
                     st.loss, " (a non-finite loss or gradient); the weights are no longer usable: resume from the "
                     "last checkpoint, e.g. with a lower learning rate");
        history_.emplace_back(1, st.loss);
        history_.back().insert(history_.back().end(), st.iteration_pixel_loss.begin(), st.iteration_pixel_loss.end());
        st.step = ++step_;
        return st;
    }

    /// The checkpoint of EncoderTrainer::save_checkpoint (same tensors, metadata and F64 moments):
    /// the weights and Adam's moments are downloaded for it.
    void save_checkpoint(const std::filesystem::path& path) const {
        write_encoder_checkpoint(path, e_.to_host(), step_, o_, history_, [&] { return adam_state(); });
    }

    /// Continues a checkpoint of either trainer: weights, moments, step and options (the file's
    /// options replace the constructor's; one with an option the GPU lacks is refused).
    void resume(const std::filesystem::path& path) {
        const EncoderCheckpoint c = read_encoder_checkpoint(path, e_.config());
        try {
            refuse_options_not_on_gpu(c.options);
        } catch (const ValueError& err) {
            throw ValueError(concat("'", path.string(), "' was trained with options the GPU trainer lacks: ", err.what()));
        }
        check_checkpoint_resumable(c, path, o_.image_loss, real_.numel() > 0);
        const Cuda& b = backend();
        if (c.encoder.config().e4e && e_.config().e4e) e_.set_active_offsets(c.encoder.config().active_offsets);
        const Buffer weights = b.upload(c.encoder.params());
        b.copy(weights.data(), e_.params().data(), weights.numel());  // in place: the encoder keeps its buffer
        step_ = c.step;
        history_ = c.history;
        o_ = c.options;
        fill_learning_rates(lr_.numel());
        if (step_ > 0) {
            upload_moment(c.adam.m, m_);
            upload_moment(c.adam.v, v_);
            adam_t_ = c.adam.t.at(0);
        } else {
            b.fill(m_, 0.0f);
            b.fill(v_, 0.0f);
            adam_t_ = 0;
        }
    }

    /// Adam's state as the CPU's Adam keeps it (moments widened to double).
    AdamState adam_state() const {
        AdamState s;
        s.rows = 1;
        s.dim = e_.num_params();
        const Tensor<float> m = backend().download(m_), v = backend().download(v_);
        s.m.assign(m.values().begin(), m.values().end());
        s.v.assign(v.values().begin(), v.values().end());
        s.t = {adam_t_};
        return s;
    }

private:
    const Cuda& backend() const { return g_.backend(); }

    /// One Adam step on the encoder's flat weights from grad_: the kernel reads its step index
    /// and learning rate from device memory (t = adam_t_ + 1 for the bias corrections).
    void adam_step() {
        const Cuda& b = backend();
        GANINV_CHECK(adam_t_ < (Index{1} << 24), ValueError, "encoder training on the GPU: ", adam_t_,
                     " Adam steps exceed the float step counter's exact range (2^24)");
        if (adam_t_ >= lr_.numel()) fill_learning_rates(std::max<Index>(2 * lr_.numel(), adam_t_ + 1));
        b.fill(adam_step_, static_cast<float>(adam_t_));
        const nn::ParamSegment seg{e_.params().data(), m_.data(), v_.data(), grad_.data(), nullptr, 0.0f, e_.num_params()};
        b.adam_segments(std::span<const nn::ParamSegment>(&seg, 1), 1, nn::AdamConstants{0.9f, 0.999f, 1e-8f},
                        nn::StepState{adam_step_.data(), lr_.data(), nullptr, running_.data()});
        ++adam_t_;
    }

    /// The learning-rate table adam_segments indexes by Adam step: `n` entries, Adam step t at
    /// the rate of training step t / K (an iterative encoder takes K Adam steps per training
    /// step); uploaded once (and again when it grows), never per step.
    void fill_learning_rates(Index n) {
        n = std::max<Index>(n, 1);
        if (o_.lr_decay_steps <= 0) {
            lr_ = backend().empty({n});
            backend().fill(lr_, static_cast<float>(o_.learning_rate));
            return;
        }
        const Index K = e_.config().iterative ? e_.config().iterations : 1;
        Tensor<float> table({n});
        for (Index t = 0; t < n; ++t) table[t] = static_cast<float>(o_.learning_rate_at(t / K));
        lr_ = backend().upload(table);
    }

    void upload_moment(const std::vector<double>& host, Buffer& dst) const {
        Tensor<float> t({1, e_.num_params()});
        for (std::size_t i = 0; i < host.size(); ++i) t.data()[i] = static_cast<float>(host[i]);
        const Buffer up = backend().upload(t);
        backend().copy(up.data(), dst.data(), up.numel());
    }

    StyleGAN2<Cuda>& g_;
    PspEncoderCuda& e_;
    EncoderTrainerOptions o_;
    Tensor<float> real_;
    Buffer m_, v_, grad_;             ///< Adam's moments and the encoder's gradient, [1, P]
    Buffer adam_step_, lr_, running_;  ///< the adam_segments step state
    Buffer values_, partials_;        ///< the step's loss values and the reductions' scratch (doubles)
    const PspEncoderCuda* bootstrap_ = nullptr;  ///< ReStyle's w_0 = E_0(x) (set_bootstrap), else the mean code
    Index adam_t_ = 0;
    Index step_ = 0;
    std::vector<std::vector<double>> history_;
};

}  // namespace ganinv
