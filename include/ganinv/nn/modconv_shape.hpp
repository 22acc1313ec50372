/// @file modconv_shape.hpp
/// @brief Geometry of one modulated convolution (no Eigen: CUDA code uses it too), including the
///        padding bookkeeping of the official up-sampling path (stride-2 transposed conv + FIR).
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/nn/upfirdn2d.hpp"

namespace ganinv::nn {

struct ModConvShape {
    Index batch = 1, in_channels = 0, out_channels = 0, in_h = 0, in_w = 0;
    Index kernel = 3;
    int up = 1;                 ///< 1 or 2
    bool demodulate = true;
    Index filter_size = 4;      ///< resample filter taps (up == 2 only)

    Index padding() const { return kernel / 2; }
    Index out_h() const { return in_h * up; }
    Index out_w() const { return in_w * up; }

    void validate() const {
        GANINV_CHECK(batch >= 1 && in_channels >= 1 && out_channels >= 1 && in_h >= 1 && in_w >= 1, ShapeError,
                     "modulated conv: empty shape");
        GANINV_CHECK(kernel % 2 == 1, ValueError, "modulated conv: kernel size must be odd, got ", kernel);
        GANINV_CHECK(up == 1 || up == 2, ValueError, "modulated conv: up must be 1 or 2, got ", up);
        if (up == 2) {
            GANINV_CHECK(transposed_filter_pad0() >= 0 && transposed_filter_pad1() >= 0, ValueError,
                         "modulated conv: kernel ", kernel, " with a ", filter_size,
                         "-tap filter is not a supported up-sampling combination");
        }
    }

    /// Padding of the FIR pass after the transposed conv (conv2d_resample's bookkeeping).
    int transposed_filter_pad0() const {
        return static_cast<int>(padding() + (filter_size + up - 1) / 2 - (kernel - 1));
    }
    int transposed_filter_pad1() const { return static_cast<int>(padding() + (filter_size - up) / 2 - (kernel - up)); }
    Index transposed_h() const { return (in_h - 1) * up + kernel; }
    Index transposed_w() const { return (in_w - 1) * up + kernel; }

    Upfirdn2dParams fir_params() const {
        Upfirdn2dParams p;
        p.pad_x0 = p.pad_y0 = transposed_filter_pad0();
        p.pad_x1 = p.pad_y1 = transposed_filter_pad1();
        p.gain = static_cast<float>(up * up);
        return p;
    }
};

}  // namespace ganinv::nn
