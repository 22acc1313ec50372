/// @file linear.hpp
/// @brief StyleGAN2's fully connected layer on the CPU (equalised learning rate: the stored
///        weight is scaled by weight_gain = lr_multiplier / sqrt(in) and the bias by lr_multiplier
///        at run time), forward and backward through Eigen GEMMs.
#pragma once

#include "ganinv/nn/bias_act.hpp"
#include "ganinv/nn/linear_params.hpp"

#include "ganinv/core/eigen.hpp"

#include <cmath>
#include <vector>

namespace ganinv::nn {



using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMap = Eigen::Map<RowMatrix>;
using ConstRowMap = Eigen::Map<const RowMatrix>;

/// y[N, out] = act(x[N, in] W[out, in]^T * wg + b * bg). `bias` may be null.
inline void linear_forward(const float* x, Index n, const float* weight, const float* bias, const LinearParams& p,
                           float* y) {
    ConstRowMap X(x, n, p.in);
    ConstRowMap W(weight, p.out, p.in);
    RowMap Y(y, n, p.out);
    Y.noalias() = (X * W.transpose()) * p.weight_gain;
    std::vector<float> b(static_cast<std::size_t>(p.out), 0.0f);
    if (bias)
        for (Index o = 0; o < p.out; ++o) b[static_cast<std::size_t>(o)] = bias[o] * p.bias_gain;
    bias_act_forward(y, n, p.out, 1, b.data(), p.act);
}

/// Backward given the forward output y. grad_x is overwritten (may be null); grad_weight and
/// grad_bias accumulate into the stored (unscaled) parameters (may be null). grad_y is consumed
/// as scratch.
inline void linear_backward(const float* x, Index n, const float* weight, const float* y, float* grad_y,
                            const LinearParams& p, float* grad_x, float* grad_weight, float* grad_bias) {
    std::vector<float> gb(static_cast<std::size_t>(p.out), 0.0f);
    bias_act_backward(y, grad_y, n, p.out, 1, p.act, grad_y, gb.data());
    if (grad_bias)
        for (Index o = 0; o < p.out; ++o) grad_bias[o] += gb[static_cast<std::size_t>(o)] * p.bias_gain;
    ConstRowMap G(grad_y, n, p.out);
    if (grad_x) {
        ConstRowMap W(weight, p.out, p.in);
        RowMap GX(grad_x, n, p.in);
        GX.noalias() = (G * W) * p.weight_gain;
    }
    if (grad_weight) {
        ConstRowMap X(x, n, p.in);
        RowMap GW(grad_weight, p.out, p.in);
        GW.noalias() += (G.transpose() * X) * p.weight_gain;
    }
}

}  // namespace ganinv::nn
