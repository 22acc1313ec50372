/// @file objective.hpp
/// @brief The function an inverter minimises, per image: loss(G(space(code), noise), target)
///        + noise regularisation + priors, with its gradient w.r.t. the parameter rows
///        [code | noise maps]. Rows may outnumber images (populations): row r belongs to image
///        r / (rows / images).
#pragma once

#include "ganinv/concepts/latent_space.hpp"
#include "ganinv/concepts/optimizer.hpp"
#include "ganinv/invert/options.hpp"
#include "ganinv/latent/spaces.hpp"
#include "ganinv/loss/noise_regularizer.hpp"

#include <cmath>
#include <limits>
#include <vector>

namespace ganinv {

template <class G, class Space, class LossT>
class InverterObjective {
public:
    using Buffer = typename G::Buffer;

    InverterObjective(G& g, LossT loss, Space space, InverterOptions o)
        : g_(g), loss_(std::move(loss)), space_(std::move(space)), o_(std::move(o)) {
        GANINV_CHECK(o_.steps >= 0, ValueError, "inverter: steps must be >= 0, got ", o_.steps);
        GANINV_CHECK(o_.eval_batch >= 1, ValueError, "inverter: eval_batch must be >= 1");
        code_dim_ = space_.dim(g_);
        for (Index r : g_.plan().noise_resolutions) {
            noise_offsets_.push_back(noise_dim_);
            noise_res_.push_back(r);
            noise_dim_ += r * r;
        }
        if (!o_.optimize_noise) noise_dim_ = 0;
        GANINV_CHECK(!o_.code_regularizer || Space::w_like, ValueError, "inverter: the code regulariser '",
                     o_.code_regularizer ? o_.code_regularizer->name : "", "' works on W and W+ codes, not on the ",
                     Space::name, " space");
    }

    const InverterOptions& options() const { return o_; }
    const LatentStatistics& statistics() const { return stats_; }
    const std::vector<LossTerm>& last_terms() const { return terms_; }
    Index evaluations() const { return evaluations_; }
    Index code_dim() const { return code_dim_; }
    // The pieces the device loop (invert/device_loop.hpp) runs on the generator's backend.
    G& generator() { return g_; }
    LossT& loss() { return loss_; }
    const Tensor<float>& targets() const { return targets_; }
    const std::vector<Index>& noise_resolutions() const { return noise_res_; }
    void count_evaluations(Index k) { evaluations_ += k; }

    void set_targets(const Tensor<float>& t) {
        GANINV_CHECK(t.rank() == 4 && t.dim(0) >= 1, ShapeError, "inverter: targets must be [N, C, H, W], got ",
                     shape_to_string(t.shape()));
        GANINV_CHECK(t.dim(1) == g_.img_channels() && t.dim(2) == g_.resolution() && t.dim(3) == g_.resolution(),
                     ShapeError, "inverter: targets are ", shape_to_string(t.shape()), " but the generator makes [N, ",
                     g_.img_channels(), ", ", g_.resolution(), ", ", g_.resolution(),
                     "] images (resize and convert channels first)");
        expect_finite(t.values(), "inverter targets");
        targets_ = t;
        const bool need_gaussian = reports_mahalanobis();
        const bool need_stats = Space::w_like || o_.init.kind == InitKind::mean || o_.w_avg_prior > 0 || need_gaussian;
        const auto fits = [&](const LatentStatistics& s) {
            return s.samples == o_.w_statistics_samples && (!need_gaussian || !s.w_gaussian.empty());
        };
        if (need_stats && !fits(stats_)) {
            LatentStatistics* shared = o_.w_statistics_cache.get();
            if (shared && fits(*shared)) {
                stats_ = *shared;  // computed by an earlier batch with this generator
            } else {
                stats_ = estimate_w_statistics(g_, o_.w_statistics_samples, 123, need_gaussian);
                if (shared) *shared = stats_;
            }
        }
    }

    /// [N, code_dim + noise_dim]: the space's initial code, then N(0, 1) noise maps normalised
    /// to zero mean / unit variance (as the official projector starts them).
    Tensor<float> initial_params() {
        const Index n = targets_.dim(0);
        const Tensor<float> code = space_.initial(g_, stats_, o_.init, n);
        Tensor<float> p({n, code_dim_ + noise_dim_});
        Rng rng(o_.seed ^ 0xA015EULL);
        for (Index b = 0; b < n; ++b) {
            std::copy(code.data() + b * code_dim_, code.data() + (b + 1) * code_dim_, p.data() + b * p.dim(1));
            for (Index k = code_dim_; k < p.dim(1); ++k) p[b * p.dim(1) + k] = static_cast<float>(rng.normal());
        }
        renormalize_noise(p);
        return p;
    }

    BatchObjective batch_objective() {
        return [this](const Tensor<float>& params, Tensor<float>* grads) { return evaluate(params, grads, 0.0, nullptr); };
    }

    /// Values per row; gradients into *grads when non-null. w_noise_scale > 0 adds exploration
    /// noise to W/W+ codes for this evaluation (the gradient is taken at the perturbed code, as
    /// the official projector does).
    std::vector<double> evaluate(const Tensor<float>& params, Tensor<float>* grads, double w_noise_scale, Rng* rng) {
        const Index rows = params.dim(0), n = targets_.dim(0), width = code_dim_ + noise_dim_;
        GANINV_CHECK(params.rank() == 2 && params.dim(1) == width && rows % n == 0, ShapeError,
                     "inverter objective: params must be [k*", n, ", ", width, "], got ", shape_to_string(params.shape()));
        const Index per_image = rows / n;
        if (grads && grads->shape() != params.shape()) *grads = Tensor<float>(params.shape());
        std::vector<double> values(static_cast<std::size_t>(rows));
        terms_.clear();
        for (Index r0 = 0; r0 < rows; r0 += o_.eval_batch) {
            const Index m = std::min(o_.eval_batch, rows - r0);
            Tensor<float> code({m, code_dim_}), target({m, targets_.dim(1), targets_.dim(2), targets_.dim(3)});
            const Index img_size = target.numel() / m;
            for (Index j = 0; j < m; ++j) {
                std::copy(params.data() + (r0 + j) * width, params.data() + (r0 + j) * width + code_dim_,
                          code.data() + j * code_dim_);
                const Index image = (r0 + j) / per_image;
                std::copy(targets_.data() + image * img_size, targets_.data() + (image + 1) * img_size,
                          target.data() + j * img_size);
            }
            if (w_noise_scale > 0 && Space::w_like && rng)
                for (float& v : code.values()) v += static_cast<float>(w_noise_scale * rng->normal());
            std::vector<Tensor<float>> maps = noise_maps(params, r0, m);
            std::vector<Buffer> maps_dev;
            for (const auto& t : maps) maps_dev.push_back(g_.backend().upload(t));
            NoiseInput<typename G::backend_type> noise{o_.fixed_noise, o_.seed, nullptr};
            if (o_.optimize_noise) noise = {NoiseMode::explicit_maps, 0, &maps_dev};

            const Buffer img = space_.forward(g_, code, noise, cache_);
            const Buffer target_dev = g_.backend().upload(target);
            Buffer grad_img;
            const LossResult lr = loss_.evaluate(img, target_dev, grads ? &grad_img : nullptr);
            ++evaluations_;
            for (Index j = 0; j < m; ++j) values[static_cast<std::size_t>(r0 + j)] = lr.per_image[static_cast<std::size_t>(j)];
            append_terms(lr.terms, r0, rows);
            if (grads) {
                const Tensor<float> gcode = space_.backward(g_, cache_, grad_img);
                for (Index j = 0; j < m; ++j)
                    std::copy(gcode.data() + j * code_dim_, gcode.data() + (j + 1) * code_dim_,
                              grads->data() + (r0 + j) * width);
                if (o_.optimize_noise)
                    for (std::size_t k = 0; k < maps.size(); ++k) {
                        const Tensor<float> gn = g_.backend().download(cache_.grads.noise[k]);
                        const Index rr = noise_res_[k] * noise_res_[k];
                        for (Index j = 0; j < m; ++j)
                            std::copy(gn.data() + j * rr, gn.data() + (j + 1) * rr,
                                      grads->data() + (r0 + j) * width + code_dim_ + noise_offsets_[k]);
                    }
            }
            if (o_.optimize_noise && o_.noise_regularization > 0) add_noise_regularization(maps_dev, r0, values, grads, rows);
        }
        add_priors(params, values, grads);
        add_code_regularizer(params, values, grads);
        return values;
    }

    /// Zero mean, unit variance per map and image (after every Adam step, as the projector does).
    void renormalize_noise(Tensor<float>& params) const {
        if (!o_.optimize_noise) return;
        const Index width = params.dim(1);
        for (Index b = 0; b < params.dim(0); ++b)
            for (std::size_t k = 0; k < noise_res_.size(); ++k) {
                float* m = params.data() + b * width + code_dim_ + noise_offsets_[k];
                const Index rr = noise_res_[k] * noise_res_[k];
                double mean = 0, sq = 0;
                for (Index i = 0; i < rr; ++i) mean += m[i];
                mean /= static_cast<double>(rr);
                for (Index i = 0; i < rr; ++i) sq += (m[i] - mean) * (m[i] - mean);
                const double inv = 1.0 / std::sqrt(sq / static_cast<double>(rr) + 1e-30);
                for (Index i = 0; i < rr; ++i) m[i] = static_cast<float>((m[i] - mean) * inv);
            }
    }

    /// Codes, reconstructions and metrics of the final parameters.
    void finish(const Tensor<float>& params, InversionResult& res) {
        const Index n = params.dim(0), width = params.dim(1);
        res.space = Space::name;
        res.params = params;
        Tensor<float> code({n, code_dim_});
        for (Index b = 0; b < n; ++b)
            std::copy(params.data() + b * width, params.data() + b * width + code_dim_, code.data() + b * code_dim_);
        res.ws = space_.to_ws(g_, code);
        if (std::string(Space::name) == "z") res.z = code;
        if (std::string(Space::name) == "s") res.styles = code;
        if (o_.optimize_noise) res.noise = noise_maps(params, 0, n);
        if (reports_mahalanobis()) res.w_mahalanobis = metrics::mean_mahalanobis_per_code(stats_.w_gaussian, res.ws);
        res.reconstruction = render(params, o_.optimize_noise);
        res.metrics = compare(res.reconstruction);
        if (o_.optimize_noise) {
            res.reconstruction_fixed_noise = render(params, false);
            res.metrics_fixed_noise = compare(res.reconstruction_fixed_noise);
        }
    }

private:
    std::vector<Tensor<float>> noise_maps(const Tensor<float>& params, Index r0, Index m) const {
        std::vector<Tensor<float>> maps;
        if (!o_.optimize_noise) return maps;
        const Index width = params.dim(1);
        for (std::size_t k = 0; k < noise_res_.size(); ++k) {
            const Index R = noise_res_[k];
            Tensor<float> t({m, R, R});
            for (Index j = 0; j < m; ++j) {
                const float* src = params.data() + (r0 + j) * width + code_dim_ + noise_offsets_[k];
                std::copy(src, src + R * R, t.data() + j * R * R);
            }
            maps.push_back(std::move(t));
        }
        return maps;
    }

    Tensor<float> render(const Tensor<float>& params, bool with_optimized_noise) {
        const Index n = params.dim(0), width = params.dim(1);
        Tensor<float> out({n, g_.img_channels(), g_.resolution(), g_.resolution()});
        const Index img_size = out.numel() / n;
        for (Index r0 = 0; r0 < n; r0 += o_.eval_batch) {
            const Index m = std::min(o_.eval_batch, n - r0);
            Tensor<float> code({m, code_dim_});
            for (Index j = 0; j < m; ++j)
                std::copy(params.data() + (r0 + j) * width, params.data() + (r0 + j) * width + code_dim_,
                          code.data() + j * code_dim_);
            std::vector<Buffer> maps_dev;
            for (const auto& t : noise_maps(params, r0, m)) maps_dev.push_back(g_.backend().upload(t));
            NoiseInput<typename G::backend_type> noise{o_.fixed_noise, o_.seed, nullptr};
            if (with_optimized_noise) noise = {NoiseMode::explicit_maps, 0, &maps_dev};
            const Tensor<float> img = g_.backend().download(space_.forward(g_, code, noise, cache_));
            std::copy(img.data(), img.data() + m * img_size, out.data() + r0 * img_size);
        }
        return out;
    }

    std::vector<metrics::Comparison> compare(const Tensor<float>& recon) const {
        return metrics::compare_reconstruction(recon, targets_);
    }

    void append_terms(const std::vector<LossTerm>& chunk_terms, Index r0, Index rows) {
        for (const auto& t : chunk_terms) {
            LossTerm* dst = nullptr;
            for (auto& e : terms_)
                if (e.name == t.name) dst = &e;
            if (!dst) {
                terms_.push_back({t.name, std::vector<double>(static_cast<std::size_t>(rows), 0.0)});
                dst = &terms_.back();
            }
            for (std::size_t j = 0; j < t.per_image.size(); ++j) dst->per_image[static_cast<std::size_t>(r0) + j] = t.per_image[j];
        }
    }

    /// The projector's noise regulariser on the maps as the generator saw them (on its backend).
    void add_noise_regularization(const std::vector<Buffer>& maps, Index r0, std::vector<double>& values,
                                  Tensor<float>* grads, Index rows) {
        std::vector<Buffer> reg_grads;
        const LossResult reg =
            NoiseRegularizer<typename G::backend_type>{}.evaluate(maps, grads ? &reg_grads : nullptr);
        const double w = o_.noise_regularization;
        const Index width = code_dim_ + noise_dim_, m = maps.empty() ? 0 : maps[0].dim(0);
        for (Index j = 0; j < m; ++j) values[static_cast<std::size_t>(r0 + j)] += w * reg.per_image[static_cast<std::size_t>(j)];
        append_terms({LossTerm{"noise_reg", [&] {
                                   std::vector<double> v(reg.per_image);
                                   for (double& x : v) x *= w;
                                   return v;
                               }()}},
                     r0, rows);
        if (!grads) return;
        for (std::size_t k = 0; k < maps.size(); ++k) {
            const Index rr = noise_res_[k] * noise_res_[k];
            const Tensor<float> gk = g_.backend().download(reg_grads[k]);
            for (Index j = 0; j < m; ++j) {
                float* dst = grads->data() + (r0 + j) * width + code_dim_ + noise_offsets_[k];
                for (Index i = 0; i < rr; ++i) dst[i] += static_cast<float>(w) * gk[j * rr + i];
            }
        }
    }

    /// The S space's ws are where its styles started, not a code of the result: no distance.
    bool reports_mahalanobis() const { return o_.w_mahalanobis && std::string(Space::name) != "s"; }

    /// The code regulariser on the ws of the unperturbed codes; a W row's gradient is the sum of
    /// its layers' (the row is every layer's w).
    void add_code_regularizer(const Tensor<float>& params, std::vector<double>& values, Tensor<float>* grads) {
        if constexpr (Space::w_like) {
            if (!o_.code_regularizer) return;
            const Index rows = params.dim(0), width = params.dim(1), D = g_.w_dim(), L = g_.num_ws();
            Tensor<float> code({rows, code_dim_});
            for (Index r = 0; r < rows; ++r)
                std::copy(params.data() + r * width, params.data() + r * width + code_dim_, code.data() + r * code_dim_);
            Tensor<float> gws;
            const std::vector<double> reg = o_.code_regularizer->evaluate(space_.to_ws(g_, code), grads ? &gws : nullptr);
            GANINV_CHECK(static_cast<Index>(reg.size()) == rows, ShapeError, "inverter: the code regulariser '",
                         o_.code_regularizer->name, "' gave ", reg.size(), " values for ", rows, " rows");
            for (Index r = 0; r < rows; ++r) values[static_cast<std::size_t>(r)] += reg[static_cast<std::size_t>(r)];
            append_terms({LossTerm{o_.code_regularizer->name, reg}}, 0, rows);
            if (!grads) return;
            expect_shape(gws, {rows, L, D}, "inverter: the code regulariser's gradient");
            for (Index r = 0; r < rows; ++r) {
                float* gc = grads->data() + r * width;
                const float* gr = gws.data() + r * L * D;
                if (code_dim_ == L * D) {
                    for (Index j = 0; j < code_dim_; ++j) gc[j] += gr[j];
                } else {
                    for (Index l = 0; l < L; ++l)
                        for (Index i = 0; i < D; ++i) gc[i] += gr[l * D + i];
                }
            }
        }
    }

    void add_priors(const Tensor<float>& params, std::vector<double>& values, Tensor<float>* grads) {
        if (!Space::w_like || (o_.w_avg_prior <= 0 && o_.wplus_spread_prior <= 0)) return;
        const Index rows = params.dim(0), width = params.dim(1), D = g_.w_dim(), L = code_dim_ / D;
        std::vector<double> prior(static_cast<std::size_t>(rows), 0.0);
        for (Index r = 0; r < rows; ++r) {
            const float* c = params.data() + r * width;
            float* gc = grads ? grads->data() + r * width : nullptr;
            double acc = 0;
            if (o_.w_avg_prior > 0)
                for (Index j = 0; j < code_dim_; ++j) {
                    const double d = c[j] - stats_.w_mean[j % D];
                    acc += o_.w_avg_prior * d * d / static_cast<double>(code_dim_);
                    if (gc) gc[j] += static_cast<float>(2.0 * o_.w_avg_prior * d / static_cast<double>(code_dim_));
                }
            if (o_.wplus_spread_prior > 0 && L > 1)
                for (Index i = 0; i < D; ++i) {
                    double mu = 0;
                    for (Index l = 0; l < L; ++l) mu += c[l * D + i];
                    mu /= static_cast<double>(L);
                    for (Index l = 0; l < L; ++l) {
                        const double d = c[l * D + i] - mu;
                        acc += o_.wplus_spread_prior * d * d / static_cast<double>(code_dim_);
                        if (gc) gc[l * D + i] += static_cast<float>(2.0 * o_.wplus_spread_prior * d / static_cast<double>(code_dim_));
                    }
                }
            prior[static_cast<std::size_t>(r)] = acc;
            values[static_cast<std::size_t>(r)] += acc;
        }
        append_terms({LossTerm{"prior", prior}}, 0, rows);
    }

    G& g_;
    LossT loss_;
    Space space_;
    InverterOptions o_;
    LatentStatistics stats_;
    Tensor<float> targets_;
    typename Space::template Cache<G> cache_;
    Index code_dim_ = 0, noise_dim_ = 0, evaluations_ = 0;
    std::vector<Index> noise_res_, noise_offsets_;
    std::vector<LossTerm> terms_;
};

}  // namespace ganinv
