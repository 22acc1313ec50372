/// @file cma_core.hpp
/// @brief `CmaCore`: the host half of a batched CMA-ES — strategy constants, each row's sigma,
///        generation counters, best value and stop state, the ranking of a generation's values
///        and the stop tests — shared by the host CmaEs (optim/cmaes.hpp) and the device-resident
///        loop (invert/device_cma.hpp), which differ only in where the vectors live and run
///        (nn/cma_ops.hpp). One copy of every decision keeps the two on the same trajectory.
///
/// A generation: sample_command() (what each row samples), evaluation, rank() (the update
/// command from the values), the update passes, the eigendecomposition of the rows
/// decompose() names (full variant; cma_eigen() on C, on the host), the stats passes, then
/// finish() (sigma and the stop tests from the out block's per-row scalars).
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/rng.hpp"
#include "ganinv/nn/cma_ops.hpp"

#include <Eigen/Dense>
#include "ganinv/core/eigen.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <limits>
#include <numeric>
#include <vector>

namespace ganinv {

enum class CmaMode { Auto, Full, Separable };

/// Why a row stopped (None while it is still running).
enum class CmaStop { None, SigmaTolerance, FlatFitness, ConditionNumber };

struct CmaEsOptions {
    Index population = 0;          ///< lambda; 0 = 4 + floor(3 ln n)
    double sigma = 0.5;            ///< initial step size used by reset(mean)
    CmaMode mode = CmaMode::Auto;
    Index separable_above = 200;   ///< Auto uses sep-CMA when n > this
    std::uint64_t seed = 0;
    double x_tolerance = 1e-12;    ///< stop when sigma * max_i sqrt(C_ii) < x_tolerance
    double value_tolerance = 1e-12;  ///< stop when recent best values and this generation span < this
    double max_condition = 1e14;   ///< stop when cond(C) exceeds this
};

/// B and diag = sqrt(eigenvalues) of the symmetric n x n matrix C (row-major, symmetrised by
/// the caller), B row-major with the eigenvectors as columns.
inline void cma_eigen(const double* C, Index n, double* B, double* diag) {
    const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> c(C, n, n);
    const Eigen::MatrixXd m = c;
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(m);
    const Eigen::MatrixXd& vec = eig.eigenvectors();
    for (Index a = 0; a < n; ++a)
        for (Index b = 0; b < n; ++b) B[a * n + b] = vec(a, b);
    for (Index b = 0; b < n; ++b) diag[b] = std::sqrt(std::max(eig.eigenvalues()[b], 1e-300));
}

class CmaCore {
public:
    explicit CmaCore(CmaEsOptions options = {}) : options_(options) {
        GANINV_CHECK(options.population == 0 || options.population >= 2, ValueError,
                     "CmaEs: population must be 0 (default) or >= 2, got ", options.population);
        GANINV_CHECK(options.sigma > 0.0 && std::isfinite(options.sigma), ValueError,
                     "CmaEs: sigma must be positive, got ", options.sigma);
    }

    /// Starts `rows` problems of dimension n at step size sigma.
    void reset(Index rows, Index n, double sigma) {
        GANINV_CHECK(sigma > 0.0 && std::isfinite(sigma), ValueError, "CmaEs::reset: sigma must be positive, got ",
                     sigma);
        rows_ = rows;
        n_ = n;
        set_strategy_parameters();
        state_.assign(static_cast<std::size_t>(rows), Row{});
        seeds_.resize(static_cast<std::size_t>(rows));
        for (Index r = 0; r < rows; ++r) {
            state_[idx(r)].sigma = sigma;
            // One key per row, derived from (seed, row): row r draws the same numbers whatever N is.
            seeds_[idx(r)] = splitmix64(options_.seed ^ splitmix64(static_cast<std::uint64_t>(r) + 1));
        }
        cmd_.assign(static_cast<std::size_t>((nn::kCmaCmdOrder + mu_) * rows), 0.0);
        f_.assign(static_cast<std::size_t>(rows * lambda_), 0.0);
    }

    /// The command block before sampling: running rows sample, stopped rows repeat their best.
    const std::vector<double>& sample_command() {
        for (Index r = 0; r < rows_; ++r) {
            const Row& row = state_[idx(r)];
            set(nn::kCmaCmdFlags, r, row.stop == CmaStop::None ? nn::kCmaSample : nn::kCmaFrozen);
            set(nn::kCmaCmdSigma, r, row.sigma);
            set(nn::kCmaCmdGeneration, r, static_cast<double>(row.generation));
        }
        return cmd_;
    }

    /// Ranks each running row's lambda values (NaN and inf count as +inf): the command block of
    /// the update. A row whose values are all non-finite does not move and halves sigma.
    const std::vector<double>& rank(const double* values) {
        std::vector<Index> order(static_cast<std::size_t>(lambda_));
        for (Index r = 0; r < rows_; ++r) {
            Row& row = state_[idx(r)];
            unsigned flags = 0;
            if (row.stop == CmaStop::None) {
                double* f = f_.data() + r * lambda_;
                for (Index k = 0; k < lambda_; ++k) {
                    const double v = values[r * lambda_ + k];
                    f[k] = std::isfinite(v) ? v : std::numeric_limits<double>::infinity();
                }
                std::iota(order.begin(), order.end(), Index{0});
                std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) { return f[a] < f[b]; });
                const double gen_best = f[order.front()];
                if (gen_best < row.best_f) {
                    row.best_f = gen_best;
                    flags |= nn::kCmaImprove;
                    set(nn::kCmaCmdBest, r, static_cast<double>(order.front()));
                }
                ++row.generation;
                if (std::isfinite(gen_best)) {
                    flags |= nn::kCmaUpdate;
                    for (Index i = 0; i < mu_; ++i) set(nn::kCmaCmdOrder + static_cast<int>(i), r, static_cast<double>(order[idx(i)]));
                    // Lazy eigendecomposition: C changes by O(c_1 + c_mu) per generation, so refreshing
                    // B, D every lambda / (10 n (c_1 + c_mu)) generations keeps the cost at O(n^2) per sample.
                    const double gap = static_cast<double>(lambda_) / ((c_.c_1 + c_.c_mu) * static_cast<double>(n_) * 10.0);
                    if (!separable_ && static_cast<double>(row.generation - row.eigen_generation) > gap)
                        flags |= nn::kCmaSymmetrize;
                } else {
                    row.sigma *= 0.5;  // nothing finite to rank: look closer to the mean next time
                }
            }
            set(nn::kCmaCmdFlags, r, flags);
            set(nn::kCmaCmdSigma, r, row.sigma);
            set(nn::kCmaCmdGeneration, r, static_cast<double>(row.generation));
        }
        return cmd_;
    }

    /// Whether row r's C is to be decomposed now (rank() flagged it: symmetrised by the update).
    bool decompose(Index r) const { return (flags(r) & nn::kCmaSymmetrize) != 0u; }
    /// Whether row r was updated (its out fields are to be read).
    bool updated(Index r) const { return (flags(r) & nn::kCmaUpdate) != 0u; }
    /// Whether the last ranking found a new best sample for row r, and which (0 .. lambda - 1).
    bool improved(Index r) const { return (flags(r) & nn::kCmaImprove) != 0u; }
    Index best_sample(Index r) const { return static_cast<Index>(cmd_[idx(nn::kCmaCmdBest * rows_ + r)]); }

    /// After the update and stats passes: sigma (CSA) and the stop tests of the updated rows from
    /// the out block ([kCmaOutFields, rows]).
    void finish(const double* out) {
        for (Index r = 0; r < rows_; ++r) {
            if (!updated(r)) continue;
            Row& row = state_[idx(r)];
            if (decompose(r)) row.eigen_generation = row.generation;
            const double ps_norm = out[nn::kCmaOutPsNorm * rows_ + r];
            row.sigma *= std::exp(c_.c_sigma / d_sigma_ * (ps_norm / chi_n_ - 1.0));
            check_stop(row, out[nn::kCmaOutMaxSd * rows_ + r],
                       out[nn::kCmaOutDiagMax * rows_ + r] * out[nn::kCmaOutDiagInvMax * rows_ + r], f_.data() + r * lambda_);
        }
    }

    const nn::CmaConstants& constants() const { return c_; }
    const std::vector<double>& weights() const { return weights_; }
    const std::vector<std::uint64_t>& seeds() const { return seeds_; }
    const CmaEsOptions& options() const { return options_; }
    double best_value(Index r) const { return at(r).best_f; }
    double sigma(Index r) const { return at(r).sigma; }
    CmaStop stop(Index r) const { return at(r).stop; }
    Index generation(Index r) const { return at(r).generation; }
    bool all_stopped() const {
        return std::all_of(state_.begin(), state_.end(), [](const Row& r) { return r.stop != CmaStop::None; });
    }
    Index rows() const { return rows_; }
    Index dimension() const { return n_; }
    Index lambda() const { return lambda_; }
    Index mu() const { return mu_; }
    bool separable() const { return separable_; }
    double mu_eff() const { return mu_eff_; }

private:
    struct Row {
        double sigma = 1.0;
        Index generation = 0, eigen_generation = 0;
        double best_f = std::numeric_limits<double>::infinity();
        std::deque<double> recent_best;
        CmaStop stop = CmaStop::None;
    };
    static std::size_t idx(Index i) { return static_cast<std::size_t>(i); }
    const Row& at(Index r) const {
        GANINV_CHECK(r >= 0 && r < rows_, ShapeError, "CmaEs: row ", r, " out of range (", rows_, " rows)");
        return state_[idx(r)];
    }
    void set(int field, Index r, double v) { cmd_[idx(field * rows_ + r)] = v; }
    unsigned flags(Index r) const { return static_cast<unsigned>(cmd_[idx(nn::kCmaCmdFlags * rows_ + r)]); }

    // Hansen's tutorial, Table 1 (positive weights only); sep-CMA rescales c_1, c_mu.
    void set_strategy_parameters() {
        const double n = static_cast<double>(n_);
        separable_ = options_.mode == CmaMode::Separable || (options_.mode == CmaMode::Auto && n_ > options_.separable_above);
        lambda_ = options_.population > 0 ? options_.population : 4 + static_cast<Index>(std::floor(3.0 * std::log(n)));
        mu_ = lambda_ / 2;
        weights_.resize(idx(mu_));
        double sum = 0.0;
        for (Index i = 0; i < mu_; ++i) {
            weights_[idx(i)] = std::log((static_cast<double>(lambda_) + 1.0) / 2.0) - std::log(static_cast<double>(i + 1));
            sum += weights_[idx(i)];
        }
        double sq = 0.0;
        for (double& w : weights_) {
            w /= sum;
            sq += w * w;
        }
        mu_eff_ = 1.0 / sq;
        nn::CmaConstants& c = c_;
        c.n = n_, c.lambda = lambda_, c.mu = mu_, c.separable = separable_;
        c.c_sigma = (mu_eff_ + 2.0) / (n + mu_eff_ + 5.0);
        d_sigma_ = 1.0 + 2.0 * std::max(0.0, std::sqrt((mu_eff_ - 1.0) / (n + 1.0)) - 1.0) + c.c_sigma;
        c.c_c = (4.0 + mu_eff_ / n) / (n + 4.0 + 2.0 * mu_eff_ / n);
        c.c_1 = 2.0 / ((n + 1.3) * (n + 1.3) + mu_eff_);
        c.c_mu = std::min(1.0 - c.c_1, 2.0 * (mu_eff_ - 2.0 + 1.0 / mu_eff_) / ((n + 2.0) * (n + 2.0) + mu_eff_));
        if (separable_) {
            // Ros & Hansen 2008: a diagonal model has n, not n^2 / 2, parameters to learn.
            const double scale = (n + 2.0) / 3.0;
            c.c_1 *= scale;
            c.c_mu *= scale;
            if (c.c_1 + c.c_mu > 1.0) {  // only for tiny n; keep the old covariance weight >= 0
                const double shrink = 1.0 / (c.c_1 + c.c_mu);
                c.c_1 *= shrink;
                c.c_mu *= shrink;
            }
        }
        c.ps_coef = std::sqrt(c.c_sigma * (2.0 - c.c_sigma) * mu_eff_);
        c.pc_coef = std::sqrt(c.c_c * (2.0 - c.c_c) * mu_eff_);
        chi_n_ = std::sqrt(n) * (1.0 - 1.0 / (4.0 * n) + 1.0 / (21.0 * n * n));
        c.h_threshold = (1.4 + 2.0 / (n + 1.0)) * chi_n_;
        flat_window_ = 10 + static_cast<Index>(std::ceil(30.0 * n / static_cast<double>(lambda_)));
    }

    void check_stop(Row& row, double max_sd, double cond, const double* f) const {
        if (row.sigma * max_sd < options_.x_tolerance) {
            row.stop = CmaStop::SigmaTolerance;
            return;
        }
        if (cond * cond > options_.max_condition) {
            row.stop = CmaStop::ConditionNumber;
            return;
        }
        const auto [flo, fhi] = std::minmax_element(f, f + lambda_);
        row.recent_best.push_back(*flo);
        if (static_cast<Index>(row.recent_best.size()) > flat_window_) row.recent_best.pop_front();
        if (static_cast<Index>(row.recent_best.size()) == flat_window_) {
            const auto [lo, hi] = std::minmax_element(row.recent_best.begin(), row.recent_best.end());
            if (*hi - *lo < options_.value_tolerance && *fhi - *flo < options_.value_tolerance)
                row.stop = CmaStop::FlatFitness;
        }
    }

    CmaEsOptions options_;
    Index rows_ = 0, n_ = 0, lambda_ = 0, mu_ = 0, flat_window_ = 0;
    bool separable_ = false;
    std::vector<double> weights_;
    double mu_eff_ = 0, d_sigma_ = 0, chi_n_ = 0;
    nn::CmaConstants c_;
    std::vector<Row> state_;
    std::vector<std::uint64_t> seeds_;
    std::vector<double> cmd_, f_;  ///< the command block; each row's last values (+inf for non-finite)
};

}  // namespace ganinv
