/// @file style_blocks.hpp
/// @brief Descriptions of the per-layer pieces of StyleGAN2's style vector, so that a backend can
///        handle all layers in one call: the affines that map ws to styles, and column blocks
///        (one layer's slice of a [rows, cols] matrix). Plain pointers: CUDA code uses them too.
#pragma once

#include "ganinv/core/tensor.hpp"

namespace ganinv::nn {

/// One layer's affine: styles[:, offset : offset + channels] =
///   ws[:, w_index, :] weight^T * weight_gain + bias * bias_gain   (weight [channels, w_dim]).
/// For the backward, grad_weight / grad_bias (may be null) accumulate the parameter gradients.
struct StyleAffine {
    const float* weight = nullptr;
    const float* bias = nullptr;
    Index w_index = 0, offset = 0, channels = 0;
    float weight_gain = 1.0f, bias_gain = 1.0f;
    float* grad_weight = nullptr;
    float* grad_bias = nullptr;
};

/// Columns [offset, offset + cols) of a row-major matrix, times `scale`, and the [rows, cols]
/// buffer `data` they are gathered into or scattered (added) from.
struct ColumnBlock {
    Index offset = 0, cols = 0;
    float scale = 1.0f;
    float* data = nullptr;
};

}  // namespace ganinv::nn
