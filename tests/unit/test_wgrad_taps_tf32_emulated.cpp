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
#include "wgrad_taps_problem.hpp"

#include <random>

using namespace ganinv;

namespace {

/// The kernel with its two shared-memory stages, planned for the blocks an SM holds on the GPU.
template <int kStride>
cuda::gemm::TapSplit run_tf32(const test::TapProblem& p, const test::TapCase& z, float* grad_w) {
    using P = cuda::gemm::TapPatchTf32<kStride>;
    cuda::gemm::emulated_dynamic_shared.assign(static_cast<std::size_t>(P::kSmemBytes) / sizeof(float), -1.0f);
    return test::run_emulated<kStride, cuda::gemm::wgrad_taps_tf32_kernel<kStride>>(p, z, P::kMinBlocksPerSm, grad_w);
}

}  // namespace

TEST_CASE("tensor-core all-taps weight gradient, emulated on the host, equals a double sum of TF32 operands",
          "[cuda_emulated][wgrad][tf32]") {
    // sms = 1 with several channel tiles leaves one split: a block walks every sample's patches and
    // adds each sample's scaled sums without atomics (the per-sample flush); more SMs split them.
    const test::TapCase cases[] = {{1, 5, 7, 4, 4, 1, 2},   {3, 37, 70, 9, 13, 1, 1}, {2, 32, 32, 9, 40, 1, 3},
                                   {2, 33, 40, 5, 70, 1, 1}, {2, 33, 70, 8, 8, 2, 1},  {1, 16, 32, 13, 11, 2, 2},
                                   {3, 7, 5, 5, 9, 2, 1},    {1, 40, 20, 9, 19, 2, 3}};
    std::mt19937 rng(20261206);
    // What the kernel multiplies: each raw value rounded to TF32 (round to nearest, ties away).
    auto tf32 = [](float v) { return static_cast<double>(cuda::gemm::tf32_value(cuda::gemm::tf32_bits(v))); };
    for (const test::TapCase& z : cases) {
        const test::TapProblem p = test::make_tap_problem(z, rng);
        const std::vector<double> ref = test::reference_wgrad(p, z, tf32);
        std::vector<float> got = p.gw0;
        const cuda::gemm::TapSplit plan = z.up == 1 ? run_tf32<1>(p, z, got.data()) : run_tf32<2>(p, z, got.data());
        INFO("n" << z.n << " o" << z.o << " c" << z.c << " " << z.h << "x" << z.w << " up" << z.up << ": " << plan.channel_tiles
                 << " channel tiles x " << plan.splits << " splits of " << plan.patches_per_split << " patches");
        CHECK(test::relative_l2(got, ref) < 1e-5);
        if (z.sms == 1 && plan.channel_tiles >= 3) CHECK(plan.splits == 1);  // the atomic-free path was taken
    }
}
