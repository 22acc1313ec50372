// The device-resident Adam loop (invert/device_loop.hpp) on the Cpu backend: Philox against the
// published Random123 answers, each optimizer op of Cpu against its definition, the whole loop
// against the host reference loop with the same exploration noise, the stop rule against the host
// loop's Stopper, and the per-generator W statistics cache.
#include "test_support.hpp"
#include "device_loop_reference.hpp"
#include "invert_fixtures.hpp"

#include <ganinv/concepts/backend_optimizer.hpp>
#include <ganinv/core/philox.hpp>
#include <ganinv/invert/inverter.hpp>
#include <ganinv/loss/pixel.hpp>
#include <ganinv/models/stylegan2.hpp>
#include <ganinv/optim/optim.hpp>

using namespace ganinv;
using G = StyleGAN2<Cpu>;

static_assert(BackendOptimizerOps<Cpu>);

namespace {

struct StepBuffers {
    Tensor<float> step{{1}, 0.0f}, lr, noise, running;
    nn::StepState state() const { return {step.data(), lr.data(), noise.data(), running.data()}; }
};

}  // namespace

TEST_CASE("Philox4x32-10 gives the Random123 known answers; its normals are N(0, 1)", "[invert][device_loop]") {
    std::uint32_t w[4];
    philox4x32(0, 0, 0, w);
    CHECK(w[0] == 0x6627e8d5u);
    CHECK(w[1] == 0xe169c58du);
    CHECK(w[2] == 0xbc57ac4cu);
    CHECK(w[3] == 0x9b00dbd8u);
    philox4x32(~0ULL, ~0ULL, ~0ULL, w);
    CHECK(w[0] == 0x408f276du);
    CHECK(w[1] == 0x41c83b0eu);
    CHECK(w[2] == 0xa20bc7c6u);
    CHECK(w[3] == 0x6d5451fdu);
    double s = 0, s2 = 0;
    const int n = 200000;
    for (int i = 0; i < n; ++i) {
        const double x = philox_normal(7, 3, static_cast<std::uint64_t>(i));
        s += x;
        s2 += x * x;
    }
    CHECK(std::fabs(s / n) < 0.01);
    CHECK(std::fabs(s2 / n - 1.0) < 0.01);
    CHECK(philox_normal(7, 3, 5) == philox_normal(7, 3, 5));
    CHECK(philox_normal(7, 3, 5) != philox_normal(7, 4, 5));
    CHECK(philox_normal(7, 3, 5) != philox_normal(8, 3, 5));
}

TEST_CASE("Cpu optimizer ops: exploration noise, Adam, re-normalisation, stop rule", "[invert][device_loop]") {
    const Cpu b;
    StepBuffers sb;
    sb.step[0] = 2;
    sb.lr = Tensor<float>({4}, 0.0f);
    sb.lr[2] = 0.05f;
    sb.noise = Tensor<float>({4}, 0.0f);
    sb.noise[2] = 0.3f;
    sb.running = Tensor<float>({2}, 1.0f);

    SECTION("exploration_ws repeats each noisy code row for every layer") {
        Tensor<float> code({2, 3});
        for (Index i = 0; i < 6; ++i) code[i] = static_cast<float>(i);
        Tensor<float> ws({2, 4, 3});
        b.exploration_ws(code.data(), 2, 3, 4, sb.state(), 11, ws.data());
        for (Index r = 0; r < 2; ++r)
            for (Index k = 0; k < 4; ++k)
                for (Index j = 0; j < 3; ++j)
                    CHECK(ws[(r * 4 + k) * 3 + j] ==
                          code[r * 3 + j] + 0.3f * philox_normal(11, 2, static_cast<std::uint64_t>(r * 3 + j)));
        sb.noise[2] = 0.0f;  // no noise: an exact copy
        b.exploration_ws(code.data(), 2, 3, 1, sb.state(), 11, ws.data());
        for (Index i = 0; i < 6; ++i) CHECK(ws[i] == code[i]);
    }
    SECTION("adam_segments follows the host Adam on running rows and leaves stopped rows alone") {
        Tensor<float> p({2, 5}), g({2, 5}), g2({2, 5}), m({2, 5}, 0.0f), v({2, 5}, 0.0f);
        Rng rng(4);
        rng.fill_normal(p.values());
        Tensor<float> ref = p;
        sb.step[0] = 0;
        sb.lr = Tensor<float>({3}, 0.05f);
        sb.running[1] = 0.0f;
        Adam adam(AdamOptions{0.05, 0.9, 0.999, 1e-8});
        const nn::ParamSegment seg{p.data(), m.data(), v.data(), g.data(), g2.data(), 2.0f, 5};
        for (int it = 0; it < 3; ++it) {
            rng.fill_normal(g.values());
            rng.fill_normal(g2.values());
            Tensor<float> total = g;
            for (Index i = 0; i < 10; ++i) total[i] += 2.0f * g2[i];
            const Tensor<float> before = ref;
            adam.step(ref, total);
            std::copy_n(before.data() + 5, 5, ref.data() + 5);  // the stopped row keeps its values
            b.adam_segments(std::span<const nn::ParamSegment>(&seg, 1), 2, nn::AdamConstants{}, sb.state());
            sb.step[0] += 1;
        }
        for (Index i = 0; i < 10; ++i) CHECK(p[i] == Approx(ref[i]).epsilon(1e-5));
        for (Index i = 5; i < 10; ++i) CHECK(m[i] == 0.0f);
    }
    SECTION("renormalize_segments gives zero mean and unit variance per running row") {
        Tensor<float> x({2, 64});
        Rng(2).fill_normal(x.values());
        for (float& e : x.values()) e = 3.0f * e + 1.5f;
        const Tensor<float> before = x;
        sb.running[1] = 0.0f;
        const nn::ParamSegment seg{x.data(), nullptr, nullptr, nullptr, nullptr, 0.0f, 64};
        b.renormalize_segments(std::span<const nn::ParamSegment>(&seg, 1), 2, sb.state());
        double mean = 0, sq = 0;
        for (Index i = 0; i < 64; ++i) mean += x[i];
        mean /= 64;
        for (Index i = 0; i < 64; ++i) sq += (x[i] - mean) * (x[i] - mean);
        CHECK(std::fabs(mean) < 1e-6);
        CHECK(sq / 64 == Approx(1.0).epsilon(1e-5));
        for (Index i = 64; i < 128; ++i) CHECK(x[i] == before[i]);
    }
    SECTION("stop_and_advance: history, threshold and patience as the host Stopper, then the step counter") {
        Tensor<float> best({2}, std::numeric_limits<float>::infinity()), since({2}, 0.0f), stopped({2}, -1.0f),
            running({2}, 1.0f), history({4, 2}, 0.0f), step({1}, 0.0f);
        nn::StopRule rule;
        rule.has_target = true;
        rule.target_loss = 0.5f;
        rule.patience = 2;
        const nn::StopState st{best.data(), since.data(), stopped.data(), running.data(), history.data()};
        const float vals[4][2] = {{1.0f, 2.0f}, {0.4f, 2.0f}, {0.3f, 2.0f}, {0.2f, 2.0f}};
        for (const auto& v : vals) b.stop_and_advance(v, 2, rule, st, step.data());
        CHECK(step[0] == 4.0f);
        CHECK(history[2] == 0.4f);
        CHECK(history[7] == 2.0f);
        CHECK(stopped[0] == 2.0f);  // 0.4 <= 0.5 at step 1: stopped after 2 steps
        CHECK(stopped[1] == 3.0f);  // no gain at steps 1 and 2: patience 2
        CHECK(running[0] == 0.0f);
        CHECK(running[1] == 0.0f);
        CHECK(best[0] == 0.4f);  // a stopped row is not updated any more
    }
}

TEST_CASE("device Adam loop on Cpu follows the host Adam loop over 50 steps", "[invert][device_loop]") {
    G g = test::small_generator();
    const Tensor<float> t = test::reachable_targets(g, 3, 21);
    for (const bool noise : {true, false}) {
        InverterOptions o;
        o.steps = 50;
        o.seed = 5;
        o.w_statistics_samples = 300;
        o.optimize_noise = noise;
        o.noise_regularization = 2.0;
        o.learning_rate = 0.05;
        const test::ReferenceRun ref = noise ? test::reference_adam_run<WSpace>(g, Mse<Cpu>{}, o, t)
                                             : test::reference_adam_run<WPlusSpace>(g, Mse<Cpu>{}, o, t);
        InversionResult r;
        std::string mode;
        if (noise) {
            Inverter<G, WSpace, Mse<Cpu>, Adam> inv(g, Mse<Cpu>{}, Adam(ProjectorSchedule{}.adam_options()), o);
            r = inv.run(t);
            mode = inv.launch_mode();
        } else {
            Inverter<G, WPlusSpace, Mse<Cpu>, Adam> inv(g, Mse<Cpu>{}, Adam(ProjectorSchedule{}.adam_options()), o);
            r = inv.run(t);
            mode = inv.launch_mode();
        }
        INFO((noise ? "W + noise maps" : "W+") << ", " << mode);
        CHECK(mode == "device, plain (backend without graphs)");
        REQUIRE(r.loss_history.size() == 50);
        REQUIRE(r.steps_run == 50);
        const double err = test::relative_l2(r.params, ref.params);
        INFO("relative L2 of the final rows " << err);
        CHECK(err < 1e-4);
        for (Index s : {Index{0}, Index{10}, Index{49}})
            for (std::size_t i = 0; i < 3; ++i)
                CHECK(r.loss_history[static_cast<std::size_t>(s)][i] ==
                      Approx(ref.history[static_cast<std::size_t>(s)][i]).epsilon(1e-4));
        CHECK(ref.history.back()[0] < ref.history.front()[0]);
        CHECK(r.evaluations == 50);
    }
}

TEST_CASE("device Adam loop stops images as the host loop does and reports progress", "[invert][device_loop]") {
    G g = test::small_generator();
    const Tensor<float> t = test::reachable_targets(g, 3, 22);
    InverterOptions o;
    o.steps = 60;
    o.w_statistics_samples = 300;
    o.projector_schedule = false;  // no exploration noise: both loops see the same numbers
    o.learning_rate = 0.05;
    o.patience = 3;
    o.min_relative_improvement = 0.02;
    o.progress_every = 7;
    std::vector<Index> reported;
    o.on_progress = [&](const InversionProgress& p) { reported.push_back(p.step); };
    Inverter<G, WPlusSpace, Mse<Cpu>, Adam> dev(g, Mse<Cpu>{}, Adam(ProjectorSchedule{}.adam_options()), o);
    const InversionResult a = dev.run(t);
    o.device_loop = false;
    o.on_progress = nullptr;
    Inverter<G, WPlusSpace, Mse<Cpu>, Adam> host(g, Mse<Cpu>{}, Adam(ProjectorSchedule{}.adam_options()), o);
    const InversionResult b = host.run(t);
    CHECK(host.launch_mode() == "host");
    CHECK(a.stopped_at == b.stopped_at);
    CHECK(a.steps_run == b.steps_run);
    CHECK(a.loss_history.size() == b.loss_history.size());
    CHECK(a.steps_run < 60);
    REQUIRE(!reported.empty());
    CHECK(reported.front() == 7);
    for (Index s : reported) CHECK(s % 7 == 0);
}

TEST_CASE("step_schedule: the projector's numbers, its ramps switched off, or a constant rate", "[invert][device_loop]") {
    InverterOptions o;
    const ProjectorSchedule official = ProjectorSchedule::official(200);
    for (Index s : {Index{0}, Index{5}, Index{100}, Index{170}, Index{199}}) {
        const StepSchedule at = step_schedule(o, 200, s, 1.5);
        CHECK(at.learning_rate == official.learning_rate(s));
        CHECK(at.w_noise_scale == official.w_noise_scale(s, 1.5));
    }
    o.lr_rampup = 0;  // an encoder's start: full rate from the first step
    CHECK(step_schedule(o, 200, 0, 1.5).learning_rate == Approx(0.1));
    o.lr_rampdown = 0;
    CHECK(step_schedule(o, 200, 199, 1.5).learning_rate == Approx(0.1));
    o.lr_rampdown = 1.0;  // a cosine over the whole run: half the rate at the middle
    CHECK(step_schedule(o, 200, 100, 1.5).learning_rate == Approx(0.05));
    o.w_noise_factor = 0;
    CHECK(step_schedule(o, 200, 0, 1.5).w_noise_scale == 0.0);
    o.lr_rampdown = -0.1;
    CHECK_THROWS_AS(step_schedule(o, 200, 3, 1.5), ValueError);
    InverterOptions constant;
    constant.projector_schedule = false;
    constant.learning_rate = 0.03;
    CHECK(step_schedule(constant, 200, 0, 1.5).learning_rate == 0.03);
    CHECK(step_schedule(constant, 200, 0, 1.5).w_noise_scale == 0.0);
}

TEST_CASE("the schedule's ramp settings reach the device loop and the host loop alike", "[invert][device_loop]") {
    G g = test::small_generator();
    const Tensor<float> t = test::reachable_targets(g, 2, 23);
    InverterOptions o;
    o.steps = 30;
    o.w_statistics_samples = 300;
    o.w_noise_factor = 0;  // no exploration noise: both loops see the same numbers
    o.lr_rampup = 0;
    o.lr_rampdown = 0.5;
    auto run = [&](const InverterOptions& opts) {
        Inverter<G, WPlusSpace, Mse<Cpu>, Adam> inv(g, Mse<Cpu>{}, Adam(ProjectorSchedule{}.adam_options()), opts);
        return inv.run(t).params;
    };
    const Tensor<float> dev = run(o);
    InverterOptions host_o = o;
    host_o.device_loop = false;
    const Tensor<float> host = run(host_o);
    CHECK(relative_l2_error(dev.values(), host.values()) < 1e-4);
    // The official ramps (lr 0 at step 0, a shorter ramp-down) end elsewhere: the settings took effect.
    InverterOptions official = o;
    official.lr_rampup = 0.05;
    official.lr_rampdown = 0.25;
    CHECK(relative_l2_error(run(official).values(), dev.values()) > 1e-3);
}

TEST_CASE("W statistics are computed once per generator through w_statistics_cache", "[invert][device_loop]") {
    G g = test::small_generator();
    InverterOptions o;
    o.w_statistics_samples = 200;
    o.w_statistics_cache = std::make_shared<LatentStatistics>();
    InverterObjective<G, WSpace, Mse<Cpu>> first(g, Mse<Cpu>{}, WSpace{}, o);
    first.set_targets(test::reachable_targets(g, 1, 3));
    CHECK(o.w_statistics_cache->samples == 200);
    CHECK(o.w_statistics_cache->w_std == first.statistics().w_std);
    o.w_statistics_cache->w_std = 123.0;  // a second objective must take it from the cache
    InverterObjective<G, WSpace, Mse<Cpu>> second(g, Mse<Cpu>{}, WSpace{}, o);
    second.set_targets(test::reachable_targets(g, 1, 4));
    CHECK(second.statistics().w_std == 123.0);
    o.w_statistics_samples = 300;  // another sample count: computed again
    InverterObjective<G, WSpace, Mse<Cpu>> third(g, Mse<Cpu>{}, WSpace{}, o);
    third.set_targets(test::reachable_targets(g, 1, 4));
    CHECK(third.statistics().w_std != 123.0);
    CHECK(o.w_statistics_cache->samples == 300);
}
