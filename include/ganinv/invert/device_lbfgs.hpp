/// @file device_lbfgs.hpp
/// @brief `DeviceLbfgsLoop`: the Inverter's L-BFGS loop (W and W+ codes, optimised noise maps)
///        with every vector on the generator's backend and only per-row scalars on the host.
///
/// The rows' vectors are backend buffers in one [rows, width] layout (code, then noise maps, as
/// the host rows): the point x and its gradient g in float (as evaluated), the trial point and
/// its gradient, the gradient at the best trial, and in double the direction d and the history
/// rings s_k, y_k. One layout makes each per-row dot product a single pass; the generator's
/// inputs (ws, noise maps) are column blocks written from a point, and its gradients are
/// gathered back (BackendLbfgsOps::scatter_row_blocks / gather_row_blocks). The two-loop
/// recursion runs on the backend with its coefficients (rho, alpha, beta, gamma) and the
/// history ring (head, count) in backend memory (nn/lbfgs_ops.hpp).
///
/// The strong-Wolfe searches (StrongWolfeSearch, one per row) run on the host: they branch on
/// every value. What crosses, per row, as scalars (each copy one asynchronous copy and one wait):
///  - per step, down: max |g|, g'd, g'g and the pair count after the direction (one copy);
///  - per line-search round, up: the step along d and a command word (one copy); down: whether
///    the trial point moved (one copy);
///  - per evaluation, down: its slope g'd, loss and noise-regulariser values (one copy). The
///    loss and the regulariser add their per-row doubles into that out block on the backend
///    (evaluate_on_device into double); a loss that cannot (a sum of terms, a network loss, any
///    loss on Cpu) returns its values itself, one more copy and wait per evaluation on CUDA;
///  - per step, up: the accepted step and command (one copy).
/// Never a vector. The objective is the host objective's, operation for operation (double
/// values, float gradients), so on Cpu the loop follows the host Lbfgs bit for bit and on CUDA
/// to the rounding of the parallel dot products.
///
/// Against the Inverter's host L-BFGS branch: a stopped image freezes here (its row leaves the
/// search; its history repeats its last value), whereas the host Lbfgs keeps moving a stopped
/// row that the Inverter then puts back; and the host branch's one discarded evaluation before
/// the first step is not made. Running rows follow the same trajectory either way.
#pragma once

#include "ganinv/concepts/backend_lbfgs.hpp"
#include "ganinv/invert/device_loop_support.hpp"
#include "ganinv/invert/objective.hpp"
#include "ganinv/invert/options.hpp"
#include "ganinv/invert/stopper.hpp"
#include "ganinv/optim/lbfgs.hpp"
#include "ganinv/optim/line_search.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ganinv {

template <class G, class Space, class LossT>
class DeviceLbfgsLoop {
    using B = typename G::backend_type;
    using Buffer = typename G::Buffer;
    using Objective = InverterObjective<G, Space, LossT>;

public:
    /// Whether the loss / the noise regulariser can add their per-row values, in double, into
    /// backend memory (the out block), so that they cross with the slope in one copy.
    static constexpr bool kLossDoubles = detail::loss_writes_doubles<LossT, Buffer>;
    static constexpr bool kRegDoubles = detail::regularizer_writes_doubles<B, Buffer>;

    /// Whether the loop can run this configuration (else the Inverter keeps its host loop):
    /// the conditions of DeviceAdamLoop::supported, on a backend with BackendLbfgsOps.
    static bool supported(const InverterOptions& o, Index images) {
        if constexpr (!BackendLbfgsOps<B> || !Space::w_like) {
            return false;
        } else {
            return detail::device_loop_allowed(o, images) && o.eval_batch >= images;
        }
    }

    DeviceLbfgsLoop(Objective& f, const LbfgsOptions& options) : f_(f), b_(f.generator().backend()), opt_(options) {}

    /// "lbfgs": plain launches (the host's line search decides between launches; no graph).
    const std::string& launch_mode() const { return mode_; }

    /// Runs up to o.steps L-BFGS steps from `start` ([N, code | noise maps], as
    /// Objective::initial_params) and returns the final rows; fills res.loss_history,
    /// res.steps_run and res.stopped_at.
    Tensor<float> run(const Tensor<float>& start, InversionResult& res) {
        const InverterOptions& o = f_.options();
        n_ = start.dim(0);
        width_ = start.dim(1);
        res.stopped_at.assign(static_cast<std::size_t>(n_), o.steps);
        if (o.steps <= 0) return start;
        allocate(start);

        evaluate(x_.data(), g_.data());
        f_values_ = values(values_on_backend() ? read(nn::kLbfgsOutLoss, 2) : nullptr);
        for (Index r = 0; r < n_; ++r)
            GANINV_CHECK(std::isfinite(f_values_[idx(r)]), ValueError, "DeviceLbfgsLoop: the objective is not finite (",
                         f_values_[idx(r)], ") at the starting point of row ", r);
        terms_at_ = terms_best_ = terms_now_;
        status_.assign(idx(n_), LbfgsRowStatus::Running);
        pairs_.assign(idx(n_), 0);

        ImageStopper stop(o, n_);
        Index max_pairs = 0;  // no row can hold more pairs than steps taken
        for (Index step = 0; step < o.steps && stop.running(); ++step) {
            lbfgs_step(stop, step == 0, max_pairs);
            max_pairs = std::min(max_pairs + 1, opt_.history_size);
            record(res, stop, step);
        }
        res.stopped_at = stop.stopped_at(res.steps_run);
        return b_.download(x_);
    }

private:
    static std::size_t idx(Index i) { return static_cast<std::size_t>(i); }

    void allocate(const Tensor<float>& start) {
        const InverterOptions& o = f_.options();
        G& g = f_.generator();
        const Index m = opt_.history_size, code_dim = f_.code_dim();
        target_ = b_.upload(f_.targets());
        // The generator's inputs: ws (W: the row's code for every layer; W+: as is), noise maps.
        ws_ = b_.empty({n_, g.num_ws(), g.w_dim()});
        const Index repeat = code_dim == g.w_dim() ? g.num_ws() : 1;
        if (o.optimize_noise)
            for (Index r : f_.noise_resolutions()) maps_.push_back(b_.empty({n_, r, r}));
        blocks_.push_back({0, code_dim, repeat, ws_.data(), nullptr, nullptr, 0.0f});
        Index off = code_dim;
        for (Buffer& mp : maps_) {
            blocks_.push_back({off, mp.numel() / n_, 1, mp.data(), nullptr, nullptr, 0.0f});
            off += mp.numel() / n_;
        }
        GANINV_CHECK(off == width_, ShapeError, "DeviceLbfgsLoop: start rows are ", width_, " wide, expected ", off);

        zero_ = b_.zeros({4 * n_});  // the two value fields' doubles, cleared before each evaluation
        x_ = b_.upload(start);
        g_ = b_.zeros({n_, width_});
        trial_ = b_.zeros({n_, width_});
        g_trial_ = b_.zeros({n_, width_});
        g_best_ = b_.zeros({n_, width_});
        d_ = detail::double_block(b_, n_ * width_);
        s_ = detail::double_block(b_, m * n_ * width_);
        y_ = detail::double_block(b_, m * n_ * width_);
        // Per-row scalars: head, count, slot, coef; rho, sy, yy, alpha per pair; the out fields;
        // two commands (search rounds, acceptance) of [step | flags].
        scalars_ = detail::double_block(b_, 4 * n_ + 4 * m * n_ + nn::kLbfgsOutFields * n_ + 4 * n_);
        double* p = detail::as_doubles(scalars_);
        rows_.head = p;
        rows_.count = p + n_;
        rows_.slot = p + 2 * n_;
        rows_.coef = p + 3 * n_;
        p += 4 * n_;
        rows_.rho = p;
        rows_.sy = p + m * n_;
        rows_.yy = p + 2 * m * n_;
        rows_.alpha = p + 3 * m * n_;
        p += 4 * m * n_;
        rows_.out = p;
        p += nn::kLbfgsOutFields * n_;
        cmd_search_ = p;
        cmd_accept_ = p + 2 * n_;
        // Host side (pinned on CUDA): the two commands, then the out fields.
        host_ = b_.host_buffer(2 * (4 * n_ + nn::kLbfgsOutFields * n_));
        step_.assign(idx(n_), 0.0);
        flags_.assign(idx(n_), 0u);
    }

    nn::LbfgsVectors vectors() {
        return {n_,          width_,         opt_.history_size, x_.data(), g_.data(), trial_.data(), g_trial_.data(),
                g_best_.data(), detail::as_doubles(d_), detail::as_doubles(s_), detail::as_doubles(y_)};
    }
    nn::LbfgsRows rows(const double* cmd) const {
        nn::LbfgsRows w = rows_;
        w.step = cmd;
        w.flags = cmd + n_;
        return w;
    }
    /// The host's step_ and flags_ into backend memory (one asynchronous copy). Every send is
    /// followed by a read (a wait) before its host memory is written again.
    const double* send(bool accept) {
        float* h = host_.get() + (accept ? 4 * n_ : 0);
        double* hd = reinterpret_cast<double*>(h);
        for (Index r = 0; r < n_; ++r) {
            hd[r] = step_[idx(r)];
            hd[n_ + r] = static_cast<double>(flags_[idx(r)]);
        }
        double* dst = accept ? cmd_accept_ : cmd_search_;
        b_.copy_to_device_async(h, 4 * n_, reinterpret_cast<float*>(dst));
        return dst;
    }
    /// `fields` out fields from `first` to the host (one copy, one wait): rows * fields doubles.
    const double* read(int first, int fields) {
        float* h = host_.get() + 8 * n_;
        b_.copy_to_host_async(reinterpret_cast<const float*>(rows_.out + first * n_), 2 * fields * n_, h);
        b_.wait_host_copies();
        return reinterpret_cast<const double*>(h);
    }

    /// The host objective at `point` ([rows, width], backend memory), its gradient into `grad`:
    /// synthesis, loss, backward, noise regulariser, all on the backend. The per-row loss and
    /// regulariser values go into the out block's value fields where they can (kLossDoubles,
    /// kRegDoubles), else to loss_host_ / reg_host_; values() combines them once read.
    void evaluate(const float* point, float* grad) {
        const InverterOptions& o = f_.options();
        G& g = f_.generator();
        double* dev_values = rows_.out + nn::kLbfgsOutLoss * n_;  // [loss | reg], n_ doubles each
        b_.copy(zero_.data(), reinterpret_cast<float*>(dev_values), 4 * n_);
        b_.scatter_row_blocks(point, n_, width_, blocks_);
        NoiseInput<B> noise{o.fixed_noise, o.seed, nullptr};
        if (o.optimize_noise) noise = {NoiseMode::explicit_maps, 0, &maps_};
        img_ = g.synthesis(ws_, noise, &cache_.synthesis);
        if constexpr (kLossDoubles) {
            f_.loss().evaluate_on_device(img_, target_, &grad_img_, dev_values, 1.0f);
        } else {
            LossResult lr = f_.loss().evaluate(img_, target_, &grad_img_);
            GANINV_CHECK(static_cast<Index>(lr.per_image.size()) == n_, ShapeError, "DeviceLbfgsLoop: the loss gave ",
                         lr.per_image.size(), " values for ", n_, " rows");
            loss_host_ = std::move(lr.per_image);
            loss_terms_ = std::move(lr.terms);  // the loss's named terms, as the host objective reports them
        }
        gws_ = g.synthesis_backward_ws(cache_.synthesis, grad_img_, nullptr, &cache_.grads);
        blocks_[0].grad = gws_.data();
        const bool reg = regularized();
        const double w = o.noise_regularization;
        if (reg) {
            if constexpr (kRegDoubles) {
                NoiseRegularizer<B>{}.evaluate_on_device(maps_, &reg_grads_, 1.0f, dev_values + n_);
            } else {
                reg_host_ = NoiseRegularizer<B>{}.evaluate(maps_, &reg_grads_).per_image;
            }
        }
        for (std::size_t k = 0; k < maps_.size(); ++k) {
            blocks_[k + 1].grad = cache_.grads.noise[k].data();
            blocks_[k + 1].grad2 = reg ? reg_grads_[k].data() : nullptr;
            blocks_[k + 1].grad2_scale = static_cast<float>(w);
        }
        b_.gather_row_blocks(blocks_, n_, width_, grad);
        f_.count_evaluations(1);
    }

    bool regularized() const { return f_.options().optimize_noise && f_.options().noise_regularization > 0; }
    /// Whether an evaluation leaves values in the out block's value fields (to be read).
    bool values_on_backend() const { return kLossDoubles || (kRegDoubles && regularized()); }

    /// The last evaluation's value per row, loss + weight * regulariser as the host objective adds
    /// them (in double), from `dev` (the host copy of its two value fields) or the host values;
    /// also its named terms (terms_now_).
    std::vector<double> values(const double* dev) {
        std::vector<double> v(idx(n_));
        if constexpr (kLossDoubles) {
            std::copy_n(dev, n_, v.begin());
            terms_now_.assign(1, LossTerm{f_.loss().name(), v});  // a pixel loss: one term, its own name
        } else {
            v = loss_host_;
            terms_now_ = loss_terms_;
        }
        if (regularized()) {
            const double w = f_.options().noise_regularization;
            LossTerm term{"noise_reg", std::vector<double>(idx(n_))};
            for (Index r = 0; r < n_; ++r) {
                const double reg = kRegDoubles ? dev[n_ + r] : reg_host_[idx(r)];
                v[idx(r)] += w * reg;  // as the host objective adds it
                term.per_image[idx(r)] = w * reg;
            }
            terms_now_.push_back(std::move(term));
        }
        return v;
    }

    /// Row r's values of every term from `from` into `to` (the same terms in the same order).
    static void copy_terms(const std::vector<LossTerm>& from, std::vector<LossTerm>& to, std::size_t r) {
        for (std::size_t k = 0; k < from.size() && k < to.size(); ++k) to[k].per_image[r] = from[k].per_image[r];
    }

    /// One L-BFGS iteration of every running row (Lbfgs::step's decisions, made here from the
    /// rows' scalars; the vector work is the backend's).
    void lbfgs_step(const ImageStopper& stop, bool first, Index max_pairs) {
        const WolfeOptions wolfe{opt_.c1, opt_.c2, opt_.max_evaluations_per_step, 1e10};
        std::vector<char> run(idx(n_), 0), searching(idx(n_), 0), keep(idx(n_), 0), reset(idx(n_), 0);
        std::vector<StrongWolfeSearch> search(idx(n_));
        bool any = false;
        for (Index r = 0; r < n_; ++r) {
            run[idx(r)] = status_[idx(r)] == LbfgsRowStatus::Running && !stop.stopped(r);
            any = any || run[idx(r)];
        }
        if (!any) return;

        // Directions: the two-loop recursion on the backend; its scalars per row come back.
        for (Index r = 0; r < n_; ++r) flags_[idx(r)] = run[idx(r)] ? nn::kLbfgsRun : 0u;
        std::fill(step_.begin(), step_.end(), 0.0);
        b_.lbfgs_direction(vectors(), rows(send(false)), max_pairs);
        const double* out = read(nn::kLbfgsOutMaxAbs, 4);
        bool any_searching = false;
        for (Index r = 0; r < n_; ++r) {
            if (!run[idx(r)]) continue;
            const double max_abs = out[nn::kLbfgsOutMaxAbs * n_ + r];
            GANINV_CHECK(!first || std::isfinite(max_abs), ValueError,
                         "DeviceLbfgsLoop: non-finite gradient at the starting point of row ", r);
            if (max_abs <= opt_.gradient_tolerance) {
                status_[idx(r)] = LbfgsRowStatus::Converged;
                continue;
            }
            pairs_[idx(r)] = static_cast<Index>(out[nn::kLbfgsOutPairs * n_ + r]);
            double slope = out[nn::kLbfgsOutSlope0 * n_ + r];
            if (!(slope < 0.0) || !std::isfinite(slope)) {  // not a descent direction: steepest descent
                reset[idx(r)] = 1;
                pairs_[idx(r)] = 0;
                slope = -out[nn::kLbfgsOutGG * n_ + r];
            }
            search[idx(r)].start(f_values_[idx(r)], slope, lbfgs_first_step(pairs_[idx(r)], slope), wolfe);
            searching[idx(r)] = 1;
            any_searching = true;
        }

        // Line-search rounds: every searching row's trial in one batched evaluation.
        while (any_searching) {
            for (Index r = 0; r < n_; ++r) {
                const auto i = idx(r);
                step_[i] = searching[i] ? search[i].trial() : 0.0;
                flags_[i] = (reset[i] ? nn::kLbfgsReset : 0u) | (keep[i] ? nn::kLbfgsKeep : 0u) |
                            (searching[i] ? nn::kLbfgsWrite : 0u);
            }
            const double* cmd = send(false);
            b_.lbfgs_trial(vectors(), rows(cmd));
            std::fill(reset.begin(), reset.end(), 0);
            std::fill(keep.begin(), keep.end(), 0);
            const double* moved = read(nn::kLbfgsOutMoved, 1);
            bool moving = false;
            for (Index r = 0; r < n_; ++r) {
                if (!searching[idx(r)]) continue;
                if (moved[r] == 0.0) {
                    search[idx(r)].finish();  // the step no longer moves any float coordinate
                    searching[idx(r)] = 0;
                } else {
                    moving = true;
                }
            }
            if (!moving) break;
            evaluate(trial_.data(), g_trial_.data());
            b_.lbfgs_slope(vectors(), rows(cmd));
            // The slopes and both value fields follow each other in the out block: one copy.
            static_assert(nn::kLbfgsOutLoss == nn::kLbfgsOutSlope + 1 && nn::kLbfgsOutReg == nn::kLbfgsOutLoss + 1);
            const double* slope = read(nn::kLbfgsOutSlope, values_on_backend() ? 3 : 1);
            const std::vector<double> f_trial = values(slope + n_);
            any_searching = false;
            for (Index r = 0; r < n_; ++r) {
                const auto i = idx(r);
                if (!searching[i]) continue;
                if (search[i].observe(f_trial[i], slope[r])) {
                    keep[i] = 1;  // g_best = g_trial before the next evaluation overwrites it
                    copy_terms(terms_now_, terms_best_, i);
                }
                if (search[i].status() != LineSearchStatus::Searching) searching[i] = 0;
                any_searching = any_searching || searching[i];
            }
        }

        // Acceptance: the new points, the pairs, the cleared histories.
        bool any_command = false;
        for (Index r = 0; r < n_; ++r) {
            const auto i = idx(r);
            step_[i] = 0.0;
            flags_[i] = keep[i] ? nn::kLbfgsKeep : 0u;
            if (run[i] && status_[i] == LbfgsRowStatus::Running) {
                const LineSearchStatus st = search[i].status();
                if (st == LineSearchStatus::Wolfe || st == LineSearchStatus::Best) {
                    flags_[i] |= nn::kLbfgsAccept;
                    step_[i] = search[i].best().alpha;
                    const double f_old = f_values_[i], f_new = search[i].best().value;
                    f_values_[i] = f_new;
                    copy_terms(terms_best_, terms_at_, i);
                    if (opt_.value_tolerance > 0.0 &&
                        std::abs(f_old - f_new) <= opt_.value_tolerance * std::max(1.0, std::abs(f_new)))
                        status_[i] = LbfgsRowStatus::Converged;
                } else if (pairs_[i] > 0) {
                    flags_[i] |= nn::kLbfgsClear;  // the quasi-Newton model misled us: steepest descent next
                    pairs_[i] = 0;
                } else {
                    status_[i] = LbfgsRowStatus::Stalled;
                }
            }
            any_command = any_command || flags_[i] != 0u;
        }
        if (any_command) b_.lbfgs_accept(vectors(), rows(send(true)));
    }

    /// The step's values into the history, the stop rule and the progress callback (the
    /// Inverter's record() for the host loops).
    void record(InversionResult& res, ImageStopper& stop, Index step) {
        const InverterOptions& o = f_.options();
        res.loss_history.push_back(f_values_);
        res.steps_run = step + 1;
        stop.update(f_values_, step);
        if (o.on_progress && ((step + 1) % std::max<Index>(1, o.progress_every) == 0 || step + 1 == o.steps)) {
            InversionProgress p;
            p.step = step + 1;
            p.total_steps = o.steps;
            p.loss = &f_values_;
            p.terms = &terms_at_;
            p.images_running = stop.count_running();
            o.on_progress(p);
        }
    }

    Objective& f_;
    B b_;
    LbfgsOptions opt_;
    Index n_ = 0, width_ = 0;
    Buffer target_, ws_, img_, grad_img_, gws_;
    std::vector<Buffer> maps_, reg_grads_;
    std::vector<nn::RowBlock> blocks_;
    typename Space::template Cache<G> cache_;
    Buffer x_, g_, trial_, g_trial_, g_best_, d_, s_, y_, scalars_, zero_;
    nn::LbfgsRows rows_;
    double* cmd_search_ = nullptr;
    double* cmd_accept_ = nullptr;
    std::shared_ptr<float[]> host_;
    std::vector<double> step_;
    std::vector<unsigned> flags_;
    // Per row on the host: the value at x, the L-BFGS status, the stored pairs; the named terms of
    // the last evaluation, of each row's best trial and at each row's x.
    std::vector<double> f_values_;
    std::vector<LbfgsRowStatus> status_;
    std::vector<Index> pairs_;
    std::vector<LossTerm> terms_now_, terms_best_, terms_at_;  ///< the named terms (loss terms, noise_reg)
    // The last evaluation's values where the loss / the regulariser return them to the host.
    std::vector<double> loss_host_, reg_host_;
    std::vector<LossTerm> loss_terms_;
    std::string mode_ = "lbfgs";
};

}  // namespace ganinv
