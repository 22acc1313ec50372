/// @file wgrad_taps_problem.hpp
/// @brief A random all-taps weight-gradient problem on either geometry of the modulated conv, its
///        double-precision reference, and a kernel's launch under the host emulation; shared by the
///        emulated tests of the FFMA kernel (test_wgrad_taps_emulated.cpp) and of the TF32
///        tensor-core kernel (test_wgrad_taps_tf32_emulated.cpp). Host code only.
#pragma once

#include "cuda_emulation.hpp"

#include <ganinv/cuda/pixel_operand.hpp>
#include <ganinv/cuda/wgrad_taps_kernel.cuh>

#include <cmath>
#include <cstddef>
#include <functional>
#include <random>
#include <vector>

namespace ganinv::test {

/// Batch n, U/S channels o (gradient rows) and c (input rows), the h x w pixel grid, up = 1 (x
/// shifted by the taps, pad 1) or 2 (the transposed-conv gradient shifted with stride 2), and the
/// SM count the split is planned for.
struct TapCase {
    int n, o, c, h, w, up, sms;
};

/// One operand as the kernels gather it: rows r of src[n, r, y, x], scaled per (n, r).
struct TapOperand {
    std::vector<float> src, scale;
    int R = 0, SH = 0, SW = 0, stride = 1, base = 0, tap_mul = 0;
    /// The unscaled value at (n, r, grid pixel, tap); 0 outside the source.
    float raw(int n, int r, int gy, int gx, int ky, int kx) const {
        const int y = gy * stride + base + tap_mul * ky, x = gx * stride + base + tap_mul * kx;
        if (y < 0 || y >= SH || x < 0 || x >= SW) return 0.0f;
        return src[((static_cast<std::size_t>(n) * R + r) * SH + y) * SW + x];
    }
    double row_scale(int n, int r) const { return scale.empty() ? 1.0 : scale[static_cast<std::size_t>(n) * R + r]; }
    cuda::gemm::PixelOperand view() const {
        cuda::gemm::PixelOperand p;
        p.src = src.data();
        p.scale = scale.empty() ? nullptr : scale.data();
        p.R = R, p.SH = SH, p.SW = SW, p.stride = stride, p.base_y = base, p.base_x = base, p.tap_mul = tap_mul;
        return p;
    }
};

/// a: the gradient-side operand (rows o), b: the input side (rows c), gw0: what grad_w holds before.
struct TapProblem {
    TapOperand a, b;
    std::vector<float> gw0;
};

inline TapProblem make_tap_problem(const TapCase& z, std::mt19937& rng) {
    std::normal_distribution<float> normal;
    auto fill = [&](std::vector<float>& v, std::size_t n, float scale, float offset) {
        v.resize(n);
        for (float& x : v) x = offset + scale * normal(rng);
    };
    TapProblem p;
    TapOperand &a = p.a, &b = p.b;
    a.R = z.o, b.R = z.c, b.SH = z.h, b.SW = z.w;
    fill(b.src, static_cast<std::size_t>(z.n) * z.c * z.h * z.w, 1.0f, 0.0f);
    fill(b.scale, static_cast<std::size_t>(z.n) * z.c, 0.5f, 1.0f);
    if (z.up == 1) {  // a = grad_y * d on the grid, b = x * s shifted by the taps (pad 1)
        a.SH = z.h, a.SW = z.w;
        fill(a.scale, static_cast<std::size_t>(z.n) * z.o, 0.3f, 1.0f);
        b.base = -1, b.tap_mul = 1;
    } else {  // a = the transposed-conv gradient at (2 y + ky, 2 x + kx), b = x * s on the grid
        a.SH = 2 * z.h + 1, a.SW = 2 * z.w + 1, a.stride = 2, a.tap_mul = 1;
    }
    fill(a.src, static_cast<std::size_t>(z.n) * z.o * a.SH * a.SW, 1.0f, 0.0f);
    fill(p.gw0, static_cast<std::size_t>(z.o) * z.c * 9, 1.0f, 0.0f);
    return p;
}

/// gw0 + sum over samples of (sum over pixels of operand(a) * operand(b)) * both rows' scales, in
/// double; `operand` maps a raw value to what the kernel multiplies (itself, or its TF32 rounding).
inline std::vector<double> reference_wgrad(const TapProblem& p, const TapCase& z,
                                           const std::function<double(float)>& operand) {
    std::vector<double> ref(p.gw0.begin(), p.gw0.end());
    for (int o = 0; o < z.o; ++o)
        for (int c = 0; c < z.c; ++c)
            for (int t = 0; t < 9; ++t) {
                double sum = 0;
                for (int n = 0; n < z.n; ++n) {
                    double part = 0;
                    for (int gy = 0; gy < z.h; ++gy)
                        for (int gx = 0; gx < z.w; ++gx)
                            part += operand(p.a.raw(n, o, gy, gx, t / 3, t % 3)) * operand(p.b.raw(n, c, gy, gx, t / 3, t % 3));
                    sum += part * p.a.row_scale(n, o) * p.b.row_scale(n, c);
                }
                ref[(static_cast<std::size_t>(o) * z.c + c) * 9 + t] += sum;
            }
    return ref;
}

/// Runs `Kernel` (either all-taps kernel: they take the same arguments) on the case under the host
/// emulation, split as `plan_tap_split<kStride>` plans it for `blocks_per_sm` blocks an SM, adding
/// into `grad_w`; the operands in the kernels' order: up = 1: u = a (its rows index grad_w's
/// outputs), s = b shifted by the taps; up = 2: u = b, s = a at stride 2. Returns the plan.
template <int kStride, auto Kernel>
cuda::gemm::TapSplit run_emulated(const TapProblem& p, const TapCase& z, int blocks_per_sm, float* grad_w) {
    const bool up1 = z.up == 1;
    const cuda::gemm::PixelOperand u = up1 ? p.a.view() : p.b.view(), s = up1 ? p.b.view() : p.a.view();
    const cuda::gemm::TapSplit plan = cuda::gemm::plan_tap_split<kStride>(u.R, s.R, z.h, z.w, z.n, z.sms, blocks_per_sm);
    emulation::launch({static_cast<unsigned>(plan.channel_tiles), static_cast<unsigned>(plan.splits), 1},
                      cuda::gemm::TapPatch<kStride>::kThreads, [&] {
                          Kernel(u, s, grad_w, up1, z.c, z.h, z.w, plan.patches_y, plan.patches_x, plan.total_patches,
                                 plan.patches_per_split, plan.splits > 1);
                      });
    return plan;
}

inline double relative_l2(const std::vector<float>& got, const std::vector<double>& ref) {
    double num = 0, den = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
        num += (got[i] - ref[i]) * (got[i] - ref[i]);
        den += ref[i] * ref[i];
    }
    return std::sqrt(num / den);
}

}  // namespace ganinv::test
