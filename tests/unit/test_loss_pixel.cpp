// Pixel losses, the wrappers (Weighted, Sum, Masked, Degraded with its ops) and the noise
// regulariser: values against direct formulas, gradients against finite differences, error
// messages, and the concept checks.
#include "test_loss_support.hpp"

#include <ganinv/loss/compose.hpp>
#include <ganinv/loss/degraded.hpp>
#include <ganinv/loss/masked.hpp>
#include <ganinv/loss/noise_regularizer.hpp>
#include <ganinv/loss/pixel.hpp>

using namespace ganinv;
using namespace ganinv::test;

static_assert(DifferentiableLoss<Mse<>> && DifferentiableLoss<L1<>> && DifferentiableLoss<Charbonnier<>>);
static_assert(DifferentiableLoss<Sum<Mse<>, Weighted<L1<>>>>);
static_assert(DifferentiableLoss<Masked<Mse<>>> && DifferentiableLoss<Degraded<Mse<>, AreaDownsample<4>>>);
static_assert(DegradationOp<AreaDownsample<2>> && DegradationOp<ToGray<>> && DegradationOp<MaskOp<>>);
static_assert(PixelLoss<Charbonnier<>> && !PixelLoss<Sum<Mse<>>>);

namespace {

/// A binary mask [n, 1, h, w] with roughly `keep` of the pixels on.
Tensor<float> random_mask(const Shape& shape, Rng& rng, double keep = 0.6) {
    Tensor<float> m(shape);
    for (float& v : m.values()) v = rng.uniform() < keep ? 1.0f : 0.0f;
    return m;
}

template <class Op>
void check_adjoint(const Op& op, const Shape& in, Rng& rng, const std::string& what) {
    const Tensor<float> x = random_tensor(in, rng);
    const Tensor<float> y = op.forward(x);
    REQUIRE(y.shape() == op.output_shape(in));
    const Tensor<float> gy = random_tensor(y.shape(), rng);
    const Tensor<float> gx = op.backward(gy, in);
    INFO(what);
    CHECK(dot(y.values(), gy.values()) == Approx(dot(x.values(), gx.values())).epsilon(1e-6));
}

/// The projector's regulariser written out directly (double), for one [H, W] plane.
double noise_reg_reference(std::vector<double> a, Index h, Index w) {
    double reg = 0;
    while (true) {
        double sx = 0, sy = 0;
        for (Index i = 0; i < h; ++i)
            for (Index j = 0; j < w; ++j) {
                const double v = a[static_cast<std::size_t>(i * w + j)];
                const Index jl = j == 0 ? w - 1 : j - 1, iu = i == 0 ? h - 1 : i - 1;  // roll(shift 1)[j] = a[j - 1]
                sx += v * a[static_cast<std::size_t>(i * w + jl)];
                sy += v * a[static_cast<std::size_t>(iu * w + j)];
            }
        reg += std::pow(sx / static_cast<double>(h * w), 2) + std::pow(sy / static_cast<double>(h * w), 2);
        if (h <= 8) break;
        std::vector<double> b(static_cast<std::size_t>((h / 2) * (w / 2)));
        for (Index i = 0; i < h / 2; ++i)
            for (Index j = 0; j < w / 2; ++j)
                b[static_cast<std::size_t>(i * (w / 2) + j)] =
                    (a[static_cast<std::size_t>(2 * i * w + 2 * j)] + a[static_cast<std::size_t>(2 * i * w + 2 * j + 1)] +
                     a[static_cast<std::size_t>((2 * i + 1) * w + 2 * j)] + a[static_cast<std::size_t>((2 * i + 1) * w + 2 * j + 1)]) / 4;
        a = std::move(b);
        h /= 2;
        w /= 2;
    }
    return reg;
}

/// Adapter: the noise regulariser over one map as a loss of that map (for check_gradient).
struct NoiseRegProbe {
    NoiseRegularizer<> reg;
    LossResult evaluate(const Tensor<float>& map, const Tensor<float>&, Tensor<float>* grad) const {
        std::vector<Tensor<float>> grads;
        LossResult r = reg.evaluate({map}, grad ? &grads : nullptr);
        if (grad) *grad = grads[0];
        return r;
    }
};

}  // namespace

TEST_CASE("pixel losses: values and gradients", "[loss][pixel]") {
    Rng rng(1);
    const Tensor<float> p = random_image({3, 2, 5, 7}, rng), t = random_image({3, 2, 5, 7}, rng);
    Mse<> mse;
    L1<> l1;
    Charbonnier<> ch(0.05);
    const LossResult r = mse.evaluate(p, t, nullptr);
    REQUIRE(r.per_image.size() == 3);
    for (Index n = 0; n < 3; ++n) {
        double m = 0, a = 0, c = 0;
        for (Index i = 0; i < 70; ++i) {
            const double d = static_cast<double>(p[n * 70 + i]) - t[n * 70 + i];
            m += d * d;
            a += std::abs(d);
            c += std::sqrt(d * d + 0.0025);
        }
        CHECK(r.per_image[static_cast<std::size_t>(n)] == Approx(m / 70).epsilon(1e-12));
        CHECK(l1.evaluate(p, t, nullptr).per_image[static_cast<std::size_t>(n)] == Approx(a / 70).epsilon(1e-12));
        CHECK(ch.evaluate(p, t, nullptr).per_image[static_cast<std::size_t>(n)] == Approx(c / 70).epsilon(1e-12));
    }
    CHECK(r.terms.size() == 1);
    CHECK(r.terms[0].name == "mse");
    check_gradient(mse, p, t, rng, 1e-6, "mse");
    check_gradient(l1, p, t, rng, 1e-6, "l1", 1e-5);
    check_gradient(ch, p, t, rng, 1e-5, "charbonnier", 1e-4);
    CHECK(mse.evaluate(p, p, nullptr).per_image[0] == 0.0);
    REQUIRE_THROWS_WITH(Charbonnier<>(-1.0), Catch::Matchers::Contains("eps must be positive"));
}

TEST_CASE("Weighted and Sum compose values, terms and gradients", "[loss][compose]") {
    Rng rng(2);
    const Tensor<float> p = random_image({2, 3, 6, 6}, rng), t = random_image({2, 3, 6, 6}, rng);
    Sum<Mse<>, Weighted<L1<>>, Charbonnier<>> loss(Mse<>{}, Weighted(L1<>{}, 0.25), Charbonnier<>(0.1));
    CHECK(loss.name() == "mse+l1+charbonnier");
    Tensor<float> g;
    const LossResult r = evaluate_with_gradient(loss, p, t, g);
    REQUIRE(r.terms.size() == 3);
    CHECK(r.terms[0].name == "mse");
    CHECK(r.terms[1].name == "l1");
    CHECK(r.terms[2].name == "charbonnier");
    const auto m = Mse<>{}.evaluate(p, t, nullptr).per_image, a = L1<>{}.evaluate(p, t, nullptr).per_image;
    const auto c = Charbonnier<>(0.1).evaluate(p, t, nullptr).per_image;
    for (std::size_t n = 0; n < 2; ++n) {
        CHECK(r.terms[1].per_image[n] == Approx(0.25 * a[n]).epsilon(1e-12));
        CHECK(r.per_image[n] == Approx(m[n] + 0.25 * a[n] + c[n]).epsilon(1e-12));
    }
    check_gradient(loss, p, t, rng, 1e-5, "sum", 1e-5);
    // nesting: terms of an inner Sum come through flat
    Sum<Weighted<Sum<Mse<>, L1<>>>, Charbonnier<>> nested(Weighted(Sum<Mse<>, L1<>>(Mse<>{}, L1<>{}), 2.0), Charbonnier<>());
    const LossResult rn = nested.evaluate(p, t, nullptr);
    REQUIRE(rn.terms.size() == 3);
    CHECK(rn.terms[0].per_image[0] == Approx(2 * m[0]).epsilon(1e-12));
}

TEST_CASE("Masked<L>: only pixels under the mask count", "[loss][masked]") {
    Rng rng(3);
    const Tensor<float> p = random_image({2, 3, 8, 9}, rng), t = random_image({2, 3, 8, 9}, rng);
    for (const Shape& ms : {Shape{1, 1, 8, 9}, Shape{2, 1, 8, 9}, Shape{2, 3, 8, 9}}) {
        const Tensor<float> mask = random_mask(ms, rng);
        Masked<Mse<>> loss(Mse<>{}, mask);
        const LossResult r = loss.evaluate(p, t, nullptr);
        CHECK(r.terms[0].name == "mse[mask]");
        for (Index n = 0; n < 2; ++n) {  // mean over the selected values
            double s = 0;
            Index count = 0;
            for (Index c = 0; c < 3; ++c)
                for (Index i = 0; i < 72; ++i) {
                    const float m = mask[((ms[0] == 1 ? 0 : n) * ms[1] + (ms[1] == 1 ? 0 : c)) * 72 + i];
                    if (m <= 0) continue;
                    const double d = static_cast<double>(p[(n * 3 + c) * 72 + i]) - t[(n * 3 + c) * 72 + i];
                    s += d * d;
                    ++count;
                }
            CHECK(r.per_image[static_cast<std::size_t>(n)] == Approx(s / static_cast<double>(count)).epsilon(1e-12));
        }
        check_gradient(loss, p, t, rng, 1e-6, "masked mse " + shape_to_string(ms));
        // pixels outside the mask do not change anything
        Tensor<float> p2 = p;
        for (Index i = 0; i < 72; ++i)
            if (mask[i] <= 0) p2[i] += 1.0f;
        CHECK(loss.evaluate(p2, t, nullptr).per_image[0] == r.per_image[0]);
    }
    // an empty mask scores 0 with a zero gradient
    Masked<L1<>> empty(L1<>{}, Tensor<float>({1, 1, 8, 9}, 0.0f));
    Tensor<float> g;
    CHECK(empty.evaluate(p, t, &g).per_image[1] == 0.0);
    CHECK(dot(g.values(), g.values()) == 0.0);
    // a loss without `pointwise` (here a Sum) sees both images multiplied by the mask
    const Tensor<float> mask = random_mask({1, 1, 8, 9}, rng);
    Masked<Sum<Mse<>>> generic(Sum<Mse<>>(Mse<>{}), mask);
    const auto pm = detail::BufferOps<Cpu>::apply_binary_mask(p, mask), tm = detail::BufferOps<Cpu>::apply_binary_mask(t, mask);
    CHECK(generic.evaluate(p, t, nullptr).per_image[0] == Approx(Mse<>{}.evaluate(pm, tm, nullptr).per_image[0]).epsilon(1e-12));
    check_gradient(generic, p, t, rng, 1e-6, "masked sum");
    // errors
    Masked<Mse<>> no_mask(Mse<>{});
    REQUIRE_THROWS_WITH(no_mask.evaluate(p, t, nullptr), Catch::Matchers::Contains("no mask set"));
    Masked<Mse<>> bad(Mse<>{}, Tensor<float>({2, 1, 8, 8}, 1.0f));
    REQUIRE_THROWS_WITH(bad.evaluate(p, t, nullptr),
                        Catch::Matchers::Contains("mask has shape [2, 1, 8, 8], which does not fit images of shape [2, 3, 8, 9]"));
    Masked<Mse<>> bad_c(Mse<>{}, Tensor<float>({1, 2, 8, 9}, 1.0f));
    REQUIRE_THROWS_AS(bad_c.evaluate(p, t, nullptr), ShapeError);
}

TEST_CASE("Degraded<L, Op>: super-resolution, colorization and inpainting forward models", "[loss][degraded]") {
    Rng rng(4);
    check_adjoint(AreaDownsample<2>{}, {2, 3, 8, 6}, rng, "area 2");
    check_adjoint(AreaDownsample<4>{}, {1, 1, 8, 12}, rng, "area 4");
    check_adjoint(ToGray<>{}, {2, 3, 5, 4}, rng, "gray");
    check_adjoint(MaskOp<>{random_mask({1, 1, 5, 4}, rng)}, {2, 3, 5, 4}, rng, "mask");

    const Tensor<float> hr = random_image({2, 3, 8, 8}, rng), hr_t = random_image({2, 3, 8, 8}, rng);
    Degraded<Mse<>, AreaDownsample<4>> sr(Mse<>{});
    const Tensor<float> lr_t = AreaDownsample<4>{}.forward(hr_t);
    const LossResult a = sr.evaluate(hr, lr_t, nullptr), b = sr.evaluate(hr, hr_t, nullptr);
    CHECK(a.per_image == b.per_image);  // observation or clean target: same value
    CHECK(a.terms[0].name == "mse[area_down4]");
    CHECK(a.per_image[0] == Approx(Mse<>{}.evaluate(AreaDownsample<4>{}.forward(hr), lr_t, nullptr).per_image[0]));
    check_gradient(sr, hr, lr_t, rng, 1e-4, "mse of area-downsampled", 1e-2);

    Degraded<Charbonnier<>, ToGray<>> color(Charbonnier<>(0.1));
    const Tensor<float> gray_t = ToGray<>{}.forward(hr_t);
    REQUIRE(gray_t.shape() == Shape{2, 1, 8, 8});
    CHECK(gray_t[0] == Approx(0.299 * hr_t[0] + 0.587 * hr_t[64] + 0.114 * hr_t[128]).epsilon(1e-6));
    check_gradient(color, hr, gray_t, rng, 1e-4, "charbonnier of gray", 1e-3);

    const Tensor<float> mask = random_mask({1, 1, 8, 8}, rng);
    Degraded<L1<>, MaskOp<>> inpaint(L1<>{}, MaskOp<>{mask});
    check_gradient(inpaint, hr, hr_t, rng, 1e-6, "l1 of masked", 1e-5);
    Tensor<float> g;
    inpaint.evaluate(hr, hr_t, &g);
    for (Index i = 0; i < 64; ++i)
        if (mask[i] <= 0) CHECK(g[i] == 0.0f);

    REQUIRE_THROWS_WITH(sr.evaluate(hr, random_image({2, 3, 4, 4}, rng), nullptr),
                        Catch::Matchers::Contains("expected the degraded shape [2, 3, 2, 2]"));
    REQUIRE_THROWS_WITH(sr.evaluate(random_image({1, 3, 6, 6}, rng), random_image({1, 3, 6, 6}, rng), nullptr),
                        Catch::Matchers::Contains("image size must be a multiple of 4"));
    REQUIRE_THROWS_WITH(color.evaluate(random_image({1, 2, 4, 4}, rng), random_image({1, 1, 4, 4}, rng), nullptr),
                        Catch::Matchers::Contains("ToGray: images must be [N, 1 or 3, H, W]"));
    Degraded<Mse<>, MaskOp<>> bad(Mse<>{}, MaskOp<>{Tensor<float>({1, 1, 3, 3}, 1.0f)});
    REQUIRE_THROWS_WITH(bad.evaluate(hr, hr_t, nullptr), Catch::Matchers::Contains("MaskOp: mask has shape [1, 1, 3, 3]"));
}

TEST_CASE("pixel losses reject mismatched images clearly", "[loss][errors]") {
    Rng rng(5);
    Mse<> mse;
    REQUIRE_THROWS_WITH(mse.evaluate(random_image({2, 3, 8, 8}, rng), random_image({2, 3, 8, 7}, rng), nullptr),
                        Catch::Matchers::Contains("mse: pred has shape [2, 3, 8, 8] but target has shape [2, 3, 8, 7]"));
    REQUIRE_THROWS_WITH(mse.evaluate(random_image({2, 3, 8, 8}, rng), random_image({2, 1, 8, 8}, rng), nullptr),
                        Catch::Matchers::Contains("target has shape [2, 1, 8, 8]"));
    REQUIRE_THROWS_WITH(mse.evaluate(random_image({3, 8, 8}, rng), random_image({3, 8, 8}, rng), nullptr),
                        Catch::Matchers::Contains("pred must be [N, C, H, W]"));
    Sum<Mse<>, L1<>> sum(Mse<>{}, L1<>{});
    REQUIRE_THROWS_AS(sum.evaluate(random_image({1, 3, 4, 4}, rng), random_image({1, 3, 4, 5}, rng), nullptr), ShapeError);
}

TEST_CASE("NoiseRegularizer: the projector's regulariser, batched, with its gradient", "[loss][noise]") {
    Rng rng(6);
    NoiseRegularizer<> reg;
    const std::vector<Tensor<float>> maps{random_tensor({2, 4, 4}, rng), random_tensor({2, 1, 8, 8}, rng),
                                          random_tensor({2, 16, 16}, rng), random_tensor({2, 32, 32}, rng)};
    std::vector<Tensor<float>> grads;
    const LossResult r = reg.evaluate(maps, &grads);
    REQUIRE(r.per_image.size() == 2);
    REQUIRE(grads.size() == 4);
    for (Index n = 0; n < 2; ++n) {
        double ref = 0;
        for (const auto& m : maps) {
            const Index h = m.shape()[m.rank() - 2], w = m.shape().back();
            ref += noise_reg_reference(std::vector<double>(m.data() + n * h * w, m.data() + (n + 1) * h * w), h, w);
        }
        CHECK(r.per_image[static_cast<std::size_t>(n)] == Approx(ref).epsilon(1e-10));
    }
    for (std::size_t k = 0; k < maps.size(); ++k) CHECK(grads[k].shape() == maps[k].shape());
    NoiseRegProbe probe;
    for (const Tensor<float>& m : maps) check_gradient(probe, m, m, rng, 1e-4, "noise reg " + shape_to_string(m.shape()));
    // a rectangular map, and an unbatched one
    check_gradient(probe, random_tensor({1, 16, 24}, rng), Tensor<float>(), rng, 1e-4, "noise reg 16x24");
    CHECK(reg.evaluate({random_tensor({16, 16}, rng)}, nullptr).per_image.size() == 1);
    // smooth (correlated) noise is penalised far more than white noise
    Tensor<float> smooth({1, 32, 32});
    for (Index i = 0; i < 32 * 32; ++i) smooth[i] = static_cast<float>(std::sin(0.2 * static_cast<double>(i % 32)));
    CHECK(reg.evaluate({smooth}, nullptr).per_image[0] > 100 * reg.evaluate({random_tensor({1, 32, 32}, rng)}, nullptr).per_image[0]);
    REQUIRE_THROWS_WITH(reg.evaluate({random_tensor({2, 8, 8}, rng), random_tensor({3, 8, 8}, rng)}, nullptr),
                        Catch::Matchers::Contains("noise map 1 has shape [3, 8, 8] but map 0 has batch 2"));
    REQUIRE_THROWS_WITH(reg.evaluate({random_tensor({2, 3, 8, 8}, rng)}, nullptr),
                        Catch::Matchers::Contains("must be [N, H, W], [N, 1, H, W] or [H, W]"));
    REQUIRE_THROWS_AS(reg.evaluate({}, nullptr), ValueError);
}
