/// @file basin_cma.hpp
/// @brief BasinCMA (Huh, Zhang, Zhu, Paris, Hertzmann, "Transforming and Projecting Images into
///        Class-conditional Generative Networks", ECCV 2020, Sec. 3.2): CMA-ES over the starting
///        point of a short gradient descent. Each outer iteration samples lambda starts per problem,
///        refines every start with a few Adam steps, and tells CMA the loss *after* descent at the
///        *sampled* location (the distribution is not moved to the refined points: CMA learns which
///        basins are good, Adam finds the bottom of each). A final, longer Adam run starts from the
///        best refined point of each problem.
///
/// Batching: with N problems the objective sees N * lambda rows in the outer loop (row
/// r * lambda + k belongs to problem r) and N rows in the final run. An objective that needs to
/// know the problem of a row (the target image, say) uses r = row / (params.dim(0) / N).
/// Differences from the authors' pix2latent code, by choice: the final run starts from the best
/// refined point (not from a last fresh CMA sample) and uses a cosine learning-rate decay.
#pragma once

#include "ganinv/concepts/optimizer.hpp"
#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/optim/adam.hpp"
#include "ganinv/optim/cmaes.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace ganinv {

struct BasinCmaOptions {
    Index outer_iterations = 30;       ///< CMA generations (pix2latent's meta_steps)
    Index inner_steps = 30;            ///< Adam steps per sampled start (grad_steps)
    double inner_learning_rate = 0.05;
    Index final_steps = 300;           ///< Adam steps from the best refined point (last_grad_steps)
    double final_learning_rate = 0.05;
    bool final_cosine_decay = true;    ///< lr_t = lr * (1 + cos(pi t / T)) / 2 in the final run
    double sigma = 0.5;                ///< initial CMA step size (overrides cma.sigma)
    CmaEsOptions cma{};                ///< population, mode, seed, stopping
    AdamOptions adam{};                ///< betas and eps of the inner and final runs (its lr is unused)
};

struct BasinCmaResult {
    Tensor<float> best_params;                 ///< [N, dim]
    std::vector<double> best_values;           ///< N
    /// history[i][r]: best value of problem r after outer iteration i; one last entry after the final run.
    std::vector<std::vector<double>> history;
    Index evaluations = 0;                     ///< batched objective calls
};

class BasinCma {
public:
    explicit BasinCma(BasinCmaOptions options = {}) : options_(options), cma_(cma_options(options)) {
        GANINV_CHECK(options.outer_iterations >= 0 && options.inner_steps >= 0 && options.final_steps >= 0,
                     ValueError, "BasinCma: iteration and step counts must be >= 0");
    }

    /// The whole algorithm: outer CMA iterations with inner Adam, then the final Adam run.
    static BasinCmaResult run(const Tensor<float>& start, const BatchObjective& f, const BasinCmaOptions& options = {}) {
        BasinCma opt(options);
        return opt.minimize(start, f);
    }

    BasinCmaResult minimize(const Tensor<float>& start, const BatchObjective& f) {
        GANINV_CHECK(static_cast<bool>(f), ValueError, "BasinCma::minimize: empty objective");
        reset(start);
        BasinCmaResult result;
        evaluations_ = 0;
        for (Index it = 0; it < options_.outer_iterations && !cma_.all_stopped(); ++it) {
            Tensor<float> population = ask();
            tell(descend(population, f));
            result.history.push_back(best_values_);
        }

        // Final run from the best refined point (or the start when there were no outer iterations).
        Tensor<float> x = best_;
        const Index n = x.dim(0);
        Adam adam(adam_options(options_.final_learning_rate));
        adam.reset(n, dim_);
        Tensor<float> grads({n, dim_});
        std::vector<char> final_dead(static_cast<std::size_t>(n), 0);
        for (Index t = 0; t <= options_.final_steps; ++t) {
            const bool last = t == options_.final_steps;
            const std::vector<double> v = evaluate(x, f, last ? nullptr : &grads);
            for (Index r = 0; r < n; ++r) consider(r, v[static_cast<std::size_t>(r)], x.data() + r * dim_);
            if (last) break;
            if (options_.final_cosine_decay)
                adam.set_learning_rate(options_.final_learning_rate *
                                       cosine_decay(static_cast<double>(t) / static_cast<double>(options_.final_steps)));
            step_alive(adam, x, grads, final_dead);
        }
        result.history.push_back(best_values_);
        result.best_params = best_;
        result.best_values = best_values_;
        result.evaluations = evaluations_;
        return result;
    }

    // ---- ask/tell pieces (AskTellOptimizer), for callers that drive the outer loop themselves.

    /// Starts N problems at the rows of `mean` [N, dim].
    void reset(const Tensor<float>& mean) {
        cma_.reset(mean, options_.sigma);
        rows_ = mean.dim(0);
        dim_ = mean.dim(1);
        best_ = mean;
        best_values_.assign(static_cast<std::size_t>(rows_), std::numeric_limits<double>::infinity());
        refined_ = Tensor<float>();
    }

    /// CMA samples [N * lambda, dim].
    Tensor<float> ask() {
        samples_ = cma_.ask();
        refined_ = Tensor<float>();
        return samples_;
    }

    /// Inner loop: `inner_steps` Adam steps on every row of `population` (in place, rows
    /// independent), then one value-only evaluation. Returns the values after descent and
    /// remembers the refined points, which tell() offers as best() candidates. A row whose
    /// gradient turns non-finite stops moving and reports +inf.
    std::vector<double> descend(Tensor<float>& population, const BatchObjective& f) {
        GANINV_CHECK(population.rank() == 2 && population.dim(1) == dim_, ShapeError,
                     "BasinCma::descend: population must be [rows, ", dim_, "], got ",
                     shape_to_string(population.shape()));
        const Index rows = population.dim(0);
        Adam adam(adam_options(options_.inner_learning_rate));
        adam.reset(rows, dim_);
        Tensor<float> grads({rows, dim_});
        std::vector<char> dead(static_cast<std::size_t>(rows), 0);
        for (Index s = 0; s < options_.inner_steps; ++s) {
            evaluate(population, f, &grads);
            step_alive(adam, population, grads, dead);
        }
        std::vector<double> v = evaluate(population, f, nullptr);
        for (Index r = 0; r < rows; ++r)
            if (dead[static_cast<std::size_t>(r)]) v[static_cast<std::size_t>(r)] = std::numeric_limits<double>::infinity();
        refined_ = population;
        return v;
    }

    /// Post-descent values of the last ask()'s samples (N * lambda). CMA updates with them at the
    /// sampled locations; best() takes the refined point when descend() ran on this population.
    void tell(const std::vector<double>& values) {
        cma_.tell(values);  // checks the count and maps NaN to +inf
        const Tensor<float>& points = refined_.shape() == samples_.shape() ? refined_ : samples_;
        const Index lambda = cma_.population_size();
        for (Index i = 0; i < rows_ * lambda; ++i)
            consider(i / lambda, values[static_cast<std::size_t>(i)], points.data() + i * dim_);
    }

    Tensor<float> best() const { return best_; }
    const std::vector<double>& best_values() const { return best_values_; }
    const CmaEs& cma() const { return cma_; }
    Index evaluations() const { return evaluations_; }
    const BasinCmaOptions& options() const { return options_; }

private:
    static CmaEsOptions cma_options(const BasinCmaOptions& o) {
        CmaEsOptions c = o.cma;
        c.sigma = o.sigma;
        return c;
    }

    AdamOptions adam_options(double lr) const {
        AdamOptions a = options_.adam;
        a.learning_rate = lr;
        return a;
    }

    std::vector<double> evaluate(const Tensor<float>& x, const BatchObjective& f, Tensor<float>* grads) {
        ++evaluations_;
        std::vector<double> v = f(x, grads);
        GANINV_CHECK(static_cast<Index>(v.size()) == x.dim(0), ShapeError, "BasinCma: the objective returned ",
                     v.size(), " values for ", x.dim(0), " rows");
        if (grads) expect_shape(*grads, x.shape(), "BasinCma: objective gradient");
        return v;
    }

    void consider(Index row, double value, const float* point) {
        if (std::isfinite(value) && value < best_values_[static_cast<std::size_t>(row)]) {
            best_values_[static_cast<std::size_t>(row)] = value;
            std::copy(point, point + dim_, best_.data() + row * dim_);
        }
    }

    // A sample that left the region where the objective is defined must not abort the population:
    // from its first non-finite gradient on, the row is dead and stays where it was (Adam's momentum
    // would otherwise keep moving it with a zero gradient).
    void step_alive(Adam& adam, Tensor<float>& x, Tensor<float>& grads, std::vector<char>& dead) const {
        const Index rows = x.dim(0);
        for (Index r = 0; r < rows; ++r) {
            float* g = grads.data() + r * dim_;
            if (!dead[static_cast<std::size_t>(r)] &&
                !std::all_of(g, g + dim_, [](float v) { return std::isfinite(v); }))
                dead[static_cast<std::size_t>(r)] = 1;
            if (dead[static_cast<std::size_t>(r)]) std::fill(g, g + dim_, 0.0f);
        }
        std::vector<float> keep;
        for (Index r = 0; r < rows; ++r)
            if (dead[static_cast<std::size_t>(r)]) keep.insert(keep.end(), x.data() + r * dim_, x.data() + (r + 1) * dim_);
        adam.step(x, grads);
        auto it = keep.begin();
        for (Index r = 0; r < rows; ++r)
            if (dead[static_cast<std::size_t>(r)]) {
                std::copy(it, it + dim_, x.data() + r * dim_);
                it += dim_;
            }
    }

    BasinCmaOptions options_;
    CmaEs cma_;
    Index rows_ = 0, dim_ = 0;
    Tensor<float> samples_, refined_, best_;
    std::vector<double> best_values_;
    Index evaluations_ = 0;
};

static_assert(AskTellOptimizer<BasinCma>);
static_assert(WholeRunOptimizer<BasinCma>);

}  // namespace ganinv
