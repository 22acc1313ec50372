// conv2d / pooling / resampling layers, the VGG16 trunk, LPIPS parity with the official code,
// VggPerceptual, their gradients against finite differences, and their error messages.
#include "test_loss_support.hpp"

#include <ganinv/loss/identity.hpp>
#include <ganinv/loss/loss_spec.hpp>
#include <ganinv/loss/lpips.hpp>
#include <ganinv/loss/vgg_perceptual.hpp>
#include <ganinv/models/vgg16.hpp>
#include <ganinv/nn/conv2d.hpp>
#include <ganinv/nn/pooling.hpp>
#include <ganinv/nn/resample.hpp>

using namespace ganinv;
using namespace ganinv::test;

namespace {

/// Direct convolution in double: the reference for conv2d_forward.
std::vector<double> naive_conv(const Tensor<float>& x, const Tensor<float>& w, const Tensor<float>& b,
                               const nn::Conv2dShape& s) {
    std::vector<double> y(static_cast<std::size_t>(s.batch * s.out_channels * s.out_h() * s.out_w()));
    for (Index n = 0; n < s.batch; ++n)
        for (Index o = 0; o < s.out_channels; ++o)
            for (Index i = 0; i < s.out_h(); ++i)
                for (Index j = 0; j < s.out_w(); ++j) {
                    double acc = b.empty() ? 0.0 : b[o];
                    for (Index c = 0; c < s.in_channels; ++c)
                        for (Index ky = 0; ky < s.kernel_h; ++ky)
                            for (Index kx = 0; kx < s.kernel_w; ++kx) {
                                const Index iy = i * s.stride - s.pad_h + ky, ix = j * s.stride - s.pad_w + kx;
                                if (iy < 0 || iy >= s.in_h || ix < 0 || ix >= s.in_w) continue;
                                acc += static_cast<double>(x[((n * s.in_channels + c) * s.in_h + iy) * s.in_w + ix]) *
                                       w[((o * s.in_channels + c) * s.kernel_h + ky) * s.kernel_w + kx];
                            }
                    y[static_cast<std::size_t>(((n * s.out_channels + o) * s.out_h() + i) * s.out_w() + j)] = acc;
                }
    return y;
}

double dot_d(const std::vector<double>& a, const Tensor<float>& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[static_cast<Index>(i)];
    return s;
}

SafetensorsFile lpips_fixture(const char* name) { return SafetensorsFile(data_dir() / "lpips" / name); }

Lpips<> fixture_lpips(LpipsOptions o = {}) {
    return Lpips<>(Vgg16::hash_rule(), Lpips<>::load_lin(data_dir() / "lpips" / "lpips_vgg_weights.safetensors"), o);
}

/// The trunk's linear piece at x: ReLU signs and max-pool winners up to `layer`, for inputs that
/// pass through `in` (the loss's input stage) first.
std::vector<std::int32_t> vgg_pattern(const Vgg16& vgg, detail::VggInput in, const Tensor<float>& x, int layer) {
    const std::vector<VggTap> taps{{layer, true}};
    const Vgg16::Trace t = vgg.forward(in.forward(x), taps, true);
    std::vector<std::int32_t> p;
    for (const auto& r : t.relu)
        for (float v : r.values()) p.push_back(v > 0.0f);
    for (const auto& a : t.argmax) p.insert(p.end(), a.begin(), a.end());
    return p;
}

/// A step function for check_gradient_with: halve h until the trunk's piece does not change.
/// The search runs the float32 trunk (fast); the loss under test uses double accumulation, whose
/// pattern can differ only at outputs within float rounding of a kink.
auto vgg_step(detail::VggInput in, int layer) {
    static const Vgg16 plain = Vgg16::hash_rule();
    return [in, layer](const Tensor<float>& p, const Tensor<float>& v) {
        return flip_free_step(p, v, [&](const Tensor<float>& x) { return vgg_pattern(plain, in, x, layer); }, 1e-3);
    };
}

}  // namespace

TEST_CASE("conv2d forward matches a direct convolution; backward is its exact adjoint", "[loss][nn]") {
    Rng rng(11);
    struct Case {
        Index n, c, o, h, w, k, stride, pad;
        bool bias;
    };
    for (const Case& cs : {Case{2, 3, 5, 9, 8, 3, 1, 1, true}, Case{1, 4, 6, 11, 10, 3, 2, 0, true},
                           Case{2, 3, 4, 15, 13, 7, 2, 0, false}, Case{2, 5, 3, 6, 7, 1, 1, 0, true},
                           Case{1, 2, 3, 5, 5, 3, 1, 2, true}, Case{3, 4, 4, 40, 37, 3, 1, 1, true}}) {
        const nn::Conv2dShape s{cs.n, cs.c, cs.o, cs.h, cs.w, cs.k, cs.k, cs.stride, cs.pad, cs.pad};
        INFO("case " << cs.c << "->" << cs.o << " k" << cs.k << " s" << cs.stride << " p" << cs.pad);
        const Tensor<float> x = random_tensor({s.batch, s.in_channels, s.in_h, s.in_w}, rng);
        const Tensor<float> w = random_tensor({s.out_channels, s.in_channels, s.kernel_h, s.kernel_w}, rng);
        const Tensor<float> b = cs.bias ? random_tensor({s.out_channels}, rng) : Tensor<float>();
        Tensor<float> y({s.batch, s.out_channels, s.out_h(), s.out_w()});
        nn::conv2d_forward(x.data(), w.data(), cs.bias ? b.data() : nullptr, s, y.data());
        const std::vector<double> ref = naive_conv(x, w, b, s);
        std::vector<float> ref_f(ref.begin(), ref.end());
        GANINV_REQUIRE_CLOSE(y.values(), std::span<const float>(ref_f), 1e-6, "conv2d forward");

        // L = sum(y * g) is linear in x, w and b separately, so <grad, delta> must equal
        // L(param + delta) - L(param) evaluated with the double-precision reference.
        const Tensor<float> g = random_tensor(y.shape(), rng);
        Tensor<float> gx(x.shape()), gw(w.shape(), 0.0f), gb({s.out_channels}, 0.0f);
        nn::conv2d_backward(x.data(), w.data(), g.data(), s, gx.data(), gw.data(), cs.bias ? gb.data() : nullptr);
        const Tensor<float> dx = random_tensor(x.shape(), rng), dw = random_tensor(w.shape(), rng);
        const Tensor<float> zero_b = cs.bias ? Tensor<float>({s.out_channels}, 0.0f) : Tensor<float>();
        CHECK(dot(gx.values(), dx.values()) == Approx(dot_d(naive_conv(dx, w, zero_b, s), g)).epsilon(1e-5));
        CHECK(dot(gw.values(), dw.values()) == Approx(dot_d(naive_conv(x, dw, zero_b, s), g)).epsilon(1e-5));
        if (cs.bias) {
            double gsum = 0;
            for (Index o = 0; o < s.out_channels; ++o)
                for (Index n = 0; n < s.batch; ++n)
                    for (Index i = 0; i < s.out_h() * s.out_w(); ++i) gsum += g[(n * s.out_channels + o) * s.out_h() * s.out_w() + i];
            double gbsum = 0;
            for (Index o = 0; o < s.out_channels; ++o) gbsum += gb[o];
            CHECK(gbsum == Approx(gsum).epsilon(1e-5));
        }
    }
}

TEST_CASE("conv2d rejects inputs smaller than the kernel", "[loss][nn][errors]") {
    const nn::Conv2dShape s{1, 1, 1, 2, 2, 3, 3, 1, 0, 0};
    REQUIRE_THROWS_WITH(s.validate(), Catch::Matchers::Contains("smaller than the 3x3 kernel"));
}

TEST_CASE("pooling and resampling backward are the adjoints of their forward", "[loss][nn]") {
    Rng rng(5);
    for (const auto& [k, stride, max] : {std::tuple{2, 2, true}, std::tuple{3, 2, true}, std::tuple{2, 2, false}}) {
        const nn::Pool2dShape s{6, 11, 9, k, stride};
        const Tensor<float> x = random_tensor({2, 3, 11, 9}, rng);
        Tensor<float> y({2, 3, s.out_h(), s.out_w()}), gx(x.shape());
        const Tensor<float> gy = random_tensor(y.shape(), rng);
        std::vector<std::int32_t> am(static_cast<std::size_t>(y.numel()));
        if (max) {
            nn::max_pool2d_forward(x.data(), s, y.data(), am.data());
            nn::max_pool2d_backward(gy.data(), am.data(), s, gx.data());
            // away from ties the max pool is locally linear, y = x[argmax], so <gx, x> = <gy, x[argmax]>
            double lhs = 0;
            for (Index i = 0; i < y.numel(); ++i) lhs += static_cast<double>(gy[i]) *
                       x[(i / (s.out_h() * s.out_w())) * s.in_h * s.in_w + am[static_cast<std::size_t>(i)]];
            CHECK(dot(gx.values(), x.values()) == Approx(lhs).epsilon(1e-6));
        } else {
            nn::avg_pool2d_forward(x.data(), s, y.data());
            nn::avg_pool2d_backward(gy.data(), s, gx.data());
            CHECK(dot(gx.values(), x.values()) == Approx(dot(gy.values(), y.values())).epsilon(1e-6));
        }
    }
    for (const auto& [h, w, oh, ow] : {std::tuple{40, 36, 32, 32}, std::tuple{20, 20, 7, 9}, std::tuple{8, 6, 13, 11}}) {
        const nn::Resampler r(h, w, oh, ow);
        const Tensor<float> x = random_tensor({2, 3, h, w}, rng), gy = random_tensor({2, 3, oh, ow}, rng);
        const Tensor<float> y = r.forward(x), gx = r.backward(gy);
        CHECK(dot(gx.values(), x.values()) == Approx(dot(gy.values(), y.values())).epsilon(1e-6));
    }
    // an integer-factor area shrink is the plain block mean
    const Tensor<float> x = random_tensor({1, 1, 4, 4}, rng);
    const Tensor<float> y = nn::Resampler(4, 4, 2, 2).forward(x);
    CHECK(y[0] == Approx((x[0] + x[1] + x[4] + x[5]) / 4).epsilon(1e-6));
}

TEST_CASE("Vgg16::hash_rule rebuilds the LPIPS fixture trunk", "[loss][vgg]") {
    const Vgg16 vgg = Vgg16::hash_rule();
    const Tensor<float> first8 = lpips_fixture("lpips_vgg_weights.safetensors").load("trunk_check.slice1.0.weight.first8");
    for (Index i = 0; i < 8; ++i) CHECK(vgg.weight(0)[i] == first8[i]);
    CHECK(VggTap::parse("relu3_3").layer == 6);
    CHECK(VggTap::parse("conv4_2").name() == "conv4_2");
    REQUIRE_THROWS_WITH(VggTap::parse("conv6_1"), Catch::Matchers::Contains("no layer 'conv6_1'"));
}

TEST_CASE("Lpips matches the official LPIPS-VGG v0.1 distances and gradient", "[loss][lpips][parity]") {
    const auto f = lpips_fixture("lpips_case.safetensors");
    const Tensor<float> a = f.load("a"), b = f.load("b"), grad_ref = f.load("grad_a"), d_ref = f.load("distance");
    for (bool precise : {true, false}) {
        Lpips<> lpips = fixture_lpips();
        lpips.trunk().set_reference_precision(precise);
        Tensor<float> grad;
        const LossResult r = lpips.evaluate(a, b, &grad);
        const std::vector<float> d(r.per_image.begin(), r.per_image.end());
        INFO((precise ? "double-accumulated convs" : "float32 convs") << ": distances " << d[0] << ", " << d[1]
                                                                   << " vs " << d_ref[0] << ", " << d_ref[1]);
        GANINV_REQUIRE_CLOSE(std::span<const float>(d), d_ref.values(), 1e-5, "lpips distance");
        // With float32 GEMMs one conv3_3 output whose exact value is -1.4e-6 rounds to +1.0e-6
        // here (PyTorch: -9.2e-7), which moves one max-pool winner and so one gradient entry:
        // 6.9e-4. With double accumulation nothing flips and the gradient agrees to ~3e-6.
        GANINV_REQUIRE_CLOSE(grad.values(), grad_ref.values(), precise ? 1e-4 : 2e-3, "lpips grad_a");
        REQUIRE(r.terms.size() == 1);
        CHECK(r.terms[0].name == "lpips");
        // The cached target features give the same answer.
        CHECK(lpips.evaluate(a, b, nullptr).per_image == r.per_image);
        CHECK(lpips.distance(a, a)[0] == Approx(0.0).margin(1e-12));
    }
}

// Finite differences through a ReLU/max-pool network in float32 are noisy: the step must stay
// on one linear piece (flip_free_step, ~1e-5 here), where the rounding of the float features
// is ~1 % of L(p + hv) - L(p - hv). The 5e-2 bound catches wrong gradients (a missing term or
// a wrong transpose is off by O(1)); the exactness check is the parity with PyTorch above.
TEST_CASE("Lpips and VggPerceptual gradients match finite differences", "[loss][lpips][gradcheck]") {
    Rng rng(3);
    const Tensor<float> t = random_image({2, 3, 24, 20}, rng);
    const Tensor<float> p = random_image({2, 3, 24, 20}, rng);
    const detail::VggInput lpips_in({-0.030f, -0.088f, -0.188f}, {0.458f, 0.448f, 0.450f}, 0);
    {
        Lpips<> lpips = fixture_lpips();
        lpips.trunk().set_reference_precision(true);
        check_gradient_with(lpips, p, t, rng, 5e-2, "lpips", vgg_step(lpips_in, 12), 4);
    }
    {
        // gray input (replicated to RGB) with LPIPS' optional down-sampling: 30x34 -> 24x24
        Lpips<> small = fixture_lpips(LpipsOptions{24, true});
        small.trunk().set_reference_precision(true);
        const detail::VggInput in({-0.030f, -0.088f, -0.188f}, {0.458f, 0.448f, 0.450f}, 24);
        check_gradient_with(small, random_image({1, 1, 30, 34}, rng), random_image({1, 1, 30, 34}, rng), rng, 5e-2,
                            "lpips gray downsampled", vgg_step(in, 12), 4);
    }
    const detail::VggInput vgg_in({2 * 0.485f - 1, 2 * 0.456f - 1, 2 * 0.406f - 1},
                                  {2 * 0.229f, 2 * 0.224f, 2 * 0.225f}, 16);
    {
        VggPerceptualOptions o;
        o.layers = {"conv1_1", "relu2_2", "conv3_2", "conv4_2"};
        o.after_relu = false;  // pre-activation taps exercise the other branch of the trunk backward
        o.weights = {1.0, 0.5, 2.0, 1.0};
        o.max_size = 16;  // 24x20 -> 16x16 area resample (non-integer factors)
        VggPerceptual<> vp(Vgg16::hash_rule(), o);
        vp.trunk().set_reference_precision(true);
        check_gradient_with(vp, p, t, rng, 5e-2, "vgg perceptual", vgg_step(vgg_in, 8), 4);
    }
    {
        VggPerceptual<> vp(Vgg16::hash_rule());  // default layers, post-ReLU, no resampling at 24x20
        vp.trunk().set_reference_precision(true);
        const detail::VggInput in({2 * 0.485f - 1, 2 * 0.456f - 1, 2 * 0.406f - 1},
                                  {2 * 0.229f, 2 * 0.224f, 2 * 0.225f}, 256);
        check_gradient_with(vp, p, t, rng, 5e-2, "vgg perceptual (default layers)", vgg_step(in, 8), 4);
    }
}

TEST_CASE("VGG losses report bad inputs and wrong weight files clearly", "[loss][vgg][errors]") {
    const auto gen = data_dir() / "stylegan2_tiny" / "generator.safetensors";
    REQUIRE_THROWS_AS(Vgg16::load(data_dir() / "lpips" / "no_such_vgg.safetensors"), IoError);
    REQUIRE_THROWS_WITH(Vgg16::load(data_dir() / "lpips" / "no_such_vgg.safetensors"),
                        Catch::Matchers::Contains("no_such_vgg.safetensors"));
    REQUIRE_THROWS_WITH(Vgg16::load(gen), Catch::Matchers::Contains("is not a VGG16 features file") &&
                                              Catch::Matchers::Contains("generator.safetensors"));
    REQUIRE_THROWS_WITH(Lpips<>::load_lin(gen), Catch::Matchers::Contains("not an LPIPS linear-weights file"));
    REQUIRE_THROWS_WITH(Lpips<>::load(data_dir() / "lpips" / "lpips_vgg_weights.safetensors",
                                      data_dir() / "lpips" / "lpips_vgg_weights.safetensors"),
                        Catch::Matchers::Contains("features.0.weight"));

    Lpips<> lpips = fixture_lpips();
    Rng rng(1);
    const Tensor<float> a = random_image({1, 3, 32, 32}, rng);
    REQUIRE_THROWS_WITH(lpips.evaluate(a, random_image({1, 3, 32, 30}, rng), nullptr),
                        Catch::Matchers::Contains("Lpips: pred has shape [1, 3, 32, 32] but target has shape [1, 3, 32, 30]"));
    REQUIRE_THROWS_WITH(lpips.evaluate(random_image({1, 2, 32, 32}, rng), random_image({1, 2, 32, 32}, rng), nullptr),
                        Catch::Matchers::Contains("1 (gray) or 3 (RGB) channels"));
    REQUIRE_THROWS_WITH(lpips.evaluate(random_image({1, 3, 8, 8}, rng), random_image({1, 3, 8, 8}, rng), nullptr),
                        Catch::Matchers::Contains("too small to reach conv5_3"));
    VggPerceptualOptions o;
    o.layers = {"conv1_1", "pool3"};
    REQUIRE_THROWS_WITH(VggPerceptual<>(Vgg16::hash_rule(), o), Catch::Matchers::Contains("no layer 'pool3'"));
}

// ---------------------------------------------------------------- build_loss (loss/loss_spec.hpp)
TEST_CASE("build_loss reads a spec into weighted terms, with the LPIPS trunk found from the weights file",
          "[loss][spec]") {
    const std::filesystem::path lin_file = data_dir() / "lpips" / "lpips_vgg_weights.safetensors";
    const std::vector<LossTermSpec> terms = parse_loss_terms("mse,lpips:0.5");
    REQUIRE(terms.size() == 2);
    CHECK(terms[1].name == "lpips");
    CHECK(terms[1].weight == 0.5);
    // Only the linear weights: the test file records its trunk (the fixtures' hash-rule VGG16),
    // so no --vgg-weights is needed, on any backend.
    LossWeightFiles files;
    files.lpips = lin_file;
    WeightedLossSum<Cpu> sum = build_loss<Cpu>(terms, files);
    CHECK(sum.name() == "mse+lpips");
    Rng rng(3);
    const Tensor<float> a = random_image({1, 3, 32, 32}, rng), b = random_image({1, 3, 32, 32}, rng);
    Lpips<Cpu> lpips(Vgg16::hash_rule(), Lpips<Cpu>::load_lin(lin_file));
    const double expected = Mse<Cpu>{}.evaluate(a, b, nullptr).per_image[0] + 0.5 * lpips.evaluate(a, b, nullptr).per_image[0];
    CHECK(sum.evaluate(a, b, nullptr).per_image[0] == Approx(expected).epsilon(1e-12));

    REQUIRE_THROWS_WITH(build_loss<Cpu>("lpips", LossWeightFiles{}), Catch::Contains("needs --lpips-weights"));
    REQUIRE_THROWS_WITH(build_loss<Cpu>("vgg", files), Catch::Contains("needs --vgg-weights"));
    REQUIRE_THROWS_WITH(parse_loss_terms("mse,ssim"), Catch::Contains("unknown term 'ssim'"));
    REQUIRE_THROWS_WITH(parse_loss_terms("mse:x", "--loss"), Catch::Contains("--loss: bad weight in 'mse:x'"));
    REQUIRE_THROWS_AS(parse_loss_terms("mse,"), ValueError);
}

TEST_CASE("build_loss: the identity term is the face-recognition Identity loss", "[loss][spec][identity]") {
    const std::filesystem::path face_file = data_dir() / "face_api" / "face_recognition.safetensors";
    const std::vector<LossTermSpec> terms = parse_loss_terms("mse,identity:0.25");
    REQUIRE(terms.size() == 2);
    CHECK(terms[1].name == "identity");
    REQUIRE_THROWS_WITH(build_loss<Cpu>(terms, LossWeightFiles{}), Catch::Contains("needs --identity-weights"));
    LossWeightFiles files;
    files.identity = face_file;
    WeightedLossSum<Cpu> sum = build_loss<Cpu>(terms, files);
    CHECK(sum.name() == "mse+identity");
    Rng rng(5);
    const Tensor<float> a = random_image({2, 3, 48, 40}, rng), b = random_image({2, 3, 48, 40}, rng);
    Identity<Cpu> id = Identity<Cpu>::load(face_file);
    const LossResult direct = id.evaluate(a, b, nullptr), mse = Mse<Cpu>{}.evaluate(a, b, nullptr);
    Tensor<float> grad(a.shape());
    const LossResult r = sum.evaluate(a, b, &grad);
    for (std::size_t n = 0; n < 2; ++n) CHECK(r.per_image[n] == Approx(mse.per_image[n] + 0.25 * direct.per_image[n]).epsilon(1e-12));
    // The term's gradient is the Identity loss's, weighted.
    Tensor<float> g_id(a.shape()), g_mse(a.shape());
    id.evaluate(a, b, &g_id);
    Mse<Cpu>{}.evaluate(a, b, &g_mse);
    for (Index i = 0; i < grad.numel(); i += 97) CHECK(grad[i] == Approx(g_mse[i] + 0.25f * g_id[i]).margin(1e-7));
}
