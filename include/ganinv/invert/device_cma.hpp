/// @file device_cma.hpp
/// @brief `DeviceCmaLoop`: the Inverter's CMA-ES loop (W and W+ codes, optimised noise maps)
///        with every vector on the generator's backend and only per-row and per-sample scalars
///        on the host.
///
/// On the backend (nn/cma_ops.hpp's functors, the host CmaEs's own code): each row's mean, the
/// paths p_sigma and p_c, diag (sqrt of C's eigenvalues, or of diag(C) when separable), the full
/// variant's C and B, the standard-normal draws z (Philox, keyed per row, the stream being the
/// generation: nothing is uploaded), the steps Y = B D z, the population x = mean + sigma Y
/// ([images * lambda, width] floats, what the objective evaluates) and each row's best sample.
/// Sampling, recombination, both path updates and the rank-one + rank-mu covariance update run
/// there. The population is evaluated in chunks of eval_batch rows, as the host objective
/// evaluates it: its rows go into the generator's inputs (ws, noise maps) as column blocks.
///
/// On the host: CmaCore (optim/cma_core.hpp), shared with the host CmaEs: the ranking, sigma,
/// the generation counters, the stop tests. What crosses, per generation:
///  - up: the sample command (flags, sigma, generation per row) and the update command (flags,
///    sigma, generation, best index and the mu best indices per row): one copy each;
///  - down: the samples' values, images * lambda doubles (the loss's, and the noise
///    regulariser's next to them, added on the backend where they can: evaluate_on_device into
///    double; else each chunk's loss returns them, one copy and wait per chunk on CUDA); then
///    the update's per-row scalars (||p_sigma||, max sqrt(C_jj), max diag, max 1 / diag): one
///    copy. Each copy down is followed by one wait, and there is no other.
///  - full variant only, every lambda / (10 n (c_1 + c_mu)) generations (the host CmaEs's lazy
///    refresh; about every 110 generations in W at n = 512, where Auto picks the separable
///    variant anyway): each refreshed row's C down (n^2 doubles), its B and diag up after
///    Eigen's eigendecomposition on the host. The separable variant (Auto above 200 dimensions:
///    W+, noise maps) never moves a vector.
/// On Cpu the loop gives the host CmaEs branch's results bit for bit; on CUDA ||p_sigma||'s sum
/// is a tree sum and the synthesis its own, so it follows to their rounding.
#pragma once

#include "ganinv/concepts/backend_cma.hpp"
#include "ganinv/invert/device_loop_support.hpp"
#include "ganinv/invert/objective.hpp"
#include "ganinv/invert/options.hpp"
#include "ganinv/invert/stopper.hpp"
#include "ganinv/optim/cma_core.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace ganinv {

template <class G, class Space, class LossT>
class DeviceCmaLoop {
    using B = typename G::backend_type;
    using Buffer = typename G::Buffer;
    using Objective = InverterObjective<G, Space, LossT>;

public:
    /// Whether the loss / the noise regulariser can add their per-row values, in double, into
    /// backend memory (read back with the others in one copy).
    static constexpr bool kLossDoubles = detail::loss_writes_doubles<LossT, Buffer>;
    static constexpr bool kRegDoubles = detail::regularizer_writes_doubles<B, Buffer>;

    /// Whether the loop can run this configuration (else the Inverter keeps its host loop): W / W+
    /// codes without the host-side priors and code regulariser, on a backend with BackendCmaOps.
    /// Any eval_batch: the population is evaluated in chunks as the host objective does.
    static bool supported(const InverterOptions& o, Index images) {
        if constexpr (!BackendCmaOps<B> || !Space::w_like) {
            return false;
        } else {
            return detail::device_loop_allowed(o, images);
        }
    }

    DeviceCmaLoop(Objective& f, const CmaEsOptions& options) : f_(f), b_(f.generator().backend()), core_(options) {}

    /// "cmaes": plain launches (the host ranks between them).
    const std::string& launch_mode() const { return mode_; }

    /// Runs up to o.steps generations from `start` ([N, code | noise maps], as
    /// Objective::initial_params, the distributions' means, sigma from the options) and returns
    /// each row's best sample; fills res.loss_history (best values so far), steps_run, stopped_at.
    Tensor<float> run(const Tensor<float>& start, InversionResult& res) {
        const InverterOptions& o = f_.options();
        n_ = start.dim(0);
        width_ = start.dim(1);
        res.stopped_at.assign(idx(n_), o.steps);
        expect_finite(start.values(), "DeviceCmaLoop: start");
        core_.reset(n_, width_, core_.options().sigma);
        if (o.steps <= 0) return start;
        allocate(start);
        ImageStopper stop(o, n_);
        for (Index step = 0; step < o.steps && stop.running(); ++step) {
            generation();
            record(res, stop, step);
        }
        res.stopped_at = stop.stopped_at(res.steps_run);
        return b_.download(best_);
    }

private:
    static std::size_t idx(Index i) { return static_cast<std::size_t>(i); }

    /// One chunk of the population as the generator sees it: rows [r0, r0 + m).
    struct Chunk {
        Index r0 = 0, m = 0;
        Buffer ws, target;
        std::vector<Buffer> maps;
        std::vector<nn::RowBlock> blocks;
    };

    void allocate(const Tensor<float>& start) {
        const InverterOptions& o = f_.options();
        G& g = f_.generator();
        const Index lambda = core_.lambda(), n = width_, rows = n_ * lambda, code_dim = f_.code_dim();
        pop_ = rows;
        // The chunks of the host objective, each with its targets (row i is image i / lambda).
        const Tensor<float>& targets = f_.targets();
        const Index img_size = targets.numel() / targets.dim(0);
        for (Index r0 = 0; r0 < rows; r0 += o.eval_batch) {
            Chunk c;
            c.r0 = r0;
            c.m = std::min(o.eval_batch, rows - r0);
            Tensor<float> t({c.m, targets.dim(1), targets.dim(2), targets.dim(3)});
            for (Index j = 0; j < c.m; ++j)
                std::copy_n(targets.data() + ((r0 + j) / lambda) * img_size, img_size, t.data() + j * img_size);
            c.target = b_.upload(t);
            c.ws = b_.empty({c.m, g.num_ws(), g.w_dim()});
            const Index repeat = code_dim == g.w_dim() ? g.num_ws() : 1;
            c.blocks.push_back({0, code_dim, repeat, c.ws.data(), nullptr, nullptr, 0.0f});
            Index off = code_dim;
            if (o.optimize_noise)
                for (Index res : f_.noise_resolutions()) {
                    c.maps.push_back(b_.empty({c.m, res, res}));
                    c.blocks.push_back({off, res * res, 1, c.maps.back().data(), nullptr, nullptr, 0.0f});
                    off += res * res;
                }
            GANINV_CHECK(off == width_, ShapeError, "DeviceCmaLoop: start rows are ", width_, " wide, expected ", off);
            chunks_.push_back(std::move(c));
        }
        // The distributions, as CmaEs::reset starts them: mean = start, paths 0, C = B = I, diag 1.
        std::vector<double> mean(start.values().begin(), start.values().end());
        mean_ = detail::upload_doubles(b_, mean);
        diag_ = detail::upload_doubles(b_, std::vector<double>(idx(n_ * n), 1.0));
        ps_ = detail::double_block(b_, n_ * n);
        pc_ = detail::double_block(b_, n_ * n);
        yw_ = detail::double_block(b_, n_ * n);
        t_ = detail::double_block(b_, n_ * n);
        Y_ = detail::double_block(b_, rows * n);
        z_ = b_.zeros({rows * n});
        x_ = b_.zeros({rows, n});
        best_ = b_.upload(start);
        if (!core_.separable()) {
            std::vector<double> eye(idx(n_ * n * n), 0.0);
            for (Index r = 0; r < n_; ++r)
                for (Index j = 0; j < n; ++j) eye[idx((r * n + j) * n + j)] = 1.0;
            C_ = detail::upload_doubles(b_, eye);
            B_ = detail::upload_doubles(b_, eye);
            // Pinned host memory for the refreshes, per row [C | B | diag]: C down, B and diag up.
            host_eig_ = b_.host_buffer(2 * n_ * (2 * n * n + n));
        }
        weights_ = detail::upload_doubles(b_, core_.weights());
        std::vector<double> seeds(idx(n_));
        std::memcpy(seeds.data(), core_.seeds().data(), sizeof(double) * seeds.size());  // 64-bit keys, bit for bit
        seeds_ = detail::upload_doubles(b_, seeds);
        cmd_fields_ = nn::kCmaCmdOrder + core_.mu();
        // Per row: hsig, the command, the out fields; then the samples' values [loss | reg].
        scalars_ = detail::double_block(b_, n_ + cmd_fields_ * n_ + nn::kCmaOutFields * n_);
        values_ = detail::double_block(b_, 2 * rows);
        zero_ = b_.zeros({4 * rows});
        host_ = b_.host_buffer(2 * (cmd_fields_ * n_ + std::max(2 * rows, nn::kCmaOutFields * n_)));
        terms_best_.clear();
    }

    nn::CmaVectors vectors() {
        double* s = detail::as_doubles(scalars_);
        nn::CmaVectors v;
        v.rows = n_;
        v.weights = detail::as_doubles(weights_);
        v.seeds = reinterpret_cast<const std::uint64_t*>(detail::as_doubles(seeds_));
        v.mean = detail::as_doubles(mean_), v.ps = detail::as_doubles(ps_), v.pc = detail::as_doubles(pc_);
        v.diag = detail::as_doubles(diag_);
        v.C = core_.separable() ? nullptr : detail::as_doubles(C_);
        v.B = core_.separable() ? nullptr : detail::as_doubles(B_);
        v.Y = detail::as_doubles(Y_), v.yw = detail::as_doubles(yw_), v.t = detail::as_doubles(t_);
        v.hsig = s;
        v.cmd = s + n_;
        v.out = s + n_ + cmd_fields_ * n_;
        v.z = z_.data(), v.x = x_.data(), v.best = best_.data();
        return v;
    }
    /// A command block into backend memory (one asynchronous copy); every send is followed by a
    /// read (a wait) before the host writes its memory again.
    void send(const std::vector<double>& cmd) {
        std::memcpy(host_.get(), cmd.data(), sizeof(double) * cmd.size());
        b_.copy_to_device_async(host_.get(), 2 * static_cast<Index>(cmd.size()),
                                reinterpret_cast<float*>(detail::as_doubles(scalars_) + n_));
    }
    /// `count` doubles from backend memory to the host (one copy, one wait).
    const double* read(const double* src, Index count) {
        float* h = host_.get() + 2 * cmd_fields_ * n_;
        b_.copy_to_host_async(reinterpret_cast<const float*>(src), 2 * count, h);
        b_.wait_host_copies();
        return reinterpret_cast<const double*>(h);
    }

    bool regularized() const { return f_.options().optimize_noise && f_.options().noise_regularization > 0; }

    /// The population's values, as the host objective computes them: loss + weight * regulariser.
    std::vector<double> evaluate() {
        const InverterOptions& o = f_.options();
        G& g = f_.generator();
        double* dev = detail::as_doubles(values_);  // [loss | reg], pop_ doubles each
        const bool on_backend = kLossDoubles || (kRegDoubles && regularized());
        if (on_backend) b_.copy(zero_.data(), values_.data(), 4 * pop_);
        std::vector<double> loss(idx(pop_)), reg(idx(pop_));
        terms_now_.clear();
        for (Chunk& c : chunks_) {
            b_.scatter_row_blocks(x_.data() + c.r0 * width_, c.m, width_, c.blocks);
            NoiseInput<B> noise{o.fixed_noise, o.seed, nullptr};
            if (o.optimize_noise) noise = {NoiseMode::explicit_maps, 0, &c.maps};
            img_ = g.synthesis(c.ws, noise, &cache_.synthesis);
            if constexpr (kLossDoubles) {
                f_.loss().evaluate_on_device(img_, c.target, nullptr, dev + c.r0, 1.0f);
            } else {
                const LossResult lr = f_.loss().evaluate(img_, c.target, nullptr);
                GANINV_CHECK(static_cast<Index>(lr.per_image.size()) == c.m, ShapeError, "DeviceCmaLoop: the loss gave ",
                             lr.per_image.size(), " values for ", c.m, " rows");
                std::copy(lr.per_image.begin(), lr.per_image.end(), loss.begin() + c.r0);
                add_terms(lr.terms, c.r0);
            }
            if (regularized()) {
                if constexpr (kRegDoubles) {
                    NoiseRegularizer<B>{}.evaluate_on_device(c.maps, nullptr, 1.0f, dev + pop_ + c.r0);
                } else {
                    const std::vector<double> r = NoiseRegularizer<B>{}.evaluate(c.maps, nullptr).per_image;
                    std::copy(r.begin(), r.end(), reg.begin() + c.r0);
                }
            }
            f_.count_evaluations(1);
        }
        if (on_backend) {
            const double* h = read(dev, regularized() && kRegDoubles ? 2 * pop_ : pop_);
            if constexpr (kLossDoubles) std::copy_n(h, pop_, loss.begin());
            if (regularized() && kRegDoubles) std::copy_n(h + pop_, pop_, reg.begin());
        }
        if constexpr (kLossDoubles) terms_now_.push_back(LossTerm{f_.loss().name(), loss});
        std::vector<double> v = loss;
        if (regularized()) {
            const double w = o.noise_regularization;
            LossTerm term{"noise_reg", std::vector<double>(idx(pop_))};
            for (Index i = 0; i < pop_; ++i) {
                v[idx(i)] += w * reg[idx(i)];  // as the host objective adds it
                term.per_image[idx(i)] = w * reg[idx(i)];
            }
            terms_now_.push_back(std::move(term));
        }
        return v;
    }
    /// A chunk's named loss terms into terms_now_ (population rows).
    void add_terms(const std::vector<LossTerm>& chunk, Index r0) {
        for (const LossTerm& t : chunk) {
            auto it = std::find_if(terms_now_.begin(), terms_now_.end(), [&](const LossTerm& e) { return e.name == t.name; });
            if (it == terms_now_.end()) {
                terms_now_.push_back({t.name, std::vector<double>(idx(pop_), 0.0)});
                it = terms_now_.end() - 1;
            }
            std::copy(t.per_image.begin(), t.per_image.end(), it->per_image.begin() + r0);
        }
    }

    /// One generation: sample, evaluate, rank, update (and refresh B, D where due), stop tests.
    void generation() {
        const nn::CmaConstants& k = core_.constants();
        send(core_.sample_command());
        b_.cma_sample(k, vectors());
        const std::vector<double> values = evaluate();
        send(core_.rank(values.data()));
        keep_best_terms();
        const nn::CmaVectors v = vectors();
        b_.cma_update(k, v);
        if (!core_.separable()) refresh(v);
        b_.cma_stats(k, v);
        core_.finish(read(v.out, nn::kCmaOutFields * n_));
    }

    /// Full variant: B and diag of each row whose C is due, by Eigen on the host (cma_eigen, as
    /// the host CmaEs): its C (symmetrised by the update) down, B and diag up, through each row's
    /// own pinned area [C | B | diag], untouched until the stats' read has waited for the uploads.
    void refresh(const nn::CmaVectors& v) {
        const Index n = width_;
        for (Index r = 0; r < n_; ++r) {
            if (!core_.decompose(r)) continue;
            double* area = reinterpret_cast<double*>(host_eig_.get()) + r * (2 * n * n + n);
            double *hb = area + n * n, *hd = hb + n * n;
            b_.copy_to_host_async(reinterpret_cast<const float*>(v.C + r * n * n), 2 * n * n, reinterpret_cast<float*>(area));
            b_.wait_host_copies();
            cma_eigen(area, n, hb, hd);
            b_.copy_to_device_async(reinterpret_cast<const float*>(hb), 2 * n * n, reinterpret_cast<float*>(v.B + r * n * n));
            b_.copy_to_device_async(reinterpret_cast<const float*>(hd), 2 * n, reinterpret_cast<float*>(v.diag + r * n));
        }
    }

    /// The named terms of each row's best sample, where the ranking found a new one.
    void keep_best_terms() {
        if (terms_best_.size() != terms_now_.size()) {
            terms_best_.clear();
            for (const LossTerm& t : terms_now_)
                terms_best_.push_back({t.name, std::vector<double>(idx(n_), std::numeric_limits<double>::infinity())});
        }
        for (Index r = 0; r < n_; ++r) {
            if (!core_.improved(r)) continue;
            const Index s = r * core_.lambda() + core_.best_sample(r);
            for (std::size_t t = 0; t < terms_now_.size(); ++t) terms_best_[t].per_image[idx(r)] = terms_now_[t].per_image[idx(s)];
        }
    }

    /// The generation's best values so far into the history, the stop rule and the progress
    /// callback (the Inverter's record() for its ask/tell branch).
    void record(InversionResult& res, ImageStopper& stop, Index step) {
        const InverterOptions& o = f_.options();
        best_values_.resize(idx(n_));
        for (Index r = 0; r < n_; ++r) best_values_[idx(r)] = core_.best_value(r);
        res.loss_history.push_back(best_values_);
        res.steps_run = step + 1;
        stop.update(best_values_, step);
        if (o.on_progress && ((step + 1) % std::max<Index>(1, o.progress_every) == 0 || step + 1 == o.steps)) {
            InversionProgress p;
            p.step = step + 1;
            p.total_steps = o.steps;
            p.loss = &best_values_;
            p.terms = &terms_best_;
            p.images_running = stop.count_running();
            o.on_progress(p);
        }
    }

    Objective& f_;
    B b_;
    CmaCore core_;
    Index n_ = 0, width_ = 0, pop_ = 0, cmd_fields_ = 0;
    std::vector<Chunk> chunks_;
    Buffer img_;
    typename Space::template Cache<G> cache_;
    Buffer mean_, ps_, pc_, diag_, C_, B_, Y_, yw_, t_, z_, x_, best_, weights_, seeds_, scalars_, values_, zero_;
    std::shared_ptr<float[]> host_, host_eig_;
    std::vector<double> best_values_;
    std::vector<LossTerm> terms_now_, terms_best_;  ///< the named terms of the population's samples, of each row's best
    std::string mode_ = "cmaes";
};

}  // namespace ganinv
