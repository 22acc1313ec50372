/// @file interpolate.hpp
/// @brief Interpolation between latent codes: linear in W, W+ and S (those spaces are where
///        StyleGAN's path lengths are short, Karras et al. 2019/2020), spherical in Z (z is
///        Gaussian: its mass lies near a sphere, and the mapping network normalises z first, so
///        only the direction matters; a straight line would cut through the improbable centre),
///        and paths through several key codes with a given number of frames.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/edit/directions.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <span>
#include <vector>

namespace ganinv::edit {

/// (1 - t) a + t b elementwise; t = 0 and t = 1 return a and b exactly.
inline Tensor<float> lerp(const Tensor<float>& a, const Tensor<float>& b, double t) {
    GANINV_CHECK(a.shape() == b.shape(), ShapeError, "lerp: codes of shapes ", shape_to_string(a.shape()), " and ",
                 shape_to_string(b.shape()), " differ");
    GANINV_CHECK(std::isfinite(t), ValueError, "lerp: t must be finite");
    if (t == 0.0) return a;
    if (t == 1.0) return b;
    Tensor<float> out(a.shape());
    for (Index i = 0; i < a.numel(); ++i)
        out[i] = static_cast<float>((1.0 - t) * static_cast<double>(a[i]) + t * static_cast<double>(b[i]));
    return out;
}

/// Spherical interpolation of two vectors: the direction moves along the great circle from
/// a/|a| to b/|b| at constant angular speed, the length goes linearly from |a| to |b| (so two
/// codes of equal norm stay on their sphere). Nearly parallel vectors (angle < 1e-4 rad) fall
/// back to normalised linear interpolation, where sin(theta) would lose all precision; exactly
/// opposite ones turn through a fixed, deterministic perpendicular.
inline void slerp_vector(std::span<const float> a, std::span<const float> b, double t, std::span<float> out) {
    GANINV_CHECK(a.size() == b.size() && out.size() == a.size() && !a.empty(), ShapeError,
                 "slerp: vectors of sizes ", a.size(), " and ", b.size(), " (output ", out.size(), ")");
    GANINV_CHECK(std::isfinite(t), ValueError, "slerp: t must be finite");
    const std::size_t n = a.size();
    if (t == 0.0 || t == 1.0) {
        std::copy_n((t == 0.0 ? a : b).begin(), n, out.begin());
        return;
    }
    double na = 0, nb = 0, dot = 0;
    for (std::size_t i = 0; i < n; ++i) {
        na += static_cast<double>(a[i]) * a[i];
        nb += static_cast<double>(b[i]) * b[i];
        dot += static_cast<double>(a[i]) * b[i];
    }
    na = std::sqrt(na);
    nb = std::sqrt(nb);
    if (na == 0.0 || nb == 0.0) {  // no direction to follow: plain lerp
        for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>((1 - t) * a[i] + t * b[i]);
        return;
    }
    const double cos_theta = std::clamp(dot / (na * nb), -1.0, 1.0);
    const double theta = std::acos(cos_theta);
    const double length = (1 - t) * na + t * nb;
    std::vector<double> dir(n);
    if (theta < 1e-4) {
        double norm = 0;
        for (std::size_t i = 0; i < n; ++i) {
            dir[i] = (1 - t) * a[i] / na + t * b[i] / nb;
            norm += dir[i] * dir[i];
        }
        norm = std::sqrt(norm);
        for (double& v : dir) v /= norm;
    } else if (std::numbers::pi - theta < 1e-6) {
        // Antipodal: every great circle joins them. Take the one through the basis vector least
        // aligned with a, made orthogonal to a (deterministic, and well conditioned).
        std::size_t j = 0;
        for (std::size_t i = 1; i < n; ++i)
            if (std::fabs(a[i]) < std::fabs(a[j])) j = i;
        std::vector<double> p(n, 0.0);
        p[j] = 1.0;
        const double proj = a[j] / na;
        double pn = 0;
        for (std::size_t i = 0; i < n; ++i) {
            p[i] -= proj * a[i] / na;
            pn += p[i] * p[i];
        }
        pn = std::sqrt(pn);
        GANINV_CHECK(pn > 0, ValueError, "slerp: cannot interpolate antipodal one-dimensional vectors");
        const double phi = t * std::numbers::pi;
        for (std::size_t i = 0; i < n; ++i) dir[i] = std::cos(phi) * a[i] / na + std::sin(phi) * p[i] / pn;
    } else {
        const double s = std::sin(theta), wa = std::sin((1 - t) * theta) / s, wb = std::sin(t * theta) / s;
        for (std::size_t i = 0; i < n; ++i) dir[i] = wa * a[i] / na + wb * b[i] / nb;
    }
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(length * dir[i]);
}

/// Row-wise slerp over the last dimension: z [N, z_dim] gives N independent interpolations.
inline Tensor<float> slerp(const Tensor<float>& a, const Tensor<float>& b, double t) {
    GANINV_CHECK(a.shape() == b.shape() && a.rank() >= 1 && a.numel() > 0, ShapeError, "slerp: codes of shapes ",
                 shape_to_string(a.shape()), " and ", shape_to_string(b.shape()), " must be equal and non-empty");
    const Index row = a.shape().back();
    Tensor<float> out(a.shape());
    for (Index r = 0; r < a.numel() / row; ++r) {
        const auto off = static_cast<std::size_t>(r * row), len = static_cast<std::size_t>(row);
        slerp_vector(a.values().subspan(off, len), b.values().subspan(off, len), t, out.values().subspan(off, len));
    }
    return out;
}

/// The interpolation each space calls for: slerp in Z, lerp in W, W+ and S.
inline Tensor<float> interpolate(const Tensor<float>& a, const Tensor<float>& b, double t, EditSpace space) {
    return space == EditSpace::z ? slerp(a, b, t) : lerp(a, b, t);
}

/// `frames` evenly spaced codes along the path through `keys` (all of one shape; the path
/// spends the same number of frames on every segment, first and last frame = first and last
/// key). A key of shape [1, ...] gives frames of shape [frames, ...]; any other key shape S
/// gives [frames, S...].
inline Tensor<float> interpolate_path(const std::vector<Tensor<float>>& keys, Index frames, EditSpace space) {
    GANINV_CHECK(keys.size() >= 2, ValueError, "interpolate_path: need at least 2 key codes, got ", keys.size());
    GANINV_CHECK(frames >= 2, ValueError, "interpolate_path: frames must be >= 2, got ", frames);
    for (std::size_t k = 1; k < keys.size(); ++k)
        GANINV_CHECK(keys[k].shape() == keys[0].shape(), ShapeError, "interpolate_path: key ", k, " has shape ",
                     shape_to_string(keys[k].shape()), ", key 0 has ", shape_to_string(keys[0].shape()));
    GANINV_CHECK(keys[0].numel() > 0, ShapeError, "interpolate_path: empty key codes");
    Shape frame_shape = keys[0].shape();
    if (frame_shape.size() >= 2 && frame_shape[0] == 1) frame_shape.erase(frame_shape.begin());
    Shape out_shape{frames};
    out_shape.insert(out_shape.end(), frame_shape.begin(), frame_shape.end());
    Tensor<float> out(out_shape);
    const Index per = keys[0].numel();
    const Index segments = static_cast<Index>(keys.size()) - 1;
    for (Index f = 0; f < frames; ++f) {
        // u runs over [0, segments]; integer u lands exactly on a key.
        const double u = static_cast<double>(f) * static_cast<double>(segments) / static_cast<double>(frames - 1);
        const Index s = std::min(static_cast<Index>(std::floor(u)), segments - 1);
        const double t = u - static_cast<double>(s);
        const Tensor<float> code = interpolate(keys[static_cast<std::size_t>(s)], keys[static_cast<std::size_t>(s + 1)], t, space);
        std::copy(code.values().begin(), code.values().end(), out.data() + f * per);
    }
    return out;
}

}  // namespace ganinv::edit
