// The pSp-style encoder (issue 16): weight and input gradients against finite differences, the
// config's checks, and (test_encoder_trainer.cpp) training on the demo generator.
#include "test_support.hpp"

#include <ganinv/core/rng.hpp>
#include <ganinv/invert/encoder_adversaries.hpp>
#include <ganinv/models/latent_discriminator.hpp>
#include <ganinv/models/psp_encoder.hpp>

using namespace ganinv;

namespace {

EncoderConfig tiny_config(Index channels, bool iterative = false, bool e4e = false) {
    EncoderConfig c;
    c.iterative = iterative;
    c.e4e = e4e;
    c.active_offsets = e4e ? 1 : 0;  // of 2: one offset head in use, one not yet
    c.resolution = 8;
    c.in_channels = channels;
    c.num_ws = 3;
    c.w_dim = 5;
    c.stem_channels = 4;
    c.stage_channels = {4, 8};
    c.blocks_per_stage = 2;  // the second block of a stage has no shortcut conv
    c.pyramid_channels = 4;
    c.head_grid = 2;
    c.head_hidden = 6;
    c.groups = 2;
    return c;
}

double dot(std::span<const float> a, std::span<const float> b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
    return s;
}

}  // namespace

TEST_CASE("pSp encoder: weight and input gradients agree with finite differences", "[encoder][gradcheck]") {
    // 1 and 3 image channels; then a ReStyle encoder of a 1-channel generator (a 2-channel stem
    // reading [x, G(w_t)]) whose codes start from given base codes; then e4e (one w + offsets, one
    // of its two offsets enabled) with its offset-norm penalty in the loss, single-pass and iterative.
    struct Case {
        Index channels;
        bool iterative, e4e;
    };
    for (auto [channels, iterative, e4e] : {Case{1, false, false}, Case{3, false, false}, Case{1, true, false},
                                            Case{1, false, true}, Case{1, true, true}}) {
        INFO("image channels " << channels << (iterative ? ", iterative" : "") << (e4e ? ", e4e" : ""));
        PspEncoder e(tiny_config(channels, iterative, e4e), 7);
        const double offset_weight = e4e ? 0.3 : 0.0;
        REQUIRE(e.in_channels() == (iterative ? 2 : 1) * channels);
        Rng rng(3);
        Tensor<float> w_avg({5});
        rng.fill_normal(w_avg.values());
        e.set_w_avg(w_avg);
        Tensor<float> x({2, e.in_channels(), 8, 8});
        rng.fill_normal(x.values());
        Tensor<float> gy({2, 3, 5});
        rng.fill_normal(gy.values());
        Tensor<float> base({2, 3, 5});
        rng.fill_normal(base.values());
        const Tensor<float>* b = iterative ? &base : nullptr;
        auto loss = [&] {
            PspEncoder::Cache k;
            return dot(e.forward(x, &k, b).values(), gy.values()) + offset_weight * e.offset_penalty(k);
        };
        PspEncoder::Cache cache;
        const Tensor<float> codes = e.forward(x, &cache, b);
        REQUIRE(codes.shape() == Shape{2, 3, 5});
        if (e4e) REQUIRE(e.offset_penalty(cache) > 0);
        Tensor<float> gp({1, e.num_params()}, 0.0f);
        const Tensor<float> gx = e.backward(cache, gy, &gp, true, offset_weight);
        REQUIRE(gx.shape() == x.shape());

        // PReLU and the head's lrelu have kinks: best_finite_difference tries five step sizes.
        auto close = [&](float* value, double analytic, const std::string& what) {
            const double fd = test::best_finite_difference(loss, value, analytic);
            INFO(what << ": analytic " << analytic << " fd " << fd);
            CHECK(std::fabs(fd - analytic) <= 2e-3 * (1.0 + std::fabs(fd)));
            return std::fabs(fd) > 1e-4;
        };
        // One random entry of every parameter tensor, then random entries of the input.
        int nonzero = 0;
        for (const auto& s : e.param_specs()) {
            const Index i = s.offset + static_cast<Index>(rng.below(static_cast<std::uint64_t>(shape_numel(s.shape))));
            nonzero += close(e.params().data() + i, gp[i], s.name) ? 1 : 0;
            // e4e: the head of the offset not yet enabled gets no gradient (it is not computed).
            if (e4e && s.name.starts_with("head2."))
                for (Index j = s.offset; j < s.offset + shape_numel(s.shape); ++j) REQUIRE(gp[j] == 0.0f);
        }
        CHECK(nonzero > static_cast<int>(e.param_specs().size()) / 2);  // the checks really probed something
        for (int t = 0; t < 12; ++t) {
            const Index i = static_cast<Index>(rng.below(static_cast<std::uint64_t>(x.numel())));
            close(x.data() + i, gx[i], concat("input ", i));
        }
    }
}

TEST_CASE("pSp encoder: codes are w_avg plus the heads' offsets and do not depend on the batch", "[encoder]") {
    PspEncoder e(tiny_config(1), 1);
    Rng rng(9);
    Tensor<float> x({3, 1, 8, 8});
    rng.fill_normal(x.values());
    const Tensor<float> all = e.forward(x);
    Tensor<float> one({1, 1, 8, 8});
    std::copy(x.data() + 64, x.data() + 128, one.data());
    const Tensor<float> single = e.forward(one);
    // Group norm has no batch statistics (equal up to the GEMMs' summation order).
    for (Index j = 0; j < 15; ++j) REQUIRE(single[j] == Approx(all[15 + j]).margin(1e-5));
    Tensor<float> shift({5}, 2.0f);
    e.set_w_avg(shift);
    const Tensor<float> shifted = e.forward(x);
    for (Index j = 0; j < all.numel(); ++j) REQUIRE(shifted[j] == Approx(all[j] + 2.0f).margin(1e-5));
    // Given base codes (an iterative encoder's w_t) replace w_avg: codes = base + offsets.
    Tensor<float> base({3, 3, 5});
    rng.fill_normal(base.values());
    const Tensor<float> from_base = e.forward(x, nullptr, &base);
    for (Index j = 0; j < all.numel(); ++j) REQUIRE(from_base[j] == Approx(shifted[j] - 2.0f + base[j]).margin(1e-5));
    Tensor<float> bad_base({3, 2, 5}, 0.0f);
    REQUIRE_THROWS_AS(e.forward(x, nullptr, &bad_base), ShapeError);
}

TEST_CASE("ReStyle grown from a single-pass encoder: its first pass gives the single-pass codes", "[encoder]") {
    for (Index channels : {1, 3}) {
        INFO("image channels " << channels);
        PspEncoder single(tiny_config(channels), 5);
        Tensor<float> shift({5}, 0.5f);
        single.set_w_avg(shift);
        const PspEncoder grown = PspEncoder::iterative_from(single, 4);
        REQUIRE(grown.iterative());
        REQUIRE(grown.config().iterations == 4);
        REQUIRE(grown.in_channels() == 2 * channels);
        REQUIRE(grown.num_params() == single.num_params() + 4 * channels * 9);  // the stem's new inputs
        Rng rng(3);
        Tensor<float> x({2, channels, 8, 8}), recon({2, channels, 8, 8});
        rng.fill_normal(x.values());
        rng.fill_normal(recon.values());
        Tensor<float> both({2, 2 * channels, 8, 8});
        for (Index n = 0; n < 2; ++n) {  // per image the target's channels, then the reconstruction's
            std::copy(x.data() + n * channels * 64, x.data() + (n + 1) * channels * 64, both.data() + n * 2 * channels * 64);
            std::copy(recon.data() + n * channels * 64, recon.data() + (n + 1) * channels * 64,
                      both.data() + (n * 2 + 1) * channels * 64);
        }
        // From the mean code (base null: w_avg) the reconstruction's zero taps leave the codes as
        // they were (up to the stem GEMM's longer sum).
        const Tensor<float> want = single.forward(x), got = grown.forward(both);
        for (Index j = 0; j < want.numel(); ++j) REQUIRE(got[j] == Approx(want[j]).margin(1e-5));
        // The reconstruction is read once training moves those taps: it changes the codes.
        PspEncoder moved = grown;
        const EncoderParamSpec& stem = moved.param_specs()[0];
        REQUIRE(stem.name == "stem.conv.weight");
        moved.params()[stem.offset + channels * 9] = 1.0f;  // output 0, first reconstruction tap
        const Tensor<float> changed = moved.forward(both);
        double diff = 0;
        for (Index j = 0; j < want.numel(); ++j) diff += std::abs(changed[j] - want[j]);
        REQUIRE(diff > 1e-4);
    }
    PspEncoder iterative(tiny_config(1, true), 1);
    REQUIRE_THROWS_WITH(PspEncoder::iterative_from(iterative, 2), Catch::Matchers::Contains("iterative already"));
    REQUIRE_THROWS_WITH(PspEncoder::iterative_from(PspEncoder(tiny_config(1)), 0),
                        Catch::Matchers::Contains("iterations must be >= 1"));
}

TEST_CASE("e4e encoder: one w on every layer plus the enabled offsets", "[encoder][e4e]") {
    Rng rng(4);
    Tensor<float> x({2, 1, 8, 8});
    rng.fill_normal(x.values());
    PspEncoder e(tiny_config(1, false, true), 3);
    const auto row = [](const Tensor<float>& c, Index n, Index i) {
        return std::vector<float>(c.data() + (n * 3 + i) * 5, c.data() + (n * 3 + i + 1) * 5);
    };
    e.set_active_offsets(0);  // progressive training starts here: W, not W+
    PspEncoder::Cache k0;
    const Tensor<float> w_only = e.forward(x, &k0);
    CHECK(e.offset_penalty(k0) == 0.0);
    for (Index n = 0; n < 2; ++n) {
        CHECK(row(w_only, n, 1) == row(w_only, n, 0));
        CHECK(row(w_only, n, 2) == row(w_only, n, 0));
    }
    e.set_active_offsets(1);
    PspEncoder::Cache k1;
    const Tensor<float> one = e.forward(x, &k1);
    double penalty = 0;
    for (Index n = 0; n < 2; ++n) {
        CHECK(row(one, n, 0) == row(w_only, n, 0));  // the w itself does not change
        CHECK(row(one, n, 2) == row(w_only, n, 2));  // layer 2's offset is not enabled yet
        CHECK(row(one, n, 1) != row(w_only, n, 1));
        double sq = 0;
        for (Index d = 0; d < 5; ++d) sq += std::pow(one[(n * 3 + 1) * 5 + d] - one[(n * 3) * 5 + d], 2);
        penalty += std::sqrt(sq) / 2;  // the offset of layer 1 is its code minus the w
    }
    CHECK(e.offset_penalty(k1) == Approx(penalty).epsilon(1e-5));
    // The same weights read as pSp give every head's output on its own layer: e4e differs.
    EncoderConfig psp_config = tiny_config(1);
    PspEncoder psp(psp_config, 3);
    psp.params() = e.params();
    const Tensor<float> independent = psp.forward(x);
    CHECK(row(independent, 0, 0) == row(one, 0, 0));
    CHECK(row(independent, 0, 1) != row(one, 0, 1));
    REQUIRE_THROWS_WITH(e.set_active_offsets(3), Catch::Matchers::Contains("3 is outside [0, 2]"));
    REQUIRE_THROWS_WITH(psp.set_active_offsets(0), Catch::Matchers::Contains("not e4e"));
}

TEST_CASE("encoder config: the e4e fields round-trip and are checked", "[encoder][e4e][errors]") {
    EncoderConfig c = EncoderConfig::for_generator(32, 1, 8, 128);
    c.e4e = true;
    c.active_offsets = 5;
    const EncoderConfig round = EncoderConfig::from_json(Json::parse(c.to_json().dump()), "x");
    CHECK(round.e4e);
    CHECK(round.active_offsets == 5);
    CHECK(round.to_json().at("architecture").as_string() == "e4e");
    CHECK(PspEncoder(round).num_params() == PspEncoder(EncoderConfig::for_generator(32, 1, 8, 128)).num_params());
    EncoderConfig bad = c;
    bad.active_offsets = 8;
    REQUIRE_THROWS_WITH(bad.validate(), Catch::Matchers::Contains("active_offsets 8 must be in [0, num_ws - 1 = 7]"));
    bad = EncoderConfig::for_generator(32, 1, 8, 128);
    bad.active_offsets = 2;
    REQUIRE_THROWS_WITH(bad.validate(), Catch::Matchers::Contains("active_offsets 2 needs an e4e encoder"));
    Json no_count = EncoderConfig::for_generator(32, 1, 8, 128).to_json();
    no_count.set("architecture", "e4e");  // an e4e config must say how many offsets are in use
    REQUIRE_THROWS_WITH(EncoderConfig::from_json(no_count, "e.safetensors"), Catch::Matchers::Contains("e.safetensors: bad encoder_config"));
}

TEST_CASE("encoder config: presets and refused sizes", "[encoder][errors]") {
    const EncoderConfig demo = EncoderConfig::for_generator(32, 1, 8, 128);
    const PspEncoder e(demo);
    CHECK(e.num_params() < 2'000'000);  // "a 32x32 grayscale model gets a small one"
    const EncoderConfig big = EncoderConfig::for_generator(1024, 3, 18, 512);
    CHECK(big.stage_channels.size() >= 4);
    CHECK(big.stage_resolution(static_cast<Index>(big.stage_channels.size()) - 1) <= 16);
    EncoderConfig bad = demo;
    bad.resolution = 36;
    REQUIRE_THROWS_WITH(bad.validate(), Catch::Matchers::Contains("resolution 36 must be divisible by 2^3"));
    bad = demo;
    bad.stage_channels = {16, 30, 64};
    REQUIRE_THROWS_WITH(bad.validate(), Catch::Matchers::Contains("stage width 30"));
    const EncoderConfig round = EncoderConfig::from_json(Json::parse(demo.to_json().dump()), "x");
    CHECK(round.to_json().dump() == demo.to_json().dump());
    REQUIRE_THROWS_WITH(EncoderConfig::from_json(Json::parse("{\"architecture\": \"hyperstyle\"}"), "f.safetensors"),
                        Catch::Matchers::Contains("f.safetensors: bad encoder_config: unknown encoder architecture 'hyperstyle'"));
    Tensor<float> wrong({1, 3, 32, 32}, 0.0f);
    REQUIRE_THROWS_AS(e.forward(wrong), ShapeError);
    bad = demo;
    bad.iterations = 3;  // refinement needs an encoder trained to read its reconstructions
    REQUIRE_THROWS_WITH(bad.validate(), Catch::Matchers::Contains("iterations 3 needs an iterative encoder"));
    bad.iterative = true;
    bad.iterations = 0;
    REQUIRE_THROWS_WITH(bad.validate(), Catch::Matchers::Contains("iterations 0 must be >= 1"));
}

TEST_CASE("encoder config: a widened preset keeps the generator and scales every width", "[encoder]") {
    const EncoderConfig demo = EncoderConfig::for_generator(32, 1, 8, 128);
    const EncoderConfig wide = demo.widened(2, 2);
    CHECK(wide.stem_channels == 2 * demo.stem_channels);
    CHECK(wide.stage_channels == std::vector<Index>{32, 64, 128});
    CHECK(wide.pyramid_channels == 2 * demo.pyramid_channels);
    CHECK(wide.head_hidden == 2 * demo.head_hidden);
    CHECK(wide.blocks_per_stage == 2);
    CHECK((wide.resolution == demo.resolution && wide.num_ws == demo.num_ws && wide.w_dim == demo.w_dim &&
           wide.in_channels == demo.in_channels && wide.head_grid == demo.head_grid && wide.groups == demo.groups));
    CHECK(PspEncoder(wide).num_params() > 3 * PspEncoder(demo).num_params());
    CHECK(demo.widened(1, demo.blocks_per_stage).to_json().dump() == demo.to_json().dump());
    const EncoderConfig round = EncoderConfig::from_json(Json::parse(wide.to_json().dump()), "x");
    CHECK(round.to_json().dump() == wide.to_json().dump());
    REQUIRE_THROWS_WITH(demo.widened(0, 1), Catch::Matchers::Contains("width factor 0 outside [1, 16]"));
    REQUIRE_THROWS_WITH(demo.widened(2, 9), Catch::Matchers::Contains("blocks per stage 9 outside [1, 8]"));
}

TEST_CASE("encoder config: the iterative fields round-trip and old configs load as single-pass", "[encoder]") {
    EncoderConfig c = EncoderConfig::for_generator(32, 1, 8, 128);
    c.iterative = true;
    c.iterations = 4;
    CHECK(c.input_channels() == 2);  // a grayscale generator: [x, G(w_t)] is a 2-channel image
    const EncoderConfig round = EncoderConfig::from_json(Json::parse(c.to_json().dump()), "x");
    CHECK(round.iterative);
    CHECK(round.iterations == 4);
    CHECK(round.input_channels() == 2);
    CHECK(PspEncoder(round).in_channels() == 2);
    // The encoder_config of a file written before ReStyle refinement existed (no such fields).
    const Json old = Json::parse(
        "{\"architecture\": \"psp\", \"resolution\": 32, \"in_channels\": 3, \"num_ws\": 8, \"w_dim\": 128, "
        "\"stem_channels\": 16, \"blocks_per_stage\": 1, \"pyramid_channels\": 32, \"head_grid\": 4, "
        "\"head_hidden\": 128, \"groups\": 4, \"stage_channels\": [16, 32, 64]}");
    const EncoderConfig o = EncoderConfig::from_json(old, "old.safetensors");
    CHECK_FALSE(o.iterative);
    CHECK(o.iterations == 1);
    CHECK(o.input_channels() == 3);
    Json bad = c.to_json();
    bad.set("iterations", "two");
    REQUIRE_THROWS_WITH(EncoderConfig::from_json(bad, "e.safetensors"), Catch::Matchers::Contains("e.safetensors: bad encoder_config"));
}

TEST_CASE("R1 penalty: its value and weight gradient agree with finite differences", "[encoder][gradcheck][adversarial][r1]") {
    LatentDiscriminator d(LatentDiscriminatorConfig{6, 8, 2}, 3);
    Rng rng(4);
    Tensor<float> real({5, 6});
    rng.fill_normal(real.values());
    const auto same = [](const Tensor<float>& t) { return t; };
    const double gamma = 3.0;
    const auto r1_value = [&] {
        Tensor<float> unused({1, d.num_params()}, 0.0f);
        return detail::r1_penalty(d, real, gamma, same, same, unused);
    };
    Tensor<float> grad({1, d.num_params()}, 0.0f);
    const double value = detail::r1_penalty(d, real, gamma, same, same, grad);
    // The value by hand: gamma/2 * mean over the rows of ||dD(x_i)/dx_i||^2.
    LatentDiscriminator::Cache k;
    const Tensor<float> logits = d.forward(real, &k);
    const Tensor<float> g = d.backward(k, Tensor<float>(logits.shape(), 1.0f), nullptr);
    double g2 = 0;
    for (float v : g.values()) g2 += static_cast<double>(v) * v;
    CHECK(value == Approx(0.5 * gamma * g2 / 5.0).epsilon(1e-12));
    // The weight gradient (a central difference of two backward passes inside r1_penalty) against
    // finite differences of the value itself, on every weight and bias.
    int nonzero = 0;
    for (Index i = 0; i < d.num_params(); ++i) {
        const double fd = test::best_finite_difference(r1_value, d.params().data() + i, grad[i]);
        INFO("param " << i << ": r1_penalty " << grad[i] << " fd " << fd);
        CHECK(std::fabs(fd - grad[i]) <= 2e-3 * (1.0 + std::fabs(fd)));
        nonzero += std::fabs(fd) > 1e-4 ? 1 : 0;
    }
    CHECK(nonzero > d.num_params() / 4);
    // Accumulates: a second call adds the same gradient again.
    Tensor<float> twice = grad;
    detail::r1_penalty(d, real, gamma, same, same, twice);
    for (Index i = 0; i < grad.numel(); i += 7) CHECK(twice[i] == Approx(2.0 * grad[i]).margin(1e-6));
}

TEST_CASE("latent discriminator: weight and code gradients agree with finite differences", "[encoder][gradcheck][adversarial]") {
    LatentDiscriminator d(LatentDiscriminatorConfig{5, 6, 2}, 11);
    Rng rng(12);
    Tensor<float> w({4, 5});
    rng.fill_normal(w.values());
    // The loss a training step sees: D's non-saturating loss on w as real plus on w as fake, and
    // separately the encoder's adversarial term, each through its gradient on the logits.
    for (int which = 0; which < 2; ++which) {
        INFO((which == 0 ? "discriminator loss (real + fake)" : "adversarial loss"));
        auto loss = [&] {
            const Tensor<float> l = d.forward(w);
            return which == 0 ? discriminator_loss(l, true).value + discriminator_loss(l, false).value
                              : adversarial_loss(l).value;
        };
        LatentDiscriminator::Cache k;
        const Tensor<float> logits = d.forward(w, &k);
        REQUIRE(logits.shape() == Shape{4});
        Tensor<float> gl(logits.shape(), 0.0f);
        if (which == 0) {
            const GanLoss r = discriminator_loss(logits, true), f = discriminator_loss(logits, false);
            for (Index i = 0; i < 4; ++i) gl[i] = r.grad[i] + f.grad[i];
        } else {
            gl = adversarial_loss(logits).grad;
        }
        Tensor<float> gp({1, d.num_params()}, 0.0f);
        const Tensor<float> gw = d.backward(k, gl, &gp);
        REQUIRE(gw.shape() == w.shape());
        int nonzero = 0;
        for (int t = 0; t < 20; ++t) {
            const Index i = static_cast<Index>(rng.below(static_cast<std::uint64_t>(d.num_params())));
            const double fd = test::best_finite_difference(loss, d.params().data() + i, gp[i]);
            INFO("param " << i << ": analytic " << gp[i] << " fd " << fd);
            CHECK(std::fabs(fd - gp[i]) <= 2e-3 * (1.0 + std::fabs(fd)));
            nonzero += std::fabs(fd) > 1e-5 ? 1 : 0;
        }
        CHECK(nonzero > 5);
        for (Index i = 0; i < w.numel(); ++i) {
            const double fd = test::best_finite_difference(loss, w.data() + i, gw[i]);
            INFO("code entry " << i << ": analytic " << gw[i] << " fd " << fd);
            CHECK(std::fabs(fd - gw[i]) <= 2e-3 * (1.0 + std::fabs(fd)));
        }
    }
    // Large logits stay finite (softplus without overflow).
    Tensor<float> big({2}, std::vector<float>{300.0f, -300.0f});
    CHECK(std::isfinite(discriminator_loss(big, true).value));
    CHECK(std::isfinite(discriminator_loss(big, false).value));
    CHECK(discriminator_loss(big, false).value == Approx(150.0).epsilon(1e-6));  // mean(softplus(300), softplus(-300))
    Tensor<float> wrong({4, 6}, 0.0f);
    REQUIRE_THROWS_AS(d.forward(wrong), ShapeError);
    REQUIRE_THROWS_WITH(LatentDiscriminator(LatentDiscriminatorConfig{5, 0, 2}), Catch::Matchers::Contains("must be positive"));
}
