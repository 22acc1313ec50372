/// @file ganspace.hpp
/// @brief GANSpace (Härkönen, Hertzmann, Lehtinen, Paris, "GANSpace: Discovering Interpretable
///        GAN Controls", NeurIPS 2020): principal components of sampled w as editing directions.
///
/// The W distribution of a trained mapping network is far from isotropic; its principal axes
/// line up with large, often interpretable changes (pose, size, garment type). We sample
/// z ~ N(0, I), map to w, and run PCA. The covariance is accumulated in double precision one
/// chunk at a time, merging chunk statistics with the pairwise update of Chan, Golub & LeVeque,
/// so N = 100k (or 1M) samples need only w_dim x w_dim memory and stay accurate even when the
/// mean is large compared with the spread.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/edit/directions.hpp"
#include "ganinv/edit/sampling.hpp"

#include <Eigen/Dense>
#include "ganinv/core/eigen.hpp"

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

namespace ganinv::edit {

/// Result of a PCA: components as rows, most variance first.
struct Pca {
    Tensor<float> components;                ///< [K, dim], unit rows with canonical sign
    std::vector<double> variances;           ///< [K] eigenvalues of the sample covariance
    std::vector<double> explained_variance;  ///< [K] variances / total variance (all dims)
    std::vector<double> mean;                ///< [dim]
    Index samples = 0;
};

/// Streaming mean and covariance of row vectors; `finish()` diagonalises the covariance.
class PcaAccumulator {
public:
    explicit PcaAccumulator(Index dim) : dim_(dim), mean_(Eigen::VectorXd::Zero(dim)), m2_(Eigen::MatrixXd::Zero(dim, dim)) {
        GANINV_CHECK(dim > 0, ValueError, "PcaAccumulator: dimension must be positive, got ", dim);
    }

    Index dim() const { return dim_; }
    Index samples() const { return n_; }

    /// Adds `rows` vectors stored with `stride` floats between starts (stride >= dim), e.g. the
    /// first w of every sample of a ws chunk uses stride num_ws * w_dim.
    void add(const float* data, Index rows, Index stride) {
        GANINV_CHECK(rows >= 0 && stride >= dim_, ValueError, "PcaAccumulator::add: bad rows ", rows, " / stride ",
                     stride, " for dimension ", dim_);
        if (rows == 0) return;
        Eigen::MatrixXd x(rows, dim_);
        for (Index r = 0; r < rows; ++r)
            for (Index c = 0; c < dim_; ++c) x(r, c) = data[r * stride + c];
        const Eigen::VectorXd mb = x.colwise().mean().transpose();
        x.rowwise() -= mb.transpose();
        const Eigen::MatrixXd sb = x.transpose() * x;
        const double na = static_cast<double>(n_), nb = static_cast<double>(rows), n = na + nb;
        const Eigen::VectorXd delta = mb - mean_;
        mean_ += delta * (nb / n);
        m2_ += sb + delta * delta.transpose() * (na * nb / n);
        n_ += rows;
    }
    void add(const Tensor<float>& rows) {
        GANINV_CHECK(rows.rank() == 2 && rows.dim(1) == dim_, ShapeError, "PcaAccumulator::add: expected [N, ", dim_,
                     "], got ", shape_to_string(rows.shape()));
        add(rows.data(), rows.dim(0), dim_);
    }

    /// Sample covariance (divisor N - 1).
    Eigen::MatrixXd covariance() const {
        GANINV_CHECK(n_ >= 2, ValueError, "PCA needs at least 2 samples, got ", n_);
        return m2_ / static_cast<double>(n_ - 1);
    }

    /// The top `count` components (0 = all dim).
    Pca finish(Index count = 0) const {
        const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(covariance());
        GANINV_CHECK(solver.info() == Eigen::Success, ValueError, "PCA: the eigen-decomposition did not converge");
        const Index k = count <= 0 ? dim_ : std::min(count, dim_);
        const double total = std::max(solver.eigenvalues().sum(), 1e-300);
        Pca p;
        p.samples = n_;
        p.components = Tensor<float>({k, dim_});
        p.mean.assign(mean_.data(), mean_.data() + dim_);
        std::vector<double> v(static_cast<std::size_t>(dim_));
        for (Index j = 0; j < k; ++j) {
            const Index col = dim_ - 1 - j;  // ascending order from the solver
            const double var = std::max(0.0, solver.eigenvalues()(col));  // round-off can give -1e-17
            p.variances.push_back(var);
            p.explained_variance.push_back(var / total);
            for (Index i = 0; i < dim_; ++i) v[static_cast<std::size_t>(i)] = solver.eigenvectors()(i, col);
            canonical_sign(v);
            for (Index i = 0; i < dim_; ++i) p.components[j * dim_ + i] = static_cast<float>(v[static_cast<std::size_t>(i)]);
        }
        return p;
    }

private:
    Index dim_;
    Index n_ = 0;
    Eigen::VectorXd mean_;
    Eigen::MatrixXd m2_;  ///< sum of outer products of deviations from the running mean
};

struct GanSpaceOptions {
    Index samples = 100000;                 ///< sampled w (the paper uses 10^6 for StyleGAN2)
    Index count = 0;                        ///< components kept; 0 = all w_dim
    std::uint64_t seed = 0;                 ///< Rng seed of the sampled z
    LayerRange layers = LayerRange::all();  ///< w indices the directions will be applied to
    SampleOptions sampling;                 ///< chunk size, truncation (none by default)
};

/// GANSpace directions of a generator in W: rows of `directions` [count, w_dim] with their
/// `stddev` (sqrt of the variance along them), `eigenvalues` (the variances),
/// `explained_variance` ratios and the sample `mean` w.
template <class G>
Directions ganspace(G& g, const GanSpaceOptions& opts = {}) {
    GANINV_CHECK(opts.samples >= 2, ValueError, "GANSpace: samples must be >= 2, got ", opts.samples);
    const LayerRange layers = opts.layers.resolved(g.num_ws(), "GANSpace layer range");
    PcaAccumulator acc(g.w_dim());
    // Without truncation cutoff all num_ws rows of a sample are the same w: use row 0.
    for_each_sampled_ws(
        g, opts.samples, opts.seed,
        [&](const Tensor<float>& ws, Index) { acc.add(ws.data(), ws.dim(0), g.num_ws() * g.w_dim()); },
        opts.sampling);
    const Pca p = acc.finish(opts.count);
    Directions d;
    d.directions = p.components;
    for (std::size_t j = 0; j < p.variances.size(); ++j) {
        d.stddev.push_back(static_cast<float>(std::sqrt(p.variances[j])));
        d.eigenvalues.push_back(static_cast<float>(p.variances[j]));
        d.explained_variance.push_back(static_cast<float>(p.explained_variance[j]));
    }
    d.mean.assign(p.mean.begin(), p.mean.end());
    d.method = "ganspace";
    d.space = EditSpace::w;
    d.layers = layers;
    d.info["samples"] = std::to_string(opts.samples);
    d.info["seed"] = std::to_string(opts.seed);
    return d;
}

}  // namespace ganinv::edit
