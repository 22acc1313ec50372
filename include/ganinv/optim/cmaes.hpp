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
///
/// The decisions (ranking, sigma, stop tests) are CmaCore's (optim/cma_core.hpp) and the vector
/// work is nn/cma_ops.hpp's functors run row after row in element order: the very code the
/// device-resident loop (invert/device_cma.hpp) runs on a backend, so that loop on Cpu follows
/// this class bit for bit. The normal draws are Philox's (core/philox.hpp), which every backend
/// computes alike.
#pragma once

#include "ganinv/concepts/optimizer.hpp"
#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/optim/cma_core.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace ganinv {

class CmaEs {
public:
    explicit CmaEs(CmaEsOptions options = {}) : core_(options) {}

    /// Starts N problems at the rows of `mean` [N, dim] with the options' sigma.
    void reset(const Tensor<float>& mean) { reset(mean, core_.options().sigma); }

    void reset(const Tensor<float>& mean, double sigma) {
        GANINV_CHECK(mean.rank() == 2 && mean.dim(0) > 0 && mean.dim(1) > 0, ShapeError,
                     "CmaEs::reset: mean must be [N, dim] with N, dim > 0, got ", shape_to_string(mean.shape()));
        expect_finite(mean.values(), "CmaEs::reset: mean");
        core_.reset(mean.dim(0), mean.dim(1), sigma);
        const Index rows = core_.rows(), n = core_.dimension(), lambda = core_.lambda();
        const auto vec = static_cast<std::size_t>(rows * n), samples = static_cast<std::size_t>(rows * lambda * n);
        mean_.assign(mean.values().begin(), mean.values().end());
        ps_.assign(vec, 0.0);
        pc_.assign(vec, 0.0);
        diag_.assign(vec, 1.0);  // sqrt of eigenvalues (full) or of diag(C) (sep)
        yw_.assign(vec, 0.0);
        t_.assign(vec, 0.0);
        hsig_.assign(static_cast<std::size_t>(rows), 0.0);
        out_.assign(static_cast<std::size_t>(nn::kCmaOutFields * rows), 0.0);
        Y_.assign(samples, 0.0);
        z_.assign(samples, 0.0f);
        C_.clear();
        B_.clear();
        if (!core_.separable()) {
            C_.assign(static_cast<std::size_t>(rows * n * n), 0.0);
            for (Index r = 0; r < rows; ++r)
                for (Index j = 0; j < n; ++j) C_[static_cast<std::size_t>((r * n + j) * n + j)] = 1.0;
            B_ = C_;
        }
        best_.assign(mean.values().begin(), mean.values().end());
        population_ = Tensor<float>({rows * lambda, n});
        asked_ = false;
    }

    /// Samples x = m + sigma B D z for every row: [N * lambda, dim], row r * lambda + k is the k-th
    /// sample of problem r. A stopped row gets its best point repeated (so shapes stay fixed).
    Tensor<float> ask() {
        GANINV_CHECK(core_.rows() > 0, ValueError, "CmaEs::ask: call reset(mean) first");
        nn::cma_sample_passes(core_.constants(), vectors(core_.sample_command()), nn::CmaSerialRun{core_.rows()});
        asked_ = true;
        return population_;
    }

    /// Values of the last ask()'s samples, N * lambda in the same order. NaN and inf count as +inf
    /// (worst), so a sample where the generator or loss blew up is simply never selected.
    void tell(const std::vector<double>& values) {
        GANINV_CHECK(asked_, ValueError, "CmaEs::tell: call ask() before tell()");
        const Index rows = core_.rows(), lambda = core_.lambda(), n = core_.dimension();
        GANINV_CHECK(static_cast<Index>(values.size()) == rows * lambda, ShapeError, "CmaEs::tell: values has ",
                     values.size(), " entries, expected N * lambda = ", rows, " * ", lambda, " = ", rows * lambda);
        asked_ = false;
        const nn::CmaVectors v = vectors(core_.rank(values.data()));
        const nn::CmaSerialRun run{rows};
        nn::cma_update_passes(core_.constants(), v, run);
        for (Index r = 0; r < rows; ++r)
            if (core_.decompose(r)) cma_eigen(C_.data() + r * n * n, n, B_.data() + r * n * n, diag_.data() + r * n);
        nn::cma_stats_passes(core_.constants(), v, run);
        core_.finish(out_.data());
    }

    /// Best sample seen per row [N, dim] (the starting mean until something was told).
    Tensor<float> best() const {
        Tensor<float> out({core_.rows(), core_.dimension()});
        std::copy(best_.begin(), best_.end(), out.data());
        return out;
    }
    std::vector<double> best_values() const {
        std::vector<double> v;
        for (Index r = 0; r < core_.rows(); ++r) v.push_back(core_.best_value(r));
        return v;
    }
    /// Current distribution means [N, dim].
    Tensor<float> mean() const {
        Tensor<float> out({core_.rows(), core_.dimension()});
        for (std::size_t i = 0; i < mean_.size(); ++i) out[static_cast<Index>(i)] = static_cast<float>(mean_[i]);
        return out;
    }

    double sigma(Index row) const { return core_.sigma(row); }
    CmaStop stop(Index row) const { return core_.stop(row); }
    bool stopped(Index row) const { return core_.stop(row) != CmaStop::None; }
    bool all_stopped() const { return core_.all_stopped(); }
    Index generation(Index row) const { return core_.generation(row); }
    Index population_size() const { return core_.lambda(); }
    Index parents() const { return core_.mu(); }
    Index rows() const { return core_.rows(); }
    Index dimension() const { return core_.dimension(); }
    bool separable() const { return core_.separable(); }
    double mu_eff() const { return core_.mu_eff(); }
    const CmaEsOptions& options() const { return core_.options(); }

private:
    nn::CmaVectors vectors(const std::vector<double>& cmd) {
        nn::CmaVectors v;
        v.rows = core_.rows();
        v.weights = core_.weights().data();
        v.seeds = core_.seeds().data();
        v.mean = mean_.data(), v.ps = ps_.data(), v.pc = pc_.data(), v.diag = diag_.data();
        v.C = C_.empty() ? nullptr : C_.data();
        v.B = B_.empty() ? nullptr : B_.data();
        v.Y = Y_.data(), v.yw = yw_.data(), v.t = t_.data(), v.hsig = hsig_.data();
        v.z = z_.data(), v.x = population_.data(), v.best = best_.data();
        v.cmd = cmd.data();
        v.out = out_.data();
        return v;
    }

    CmaCore core_;
    std::vector<double> mean_, ps_, pc_, diag_, C_, B_, Y_, yw_, t_, hsig_, out_;
    std::vector<float> z_, best_;
    Tensor<float> population_;  ///< the samples (the last ask()'s), as evaluated
    bool asked_ = false;
};

static_assert(AskTellOptimizer<CmaEs>);

}  // namespace ganinv
