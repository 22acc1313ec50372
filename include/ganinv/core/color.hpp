/// @file color.hpp
/// @brief BT.601 luma weights, shared by the RGB->gray degradation of the losses on both backends
///        (backend/cpu_buffer_ops.hpp, cuda/buffer_kernels.cuh) so the two cannot drift apart.
#pragma once

namespace ganinv {

/// BT.601 luma weights (io/image_ops.hpp's to_channels uses the same numbers).
struct LumaWeights {
    static constexpr float r = 0.299f, g = 0.587f, b = 0.114f;
};

}  // namespace ganinv
