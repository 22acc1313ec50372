// The all-taps weight-gradient kernel (cuda/wgrad_taps.cuh) against a double-precision host sum
// and against the per-tap kernels (cuda/wgrad_gemm.cuh) on both geometries the modulated conv
// gives it (up = 1: x shifted by the taps; up = 2: the transposed-conv gradient shifted, stride
// 2), with odd channel counts (partial 32-row tiles), planes that do not fill a patch, batches,
// and shapes large enough to split the patches over blocks (the atomic path); then the backend
// forced to all_taps against the CPU backend, and the dispatch rule itself. Both arithmetics: FFMA
// (FP32) and the TF32 tensor cores (cuda/wgrad_taps_tf32.cuh, the TF32 and BF16 modes).
#include "cuda_catch.hpp"
#include "cuda_check_close.hpp"

#include "cpu_reference.hpp"

#include <ganinv/backend/cuda.cuh>
#include <ganinv/cuda/stream.hpp>

#include <cstdlib>
#include <vector>

using namespace ganinv;
using namespace ganinv::test;
using cuda::Precision;

namespace {

Cuda make_wgrad_backend(cudaStream_t s, Precision p, cuda::WgradKernel k) {
    cuda::CudaOptions o;
    o.precision = p;
    o.wgrad = k;
    o.cache_allocations = std::getenv("GANINV_TEST_NO_POOL") == nullptr;
    return Cuda(s, o);
}

/// One operand of the weight gradient on the host: value at (n, r, grid y, grid x, tap).
struct HostOperand {
    Tensor<float> src, scale;  ///< src [N, R, SH, SW], scale [N, R] (empty: none)
    int R = 0, SH = 0, SW = 0, stride = 1, base = 0, tap_mul = 0;
    double at(int n, int r, int gy, int gx, int ky, int kx) const {
        const int y = gy * stride + base + tap_mul * ky, x = gx * stride + base + tap_mul * kx;
        if (y < 0 || y >= SH || x < 0 || x >= SW) return 0.0;
        const double v = src[((static_cast<Index>(n) * R + r) * SH + y) * SW + x];
        return scale.numel() ? v * scale[static_cast<Index>(n) * R + r] : v;
    }
};

/// grad_w0 + sum over samples and grid pixels of A * B, in double.
Tensor<float> host_wgrad(const HostOperand& a, const HostOperand& b, const Tensor<float>& gw0, int N, int GH, int GW) {
    Tensor<float> out = gw0;
    const int O = a.R, C = b.R;
    for (int o = 0; o < O; ++o)
        for (int c = 0; c < C; ++c)
            for (int ky = 0; ky < 3; ++ky)
                for (int kx = 0; kx < 3; ++kx) {
                    double sum = 0;
                    for (int n = 0; n < N; ++n)
                        for (int gy = 0; gy < GH; ++gy)
                            for (int gx = 0; gx < GW; ++gx)
                                sum += a.at(n, o, gy, gx, ky, kx) * b.at(n, c, gy, gx, ky, kx);
                    out[(static_cast<Index>(o) * C + c) * 9 + ky * 3 + kx] += static_cast<float>(sum);
                }
    return out;
}

}  // namespace

TEST_CASE("The all-taps weight-gradient kernel matches a double host sum and the per-tap kernels", "[cuda][wgrad]") {
    struct Case {
        int n, o, c, h, w, up;
    };
    // up = 1: grid = the output plane = the input plane (pad 1); up = 2: grid = the input plane,
    // the shifted operand on the (2h + 1) x (2w + 1) transposed-conv plane.
    const Case cases[] = {{1, 5, 7, 4, 4, 1},     {3, 37, 70, 9, 13, 1},   {2, 32, 32, 64, 64, 1}, {1, 64, 33, 40, 70, 1},
                          {1, 32, 32, 128, 96, 1}, {2, 33, 70, 8, 8, 2},    {1, 16, 32, 33, 31, 2}, {1, 32, 64, 64, 64, 2},
                          {3, 7, 5, 5, 9, 2},      {1, 40, 96, 17, 50, 2}};
    cuda::Stream stream;
    int num_sms = 0;
    GANINV_CUDA_CHECK(cudaDeviceGetAttribute(&num_sms, cudaDevAttrMultiProcessorCount, 0));
    Cuda b = make_wgrad_backend(stream, Precision::fp32, cuda::WgradKernel::all_taps);
    std::uint64_t seed = 31000;
    for (const Case& z : cases) {
        HostOperand A, B;
        A.R = z.o, B.R = z.c;
        B.SH = z.h, B.SW = z.w;
        B.src = random_tensor({z.n, z.c, z.h, z.w}, ++seed);
        B.scale = random_tensor({z.n, z.c}, ++seed, 0.5f, 1.0f);
        if (z.up == 1) {
            A.SH = z.h, A.SW = z.w;
            A.scale = random_tensor({z.n, z.o}, ++seed, 0.3f, 1.0f);
            B.base = -1, B.tap_mul = 1;
        } else {
            A.SH = 2 * z.h + 1, A.SW = 2 * z.w + 1;
            A.stride = 2, A.tap_mul = 1;
        }
        A.src = random_tensor({z.n, z.o, A.SH, A.SW}, ++seed);
        const Tensor<float> gw0 = random_tensor({z.o, z.c, 3, 3}, ++seed);
        const Tensor<float> ref = host_wgrad(A, B, gw0, z.n, z.h, z.w);

        auto dA = b.upload(A.src), dB = b.upload(B.src), dB_scale = b.upload(B.scale);
        auto dA_scale = b.upload(A.scale.numel() ? A.scale : Tensor<float>({1}, 0.0f));
        auto device_operand = [](const HostOperand& h, const float* src, const float* scale) {
            cuda::gemm::PixelOperand p;
            p.src = src, p.scale = scale, p.R = h.R, p.SH = h.SH, p.SW = h.SW;
            p.stride = h.stride, p.base_y = h.base, p.base_x = h.base, p.tap_mul = h.tap_mul;
            return p;
        };
        const cuda::gemm::PixelOperand pa = device_operand(A, dA.data(), A.scale.numel() ? dA_scale.data() : nullptr);
        const cuda::gemm::PixelOperand pb = device_operand(B, dB.data(), dB_scale.data());
        const std::string what = concat("n", z.n, "_o", z.o, "_c", z.c, "_", z.h, "x", z.w, "_up", z.up);

        using cuda::gemm::TapArithmetic;
        auto taps = b.upload(gw0);
        cuda::gemm::launch_wgrad_taps(TapArithmetic::ffma, pa, pb, taps.data(), z.o, z.c, 3, z.h, z.w, z.n, num_sms, stream);
        auto per_tap = b.upload(gw0);
        cuda::gemm::launch_wgrad(Precision::fp32, pa, pb, per_tap.data(), z.o, z.c, 3, z.h, z.w, z.n, num_sms, stream);
        const Tensor<float> got = b.download(taps), other = b.download(per_tap);
        const double e_ffma = report("wgrad.all_taps_vs_host", Precision::fp32, what, got, ref);
        CHECK(e_ffma <= 1e-5);
        CHECK_CLOSE("wgrad.per_tap_vs_host", Precision::fp32, what, other, ref, 1e-5);
        CHECK_CLOSE("wgrad.all_taps_vs_per_tap", Precision::fp32, what, got, other, 1e-5);

        // The tensor-core kernel (TF32 operands, float sums) against the same double sum, next to
        // the per-tap GEMMs in TF32 (the same rounding of the operands, in another order). The
        // error is the operands' rounding (2^-11 relative each), about 3e-4 of a random sum.
        auto taps_tc = b.upload(gw0);
        cuda::gemm::launch_wgrad_taps(TapArithmetic::tf32, pa, pb, taps_tc.data(), z.o, z.c, 3, z.h, z.w, z.n, num_sms,
                                      stream);
        auto per_tap_tc = b.upload(gw0);
        cuda::gemm::launch_wgrad(Precision::tf32, pa, pb, per_tap_tc.data(), z.o, z.c, 3, z.h, z.w, z.n, num_sms, stream);
        const Tensor<float> got_tc = b.download(taps_tc), other_tc = b.download(per_tap_tc);
        const double e_tc = report("wgrad.all_taps_vs_host", Precision::tf32, what, got_tc, ref);
        const double e_per_tap_tc = report("wgrad.per_tap_vs_host", Precision::tf32, what, other_tc, ref);
        INFO("all-taps TF32 rel L2 " << e_tc << ", per-tap TF32 " << e_per_tap_tc);
        CHECK(e_tc <= 2e-3);
        CHECK(e_tc <= 2.0 * e_per_tap_tc + 1e-4);  // no worse than the per-tap kernels' TF32
        CHECK(e_tc > 10.0 * e_ffma);               // it did round: not the FFMA kernel

        // One SM: few splits, so a block walks several samples' patches (the per-sample flush of
        // the tensor-core kernel, without atomics when a single split remains).
        for (TapArithmetic ar : {TapArithmetic::ffma, TapArithmetic::tf32}) {
            auto one_sm = b.upload(gw0);
            cuda::gemm::launch_wgrad_taps(ar, pa, pb, one_sm.data(), z.o, z.c, 3, z.h, z.w, z.n, 1, stream);
            const double e = report("wgrad.all_taps_one_sm_vs_host", ar == TapArithmetic::ffma ? Precision::fp32 : Precision::tf32,
                                    what, b.download(one_sm), ref);
            CHECK(e <= (ar == TapArithmetic::ffma ? 1e-5 : 2e-3));
        }

        // A small planner check that holds on any device: the splits cover every patch once.
        const cuda::gemm::TapSplit t = z.up == 1 ? cuda::gemm::plan_tap_split<1>(z.o, z.c, z.h, z.w, z.n, num_sms)
                                                 : cuda::gemm::plan_tap_split<2>(z.c, z.o, z.h, z.w, z.n, num_sms);
        CHECK(t.splits >= 1);
        CHECK(static_cast<long long>(t.splits) * t.patches_per_split >= t.total_patches);
        CHECK(static_cast<long long>(t.splits - 1) * t.patches_per_split < t.total_patches);
    }
}

TEST_CASE("The all-taps kernel refuses geometries it does not run", "[cuda][wgrad]") {
    cuda::gemm::PixelOperand a, b;
    a.R = 4, a.SH = 8, a.SW = 8;
    b.R = 4, b.SH = 8, b.SW = 8, b.base_y = -1, b.base_x = -1, b.tap_mul = 1;
    for (cuda::gemm::TapArithmetic ar : {cuda::gemm::TapArithmetic::ffma, cuda::gemm::TapArithmetic::tf32}) {
        CHECK_THROWS_AS(cuda::gemm::launch_wgrad_taps(ar, a, b, nullptr, 4, 4, 1, 8, 8, 1, 132, nullptr), ShapeError);
        cuda::gemm::PixelOperand both = b;
        CHECK_THROWS_AS(cuda::gemm::launch_wgrad_taps(ar, both, b, nullptr, 4, 4, 3, 8, 8, 1, 132, nullptr), ShapeError);
        cuda::gemm::PixelOperand wide = b;
        wide.stride = 3;
        CHECK_THROWS_AS(cuda::gemm::launch_wgrad_taps(ar, a, wide, nullptr, 4, 4, 3, 8, 8, 1, 132, nullptr), ShapeError);
    }
    // The dispatch rule: a forced kernel where it applies (all_taps: 3x3 only); automatic as measured:
    // all_taps for stride-1 3x3 convs and transposed ones from <= 64 channels or a >= 64^2 input
    // plane, else per_tap.
    const nn::ModConvShape k3{1, 32, 32, 64, 64, 3, 1, true, 4}, k1{1, 32, 32, 64, 64, 1, 1, true, 4};
    const nn::ModConvShape up_wide{1, 512, 512, 32, 32, 3, 2, true, 4}, up_narrow{1, 64, 32, 512, 512, 3, 2, true, 4};
    // 512 -> 256 into 128^2 (b128.conv0 of a 1024^2 generator): a 64^2 input plane takes all_taps
    const nn::ModConvShape up_wide_large{1, 512, 256, 64, 64, 3, 2, true, 4}, up_wide_below{1, 512, 256, 63, 64, 3, 2, true, 4};
    using K = cuda::WgradKernel;
    CHECK(cuda::wgrad_kernel_for(k3, K::all_taps) == K::all_taps);
    CHECK(cuda::wgrad_kernel_for(k1, K::all_taps) == K::per_tap);
    CHECK(cuda::wgrad_kernel_for(k1, K::automatic) == K::per_tap);
    CHECK(cuda::wgrad_kernel_for(k3, K::per_tap) == K::per_tap);
    CHECK(cuda::wgrad_kernel_for(k3, K::automatic) == K::all_taps);
    CHECK(cuda::wgrad_kernel_for(up_wide, K::automatic) == K::per_tap);
    CHECK(cuda::wgrad_kernel_for(up_narrow, K::automatic) == K::all_taps);
    CHECK(cuda::wgrad_kernel_for(up_wide, K::all_taps) == K::all_taps);
    CHECK(cuda::wgrad_kernel_for(up_wide, K::all_taps_fp32) == K::all_taps_fp32);
    CHECK(cuda::wgrad_kernel_for(k1, K::all_taps_fp32) == K::per_tap);
    CHECK(cuda::gemm::tap_arithmetic_for(Precision::fp32) == cuda::gemm::TapArithmetic::ffma);
    CHECK(cuda::gemm::tap_arithmetic_for(Precision::tf32) == cuda::gemm::TapArithmetic::tf32);
    CHECK(cuda::gemm::tap_arithmetic_for(Precision::bf16) == cuda::gemm::TapArithmetic::tf32);
    CHECK(cuda::wgrad_kernel_for(up_wide_large, K::automatic) == K::all_taps);
    CHECK(cuda::wgrad_kernel_for(up_wide_below, K::automatic) == K::per_tap);
    // TF32 / BF16: the tensor-core all-taps kernel for every 3x3 conv (a 1x1 keeps its one GEMM).
    for (Precision p : {Precision::tf32, Precision::bf16}) {
        CHECK(cuda::wgrad_kernel_for(up_wide, K::automatic, p) == K::all_taps);
        CHECK(cuda::wgrad_kernel_for(up_wide_below, K::automatic, p) == K::all_taps);
        CHECK(cuda::wgrad_kernel_for(k3, K::automatic, p) == K::all_taps);
        CHECK(cuda::wgrad_kernel_for(k1, K::automatic, p) == K::per_tap);
        CHECK(cuda::wgrad_kernel_for(up_wide, K::per_tap, p) == K::per_tap);
        CHECK(cuda::wgrad_kernel_for(up_wide, K::all_taps_fp32, p) == K::all_taps_fp32);
    }
    CHECK(cuda::wgrad_kernel_for(up_wide, K::automatic, Precision::fp32) == K::per_tap);
}

TEST_CASE("CUDA modulated conv with the all-taps weight gradient matches the CPU", "[cuda][wgrad][modconv]") {
    struct S {
        Index n, c, o, h, w;
        int up;
        bool demod;
    };
    const S shapes[] = {{1, 5, 7, 4, 4, 1, true},      {3, 37, 70, 9, 13, 1, true}, {2, 70, 33, 8, 8, 2, true},
                        {1, 32, 16, 33, 31, 2, true},  {2, 64, 64, 32, 32, 1, true}, {1, 32, 32, 96, 96, 1, false},
                        {1, 64, 32, 48, 48, 2, true}};
    cuda::Stream stream;
    const Tensor<float> filt = nn::make_resample_filter({1, 3, 3, 1});
    std::uint64_t seed = 32000;
    for (const S& z : shapes) {
        const nn::ModConvShape sh{z.n, z.c, z.o, z.h, z.w, 3, z.up, z.demod, 4};
        const Tensor<float> x = random_tensor({z.n, z.c, z.h, z.w}, ++seed), w = random_tensor({z.o, z.c, 3, 3}, ++seed);
        const Tensor<float> s = random_tensor({z.n, z.c}, ++seed, 0.5f, 1.0f);
        const Tensor<float> gy = random_tensor({z.n, z.o, sh.out_h(), sh.out_w()}, ++seed);
        const Tensor<float> gw0 = random_tensor(w.shape(), ++seed);
        const Tensors c = cpu::modconv(x, w, s, filt, sh, gy, gw0);
        for (Precision prec : {Precision::fp32, Precision::tf32, Precision::bf16})
            for (cuda::WgradKernel kernel : {cuda::WgradKernel::all_taps, cuda::WgradKernel::all_taps_fp32}) {
                if (prec == Precision::fp32 && kernel == cuda::WgradKernel::all_taps_fp32) continue;  // the same kernel
                Cuda b = make_wgrad_backend(stream, prec, kernel);
                const Tensors g = run_modconv(b, x, w, s, filt, sh, gy, gw0);
                const std::string what = concat(cuda::to_string(kernel), "_n", z.n, "_c", z.c, "_o", z.o, "_", z.h, "x",
                                                z.w, "_up", z.up, z.demod ? "_demod" : "_nodemod");
                // all_taps: FFMA in FP32, TF32 tensor cores in TF32/BF16; all_taps_fp32: FFMA. The
                // demodulation part follows the forward's precision.
                const double bound = prec == Precision::fp32 ? 1e-3 : prec == Precision::tf32 ? 1e-2 : 6e-2;
                CHECK_CLOSE("modconv.grad_weight", prec, what, g[4], c[4], bound);
            }
    }
}
