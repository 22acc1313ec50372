/// @file vgg_input.hpp
/// @brief The input stage shared by the VGG-based losses, forward and adjoint: optional area
///        down-sampling (the official projector shrinks images larger than 256 to 256 before
///        VGG), gray -> RGB replication, then the per-channel affine map (x - shift) / scale
///        (LPIPS' ScalingLayer, or [-1, 1] -> ImageNet normalisation).
#pragma once

#include "ganinv/loss/detail/common.hpp"
#include "ganinv/nn/resample.hpp"

#include <algorithm>
#include <array>

namespace ganinv::detail {

class VggInput {
public:
    VggInput() = default;
    VggInput(std::array<float, 3> shift, std::array<float, 3> scale, Index max_size)
        : shift_(shift), scale_(scale), max_size_(max_size) {}

    /// [N, 1 or 3, H, W] in [-1, 1] -> [N, 3, H', W'] trunk input (H' = min(H, max_size) when
    /// max_size > 0). Remembers the geometry for backward.
    Tensor<float> forward(const Tensor<float>& x) {
        channels_ = x.dim(1);
        in_h_ = x.dim(2);
        in_w_ = x.dim(3);
        const Index oh = max_size_ > 0 ? std::min(in_h_, max_size_) : in_h_;
        const Index ow = max_size_ > 0 ? std::min(in_w_, max_size_) : in_w_;
        resample_ = oh != in_h_ || ow != in_w_;
        if (resample_) resampler_ = nn::Resampler(in_h_, in_w_, oh, ow);
        Tensor<float> y = gray_to_rgb(resample_ ? resampler_.forward(x) : x);
        const Index N = y.dim(0), HW = y.dim(2) * y.dim(3);
        for (Index n = 0; n < N; ++n)
            for (Index c = 0; c < 3; ++c) {
                float* p = y.data() + (n * 3 + c) * HW;
                for (Index i = 0; i < HW; ++i) p[i] = (p[i] - shift_[c]) / scale_[c];
            }
        return y;
    }

    /// Adjoint of the last forward: dL/dtrunk_input -> dL/dx.
    Tensor<float> backward(Tensor<float> g) const {
        const Index N = g.dim(0), HW = g.dim(2) * g.dim(3);
        for (Index n = 0; n < N; ++n)
            for (Index c = 0; c < 3; ++c) {
                float* p = g.data() + (n * 3 + c) * HW;
                for (Index i = 0; i < HW; ++i) p[i] /= scale_[c];
            }
        g = gray_to_rgb_backward(std::move(g), channels_);
        return resample_ ? resampler_.backward(g) : g;
    }

private:
    std::array<float, 3> shift_{}, scale_{1.0f, 1.0f, 1.0f};
    Index max_size_ = 0;
    Index channels_ = 3, in_h_ = 0, in_w_ = 0;
    bool resample_ = false;
    nn::Resampler resampler_;
};

}  // namespace ganinv::detail
