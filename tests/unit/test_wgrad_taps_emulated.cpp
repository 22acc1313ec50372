// The all-taps weight-gradient kernel (cuda/wgrad_taps_kernel.cuh) run by the host emulation of
// tests/unit/cuda_emulation.hpp against a double-precision sum, on both geometries the modulated
// conv gives it (up = 1: x shifted by the taps, pad 1; up = 2: the transposed-conv gradient
// shifted with stride 2): odd channel counts (partial 32-row tiles, several tiles), planes smaller
// and larger than a patch, batches, and SM counts that split the patches over blocks (the atomic
// path). Runs everywhere, CI included; tests/cuda/test_cuda_wgrad.cu runs the same kernel on a GPU.
#include "cuda_emulation.hpp"

#include <ganinv/cuda/wgrad_taps_kernel.cuh>

#include "catch.hpp"

#include <cmath>
#include <random>
#include <vector>

using namespace ganinv;
using ganinv::cuda::gemm::PixelOperand;

namespace {

struct HostOperand {
    std::vector<float> src, scale;
    int R = 0, SH = 0, SW = 0, stride = 1, base = 0, tap_mul = 0;
    double at(int n, int r, int gy, int gx, int ky, int kx) const {
        const int y = gy * stride + base + tap_mul * ky, x = gx * stride + base + tap_mul * kx;
        if (y < 0 || y >= SH || x < 0 || x >= SW) return 0.0;
        const double v = src[((static_cast<std::size_t>(n) * R + r) * SH + y) * SW + x];
        return scale.empty() ? v : v * scale[static_cast<std::size_t>(n) * R + r];
    }
    PixelOperand view() const {
        PixelOperand p;
        p.src = src.data();
        p.scale = scale.empty() ? nullptr : scale.data();
        p.R = R, p.SH = SH, p.SW = SW, p.stride = stride, p.base_y = base, p.base_x = base, p.tap_mul = tap_mul;
        return p;
    }
};

template <int kStride>
void run_emulated(const PixelOperand& u, const PixelOperand& s, float* grad_w, bool u_rows_are_outputs, int C, int GH,
                  int GW, int batch, int num_sms, cuda::gemm::TapSplit& plan) {
    using P = cuda::gemm::TapPatch<kStride>;
    plan = cuda::gemm::plan_tap_split<kStride>(u.R, s.R, GH, GW, batch, num_sms);
    test::emulation::launch({static_cast<unsigned>(plan.channel_tiles), static_cast<unsigned>(plan.splits), 1}, P::kThreads,
                            [&] {
                                cuda::gemm::wgrad_taps_kernel<kStride>(u, s, grad_w, u_rows_are_outputs, C, GH, GW,
                                                                       plan.patches_y, plan.patches_x, plan.total_patches,
                                                                       plan.patches_per_split, plan.splits > 1);
                            });
}

}  // namespace

TEST_CASE("all-taps weight-gradient kernel, emulated on the host, equals a double sum", "[cuda_emulated][wgrad]") {
    struct Case {
        int n, o, c, h, w, up, sms;
    };
    const Case cases[] = {{1, 5, 7, 4, 4, 1, 2},     {3, 37, 70, 9, 13, 1, 1},  {2, 32, 32, 24, 40, 1, 3},
                          {1, 33, 40, 13, 70, 1, 4},  {2, 33, 70, 8, 8, 2, 2},   {1, 16, 32, 33, 31, 2, 2},
                          {3, 7, 5, 5, 9, 2, 1},      {1, 40, 20, 17, 19, 2, 3}};
    std::mt19937 rng(20261205);
    std::normal_distribution<float> normal;
    auto fill = [&](std::vector<float>& v, std::size_t n, float scale, float offset) {
        v.resize(n);
        for (float& x : v) x = offset + scale * normal(rng);
    };
    for (const Case& z : cases) {
        HostOperand a, b;
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
        std::vector<float> gw0;
        fill(gw0, static_cast<std::size_t>(z.o) * z.c * 9, 1.0f, 0.0f);
        std::vector<double> ref(gw0.begin(), gw0.end());
        for (int o = 0; o < z.o; ++o)
            for (int c = 0; c < z.c; ++c)
                for (int t = 0; t < 9; ++t) {
                    double sum = 0;
                    for (int n = 0; n < z.n; ++n)
                        for (int gy = 0; gy < z.h; ++gy)
                            for (int gx = 0; gx < z.w; ++gx) sum += a.at(n, o, gy, gx, t / 3, t % 3) * b.at(n, c, gy, gx, t / 3, t % 3);
                    ref[(static_cast<std::size_t>(o) * z.c + c) * 9 + t] += sum;
                }
        std::vector<float> got = gw0;
        cuda::gemm::TapSplit plan;
        if (z.up == 1) run_emulated<1>(a.view(), b.view(), got.data(), true, z.c, z.h, z.w, z.n, z.sms, plan);
        else run_emulated<2>(b.view(), a.view(), got.data(), false, z.c, z.h, z.w, z.n, z.sms, plan);
        double num = 0, den = 0;
        for (std::size_t i = 0; i < ref.size(); ++i) {
            num += (got[i] - ref[i]) * (got[i] - ref[i]);
            den += ref[i] * ref[i];
        }
        INFO("n" << z.n << " o" << z.o << " c" << z.c << " " << z.h << "x" << z.w << " up" << z.up << ": " << plan.channel_tiles
                 << " channel tiles x " << plan.splits << " splits of " << plan.patches_per_split << " patches");
        CHECK(std::sqrt(num / den) < 1e-5);
        CHECK(static_cast<long long>(plan.splits) * plan.patches_per_split >= plan.total_patches);
        CHECK(static_cast<long long>(plan.splits - 1) * plan.patches_per_split < plan.total_patches);
    }
}
