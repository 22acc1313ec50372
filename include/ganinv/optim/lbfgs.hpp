/// @file lbfgs.hpp
/// @brief L-BFGS with a strong-Wolfe line search, separate state per row of a [N, dim] parameter
///        batch, and every line-search trial of all rows evaluated in one batched objective call.
///
/// Direction: the two-loop recursion (Nocedal & Wright, Algorithm 7.4) with H0 = (s'y / y'y) I
/// (Eq. 7.20). Step: StrongWolfeSearch (line_search.hpp). Per row, per step:
///   - gradient max-norm <= gradient_tolerance          -> the row is Converged and freezes;
///   - direction not a descent direction (or not finite) -> history cleared, steepest descent;
///   - a trial value/gradient is NaN or inf              -> rejected, the bracket shrinks towards
///                                                          the last good step;
///   - no decrease found along steepest descent          -> the row is Stalled and freezes (with
///                                                          float parameters this is how a row ends
///                                                          once it sits at float resolution).
/// Rows that have finished their search (or are frozen) stay at their point in the batched
/// trial tensor while the others continue: the objective always sees the full [N, dim] tensor.
#pragma once

#include "ganinv/concepts/optimizer.hpp"
#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/nn/lbfgs_ops.hpp"
#include "ganinv/optim/line_search.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace ganinv {

struct LbfgsOptions {
    Index history_size = 10;              ///< (s, y) pairs kept per row
    Index max_evaluations_per_step = 20;  ///< line-search trials per step
    double c1 = 1e-4;
    double c2 = 0.9;
    double gradient_tolerance = 1e-7;     ///< max |g_i| at or below this: the row has converged
    double value_tolerance = 0.0;         ///< |f_old - f_new| <= tol * max(1, |f|): converged; 0 = off
};

enum class LbfgsRowStatus { Running, Converged, Stalled };

/// The first trial step of a search from slope `slope` (< 0) with `pairs` stored pairs: without
/// curvature information a step of unit length (capped at 1 in alpha), else the quasi-Newton 1.
inline double lbfgs_first_step(Index pairs, double slope) {
    return pairs == 0 ? std::min(1.0, 1.0 / std::sqrt(-slope)) : 1.0;
}

class Lbfgs {
public:
    explicit Lbfgs(LbfgsOptions options = {}) : options_(options) {
        GANINV_CHECK(options.history_size >= 1, ValueError, "Lbfgs: history_size must be >= 1, got ",
                     options.history_size);
        GANINV_CHECK(options.max_evaluations_per_step >= 1, ValueError,
                     "Lbfgs: max_evaluations_per_step must be >= 1, got ", options.max_evaluations_per_step);
        GANINV_CHECK(0.0 < options.c1 && options.c1 < options.c2 && options.c2 < 1.0, ValueError,
                     "Lbfgs: need 0 < c1 < c2 < 1, got c1 = ", options.c1, ", c2 = ", options.c2);
    }

    /// Clears the state for `rows` problems of `dim` parameters each.
    void reset(Index rows, Index dim) {
        GANINV_CHECK(rows >= 0 && dim >= 0, ShapeError, "Lbfgs::reset: rows and dim must be >= 0, got ", rows, " and ",
                     dim);
        rows_ = rows;
        dim_ = dim;
        initialised_ = true;
        evaluations_ = 0;
        state_.assign(static_cast<std::size_t>(rows), Row{});
        grads_ = Tensor<float>({rows, dim});
    }

    /// One L-BFGS iteration for every running row. Returns the objective value per row at the
    /// new params (frozen rows report their last value).
    std::vector<double> step(Tensor<float>& params, const BatchObjective& f) {
        GANINV_CHECK(params.rank() == 2, ShapeError, "Lbfgs::step: params must be [N, dim], got ",
                     shape_to_string(params.shape()));
        GANINV_CHECK(static_cast<bool>(f), ValueError, "Lbfgs::step: empty objective");
        if (!initialised_) reset(params.dim(0), params.dim(1));
        expect_shape(params, {rows_, dim_}, "Lbfgs::step: params");

        refresh_start(params, f);

        // Directions and first trials; rows not searching keep their point in `trial`.
        Tensor<float> trial = params;
        std::vector<StrongWolfeSearch> search(static_cast<std::size_t>(rows_));
        std::vector<std::vector<double>> dir(static_cast<std::size_t>(rows_));
        std::vector<std::vector<double>> g_best(static_cast<std::size_t>(rows_));
        std::vector<char> searching(static_cast<std::size_t>(rows_), 0);
        const WolfeOptions wolfe{options_.c1, options_.c2, options_.max_evaluations_per_step, 1e10};
        for (Index r = 0; r < rows_; ++r) {
            Row& row = state_[static_cast<std::size_t>(r)];
            if (row.status != LbfgsRowStatus::Running) continue;
            if (max_abs(row.g) <= options_.gradient_tolerance) {
                row.status = LbfgsRowStatus::Converged;
                continue;
            }
            std::vector<double>& d = dir[static_cast<std::size_t>(r)];
            direction(row, d);
            double slope = dot(row.g, d);
            if (!(slope < 0.0) || !std::isfinite(slope)) {
                row.clear_history();
                for (Index j = 0; j < dim_; ++j) d[j] = -row.g[j];
                slope = -dot(row.g, row.g);
            }
            search[static_cast<std::size_t>(r)].start(row.f, slope, lbfgs_first_step(row.count, slope), wolfe);
            searching[static_cast<std::size_t>(r)] = 1;
        }

        // Batched line search: one objective call per round serves every row still searching.
        for (;;) {
            bool any = false;
            for (Index r = 0; r < rows_; ++r) {
                if (!searching[static_cast<std::size_t>(r)]) continue;
                StrongWolfeSearch& s = search[static_cast<std::size_t>(r)];
                if (!write_point(trial, r, dir[static_cast<std::size_t>(r)], s.trial())) {
                    s.finish();  // the step no longer moves any float coordinate
                    write_point(trial, r, dir[static_cast<std::size_t>(r)], s.best().alpha);
                    searching[static_cast<std::size_t>(r)] = 0;
                    continue;
                }
                any = true;
            }
            if (!any) break;
            const std::vector<double> values = evaluate(trial, f, &grads_);
            for (Index r = 0; r < rows_; ++r) {
                if (!searching[static_cast<std::size_t>(r)]) continue;
                StrongWolfeSearch& s = search[static_cast<std::size_t>(r)];
                Row& row = state_[static_cast<std::size_t>(r)];
                ++row.evaluations;
                const float* g = grads_.data() + r * dim_;
                const std::vector<double>& d = dir[static_cast<std::size_t>(r)];
                double slope = 0.0;
                for (Index j = 0; j < dim_; ++j) slope += static_cast<double>(g[j]) * d[j];
                if (s.observe(values[static_cast<std::size_t>(r)], slope))
                    g_best[static_cast<std::size_t>(r)].assign(g, g + dim_);
                if (s.status() != LineSearchStatus::Searching) {
                    write_point(trial, r, d, s.best().alpha);  // park the row at its accepted point
                    searching[static_cast<std::size_t>(r)] = 0;
                }
            }
        }

        // Accept, update the history, write the new params.
        std::vector<double> out(static_cast<std::size_t>(rows_));
        for (Index r = 0; r < rows_; ++r) {
            Row& row = state_[static_cast<std::size_t>(r)];
            const StrongWolfeSearch& s = search[static_cast<std::size_t>(r)];
            if (row.status == LbfgsRowStatus::Running) {
                if (s.status() == LineSearchStatus::Wolfe || s.status() == LineSearchStatus::Best) {
                    accept(row, trial, r, s.best().value, g_best[static_cast<std::size_t>(r)]);
                } else if (row.count > 0) {
                    row.clear_history();  // the quasi-Newton model misled us: next step is steepest descent
                } else {
                    row.status = LbfgsRowStatus::Stalled;
                }
            }
            std::copy(row.x.begin(), row.x.end(), params.data() + r * dim_);
            out[static_cast<std::size_t>(r)] = row.f;
        }
        return out;
    }

    LbfgsRowStatus status(Index row) const { return at(row).status; }
    bool converged(Index row) const { return at(row).status != LbfgsRowStatus::Running; }
    /// False before the first step or reset: nothing has converged yet.
    bool all_converged() const {
        return initialised_ && std::all_of(state_.begin(), state_.end(), [](const Row& r) { return r.status != LbfgsRowStatus::Running; });
    }
    /// Batched objective calls since reset (each call evaluates all N rows).
    Index evaluations() const { return evaluations_; }
    /// Objective calls in which this row was being evaluated for itself (start + its own trials).
    Index row_evaluations(Index row) const { return at(row).evaluations; }
    /// Accepted iterations of this row.
    Index iterations(Index row) const { return at(row).iterations; }
    const LbfgsOptions& options() const { return options_; }

private:
    struct Row {
        std::vector<float> x;  // the point the objective last accepted, exactly as evaluated
        std::vector<double> g;
        double f = 0.0;
        bool valid = false;
        // Ring buffer of the last `history_size` pairs.
        std::vector<std::vector<double>> s, y;
        std::vector<double> rho;
        Index head = 0, count = 0;
        LbfgsRowStatus status = LbfgsRowStatus::Running;
        Index evaluations = 0, iterations = 0;
        void clear_history() { head = count = 0; }
    };

    const Row& at(Index row) const {
        GANINV_CHECK(row >= 0 && row < rows_, ShapeError, "Lbfgs: row ", row, " out of range (", rows_, " rows)");
        return state_[static_cast<std::size_t>(row)];
    }

    std::vector<double> evaluate(const Tensor<float>& p, const BatchObjective& f, Tensor<float>* grads) {
        ++evaluations_;
        std::vector<double> v = f(p, grads);
        GANINV_CHECK(static_cast<Index>(v.size()) == rows_, ShapeError, "Lbfgs: the objective returned ", v.size(),
                     " values for ", rows_, " rows");
        if (grads) expect_shape(*grads, {rows_, dim_}, "Lbfgs: objective gradient");
        return v;
    }

    // Evaluates at the caller's params when a row has no cached value or the caller moved it
    // (e.g. renormalised noise maps between steps); a moved row runs again even if it had frozen.
    void refresh_start(const Tensor<float>& params, const BatchObjective& f) {
        bool need = false;
        for (Index r = 0; r < rows_; ++r) {
            const Row& row = state_[static_cast<std::size_t>(r)];
            if (!row.valid || !std::equal(row.x.begin(), row.x.end(), params.data() + r * dim_)) need = true;
        }
        if (!need) return;
        const std::vector<double> v = evaluate(params, f, &grads_);
        for (Index r = 0; r < rows_; ++r) {
            Row& row = state_[static_cast<std::size_t>(r)];
            const float* p = params.data() + r * dim_;
            if (row.valid && std::equal(row.x.begin(), row.x.end(), p)) continue;
            const float* g = grads_.data() + r * dim_;
            GANINV_CHECK(std::isfinite(v[static_cast<std::size_t>(r)]), ValueError,
                         "Lbfgs: the objective is not finite (", v[static_cast<std::size_t>(r)],
                         ") at the starting point of row ", r);
            for (Index j = 0; j < dim_; ++j)
                GANINV_CHECK(std::isfinite(g[j]), ValueError, "Lbfgs: non-finite gradient at the starting point of row ",
                             r, ", column ", j);
            row.x.assign(p, p + dim_);
            row.g.assign(g, g + dim_);
            row.f = v[static_cast<std::size_t>(r)];
            row.valid = true;
            row.status = LbfgsRowStatus::Running;
            ++row.evaluations;
        }
    }

    // d = -H g by the two-loop recursion over the row's history.
    void direction(const Row& row, std::vector<double>& d) const {
        d.assign(row.g.begin(), row.g.end());
        const Index m = options_.history_size;
        std::vector<double> alpha(static_cast<std::size_t>(row.count));
        for (Index k = 0; k < row.count; ++k) {  // newest to oldest
            const auto i = static_cast<std::size_t>((row.head - 1 - k + m) % m);
            alpha[static_cast<std::size_t>(k)] = row.rho[i] * dot(row.s[i], d);
            axpy(-alpha[static_cast<std::size_t>(k)], row.y[i], d);
        }
        if (row.count > 0) {
            const auto newest = static_cast<std::size_t>((row.head - 1 + m) % m);
            const double gamma = dot(row.s[newest], row.y[newest]) / dot(row.y[newest], row.y[newest]);
            for (double& v : d) v *= gamma;
        }
        for (Index k = row.count; k-- > 0;) {  // oldest to newest
            const auto i = static_cast<std::size_t>((row.head - 1 - k + m) % m);
            const double beta = row.rho[i] * dot(row.y[i], d);
            axpy(alpha[static_cast<std::size_t>(k)] - beta, row.s[i], d);
        }
        for (double& v : d) v = -v;
    }

    void accept(Row& row, const Tensor<float>& trial, Index r, double f_new, const std::vector<double>& g_new) {
        const float* xn = trial.data() + r * dim_;
        const Index m = options_.history_size;
        std::vector<double> s(static_cast<std::size_t>(dim_)), y(static_cast<std::size_t>(dim_));
        for (Index j = 0; j < dim_; ++j) {
            s[j] = static_cast<double>(xn[j]) - static_cast<double>(row.x[j]);
            y[j] = g_new[j] - row.g[j];
        }
        // A pair without positive curvature (float rounding of the point) is skipped.
        const double sy = dot(s, y);
        if (nn::lbfgs_keeps_pair(sy, dot(s, s), dot(y, y))) {
            const auto i = static_cast<std::size_t>(row.head);
            if (row.s.size() < static_cast<std::size_t>(m)) {
                row.s.resize(static_cast<std::size_t>(m));
                row.y.resize(static_cast<std::size_t>(m));
                row.rho.resize(static_cast<std::size_t>(m));
            }
            row.s[i] = std::move(s);
            row.y[i] = std::move(y);
            row.rho[i] = 1.0 / sy;
            row.head = (row.head + 1) % m;
            row.count = std::min(row.count + 1, m);
        }
        const double f_old = row.f;
        row.x.assign(xn, xn + dim_);
        row.g = g_new;
        row.f = f_new;
        ++row.iterations;
        if (options_.value_tolerance > 0.0 &&
            std::abs(f_old - f_new) <= options_.value_tolerance * std::max(1.0, std::abs(f_new)))
            row.status = LbfgsRowStatus::Converged;
    }

    // Writes round(x + alpha d) into the trial row; false if that equals x (no float moves).
    bool write_point(Tensor<float>& trial, Index r, const std::vector<double>& d, double alpha) const {
        const Row& row = state_[static_cast<std::size_t>(r)];
        float* t = trial.data() + r * dim_;
        bool moved = false;
        for (Index j = 0; j < dim_; ++j) {
            t[j] = nn::lbfgs_point(row.x[j], alpha, d[j]);
            moved = moved || t[j] != row.x[j];
        }
        return moved;
    }

    static double dot(const std::vector<double>& a, const std::vector<double>& b) {
        double s = 0.0;
        for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
        return s;
    }
    static void axpy(double a, const std::vector<double>& x, std::vector<double>& y) {
        for (std::size_t i = 0; i < x.size(); ++i) y[i] += a * x[i];
    }
    static double max_abs(const std::vector<double>& v) {
        double m = 0.0;
        for (double x : v) m = std::max(m, std::abs(x));
        return m;
    }

    LbfgsOptions options_;
    Index rows_ = 0, dim_ = 0;
    bool initialised_ = false;
    Index evaluations_ = 0;
    std::vector<Row> state_;
    Tensor<float> grads_;
};

static_assert(ObjectiveOptimizer<Lbfgs>);

}  // namespace ganinv
