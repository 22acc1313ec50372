/// @file prelu.hpp
/// @brief PReLU with one learned slope per channel (He et al. 2015; PyTorch's PReLU(num_parameters
///        = C)), forward and backward on NCHW activations. pSp's residual units use it.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"

#include <vector>

namespace ganinv::nn {

/// y = x if x > 0 else alpha[c] * x, on x [batch, channels, spatial]. y may alias x.
inline void prelu_forward(const float* x, const float* alpha, Index batch, Index channels, Index spatial, float* y) {
    GANINV_CHECK(batch >= 1 && channels >= 1 && spatial >= 1, ShapeError, "prelu: empty input (batch ", batch,
                 ", channels ", channels, ", spatial ", spatial, ")");
#pragma omp parallel for schedule(static) if (batch * channels * spatial > (Index{1} << 18))
    for (Index nc = 0; nc < batch * channels; ++nc) {
        const float a = alpha[nc % channels];
        const float* xr = x + nc * spatial;
        float* yr = y + nc * spatial;
        for (Index i = 0; i < spatial; ++i) yr[i] = xr[i] > 0.0f ? xr[i] : a * xr[i];
    }
}

/// Backward given the forward's input x. grad_x is overwritten (may alias grad_y, may be null);
/// grad_alpha accumulates sum(dy * x) over the non-positive inputs of each channel (may be null).
inline void prelu_backward(const float* x, const float* alpha, const float* grad_y, Index batch, Index channels,
                           Index spatial, float* grad_x, float* grad_alpha) {
    std::vector<double> acc(static_cast<std::size_t>(batch * channels), 0.0);
#pragma omp parallel for schedule(static) if (batch * channels * spatial > (Index{1} << 18))
    for (Index nc = 0; nc < batch * channels; ++nc) {
        const float a = alpha[nc % channels];
        const float* xr = x + nc * spatial;
        const float* gr = grad_y + nc * spatial;
        double s = 0.0;
        for (Index i = 0; i < spatial; ++i) {
            const bool pos = xr[i] > 0.0f;
            if (!pos) s += static_cast<double>(gr[i]) * xr[i];
            if (grad_x) grad_x[nc * spatial + i] = pos ? gr[i] : a * gr[i];
        }
        acc[static_cast<std::size_t>(nc)] = s;
    }
    if (grad_alpha)
        for (Index nc = 0; nc < batch * channels; ++nc) grad_alpha[nc % channels] += static_cast<float>(acc[static_cast<std::size_t>(nc)]);
}

}  // namespace ganinv::nn
