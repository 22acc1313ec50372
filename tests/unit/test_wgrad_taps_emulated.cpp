// The all-taps weight-gradient kernel (cuda/wgrad_taps_kernel.cuh) run by the host emulation of
// tests/unit/cuda_emulation.hpp against a double-precision sum, on both geometries the modulated
// conv gives it (up = 1: x shifted by the taps, pad 1; up = 2: the transposed-conv gradient
// shifted with stride 2): odd channel counts (partial 32-row tiles, several tiles), planes smaller
// and larger than a patch, batches, and SM counts that split the patches over blocks (the atomic
// path). Runs everywhere, CI included; tests/cuda/test_cuda_wgrad.cu runs the same kernel on a GPU.
#include "cuda_emulation.hpp"

#include <ganinv/cuda/wgrad_taps_kernel.cuh>

#include "catch.hpp"
#include "wgrad_taps_problem.hpp"

#include <random>
#include <vector>

using namespace ganinv;

TEST_CASE("all-taps weight-gradient kernel, emulated on the host, equals a double sum", "[cuda_emulated][wgrad]") {
    const test::TapCase cases[] = {{1, 5, 7, 4, 4, 1, 2},    {3, 37, 70, 9, 13, 1, 1}, {2, 32, 32, 24, 40, 1, 3},
                                   {1, 33, 40, 13, 70, 1, 4}, {2, 33, 70, 8, 8, 2, 2},  {1, 16, 32, 33, 31, 2, 2},
                                   {3, 7, 5, 5, 9, 2, 1},     {1, 40, 20, 17, 19, 2, 3}};
    std::mt19937 rng(20261205);
    for (const test::TapCase& z : cases) {
        const test::TapProblem p = test::make_tap_problem(z, rng);
        const std::vector<double> ref = test::reference_wgrad(p, z, [](float v) { return static_cast<double>(v); });
        std::vector<float> got = p.gw0;
        const cuda::gemm::TapSplit plan =
            z.up == 1 ? test::run_emulated<1, cuda::gemm::wgrad_taps_kernel<1>>(p, z, 3, got.data())
                      : test::run_emulated<2, cuda::gemm::wgrad_taps_kernel<2>>(p, z, 3, got.data());
        INFO("n" << z.n << " o" << z.o << " c" << z.c << " " << z.h << "x" << z.w << " up" << z.up << ": " << plan.channel_tiles
                 << " channel tiles x " << plan.splits << " splits of " << plan.patches_per_split << " patches");
        CHECK(test::relative_l2(got, ref) < 1e-5);
        CHECK(static_cast<long long>(plan.splits) * plan.patches_per_split >= plan.total_patches);
        CHECK(static_cast<long long>(plan.splits - 1) * plan.patches_per_split < plan.total_patches);
    }
}
