/// @file pooling.hpp
/// @brief Max and average pooling on the CPU ('valid' windows: no padding, floor of the output
///        size, as PyTorch's MaxPool2d/AvgPool2d with ceil_mode = False and TF's 'valid'),
///        forward and backward. VGG16 uses 2x2/2 max pools; the face ResNet a 3x3/2 max pool and
///        2x2/2 average pools on its shortcuts.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace ganinv::nn {

struct Pool2dShape {
    Index planes = 0;  ///< N * C: every plane is pooled independently
    Index in_h = 0, in_w = 0;
    Index kernel = 2, stride = 2;

    Index out_h() const { return (in_h - kernel) / stride + 1; }
    Index out_w() const { return (in_w - kernel) / stride + 1; }

    void validate(const char* what) const {
        GANINV_CHECK(kernel >= 1 && stride >= 1, ValueError, what, ": kernel and stride must be positive (", kernel,
                     ", ", stride, ")");
        GANINV_CHECK(in_h >= kernel && in_w >= kernel, ShapeError, what, ": input ", in_h, "x", in_w,
                     " is smaller than the ", kernel, "x", kernel, " window");
    }
};

/// y = max over each window. argmax (nullable) receives the winning input index within its plane;
/// ties go to the first element in row-major order, as in PyTorch's CPU kernel.
inline void max_pool2d_forward(const float* x, const Pool2dShape& s, float* y, std::int32_t* argmax) {
    s.validate("max_pool2d");
    const Index OH = s.out_h(), OW = s.out_w(), HW = s.in_h * s.in_w;
#pragma omp parallel for schedule(static) if (s.planes * OH * OW > 65536)
    for (Index p = 0; p < s.planes; ++p) {
        const float* xp = x + p * HW;
        for (Index oy = 0; oy < OH; ++oy)
            for (Index ox = 0; ox < OW; ++ox) {
                Index best = oy * s.stride * s.in_w + ox * s.stride;
                float v = xp[best];
                for (Index ky = 0; ky < s.kernel; ++ky)
                    for (Index kx = 0; kx < s.kernel; ++kx) {
                        const Index idx = (oy * s.stride + ky) * s.in_w + ox * s.stride + kx;
                        if (xp[idx] > v) {
                            v = xp[idx];
                            best = idx;
                        }
                    }
                y[(p * OH + oy) * OW + ox] = v;
                if (argmax) argmax[(p * OH + oy) * OW + ox] = static_cast<std::int32_t>(best);
            }
    }
}

/// grad_x (overwritten) receives each output gradient at its window's argmax.
inline void max_pool2d_backward(const float* grad_y, const std::int32_t* argmax, const Pool2dShape& s, float* grad_x) {
    const Index OHW = s.out_h() * s.out_w(), HW = s.in_h * s.in_w;
    std::fill(grad_x, grad_x + s.planes * HW, 0.0f);
#pragma omp parallel for schedule(static) if (s.planes * OHW > 65536)
    for (Index p = 0; p < s.planes; ++p)
        for (Index i = 0; i < OHW; ++i) grad_x[p * HW + argmax[p * OHW + i]] += grad_y[p * OHW + i];
}

/// y = mean over each window (always divided by kernel^2: valid windows have no padding).
inline void avg_pool2d_forward(const float* x, const Pool2dShape& s, float* y) {
    s.validate("avg_pool2d");
    const Index OH = s.out_h(), OW = s.out_w(), HW = s.in_h * s.in_w;
    const float inv = 1.0f / static_cast<float>(s.kernel * s.kernel);
    for (Index p = 0; p < s.planes; ++p) {
        const float* xp = x + p * HW;
        for (Index oy = 0; oy < OH; ++oy)
            for (Index ox = 0; ox < OW; ++ox) {
                float acc = 0.0f;
                for (Index ky = 0; ky < s.kernel; ++ky)
                    for (Index kx = 0; kx < s.kernel; ++kx) acc += xp[(oy * s.stride + ky) * s.in_w + ox * s.stride + kx];
                y[(p * OH + oy) * OW + ox] = acc * inv;
            }
    }
}

/// grad_x (overwritten): every input in a window gets grad / kernel^2; inputs no window reads get 0.
inline void avg_pool2d_backward(const float* grad_y, const Pool2dShape& s, float* grad_x) {
    const Index OH = s.out_h(), OW = s.out_w(), HW = s.in_h * s.in_w;
    const float inv = 1.0f / static_cast<float>(s.kernel * s.kernel);
    std::fill(grad_x, grad_x + s.planes * HW, 0.0f);
    for (Index p = 0; p < s.planes; ++p) {
        float* gp = grad_x + p * HW;
        for (Index oy = 0; oy < OH; ++oy)
            for (Index ox = 0; ox < OW; ++ox) {
                const float g = grad_y[(p * OH + oy) * OW + ox] * inv;
                for (Index ky = 0; ky < s.kernel; ++ky)
                    for (Index kx = 0; kx < s.kernel; ++kx) gp[(oy * s.stride + ky) * s.in_w + ox * s.stride + kx] += g;
            }
    }
}

}  // namespace ganinv::nn
