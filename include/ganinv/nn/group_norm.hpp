/// @file group_norm.hpp
/// @brief Group normalisation on the CPU (Wu & He 2018; PyTorch's GroupNorm semantics: biased
///        variance, eps inside the square root, per-channel affine), forward and backward. The
///        encoders use it instead of batch norm so that a sample's output never depends on the
///        other samples of its batch (training and inference see the same function).
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"

#include <cmath>
#include <vector>

namespace ganinv::nn {

struct GroupNormShape {
    Index batch = 1, channels = 0, spatial = 0;  ///< x is [batch, channels, spatial]
    Index groups = 1;
    float eps = 1e-5f;

    Index group_size() const { return channels / groups * spatial; }
    void validate() const {
        GANINV_CHECK(batch >= 1 && channels >= 1 && spatial >= 1, ShapeError, "group_norm: empty input (batch ", batch,
                     ", channels ", channels, ", spatial ", spatial, ")");
        GANINV_CHECK(groups >= 1 && channels % groups == 0, ValueError, "group_norm: ", channels,
                     " channels do not split into ", groups, " groups");
        GANINV_CHECK(eps > 0.0f, ValueError, "group_norm: eps must be positive, got ", eps);
    }
};

/// What the backward needs besides x: each (sample, group)'s mean and 1/sqrt(var + eps).
struct GroupNormStats {
    std::vector<float> mean, rstd;  ///< [batch * groups]
};

/// y = (x - mean_g) * rstd_g * gamma[c] + beta[c]. gamma/beta may be null (no affine).
inline void group_norm_forward(const float* x, const float* gamma, const float* beta, const GroupNormShape& s,
                               float* y, GroupNormStats* stats) {
    s.validate();
    const Index cpg = s.channels / s.groups, m = s.group_size(), ng = s.batch * s.groups;
    if (stats) {
        stats->mean.assign(static_cast<std::size_t>(ng), 0.0f);
        stats->rstd.assign(static_cast<std::size_t>(ng), 0.0f);
    }
#pragma omp parallel for schedule(static) if (s.batch * s.channels * s.spatial > (Index{1} << 18))
    for (Index g = 0; g < ng; ++g) {
        const float* xg = x + g * m;
        // Two passes in double: one-pass E[x^2] - E[x]^2 cancels badly for large means.
        double sum = 0.0;
        for (Index i = 0; i < m; ++i) sum += xg[i];
        const double mean = sum / static_cast<double>(m);
        double sq = 0.0;
        for (Index i = 0; i < m; ++i) sq += (xg[i] - mean) * (xg[i] - mean);
        const double rstd = 1.0 / std::sqrt(sq / static_cast<double>(m) + s.eps);
        const Index c0 = (g % s.groups) * cpg;
        float* yg = y + g * m;
        for (Index c = 0; c < cpg; ++c) {
            const float ga = gamma ? gamma[c0 + c] : 1.0f, be = beta ? beta[c0 + c] : 0.0f;
            for (Index i = 0; i < s.spatial; ++i) {
                const Index k = c * s.spatial + i;
                yg[k] = static_cast<float>((xg[k] - mean) * rstd) * ga + be;
            }
        }
        if (stats) {
            stats->mean[static_cast<std::size_t>(g)] = static_cast<float>(mean);
            stats->rstd[static_cast<std::size_t>(g)] = static_cast<float>(rstd);
        }
    }
}

/// Backward given x, the forward's stats and dL/dy. grad_x is overwritten (may be null);
/// grad_gamma and grad_beta accumulate (may be null).
inline void group_norm_backward(const float* x, const float* gamma, const GroupNormStats& stats, const float* grad_y,
                                const GroupNormShape& s, float* grad_x, float* grad_gamma, float* grad_beta) {
    s.validate();
    const Index cpg = s.channels / s.groups, m = s.group_size(), ng = s.batch * s.groups;
    GANINV_CHECK(static_cast<Index>(stats.mean.size()) == ng && static_cast<Index>(stats.rstd.size()) == ng, ShapeError,
                 "group_norm_backward: the stats hold ", stats.mean.size(), " groups, the input ", ng);
    // Per (sample, channel) sums, reduced over the batch afterwards (no races on grad_gamma).
    std::vector<double> dgam(static_cast<std::size_t>(s.batch * s.channels), 0.0), dbet(dgam.size(), 0.0);
#pragma omp parallel for schedule(static) if (s.batch * s.channels * s.spatial > (Index{1} << 18))
    for (Index g = 0; g < ng; ++g) {
        const double mean = stats.mean[static_cast<std::size_t>(g)], rstd = stats.rstd[static_cast<std::size_t>(g)];
        const Index n = g / s.groups, c0 = (g % s.groups) * cpg;
        const float* xg = x + g * m;
        const float* gy = grad_y + g * m;
        // dxhat = dy * gamma; dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)).
        double sum_d = 0.0, sum_dx = 0.0;
        for (Index c = 0; c < cpg; ++c) {
            const double ga = gamma ? gamma[c0 + c] : 1.0;
            double acc_g = 0.0, acc_b = 0.0;
            for (Index i = 0; i < s.spatial; ++i) {
                const Index k = c * s.spatial + i;
                const double xhat = (xg[k] - mean) * rstd;
                acc_g += gy[k] * xhat;
                acc_b += gy[k];
                sum_d += gy[k] * ga;
                sum_dx += gy[k] * ga * xhat;
            }
            dgam[static_cast<std::size_t>(n * s.channels + c0 + c)] = acc_g;
            dbet[static_cast<std::size_t>(n * s.channels + c0 + c)] = acc_b;
        }
        if (!grad_x) continue;
        const double md = sum_d / static_cast<double>(m), mdx = sum_dx / static_cast<double>(m);
        float* gx = grad_x + g * m;
        for (Index c = 0; c < cpg; ++c) {
            const double ga = gamma ? gamma[c0 + c] : 1.0;
            for (Index i = 0; i < s.spatial; ++i) {
                const Index k = c * s.spatial + i;
                const double xhat = (xg[k] - mean) * rstd;
                gx[k] = static_cast<float>(rstd * (gy[k] * ga - md - xhat * mdx));
            }
        }
    }
    for (Index c = 0; c < s.channels; ++c) {
        double a = 0.0, b = 0.0;
        for (Index n = 0; n < s.batch; ++n) {
            a += dgam[static_cast<std::size_t>(n * s.channels + c)];
            b += dbet[static_cast<std::size_t>(n * s.channels + c)];
        }
        if (grad_gamma) grad_gamma[c] += static_cast<float>(a);
        if (grad_beta) grad_beta[c] += static_cast<float>(b);
    }
}

}  // namespace ganinv::nn
