/// @file tuner.hpp
/// @brief `Tuner<G, Loss>`: generator tuning around fixed pivot codes (Pivotal Tuning Inversion,
///        Roich et al. 2021). Adam moves a selection of the synthesis tensors so that the pivots'
///        images approach the targets; the codes do not move. One Tuner tunes one generator for
///        the images it is given (one image: PTI; several: multi-image PTI).
///
/// Everything runs on the generator's backend: the weights, their Adam moments and the step
/// state live in backend memory and the update is the backend's `adam_segments` (the op the
/// device-resident inversion loop uses), so the same template serves StyleGAN2<Cpu> and
/// StyleGAN2<Cuda>. The weight gradients are the generator's own (`synthesis_backward_ws` into
/// backend buffers of the tuned tensors only: the others are not computed, and on the GPU nothing
/// but the per-image loss values leaves the device in a step).
#pragma once

#include "ganinv/concepts/backend_optimizer.hpp"
#include "ganinv/concepts/generator.hpp"
#include "ganinv/concepts/loss.hpp"
#include "ganinv/core/eigen.hpp"
#include "ganinv/core/rng.hpp"
#include "ganinv/invert/tune_options.hpp"

#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace ganinv {

template <class G, class LossT>
class Tuner {
    static_assert(StyleGenerator<G>, "ganinv::Tuner: G must model StyleGenerator (e.g. StyleGAN2<Cpu>)");
    static_assert(DifferentiableLoss<LossT>, "ganinv::Tuner: the loss must be differentiable (weights move by gradient)");
    static_assert(std::is_same_v<typename LossT::backend_type, typename G::backend_type>,
                  "ganinv::Tuner: the loss runs on another backend than the generator");
    static_assert(BackendOptimizerOps<typename G::backend_type>,
                  "ganinv::Tuner: the generator's backend has no optimizer ops (adam_segments)");

public:
    using Backend = typename G::backend_type;
    using Buffer = typename G::Buffer;

    /// One evaluation of the objective at the current weights.
    struct Evaluation {
        std::vector<double> per_image;  ///< the tuning loss of each image
        std::vector<LossTerm> terms;    ///< its named parts, per image
        double locality = 0;            ///< the weighted regulariser (0 when off)
        double total = 0;               ///< mean over images of per_image, plus locality: what Adam minimises
    };

    /// Snapshots the selected tensors of `g` (restore_original() writes them back; the locality
    /// regulariser renders with them). `g` must outlive the Tuner.
    Tuner(G& g, LossT loss, TunerOptions options = {})
        : g_(g), loss_(std::move(loss)), o_(std::move(options)) {
        if (const std::string mismatch = eigen_abi_mismatch(); !mismatch.empty()) throw ValueError(mismatch);
        GANINV_CHECK(o_.steps >= 0, ValueError, "tuner: steps must be >= 0, got ", o_.steps);
        GANINV_CHECK(std::isfinite(o_.learning_rate) && o_.learning_rate >= 0, ValueError,
                     "tuner: the learning rate must be finite and >= 0, got ", o_.learning_rate);
        GANINV_CHECK(o_.locality_weight >= 0 && o_.locality_samples >= 1, ValueError,
                     "tuner: locality weight must be >= 0 and locality samples >= 1");
        GANINV_CHECK(o_.noise == NoiseMode::constant || o_.noise == NoiseMode::none, ValueError,
                     "tuner: the noise must be fixed (constant or none): random noise would make the target move");
        names_ = select_tuned_params(g_.config(), o_.selection);
        Backend& b = g_.backend();
        for (const std::string& name : names_) {
            const Buffer& p = g_.param(name);
            original_.push_back(b.empty(p.shape()));
            b.copy(p.data(), original_.back().data(), p.numel());
            tuned_values_ += p.numel();
        }
        for (const std::string& name : names_) grads_.emplace(name, b.zeros(g_.param(name).shape()));
    }

    const TunerOptions& options() const { return o_; }
    /// Replaces the progress callback (e.g. one progress bar per job).
    void set_progress(std::function<void(Index, Index, double)> on_progress) { o_.on_progress = std::move(on_progress); }
    /// The names of the tuned tensors, in the generator's spec order.
    const std::vector<std::string>& tuned_params() const { return names_; }
    G& generator() { return g_; }

    /// Writes the weights the Tuner was constructed with back into the generator.
    void restore_original() {
        for (std::size_t k = 0; k < names_.size(); ++k)
            g_.backend().copy(original_[k].data(), g_.param(names_[k]).data(), original_[k].numel());
    }

    /// targets [N, C, R, R] in [-1, 1]; pivots [N, num_ws, w_dim] (an inversion's `ws`).
    void set_problem(const Tensor<float>& targets, const Tensor<float>& pivots) {
        const Index R = g_.resolution(), C = g_.img_channels();
        GANINV_CHECK(targets.rank() == 4 && targets.dim(0) >= 1 && targets.dim(1) == C && targets.dim(2) == R &&
                         targets.dim(3) == R,
                     ShapeError, "tuner: targets must be [N, ", C, ", ", R, ", ", R, "] (the generator's images), got ",
                     shape_to_string(targets.shape()));
        GANINV_CHECK(pivots.rank() == 3 && pivots.dim(1) == g_.num_ws() && pivots.dim(2) == g_.w_dim(), ShapeError,
                     "tuner: the pivot codes must be ws of shape [N, ", g_.num_ws(), ", ", g_.w_dim(),
                     "] for this generator, got ", shape_to_string(pivots.shape()));
        GANINV_CHECK(pivots.dim(0) == targets.dim(0), ShapeError, "tuner: ", pivots.dim(0), " pivot code(s) for ",
                     targets.dim(0), " target image(s)");
        expect_finite(targets.values(), "tuner targets");
        expect_finite(pivots.values(), "tuner pivot codes");
        Backend& b = g_.backend();
        pivots_host_ = pivots;
        targets_ = b.upload(targets);
        pivots_ = b.upload(pivots);
        n_ = targets.dim(0);
    }

    /// The objective at the current weights; with `with_grads`, the gradients of every tensor
    /// land in grads() (the selection is what run() moves). `step` seeds the locality codes, so
    /// an evaluation is a deterministic function of the weights.
    Evaluation evaluate(bool with_grads, Index step = 0) {
        GANINV_CHECK(n_ > 0, ValueError, "tuner: set_problem(targets, pivots) first");
        if (with_grads)
            for (auto& [name, t] : grads_) g_.backend().fill(t, 0.0f);
        Evaluation e;
        typename G::Cache cache;
        const Buffer img = g_.synthesis(pivots_, NoiseInput<Backend>{o_.noise, 0, nullptr}, &cache);
        Buffer grad_img;
        LossResult r = loss_.evaluate(img, targets_, with_grads ? &grad_img : nullptr);
        e.per_image = std::move(r.per_image);
        e.terms = std::move(r.terms);
        for (double v : e.per_image) e.total += v / static_cast<double>(n_);
        if (with_grads)
            g_.synthesis_backward_ws(cache, scaled(grad_img, 1.0f / static_cast<float>(n_)), grad_target());
        if (o_.locality_weight > 0) {
            e.locality = locality(with_grads, step);
            e.total += e.locality;
        }
        return e;
    }
    /// Gradients of the last evaluate(true), one host tensor per tuned tensor (downloaded).
    NamedTensors grads() const {
        NamedTensors out;
        for (const std::string& name : names_) out.add(name, g_.backend().download(grads_.at(name)));
        return out;
    }

    /// Tunes the generator in place (from its current weights) for these targets and pivots.
    TuneResult run(const Tensor<float>& targets, const Tensor<float>& pivots) {
        const auto t0 = std::chrono::steady_clock::now();
        set_problem(targets, pivots);
        TuneResult res;
        res.tuned = names_;
        res.tuned_values = tuned_values_;
        res.before = render_on_backend(pivots_);
        res.metrics_before = metrics::compare_reconstruction(res.before, targets);

        Backend& b = g_.backend();
        AdamState adam(b, names_, g_, o_);
        for (Index step = 0; step < o_.steps; ++step) {
            const Evaluation e = evaluate(true, step);
            if (!std::isfinite(e.total)) {  // a non-finite gradient of the last step reached the weights
                restore_original();
                throw ValueError(concat("tuner: the objective is ", e.total, " at step ", step,
                                        " (a non-finite gradient or loss); the generator's original weights are restored"));
            }
            res.loss_history.push_back(e.per_image);
            if (o_.locality_weight > 0) res.locality_history.push_back(e.locality);
            if (o_.on_progress && ((step + 1) % std::max<Index>(1, o_.progress_every) == 0 || step + 1 == o_.steps))
                o_.on_progress(step + 1, o_.steps, e.total);
            if (reached_target(e)) break;  // the weights of this evaluation are the result
            adam.step(b, g_, names_, grads_, step);
            res.steps_run = step + 1;
        }
        res.after = render_on_backend(pivots_);
        res.metrics_after = metrics::compare_reconstruction(res.after, targets);
        res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        return res;
    }

    /// Images of ws [N, num_ws, w_dim] through the generator as it is now (the tuner's noise).
    Tensor<float> render(const Tensor<float>& ws) { return render_on_backend(g_.backend().upload(ws)); }

private:
    /// Adam moments per tuned tensor and the step state, in backend memory.
    class AdamState {
    public:
        AdamState(Backend& b, const std::vector<std::string>& names, G& g, const TunerOptions& o)
            : consts_{static_cast<float>(o.beta1), static_cast<float>(o.beta2), static_cast<float>(o.eps)} {
            const Index table = std::max<Index>(o.steps, 1);
            step_ = b.zeros({1});
            learning_rate_ = b.empty({table});
            b.fill(learning_rate_, static_cast<float>(o.learning_rate));
            noise_scale_ = b.zeros({table});
            running_ = b.empty({1});
            b.fill(running_, 1.0f);
            for (const std::string& name : names) {
                const Shape& s = g.param(name).shape();
                m_.push_back(b.zeros(s));
                v_.push_back(b.zeros(s));
            }
        }
        void step(Backend& b, G& g, const std::vector<std::string>& names, std::map<std::string, Buffer>& grads,
                  Index step) {
            std::vector<nn::ParamSegment> segs;
            for (std::size_t k = 0; k < names.size(); ++k) {
                Buffer& p = g.param(names[k]);
                segs.push_back({p.data(), m_[k].data(), v_[k].data(), grads.at(names[k]).data(), nullptr, 0.0f, p.numel()});
            }
            b.fill(step_, static_cast<float>(step));
            b.adam_segments(segs, 1, consts_, nn::StepState{step_.data(), learning_rate_.data(), noise_scale_.data(),
                                                            running_.data()});
        }

    private:
        nn::AdamConstants consts_;
        Buffer step_, learning_rate_, noise_scale_, running_;
        std::vector<Buffer> m_, v_;
    };

    Tensor<float> render_on_backend(const Buffer& ws) {
        return g_.backend().download(g_.synthesis(ws, NoiseInput<Backend>{o_.noise, 0, nullptr}));
    }

    /// factor * x as a new buffer (the loss gradient is of the sum over images; Adam sees the mean).
    Buffer scaled(const Buffer& x, float factor) {
        Buffer out = g_.backend().zeros(x.shape());
        g_.backend().axpy(x.numel(), factor, x.data(), out.data());
        return out;
    }

    bool reached_target(const Evaluation& e) const {
        if (!o_.target_loss) return false;
        const std::vector<double>* values = &e.per_image;
        if (!o_.stop_term.empty()) {
            values = nullptr;
            std::string known;
            for (const LossTerm& t : e.terms) {
                if (t.name == o_.stop_term) values = &t.per_image;
                known += (known.empty() ? "" : ", ") + t.name;
            }
            GANINV_CHECK(values, ValueError, "tuner: the stop term '", o_.stop_term, "' is not a term of the loss (",
                         known, ")");
        }
        for (double v : *values)
            if (!(v <= *o_.target_loss)) return false;
        return true;
    }

    /// PTI's locality regulariser: codes moved locality_alpha from each pivot towards random
    /// mapped codes must render as with the original weights. Returns the weighted value and
    /// (with_grads) adds its gradient to grads_.
    double locality(bool with_grads, Index step) {
        Backend& b = g_.backend();
        const Index k = o_.locality_samples, per = g_.num_ws() * g_.w_dim();
        Tensor<float> z({k, g_.z_dim()});
        Rng(o_.seed ^ (0x10CA1ULL + 7919ULL * static_cast<std::uint64_t>(step))).fill_normal(z.values());
        const Tensor<float> mapped = b.download(g_.mapping(b.upload(z)));
        Tensor<float> codes({k, g_.num_ws(), g_.w_dim()});
        for (Index s = 0; s < k; ++s) {
            const float* pivot = pivots_host_.data() + (s % n_) * per;
            const float* w = mapped.data() + s * per;
            double norm = 0;
            for (Index i = 0; i < per; ++i) norm += (w[i] - pivot[i]) * static_cast<double>(w[i] - pivot[i]);
            const double scale = o_.locality_alpha / std::max(std::sqrt(norm), 1e-12);
            for (Index i = 0; i < per; ++i) codes[s * per + i] = static_cast<float>(pivot[i] + scale * (w[i] - pivot[i]));
        }
        const Buffer codes_dev = b.upload(codes);
        swap_original();  // the original weights render the images the tuned ones must keep
        const Buffer reference = g_.synthesis(codes_dev, NoiseInput<Backend>{o_.noise, 0, nullptr});
        swap_original();
        typename G::Cache cache;
        const Buffer img = g_.synthesis(codes_dev, NoiseInput<Backend>{o_.noise, 0, nullptr}, &cache);
        Buffer grad_img;
        const LossResult r = loss_.evaluate(img, reference, with_grads ? &grad_img : nullptr);
        const double factor = o_.locality_weight / static_cast<double>(k);
        double value = 0;
        for (double v : r.per_image) value += factor * v;
        if (with_grads) g_.synthesis_backward_ws(cache, scaled(grad_img, static_cast<float>(factor)), grad_target());
        return value;
    }

    typename G::GradTarget grad_target() { return typename G::GradTarget(&grads_); }

    void swap_original() {
        for (std::size_t k = 0; k < names_.size(); ++k) std::swap(g_.param(names_[k]), original_[k]);
    }

    G& g_;
    LossT loss_;
    TunerOptions o_;
    std::vector<std::string> names_;
    std::vector<Buffer> original_;
    Index tuned_values_ = 0;
    std::map<std::string, Buffer> grads_;  ///< the tuned tensors' gradients, in backend memory
    Tensor<float> pivots_host_;
    Buffer targets_, pivots_;
    Index n_ = 0;
};

}  // namespace ganinv
