/// @file device_loop.hpp
/// @brief `DeviceAdamLoop`: the Adam inversion loop (W and W+ codes, optimised noise maps, the
///        official projector's schedule) with everything on the generator's backend.
///
/// Parameters (code rows and noise maps, one buffer each), Adam's moments, the learning-rate and
/// exploration-noise schedule (tables indexed by a step counter in backend memory), the
/// exploration noise (Philox, core/philox.hpp), the noise re-normalisation, the per-image stop
/// rule and the loss history are backend buffers and backend operations (BackendOptimizerOps).
/// The host uploads the targets and the start once, reads the loss values only at progress
/// reports (an asynchronous copy into pinned memory, waited for on an event) and downloads the
/// result at the end. On CUDA the whole step (synthesis, loss, backward, regulariser, Adam,
/// re-normalisation, stop rule) is captured as one graph after an eager first step (cuDNN's
/// algorithm choice and the memory pool's first allocations happen there) and replayed.
/// Cpu runs the same template with plain calls.
///
/// The same steps as the host loop of Inverter (invert/inverter.hpp), with two documented
/// differences: the exploration noise is Philox's (the host loop draws from Rng), and the moments
/// are float (the host Adam keeps double). The tests compare both against a host loop with the
/// same noise.
#pragma once

#include "ganinv/concepts/backend_optimizer.hpp"
#include "ganinv/invert/device_loop_support.hpp"
#include "ganinv/invert/objective.hpp"
#include "ganinv/invert/options.hpp"
#include "ganinv/invert/projector_schedule.hpp"
#include "ganinv/optim/adam.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace ganinv {

namespace detail {
/// Where a captured step lives: std::optional<B::StepGraph> for backends with graphs.
template <class B>
struct GraphSlot {
    using type = bool;
};
template <class B>
    requires requires { typename B::StepGraph; }
struct GraphSlot<B> {
    using type = std::optional<typename B::StepGraph>;
};
}  // namespace detail

template <class G, class Space, class LossT>
class DeviceAdamLoop {
    using B = typename G::backend_type;
    using Buffer = typename G::Buffer;
    using Objective = InverterObjective<G, Space, LossT>;

public:
    /// Whether the loop can run this configuration (else the Inverter keeps its host loop).
    static bool supported(const InverterOptions& o, Index images) {
        if constexpr (!BackendOptimizerOps<B> || !Space::w_like) {
            return false;
        } else {
            return detail::device_loop_allowed(o, images) && o.eval_batch >= images;
        }
    }
    /// Whether every op of a step can stay on the device (else the loss values come back each step).
    static constexpr bool kLossOnDevice =
        requires(LossT& l, const Buffer& b, Buffer* g, float* v) { l.evaluate_on_device(b, b, g, v); };
    static constexpr bool kRegOnDevice = requires(const NoiseRegularizer<B>& r, const std::vector<Buffer>& m,
                                                  std::vector<Buffer>* g, float* v) {
        r.evaluate_on_device(m, g, 1.0f, v);
    };

    DeviceAdamLoop(Objective& f, const AdamOptions& adam) : f_(f), b_(f.generator().backend()) {
        consts_ = {static_cast<float>(adam.beta1), static_cast<float>(adam.beta2), static_cast<float>(adam.eps)};
    }

    /// How the steps ran: "graph" (one captured graph replayed per step) or "plain" (and why).
    const std::string& launch_mode() const { return mode_; }

    /// Runs up to o.steps steps from `start` ([N, code | noise maps], as Objective::initial_params)
    /// and returns the final rows; fills res.loss_history, res.steps_run, res.stopped_at.
    Tensor<float> run(const Tensor<float>& start, InversionResult& res) {
        const InverterOptions& o = f_.options();
        G& g = f_.generator();
        n_ = start.dim(0);
        code_dim_ = f_.code_dim();
        const Index width = start.dim(1), steps = o.steps;
        repeat_ = code_dim_ == g.w_dim() ? g.num_ws() : 1;  // W: one row for all layers; W+: as is
        res.stopped_at.assign(static_cast<std::size_t>(n_), steps);
        if (steps <= 0) return start;

        // Once per batch: targets, start rows, schedule tables, zeroed moments and stop state.
        target_ = b_.upload(f_.targets());
        Index off = code_dim_;
        code_ = b_.upload(columns(start, 0, code_dim_, {n_, code_dim_}));
        m_.push_back(b_.zeros({n_, code_dim_}));
        v_.push_back(b_.zeros({n_, code_dim_}));
        if (o.optimize_noise)
            for (Index r : f_.noise_resolutions()) {
                maps_.push_back(b_.upload(columns(start, off, r * r, {n_, r, r})));
                m_.push_back(b_.zeros({n_, r, r}));
                v_.push_back(b_.zeros({n_, r, r}));
                off += r * r;
            }
        GANINV_CHECK(off == width, ShapeError, "DeviceAdamLoop: start rows are ", width, " wide, expected ", off);
        upload_schedule(steps);
        ws_ = b_.empty({n_, g.num_ws(), g.w_dim()});
        gcode_ = b_.empty({n_, code_dim_});
        values_ = b_.zeros({n_});
        terms_dev_ = b_.zeros({2, n_});
        history_ = b_.zeros({steps + 1, n_});
        best_ = b_.upload(Tensor<float>({n_}, std::numeric_limits<float>::infinity()));
        since_ = b_.zeros({n_});
        stopped_ = b_.upload(Tensor<float>({n_}, -1.0f));
        running_ = b_.upload(Tensor<float>({n_}, 1.0f));
        rule_.has_target = o.target_loss.has_value();
        rule_.target_loss = o.target_loss ? static_cast<float>(*o.target_loss) : 0.0f;
        rule_.patience = o.patience;
        rule_.min_relative_improvement = static_cast<float>(o.min_relative_improvement);
        host_ = b_.host_buffer(3 * n_);

        // Host checks only at reports: progress, or (with a stop rule) every 50 steps.
        const bool stops = rule_.has_target || rule_.patience > 0;
        const Index every = o.on_progress ? std::max<Index>(1, o.progress_every) : (stops ? 50 : steps);
        Index done = 0;
        bool all_stopped = false;
        for (Index step = 0; step < steps && !all_stopped; ++step) {
            run_step(step);
            done = step + 1;
            if (done % every == 0 || done == steps) all_stopped = report(done, steps);
        }
        f_.count_evaluations(done);

        // Results: history, stop steps and rows (one download each).
        const Tensor<float> hist = b_.download(history_), stopped = b_.download(stopped_);
        Index steps_run = done;
        bool every_stopped = true;
        Index last_stop = 0;
        for (Index r = 0; r < n_; ++r) {
            every_stopped = every_stopped && stopped[r] >= 0;
            last_stop = std::max(last_stop, static_cast<Index>(stopped[r]));
        }
        if (every_stopped) steps_run = std::min(steps_run, last_stop);
        for (Index s = 0; s < steps_run; ++s) {
            std::vector<double> v(static_cast<std::size_t>(n_));
            for (Index r = 0; r < n_; ++r) v[static_cast<std::size_t>(r)] = hist[s * n_ + r];
            res.loss_history.push_back(std::move(v));
        }
        res.steps_run = steps_run;
        for (Index r = 0; r < n_; ++r)
            res.stopped_at[static_cast<std::size_t>(r)] = stopped[r] < 0 ? steps_run : static_cast<Index>(stopped[r]);
        Tensor<float> out({n_, width});
        put_columns(b_.download(code_), out, 0);
        off = code_dim_;
        for (const Buffer& mp : maps_) {
            put_columns(b_.download(mp), out, off);
            off += mp.numel() / n_;
        }
        return out;
    }

private:
    static Tensor<float> columns(const Tensor<float>& rows, Index offset, Index count, const Shape& shape) {
        Tensor<float> t(shape);
        const Index w = rows.dim(1), n = rows.dim(0);
        for (Index r = 0; r < n; ++r) std::copy_n(rows.data() + r * w + offset, count, t.data() + r * count);
        return t;
    }
    static void put_columns(const Tensor<float>& block, Tensor<float>& rows, Index offset) {
        const Index n = rows.dim(0), w = rows.dim(1), count = block.numel() / n;
        for (Index r = 0; r < n; ++r) std::copy_n(block.data() + r * count, count, rows.data() + r * w + offset);
    }

    /// Learning rate and exploration-noise scale of every step, as the host loop computes them.
    void upload_schedule(Index steps) {
        const InverterOptions& o = f_.options();
        Tensor<float> lr({steps + 1}, 0.0f), noise({steps + 1}, 0.0f);
        for (Index s = 0; s < steps; ++s) {
            const StepSchedule at = step_schedule(o, steps, s, f_.statistics().w_std);
            lr[s] = static_cast<float>(at.learning_rate);
            noise[s] = static_cast<float>(at.w_noise_scale);
        }
        lr_ = b_.upload(lr);
        noise_scale_ = b_.upload(noise);
        step_ = b_.zeros({1});
    }

    nn::StepState state() const { return {step_.data(), lr_.data(), noise_scale_.data(), running_.data()}; }

    /// The first step runs eagerly (cuDNN plans, pool blocks); with a StepGraph the next one is
    /// captured and every later step replays it.
    void run_step(Index step) {
        if constexpr (requires { typename B::StepGraph; }) {
            const bool capturable = loss_on_device() && kRegOnDevice;
            if (f_.options().device_graph && capturable && step > 0 && !capture_failed_) {
                if (!graph_) {
                    graph_.emplace();
                    try {
                        b_.capture(*graph_, [&] { step_body(); });
                        mode_ = "graph";
                    } catch (const Error& e) {
                        // Capture forbids what an eager step may do when memory runs short (the
                        // pool's free-and-retry synchronises): nothing of the captured step ran, so
                        // this step and the rest run as plain launches, and launch_mode() says why.
                        graph_.reset();
                        capture_failed_ = true;
                        mode_ = concat("plain (graph capture failed: ", e.what(), ")");
                        step_body();
                        return;
                    }
                }
                b_.replay(*graph_);
                return;
            }
            if (step == 0)
                mode_ = !f_.options().device_graph ? "plain (device_graph off)"
                        : capturable ? "plain"
                                     : "plain (the loss reads its values back: not capturable)";
        } else {
            mode_ = "plain (backend without graphs)";
        }
        step_body();
    }

    void step_body() {
        const InverterOptions& o = f_.options();
        G& g = f_.generator();
        b_.fill(terms_dev_, 0.0f);
        b_.exploration_ws(code_.data(), n_, code_dim_, repeat_, state(), o.seed ^ 0x5EEDULL, ws_.data());
        NoiseInput<B> noise{o.fixed_noise, o.seed, nullptr};
        if (o.optimize_noise) noise = {NoiseMode::explicit_maps, 0, &maps_};
        img_ = g.synthesis(ws_, noise, &cache_.synthesis);
        add_loss();
        gws_ = g.synthesis_backward_ws(cache_.synthesis, grad_img_, nullptr, &cache_.grads);
        const float* gcode = gws_.data();
        if (repeat_ > 1) {
            b_.reduce_ws(gws_.data(), n_, g.num_ws(), g.w_dim(), 1.0f, 0, gcode_.data());
            gcode = gcode_.data();
        }
        const bool reg = o.optimize_noise && o.noise_regularization > 0;
        if (reg) add_noise_regularizer(static_cast<float>(o.noise_regularization));
        b_.copy(terms_dev_.data(), values_.data(), n_);  // the total: loss + weighted regulariser
        b_.axpy(n_, 1.0f, terms_dev_.data() + n_, values_.data());
        std::vector<nn::ParamSegment> segs;
        segs.push_back({code_.data(), m_[0].data(), v_[0].data(), gcode, nullptr, 0.0f, code_dim_});
        for (std::size_t k = 0; k < maps_.size(); ++k)
            segs.push_back({maps_[k].data(), m_[k + 1].data(), v_[k + 1].data(), cache_.grads.noise[k].data(),
                            reg ? reg_grads_[k].data() : nullptr, static_cast<float>(o.noise_regularization),
                            maps_[k].numel() / n_});
        b_.adam_segments(segs, n_, consts_, state());
        if (!maps_.empty())
            b_.renormalize_segments(std::span<const nn::ParamSegment>(segs).subspan(1), n_, state());
        b_.stop_and_advance(values_.data(), n_, rule_,
                            {best_.data(), since_.data(), stopped_.data(), running_.data(), history_.data()},
                            step_.data());
    }

    /// Whether this loss object keeps its values on the device (AnyLoss / WeightedLossSum know
    /// it only at run time, from their terms).
    bool loss_on_device() {
        if constexpr (!kLossOnDevice) return false;
        else if constexpr (requires(LossT& l) { l.values_on_device(); }) return f_.loss().values_on_device();
        else return true;
    }
    void add_loss() {
        if constexpr (kLossOnDevice) {
            if (loss_on_device()) {
                f_.loss().evaluate_on_device(img_, target_, &grad_img_, terms_dev_.data());
                return;
            }
        }
        const LossResult r = f_.loss().evaluate(img_, target_, &grad_img_);
        add_host_values(r.per_image, 1.0f, terms_dev_.data());
    }
    void add_noise_regularizer(float weight) {
        if constexpr (kRegOnDevice) {
            NoiseRegularizer<B>{}.evaluate_on_device(maps_, &reg_grads_, weight, terms_dev_.data() + n_);
        } else {
            const LossResult r = NoiseRegularizer<B>{}.evaluate(maps_, &reg_grads_);
            add_host_values(r.per_image, weight, terms_dev_.data() + n_);
        }
    }
    /// Fallback for losses that return their values on the host (an upload per step on CUDA).
    void add_host_values(const std::vector<double>& v, float weight, float* dst) {
        Tensor<float> h({n_});
        for (Index r = 0; r < n_; ++r) h[r] = static_cast<float>(v[static_cast<std::size_t>(r)]);
        const Buffer d = b_.upload(h);
        b_.axpy(n_, weight, d.data(), dst);
    }

    /// After `done` steps: the terms of the last step and the stop steps to the host (pinned
    /// copies, one event wait), the progress callback; true once every image has stopped.
    bool report(Index done, Index steps) {
        const InverterOptions& o = f_.options();
        b_.copy_to_host_async(terms_dev_.data(), 2 * n_, host_.get());
        b_.copy_to_host_async(stopped_.data(), n_, host_.get() + 2 * n_);
        b_.wait_host_copies();
        const bool reg = o.optimize_noise && o.noise_regularization > 0;
        std::vector<double> v(static_cast<std::size_t>(n_));
        terms_.assign(1, LossTerm{f_.loss().name(), std::vector<double>(static_cast<std::size_t>(n_))});
        if (reg) terms_.push_back(LossTerm{"noise_reg", std::vector<double>(static_cast<std::size_t>(n_))});
        Index running = 0;
        for (Index r = 0; r < n_; ++r) {
            const auto i = static_cast<std::size_t>(r);
            v[i] = host_[i] + host_[static_cast<std::size_t>(n_) + i];  // the device's float sum
            terms_[0].per_image[i] = host_[i];
            if (reg) terms_[1].per_image[i] = host_[static_cast<std::size_t>(n_) + i];
            running += host_[static_cast<std::size_t>(2 * n_ + r)] < 0;
        }
        if (o.on_progress && (done % std::max<Index>(1, o.progress_every) == 0 || done == steps)) {
            InversionProgress p;
            p.step = done;
            p.total_steps = steps;
            p.loss = &v;
            p.terms = &terms_;
            p.images_running = running;
            o.on_progress(p);
        }
        return running == 0;
    }

    Objective& f_;
    B b_;
    nn::AdamConstants consts_;
    nn::StopRule rule_;
    Index n_ = 0, code_dim_ = 0, repeat_ = 1;
    Buffer target_, code_, ws_, gcode_, img_, grad_img_, gws_, values_, terms_dev_, history_;
    Buffer lr_, noise_scale_, step_, best_, since_, stopped_, running_;
    std::vector<Buffer> maps_, m_, v_, reg_grads_;
    typename Space::template Cache<G> cache_;
    std::shared_ptr<float[]> host_;
    std::vector<LossTerm> terms_;  ///< at the last report: the loss (one term) and the regulariser
    std::string mode_ = "plain";
    bool capture_failed_ = false;
    typename detail::GraphSlot<B>::type graph_;
};

}  // namespace ganinv
