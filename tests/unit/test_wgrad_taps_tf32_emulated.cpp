// The tensor-core all-taps weight-gradient kernel (cuda/wgrad_taps_tf32.cuh) run by the host
// emulation of tests/unit/cuda_emulation.hpp, with host versions of its PTX steps defined here: the
// cp.async copies as plain copies, and mma.sync m16n8k8 as a warp-wide exchange (each of a warp's
// 32 emulated threads posts its A and B fragments, the warp meets at a barrier, each thread forms
// its four C values from the PTX fragment layout, and the warp meets again). The reference is a
// double sum of the same TF32-rounded operands, so the comparison is tight (1e-5): it checks the
// kernel's shared-memory layout (channel-major rows, stride-2 footprints stored even columns first),
// the fragment addressing per tap, the two-stage ring and the per-sample flush of the scales, on
// machines without a GPU (CI). tests/cuda/test_cuda_wgrad.cu runs the same kernel on a GPU.
#include "cuda_emulation.hpp"

#include <array>
#include <bit>
#include <cstdint>
#include <memory>
#include <vector>

#define GANINV_CUDA_EMULATION 1

namespace ganinv::cuda::gemm {

inline std::vector<float> emulated_dynamic_shared;  ///< one block's dynamic shared memory (blocks run one by one)
inline float* tap_dynamic_shared() { return emulated_dynamic_shared.data(); }

inline void tap_copy_async(float* smem, const float* gmem, bool valid) { *smem = valid ? *gmem : 0.0f; }
inline void tap_copy_commit() {}
template <int Pending>
inline void tap_copy_wait() {}
inline std::uint32_t tf32_bits(float v) { return std::bit_cast<std::uint32_t>(v) + 0x1000u; }
/// What the tensor cores read of an operand register: its 13 low bits ignored.
inline float tf32_value(std::uint32_t bits) { return std::bit_cast<float>(bits & 0xffffe000u); }

struct EmulatedFragments {
    std::uint32_t a[4], b[2];
};
inline std::array<std::array<EmulatedFragments, 32>, 8> emulated_fragments;
inline std::array<std::unique_ptr<std::barrier<>>, 8> emulated_warp_barriers = [] {
    std::array<std::unique_ptr<std::barrier<>>, 8> b;
    for (auto& p : b) p = std::make_unique<std::barrier<>>(32);
    return b;
}();

/// c[4] += A (16 x 8) * B (8 x 8) over the warp, with mma.sync m16n8k8's fragment layout:
/// a0..a3 = A(g, t), A(g + 8, t), A(g, t + 4), A(g + 8, t + 4); b0, b1 = B(t, g), B(t + 4, g);
/// c0..c3 = C(g, 2t), C(g, 2t + 1), C(g + 8, 2t), C(g + 8, 2t + 1), for lane = 4 g + t.
inline void mma_tf32_16x8x8(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0, std::uint32_t b1) {
    const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
    auto& frags = emulated_fragments[static_cast<std::size_t>(warp)];
    EmulatedFragments& mine = frags[static_cast<std::size_t>(lane)];
    for (int r = 0; r < 4; ++r) mine.a[r] = a[r];
    mine.b[0] = b0, mine.b[1] = b1;
    emulated_warp_barriers[static_cast<std::size_t>(warp)]->arrive_and_wait();
    auto A = [&](int m, int k) { return tf32_value(frags[static_cast<std::size_t>((m % 8) * 4 + k % 4)].a[(m >= 8) + 2 * (k >= 4)]); };
    auto B = [&](int k, int n) { return tf32_value(frags[static_cast<std::size_t>(n * 4 + k % 4)].b[k >= 4]); };
    const int g = lane >> 2, t = lane & 3;
    for (int r = 0; r < 4; ++r) {
        const int m = g + (r >> 1) * 8, n = 2 * t + (r & 1);
        float sum = c[r];
        for (int k = 0; k < 8; ++k) sum += A(m, k) * B(k, n);
        c[r] = sum;
    }
    emulated_warp_barriers[static_cast<std::size_t>(warp)]->arrive_and_wait();  // before the next post
}

}  // namespace ganinv::cuda::gemm

#include <ganinv/cuda/wgrad_taps_tf32.cuh>

#include "catch.hpp"

#include <cmath>
#include <random>

using namespace ganinv;
using ganinv::cuda::gemm::PixelOperand;

namespace {

/// The TF32 value the kernel multiplies for a raw float (round to nearest, ties away).
double tf32(float v) { return cuda::gemm::tf32_value(cuda::gemm::tf32_bits(v)); }

struct HostOperand {
    std::vector<float> src, scale;
    int R = 0, SH = 0, SW = 0, stride = 1, base = 0, tap_mul = 0;
    /// The rounded raw value at (n, r, grid pixel, tap); 0 outside the source.
    double raw(int n, int r, int gy, int gx, int ky, int kx) const {
        const int y = gy * stride + base + tap_mul * ky, x = gx * stride + base + tap_mul * kx;
        if (y < 0 || y >= SH || x < 0 || x >= SW) return 0.0;
        return tf32(src[((static_cast<std::size_t>(n) * R + r) * SH + y) * SW + x]);
    }
    double row_scale(int n, int r) const { return scale.empty() ? 1.0 : scale[static_cast<std::size_t>(n) * R + r]; }
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
    using P = cuda::gemm::TapPatchTf32<kStride>;
    plan = cuda::gemm::plan_tap_split<kStride>(u.R, s.R, GH, GW, batch, num_sms, P::kMinBlocksPerSm);
    cuda::gemm::emulated_dynamic_shared.assign(static_cast<std::size_t>(P::kSmemBytes) / sizeof(float), -1.0f);
    test::emulation::launch({static_cast<unsigned>(plan.channel_tiles), static_cast<unsigned>(plan.splits), 1}, P::kThreads,
                            [&] {
                                cuda::gemm::wgrad_taps_tf32_kernel<kStride>(u, s, grad_w, u_rows_are_outputs, C, GH, GW,
                                                                            plan.patches_y, plan.patches_x,
                                                                            plan.total_patches, plan.patches_per_split,
                                                                            plan.splits > 1);
                            });
}

}  // namespace

TEST_CASE("tensor-core all-taps weight gradient, emulated on the host, equals a double sum of TF32 operands",
          "[cuda_emulated][wgrad][tf32]") {
    struct Case {
        int n, o, c, h, w, up, sms;
    };
    // sms = 1 with several channel tiles leaves one split: a block walks every sample's patches and
    // adds each sample's scaled sums without atomics (the per-sample flush); more SMs split them.
    const Case cases[] = {{1, 5, 7, 4, 4, 1, 2},   {3, 37, 70, 9, 13, 1, 1}, {2, 32, 32, 9, 40, 1, 3},
                          {2, 33, 40, 5, 70, 1, 1}, {2, 33, 70, 8, 8, 2, 1},  {1, 16, 32, 13, 11, 2, 2},
                          {3, 7, 5, 5, 9, 2, 1},    {1, 40, 20, 9, 19, 2, 3}};
    std::mt19937 rng(20261206);
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
                    for (int n = 0; n < z.n; ++n) {
                        double part = 0;  // the kernel scales each sample's sum once
                        for (int gy = 0; gy < z.h; ++gy)
                            for (int gx = 0; gx < z.w; ++gx)
                                part += a.raw(n, o, gy, gx, t / 3, t % 3) * b.raw(n, c, gy, gx, t / 3, t % 3);
                        sum += part * a.row_scale(n, o) * b.row_scale(n, c);
                    }
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
        if (z.sms == 1 && plan.channel_tiles >= 3) CHECK(plan.splits == 1);  // the atomic-free path was taken
    }
}
