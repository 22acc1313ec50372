/// @file linear_params.hpp
/// @brief Geometry and gains of StyleGAN2's fully connected layer (no Eigen: CUDA code uses it too).
#pragma once

#include "ganinv/core/tensor.hpp"
#include "ganinv/nn/bias_act.hpp"

#include <cmath>

namespace ganinv::nn {

struct LinearParams {
    Index in = 0, out = 0;
    float weight_gain = 1.0f;
    float bias_gain = 1.0f;
    BiasActParams act = BiasActParams::linear();

    static LinearParams make(Index in, Index out, float lr_multiplier, Activation a) {
        LinearParams p;
        p.in = in;
        p.out = out;
        p.weight_gain = lr_multiplier / std::sqrt(static_cast<float>(in));
        p.bias_gain = lr_multiplier;
        p.act = a == Activation::lrelu ? BiasActParams::lrelu() : BiasActParams::linear();
        return p;
    }
};

}  // namespace ganinv::nn
