/// @file interfacegan.hpp
/// @brief InterFaceGAN (Shen, Gu, Tang, Zhou, "Interpreting the Latent Space of GANs for Semantic
///        Face Editing", CVPR 2020): a binary attribute is (nearly) linearly separable in the
///        latent space, so the unit normal of a separating hyperplane is an editing direction.
///
/// Boundaries are learnt from codes and labels with a linear SVM (L2-regularised hinge loss,
/// solved in the dual by coordinate descent: Hsieh et al., ICML 2008, the LIBLINEAR method) or
/// with L2-regularised logistic regression (Newton's method). The paper's recipe (keep only the
/// most confident top/bottom ratio of samples ranked by an attribute score) is
/// `interfacegan_boundary`. Conditional editing moves along one attribute while keeping others
/// fixed: the primal normal is projected onto the orthogonal complement of the span of the
/// condition normals, so every conditioned score stays unchanged along the edit.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/rng.hpp"
#include "ganinv/core/tensor.hpp"

#include <Eigen/Dense>
#include "ganinv/core/eigen.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

namespace ganinv::edit {

/// A hyperplane n.x + offset = 0 with unit normal n; positive side = label 1.
struct LinearBoundary {
    std::vector<float> normal;  ///< [dim], unit length
    double offset = 0;          ///< in the units of the unit normal (signed distance at x = 0)
    double train_accuracy = 0;  ///< fraction of training samples on their label's side

    /// Signed distance of x from the plane.
    double score(std::span<const float> x) const {
        GANINV_CHECK(x.size() == normal.size(), ShapeError, "LinearBoundary::score: code has ", x.size(),
                     " values, the boundary has dimension ", normal.size());
        double s = offset;
        for (std::size_t i = 0; i < x.size(); ++i) s += static_cast<double>(normal[i]) * x[i];
        return s;
    }
};

namespace detail {

/// Samples as rows, stored row by row: the solvers read one sample at a time.
using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Checks codes [N, dim] and labels (0/1 or -1/+1, both classes present); returns +-1 labels.
inline std::vector<double> signed_labels(const Tensor<float>& codes, std::span<const int> labels, const char* what) {
    GANINV_CHECK(codes.rank() == 2 && codes.numel() > 0, ShapeError, what, ": codes must be [N, dim], got ",
                 shape_to_string(codes.shape()));
    GANINV_CHECK(static_cast<Index>(labels.size()) == codes.dim(0), ShapeError, what, ": ", labels.size(),
                 " labels for ", codes.dim(0), " codes");
    std::vector<double> y(labels.size());
    bool pos = false, neg = false;
    for (std::size_t i = 0; i < labels.size(); ++i) {
        GANINV_CHECK(labels[i] == 1 || labels[i] == 0 || labels[i] == -1, ValueError, what, ": label ", i, " is ",
                     labels[i], " (expected 0/1 or -1/+1)");
        y[i] = labels[i] == 1 ? 1.0 : -1.0;
        (labels[i] == 1 ? pos : neg) = true;
    }
    GANINV_CHECK(pos && neg, ValueError, what, ": labels must contain both classes");
    expect_finite(codes.values(), concat(what, ": codes"));
    return y;
}

/// Scales (w, b) to a unit normal and measures the training accuracy.
inline LinearBoundary make_boundary(const Eigen::VectorXd& w, double b, const Tensor<float>& codes,
                                    const std::vector<double>& y, const char* what) {
    const double norm = w.norm();
    GANINV_CHECK(norm > 0 && std::isfinite(norm), ValueError, what, ": the learnt normal is zero or not finite");
    LinearBoundary out;
    out.normal.resize(static_cast<std::size_t>(w.size()));
    for (Index i = 0; i < w.size(); ++i) out.normal[static_cast<std::size_t>(i)] = static_cast<float>(w(i) / norm);
    out.offset = b / norm;
    const Index dim = codes.dim(1);
    Index right = 0;
    for (Index r = 0; r < codes.dim(0); ++r) {
        double s = b;
        for (Index i = 0; i < dim; ++i) s += w(i) * codes[r * dim + i];
        right += (s > 0) == (y[static_cast<std::size_t>(r)] > 0);
    }
    out.train_accuracy = static_cast<double>(right) / static_cast<double>(codes.dim(0));
    return out;
}

}  // namespace detail

struct SvmOptions {
    double c = 1.0;            ///< hinge-loss weight (larger = harder margin)
    Index max_epochs = 1000;   ///< passes over the data
    double tolerance = 1e-4;   ///< stop when the projected-gradient spread falls below this
    std::uint64_t seed = 0;    ///< order of the coordinate sweeps
};

/// Linear SVM min 1/2 |w|^2 + C sum hinge(y (w.x + b)), dual coordinate descent. The bias is
/// learnt as the weight of a constant feature 1 (so it is regularised too, as in LIBLINEAR).
inline LinearBoundary train_linear_svm(const Tensor<float>& codes, std::span<const int> labels,
                                       const SvmOptions& opts = {}) {
    const std::vector<double> y = detail::signed_labels(codes, labels, "train_linear_svm");
    GANINV_CHECK(opts.c > 0 && opts.max_epochs > 0, ValueError, "train_linear_svm: C and max_epochs must be positive");
    const Index n = codes.dim(0), dim = codes.dim(1);
    detail::RowMatrix x(n, dim + 1);
    for (Index r = 0; r < n; ++r) {
        for (Index i = 0; i < dim; ++i) x(r, i) = codes[r * dim + i];
        x(r, dim) = 1.0;
    }
    const Eigen::VectorXd q = x.rowwise().squaredNorm();
    Eigen::VectorXd w = Eigen::VectorXd::Zero(dim + 1), alpha = Eigen::VectorXd::Zero(n);
    std::vector<Index> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), Index{0});
    Rng rng(opts.seed);
    for (Index epoch = 0; epoch < opts.max_epochs; ++epoch) {
        for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
        double pg_max = -1e300, pg_min = 1e300;
        for (const Index i : order) {
            const double yi = y[static_cast<std::size_t>(i)];
            const double grad = yi * x.row(i).dot(w) - 1.0;
            // Projected gradient: at a bound only the direction back into [0, C] counts.
            double pg = grad;
            if (alpha(i) <= 0) pg = std::min(grad, 0.0);
            else if (alpha(i) >= opts.c) pg = std::max(grad, 0.0);
            pg_max = std::max(pg_max, pg);
            pg_min = std::min(pg_min, pg);
            if (pg == 0.0 || q(i) <= 0) continue;
            const double old = alpha(i);
            alpha(i) = std::clamp(old - grad / q(i), 0.0, opts.c);
            w += (alpha(i) - old) * yi * x.row(i).transpose();
        }
        if (pg_max - pg_min < opts.tolerance) break;
    }
    return detail::make_boundary(w.head(dim), w(dim), codes, y, "train_linear_svm");
}

struct LogisticOptions {
    double l2 = 1e-3;          ///< weight of 1/2 |w|^2 (the bias is not penalised)
    Index max_iterations = 50;
    double tolerance = 1e-10;  ///< stop when the Newton decrement falls below this
};

/// L2-regularised logistic regression by Newton's method (dim is small: the Hessian is
/// (dim+1)^2), mean log-loss + l2/2 |w|^2.
inline LinearBoundary train_logistic_regression(const Tensor<float>& codes, std::span<const int> labels,
                                                const LogisticOptions& opts = {}) {
    const std::vector<double> y = detail::signed_labels(codes, labels, "train_logistic_regression");
    GANINV_CHECK(opts.l2 >= 0, ValueError, "train_logistic_regression: l2 must be >= 0");
    const Index n = codes.dim(0), dim = codes.dim(1);
    detail::RowMatrix x(n, dim + 1);
    for (Index r = 0; r < n; ++r) {
        for (Index i = 0; i < dim; ++i) x(r, i) = codes[r * dim + i];
        x(r, dim) = 1.0;
    }
    Eigen::VectorXd w = Eigen::VectorXd::Zero(dim + 1);
    Eigen::VectorXd reg = Eigen::VectorXd::Constant(dim + 1, opts.l2);
    reg(dim) = 1e-12;  // the bias is free; a tiny ridge keeps the Hessian invertible
    for (Index it = 0; it < opts.max_iterations; ++it) {
        const Eigen::VectorXd m = x * w;
        Eigen::VectorXd g = reg.cwiseProduct(w);
        Eigen::VectorXd h_diag(n);
        for (Index r = 0; r < n; ++r) {
            const double yr = y[static_cast<std::size_t>(r)];
            const double p = 1.0 / (1.0 + std::exp(yr * m(r)));  // sigma(-y m)
            g -= (yr * p / static_cast<double>(n)) * x.row(r).transpose();
            h_diag(r) = p * (1.0 - p) / static_cast<double>(n);
        }
        Eigen::MatrixXd h = x.transpose() * h_diag.asDiagonal() * x;
        h.diagonal() += reg;
        const Eigen::VectorXd step = h.ldlt().solve(g);
        w -= step;
        if (g.dot(step) < opts.tolerance) break;
    }
    return detail::make_boundary(w.head(dim), w(dim), codes, y, "train_logistic_regression");
}

/// The paper's recipe: rank samples by an attribute `score`, label the top `ratio` positive and
/// the bottom `ratio` negative (the ambiguous middle is dropped), and fit a linear SVM.
inline LinearBoundary interfacegan_boundary(const Tensor<float>& codes, std::span<const float> scores,
                                            double ratio = 0.02, const SvmOptions& opts = {}) {
    GANINV_CHECK(codes.rank() == 2 && static_cast<Index>(scores.size()) == codes.dim(0), ShapeError,
                 "interfacegan_boundary: need codes [N, dim] and N scores, got ", shape_to_string(codes.shape()),
                 " and ", scores.size());
    GANINV_CHECK(ratio > 0 && ratio <= 0.5, ValueError, "interfacegan_boundary: ratio must be in (0, 0.5], got ",
                 ratio);
    const Index n = codes.dim(0), dim = codes.dim(1);
    const Index keep = std::max<Index>(1, static_cast<Index>(std::floor(ratio * static_cast<double>(n))));
    std::vector<Index> idx(static_cast<std::size_t>(n));
    std::iota(idx.begin(), idx.end(), Index{0});
    std::stable_sort(idx.begin(), idx.end(), [&](Index a, Index b) {
        return scores[static_cast<std::size_t>(a)] > scores[static_cast<std::size_t>(b)];
    });
    Tensor<float> chosen({2 * keep, dim});
    std::vector<int> labels(static_cast<std::size_t>(2 * keep));
    for (Index k = 0; k < 2 * keep; ++k) {
        const Index src = k < keep ? idx[static_cast<std::size_t>(k)] : idx[static_cast<std::size_t>(n - 2 * keep + k)];
        std::copy(codes.data() + src * dim, codes.data() + (src + 1) * dim, chosen.data() + k * dim);
        labels[static_cast<std::size_t>(k)] = k < keep ? 1 : 0;
    }
    return train_linear_svm(chosen, labels, opts);
}

/// Conditional direction: `primal` with its components along span(conditions) removed, then
/// normalised. For one unit condition c this is the paper's n - (n.c) c; for several it is the
/// least-squares projection (C^T C)^{-1} C^T n solved with a QR decomposition, so the conditions
/// need not be orthogonal. Every condition's score is then unchanged along the result.
inline std::vector<float> conditional_direction(std::span<const float> primal,
                                                const std::vector<std::vector<float>>& conditions) {
    const Index dim = static_cast<Index>(primal.size());
    GANINV_CHECK(dim > 0, ShapeError, "conditional_direction: empty primal direction");
    Eigen::VectorXd n(dim);
    for (Index i = 0; i < dim; ++i) n(i) = primal[static_cast<std::size_t>(i)];
    if (!conditions.empty()) {
        Eigen::MatrixXd c(dim, static_cast<Index>(conditions.size()));
        for (std::size_t k = 0; k < conditions.size(); ++k) {
            GANINV_CHECK(static_cast<Index>(conditions[k].size()) == dim, ShapeError, "conditional_direction: condition ",
                         k, " has ", conditions[k].size(), " values, the primal direction ", dim);
            for (Index i = 0; i < dim; ++i) c(i, static_cast<Index>(k)) = conditions[k][static_cast<std::size_t>(i)];
        }
        const Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(c);
        GANINV_CHECK(qr.rank() == c.cols(), ValueError,
                     "conditional_direction: the condition directions are linearly dependent");
        n -= c * qr.solve(n);
        // One more pass removes what round-off left along the conditions.
        n -= c * qr.solve(n);
    }
    const double norm = n.norm();
    GANINV_CHECK(norm > 1e-8 * std::sqrt(static_cast<double>(dim)), ValueError,
                 "conditional_direction: the primal direction lies in the span of the conditions");
    std::vector<float> out(static_cast<std::size_t>(dim));
    for (Index i = 0; i < dim; ++i) out[static_cast<std::size_t>(i)] = static_cast<float>(n(i) / norm);
    return out;
}

}  // namespace ganinv::edit
