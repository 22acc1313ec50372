// Every operation of the Cuda backend against the Cpu backend (random inputs, NaN-poisoned
// outputs), and the modulated conv / upfirdn2d against the official fixtures, in FP32 (parity
// bounds 1e-4 outputs, 1e-3 gradients) and in TF32 / BF16 (the bounds of docs/cuda.md).
// Lines starting with "ERRBOUND" report every measured error for the precision table.
#include "cuda_catch.hpp"
#include "cuda_check_close.hpp"

#include "cpu_reference.hpp"

#include <ganinv/backend/cuda.cuh>
#include <ganinv/cuda/stream.hpp>
#include <ganinv/io/safetensors.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <cstring>

using namespace ganinv;
using namespace ganinv::test;
using cuda::Precision;

namespace {

/// tests/data, or $GANINV_TEST_DATA_DIR (binaries built elsewhere and run on a GPU machine).
std::filesystem::path data_root() {
    if (const char* e = std::getenv("GANINV_TEST_DATA_DIR")) return e;
    return GANINV_TEST_DATA_DIR;
}

/// Bounds per precision: {outputs, gradients}.
struct Bounds {
    double out, grad;
};
Bounds bounds_for(Precision p) {
    switch (p) {
        case Precision::fp32: return {1e-4, 1e-3};
        case Precision::tf32: return {5e-3, 1e-2};
        case Precision::bf16: return {3e-2, 6e-2};
    }
    return {0, 0};
}

Cuda make_backend(cudaStream_t s, Precision p = Precision::fp32, cuda::StyleMode m = cuda::StyleMode::automatic,
                  cuda::GemmEngine e = cuda::GemmEngine::automatic) {
    cuda::CudaOptions o;
    o.precision = p;
    o.engine = e;
    o.cache_allocations = std::getenv("GANINV_TEST_NO_POOL") == nullptr;  // memcheck: exact allocations
    o.style_mode = m;
    return Cuda(s, o);
}

SafetensorsFile fixture(const char* name) { return SafetensorsFile(data_root() / "stylegan2_tiny" / name); }

/// Random inputs of one modulated-conv shape (seeds drawn from `seed` in member order) and the
/// CPU backend's results on them.
struct RandomModconv {
    Tensor<float> x, w, s, gy, gw0;
    Tensors ref;
    RandomModconv(const nn::ModConvShape& sh, std::uint64_t& seed, const Tensor<float>& filt)
        : x(random_tensor({sh.batch, sh.in_channels, sh.in_h, sh.in_w}, ++seed)),
          w(random_tensor({sh.out_channels, sh.in_channels, sh.kernel, sh.kernel}, ++seed)),
          s(random_tensor({sh.batch, sh.in_channels}, ++seed, 0.5f, 1.0f)),
          gy(random_tensor({sh.batch, sh.out_channels, sh.out_h(), sh.out_w()}, ++seed)),
          gw0(random_tensor(w.shape(), ++seed)),
          ref(cpu::modconv(x, w, s, filt, sh, gy, gw0)) {}
};

/// run_modconv's outputs against the CPU's: y, grad_x, grad_styles, grad_weight, the fused
/// epilogue's output and grad_x accumulated into (dcoefs aside).
void check_modconv_outputs(const Tensors& g, const Tensors& c, Precision prec, const std::string& what, const Bounds& bd) {
    CHECK_CLOSE("modconv.y", prec, what, g[0], c[0], bd.out);
    CHECK_CLOSE("modconv.grad_x", prec, what, g[2], c[2], bd.grad);
    CHECK_CLOSE("modconv.grad_styles", prec, what, g[3], c[3], bd.grad);
    CHECK_CLOSE("modconv.grad_weight", prec, what, g[4], c[4], bd.grad);
    CHECK_CLOSE("modconv.fused_out", prec, what, g[5], c[5], bd.out);
    CHECK_CLOSE("modconv.grad_x_accumulated", prec, what, g[6], c[6], bd.grad);
}

/// Whether this test_cuda and device run the wgmma path; warns that the case is skipped if not.
bool wgmma_or_warn(cudaStream_t stream) {
    if (make_backend(stream).wgmma_enabled()) return true;
    WARN("SKIPPED: this test_cuda has no sm_90a code or the device is not compute 9.0 (no wgmma path to test)");
    return false;
}

/// A backend's options for the wgmma cases: the precision, exact allocations under memcheck.
cuda::CudaOptions precision_options(Precision prec) {
    cuda::CudaOptions o;
    o.precision = prec;
    o.cache_allocations = std::getenv("GANINV_TEST_NO_POOL") == nullptr;
    return o;
}

/// Runs `r`'s modulated conv on `b` and checks every output against the CPU's (the name: the
/// variant, then the shape).
void check_random_modconv(Cuda& b, const RandomModconv& r, const Tensor<float>& filt, const nn::ModConvShape& sh,
                          Precision prec, const std::string& variant) {
    const Tensors g = run_modconv(b, r.x, r.w, r.s, filt, sh, r.gy, r.gw0);
    const std::string what = concat(variant, "_n", sh.batch, "_c", sh.in_channels, "_o", sh.out_channels, "_", sh.in_h, "x",
                                    sh.in_w, "_up", sh.up);
    check_modconv_outputs(g, r.ref, prec, what, bounds_for(prec));
}

}  // namespace

TEST_CASE("CUDA small ops match the CPU backend", "[cuda][ops]") {
    cuda::Stream stream;
    Cuda b = make_backend(stream);
    const Tensors g = run_small_ops(b, 42), c = cpu::small_ops(42);
    const char* names[] = {"axpy", "broadcast_rows", "sum_rows_add", "truncate", "gather_columns", "scatter_add_columns", "reduce_ws"};
    REQUIRE(g.size() == c.size());
    for (std::size_t i = 0; i < g.size(); ++i) CHECK_CLOSE("small", Precision::fp32, names[i], g[i], c[i], 1e-6);
}

TEST_CASE("CUDA all-layer style ops match the CPU backend", "[cuda][ops]") {
    cuda::Stream stream;
    Cuda b = make_backend(stream);
    const Tensors g = run_style_ops(b, 77), c = cpu::style_ops(77);
    const char* names[] = {"affine_styles", "affine_styles.grad_ws", "gather_column_blocks.0", "gather_column_blocks.1",
                           "gather_column_blocks.2", "scatter_add_column_blocks", "affine.grad_weight.0",
                           "affine.grad_bias.0", "affine.grad_weight.1", "affine.grad_bias.1", "affine.grad_weight.2",
                           "affine.grad_bias.2"};
    REQUIRE(g.size() == c.size());
    REQUIRE(g.size() == std::size(names));
    for (std::size_t i = 0; i < g.size(); ++i) CHECK_CLOSE("style_ops", Precision::fp32, names[i], g[i], c[i], 1e-5);
}

TEST_CASE("CUDA fused bias_act + noise backward matches the CPU backend", "[cuda][ops]") {
    cuda::Stream stream;
    Cuda b = make_backend(stream);
    std::uint64_t seed = 300;
    for (auto p : {nn::BiasActParams::lrelu(), nn::BiasActParams::lrelu(1.0f, 0.7f), nn::BiasActParams::linear(0.5f)})
        for (auto [n, ch, sp] : {std::tuple<Index, Index, Index>{1, 5, 16}, {3, 64, 1024}, {2, 3, 4099}, {2, 512, 16}})
            for (bool per_sample : {true, false}) {
                const auto y = random_tensor({n, ch, sp}, ++seed), gy = random_tensor({n, ch, sp}, ++seed);
                const auto nz = random_tensor({per_sample ? n : 1, sp}, ++seed), gb0 = random_tensor({ch}, ++seed);
                const Tensors g = run_bias_act_noise(b, y, gy, p, nz, per_sample, gb0, 0.5f);
                const Tensors c = cpu::bias_act_noise(y, gy, p, nz, per_sample, gb0, 0.5f);
                const std::string what = concat(n, "x", ch, "x", sp, "_clamp", p.clamp, per_sample ? "_per_sample" : "_shared");
                CHECK_CLOSE("bias_act_noise.grad_x", Precision::fp32, what, g[0], c[0], 1e-6);
                CHECK_CLOSE("bias_act_noise.grad_bias", Precision::fp32, what, g[1], c[1], 1e-5);
                CHECK_CLOSE("bias_act_noise.grad_noise", Precision::fp32, what, g[2], c[2], 1e-5);
                // a scalar sum over n x spatial x channels that largely cancels (float vs double sums)
                CHECK_CLOSE("bias_act_noise.grad_strength", Precision::fp32, what, g[3], c[3], 1e-4);
            }
}

TEST_CASE("CUDA linear, normalize_2nd_moment, noise and bias_act match the CPU backend", "[cuda][ops]") {
    cuda::Stream stream;
    Cuda b = make_backend(stream);
    std::uint64_t seed = 7;
    for (Index n : {1, 3, 8})
        for (auto [in, out] : {std::pair<Index, Index>{13, 5}, {512, 512}, {37, 70}}) {
            for (bool lrelu : {true, false}) {
                const auto p = nn::LinearParams::make(in, out, lrelu ? 0.01f : 1.0f, lrelu ? nn::Activation::lrelu : nn::Activation::linear);
                const auto x = random_tensor({n, in}, ++seed), w = random_tensor({out, in}, ++seed, lrelu ? 100.0f : 1.0f);
                const auto bias = random_tensor({out}, ++seed, 10.0f), gy = random_tensor({n, out}, ++seed);
                const auto gw0 = random_tensor({out, in}, ++seed), gb0 = random_tensor({out}, ++seed);
                const Tensors g = run_linear(b, x, w, bias, p, gy, gw0, gb0), c = cpu::linear(x, w, bias, p, gy, gw0, gb0);
                const std::string what = concat("n", n, "_", in, "x", out, lrelu ? "_lrelu" : "_linear");
                CHECK_CLOSE("linear.y", Precision::fp32, what, g[0], c[0], 1e-5);
                CHECK_CLOSE("linear.grad_x", Precision::fp32, what, g[1], c[1], 1e-5);
                CHECK_CLOSE("linear.grad_w", Precision::fp32, what, g[2], c[2], 1e-5);
                CHECK_CLOSE("linear.grad_b", Precision::fp32, what, g[3], c[3], 1e-5);
            }
            const auto x = random_tensor({n, in}, ++seed), gy = random_tensor({n, in}, ++seed);
            const Tensors g = run_normalize(b, x, gy), c = cpu::normalize(x, gy);
            CHECK_CLOSE("normalize.y", Precision::fp32, concat(n, "x", in), g[0], c[0], 1e-5);
            CHECK_CLOSE("normalize.grad_x", Precision::fp32, concat(n, "x", in), g[1], c[1], 1e-5);
        }
    for (Index n : {1, 3})
        for (auto [ch, sp] : {std::pair<Index, Index>{5, 16}, {64, 1024}, {3, 4099}})
            for (bool per_sample : {true, false}) {
                const auto y0 = random_tensor({n, ch, sp}, ++seed), nz = random_tensor({per_sample ? n : 1, sp}, ++seed);
                const auto gy = random_tensor({n, ch, sp}, ++seed);
                const Tensors g = run_noise(b, y0, nz, per_sample, 0.37f, gy, 0.5f);
                const Tensors c = cpu::noise(y0, nz, per_sample, 0.37f, gy, 0.5f);
                const std::string what = concat(n, "x", ch, "x", sp, per_sample ? "_per_sample" : "_shared");
                CHECK_CLOSE("noise.y", Precision::fp32, what, g[0], c[0], 1e-6);
                CHECK_CLOSE("noise.grad_noise", Precision::fp32, what, g[1], c[1], 1e-5);
                CHECK_CLOSE("noise.grad_strength", Precision::fp32, what, g[2], c[2], 1e-5);
            }
    for (auto p : {nn::BiasActParams::lrelu(), nn::BiasActParams::lrelu(1.0f, 0.7f), nn::BiasActParams::linear(),
                   nn::BiasActParams::linear(0.5f)})
        for (auto [n, ch, sp] : {std::tuple<Index, Index, Index>{1, 5, 16}, {3, 64, 1024}, {2, 7, 5000}, {8, 512, 1}}) {
            const auto x = random_tensor({n, ch, sp}, ++seed), bias = random_tensor({ch}, ++seed, 0.3f);
            const auto gy = random_tensor({n, ch, sp}, ++seed), gb0 = random_tensor({ch}, ++seed);
            const Tensors g = run_bias_act(b, x, bias, p, gy, gb0), c = cpu::bias_act(x, bias, p, gy, gb0);
            const std::string what = concat(n, "x", ch, "x", sp, "_clamp", p.clamp);
            CHECK_CLOSE("bias_act.y", Precision::fp32, what, g[0], c[0], 1e-6);
            CHECK_CLOSE("bias_act.grad_x", Precision::fp32, what, g[1], c[1], 1e-6);
            CHECK_CLOSE("bias_act.grad_bias", Precision::fp32, what, g[2], c[2], 1e-5);
        }
}

TEST_CASE("CUDA upfirdn2d matches the official fixtures and the CPU on random geometry", "[cuda][ops]") {
    cuda::Stream stream;
    Cuda b = make_backend(stream);
    const auto f = fixture("upfirdn2d_case.safetensors");
    const Tensor<float> filt = nn::make_resample_filter({1, 3, 3, 1});
    struct Case {
        const char* name;
        nn::Upfirdn2dParams p;
    };
    for (const Case& c : {Case{"upsample2d", nn::Upfirdn2dParams::upsample2d(4)},
                          Case{"downsample2d", nn::Upfirdn2dParams::downsample2d(4)},
                          Case{"filter2d", nn::Upfirdn2dParams::filter2d(4)}}) {
        const std::string pre = c.name;
        Tensor<float> x = f.load(pre + ".x");
        const Shape xs = x.shape();
        x.reshape({xs[0] * xs[1], xs[2], xs[3]});
        Tensor<float> gy = f.load(pre + ".grad_y");
        const Shape ys = gy.shape();
        gy.reshape({ys[0] * ys[1], ys[2], ys[3]});
        Tensors g = run_upfirdn2d(b, x, filt, c.p, gy);
        g[0].reshape(ys);
        g[1].reshape(xs);
        CHECK_CLOSE("upfirdn2d.y", Precision::fp32, pre + "_official", g[0], f.load(pre + ".y"), 1e-5);
        CHECK_CLOSE("upfirdn2d.grad_x", Precision::fp32, pre + "_official", g[1], f.load(pre + ".grad_x"), 1e-4);
    }
    std::uint64_t seed = 100;
    for (int trial = 0; trial < 12; ++trial) {
        Rng rng(seed + trial);
        nn::Upfirdn2dParams p;
        p.up = 1 + static_cast<int>(rng.below(3));
        p.down = 1 + static_cast<int>(rng.below(3));
        p.pad_x0 = static_cast<int>(rng.below(5)) - 1;
        p.pad_x1 = static_cast<int>(rng.below(5)) - 1;
        p.pad_y0 = static_cast<int>(rng.below(5)) - 1;
        p.pad_y1 = static_cast<int>(rng.below(5)) - 1;
        p.gain = 0.5f + static_cast<float>(rng.below(4));
        p.flip_filter = rng.below(2) == 1;
        const Index fh = 1 + static_cast<Index>(rng.below(5)), fw = 1 + static_cast<Index>(rng.below(5));
        const Index planes = 1 + static_cast<Index>(rng.below(7)), h = 3 + static_cast<Index>(rng.below(30)),
                    w = 3 + static_cast<Index>(rng.below(30));
        if (p.out_h(h, fh) < 1 || p.out_w(w, fw) < 1) continue;
        const auto x = random_tensor({planes, h, w}, seed * 3 + trial), filt2 = random_tensor({fh, fw}, seed * 5 + trial);
        const auto gy = random_tensor({planes, p.out_h(h, fh), p.out_w(w, fw)}, seed * 7 + trial);
        const Tensors g = run_upfirdn2d(b, x, filt2, p, gy), c = cpu::upfirdn2d(x, filt2, p, gy);
        const std::string what = concat("up", p.up, "_down", p.down, "_f", fh, "x", fw, "_", h, "x", w);
        CHECK_CLOSE("upfirdn2d.y", Precision::fp32, what, g[0], c[0], 1e-5);
        CHECK_CLOSE("upfirdn2d.grad_x", Precision::fp32, what, g[1], c[1], 1e-5);
    }
}

TEST_CASE("CUDA tiled 4x4 FIR matches the CPU and the gather kernels, epilogue included", "[cuda][ops][fir]") {
    cuda::Stream stream;
    Cuda b = make_backend(stream);
    std::uint64_t seed = 300;
    // Planes wide enough for the tiled kernel (>= 32 columns), partial tiles on both edges, every
    // pad the synthesis uses and some it does not, both filter orientations.
    struct G {
        Index planes, h, w;
        int pad_y0, pad_x0, pad_y1, pad_x1;
        bool flip;
        float gain;
    };
    for (const G& c : {G{1, 37, 33, 1, 1, 1, 1, false, 1.0f}, G{6, 64, 64, 2, 1, 1, 2, true, 4.0f},
                       G{3, 130, 97, 0, 3, -1, 2, false, 2.5f}, G{2, 9, 200, 3, 0, 2, 1, true, 1.0f},
                       G{2, 1025, 1026, 1, 1, 1, 1, false, 1.0f}}) {
        nn::Upfirdn2dParams p;
        p.pad_y0 = c.pad_y0;
        p.pad_x0 = c.pad_x0;
        p.pad_y1 = c.pad_y1;
        p.pad_x1 = c.pad_x1;
        p.flip_filter = c.flip;
        p.gain = c.gain;
        const auto x = random_tensor({c.planes, c.h, c.w}, ++seed), filt = random_tensor({4, 4}, ++seed);
        const Index oh = p.out_h(c.h, 4), ow = p.out_w(c.w, 4);
        const auto gy = random_tensor({c.planes, oh, ow}, ++seed);
        const std::string what = concat(c.planes, "x", c.h, "x", c.w, "_pad", c.pad_y0, c.pad_x0, c.pad_y1, c.pad_x1,
                                        c.flip ? "_flip" : "");
        const cuda::FirGeom geom = cuda::FirGeom::make(c.h, c.w, 4, 4, p);
        REQUIRE(cuda::detail::fir4_tiled_applies(geom, c.planes));
        const Tensors g = run_upfirdn2d(b, x, filt, p, gy), cpu_out = cpu::upfirdn2d(x, filt, p, gy);
        CHECK_CLOSE("upfirdn2d_tiled.y", Precision::fp32, what, g[0], cpu_out[0], 1e-6);
        CHECK_CLOSE("upfirdn2d_tiled.grad_x", Precision::fp32, what, g[1], cpu_out[1], 1e-6);

        // The forward epilogue (plane scale, per-sample noise, bias, lrelu with clamp) and the
        // adjoint's plane scale against the gather kernels on the same device inputs.
        const Index C = c.planes % 3 == 0 ? 3 : 1, N = c.planes / C;
        const auto scale = random_tensor({c.planes}, ++seed), bias = random_tensor({C}, ++seed);
        const auto noise = random_tensor({N, oh, ow}, ++seed), strength = random_tensor({1}, ++seed);
        const auto X = b.upload(x), F = b.upload(filt), GY = b.upload(gy), S = b.upload(scale), B = b.upload(bias);
        const auto NZ = b.upload(noise), ST = b.upload(strength);
        cuda::FirEpilogue epi;
        epi.plane_scale = S.data();
        epi.channels = static_cast<int>(C);
        epi.noise = NZ.data();
        epi.noise_per_sample = true;
        epi.strength = ST.data();
        epi.bias = B.data();
        epi.act = nn::BiasActParams::lrelu(1.0f, 0.8f);
        std::vector<Tensor<float>> outs;
        for (const bool tiled : {true, false}) {
            auto Y = b.empty({c.planes, oh, ow}), Y2 = b.empty({c.planes, oh, ow}), GX = b.empty(x.shape());
            epi.out2 = Y2.data();
            if (tiled) {
                cuda::upfirdn2d_forward(X.data(), c.planes, geom, F.data(), Y.data(), b.stream(), epi);
                cuda::upfirdn2d_backward(GY.data(), c.planes, geom, F.data(), GX.data(), b.stream(), S.data());
            } else {
                cuda::detail::launch_fir<cuda::detail::FirForward>(geom, c.planes, oh * ow, b.stream(), X.data(),
                                                                   static_cast<int>(c.planes), geom, F.data(), epi, Y.data());
                cuda::detail::launch_fir<cuda::detail::FirBackward>(geom, c.planes, c.h * c.w, b.stream(), GY.data(),
                                                                    static_cast<int>(c.planes), geom, F.data(), S.data(),
                                                                    GX.data());
            }
            outs.push_back(b.download(Y));
            outs.push_back(b.download(Y2));
            outs.push_back(b.download(GX));
        }
        CHECK_CLOSE("upfirdn2d_tiled_vs_gather.y", Precision::fp32, what, outs[0], outs[3], 1e-6);
        CHECK_CLOSE("upfirdn2d_tiled_vs_gather.out2", Precision::fp32, what, outs[1], outs[4], 1e-6);
        CHECK_CLOSE("upfirdn2d_tiled_vs_gather.grad_x", Precision::fp32, what, outs[2], outs[5], 1e-6);
    }
}

TEST_CASE("CUDA modulated conv matches all eight official cases", "[cuda][modconv][parity]") {
    cuda::Stream stream;
    const auto f = fixture("modconv_case.safetensors");
    const Tensor<float> filt = nn::make_resample_filter({1, 3, 3, 1});
    for (Precision prec : {Precision::fp32, Precision::tf32, Precision::bf16})
        for (auto mode : {cuda::StyleMode::scale_input, cuda::StyleMode::fold_weights}) {
            Cuda b = make_backend(stream, prec, mode);
            const Bounds bd = bounds_for(prec);
            for (int up : {1, 2})
                for (int demod : {1, 0})
                    for (int fused : {1, 0}) {
                        const std::string pre = concat("up", up, "_demod", demod, "_fused", fused, ".");
                        const Tensor<float> x = f.load(pre + "x"), w = f.load(pre + "weight"), s = f.load(pre + "styles");
                        const nn::ModConvShape sh{x.dim(0), x.dim(1), w.dim(0), x.dim(2), x.dim(3), w.dim(2), up, demod == 1, 4};
                        const Tensors g = run_modconv(b, x, w, s, filt, sh, f.load(pre + "grad_y"), Tensor<float>(w.shape(), 0.0f));
                        const std::string what = concat(pre, cuda::to_string(mode));
                        CHECK_CLOSE("modconv.y", prec, what + "_official", g[0], f.load(pre + "y"), bd.out);
                        CHECK_CLOSE("modconv.grad_x", prec, what + "_official", g[2], f.load(pre + "grad_x"), bd.grad);
                        CHECK_CLOSE("modconv.grad_styles", prec, what + "_official", g[3], f.load(pre + "grad_styles"), bd.grad);
                        CHECK_CLOSE("modconv.grad_weight", prec, what + "_official", g[4], f.load(pre + "grad_weight"), bd.grad);
                    }
        }
}

TEST_CASE("CUDA modulated conv matches the CPU on random shapes", "[cuda][modconv]") {
    struct S {
        Index n, c, o, h, w, k;
        int up;
        bool demod;
    };
    // Channels that are not multiples of 8, odd batches, 1x1 planes, odd planes, k = 1 with up = 2
    // (phases without taps), deep-K / small-plane shapes that take the split-K path, and 1x1 convs
    // with <= 4 outputs (the pointwise kernels).
    const S shapes[] = {{1, 5, 7, 4, 4, 3, 1, true},     {3, 37, 70, 9, 13, 3, 1, true}, {2, 70, 33, 8, 8, 3, 2, true},
                        {3, 3, 5, 1, 1, 3, 1, true},     {1, 512, 512, 4, 4, 3, 1, true}, {1, 256, 128, 8, 8, 3, 2, true},
                        {3, 17, 3, 16, 16, 1, 1, false}, {5, 9, 11, 7, 5, 1, 2, false},   {2, 64, 64, 32, 32, 3, 1, true},
                        {1, 32, 16, 33, 31, 3, 2, true}, {7, 13, 1, 6, 6, 3, 1, true},   {1, 96, 3, 64, 64, 1, 1, false},
                        // the pointwise (ToRGB) kernels: partial pixel tiles, demodulated, one output channel
                        {2, 40, 4, 45, 37, 1, 1, true},  {1, 512, 1, 4, 4, 1, 1, false}};
    cuda::Stream stream;
    const Tensor<float> filt = nn::make_resample_filter({1, 3, 3, 1});
    std::uint64_t seed = 1000;
    for (const S& z : shapes) {
        const nn::ModConvShape sh{z.n, z.c, z.o, z.h, z.w, z.k, z.up, z.demod, 4};
        const RandomModconv r(sh, seed, filt);
        const Tensors& c = r.ref;
        for (Precision prec : {Precision::fp32, Precision::tf32, Precision::bf16})
            for (auto mode : {cuda::StyleMode::scale_input, cuda::StyleMode::fold_weights}) {
                Cuda b = make_backend(stream, prec, mode);
                const Bounds bd = bounds_for(prec);
                const Tensors g = run_modconv(b, r.x, r.w, r.s, filt, sh, r.gy, r.gw0);
                const std::string what = concat("n", z.n, "_c", z.c, "_o", z.o, "_", z.h, "x", z.w, "_k", z.k, "_up", z.up,
                                                z.demod ? "_demod_" : "_nodemod_", cuda::to_string(mode));
                CHECK_CLOSE("modconv.y", prec, what, g[0], c[0], bd.out);
                CHECK_CLOSE("modconv.dcoefs", prec, what, g[1], c[1], 1e-5);
                CHECK_CLOSE("modconv.grad_x", prec, what, g[2], c[2], bd.grad);
                CHECK_CLOSE("modconv.grad_styles", prec, what, g[3], c[3], bd.grad);
                CHECK_CLOSE("modconv.grad_weight", prec, what, g[4], c[4], bd.grad);
                CHECK_CLOSE("modconv.fused_out", prec, what, g[5], c[5], bd.out);
                CHECK_CLOSE("modconv.grad_x_accumulated", prec, what, g[6], c[6], bd.grad);
            }
    }
}

TEST_CASE("CUDA wgmma modulated conv (forced on every shape) matches the CPU", "[cuda][modconv][wgmma]") {
    cuda::Stream stream;
    if (!make_backend(stream).wgmma_enabled()) {
        WARN("SKIPPED: this test_cuda has no sm_90a code or the device is not compute 9.0 (no wgmma path to test)");
        return;
    }
    struct S {
        Index n, c, o, h, w, k;
        bool demod;
        int up = 1;
    };
    // Odd channels (padded K slices, masked columns), planes below and above one 128-pixel tile
    // (global vs shared style-gradient reduction; tiles crossing samples), k = 1 and 3, every tile
    // width 32..256, shapes the automatic engine would also pick, and up = 2.
    const S shapes[] = {{1, 5, 7, 4, 4, 3, true},      {3, 37, 70, 9, 13, 3, true},   {3, 70, 33, 13, 11, 3, true},
                        {2, 17, 3, 16, 16, 1, false},  {1, 96, 130, 7, 5, 3, true},   {5, 33, 200, 12, 12, 3, true},
                        {2, 64, 64, 32, 32, 3, true},  {1, 512, 512, 16, 16, 3, true}, {3, 128, 256, 8, 8, 1, false},
                        {2, 256, 512, 32, 32, 3, true},
                        // up = 2: the four transposed-conv phases and the stride-2 grad-input gather
                        {2, 70, 33, 8, 8, 3, true, 2},  {1, 32, 16, 33, 31, 3, true, 2}, {3, 64, 64, 16, 16, 3, true, 2},
                        {1, 256, 128, 8, 8, 3, false, 2}};
    const Tensor<float> filt = nn::make_resample_filter({1, 3, 3, 1});
    std::uint64_t seed = 7000;
    for (const S& z : shapes) {
        const nn::ModConvShape sh{z.n, z.c, z.o, z.h, z.w, z.k, z.up, z.demod, 4};
        const RandomModconv r(sh, seed, filt);
        const Tensors& c = r.ref;
        for (Precision prec : {Precision::tf32, Precision::bf16}) {
            Cuda b = make_backend(stream, prec, cuda::StyleMode::automatic, cuda::GemmEngine::wgmma);
            const Bounds bd = bounds_for(prec);
            const Tensors g = run_modconv(b, r.x, r.w, r.s, filt, sh, r.gy, r.gw0);
            const std::string what = concat("wgmma_n", z.n, "_c", z.c, "_o", z.o, "_", z.h, "x", z.w, "_k", z.k, "_up",
                                            z.up, z.demod ? "_demod" : "_nodemod");
            check_modconv_outputs(g, c, prec, what, bd);
        }
    }
}

TEST_CASE("CUDA wgmma split-K: small planes on the wgmma path match the CPU, with and without the split",
          "[cuda][modconv][wgmma][split_k]") {
    cuda::Stream stream;
    if (!wgmma_or_warn(stream)) return;
    struct S {
        Index n, c, o, h, w;
        int up;
    };
    // A batch-1 inversion's small layers (512 channels at 4^2..32^2, up = 2 from 8^2 and 32^2) and
    // odd ones: with the automatic engine their few output tiles are cut along K over several
    // blocks (CudaOptions::wgmma_split_k) and added up atomically; off, they run on the portable
    // kernels. Both must match the CPU: forward (with the fused noise/bias/act pass after the
    // split), grad_x (also accumulated into), the style and weight gradients.
    const S shapes[] = {{1, 512, 512, 4, 4, 1},   {1, 512, 512, 16, 16, 1}, {1, 512, 512, 32, 32, 1},
                        {1, 512, 512, 8, 8, 2},   {1, 512, 256, 32, 32, 2}, {2, 96, 130, 7, 9, 1},
                        {1, 256, 64, 12, 12, 2}};
    const Tensor<float> filt = nn::make_resample_filter({1, 3, 3, 1});
    std::uint64_t seed = 7700;
    for (const S& z : shapes) {
        const nn::ModConvShape sh{z.n, z.c, z.o, z.h, z.w, 3, z.up, true, 4};
        const RandomModconv r(sh, seed, filt);
        for (Precision prec : {Precision::tf32, Precision::bf16})
            for (const bool split : {true, false}) {
                cuda::CudaOptions o = precision_options(prec);
                o.wgmma_split_k = split;
                Cuda b(stream, o);
                // The rule: the 512-channel 16^2 grad-input (16 output tiles: too few for any GPU
                // alone) takes the wgmma path, and so the fused prologue, only with split-K.
                if (z.c == 512 && z.o == 512 && z.h == 16 && z.up == 1)
                    CHECK(b.modconv_backward_fuses_prologue(sh, false) == split);
                check_random_modconv(b, r, filt, sh, prec, split ? "split_on" : "split_off");
            }
    }
}

TEST_CASE("CUDA wgmma row-halo convs: wide stride-1 planes match the CPU, with and without the row tiles and strips",
          "[cuda][modconv][wgmma][row_tiles]") {
    // The rules (host only): which conv GEMMs take the row-halo kernel, and which its strip variant.
    using cuda::hopper::ConvTuning, cuda::hopper::row_tiles_apply, cuda::hopper::strip_applies;
    const ConvTuning on{0, true, true, 132}, off{0, false, false, 132}, no_strips{0, true, false, 132};
    CHECK(row_tiles_apply(on, 1, 1, 3, 3, 1024, 32));        // the 1024^2 layers
    CHECK(row_tiles_apply(on, 1, 1, 3, 3, 128, 128));        // one tile per row
    CHECK(row_tiles_apply(on, 1, 1, 3, 3, 1000, 64));        // a tail tile wasting < 1/8
    CHECK_FALSE(row_tiles_apply(off, 1, 1, 3, 3, 1024, 32)); // CudaOptions::wgmma_row_tiles = false
    CHECK_FALSE(row_tiles_apply(on, 2, 1, 3, 3, 1024, 32));  // split-K
    CHECK_FALSE(row_tiles_apply(on, 1, 2, 3, 3, 1024, 32));  // the stride-2 grad-input of up = 2
    CHECK_FALSE(row_tiles_apply(on, 1, 1, 2, 2, 512, 32));   // the up = 2 phases (2 x 2, 2 x 1 taps)
    CHECK_FALSE(row_tiles_apply(on, 1, 1, 3, 3, 513, 32));   // 5 tiles for 513 pixels
    CHECK_FALSE(row_tiles_apply(on, 1, 1, 3, 3, 64, 32));    // narrower than a tile
    CHECK_FALSE(row_tiles_apply(on, 1, 1, 3, 3, 1024, 256)); // 256-column tiles
    CHECK(strip_applies(on, 3, 3, 1, 32));        // TF32 <= 32 channels, BF16 <= 64: one K slice per tap
    CHECK(strip_applies(on, 3, 3, 1, 64));
    CHECK_FALSE(strip_applies(on, 3, 3, 2, 32));  // two slices per tap (TF32 64 channels)
    CHECK_FALSE(strip_applies(on, 3, 3, 1, 128)); // the 9 weight tiles of 128 columns would not fit
    CHECK_FALSE(strip_applies(no_strips, 3, 3, 1, 32));
    CHECK(cuda::hopper::strip_rows_for(1024, 8, 132) == 32);  // 1024^2, 32 columns: 256 blocks of 32 rows
    CHECK(cuda::hopper::strip_rows_for(37, 1, 132) == 4);     // at least 4 rows a strip
    // The defaults follow the step benchmark (docs/benchmarks.md, session 25: neither layout was
    // faster than the gather on an H200): both only when asked, in the options and the conv context.
    CHECK_FALSE(cuda::CudaOptions{}.wgmma_row_tiles);
    CHECK_FALSE(cuda::CudaOptions{}.wgmma_row_strips);
    CHECK_FALSE(cuda::ModconvContext{}.conv_tuning().row_tiles);
    CHECK_FALSE(cuda::ModconvContext{}.conv_tuning().strips);
    {
        int dy[9], dx[9], cell[9], ymin = 0, xmin = 0, kh = 0, kw = 0;
        for (int t = 0; t < 9; ++t) dy[t] = 1 - t / 3, dx[t] = 1 - t % 3;  // the grad-input's flipped taps
        REQUIRE(cuda::hopper::tap_rectangle(9, dy, dx, ymin, xmin, kh, kw, cell));
        CHECK((ymin == -1 && xmin == -1 && kh == 3 && kw == 3));
        CHECK((cell[0] == 8 && cell[2] == 6 && cell[4] == 4 && cell[8] == 0));
        dx[8] = 0;  // two taps on one cell: not a rectangle
        CHECK_FALSE(cuda::hopper::tap_rectangle(9, dy, dx, ymin, xmin, kh, kw, cell));
    }
    cuda::Stream stream;
    if (!wgmma_or_warn(stream)) return;
    struct S {
        Index n, c, o, h, w;
        int up;
    };
    // Planes one tile wide, two tiles wide with a batch, a tail tile (1000 = 7 x 128 + 104), odd
    // channels (padded K slices, masked columns), 128-column tiles over several K slices (the
    // ring wraps), an up = 2 layer (its convs keep the gather: phases and stride 2), and strips:
    // 32 channels (one K slice per tap in TF32 and BF16) over 37 rows (ten strips of 4 rows, the
    // last one row; the halo ring wraps), 20 -> 48 channels with a batch (forward strips of
    // 64-column tiles; the TF32 grad-input has two K slices per tap and takes the row tiles).
    const S shapes[] = {{1, 32, 32, 4, 128, 1},   {2, 64, 64, 5, 256, 1}, {1, 37, 70, 3, 1000, 1},
                        {1, 128, 128, 3, 128, 1}, {1, 64, 32, 4, 128, 2}, {1, 32, 32, 37, 128, 1},
                        {2, 20, 48, 9, 256, 1}};
    const Tensor<float> filt = nn::make_resample_filter({1, 3, 3, 1});
    std::uint64_t seed = 7900;
    for (const S& z : shapes) {
        const nn::ModConvShape sh{z.n, z.c, z.o, z.h, z.w, 3, z.up, true, 4};
        const RandomModconv r(sh, seed, filt);
        for (Precision prec : {Precision::tf32, Precision::bf16})
            for (const int mode : {0, 1, 2}) {  // strips + row tiles, row tiles only, the gather
                cuda::CudaOptions o = precision_options(prec);
                o.engine = cuda::GemmEngine::wgmma;  // every shape on the wgmma path, no split-K:
                o.wgmma_split_k = false;             // the row tiles apply wherever the rule says
                o.wgmma_row_tiles = mode < 2;
                o.wgmma_row_strips = mode == 0;
                Cuda b(stream, o);
                const char* mode_name[] = {"strips", "rows", "gather"};
                check_random_modconv(b, r, filt, sh, prec, mode_name[mode]);
            }
    }
}

TEST_CASE("CUDA fused modconv backward (epilogue backward + conv backward) matches the CPU", "[cuda][modconv][fused_backward]") {
    cuda::Stream stream;
    const bool wgmma = make_backend(stream).wgmma_enabled();
    if (!wgmma) WARN("this test_cuda has no sm_90a code or the device is not compute 9.0: only the unfused path runs");
    struct S {
        Index n, c, o, h, w;
        int up;
        bool demod;
    };
    // up = 1 demodulated shapes take the one-pass prologue on the wgmma path when no weight
    // gradient is wanted: planes not a multiple of the 64-pixel tile or of its 4-row blocks, odd
    // channels (padded operand channels), more than 64 channels (several channel blocks: the noise
    // gradient accumulates), batches; up = 2 and non-demodulated shapes take the unfused pair.
    const S shapes[] = {{1, 32, 32, 64, 64, 1, true}, {2, 37, 45, 13, 70, 1, true}, {3, 64, 130, 9, 11, 1, true},
                        {1, 48, 16, 33, 5, 1, true},  {2, 64, 32, 16, 16, 2, true}, {2, 40, 24, 12, 12, 1, false},
                        // 128 wide: the grad-input over the prologue's operand takes the row-halo kernel
                        {2, 32, 40, 5, 128, 1, true}};
    const Tensor<float> filt = nn::make_resample_filter({1, 3, 3, 1});
    std::uint64_t seed = 9100;
    for (const S& z : shapes) {
        const nn::ModConvShape sh{z.n, z.c, z.o, z.h, z.w, 3, z.up, z.demod, 4};
        const auto x = random_tensor({z.n, z.c, z.h, z.w}, ++seed), w = random_tensor({z.o, z.c, 3, 3}, ++seed);
        const auto s = random_tensor({z.n, z.c}, ++seed, 0.5f, 1.0f);
        const auto gout = random_tensor({z.n, z.o, sh.out_h(), sh.out_w()}, ++seed);
        const auto gw0 = random_tensor(w.shape(), ++seed), gb0 = random_tensor({z.o}, ++seed);
        const auto noise = random_tensor({z.n, sh.out_h(), sh.out_w()}, ++seed), bias = random_tensor({z.o}, ++seed, 0.2f);
        for (const auto act : {nn::BiasActParams::lrelu(), nn::BiasActParams::lrelu(1.0f, 0.9f)}) {
            // The CPU's forward feeds both backwards: the same activation masks and clamps.
            const Tensors fwd = cpu::modconv_forward_fused(x, w, s, filt, sh, act, noise, bias);
            for (bool want_gw : {false, true}) {
                const Tensors c = cpu::modconv_backward_fused(x, w, s, filt, sh, act, fwd, noise, gout, gw0, gb0, 0.25f, want_gw);
                for (Precision prec : {Precision::fp32, Precision::tf32, Precision::bf16})
                    for (auto [engine, allow] : {std::pair{cuda::GemmEngine::automatic, true}, {cuda::GemmEngine::wgmma, true},
                                                 {cuda::GemmEngine::wgmma, false}}) {
                        cuda::CudaOptions o;
                        o.precision = prec, o.engine = engine, o.fuse_backward_prologue = allow;
                        Cuda b(stream, o);
                        const bool fused = b.modconv_backward_fuses_prologue(sh, want_gw);
                        // The rule itself: every up = 1 demodulated shape here takes it on a forced
                        // wgmma engine unless the option turns it off; FP32 never (no wgmma path).
                        if (wgmma && engine == cuda::GemmEngine::wgmma && prec != Precision::fp32)
                            CHECK(fused == (allow && z.up == 1 && z.demod && !want_gw));
                        if (prec == Precision::fp32 || !allow) CHECK_FALSE(fused);
                        const Bounds bd = bounds_for(prec);
                        const Tensors g =
                            run_modconv_backward_fused(b, x, w, s, filt, sh, act, fwd, noise, gout, gw0, gb0, 0.25f, want_gw);
                        const std::string what = concat("n", z.n, "_c", z.c, "_o", z.o, "_", z.h, "x", z.w, "_up", z.up,
                                                        z.demod ? "_demod" : "_nodemod", "_clamp", act.clamp,
                                                        want_gw ? "_gw" : "", fused ? "_fused" : "_pair", "_",
                                                        cuda::to_string(engine));
                        CHECK_CLOSE("modconv_bwd_fused.grad_x", prec, what, g[0], c[0], bd.grad);
                        CHECK_CLOSE("modconv_bwd_fused.grad_styles", prec, what, g[1], c[1], bd.grad);
                        CHECK_CLOSE("modconv_bwd_fused.grad_weight", prec, what, g[2], c[2], bd.grad);
                        CHECK_CLOSE("modconv_bwd_fused.grad_bias", prec, what, g[3], c[3], 1e-5);
                        CHECK_CLOSE("modconv_bwd_fused.grad_noise", prec, what, g[4], c[4], 1e-5);
                        CHECK_CLOSE("modconv_bwd_fused.grad_strength", prec, what, g[5], c[5], 1e-4);
                    }
            }
        }
    }
}

TEST_CASE("Two CUDA backends on two streams do not interfere", "[cuda][streams]") {
    cuda::Stream s1, s2;
    Cuda b1 = make_backend(s1), b2 = make_backend(s2);
    const nn::ModConvShape sh{3, 40, 24, 16, 16, 3, 1, true, 4};
    const Tensor<float> filt = nn::make_resample_filter({1, 3, 3, 1});
    const auto x = random_tensor({3, 40, 16, 16}, 1), w = random_tensor({24, 40, 3, 3}, 2);
    const auto s = random_tensor({3, 40}, 3, 0.5f, 1.0f), x2 = random_tensor({3, 40, 16, 16}, 4);
    auto X1 = b1.upload(x), X2 = b2.upload(x2), W1 = b1.upload(w), W2 = b2.upload(w), S1 = b1.upload(s), S2 = b2.upload(s);
    auto F1 = b1.upload(filt), F2 = b2.upload(filt);
    auto Y1 = b1.empty({3, 24, 16, 16}), Y2 = b2.empty({3, 24, 16, 16}), D1 = b1.empty({3, 24}), D2 = b2.empty({3, 24});
    for (int rep = 0; rep < 20; ++rep) {  // interleaved launches, no synchronisation in between
        b1.modconv_forward(X1.data(), W1.data(), S1.data(), F1.data(), sh, Y1.data(), D1.data());
        b2.modconv_forward(X2.data(), W2.data(), S2.data(), F2.data(), sh, Y2.data(), D2.data());
    }
    const Tensor<float> y1 = b1.download(Y1), y2 = b2.download(Y2);
    const Tensors r1 = cpu::modconv(x, w, s, filt, sh, random_tensor(y1.shape(), 5), Tensor<float>(w.shape(), 0.0f));
    const Tensors r2 = cpu::modconv(x2, w, s, filt, sh, random_tensor(y1.shape(), 5), Tensor<float>(w.shape(), 0.0f));
    CHECK(relative_l2_error(y1.values(), r1[0].values()) <= 1e-5);
    CHECK(relative_l2_error(y2.values(), r2[0].values()) <= 1e-5);
    CHECK(b1.pool().bytes_in_use() > 0);
    CHECK(&b1.pool() != &b2.pool());
}

TEST_CASE("CUDA errors become exceptions with file:line and the CUDA message", "[cuda][errors]") {
    cuda::Stream stream;
    Cuda b = make_backend(stream);
    try {
        GANINV_CUDA_CHECK(cudaMemcpyAsync(nullptr, reinterpret_cast<void*>(16), 64, cudaMemcpyDeviceToDevice, stream));
        FAIL("no exception");
    } catch (const CudaError& e) {
        const std::string msg = e.what();
        CHECK(msg.find("test_cuda_ops.cu:") != std::string::npos);
        CHECK(msg.find("cudaMemcpyAsync") != std::string::npos);
    }
    (void)cudaGetLastError();
    nn::ModConvShape bad{1, 4, 4, 8, 8, 2, 1, true, 4};
    auto X = b.zeros({1, 4, 8, 8});
    std::string msg;
    try {
        b.modconv_forward(X.data(), X.data(), X.data(), X.data(), bad, X.data(), X.data());
    } catch (const ValueError& e) {
        msg = e.what();
    }
    CHECK(msg.find("kernel size must be odd") != std::string::npos);
    // A DeviceTensor copy is a device copy on the tensor's own stream.
    auto a = b.upload(random_tensor({5, 7}, 3));
    auto c = a;
    CHECK(c.data() != a.data());
    CHECK(relative_l2_error(b.download(c).values(), b.download(a).values()) == 0.0);
}
