/// @file latent_distance.hpp
/// @brief How far codes lie from a latent distribution: a Gaussian fitted to samples (mean and
///        full covariance, kept as its Cholesky factor) and the Mahalanobis distance under it.
///        In-domain inversion (Zhu et al. 2020) is judged by it: codes near the generator's W
///        distribution have small distances. The samples come from the caller (the mapping
///        network's, latent/statistics.hpp): this layer knows no model.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"

#include <cmath>
#include <vector>

namespace ganinv::metrics {

/// N(mean, cov) of `dim`-vectors with cov = chol * chol^T (chol lower-triangular, row-major).
struct GaussianFit {
    Index dim = 0;
    Index samples = 0;
    std::vector<double> mean;  ///< [dim]
    std::vector<double> chol;  ///< [dim * dim], lower triangle
    double ridge = 0;          ///< added to the covariance's diagonal when it was not positive definite (0: none)
    bool empty() const { return dim == 0; }
};

namespace detail {

/// In-place Cholesky of a symmetric [d, d] matrix (lower factor); false when not positive definite.
inline bool cholesky(std::vector<double>& a, Index d) {
    for (Index j = 0; j < d; ++j) {
        double s = a[static_cast<std::size_t>(j * d + j)];
        for (Index k = 0; k < j; ++k) s -= a[static_cast<std::size_t>(j * d + k)] * a[static_cast<std::size_t>(j * d + k)];
        if (!(s > 0)) return false;
        const double ljj = std::sqrt(s);
        a[static_cast<std::size_t>(j * d + j)] = ljj;
        for (Index i = j + 1; i < d; ++i) {
            double t = a[static_cast<std::size_t>(i * d + j)];
            for (Index k = 0; k < j; ++k) t -= a[static_cast<std::size_t>(i * d + k)] * a[static_cast<std::size_t>(j * d + k)];
            a[static_cast<std::size_t>(i * d + j)] = t / ljj;
        }
        for (Index k = j + 1; k < d; ++k) a[static_cast<std::size_t>(j * d + k)] = 0.0;
    }
    return true;
}

}  // namespace detail

/// Mean and unbiased covariance of samples [n, d] (n >= 2). A covariance that is singular in
/// double precision (e.g. a mapping network whose z has fewer dimensions than w) gets a ridge of
/// 1e-9 x its mean variance, raised tenfold until the factorisation succeeds; `ridge` records it.
inline GaussianFit fit_gaussian(const Tensor<float>& samples) {
    GANINV_CHECK(samples.rank() == 2 && samples.dim(0) >= 2 && samples.dim(1) >= 1, ShapeError,
                 "fit_gaussian: samples must be [n >= 2, d >= 1], got ", shape_to_string(samples.shape()));
    const Index n = samples.dim(0), d = samples.dim(1);
    expect_finite(samples.values(), "fit_gaussian samples");
    GaussianFit f;
    f.dim = d;
    f.samples = n;
    f.mean.assign(static_cast<std::size_t>(d), 0.0);
    for (Index s = 0; s < n; ++s)
        for (Index i = 0; i < d; ++i) f.mean[static_cast<std::size_t>(i)] += samples[s * d + i];
    for (double& m : f.mean) m /= static_cast<double>(n);
    std::vector<double> cov(static_cast<std::size_t>(d * d), 0.0), x(static_cast<std::size_t>(d));
    for (Index s = 0; s < n; ++s) {
        for (Index i = 0; i < d; ++i) x[static_cast<std::size_t>(i)] = samples[s * d + i] - f.mean[static_cast<std::size_t>(i)];
        for (Index i = 0; i < d; ++i)
            for (Index j = 0; j <= i; ++j) cov[static_cast<std::size_t>(i * d + j)] += x[static_cast<std::size_t>(i)] * x[static_cast<std::size_t>(j)];
    }
    double trace = 0;
    for (Index i = 0; i < d; ++i)
        for (Index j = 0; j <= i; ++j) {
            const double v = cov[static_cast<std::size_t>(i * d + j)] / static_cast<double>(n - 1);
            cov[static_cast<std::size_t>(i * d + j)] = cov[static_cast<std::size_t>(j * d + i)] = v;
            if (i == j) trace += v;
        }
    GANINV_CHECK(trace > 0, ValueError, "fit_gaussian: the ", n, " samples are all equal (zero covariance)");
    f.chol = cov;
    for (double ridge = 1e-9 * trace / static_cast<double>(d); !detail::cholesky(f.chol, d); ridge *= 10) {
        f.chol = cov;
        for (Index i = 0; i < d; ++i) f.chol[static_cast<std::size_t>(i * d + i)] += ridge;
        f.ridge = ridge;
    }
    return f;
}

/// sqrt((x - mean)^T cov^-1 (x - mean)) for one vector x of f.dim values (forward substitution).
inline double mahalanobis(const GaussianFit& f, const float* x) {
    const Index d = f.dim;
    std::vector<double> y(static_cast<std::size_t>(d));
    double sq = 0;
    for (Index i = 0; i < d; ++i) {
        double t = x[i] - f.mean[static_cast<std::size_t>(i)];
        for (Index k = 0; k < i; ++k) t -= f.chol[static_cast<std::size_t>(i * d + k)] * y[static_cast<std::size_t>(k)];
        y[static_cast<std::size_t>(i)] = t / f.chol[static_cast<std::size_t>(i * d + i)];
        sq += y[static_cast<std::size_t>(i)] * y[static_cast<std::size_t>(i)];
    }
    return std::sqrt(sq);
}

/// Per code: the Mahalanobis distance of each of its w vectors, averaged over them. Codes are
/// [N, num_ws, w_dim] (W+: the mean over the layers) or [N, w_dim] (one w). Fresh samples of the
/// fitted distribution score about sqrt(w_dim - 1/2) (the mean of a chi distribution).
inline std::vector<double> mean_mahalanobis_per_code(const GaussianFit& f, const Tensor<float>& codes) {
    GANINV_CHECK(!f.empty(), ValueError, "mean_mahalanobis_per_code: no fitted distribution");
    GANINV_CHECK((codes.rank() == 3 || codes.rank() == 2) && codes.dim(codes.rank() - 1) == f.dim, ShapeError,
                 "mean_mahalanobis_per_code: codes must be [N, num_ws, ", f.dim, "] or [N, ", f.dim, "], got ",
                 shape_to_string(codes.shape()));
    const Index n = codes.dim(0), layers = codes.rank() == 3 ? codes.dim(1) : 1;
    std::vector<double> out(static_cast<std::size_t>(n), 0.0);
    for (Index b = 0; b < n; ++b) {
        double acc = 0;
        for (Index l = 0; l < layers; ++l) acc += mahalanobis(f, codes.data() + (b * layers + l) * f.dim);
        out[static_cast<std::size_t>(b)] = acc / static_cast<double>(layers);
    }
    return out;
}

}  // namespace ganinv::metrics
