// The inverter: gradient of the whole step (space -> generator -> loss) against finite
// differences for every space, every optimizer family on a small generator, stopping rules,
// determinism, and recovery of known codes on the demo model.
#include "test_support.hpp"
#include "invert_fixtures.hpp"

#include <ganinv/backend/cpu.hpp>
#include <ganinv/invert/inverter.hpp>
#include <ganinv/loss/pixel.hpp>
#include <ganinv/models/stylegan2.hpp>
#include <ganinv/optim/optim.hpp>

using namespace ganinv;
using test::reachable_targets;
using test::small_generator;
using G = StyleGAN2<Cpu>;

namespace {

double mean(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return s / static_cast<double>(v.size());
}

template <class Space>
void check_space_gradient(bool optimize_noise) {
    G g = small_generator();
    InverterOptions o;
    o.optimize_noise = optimize_noise;
    o.noise_regularization = 3.0;
    o.w_avg_prior = 0.5;
    o.wplus_spread_prior = 0.7;
    o.w_statistics_samples = 200;
    o.init.kind = InitKind::random;
    o.init.seed = 3;
    InverterObjective<G, Space, Mse<Cpu>> f(g, Mse<Cpu>{}, Space{}, o);
    f.set_targets(reachable_targets(g, 2, 8));
    Tensor<float> p = f.initial_params();
    Tensor<float> grads;
    f.evaluate(p, &grads, 0.0, nullptr);
    Rng rng(1);
    for (int trial = 0; trial < 24; ++trial) {
        const Index i = static_cast<Index>(rng.below(static_cast<std::uint64_t>(p.numel())));
        const float keep = p[i];
        double best_err = 1e300, best_fd = 0;
        for (float eps : {1e-2f, 3e-3f, 1e-3f, 3e-4f}) {  // lrelu kinks can spoil one step size
            p[i] = keep + eps;
            const double lp = mean(f.evaluate(p, nullptr, 0.0, nullptr)) * 2;
            p[i] = keep - eps;
            const double lm = mean(f.evaluate(p, nullptr, 0.0, nullptr)) * 2;
            p[i] = keep;
            const double fd = (lp - lm) / (2.0 * eps);
            if (std::fabs(fd - grads[i]) < best_err) {
                best_err = std::fabs(fd - grads[i]);
                best_fd = fd;
            }
        }
        INFO(Space::name << (optimize_noise ? " + noise" : "") << " param " << i << ": analytic " << grads[i]
                         << " finite difference " << best_fd);
        REQUIRE(best_err <= 1e-2 * (1.0 + std::fabs(best_fd)));
    }
}

}  // namespace

TEST_CASE("whole-step gradient matches finite differences in every space", "[invert][gradcheck]") {
    check_space_gradient<ZSpace>(false);
    check_space_gradient<WSpace>(true);
    check_space_gradient<WPlusSpace>(true);
    check_space_gradient<SSpace>(false);
}

TEST_CASE("every optimizer family lowers the loss on a small generator", "[invert]") {
    G g = small_generator();
    const Tensor<float> targets = reachable_targets(g, 3, 21);
    InverterOptions o;
    o.w_statistics_samples = 500;
    o.steps = 40;
    auto first_last = [](const InversionResult& r) {
        return std::pair{mean(r.loss_history.front()), mean(r.loss_history.back())};
    };
    SECTION("Adam with the projector schedule, W+") {
        Inverter<G, WPlusSpace, Mse<Cpu>, Adam> inv(g, Mse<Cpu>{}, Adam{}, o);
        const auto r = inv.run(targets);
        const auto [a, b] = first_last(r);
        REQUIRE(b < 0.5 * a);
        REQUIRE(r.ws.shape() == Shape{3, g.num_ws(), g.w_dim()});
        REQUIRE(r.metrics.size() == 3);
    }
    SECTION("L-BFGS, Z") {
        o.steps = 15;
        Inverter<G, ZSpace, Mse<Cpu>, Lbfgs> inv(g, Mse<Cpu>{}, Lbfgs{}, o);
        const auto r = inv.run(targets);
        const auto [a, b] = first_last(r);
        REQUIRE(b < a);
        REQUIRE(r.z.shape() == Shape{3, g.z_dim()});
    }
    SECTION("CMA-ES, W (gradient-free)") {
        Inverter<G, WSpace, Mse<Cpu>, CmaEs> inv(g, Mse<Cpu>{}, CmaEs{}, o);
        const auto r = inv.run(targets);
        const auto [a, b] = first_last(r);
        REQUIRE(b < a);
    }
    SECTION("BasinCMA, S") {
        BasinCmaOptions bo;
        bo.outer_iterations = 3;
        bo.inner_steps = 5;
        bo.final_steps = 20;
        o.steps = 3;
        Inverter<G, SSpace, Mse<Cpu>, BasinCma> inv(g, Mse<Cpu>{}, BasinCma(bo), o);
        const auto r = inv.run(targets);
        REQUIRE(r.styles.shape() == Shape{3, g.style_dim()});
        REQUIRE(mean(r.loss_history.back()) < mean(r.loss_history.front()) + 1e-12);
        // The inner Adam descents and the final run happened (not just the outer CMA loop).
        REQUIRE(r.evaluations >= bo.outer_iterations * bo.inner_steps + bo.final_steps);
    }
}

TEST_CASE("inversion is deterministic for a seed and stops per image", "[invert]") {
    G g = small_generator();
    const Tensor<float> targets = reachable_targets(g, 2, 4);
    InverterOptions o;
    o.w_statistics_samples = 300;
    o.steps = 30;
    o.optimize_noise = true;
    o.seed = 9;
    Inverter<G, WSpace, Mse<Cpu>, Adam> a(g, Mse<Cpu>{}, Adam{}, o), b(g, Mse<Cpu>{}, Adam{}, o);
    const auto ra = a.run(targets), rb = b.run(targets);
    REQUIRE(relative_l2_error(ra.params.values(), rb.params.values()) == 0.0);
    REQUIRE(ra.noise.size() == g.plan().noise_resolutions.size());
    REQUIRE(ra.metrics_fixed_noise.size() == 2);

    o.optimize_noise = false;
    o.target_loss = 1e9;  // every image is "good enough" after its first step
    Inverter<G, WSpace, Mse<Cpu>, Adam> c(g, Mse<Cpu>{}, Adam{}, o);
    const auto rc = c.run(targets);
    REQUIRE(rc.steps_run == 1);
    REQUIRE(rc.stopped_at == std::vector<Index>{1, 1});

    int reports = 0;
    o.target_loss.reset();
    o.patience = 3;
    o.min_relative_improvement = 10.0;  // nothing counts as improvement: stop after patience steps
    o.on_progress = [&](const InversionProgress& p) {
        ++reports;
        REQUIRE(p.loss->size() == 2);
        REQUIRE(!p.terms->empty());
    };
    Inverter<G, WSpace, Mse<Cpu>, Adam> d(g, Mse<Cpu>{}, Adam{}, o);
    const auto rd = d.run(targets);
    REQUIRE(rd.steps_run == 4);
    REQUIRE(reports == 4);
}

TEST_CASE("inverter rejects targets that do not fit the generator", "[invert][errors]") {
    G g = small_generator();
    Inverter<G, WPlusSpace, Mse<Cpu>, Adam> inv(g, Mse<Cpu>{}, Adam{}, {});
    REQUIRE_THROWS_WITH(inv.run(Tensor<float>({1, 3, 8, 8}, 0.0f)), Catch::Contains("[N, 1, 8, 8]"));
    REQUIRE_THROWS_WITH(inv.run(Tensor<float>({1, 1, 16, 16}, 0.0f)), Catch::Contains("resize"));
    Tensor<float> nan({1, 1, 8, 8}, 0.0f);
    nan[5] = std::numeric_limits<float>::quiet_NaN();
    REQUIRE_THROWS_WITH(inv.run(nan), Catch::Contains("non-finite"));
    InverterOptions o;
    o.init.kind = InitKind::given;
    o.init.codes = Tensor<float>({1, 7}, 0.0f);
    Inverter<G, WPlusSpace, Mse<Cpu>, Adam> bad_init(g, Mse<Cpu>{}, Adam{}, o);
    REQUIRE_THROWS_WITH(bad_init.run(Tensor<float>({1, 1, 8, 8}, 0.0f)), Catch::Contains("initial codes"));
}

TEST_CASE("W+ Adam recovers 16 known images of the demo model (>= 35 dB mean)", "[invert][recovery][slow]") {
    G g = G::load(test::models_dir() / "fmnist32.safetensors");
    // Seeds 0..15 through the official seed convention, truncation 0.7 (typical samples).
    Tensor<float> z({16, g.z_dim()});
    for (Index k = 0; k < 16; ++k)
        NumpyRandomState(static_cast<std::uint32_t>(k)).randn(std::span<float>(z.data() + k * g.z_dim(), static_cast<std::size_t>(g.z_dim())));
    const Tensor<float> ws_true = g.mapping(z, {0.7f, std::nullopt});
    const Tensor<float> targets = g.synthesis(ws_true);
    InverterOptions o;
    o.steps = 600;
    Inverter<G, WPlusSpace, Mse<Cpu>, Adam> inv(g, Mse<Cpu>{}, Adam{}, o);
    const InversionResult r = inv.run(targets);
    double psnr = 0;
    for (const auto& m : r.metrics) psnr += m.psnr / 16.0;
    WARN("W+ Adam, 600 steps, 16 generated images: mean PSNR " << psnr << " dB in " << r.seconds << " s");
    REQUIRE(psnr >= 35.0);
    // The recovered ws reproduce the image (the code itself need not be the original one).
    const Tensor<float> again = g.synthesis(r.ws);
    GANINV_REQUIRE_CLOSE(again.values(), r.reconstruction.values(), 1e-6, "re-synthesis from the saved ws");
}

TEST_CASE("Inverter::run takes the caller's memory as a view and gives the result of the tensor", "[invert][view]") {
    G g = small_generator();
    const Tensor<float> targets = reachable_targets(g, 2, 4);
    // The same images interleaved (N, H, W, C) in an app's own buffer, seen as NCHW by strides.
    const Index N = targets.dim(0), C = targets.dim(1), H = targets.dim(2), W = targets.dim(3);
    std::vector<float> hwc(static_cast<std::size_t>(targets.numel()));
    for (Index n = 0; n < N; ++n)
        for (Index c = 0; c < C; ++c)
            for (Index i = 0; i < H * W; ++i)
                hwc[static_cast<std::size_t>((n * H * W + i) * C + c)] = targets[(n * C + c) * H * W + i];
    const TensorView<const float, 4> view(hwc.data(), {N, C, H, W}, {H * W * C, 1, W * C, C});
    InverterOptions o;
    o.w_statistics_samples = 300;
    o.steps = 5;
    Inverter<G, WSpace, Mse<Cpu>, Adam> a(g, Mse<Cpu>{}, Adam{}, o), b(g, Mse<Cpu>{}, Adam{}, o);
    const auto from_tensor = a.run(targets), from_view = b.run(view);
    REQUIRE(relative_l2_error(from_view.params.values(), from_tensor.params.values()) == 0.0);
}
