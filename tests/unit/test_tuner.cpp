// Generator tuning (invert/tuner.hpp): the weight gradients the tuner steps with against finite
// differences, zero steps and layer ranges leave weights bit-identical, tuning improves the
// reconstruction, the tuned generator file round-trips, and bad input names the problem.
#include "test_support.hpp"
#include "invert_fixtures.hpp"

#include <ganinv/backend/cpu.hpp>
#include <ganinv/invert/tuner.hpp>
#include <ganinv/loss/pixel.hpp>
#include <ganinv/models/stylegan2.hpp>
#include <ganinv/models/stylegan2_file.hpp>

#include <cstring>
#include <map>
#include <set>

using namespace ganinv;
using test::reachable_targets;
using test::small_generator;
using G = StyleGAN2<Cpu>;

namespace {

/// Random ws [n, num_ws, w_dim] through the mapping network: codes the generator knows.
Tensor<float> random_pivots(G& g, Index n, std::uint64_t seed) {
    Tensor<float> z({n, g.z_dim()});
    Rng(seed).fill_normal(z.values());
    return g.mapping(z);
}

bool bit_identical(const Tensor<float>& a, const Tensor<float>& b) {
    return a.shape() == b.shape() &&
           std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.numel())) == 0;
}

double max_abs_diff(const Tensor<float>& a, const Tensor<float>& b) {
    REQUIRE(a.shape() == b.shape());
    double m = 0;
    for (Index i = 0; i < a.numel(); ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
    return m;
}

double mean_psnr(const std::vector<metrics::Comparison>& m) {
    double s = 0;
    for (const auto& c : m) s += c.psnr;
    return s / static_cast<double>(m.size());
}

}  // namespace

TEST_CASE("Tuner weight gradients agree with finite differences, locality term included", "[tuner][gradcheck]") {
    for (const double locality : {0.0, 0.5}) {
        G g = small_generator();
        TunerOptions o;
        o.locality_weight = locality;
        o.locality_alpha = 2.0;
        o.locality_samples = 2;
        Tuner<G, Mse<Cpu>> tuner(g, Mse<Cpu>{}, o);
        // Targets from other codes than the pivots: the loss is far from its minimum.
        tuner.set_problem(reachable_targets(g, 2, 8), random_pivots(g, 2, 31));
        tuner.evaluate(true, 3);
        const NamedTensors grads = tuner.grads();
        auto objective = [&] { return tuner.evaluate(false, 3).total; };
        std::set<ParamKind> kinds;
        for (const std::string& name : tuner.tuned_params()) {
            const ParamSpec* spec = nullptr;
            for (const auto& s : g.param_specs()) if (s.name == name) spec = &s;
            REQUIRE(spec);
            kinds.insert(spec->kind);
            Tensor<float>& t = g.param(name);
            for (Index i = 0; i < t.numel(); i += std::max<Index>(1, t.numel() / 3)) {
                const double analytic = grads.at(name)[i];
                const double fd = test::best_finite_difference(objective, &t[i], analytic);
                INFO(name << "[" << i << "], locality " << locality << ": analytic " << analytic << " finite difference "
                          << fd);
                REQUIRE(std::fabs(fd - analytic) <= 1e-2 * (1.0 + std::fabs(fd)));
            }
        }
        // Every kind of synthesis tensor PTI tunes was sampled.
        REQUIRE(kinds == std::set<ParamKind>{ParamKind::weight, ParamKind::bias, ParamKind::affine_bias,
                                             ParamKind::const_input, ParamKind::noise_strength});
    }
}

TEST_CASE("Gradients into backend buffers equal the host gradients, only for the named tensors", "[tuner][gradients]") {
    // The Tuner's step keeps weight gradients in backend memory (ParamGradTarget's device map):
    // each named buffer receives exactly what the host NamedTensors path accumulates (added to
    // what it held), every kind of tensor included, and no other tensor is computed or needed.
    G g = small_generator();
    const Tensor<float> ws = random_pivots(g, 2, 5);
    G::Cache cache;
    const Tensor<float> img = g.synthesis(ws, NoiseInput<Cpu>{NoiseMode::constant, 0, nullptr}, &cache);
    Tensor<float> grad_img(img.shape());
    Rng(3).fill_normal(grad_img.values());
    NamedTensors host = g.zero_param_grads();
    (void)g.synthesis_backward_ws(cache, grad_img, &host);
    std::map<std::string, Tensor<float>> on_backend;
    std::set<ParamKind> kinds;
    for (const auto& spec : g.param_specs()) {
        if (spec.name.rfind("synthesis.", 0) != 0 || spec.kind == ParamKind::filter || kinds.count(spec.kind))
            continue;  // one tensor of each kind that has a gradient (resampling filters are constants)
        kinds.insert(spec.kind);
        on_backend.emplace(spec.name, Tensor<float>(spec.shape, 1.0f));  // starts at 1: the target accumulates
    }
    (void)g.synthesis_backward_ws(cache, grad_img, G::GradTarget(&on_backend));
    REQUIRE(on_backend.size() == kinds.size());
    for (const auto& [name, t] : on_backend) {
        const Tensor<float>& h = host.at(name);
        double norm = 0;
        for (Index i = 0; i < h.numel(); ++i) norm = std::max(norm, std::fabs(static_cast<double>(h[i])));
        INFO(name << " (largest host gradient " << norm << ")");
        REQUIRE(norm > 0);  // a zero gradient would compare equal to an untouched buffer
        for (Index i = 0; i < h.numel(); ++i) REQUIRE(std::fabs(t[i] - (1.0 + h[i])) <= 1e-6 * (1.0 + std::fabs(h[i])));
    }
    REQUIRE(kinds.count(ParamKind::weight));
    REQUIRE(kinds.count(ParamKind::noise_const));
    REQUIRE(kinds.count(ParamKind::const_input));
}

TEST_CASE("Tuner with zero steps returns the original weights exactly", "[tuner]") {
    G g = small_generator();
    const NamedTensors before = download_stylegan2_params(g);
    TunerOptions o;
    o.steps = 0;
    Tuner<G, Mse<Cpu>> tuner(g, Mse<Cpu>{}, o);
    const TuneResult r = tuner.run(reachable_targets(g, 2, 8), random_pivots(g, 2, 4));
    REQUIRE(r.steps_run == 0);
    for (const auto& [name, t] : before.items()) {
        INFO(name);
        REQUIRE(bit_identical(g.param(name), t));
    }
    REQUIRE(bit_identical(r.before, r.after));
}

TEST_CASE("Tuner improves the reconstruction; a layer range leaves the other weights bit-identical", "[tuner]") {
    G g = small_generator();
    const NamedTensors before = download_stylegan2_params(g);
    const Tensor<float> targets = reachable_targets(g, 2, 8), pivots = random_pivots(g, 2, 4);
    TunerOptions o;
    o.steps = 40;
    o.learning_rate = 1e-2;
    o.selection.first_w = 1;
    o.selection.last_w = 3;
    Tuner<G, Mse<Cpu>> tuner(g, Mse<Cpu>{}, o);
    const TuneResult r = tuner.run(targets, pivots);
    REQUIRE(r.steps_run == 40);
    REQUIRE(r.loss_history.size() == 40);
    const std::set<std::string> tuned(r.tuned.begin(), r.tuned.end());
    REQUIRE(tuned.count("synthesis.b4.const") == 0);  // w index 0 is outside 1:3
    Index moved = 0;
    for (const auto& [name, t] : before.items()) {
        INFO(name);
        if (tuned.count(name)) moved += !bit_identical(g.param(name), t);
        else REQUIRE(bit_identical(g.param(name), t));
    }
    REQUIRE(moved == static_cast<Index>(tuned.size()));
    INFO("PSNR before " << mean_psnr(r.metrics_before) << " after " << mean_psnr(r.metrics_after));
    REQUIRE(mean_psnr(r.metrics_after) > mean_psnr(r.metrics_before) + 1.0);
    const double first = r.loss_history.front()[0] + r.loss_history.front()[1];
    const double last = r.loss_history.back()[0] + r.loss_history.back()[1];
    REQUIRE(last < 0.5 * first);

    // Back to the start: every weight as it was.
    tuner.restore_original();
    for (const auto& [name, t] : before.items()) REQUIRE(bit_identical(g.param(name), t));
}

TEST_CASE("Tuner selections: ToRGB only and biases only", "[tuner]") {
    G g = small_generator();
    TuneSelection s;
    s.kinds = TunedKinds::torgb;
    for (const auto& name : select_tuned_params(g.config(), s)) REQUIRE(name.find(".torgb.") != std::string::npos);
    s.kinds = TunedKinds::biases;
    const auto biases = select_tuned_params(g.config(), s);
    REQUIRE(!biases.empty());
    for (const auto& name : biases) REQUIRE(name.ends_with("bias"));
    s.kinds = TunedKinds::all;
    for (const auto& name : select_tuned_params(g.config(), s)) REQUIRE(name.starts_with("synthesis."));
    REQUIRE(parse_tuned_kinds("torgb") == TunedKinds::torgb);
    REQUIRE_THROWS_WITH(parse_tuned_kinds("convs"), Catch::Matchers::Contains("unknown set of tuned tensors"));
}

TEST_CASE("Tuner stops at the loss threshold; an unknown stop term is named", "[tuner]") {
    G g = small_generator();
    TunerOptions o;
    o.steps = 10;
    o.target_loss = 1e9;  // reached before the first step
    Tuner<G, Mse<Cpu>> tuner(g, Mse<Cpu>{}, o);
    const Tensor<float> targets = reachable_targets(g, 1, 8), pivots = random_pivots(g, 1, 4);
    REQUIRE(tuner.run(targets, pivots).steps_run == 0);
    o.stop_term = "lpips";
    Tuner<G, Mse<Cpu>> unknown(g, Mse<Cpu>{}, o);
    REQUIRE_THROWS_WITH(unknown.run(targets, pivots),
                        Catch::Matchers::Contains("stop term 'lpips' is not a term of the loss"));
}

TEST_CASE("A tuned demo generator round-trips through its file with the same config metadata", "[tuner][io]") {
    const auto model = test::models_dir() / "fmnist32.safetensors";
    G g = G::load(model);
    const Tensor<float> pivots = random_pivots(g, 1, 2);
    const Tensor<float> targets = g.synthesis(random_pivots(g, 1, 3));
    TunerOptions o;
    o.steps = 2;
    o.learning_rate = 1e-2;
    o.selection.kinds = TunedKinds::biases;
    Tuner<G, Mse<Cpu>> tuner(g, Mse<Cpu>{}, o);
    const TuneResult r = tuner.run(targets, pivots);
    REQUIRE(!bit_identical(r.before, r.after));

    const std::string config_text = *SafetensorsFile(model).metadata("config");
    const auto dir = test::temp_dir("tuner_roundtrip");
    save_stylegan2(g, dir / "tuned.generator.safetensors", config_text, {{"tuned_from", "fmnist32"}});
    const SafetensorsFile saved(dir / "tuned.generator.safetensors");
    REQUIRE(*saved.metadata("config") == config_text);  // source, snapshot: every key kept
    REQUIRE(*saved.metadata("tuned_from") == "fmnist32");
    G loaded = G::load(dir / "tuned.generator.safetensors");
    const Tensor<float> again = loaded.synthesis(pivots);
    REQUIRE(max_abs_diff(again, r.after) <= 1e-6);
    REQUIRE(bit_identical(loaded.param("synthesis.b32.torgb.bias"), g.param("synthesis.b32.torgb.bias")));

    // Another architecture's config text is refused before anything is written.
    REQUIRE_THROWS_WITH(save_stylegan2(g, dir / "bad.safetensors", small_generator().config().to_json().dump()),
                        Catch::Matchers::Contains("another architecture"));
    REQUIRE_THROWS_WITH(save_stylegan2(g, dir / "bad.safetensors", std::string(R"({"z_dim": 4})")),
                        Catch::Matchers::Contains("does not parse"));
    REQUIRE(!std::filesystem::exists(dir / "bad.safetensors"));
}

TEST_CASE("Tuner bad input: code shape, layer range, a generator file missing a tensor", "[tuner][errors]") {
    G g = small_generator();
    Tuner<G, Mse<Cpu>> tuner(g, Mse<Cpu>{}, TunerOptions{});
    const Tensor<float> targets = reachable_targets(g, 1, 8);
    REQUIRE_THROWS_AS(tuner.run(targets, Tensor<float>({1, g.num_ws() + 1, g.w_dim()})), ShapeError);
    REQUIRE_THROWS_WITH(tuner.run(targets, Tensor<float>({1, g.num_ws(), g.w_dim() + 2})),
                        Catch::Matchers::Contains("pivot codes must be ws of shape [N, " +
                                                           std::to_string(g.num_ws()) + ", " + std::to_string(g.w_dim())));
    REQUIRE_THROWS_WITH(tuner.run(targets, random_pivots(g, 2, 1)), Catch::Matchers::Contains("2 pivot code(s) for 1"));

    TunerOptions o;
    o.selection.first_w = 2;
    o.selection.last_w = g.num_ws() + 1;
    REQUIRE_THROWS_WITH((Tuner<G, Mse<Cpu>>(g, Mse<Cpu>{}, o)), Catch::Matchers::Contains("out of bounds"));
    o.selection.last_w = 2;  // empty
    REQUIRE_THROWS_WITH((Tuner<G, Mse<Cpu>>(g, Mse<Cpu>{}, o)), Catch::Matchers::Contains("out of bounds"));

    const auto dir = test::temp_dir("tuner_missing");
    SafetensorsWriter w;
    const NamedTensors params = download_stylegan2_params(g);
    for (const auto& [name, t] : params.items())
        if (name != "synthesis.b8.conv1.affine.bias") w.add(name, t);
    w.set_metadata("config", g.config().to_json().dump());
    w.write(dir / "partial.generator.safetensors");
    REQUIRE_THROWS_WITH(G::load(dir / "partial.generator.safetensors"),
                        Catch::Matchers::Contains("synthesis.b8.conv1.affine.bias"));
}
