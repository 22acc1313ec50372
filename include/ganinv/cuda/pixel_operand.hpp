/// @file pixel_operand.hpp
/// @brief `PixelOperand`, one operand of a convolution's weight gradient as the wgrad kernels
///        gather it (wgrad_gemm.cuh, wgrad_taps_kernel.cuh). Plain host code: the kernels'
///        host emulation (tests/unit/cuda_emulation.hpp) compiles it with the host compiler.
#pragma once

namespace ganinv::cuda::gemm {

/// Rows r of src[n, r, y, x] at y = gy * stride + base_y + tap_mul * ky (same in x) for grid pixel
/// (gy, gx) and tap (ky, kx), scaled by scale[n, r] (nullptr: 1); zero outside the SH x SW source.
struct PixelOperand {
    const float* src = nullptr;
    const float* scale = nullptr;
    int R = 0, SH = 0, SW = 0;
    int stride = 1, base_y = 0, base_x = 0, tap_mul = 0;
};

}  // namespace ganinv::cuda::gemm
