/// @file global_pool.hpp
/// @brief Global average pooling ([N, C, H, W] -> [N, C]) and nearest-neighbour 2x up-sampling
///        (a feature pyramid's top-down path), forward and backward: the two fixed, parameter-free
///        reshapes of the encoders' feature maps.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"

#include <algorithm>

namespace ganinv::nn {

/// y[p] = mean of plane p (planes = N * C, each `spatial` values); accumulated in double.
inline void global_avg_pool_forward(const float* x, Index planes, Index spatial, float* y) {
    GANINV_CHECK(planes >= 1 && spatial >= 1, ShapeError, "global_avg_pool: empty input (", planes, " planes of ",
                 spatial, " values)");
    for (Index p = 0; p < planes; ++p) {
        double s = 0.0;
        for (Index i = 0; i < spatial; ++i) s += x[p * spatial + i];
        y[p] = static_cast<float>(s / static_cast<double>(spatial));
    }
}

/// grad_x (overwritten): every value of plane p gets grad_y[p] / spatial.
inline void global_avg_pool_backward(const float* grad_y, Index planes, Index spatial, float* grad_x) {
    const float inv = 1.0f / static_cast<float>(spatial);
    for (Index p = 0; p < planes; ++p) std::fill(grad_x + p * spatial, grad_x + (p + 1) * spatial, grad_y[p] * inv);
}

/// y[p, 2i + a, 2j + b] = x[p, i, j] (a, b in {0, 1}); y is [planes, 2h, 2w]. With `accumulate`
/// the result is added to y (the pyramid's lateral + top-down sum in one pass).
inline void upsample_nearest2x_forward(const float* x, Index planes, Index h, Index w, float* y, bool accumulate) {
    GANINV_CHECK(planes >= 1 && h >= 1 && w >= 1, ShapeError, "upsample_nearest2x: empty input");
    const Index W2 = 2 * w;
    for (Index p = 0; p < planes; ++p)
        for (Index i = 0; i < 2 * h; ++i)
            for (Index j = 0; j < W2; ++j) {
                const float v = x[(p * h + i / 2) * w + j / 2];
                float& dst = y[(p * 2 * h + i) * W2 + j];
                dst = accumulate ? dst + v : v;
            }
}

/// Adjoint: grad_x[p, i, j] (overwritten) = sum of the 2x2 block of grad_y it was copied to.
inline void upsample_nearest2x_backward(const float* grad_y, Index planes, Index h, Index w, float* grad_x) {
    const Index W2 = 2 * w;
    for (Index p = 0; p < planes; ++p)
        for (Index i = 0; i < h; ++i)
            for (Index j = 0; j < w; ++j) {
                const float* g = grad_y + (p * 2 * h + 2 * i) * W2 + 2 * j;
                grad_x[(p * h + i) * w + j] = g[0] + g[1] + g[W2] + g[W2 + 1];
            }
}

}  // namespace ganinv::nn
