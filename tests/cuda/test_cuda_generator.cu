// StyleGAN2<Cuda> against the official fixtures (tests/data/stylegan2_tiny) and against
// StyleGAN2<Cpu> on random configurations: odd channel counts, odd batches, every noise mode,
// clamping, resolutions 4 to 1024; mapping, synthesis, and every gradient (ws, z, noise,
// parameters). FP32 bounds: outputs 1e-4, gradients 1e-3. TF32 / BF16: docs/cuda.md. Also: the
// fused conv epilogue equals the unfused path, and a CUDA graph replay equals the eager run.
#include "cuda_catch.hpp"
#include "cuda_check_close.hpp"

#include "cpu_reference.hpp"

#include <ganinv/backend/cuda.cuh>
#include <ganinv/cuda/stream.hpp>
#include <ganinv/models/stylegan2.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

using namespace ganinv;
using namespace ganinv::test;
using cuda::Precision;

namespace {

/// tests/data, or $GANINV_TEST_DATA_DIR (binaries built elsewhere and run on a GPU machine).
std::filesystem::path data_root() {
    if (const char* e = std::getenv("GANINV_TEST_DATA_DIR")) return e;
    return GANINV_TEST_DATA_DIR;
}

Cuda make_backend(cudaStream_t s, Precision p = Precision::fp32) {
    cuda::CudaOptions o;
    o.precision = p;
    o.cache_allocations = std::getenv("GANINV_TEST_NO_POOL") == nullptr;  // memcheck: exact allocations
    return Cuda(s, o);
}

/// Bounds: outputs; gradients w.r.t. ws, z; noise and parameter gradients; the vector of all
/// layers' noise_strength gradients. Each of those is a scalar sum over a whole layer that
/// largely cancels, so its own relative error is ill-conditioned: one activation that lands on
/// the other side of lrelu's kink after a last-bit change upstream moves it by ~1/sqrt(terms)
/// (seen: 7e-3 in FP32 at 128^2), and reduced precision loses most of it. They are therefore
/// compared as one vector, on the scale of the network's strength gradients (docs/cuda.md).
struct GenBounds {
    double out, grad, noise_param, strength;
};
constexpr GenBounds kFp32Bounds{1e-4, 1e-3, 1e-3, 1e-3};

/// With `spread` (the CPU again on the case moved at float resolution, ulp_moved, under several
/// seeds): each parameter gradient may differ from the CPU's by up to twice the largest move the
/// CPU itself shows, where that is above bd.noise_param. The moves are activation-slope flips: on
/// the 1024^2 case, 100% of b1024.conv0's noise-gradient change sits in under 20 of its 2^20
/// pixels (the few pre-activations within rounding of lrelu's kink), so they come in discrete
/// sizes: eight seeds moved b1024.conv0.bias by 1e-8 (no flip) to 1.5e-3 and b512.conv1.bias up
/// to 2.3e-3 (docs/benchmarks/issue14/session26/cpu_flip_spread_res1024_cmax5.txt), what an H200
/// and an H100 measured between CUDA and a CPU reference built without FMA (1.1e-3 to 1.5e-3).
/// A missing term or wrong sign moves a gradient by O(1).
void compare(const GenResult& g, const GenResult& c, Precision prec, const std::string& what, const GenBounds& bd,
             const std::vector<GenResult>& spread = {}) {
    const double out_bound = bd.out, grad_bound = bd.grad;
    CHECK_CLOSE("generator.ws", prec, what, g.ws, c.ws, 1e-5);
    CHECK_CLOSE("generator.styles", prec, what, g.styles, c.styles, 1e-5);
    CHECK_CLOSE("generator.img", prec, what, g.img, c.img, out_bound);
    REQUIRE(g.block_img.size() == c.block_img.size());
    for (std::size_t i = 0; i < g.block_img.size(); ++i) {
        CHECK_CLOSE("generator.block_img", prec, concat(what, "_b", i), g.block_img[i], c.block_img[i], out_bound);
        CHECK_CLOSE("generator.block_x", prec, concat(what, "_b", i), g.block_x[i], c.block_x[i], out_bound);
    }
    CHECK_CLOSE("generator.grad_ws", prec, what, g.grad_ws, c.grad_ws, grad_bound);
    CHECK_CLOSE("generator.grad_z", prec, what, g.grad_z, c.grad_z, grad_bound);
    REQUIRE(g.grad_noise.size() == c.grad_noise.size());
    for (std::size_t i = 0; i < g.grad_noise.size(); ++i)
        CHECK_CLOSE("generator.grad_noise", prec, concat(what, "_", i), g.grad_noise[i], c.grad_noise[i], bd.noise_param);
    std::vector<float> strength_gpu, strength_cpu;
    for (const auto& [name, t] : c.pgrads.items()) {
        if (name.ends_with("noise_strength")) {
            strength_gpu.push_back(g.pgrads.at(name)[0]);
            strength_cpu.push_back(t[0]);
        } else {
            double own = 0;
            for (const GenResult& m : spread) own = std::max(own, relative_l2_error(m.pgrads.at(name).values(), t.values()));
            CHECK_CLOSE("generator.grad_param", prec, what + "_" + name, g.pgrads.at(name), t, std::max(bd.noise_param, 2 * own));
        }
    }
    if (!strength_cpu.empty()) {
        const Index k = static_cast<Index>(strength_cpu.size());
        CHECK_CLOSE("generator.grad_noise_strength", prec, what, Tensor<float>({k}, strength_gpu),
                    Tensor<float>({k}, strength_cpu), bd.strength);
    }
}

/// The case with every parameter (but the fixed resampling filter) one float ulp up or down, a
/// random sign per value: the rounding differences a second implementation brings to every layer.
GenCase ulp_moved(GenCase gc, std::uint64_t seed) {
    Rng rng(seed);
    for (auto& [name, t] : gc.params.items()) {
        if (name.ends_with("resample_filter")) continue;
        for (float& v : t.values()) v = std::nextafter(v, rng.normal() > 0 ? 1e30f : -1e30f);
    }
    return gc;
}

}  // namespace

TEST_CASE("StyleGAN2<Cuda> matches the official fixtures", "[cuda][generator][parity]") {
    cuda::Stream stream;
    auto g = StyleGAN2<Cuda>::load(data_root() / "stylegan2_tiny" / "generator.safetensors", make_backend(stream));
    const SafetensorsFile cs(data_root() / "stylegan2_tiny" / "generator_case.safetensors");
    Cuda& b = g.backend();
    const Precision p = Precision::fp32;
    const auto z = b.upload(cs.load("z"));
    CHECK_CLOSE("fixture.ws", p, "official", b.download(g.mapping(z)), cs.load("ws"), 1e-4);
    CHECK_CLOSE("fixture.ws_trunc", p, "official", b.download(g.mapping(z, {0.7f, std::nullopt})), cs.load("ws_trunc"), 1e-4);

    const auto ws = b.upload(cs.load("ws_trunc"));
    StyleGAN2<Cuda>::Cache cache;
    const Tensor<float> img = b.download(g.synthesis(ws, {}, &cache));
    CHECK_CLOSE("fixture.img", p, "official", img, cs.load("img"), 1e-4);
    CHECK_CLOSE("fixture.img_unfused", p, "official", img, cs.load("img_unfused"), 1e-4);
    int blk = 0;
    for (int res : {4, 8, 16, 32}) {
        CHECK_CLOSE("fixture.block_x", p, concat("b", res), b.download(cache.block_x[blk]), cs.load(concat("block.b", res, ".x")), 1e-4);
        CHECK_CLOSE("fixture.block_img", p, concat("b", res), b.download(cache.block_img[blk]), cs.load(concat("block.b", res, ".img")), 1e-4);
        ++blk;
    }
    CHECK_CLOSE("fixture.img_noise_none", p, "official", b.download(g.synthesis(ws, {NoiseMode::none})), cs.load("img_noise_none"), 1e-4);

    NamedTensors grads = g.zero_param_grads();
    SynthesisGradients<Cuda> detail;
    const Tensor<float> grad_ws = b.download(g.synthesis_backward_ws(cache, b.upload(cs.load("grad_out")), &grads, &detail));
    CHECK_CLOSE("fixture.grad_ws", p, "official", grad_ws, cs.load("grad_ws"), 1e-3);
    int checked = 0;
    for (const auto& name : cs.names()) {
        if (!name.starts_with("grad.synthesis.")) continue;
        CHECK_CLOSE("fixture.grad_param", p, name, grads.at(name.substr(5)), cs.load(name), 1e-3);
        ++checked;
    }
    CHECK(checked == 59);
    CHECK(detail.noise.size() == 7);

    StyleGAN2<Cuda>::MapCache mc;
    const auto ws_z = g.mapping(b.upload(cs.load("z")), {}, &mc);
    StyleGAN2<Cuda>::Cache cz;
    CHECK_CLOSE("fixture.img_z", p, "official", b.download(g.synthesis(ws_z, {}, &cz)), cs.load("img_z"), 1e-4);
    const auto gws = g.synthesis_backward_ws(cz, b.upload(cs.load("grad_out_z")));
    CHECK_CLOSE("fixture.grad_z", p, "official", b.download(g.mapping_backward(mc, gws)), cs.load("grad_z"), 1e-3);
}

TEST_CASE("StyleGAN2<Cuda> matches StyleGAN2<Cpu> on random configurations", "[cuda][generator]") {
    struct Cfg {
        Index res, base, cmax, batch, img_ch;
        std::optional<float> clamp;
        NoiseMode mode;
    };
    // channel_base / res, capped at channel_max: odd and non-multiple-of-8 channel counts everywhere.
    const Cfg cfgs[] = {{4, 40, 7, 1, 3, std::nullopt, NoiseMode::constant},
                        {8, 72, 9, 3, 1, 0.5f, NoiseMode::random},
                        {32, 416, 13, 2, 3, std::nullopt, NoiseMode::none},
                        {64, 1600, 37, 5, 3, 1.0f, NoiseMode::explicit_maps}};
    cuda::Stream stream;
    std::uint64_t seed = 50;
    for (const Cfg& c : cfgs) {
        const GenCase gc = make_gen_case(c.res, c.base, c.cmax, c.batch, c.img_ch, c.clamp, c.mode, ++seed);
        const GenResult ref = cpu::generator(gc);
        const std::string what = concat("res", c.res, "_cmax", c.cmax, "_n", c.batch, "_noise", static_cast<int>(c.mode),
                                        c.clamp ? "_clamp" : "");
        compare(run_generator(gc, make_backend(stream)), ref, Precision::fp32, what, kFp32Bounds);
    }
}

TEST_CASE("StyleGAN2<Cuda> matches StyleGAN2<Cpu> at 1024x1024 (small channel_max)", "[cuda][generator][large]") {
    cuda::Stream stream;
    const GenCase gc = make_gen_case(1024, 2048, 5, 1, 3, std::nullopt, NoiseMode::constant, 61);
    // Five channels over 2^20 pixels: a layer's parameter gradient is a sum that cancels, and a
    // last-bit change upstream flips a few activations across lrelu's kink (see compare): the
    // CPU's own moves under six one-ulp parameter changes bound it.
    const GenResult ref = cpu::generator(gc);
    std::vector<GenResult> moved;
    for (std::uint64_t seed = 1; seed <= 6; ++seed) moved.push_back(cpu::generator(ulp_moved(gc, seed)));
    compare(run_generator(gc, make_backend(stream)), ref, Precision::fp32, "res1024_cmax5_n1", kFp32Bounds, moved);
}

TEST_CASE("StyleGAN2<Cuda> in TF32 and BF16 stays within the documented bounds", "[cuda][generator][precision]") {
    cuda::Stream stream;
    const GenCase gc = make_gen_case(64, 4096, 64, 3, 3, 256.0f, NoiseMode::constant, 77);
    const GenResult ref = cpu::generator(gc);
    compare(run_generator(gc, make_backend(stream, Precision::tf32)), ref, Precision::tf32, "res64_c64_n3",
            GenBounds{5e-3, 5e-2, 1e-1, 0.3});
    compare(run_generator(gc, make_backend(stream, Precision::bf16)), ref, Precision::bf16, "res64_c64_n3",
            GenBounds{3e-2, 1.5e-1, 3e-1, 2.0});
}

TEST_CASE("StyleGAN2<Cuda> without parameter gradients (an inversion's backward) takes the fused prologue and matches the CPU",
          "[cuda][generator][precision][fused_backward]") {
    cuda::Stream stream;
    GenCase gc = make_gen_case(64, 4096, 64, 2, 3, 256.0f, NoiseMode::constant, 78);
    gc.param_grads = false;
    const GenResult ref = cpu::generator(gc);
    for (const Precision p : {Precision::tf32, Precision::bf16}) {
        std::optional<GenResult> per_mode[2];
        for (const bool fuse : {true, false}) {
            cuda::CudaOptions o;
            o.precision = p;
            o.engine = cuda::GemmEngine::wgmma;  // every 3x3 layer on the wgmma path, so the prologue applies
            o.fuse_backward_prologue = fuse;
            const Cuda b(stream, o);
            if (!b.wgmma_enabled()) {
                WARN("SKIPPED: this test_cuda has no sm_90a code or the device is not compute 9.0");
                return;
            }
            // The 64^2 config's 3x3 up = 1 layers (64 channels at 64^2) take it when fused.
            CHECK(b.modconv_backward_fuses_prologue({2, 64, 64, 64, 64, 3, 1, true, 4}, false) == fuse);
            const GenResult g = run_generator(gc, b);
            compare(g, ref, p, concat("res64_c64_n2_no_param_grads_", fuse ? "fused" : "unfused"),
                    p == Precision::tf32 ? GenBounds{5e-3, 5e-2, 1e-1, 0.3} : GenBounds{3e-2, 1.5e-1, 3e-1, 2.0});
            per_mode[fuse ? 0 : 1] = g;
        }
        // Fused and unfused differ only in float summation order (the demodulation sums): 1.5e-7
        // on an H100 (session 22).
        CHECK_CLOSE("generator.grad_ws_fused_vs_unfused", p, "res64_c64_n2", per_mode[0]->grad_ws, per_mode[1]->grad_ws, 1e-5);
        for (std::size_t i = 0; i < ref.grad_noise.size(); ++i)
            CHECK_CLOSE("generator.grad_noise_fused_vs_unfused", p, concat("res64_c64_n2_", i), per_mode[0]->grad_noise[i],
                        per_mode[1]->grad_noise[i], 1e-5);
    }
}

TEST_CASE("A captured CUDA graph replays the generator's forward + backward exactly", "[cuda][generator][graph]") {
    cuda::Stream stream;
    const GenCase gc = make_gen_case(32, 512, 24, 2, 3, std::nullopt, NoiseMode::constant, 91);
    StyleGAN2<Cuda> g(gc.cfg, gc.params, make_backend(stream));
    Cuda& b = g.backend();
    const auto ws = b.upload(random_tensor({2, g.num_ws(), g.w_dim()}, 5));
    const auto gimg = b.upload(gc.grad_img);
    Cuda::Buffer img, grad_ws;
    auto step = [&] {
        StyleGAN2<Cuda>::Cache cache;
        img = g.synthesis(ws, {}, &cache);
        grad_ws = g.synthesis_backward_ws(cache, gimg);
    };
    step();  // eager (also warms the pool)
    const Tensor<float> img_eager = b.download(img), gws_eager = b.download(grad_ws);
    cuda::Graph graph;
    graph.capture(stream, step);  // records only: img and grad_ws now name the graph's outputs
    b.fill(img, kPoison);
    b.fill(grad_ws, kPoison);
    for (int i = 0; i < 3; ++i) graph.launch(stream);
    CHECK(relative_l2_error(b.download(img).values(), img_eager.values()) <= 1e-6);
    CHECK(relative_l2_error(b.download(grad_ws).values(), gws_eager.values()) <= 1e-5);
}
