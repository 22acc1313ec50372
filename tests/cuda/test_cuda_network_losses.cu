// Lpips<Cuda>, VggPerceptual<Cuda> and Identity<Cuda> against their Cpu versions (values and
// gradients, batch 1 and odd batches, gray and RGB, with and without resampling / face box),
// against the official LPIPS fixture and face-api's descriptors, in float32, TF32, BF16 and in the
// reference precision (double-accumulated convolutions), the device target cache, and bad
// input. Every gradient buffer is filled with NaN before each call: the losses write it in
// place, so an element they fail to write fails the comparison.
#include "cpu_network_reference.hpp"
#include "cuda_check_close.hpp"

#include <ganinv/core/rng.hpp>
#include <ganinv/loss/network_losses_cuda.cuh>
#include <ganinv/loss/loss_spec.hpp>
#include <ganinv/cuda/stream.hpp>
#include <ganinv/io/safetensors.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>

using namespace ganinv;
using cuda::Precision;

namespace {

std::filesystem::path data_dir() { return GANINV_TEST_DATA_DIR; }

Cuda make_backend(cudaStream_t s) {
    cuda::CudaOptions o;
    o.cache_allocations = std::getenv("GANINV_TEST_NO_POOL") == nullptr;
    return Cuda(s, o);
}

/// Uniform images in (-0.9, 0.9).
Tensor<float> images(const Shape& shape, std::uint64_t seed) {
    Tensor<float> t(shape);
    Rng rng(seed);
    for (float& v : t.values()) v = static_cast<float>(rng.uniform() * 1.8 - 0.9);
    return t;
}

Tensor<float> vec(const std::vector<double>& v) {
    Tensor<float> t({static_cast<Index>(v.size())});
    for (std::size_t i = 0; i < v.size(); ++i) t[static_cast<Index>(i)] = static_cast<float>(v[i]);
    return t;
}

/// A gradient buffer of `shape` full of NaN.
cuda::DeviceTensor poisoned_grad(const Cuda& b, const Shape& shape) {
    cuda::DeviceTensor g = b.empty(shape);
    b.fill(g, std::numeric_limits<float>::quiet_NaN());
    return g;
}

/// Runs `loss` on the device with a poisoned gradient and compares with the Cpu run.
template <class L>
void compare(L& loss, const Cuda& b, const Tensor<float>& pred, const Tensor<float>& target, const test::cpu::LossRun& ref,
             const std::string& what, double value_bound, double grad_bound) {
    const cuda::DeviceTensor p = b.upload(pred), t = b.upload(target);
    cuda::DeviceTensor g = poisoned_grad(b, pred.shape());
    const LossResult r = loss.evaluate(p, t, &g);
    REQUIRE(r.per_image.size() == static_cast<std::size_t>(pred.dim(0)));
    CHECK_CLOSE(loss.name(), Precision::fp32, what + " value", vec(r.per_image), vec(ref.values), value_bound);
    CHECK_CLOSE(loss.name(), Precision::fp32, what + " grad", b.download(g), ref.grad, grad_bound);
    // Second call: the target's features come from the cache; same bits.
    cuda::DeviceTensor g2 = poisoned_grad(b, pred.shape());
    CHECK(loss.evaluate(p, t, &g2).per_image == r.per_image);
    const Tensor<float> h1 = b.download(g), h2 = b.download(g2);
    CHECK(std::memcmp(h1.data(), h2.data(), sizeof(float) * static_cast<std::size_t>(h1.numel())) == 0);
    // Without a gradient: the same values.
    CHECK(loss.evaluate(p, t, nullptr).per_image == r.per_image);
}

Vgg16 trunk() { return Vgg16::hash_rule(); }
std::array<Tensor<float>, 5> lin() { return Lpips<>::load_lin(data_dir() / "lpips" / "lpips_vgg_weights.safetensors"); }
const FaceResNet& face_net() {
    static const FaceResNet net = FaceResNet::load(data_dir() / "face_api" / "face_recognition.safetensors");
    return net;
}

}  // namespace

TEST_CASE("CUDA LPIPS matches the official LPIPS-VGG v0.1 fixture", "[cuda][losses][lpips]") {
    std::printf("cuDNN runtime %d (headers %d)\n", cuda::CudnnContext::version(), CUDNN_VERSION);
    const SafetensorsFile f(data_dir() / "lpips" / "lpips_case.safetensors");
    const Tensor<float> a = f.load("a"), bimg = f.load("b"), grad_ref = f.load("grad_a"), d_ref = f.load("distance");
    cuda::Stream stream;
    Cuda b = make_backend(stream.get());
    Lpips<Cuda> lpips(b, trunk(), lin());
    const cuda::DeviceTensor A = b.upload(a), B = b.upload(bimg);
    cuda::DeviceTensor g = poisoned_grad(b, a.shape());
    const LossResult r = lpips.evaluate(A, B, &g);
    CHECK_CLOSE("lpips", Precision::fp32, "official distance", vec(r.per_image), d_ref, 1e-5);
    // This fixture has max-pool windows decided by conv outputs within float32 rounding of 0
    // (one conv3_3 output is -1.4e-6: tests/unit/test_loss_vgg.cpp); any float32 implementation
    // may round them either way and move that window's gradient to a neighbour, and the moved
    // gradient then spreads over the window's receptive field in the image (the Cpu's float32
    // path: 6.9e-4; only its double-accumulated path matches the official one, to 2.8e-6).
    // cuDNN's rounding moves 2.2e-3 (measured, docs/cuda.md): bound 5e-3. A wrong gradient is
    // off by O(1); the random cases below hold the GPU to 1e-4 of the Cpu's double path, and the
    // reference precision further down meets the issue's 1e-4 on this fixture.
    const Tensor<float> ga = b.download(g);
    const test::cpu::LossRun ref = test::cpu::lpips(a, bimg, 0, true);
    CHECK_CLOSE("lpips", Precision::fp32, "official grad_a", ga, grad_ref, 5e-3);
    CHECK_CLOSE("lpips", Precision::fp32, "fixture grad vs cpu double", ga, ref.grad, 5e-3);
    CHECK(lpips.distance(A, A)[0] == Approx(0.0).margin(1e-12));

    // Reference precision: convolutions accumulated in double and rounded to float once, as the
    // Cpu's set_reference_precision(true). The pool/ReLU decisions are then taken on the values
    // the exact arithmetic gives, and the issue's CPU bound (grad_a <= 1e-4 of the official)
    // holds on the GPU as well.
    REQUIRE_FALSE(lpips.reference_precision());
    lpips.set_reference_precision(true);
    REQUIRE(lpips.reference_precision());
    cuda::DeviceTensor g64 = poisoned_grad(b, a.shape());
    const LossResult r64 = lpips.evaluate(A, B, &g64);
    const Tensor<float> ga64 = b.download(g64);
    CHECK_CLOSE("lpips", Precision::fp32, "official distance [reference precision]", vec(r64.per_image), d_ref, 1e-5);
    CHECK_CLOSE("lpips", Precision::fp32, "official grad_a [reference precision]", ga64, grad_ref, 1e-4);
    CHECK_CLOSE("lpips", Precision::fp32, "fixture grad vs cpu double [reference precision]", ga64, ref.grad, 1e-4);
    CHECK_CLOSE("lpips", Precision::fp32, "fixture distance vs cpu double [reference precision]", vec(r64.per_image),
                vec(ref.values), 1e-5);
    // Reproducible, with the target's features from the cache (computed in this precision: the
    // switch dropped the float32 ones).
    cuda::DeviceTensor g64b = poisoned_grad(b, a.shape());
    CHECK(lpips.evaluate(A, B, &g64b).per_image == r64.per_image);
    const Tensor<float> ga64b = b.download(g64b);
    CHECK(std::memcmp(ga64.data(), ga64b.data(), sizeof(float) * static_cast<std::size_t>(ga64.numel())) == 0);
    // Switching back restores the float32 path bit for bit (its target features recomputed too).
    lpips.set_reference_precision(false);
    cuda::DeviceTensor g32 = poisoned_grad(b, a.shape());
    CHECK(lpips.evaluate(A, B, &g32).per_image == r.per_image);
    const Tensor<float> ga32 = b.download(g32);
    CHECK(std::memcmp(ga.data(), ga32.data(), sizeof(float) * static_cast<std::size_t>(ga.numel())) == 0);

    // What the mode costs (printed for docs/cuda.md, not checked): value + gradient of the
    // fixture's 2 pairs, target cached, mean of 5 after a warm-up call.
    const auto time_ms = [&](bool precise) {
        lpips.set_reference_precision(precise);
        cuda::DeviceTensor gt = b.empty(a.shape());
        lpips.evaluate(A, B, &gt);
        b.synchronize();
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < 5; ++i) lpips.evaluate(A, B, &gt);
        b.synchronize();
        return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / 5.0;
    };
    const double ms32 = time_ms(false), ms64 = time_ms(true);
    std::printf("LPIPS fixture fwd+bwd: float32 %.3f ms, reference precision %.3f ms (%.1fx)\n", ms32, ms64, ms64 / ms32);
}

TEST_CASE("CUDA LPIPS matches the Cpu LPIPS (batches 1 and 3, RGB and gray, area down-sampling)",
          "[cuda][losses][lpips]") {
    cuda::Stream stream;
    Cuda b = make_backend(stream.get());
    {
        Lpips<Cuda> lpips(b, trunk(), lin());
        const Tensor<float> p = images({1, 3, 64, 64}, 11), t = images({1, 3, 64, 64}, 12);
        compare(lpips, b, p, t, test::cpu::lpips(p, t, 0, true), "b1 rgb 64", 1e-5, 1e-4);
    }
    {
        Lpips<Cuda> lpips(b, trunk(), lin(), LpipsOptions{32, true});
        const Tensor<float> p = images({3, 1, 50, 37}, 13), t = images({3, 1, 50, 37}, 14);
        compare(lpips, b, p, t, test::cpu::lpips(p, t, 32, true), "b3 gray 50x37->32", 1e-5, 1e-4);
    }
}

TEST_CASE("CUDA VggPerceptual matches the Cpu VggPerceptual", "[cuda][losses][vgg]") {
    cuda::Stream stream;
    Cuda b = make_backend(stream.get());
    {
        VggPerceptual<Cuda> vp(b, trunk());  // default layers (post-ReLU), no resampling at 40x48
        const Tensor<float> p = images({1, 3, 40, 48}, 21), t = images({1, 3, 40, 48}, 22);
        compare(vp, b, p, t, test::cpu::vgg_perceptual(p, t, {"conv1_1", "conv1_2", "conv3_2", "conv4_2"}, true, {}, 256, true),
                "b1 rgb default", 1e-5, 1e-4);
    }
    {
        VggPerceptualOptions o;
        o.layers = {"conv1_1", "relu2_2", "conv3_2", "conv3_2", "conv4_2"};  // pre-activation taps, a repeated one
        o.after_relu = false;
        o.weights = {1.0, 0.5, 2.0, 0.25, 1.0};
        o.max_size = 24;
        VggPerceptual<Cuda> vp(b, trunk(), o);
        const Tensor<float> p = images({5, 3, 30, 27}, 23), t = images({5, 3, 30, 27}, 24);
        compare(vp, b, p, t, test::cpu::vgg_perceptual(p, t, o.layers, false, o.weights, 24, true),
                "b5 rgb pre-relu 30x27->24", 1e-5, 1e-4);
        const Tensor<float> pg = images({3, 1, 24, 24}, 25), tg = images({3, 1, 24, 24}, 26);
        compare(vp, b, pg, tg, test::cpu::vgg_perceptual(pg, tg, o.layers, false, o.weights, 24, true), "b3 gray 24",
                1e-5, 1e-4);
    }
}

namespace {

struct FaceCase {
    Tensor<float> crops, descriptors;
};
const FaceCase& face_case() {
    static const FaceCase c = [] {
        const SafetensorsFile f(data_dir() / "face_api" / "identity_case.safetensors");
        return FaceCase{f.load("crops"), f.load("descriptors")};
    }();
    return c;
}
/// Crops `idx` (astronaut = 0, its mirror = 1, lfw_0 = 2, its mirror = 3, ...) mapped to [-1, 1],
/// plus dither * the hash-rule uniform of tensor 99 (the autograd fixture's tie breaker).
Tensor<float> crops_pm1(const std::vector<Index>& idx, float dither) {
    const Index per = 3 * 150 * 150;
    Tensor<float> out({static_cast<Index>(idx.size()), 3, 150, 150});
    for (std::size_t k = 0; k < idx.size(); ++k)
        for (Index i = 0; i < per; ++i) out[static_cast<Index>(k) * per + i] = static_cast<float>(face_case().crops[idx[k] * per + i] / 127.5 - 1.0);
    if (dither != 0.0f)
        for (Index i = 0; i < out.numel(); ++i)
            out[i] += static_cast<float>(dither * static_cast<double>(detail::vgg_hash_uniform(99, static_cast<std::uint64_t>(i))));
    return out;
}

/// Channel 0 of crops `idx`, nearest-sampled to 181x175, in [-1, 1], plus a 0.01 dither.
Tensor<float> face_gray(const std::vector<Index>& idx) {
    const Tensor<float>& crops = face_case().crops;
    Tensor<float> out({static_cast<Index>(idx.size()), 1, 181, 175});
    Index i = 0;
    for (Index n : idx)
        for (Index y = 0; y < 181; ++y)
            for (Index x = 0; x < 175; ++x, ++i)
                out[i] = static_cast<float>(crops[((n * 3) * 150 + y * 150 / 181) * 150 + x * 150 / 175] / 127.5 - 1.0) +
                         0.01f * detail::vgg_hash_uniform(98, static_cast<std::uint64_t>(i));
    return out;
}

}  // namespace

TEST_CASE("CUDA FaceResNet reproduces face-api's descriptors of all 22 crops", "[cuda][losses][identity]") {
    cuda::Stream stream;
    Cuda b = make_backend(stream.get());
    Identity<Cuda> id(b, face_net());
    const FaceCase& c = face_case();
    const Tensor<float> d = b.download(id.network().forward(b.upload(c.crops)));
    CHECK_CLOSE("identity", Precision::fp32, "face-api descriptors b22", d, c.descriptors, 1e-5);
    // An odd batch through the loss's [-1, 1] input stage.
    const Tensor<float> d5 = b.download(id.descriptors(b.upload(crops_pm1({3, 4, 5, 6, 7}, 0.0f))));
    Tensor<float> ref5({5, 128});
    std::copy_n(c.descriptors.data() + 3 * 128, 5 * 128, ref5.data());
    CHECK_CLOSE("identity", Precision::fp32, "face-api descriptors b5 via stage", d5, ref5, 1e-5);
}

TEST_CASE("CUDA Identity matches the Cpu Identity and the autograd fixture", "[cuda][losses][identity]") {
    cuda::Stream stream;
    Cuda b = make_backend(stream.get());
    {
        // The autograd fixture (tools/make_identity_grad_fixture.py): two dithered crops against
        // their mirror images; float64 PyTorch reference.
        const SafetensorsFile f(data_dir() / "face_api" / "identity_grad_case.safetensors");
        const Tensor<float> p = crops_pm1({0, 2}, 0.01f), t = crops_pm1({1, 3}, 0.0f);
        Identity<Cuda> id(b, face_net());
        compare(id, b, p, t, test::cpu::identity(p, t, std::nullopt, true), "autograd inputs b2", 1e-5, 1e-4);
        cuda::DeviceTensor g = poisoned_grad(b, p.shape());
        const LossResult r = id.evaluate(b.upload(p), b.upload(t), &g);
        CHECK_CLOSE("identity", Precision::fp32, "autograd loss", vec(r.per_image), f.load("loss"), 1e-4);
        CHECK_CLOSE("identity", Precision::fp32, "autograd grad_pred", b.download(g), f.load("grad_pred"), 1e-3);
    }
    {
        Identity<Cuda> id(b, face_net());
        const Tensor<float> p = crops_pm1({4}, 0.01f), t = crops_pm1({6}, 0.0f);
        compare(id, b, p, t, test::cpu::identity(p, t, std::nullopt, true), "b1 150 rgb", 1e-5, 1e-4);
    }
    {
        // Odd batch, gray, box + area down-sampling (170x160 box of a 181x175 image -> 150x150).
        // Faces, not noise: on noise images the network has activations within float32 rounding
        // of its ReLU / max-pool kinks, and even the Cpu's float32 and double paths differ by 5e-3.
        IdentityOptions o;
        o.box = FaceBox{7, 5, 167, 175};
        Identity<Cuda> id(b, face_net(), o);
        const Tensor<float> p = face_gray({0, 4, 8}), t = face_gray({1, 5, 9});
        compare(id, b, p, t, test::cpu::identity(p, t, std::vector<Index>{7, 5, 167, 175}, true),
                "b3 gray box+resize", 1e-5, 1e-4);
    }
    {
        // Up-sampling (bilinear) of a small RGB crop.
        Identity<Cuda> id(b, face_net());
        const Tensor<float> p = images({1, 3, 120, 131}, 33), t = images({1, 3, 120, 131}, 34);
        compare(id, b, p, t, test::cpu::identity(p, t, std::nullopt, true), "b1 rgb 120x131 up", 1e-5, 1e-4);
    }
}

TEST_CASE("CUDA network losses in reference precision match the Cpu's double path", "[cuda][losses][reference]") {
    cuda::Stream stream;
    Cuda b = make_backend(stream.get());
    {
        Lpips<Cuda> lpips(b, trunk(), lin(), LpipsOptions{32, true});
        lpips.set_reference_precision(true);
        const Tensor<float> p = images({3, 1, 50, 37}, 13), t = images({3, 1, 50, 37}, 14);
        compare(lpips, b, p, t, test::cpu::lpips(p, t, 32, true), "b3 gray 50x37->32 [reference precision]", 1e-5,
                1e-4);
    }
    {
        VggPerceptualOptions o;
        o.layers = {"conv1_1", "relu2_2", "conv3_2", "conv3_2", "conv4_2"};
        o.after_relu = false;
        o.weights = {1.0, 0.5, 2.0, 0.25, 1.0};
        o.max_size = 24;
        VggPerceptual<Cuda> vp(b, trunk(), o);
        vp.set_reference_precision(true);
        const Tensor<float> p = images({5, 3, 30, 27}, 23), t = images({5, 3, 30, 27}, 24);
        compare(vp, b, p, t, test::cpu::vgg_perceptual(p, t, o.layers, false, o.weights, 24, true),
                "b5 rgb pre-relu 30x27->24 [reference precision]", 1e-5, 1e-4);
    }
    {
        // Faces, as in the float32 case: on uniform noise the face network's gradient is not a
        // function of the inputs at the float level (measured on the Cpu's double path: moving
        // every 997th input by one ulp moves it by 5.1e-3, and this GPU path lands 5.1e-3 from
        // it), so no implementation that is not bit-identical can be held to 1e-4 there. On these
        // faces the same nudge moves the Cpu's double gradient by 5e-7.
        IdentityOptions o;
        o.box = FaceBox{7, 5, 167, 175};
        Identity<Cuda> id(b, face_net(), o);
        id.set_reference_precision(true);
        const Tensor<float> p = face_gray({0, 4, 8}), t = face_gray({1, 5, 9});
        compare(id, b, p, t, test::cpu::identity(p, t, std::vector<Index>{7, 5, 167, 175}, true),
                "b3 gray faces box+resize [reference precision]", 1e-5, 1e-4);
    }
}

namespace {

Cuda backend_in(cudaStream_t s, Precision precision) {
    cuda::CudaOptions o;
    o.cache_allocations = std::getenv("GANINV_TEST_NO_POOL") == nullptr;
    o.precision = precision;
    return Cuda(s, o);
}

/// The loss on a TF32 or BF16 backend against the Cpu's float32 run, within `value_bound` /
/// `grad_bound`; and proof that the reduced precision really ran: its gradient is not float32's
/// to 1e-6 (a silent float32 fallback would be).
template <class L>
void compare_reduced(L& loss, const Cuda& b, Precision precision, const Tensor<float>& pred, const Tensor<float>& target,
                     const test::cpu::LossRun& ref, const std::string& what, double value_bound, double grad_bound) {
    compare(loss, b, pred, target, ref, concat(what, " [", cuda::to_string(precision), "]"), value_bound, grad_bound);
    cuda::DeviceTensor g = poisoned_grad(b, pred.shape());
    loss.evaluate(b.upload(pred), b.upload(target), &g);
    CHECK(relative_l2_error(b.download(g).values(), ref.grad.values()) > 1e-6);
}

}  // namespace

TEST_CASE("CUDA network losses in TF32 and BF16 (cuDNN tensor-core convolutions) against the Cpu's float32",
          "[cuda][losses][bf16]") {
    cuda::Stream stream;
    // Bounds: about 2-3x the largest errors measured on an H100 (ERRBOUND lines, docs/cuda.md:
    // values TF32 1.7e-4 / BF16 1.8e-2, gradients TF32 5.8e-2 / BF16 1.9e-1). A gradient of these
    // networks on noise images passes many ReLU/max-pool kinks, so reduced precision moves it far
    // more than the value; a broken conversion or weight copy gives errors of order 1.
    struct Bounds {
        Precision precision;
        double value, grad;
    };
    for (const Bounds& bd : {Bounds{Precision::tf32, 1e-3, 1.5e-1}, Bounds{Precision::bf16, 5e-2, 4e-1}}) {
        Cuda b = backend_in(stream.get(), bd.precision);
        {
            Lpips<Cuda> lpips(b, trunk(), lin());
            const Tensor<float> p = images({2, 3, 64, 64}, 11), t = images({2, 3, 64, 64}, 12);
            compare_reduced(lpips, b, bd.precision, p, t, test::cpu::lpips(p, t, 0, true), "lpips b2 rgb 64", bd.value, bd.grad);
        }
        {
            VggPerceptual<Cuda> vp(b, trunk());
            const Tensor<float> p = images({3, 3, 40, 48}, 21), t = images({3, 3, 40, 48}, 22);
            compare_reduced(vp, b, bd.precision, p, t,
                            test::cpu::vgg_perceptual(p, t, {"conv1_1", "conv1_2", "conv3_2", "conv4_2"}, true, {}, 256, true),
                            "vgg b3 rgb default", bd.value, bd.grad);
        }
        {
            IdentityOptions o;
            o.box = FaceBox{7, 5, 167, 175};
            Identity<Cuda> id(b, face_net(), o);
            const Tensor<float> p = face_gray({0, 4, 8}), t = face_gray({1, 5, 9});
            compare_reduced(id, b, bd.precision, p, t, test::cpu::identity(p, t, std::vector<Index>{7, 5, 167, 175}, true),
                            "identity b3 gray faces", bd.value, bd.grad);
        }
    }
}

TEST_CASE("CUDA losses notice a changed target (device target cache)", "[cuda][losses]") {
    cuda::Stream stream;
    Cuda b = make_backend(stream.get());
    Lpips<Cuda> lpips(b, trunk(), lin());
    const cuda::DeviceTensor p = b.upload(images({2, 3, 32, 32}, 41));
    cuda::DeviceTensor t = b.upload(images({2, 3, 32, 32}, 42));
    const std::vector<double> d1 = lpips.distance(p, t);
    // Change one value of the target in place: same pointer, same shape, different bits.
    Tensor<float> host = b.download(t);
    host[5] += 0.5f;
    b.copy(b.upload(host).data(), t.data(), t.numel());
    const std::vector<double> d2 = lpips.distance(p, t);
    Lpips<Cuda> fresh(b, trunk(), lin());
    CHECK(d2 == fresh.distance(p, t));
    CHECK(d2[0] != d1[0]);
    CHECK(d2[1] == d1[1]);
}

TEST_CASE("CUDA network losses reject bad input clearly", "[cuda][losses][errors]") {
    cuda::Stream stream;
    Cuda b = make_backend(stream.get());
    Lpips<Cuda> lpips(b, trunk(), lin());
    const cuda::DeviceTensor a = b.upload(images({1, 3, 32, 32}, 51));
    REQUIRE_THROWS_AS(lpips.evaluate(a, b.upload(images({1, 3, 32, 30}, 52)), nullptr), ShapeError);
    try {
        lpips.evaluate(a, b.upload(images({2, 3, 32, 32}, 52)), nullptr);
        FAIL("no exception");
    } catch (const ShapeError& e) {
        CHECK(std::string(e.what()).find("pred has shape [1, 3, 32, 32] but target has shape [2, 3, 32, 32]") !=
              std::string::npos);
    }
    REQUIRE_THROWS_AS(lpips.evaluate(b.upload(images({1, 2, 32, 32}, 53)), b.upload(images({1, 2, 32, 32}, 54)), nullptr),
                      ShapeError);
    REQUIRE_THROWS_AS(lpips.evaluate(b.upload(images({1, 3, 8, 8}, 53)), b.upload(images({1, 3, 8, 8}, 54)), nullptr),
                      ShapeError);
    VggPerceptual<Cuda> vp(b, trunk());
    REQUIRE_THROWS_AS(vp.evaluate(a, b.upload(images({1, 1, 32, 32}, 55)), nullptr), ShapeError);
    IdentityOptions o;
    o.box = FaceBox{0, 0, 40, 40};
    Identity<Cuda> id(b, face_net(), o);
    REQUIRE_THROWS_AS(id.evaluate(a, a, nullptr), ValueError);  // box outside the 32x32 image
    REQUIRE_THROWS_AS(Lpips<Cuda>(b, trunk(), std::array<Tensor<float>, 5>{}), ShapeError);
    // cuDNN failures become CudnnError with file:line and cuDNN's status string.
    try {
        GANINV_CUDNN_CHECK(cudnnSetStream(nullptr, stream.get()));
        FAIL("no exception");
    } catch (const CudnnError& e) {
        CHECK(std::string(e.what()).find("test_cuda_network_losses.cu") != std::string::npos);
        CHECK(std::string(e.what()).find("CUDNN_STATUS") != std::string::npos);
    }
}

TEST_CASE("build_loss<Cuda> accepts the terms and files of build_loss<Cpu> and gives the same values",
          "[cuda][losses][spec]") {
    // Only the LPIPS linear weights (the test file records its trunk): the Cpu accepts this, so
    // the Cuda must too (before the shared builder it demanded --vgg-weights).
    LossWeightFiles files;
    files.lpips = data_dir() / "lpips" / "lpips_vgg_weights.safetensors";
    cuda::Stream stream;
    Cuda b = make_backend(stream.get());
    WeightedLossSum<Cuda> gpu = build_loss<Cuda>("mse,lpips:0.5", files, b);
    WeightedLossSum<Cpu> cpu = build_loss<Cpu>("mse,lpips:0.5", files);
    CHECK(gpu.name() == cpu.name());
    const Tensor<float> x = images({2, 3, 32, 32}, 5), y = images({2, 3, 32, 32}, 6);
    const LossResult rg = gpu.evaluate(b.upload(x), b.upload(y), nullptr), rc = cpu.evaluate(x, y, nullptr);
    CHECK_CLOSE("mse+lpips", Precision::fp32, "spec value", vec(rg.per_image), vec(rc.per_image), 1e-5);
    REQUIRE_THROWS_WITH(build_loss<Cuda>("lpips", LossWeightFiles{}, b), Catch::Contains("needs --lpips-weights"));
    REQUIRE_THROWS_WITH(build_loss<Cuda>("vgg", files, b), Catch::Contains("needs --vgg-weights"));
}
