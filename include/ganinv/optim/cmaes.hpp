/// @file cmaes.hpp
/// @brief CMA-ES, batched: N independent problems (one per row of a [N, dim] mean), each with its
///        own distribution, random stream and stopping state. `ask()` returns all N * lambda
///        samples as one tensor so a generator evaluates the whole population in one batch.
///
/// Full variant: the (mu/mu_w, lambda)-CMA-ES of N. Hansen, "The CMA Evolution Strategy: A
/// Tutorial" (arXiv:1604.00772), Table 1 defaults with positive recombination weights and
/// Fig. 6 / Sec. 4 updates (cumulation paths, h_sigma stall, rank-one + rank-mu update, CSA
/// step-size control with E||N(0,I)||), eigendecomposition refreshed lazily (Sec. B.2).
/// Separable variant: sep-CMA-ES of R. Ros & N. Hansen, "A Simple Modification in CMA-ES
/// Achieving Linear Time and Space Complexity" (PPSN 2008): diagonal C, c_1 and c_mu multiplied
/// by (n + 2) / 3. Auto mode picks it above `separable_above` dimensions, which keeps W+ (18 x 512)
/// and S space at O(lambda n) per generation instead of O(n^3) and 0.7 GB per covariance.
#pragma once

#include "ganinv/concepts/optimizer.hpp"
#include "ganinv/core/error.hpp"
#include "ganinv/core/rng.hpp"
#include "ganinv/core/tensor.hpp"

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

class CmaEs {
public:
    explicit CmaEs(CmaEsOptions options = {}) : options_(options) {
        GANINV_CHECK(options.population == 0 || options.population >= 2, ValueError,
                     "CmaEs: population must be 0 (default) or >= 2, got ", options.population);
        GANINV_CHECK(options.sigma > 0.0 && std::isfinite(options.sigma), ValueError,
                     "CmaEs: sigma must be positive, got ", options.sigma);
    }

    /// Starts N problems at the rows of `mean` [N, dim] with the options' sigma.
    void reset(const Tensor<float>& mean) { reset(mean, options_.sigma); }

    void reset(const Tensor<float>& mean, double sigma) {
        GANINV_CHECK(mean.rank() == 2 && mean.dim(0) > 0 && mean.dim(1) > 0, ShapeError,
                     "CmaEs::reset: mean must be [N, dim] with N, dim > 0, got ", shape_to_string(mean.shape()));
        GANINV_CHECK(sigma > 0.0 && std::isfinite(sigma), ValueError, "CmaEs::reset: sigma must be positive, got ",
                     sigma);
        expect_finite(mean.values(), "CmaEs::reset: mean");
        rows_ = mean.dim(0);
        n_ = mean.dim(1);
        separable_ = options_.mode == CmaMode::Separable ||
                     (options_.mode == CmaMode::Auto && n_ > options_.separable_above);
        set_strategy_parameters();
        state_.clear();
        state_.reserve(static_cast<std::size_t>(rows_));
        for (Index r = 0; r < rows_; ++r) {
            Row row;
            row.mean = Eigen::Map<const Eigen::VectorXf>(mean.data() + r * n_, n_).cast<double>();
            row.sigma = sigma;
            row.ps = row.pc = Eigen::VectorXd::Zero(n_);
            row.diag = Eigen::VectorXd::Ones(n_);  // sqrt of eigenvalues (full) or of diag(C) (sep)
            if (!separable_) {
                row.C = row.B = Eigen::MatrixXd::Identity(n_, n_);
            }
            row.best_x.assign(mean.data() + r * n_, mean.data() + (r + 1) * n_);
            // One stream per row, derived from (seed, row): row r draws the same numbers whatever N is.
            row.rng.reseed(splitmix64(options_.seed ^ splitmix64(static_cast<std::uint64_t>(r) + 1)));
            state_.push_back(std::move(row));
        }
        asked_ = false;
    }

    /// Samples x = m + sigma B D z for every row: [N * lambda, dim], row r * lambda + k is the k-th
    /// sample of problem r. A stopped row gets its best point repeated (so shapes stay fixed).
    Tensor<float> ask() {
        GANINV_CHECK(!state_.empty(), ValueError, "CmaEs::ask: call reset(mean) first");
        population_ = Tensor<float>({rows_ * lambda_, n_});
        for (Index r = 0; r < rows_; ++r) {
            Row& row = state_[static_cast<std::size_t>(r)];
            float* out = population_.data() + r * lambda_ * n_;
            if (row.stop != CmaStop::None) {
                for (Index k = 0; k < lambda_; ++k) std::copy(row.best_x.begin(), row.best_x.end(), out + k * n_);
                continue;
            }
            Eigen::MatrixXd z(n_, lambda_);
            for (Index k = 0; k < lambda_; ++k)
                for (Index j = 0; j < n_; ++j) z(j, k) = row.rng.normal();
            if (separable_) {
                row.Y = row.diag.asDiagonal() * z;
            } else {
                row.Y = row.B * (row.diag.asDiagonal() * z);
            }
            for (Index k = 0; k < lambda_; ++k)
                for (Index j = 0; j < n_; ++j)
                    out[k * n_ + j] = static_cast<float>(row.mean[j] + row.sigma * row.Y(j, k));
        }
        asked_ = true;
        return population_;
    }

    /// Values of the last ask()'s samples, N * lambda in the same order. NaN and inf count as +inf
    /// (worst), so a sample where the generator or loss blew up is simply never selected.
    void tell(const std::vector<double>& values) {
        GANINV_CHECK(asked_, ValueError, "CmaEs::tell: call ask() before tell()");
        GANINV_CHECK(static_cast<Index>(values.size()) == rows_ * lambda_, ShapeError, "CmaEs::tell: values has ",
                     values.size(), " entries, expected N * lambda = ", rows_, " * ", lambda_, " = ", rows_ * lambda_);
        asked_ = false;
        for (Index r = 0; r < rows_; ++r) {
            Row& row = state_[static_cast<std::size_t>(r)];
            if (row.stop != CmaStop::None) continue;
            std::vector<double> f(values.begin() + r * lambda_, values.begin() + (r + 1) * lambda_);
            for (double& v : f)
                if (!std::isfinite(v)) v = std::numeric_limits<double>::infinity();
            update_row(row, f, population_.data() + r * lambda_ * n_);
        }
    }

    /// Best sample seen per row [N, dim] (the starting mean until something was told).
    Tensor<float> best() const {
        Tensor<float> out({rows_, n_});
        for (Index r = 0; r < rows_; ++r)
            std::copy(state_[r].best_x.begin(), state_[r].best_x.end(), out.data() + r * n_);
        return out;
    }
    std::vector<double> best_values() const {
        std::vector<double> v;
        for (const Row& row : state_) v.push_back(row.best_f);
        return v;
    }
    /// Current distribution means [N, dim].
    Tensor<float> mean() const {
        Tensor<float> out({rows_, n_});
        for (Index r = 0; r < rows_; ++r)
            for (Index j = 0; j < n_; ++j) out[r * n_ + j] = static_cast<float>(state_[r].mean[j]);
        return out;
    }

    double sigma(Index row) const { return at(row).sigma; }
    CmaStop stop(Index row) const { return at(row).stop; }
    bool stopped(Index row) const { return at(row).stop != CmaStop::None; }
    bool all_stopped() const {
        return std::all_of(state_.begin(), state_.end(), [](const Row& r) { return r.stop != CmaStop::None; });
    }
    Index generation(Index row) const { return at(row).generation; }
    Index population_size() const { return lambda_; }
    Index parents() const { return mu_; }
    Index rows() const { return rows_; }
    Index dimension() const { return n_; }
    bool separable() const { return separable_; }
    double mu_eff() const { return mu_eff_; }
    const CmaEsOptions& options() const { return options_; }

private:
    struct Row {
        Eigen::VectorXd mean, ps, pc, diag;
        Eigen::MatrixXd C, B, Y;  // C, B unused (empty) in the separable variant
        double sigma = 1.0;
        Index generation = 0, eigen_generation = 0;
        std::vector<float> best_x;
        double best_f = std::numeric_limits<double>::infinity();
        std::deque<double> recent_best;
        CmaStop stop = CmaStop::None;
        Rng rng;
    };

    const Row& at(Index row) const {
        GANINV_CHECK(row >= 0 && row < rows_, ShapeError, "CmaEs: row ", row, " out of range (", rows_, " rows)");
        return state_[static_cast<std::size_t>(row)];
    }

    // Hansen's tutorial, Table 1 (positive weights only); sep-CMA rescales c_1, c_mu.
    void set_strategy_parameters() {
        const double n = static_cast<double>(n_);
        lambda_ = options_.population > 0 ? options_.population
                                          : 4 + static_cast<Index>(std::floor(3.0 * std::log(n)));
        mu_ = lambda_ / 2;
        weights_.resize(mu_);
        for (Index i = 0; i < mu_; ++i)
            weights_[i] = std::log((static_cast<double>(lambda_) + 1.0) / 2.0) - std::log(static_cast<double>(i + 1));
        weights_ /= weights_.sum();
        mu_eff_ = 1.0 / weights_.squaredNorm();
        c_sigma_ = (mu_eff_ + 2.0) / (n + mu_eff_ + 5.0);
        d_sigma_ = 1.0 + 2.0 * std::max(0.0, std::sqrt((mu_eff_ - 1.0) / (n + 1.0)) - 1.0) + c_sigma_;
        c_c_ = (4.0 + mu_eff_ / n) / (n + 4.0 + 2.0 * mu_eff_ / n);
        c_1_ = 2.0 / ((n + 1.3) * (n + 1.3) + mu_eff_);
        c_mu_ = std::min(1.0 - c_1_, 2.0 * (mu_eff_ - 2.0 + 1.0 / mu_eff_) / ((n + 2.0) * (n + 2.0) + mu_eff_));
        if (separable_) {
            // Ros & Hansen 2008: a diagonal model has n, not n^2 / 2, parameters to learn.
            const double scale = (n + 2.0) / 3.0;
            c_1_ *= scale;
            c_mu_ *= scale;
            if (c_1_ + c_mu_ > 1.0) {  // only for tiny n; keep the old covariance weight >= 0
                const double shrink = 1.0 / (c_1_ + c_mu_);
                c_1_ *= shrink;
                c_mu_ *= shrink;
            }
        }
        chi_n_ = std::sqrt(n) * (1.0 - 1.0 / (4.0 * n) + 1.0 / (21.0 * n * n));
        flat_window_ = 10 + static_cast<Index>(std::ceil(30.0 * n / static_cast<double>(lambda_)));
    }

    void update_row(Row& row, const std::vector<double>& f, const float* samples) {
        std::vector<Index> order(static_cast<std::size_t>(lambda_));
        std::iota(order.begin(), order.end(), Index{0});
        std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) { return f[a] < f[b]; });
        const double gen_best = f[order.front()];
        if (gen_best < row.best_f) {
            row.best_f = gen_best;
            row.best_x.assign(samples + order.front() * n_, samples + (order.front() + 1) * n_);
        }
        ++row.generation;
        if (!std::isfinite(gen_best)) {
            // Nothing finite to rank: do not move, look closer to the mean next time.
            row.sigma *= 0.5;
            return;
        }

        Eigen::VectorXd y_w = Eigen::VectorXd::Zero(n_);
        for (Index i = 0; i < mu_; ++i) y_w += weights_[i] * row.Y.col(order[i]);
        row.mean += row.sigma * y_w;

        // C^{-1/2} y_w, the step in the coordinates where the distribution is isotropic.
        Eigen::VectorXd white;
        if (separable_) {
            white = y_w.cwiseQuotient(row.diag);
        } else {
            white = row.B * (row.B.transpose() * y_w).cwiseQuotient(row.diag);
        }
        row.ps = (1.0 - c_sigma_) * row.ps + std::sqrt(c_sigma_ * (2.0 - c_sigma_) * mu_eff_) * white;
        const double ps_norm = row.ps.norm();
        const double decay = 1.0 - std::pow(1.0 - c_sigma_, 2.0 * static_cast<double>(row.generation));
        // h_sigma stalls the p_c update while ||p_sigma|| is large, i.e. while sigma is still growing.
        const bool h_sigma = ps_norm / std::sqrt(decay) < (1.4 + 2.0 / (static_cast<double>(n_) + 1.0)) * chi_n_;
        row.pc = (1.0 - c_c_) * row.pc;
        if (h_sigma) row.pc += std::sqrt(c_c_ * (2.0 - c_c_) * mu_eff_) * y_w;
        const double delta = h_sigma ? 0.0 : c_c_ * (2.0 - c_c_);
        const double keep = 1.0 - c_1_ - c_mu_ + c_1_ * delta;

        if (separable_) {
            Eigen::VectorXd c = row.diag.cwiseAbs2();
            Eigen::VectorXd rank_mu = Eigen::VectorXd::Zero(n_);
            for (Index i = 0; i < mu_; ++i) rank_mu += weights_[i] * row.Y.col(order[i]).cwiseAbs2();
            c = keep * c + c_1_ * row.pc.cwiseAbs2() + c_mu_ * rank_mu;
            row.diag = c.cwiseMax(1e-300).cwiseSqrt();
        } else {
            Eigen::MatrixXd sel(n_, mu_);
            for (Index i = 0; i < mu_; ++i) sel.col(i) = std::sqrt(weights_[i]) * row.Y.col(order[i]);
            row.C *= keep;
            row.C.noalias() += c_1_ * row.pc * row.pc.transpose();
            row.C.noalias() += c_mu_ * sel * sel.transpose();
            // Lazy eigendecomposition: C changes by O(c_1 + c_mu) per generation, so refreshing B, D
            // every lambda / (10 n (c_1 + c_mu)) generations keeps the cost at O(n^2) per sample.
            const double gap = static_cast<double>(lambda_) / ((c_1_ + c_mu_) * static_cast<double>(n_) * 10.0);
            if (static_cast<double>(row.generation - row.eigen_generation) > gap) decompose(row);
        }

        row.sigma *= std::exp(c_sigma_ / d_sigma_ * (ps_norm / chi_n_ - 1.0));
        check_stop(row, f);
    }

    void decompose(Row& row) const {
        row.eigen_generation = row.generation;
        row.C = 0.5 * (row.C + row.C.transpose()).eval();  // round-off makes C drift from symmetric
        Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(row.C);
        row.B = eig.eigenvectors();
        row.diag = eig.eigenvalues().cwiseMax(1e-300).cwiseSqrt();
    }

    void check_stop(Row& row, const std::vector<double>& f) const {
        const double max_sd = separable_ ? row.diag.maxCoeff() : row.C.diagonal().cwiseMax(0.0).cwiseSqrt().maxCoeff();
        if (row.sigma * max_sd < options_.x_tolerance) {
            row.stop = CmaStop::SigmaTolerance;
            return;
        }
        const double cond = row.diag.maxCoeff() / row.diag.minCoeff();
        if (cond * cond > options_.max_condition) {
            row.stop = CmaStop::ConditionNumber;
            return;
        }
        row.recent_best.push_back(*std::min_element(f.begin(), f.end()));
        if (static_cast<Index>(row.recent_best.size()) > flat_window_) row.recent_best.pop_front();
        if (static_cast<Index>(row.recent_best.size()) == flat_window_) {
            const auto [lo, hi] = std::minmax_element(row.recent_best.begin(), row.recent_best.end());
            const auto [flo, fhi] = std::minmax_element(f.begin(), f.end());
            if (*hi - *lo < options_.value_tolerance && *fhi - *flo < options_.value_tolerance)
                row.stop = CmaStop::FlatFitness;
        }
    }

    CmaEsOptions options_;
    Index rows_ = 0, n_ = 0, lambda_ = 0, mu_ = 0, flat_window_ = 0;
    bool separable_ = false;
    Eigen::VectorXd weights_;
    double mu_eff_ = 0, c_sigma_ = 0, d_sigma_ = 0, c_c_ = 0, c_1_ = 0, c_mu_ = 0, chi_n_ = 0;
    std::vector<Row> state_;
    Tensor<float> population_;
    bool asked_ = false;
};

static_assert(AskTellOptimizer<CmaEs>);

}  // namespace ganinv
