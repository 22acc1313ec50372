/// @file directions.hpp
/// @brief What every editing method shares: layer ranges over the num_ws codes, the
///        `Directions` record (unit directions + optional per-direction stddev, eigenvalues,
///        mean) with its safetensors form, moving codes along a direction on a range of layers,
///        and style mixing.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/io/safetensors.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ganinv::edit {

/// The latent spaces an edit or an interpolation can act in.
enum class EditSpace { z, w, wplus, s };

inline std::string to_string(EditSpace s) {
    switch (s) {
        case EditSpace::z: return "z";
        case EditSpace::w: return "w";
        case EditSpace::wplus: return "wplus";
        case EditSpace::s: return "s";
    }
    return "?";
}

inline EditSpace parse_edit_space(const std::string& name) {
    if (name == "z") return EditSpace::z;
    if (name == "w") return EditSpace::w;
    if (name == "wplus" || name == "w+") return EditSpace::wplus;
    if (name == "s") return EditSpace::s;
    throw ValueError(concat("unknown latent space '", name, "' (expected z, w, wplus or s)"));
}

/// Half-open range [begin, end) of w indices (StyleGAN's "layers" when editing: index i is the
/// i-th of the num_ws codes, e.g. 0..1 coarse pose/shape, the last ones fine colour/texture).
struct LayerRange {
    Index begin = 0;
    Index end = -1;  ///< -1: up to num_ws

    static LayerRange all() { return {}; }
    /// The concrete range for a generator with `num_ws` codes; ValueError naming `what` when the
    /// range is empty or leaves [0, num_ws].
    LayerRange resolved(Index num_ws, const std::string& what = "layer range") const {
        const Index e = end < 0 ? num_ws : end;
        GANINV_CHECK(begin >= 0 && begin < e && e <= num_ws, ValueError, what, " [", begin, ", ", e,
                     ") is empty or outside [0, ", num_ws, ") of this generator's w indices");
        return {begin, e};
    }
    bool contains(Index i) const { return i >= begin && (end < 0 || i < end); }
    std::string str() const { return concat(begin, ":", end < 0 ? std::string() : std::to_string(end)); }
};

/// Parses "a:b", "a:", ":b", ":" or a single index "a" (= "a:a+1").
inline LayerRange parse_layer_range(const std::string& text) {
    auto number = [&](const std::string& s, Index fallback) -> Index {
        if (s.empty()) return fallback;
        std::size_t used = 0;
        long long v = 0;
        try {
            v = std::stoll(s, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        GANINV_CHECK(used == s.size() && v >= 0, ValueError, "layer range '", text,
                     "': expected a:b with non-negative integers");
        return static_cast<Index>(v);
    };
    const auto colon = text.find(':');
    if (colon == std::string::npos) {
        const Index a = number(text, -1);
        GANINV_CHECK(a >= 0, ValueError, "layer range '", text, "' is empty");
        return {a, a + 1};
    }
    return {number(text.substr(0, colon), 0), number(text.substr(colon + 1), -1)};
}

/// A set of editing directions in one space, as the direction finders return them.
struct Directions {
    Tensor<float> directions;               ///< [K, dim], unit-norm rows, most important first
    std::vector<float> stddev;              ///< optional [K]: std of codes along each direction
    std::vector<float> eigenvalues;         ///< optional [K]: SeFa eigenvalues / PCA variances
    std::vector<float> explained_variance;  ///< optional [K]: PCA explained-variance ratios
    std::vector<float> mean;                ///< optional [dim]: mean code (GANSpace)
    std::string method;                     ///< "sefa", "ganspace", "interfacegan", ...
    EditSpace space = EditSpace::w;
    LayerRange layers;                      ///< w indices the directions are meant for
    std::map<std::string, std::string> info;  ///< further metadata, stored as-is

    Index count() const { return directions.rank() == 2 ? directions.dim(0) : 0; }
    Index dim() const { return directions.rank() == 2 ? directions.dim(1) : 0; }
    std::span<const float> row(Index k) const {
        GANINV_CHECK(k >= 0 && k < count(), ValueError, "direction index ", k, " outside [0, ", count(), ")");
        return {directions.data() + k * dim(), static_cast<std::size_t>(dim())};
    }
    /// Step size for "alpha standard deviations along direction k": stddev[k] when known, else 1.
    float sigma(Index k) const {
        return stddev.empty() ? 1.0f : stddev.at(static_cast<std::size_t>(k));
    }
};

/// Writes tensors "directions" [K, dim] and, where present, "stddev", "eigenvalues",
/// "explained_variance_ratio" [K] and "mean" [dim]; metadata method, space, layers ("a:b").
inline void save_directions(const std::filesystem::path& path, const Directions& d) {
    GANINV_CHECK(d.count() > 0, ShapeError, "save_directions: expected directions of shape [K, dim], got ",
                 shape_to_string(d.directions.shape()));
    SafetensorsWriter w;
    w.add("directions", d.directions);
    auto add_vec = [&](const char* name, const std::vector<float>& v, Index n) {
        if (v.empty()) return;
        GANINV_CHECK(static_cast<Index>(v.size()) == n, ShapeError, "save_directions: '", name, "' has ", v.size(),
                     " values, expected ", n);
        w.add(name, {n}, v);
    };
    add_vec("stddev", d.stddev, d.count());
    add_vec("eigenvalues", d.eigenvalues, d.count());
    add_vec("explained_variance_ratio", d.explained_variance, d.count());
    add_vec("mean", d.mean, d.dim());
    for (const auto& [k, v] : d.info) w.set_metadata(k, v);
    w.set_metadata("method", d.method);
    w.set_metadata("space", to_string(d.space));
    w.set_metadata("layers", d.layers.str());
    w.write(path);
}

inline Directions load_directions(const std::filesystem::path& path) {
    const SafetensorsFile f(path);
    Directions d;
    d.directions = f.load("directions");
    GANINV_CHECK(d.directions.rank() == 2 && d.directions.numel() > 0, ShapeError, "'", path.string(),
                 "': 'directions' must be [K, dim], got ", shape_to_string(d.directions.shape()));
    auto load_vec = [&](const char* name, std::vector<float>& dst, Index n) {
        if (!f.contains(name)) return;
        const Tensor<float> t = f.load(name, {n});
        dst.assign(t.values().begin(), t.values().end());
    };
    load_vec("stddev", d.stddev, d.count());
    load_vec("eigenvalues", d.eigenvalues, d.count());
    load_vec("explained_variance_ratio", d.explained_variance, d.count());
    load_vec("mean", d.mean, d.dim());
    for (const auto& [k, v] : f.metadata()) {
        if (k == "method") d.method = v;
        else if (k == "space") d.space = parse_edit_space(v);
        else if (k == "layers") d.layers = parse_layer_range(v);
        else d.info[k] = v;
    }
    return d;
}

namespace detail {

/// Checks ws is [N, num_ws, w_dim] (num_ws, w_dim > 0) and returns {N, num_ws, w_dim}.
inline std::array<Index, 3> ws_shape(const Tensor<float>& ws, const char* what) {
    GANINV_CHECK(ws.rank() == 3 && ws.numel() > 0, ShapeError, what, ": expected ws of shape [N, num_ws, w_dim], got ",
                 shape_to_string(ws.shape()));
    return {ws.dim(0), ws.dim(1), ws.dim(2)};
}

}  // namespace detail

/// ws + alpha * direction on the w indices of `layers` (the rest untouched); ws [N, num_ws,
/// w_dim], direction [w_dim] (need not be unit length: alpha multiplies it as given).
inline Tensor<float> apply_direction(const Tensor<float>& ws, std::span<const float> direction, float alpha,
                                     LayerRange layers = LayerRange::all()) {
    const auto [n, num_ws, w_dim] = detail::ws_shape(ws, "apply_direction");
    GANINV_CHECK(static_cast<Index>(direction.size()) == w_dim, ShapeError, "apply_direction: direction has ",
                 direction.size(), " values but ws has w_dim = ", w_dim);
    GANINV_CHECK(std::isfinite(alpha), ValueError, "apply_direction: alpha must be finite, got ", alpha);
    const LayerRange r = layers.resolved(num_ws, "apply_direction: layer range");
    Tensor<float> out = ws;
    for (Index b = 0; b < n; ++b)
        for (Index l = r.begin; l < r.end; ++l) {
            float* w = out.data() + (b * num_ws + l) * w_dim;
            for (Index i = 0; i < w_dim; ++i) w[i] += alpha * direction[static_cast<std::size_t>(i)];
        }
    return out;
}

/// Moves along direction k of `d` by `sigmas` standard deviations (d.sigma(k)) on d.layers.
inline Tensor<float> apply_direction(const Tensor<float>& ws, const Directions& d, Index k, float sigmas) {
    GANINV_CHECK(d.space == EditSpace::w || d.space == EditSpace::wplus, ValueError,
                 "apply_direction: directions of space '", to_string(d.space), "' do not act on ws");
    return apply_direction(ws, d.row(k), sigmas * d.sigma(k), d.layers);
}

/// styles + alpha * direction, styles [N, style_dim], direction [style_dim] (S-space edits).
inline Tensor<float> apply_style_direction(const Tensor<float>& styles, std::span<const float> direction,
                                           float alpha) {
    GANINV_CHECK(styles.rank() == 2 && styles.numel() > 0, ShapeError,
                 "apply_style_direction: expected styles of shape [N, style_dim], got ",
                 shape_to_string(styles.shape()));
    GANINV_CHECK(static_cast<Index>(direction.size()) == styles.dim(1), ShapeError,
                 "apply_style_direction: direction has ", direction.size(), " values but style_dim = ",
                 styles.dim(1));
    Tensor<float> out = styles;
    for (Index b = 0; b < styles.dim(0); ++b)
        for (Index i = 0; i < styles.dim(1); ++i)
            out[b * styles.dim(1) + i] += alpha * direction[static_cast<std::size_t>(i)];
    return out;
}

/// Style mixing: w indices [begin, end) taken from ws_b, every other index from ws_a. Both are
/// [N, num_ws, w_dim]; ws_b may also hold a single code (N = 1) that is used for every sample.
/// Low indices carry coarse attributes (pose, shape), high ones fine ones (colour, texture).
inline Tensor<float> mix_styles(const Tensor<float>& ws_a, const Tensor<float>& ws_b, Index begin, Index end) {
    const auto [n, num_ws, w_dim] = detail::ws_shape(ws_a, "mix_styles: ws_a");
    const auto [nb, num_ws_b, w_dim_b] = detail::ws_shape(ws_b, "mix_styles: ws_b");
    GANINV_CHECK(num_ws_b == num_ws && w_dim_b == w_dim && (nb == n || nb == 1), ShapeError,
                 "mix_styles: ws_b has shape ", shape_to_string(ws_b.shape()), ", expected [", n, " or 1, ", num_ws,
                 ", ", w_dim, "] like ws_a");
    const LayerRange r = LayerRange{begin, end}.resolved(num_ws, "mix_styles: layer range");
    Tensor<float> out = ws_a;
    for (Index b = 0; b < n; ++b) {
        const float* src = ws_b.data() + (nb == 1 ? 0 : b) * num_ws * w_dim;
        for (Index l = r.begin; l < r.end; ++l)
            std::copy(src + l * w_dim, src + (l + 1) * w_dim, out.data() + (b * num_ws + l) * w_dim);
    }
    return out;
}

/// Makes a vector's sign deterministic: the entry of largest magnitude becomes positive.
/// Eigen-solvers return +-v at random; fixing the sign keeps saved directions reproducible.
inline void canonical_sign(std::span<double> v) {
    std::size_t arg = 0;
    for (std::size_t i = 1; i < v.size(); ++i)
        if (std::fabs(v[i]) > std::fabs(v[arg])) arg = i;
    if (!v.empty() && v[arg] < 0)
        for (double& x : v) x = -x;
}

}  // namespace ganinv::edit
