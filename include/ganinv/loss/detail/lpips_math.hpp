/// @file lpips_math.hpp
/// @brief LPIPS' per-position math, written once for the Cpu loops (loss/lpips.hpp) and the
///        CUDA kernels (loss/detail/heads_cuda.cuh): channel unit-normalisation, and the weighted
///        squared distance of normalised features with its gradient w.r.t. the raw features.
///        Channel c of a position sits at x[c * stride] (NCHW: stride = H * W).
#pragma once

#include "ganinv/core/host_device.hpp"

#include <cmath>

namespace ganinv::detail {

/// LPIPS' normalize_tensor adds eps outside the square root.
inline constexpr float kLpipsEps = 1e-10f;

/// x <- x / (||x|| + eps) over the channels (sum of squares in double).
GANINV_HOST_DEVICE inline void lpips_normalize_position(float* x, long long channels, long long stride) {
    double ss = 0.0;
    for (long long c = 0; c < channels; ++c) ss += static_cast<double>(x[c * stride]) * x[c * stride];
    const float inv = 1.0f / (static_cast<float>(sqrt(ss)) + kLpipsEps);
    for (long long c = 0; c < channels; ++c) x[c * stride] *= inv;
}

/// d = sum_c w_c (x_c / (||x|| + eps) - t_c)^2 for raw pred features x and normalised target
/// features t. g (nullable) receives dd/dx / positions. Where ||x|| = 0 (all ReLU outputs 0,
/// masked in the backward anyway) g is 0.
GANINV_HOST_DEVICE inline double lpips_position(const float* x, const float* t, const float* w, long long channels,
                                                long long stride, float* g, double positions) {
    double ss = 0.0;
    for (long long c = 0; c < channels; ++c) ss += static_cast<double>(x[c * stride]) * x[c * stride];
    const float r = static_cast<float>(sqrt(ss));
    const float inv = 1.0f / (r + kLpipsEps);
    double d = 0.0, ax = 0.0;
    for (long long c = 0; c < channels; ++c) {
        const double diff = static_cast<double>(x[c * stride] * inv) - t[c * stride];
        d += w[c] * diff * diff;
        ax += 2.0 * w[c] * diff * x[c * stride];
    }
    if (!g) return d;
    if (r == 0.0f) {
        for (long long c = 0; c < channels; ++c) g[c * stride] = 0.0f;
        return d;
    }
    // n = x / (r + eps)  =>  dx_c = a_c / (r + eps) - x_c (a . x) / (r (r + eps)^2), a_c = 2 w_c diff_c
    const double rr = static_cast<double>(r) + kLpipsEps;
    const double k2 = ax / (static_cast<double>(r) * rr * rr);
    for (long long c = 0; c < channels; ++c) {
        const double diff = static_cast<double>(x[c * stride] * inv) - t[c * stride];
        g[c * stride] = static_cast<float>((2.0 * w[c] * diff / rr - x[c * stride] * k2) / positions);
    }
    return d;
}

}  // namespace ganinv::detail
