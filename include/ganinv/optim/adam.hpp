/// @file adam.hpp
/// @brief Adam with separate state per row of a [N, dim] parameter batch. The official
///        projector's learning-rate ramp is invert/projector_schedule.hpp.
///
/// The update is the one of torch.optim.Adam (Kingma & Ba 2015, Algorithm 1, with the bias
/// corrections folded into the step size and eps added after the bias-corrected square root), so a
/// projector written on top of it follows the reference optimiser step for step.
#pragma once

#include "ganinv/concepts/optimizer.hpp"
#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

namespace ganinv {

/// The cosine decay factor (1 + cos(pi x)) / 2: 1 at x = 0, 0 at x = 1 (x the fraction of the
/// decay done). The learning-rate decays of BasinCma's final run and of encoder training.
inline double cosine_decay(double x) { return 0.5 * (1.0 + std::cos(std::numbers::pi * x)); }

struct AdamOptions {
    double learning_rate = 0.1;  ///< the official projector's initial learning rate
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
};

/// Adam's moments and step counts: a checkpoint that stores them resumes bit for bit.
struct AdamState {
    Index rows = 0, dim = 0;
    std::vector<double> m, v;  ///< [rows * dim]
    std::vector<Index> t;      ///< [rows]
};

/// Adam. Every row of the parameter tensor is an independent problem with its own moments and
/// its own step count, so a row can be restarted (`reset_row`) without touching the others.
class Adam {
public:
    explicit Adam(AdamOptions options = {}) : options_(options) {
        GANINV_CHECK(options.beta1 >= 0.0 && options.beta1 < 1.0, ValueError, "Adam: beta1 must be in [0, 1), got ",
                     options.beta1);
        GANINV_CHECK(options.beta2 >= 0.0 && options.beta2 < 1.0, ValueError, "Adam: beta2 must be in [0, 1), got ",
                     options.beta2);
        GANINV_CHECK(options.eps > 0.0, ValueError, "Adam: eps must be positive, got ", options.eps);
        set_learning_rate(options.learning_rate);
    }

    /// Clears the state for `rows` problems of `dim` parameters each.
    void reset(Index rows, Index dim) {
        GANINV_CHECK(rows >= 0 && dim >= 0, ShapeError, "Adam::reset: rows and dim must be >= 0, got ", rows, " and ",
                     dim);
        rows_ = rows;
        dim_ = dim;
        initialised_ = true;
        m_.assign(static_cast<std::size_t>(rows * dim), 0.0);
        v_.assign(static_cast<std::size_t>(rows * dim), 0.0);
        t_.assign(static_cast<std::size_t>(rows), 0);
    }

    /// Restarts one row (moments and step count) and leaves the other rows as they are.
    void reset_row(Index row) {
        GANINV_CHECK(initialised_ && row >= 0 && row < rows_, ShapeError, "Adam::reset_row: row ", row,
                     " out of range (", rows_, " rows)");
        std::fill_n(m_.begin() + row * dim_, dim_, 0.0);
        std::fill_n(v_.begin() + row * dim_, dim_, 0.0);
        t_[static_cast<std::size_t>(row)] = 0;
    }

    /// One update of every row. The first call after construction sizes the state from `params`.
    /// A non-finite gradient throws ValueError before anything is changed: silently stepping with
    /// NaN would poison the moments of that row for good.
    void step(Tensor<float>& params, const Tensor<float>& grads) {
        GANINV_CHECK(params.rank() == 2, ShapeError, "Adam::step: params must be [N, dim], got ",
                     shape_to_string(params.shape()));
        if (!initialised_) reset(params.dim(0), params.dim(1));
        expect_shape(params, {rows_, dim_}, "Adam::step: params");
        expect_shape(grads, {rows_, dim_}, "Adam::step: grads");
        for (Index i = 0; i < grads.numel(); ++i)
            GANINV_CHECK(std::isfinite(grads[i]), ValueError, "Adam::step: non-finite gradient ", grads[i], " in row ",
                         i / std::max<Index>(dim_, 1), " at column ", i % std::max<Index>(dim_, 1));

        const double b1 = options_.beta1, b2 = options_.beta2;
        for (Index r = 0; r < rows_; ++r) {
            const Index t = ++t_[static_cast<std::size_t>(r)];
            const double bias1 = 1.0 - std::pow(b1, static_cast<double>(t));
            const double bias2_sqrt = std::sqrt(1.0 - std::pow(b2, static_cast<double>(t)));
            const double step_size = lr_ / bias1;
            float* p = params.data() + r * dim_;
            const float* g = grads.data() + r * dim_;
            double* m = m_.data() + r * dim_;
            double* v = v_.data() + r * dim_;
            for (Index j = 0; j < dim_; ++j) {
                const double gj = g[j];
                m[j] = b1 * m[j] + (1.0 - b1) * gj;
                v[j] = b2 * v[j] + (1.0 - b2) * gj * gj;
                const double denom = std::sqrt(v[j]) / bias2_sqrt + options_.eps;
                p[j] = static_cast<float>(static_cast<double>(p[j]) - step_size * m[j] / denom);
            }
        }
    }

    AdamState state() const { return {rows_, dim_, m_, v_, t_}; }
    void set_state(const AdamState& s) {
        GANINV_CHECK(s.rows >= 0 && s.dim >= 0 && s.m.size() == static_cast<std::size_t>(s.rows * s.dim) &&
                         s.v.size() == s.m.size() && s.t.size() == static_cast<std::size_t>(s.rows),
                     ShapeError, "Adam::set_state: moments of ", s.m.size(), "/", s.v.size(), " values and ", s.t.size(),
                     " step counts do not fit ", s.rows, " rows of ", s.dim);
        rows_ = s.rows;
        dim_ = s.dim;
        m_ = s.m;
        v_ = s.v;
        t_ = s.t;
        initialised_ = true;
    }

    /// Schedules (ProjectorSchedule, cosine decay) change the rate between steps; the moments stay.
    void set_learning_rate(double lr) {
        GANINV_CHECK(std::isfinite(lr) && lr >= 0.0, ValueError, "Adam: learning rate must be finite and >= 0, got ",
                     lr);
        lr_ = lr;
    }
    double learning_rate() const { return lr_; }
    const AdamOptions& options() const { return options_; }
    Index rows() const { return rows_; }
    Index dim() const { return dim_; }
    /// Steps taken by one row since its last reset.
    Index steps(Index row) const {
        GANINV_CHECK(initialised_ && row >= 0 && row < rows_, ShapeError, "Adam::steps: row ", row, " out of range (",
                     rows_, " rows)");
        return t_[static_cast<std::size_t>(row)];
    }

private:
    AdamOptions options_;
    double lr_ = 0.1;
    Index rows_ = 0;
    Index dim_ = 0;
    bool initialised_ = false;
    // Moments in double: the parameters are float, but accumulating 1 - beta2 = 1e-3 increments of
    // squared gradients in float loses digits that torch keeps only by luck of ordering.
    std::vector<double> m_, v_;
    std::vector<Index> t_;
};

static_assert(FirstOrderOptimizer<Adam>);

}  // namespace ganinv
