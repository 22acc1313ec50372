/// @file sefa.hpp
/// @brief SeFa (Shen & Zhou, "Closed-Form Factorization of Latent Semantics in GANs", CVPR 2021):
///        editing directions in W read off the generator's weights alone, no sampling.
///
/// Every modulated layer turns its w into styles with an affine map s = A w + b; a step n in W
/// changes the styles by A n. The directions that change the styles most are the top
/// eigenvectors of A^T A, A being the stacked affine weights of the chosen layers. Like the
/// authors' code, every row of A (one style channel, w_dim weights) is first scaled to unit
/// length, so that channels count equally whatever their weight scale (it also removes the
/// per-layer weight gains of StyleGAN2, and the ToRGB style gain).
///
/// Layer choice: the range selects w indices (the same indices the edit is later applied to);
/// conv layers of those indices are always used. ToRGB layers are skipped by default, as in
/// the common StyleGAN2 ports; `SefaTorgb::final_only` adds the last ToRGB, which is what the
/// authors' `layer_idx='all'` amounts to (their last layer index is the final ToRGB, the only
/// consumer of the last w).
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/json.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/edit/directions.hpp"
#include "ganinv/models/stylegan2_config.hpp"

#include <Eigen/Dense>
#include "ganinv/core/eigen.hpp"

#include <cmath>
#include <string>
#include <vector>

namespace ganinv::edit {

enum class SefaTorgb {
    skip,        ///< conv layers only (default)
    final_only,  ///< conv layers plus the final ToRGB (the official code's 'all')
    all,         ///< every modulated layer whose w index is in the range
};

inline SefaTorgb parse_sefa_torgb(const std::string& s) {
    if (s == "skip" || s == "none") return SefaTorgb::skip;
    if (s == "final") return SefaTorgb::final_only;
    if (s == "all") return SefaTorgb::all;
    throw ValueError(concat("unknown ToRGB policy '", s, "' for SeFa (expected skip, final or all)"));
}

struct SefaOptions {
    LayerRange layers = LayerRange::all();  ///< w indices whose layers are factorised
    SefaTorgb torgb = SefaTorgb::skip;
    Index count = 0;  ///< directions to keep; 0 = all w_dim
};

/// The synthesis layers SeFa factorises for `opts` (names in execution order).
inline std::vector<const SynthesisLayerSpec*> sefa_layers(const SynthesisPlan& plan, Index num_ws,
                                                         const SefaOptions& opts) {
    const LayerRange r = opts.layers.resolved(num_ws, "SeFa layer range");
    std::vector<const SynthesisLayerSpec*> out;
    for (const auto& l : plan.layers) {
        if (l.w_index < r.begin || l.w_index >= r.end) continue;
        const bool take = !l.is_torgb || opts.torgb == SefaTorgb::all ||
                          (opts.torgb == SefaTorgb::final_only && l.w_index == num_ws - 1);
        if (take) out.push_back(&l);
    }
    GANINV_CHECK(!out.empty(), ValueError, "SeFa: the layer range ", r.str(),
                 " selects no modulated layer (only ToRGB layers, which are skipped; use torgb = all)");
    return out;
}

/// Eigen-decomposition of sum_rows r r^T over the unit-normalised rows of the stacked weights
/// `rows` ([total_channels, dim], row-major). Returns eigenvalues (descending) and the matching
/// eigenvectors as the rows of a [count, dim] tensor, each with canonical sign.
inline std::pair<std::vector<float>, Tensor<float>> sefa_factorize(const std::vector<Tensor<float>>& weights,
                                                                   Index count) {
    GANINV_CHECK(!weights.empty(), ValueError, "sefa_factorize: no weight matrices given");
    const Index dim = weights[0].rank() == 2 ? weights[0].dim(1) : 0;
    Eigen::MatrixXd gram = Eigen::MatrixXd::Zero(dim, dim);
    for (std::size_t m = 0; m < weights.size(); ++m) {
        const Tensor<float>& w = weights[m];
        GANINV_CHECK(w.rank() == 2 && w.dim(1) == dim && dim > 0, ShapeError, "sefa_factorize: weight ", m,
                     " has shape ", shape_to_string(w.shape()), ", expected [channels, ", dim, "]");
        Eigen::MatrixXd a(w.dim(0), dim);
        for (Index r = 0; r < w.dim(0); ++r) {
            double norm2 = 0;
            for (Index c = 0; c < dim; ++c) norm2 += static_cast<double>(w[r * dim + c]) * w[r * dim + c];
            GANINV_CHECK(norm2 > 0, ValueError, "sefa_factorize: weight ", m, " row ", r,
                         " is zero and cannot be normalised");
            const double inv = 1.0 / std::sqrt(norm2);
            for (Index c = 0; c < dim; ++c) a(r, c) = w[r * dim + c] * inv;
        }
        gram.noalias() += a.transpose() * a;
    }
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(gram);
    GANINV_CHECK(solver.info() == Eigen::Success, ValueError, "SeFa: the eigen-decomposition did not converge");
    const Index k = count <= 0 ? dim : std::min(count, dim);
    std::vector<float> values(static_cast<std::size_t>(k));
    Tensor<float> dirs({k, dim});
    std::vector<double> v(static_cast<std::size_t>(dim));
    for (Index j = 0; j < k; ++j) {
        const Index col = dim - 1 - j;  // the solver sorts ascending
        values[static_cast<std::size_t>(j)] = static_cast<float>(solver.eigenvalues()(col));
        for (Index i = 0; i < dim; ++i) v[static_cast<std::size_t>(i)] = solver.eigenvectors()(i, col);
        canonical_sign(v);
        for (Index i = 0; i < dim; ++i) dirs[j * dim + i] = static_cast<float>(v[static_cast<std::size_t>(i)]);
    }
    return {std::move(values), std::move(dirs)};
}

/// SeFa directions of a generator: rows of `directions` [count, w_dim], eigenvalues
/// descending; `layers` is the w index range to apply them to; info["sefa_layers"] lists the
/// factorised layers. G: StyleGAN2<Backend> (anything with plan(), num_ws(), param(), backend()).
template <class G>
Directions sefa(G& g, const SefaOptions& opts = {}) {
    const auto layers = sefa_layers(g.plan(), g.num_ws(), opts);
    std::vector<Tensor<float>> weights;
    Json::Array names;
    for (const auto* l : layers) {
        weights.push_back(g.backend().download(g.param(l->name + ".affine.weight")));
        names.emplace_back(l->name);
    }
    auto [values, dirs] = sefa_factorize(weights, opts.count);
    Directions d;
    d.directions = std::move(dirs);
    d.eigenvalues = std::move(values);
    d.method = "sefa";
    d.space = EditSpace::w;
    d.layers = opts.layers.resolved(g.num_ws());
    d.info["sefa_layers"] = Json(names).dump();
    return d;
}

}  // namespace ganinv::edit
