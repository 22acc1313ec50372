// The pSp-style encoder (issue 16): weight and input gradients against finite differences, the
// config's checks, and (test_encoder_trainer.cpp) training on the demo generator.
#include "test_support.hpp"

#include <ganinv/core/rng.hpp>
#include <ganinv/models/psp_encoder.hpp>

using namespace ganinv;

namespace {

EncoderConfig tiny_config(Index channels, bool iterative = false) {
    EncoderConfig c;
    c.iterative = iterative;
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
    // reading [x, G(w_t)]) whose codes start from given base codes.
    for (auto [channels, iterative] : {std::pair<Index, bool>{1, false}, {3, false}, {1, true}}) {
        INFO("image channels " << channels << (iterative ? ", iterative" : ""));
        PspEncoder e(tiny_config(channels, iterative), 7);
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
        auto loss = [&] { return dot(e.forward(x, nullptr, b).values(), gy.values()); };
        PspEncoder::Cache cache;
        const Tensor<float> codes = e.forward(x, &cache, b);
        REQUIRE(codes.shape() == Shape{2, 3, 5});
        Tensor<float> gp({1, e.num_params()}, 0.0f);
        const Tensor<float> gx = e.backward(cache, gy, &gp);
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
    REQUIRE_THROWS_WITH(EncoderConfig::from_json(Json::parse("{\"architecture\": \"e4e\"}"), "f.safetensors"),
                        Catch::Matchers::Contains("f.safetensors: bad encoder_config: unknown encoder architecture 'e4e'"));
    Tensor<float> wrong({1, 3, 32, 32}, 0.0f);
    REQUIRE_THROWS_AS(e.forward(wrong), ShapeError);
    bad = demo;
    bad.iterations = 3;  // refinement needs an encoder trained to read its reconstructions
    REQUIRE_THROWS_WITH(bad.validate(), Catch::Matchers::Contains("iterations 3 needs an iterative encoder"));
    bad.iterative = true;
    bad.iterations = 0;
    REQUIRE_THROWS_WITH(bad.validate(), Catch::Matchers::Contains("iterations 0 must be >= 1"));
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
