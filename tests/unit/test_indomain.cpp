// In-domain inversion (issue 16): the domain regulariser lambda * mean((w - E(G(w)))^2) and its
// gradient through the encoder and the generator against finite differences, its place in the
// inverter's objective (W and W+; lambda = 0 changes nothing, bit for bit), and the Mahalanobis
// distance of codes under the W distribution against a direct computation.
#include "test_support.hpp"
#include "invert_fixtures.hpp"

#include <ganinv/core/rng.hpp>
#include <ganinv/invert/domain_regularizer.hpp>
#include <ganinv/invert/inverter.hpp>
#include <ganinv/loss/pixel.hpp>
#include <ganinv/metrics/latent_distance.hpp>
#include <ganinv/models/psp_encoder.hpp>
#include <ganinv/optim/optim.hpp>

using namespace ganinv;
using test::reachable_targets;
using test::small_generator;
using G = StyleGAN2<Cpu>;

namespace {

/// An encoder for small_generator() (8x8, one channel, 4 ws of 5): random weights, w_avg = mean w.
PspEncoder tiny_encoder(G& g) {
    EncoderConfig c;
    c.resolution = 8;
    c.in_channels = 1;
    c.num_ws = g.num_ws();
    c.w_dim = g.w_dim();
    c.stem_channels = 4;
    c.stage_channels = {4, 8};
    c.blocks_per_stage = 1;
    c.pyramid_channels = 4;
    c.head_grid = 2;
    c.head_hidden = 6;
    c.groups = 2;
    PspEncoder e(c, 11);
    e.set_w_avg(estimate_w_statistics(g, 200).w_mean);
    return e;
}

double sum(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return s;
}

Tensor<float> random_ws(G& g, Index n, std::uint64_t seed) {
    Tensor<float> z({n, g.z_dim()});
    Rng rng(seed);
    rng.fill_normal(z.values());
    Tensor<float> ws = g.mapping(z);
    for (float& v : ws.values()) v += static_cast<float>(0.3 * rng.normal());  // W+: layers differ
    return ws;
}

/// (x - mean)^T cov^-1 (x - mean) with cov inverted by Gauss-Jordan: an independent reference.
double direct_mahalanobis(const Tensor<float>& samples, const float* x) {
    const Index n = samples.dim(0), d = samples.dim(1);
    std::vector<double> mean(static_cast<std::size_t>(d), 0.0), a(static_cast<std::size_t>(d * 2 * d), 0.0);
    for (Index s = 0; s < n; ++s)
        for (Index i = 0; i < d; ++i) mean[static_cast<std::size_t>(i)] += samples[s * d + i] / static_cast<double>(n);
    for (Index s = 0; s < n; ++s)
        for (Index i = 0; i < d; ++i)
            for (Index j = 0; j < d; ++j)
                a[static_cast<std::size_t>(i * 2 * d + j)] += (samples[s * d + i] - mean[static_cast<std::size_t>(i)]) *
                                                                (samples[s * d + j] - mean[static_cast<std::size_t>(j)]) /
                                                                static_cast<double>(n - 1);
    for (Index i = 0; i < d; ++i) a[static_cast<std::size_t>(i * 2 * d + d + i)] = 1.0;
    for (Index c = 0; c < d; ++c) {
        Index p = c;
        for (Index r = c + 1; r < d; ++r)
            if (std::fabs(a[static_cast<std::size_t>(r * 2 * d + c)]) > std::fabs(a[static_cast<std::size_t>(p * 2 * d + c)])) p = r;
        for (Index k = 0; k < 2 * d; ++k) std::swap(a[static_cast<std::size_t>(c * 2 * d + k)], a[static_cast<std::size_t>(p * 2 * d + k)]);
        const double piv = a[static_cast<std::size_t>(c * 2 * d + c)];
        for (Index k = 0; k < 2 * d; ++k) a[static_cast<std::size_t>(c * 2 * d + k)] /= piv;
        for (Index r = 0; r < d; ++r) {
            if (r == c) continue;
            const double f = a[static_cast<std::size_t>(r * 2 * d + c)];
            for (Index k = 0; k < 2 * d; ++k) a[static_cast<std::size_t>(r * 2 * d + k)] -= f * a[static_cast<std::size_t>(c * 2 * d + k)];
        }
    }
    double q = 0;
    for (Index i = 0; i < d; ++i)
        for (Index j = 0; j < d; ++j)
            q += (x[i] - mean[static_cast<std::size_t>(i)]) * a[static_cast<std::size_t>(i * 2 * d + d + j)] *
                 (x[j] - mean[static_cast<std::size_t>(j)]);
    return std::sqrt(q);
}

InverterOptions inversion_options(Index steps) {
    InverterOptions o;
    o.steps = steps;
    o.w_statistics_samples = 300;
    o.device_loop = false;  // the host loop, which a code regulariser always takes
    return o;
}

}  // namespace

TEST_CASE("domain regulariser: value and gradient through encoder and generator match finite differences",
          "[indomain][gradcheck]") {
    G g = small_generator();
    const PspEncoder e = tiny_encoder(g);
    const double lambda = 2.5;
    DomainRegularizer<G, PspEncoder> reg(g, e, lambda);
    Tensor<float> ws = random_ws(g, 3, 4);
    const Index n = g.num_ws() * g.w_dim();

    // The value against E(G(w)) computed here.
    const Tensor<float> codes = e.forward(g.synthesis(ws));
    Tensor<float> grad;
    const std::vector<double> v = reg.evaluate(ws, &grad);
    REQUIRE(v.size() == 3);
    REQUIRE(grad.shape() == ws.shape());
    for (Index r = 0; r < 3; ++r) {
        double acc = 0;
        for (Index k = 0; k < n; ++k) acc += std::pow(static_cast<double>(ws[r * n + k]) - codes[r * n + k], 2);
        CHECK(v[static_cast<std::size_t>(r)] == Approx(lambda * acc / static_cast<double>(n)).epsilon(1e-9));
    }

    // Every entry of the gradient, and the chain part matters: the direct part alone is far off.
    double chain_norm = 0;
    for (Index i = 0; i < ws.numel(); ++i) {
        const double direct = 2.0 * lambda * (static_cast<double>(ws[i]) - codes[i]) / static_cast<double>(n);
        chain_norm += std::pow(grad[i] - direct, 2);
        const double fd = test::best_finite_difference([&] { return sum(reg.evaluate(ws, nullptr)); }, &ws[i], grad[i]);
        INFO("entry " << i << ": analytic " << grad[i] << " finite difference " << fd);
        CHECK(std::fabs(fd - grad[i]) <= 2e-3 * (1.0 + std::fabs(fd)));
    }
    CHECK(std::sqrt(chain_norm) > 1e-3);
    // A batch split differently gives the same numbers.
    DomainRegularizer<G, PspEncoder> reg1(g, e, lambda, NoiseMode::constant, 0, 1);
    Tensor<float> grad1;
    const std::vector<double> v1 = reg1.evaluate(ws, &grad1);
    for (std::size_t r = 0; r < 3; ++r) CHECK(v1[r] == Approx(v[r]).epsilon(1e-6));
    GANINV_REQUIRE_CLOSE(grad1.values(), grad.values(), 1e-5, "gradient by rows of 1");
}

TEST_CASE("domain regulariser in the inverter's objective: W and W+ gradients match finite differences",
          "[indomain][gradcheck]") {
    G g = small_generator();
    const PspEncoder e = tiny_encoder(g);
    const auto check = [&]<class Space>(Space) {
        InverterOptions o = inversion_options(1);
        o.init.kind = InitKind::random;
        o.init.seed = 5;
        o.code_regularizer = make_domain_regularization(g, e, 3.0);
        InverterObjective<G, Space, Mse<Cpu>> f(g, Mse<Cpu>{}, Space{}, o);
        f.set_targets(reachable_targets(g, 2, 8));
        Tensor<float> p = f.initial_params();
        Tensor<float> grads;
        f.evaluate(p, &grads, 0.0, nullptr);
        bool named = false;
        for (const auto& t : f.last_terms()) named = named || (t.name == "domain" && t.per_image.size() == 2 && t.per_image[0] > 0);
        CHECK(named);
        for (Index i = 0; i < f.code_dim() * 2; i += 3) {
            const Index idx = (i / f.code_dim()) * p.dim(1) + i % f.code_dim();
            const double fd =
                test::best_finite_difference([&] { return sum(f.evaluate(p, nullptr, 0.0, nullptr)); }, &p[idx], grads[idx]);
            INFO(Space::name << " param " << idx << ": analytic " << grads[idx] << " finite difference " << fd);
            CHECK(std::fabs(fd - grads[idx]) <= 5e-3 * (1.0 + std::fabs(fd)));
        }
    };
    check(WSpace{});
    check(WPlusSpace{});
}

TEST_CASE("domain regularisation: weight 0 is plain inversion bit for bit; a weight pulls codes into the encoder's domain",
          "[indomain]") {
    G g = small_generator();
    const PspEncoder e = tiny_encoder(g);
    const Tensor<float> targets = reachable_targets(g, 3, 21);
    const auto run = [&](std::optional<double> lambda) {
        InverterOptions o = inversion_options(40);
        if (lambda) o.code_regularizer = make_domain_regularization(g, e, *lambda);
        Inverter<G, WPlusSpace, Mse<Cpu>, Adam> inv(g, Mse<Cpu>{}, Adam{}, o);
        return inv.run(targets);
    };
    const InversionResult plain = run(std::nullopt), zero = run(0.0), strong = run(5.0);
    REQUIRE(plain.params.shape() == zero.params.shape());
    CHECK(std::equal(plain.params.values().begin(), plain.params.values().end(), zero.params.values().begin()));
    CHECK(plain.loss_history == zero.loss_history);
    // The consistency ||w - E(G(w))||^2 of the final codes: lower with the regulariser on.
    DomainRegularizer<G, PspEncoder> measure(g, e, 1.0);
    const double c_plain = sum(measure.evaluate(plain.ws, nullptr)), c_strong = sum(measure.evaluate(strong.ws, nullptr));
    INFO("consistency plain " << c_plain << ", lambda 5 " << c_strong);
    CHECK(c_strong < 0.8 * c_plain);
}

TEST_CASE("domain regulariser: refused where it does not apply", "[indomain][errors]") {
    G g = small_generator();
    const PspEncoder e = tiny_encoder(g);
    InverterOptions o = inversion_options(1);
    o.code_regularizer = make_domain_regularization(g, e, 1.0);
    CHECK_THROWS_WITH((InverterObjective<G, ZSpace, Mse<Cpu>>(g, Mse<Cpu>{}, ZSpace{}, o)),
                      Catch::Contains("works on W and W+ codes, not on the z space"));
    CHECK_THROWS_AS(make_domain_regularization(g, e, -1.0), ValueError);
    EncoderConfig c = e.config();
    c.w_dim = 7;
    const PspEncoder other(c, 1);
    CHECK_THROWS_WITH(make_domain_regularization(g, other, 1.0),
                      Catch::Contains("does not fit the generator (num_ws 4, w_dim 5"));
}

TEST_CASE("Mahalanobis distance: Cholesky solve against a direct inverse, chi mean on fresh samples",
          "[indomain][metrics]") {
    Rng rng(9);
    const Index n = 400, d = 4;
    Tensor<float> samples({n, d});
    for (Index s = 0; s < n; ++s) {  // correlated: x = A u + b
        double u[d];
        for (double& x : u) x = rng.normal();
        samples[s * d + 0] = static_cast<float>(2.0 * u[0] + 1.0);
        samples[s * d + 1] = static_cast<float>(0.5 * u[0] + u[1] - 2.0);
        samples[s * d + 2] = static_cast<float>(u[2] - 0.3 * u[1]);
        samples[s * d + 3] = static_cast<float>(0.1 * u[3] + u[0]);
    }
    const metrics::GaussianFit f = metrics::fit_gaussian(samples);
    CHECK(f.ridge == 0.0);
    Tensor<float> x({3, 2, d});  // three W+ codes of two layers
    for (float& v : x.values()) v = static_cast<float>(2.0 * rng.normal());
    const std::vector<double> per = metrics::mean_mahalanobis_per_code(f, x);
    for (Index b = 0; b < 3; ++b) {
        const double l0 = direct_mahalanobis(samples, x.data() + (b * 2) * d), l1 = direct_mahalanobis(samples, x.data() + (b * 2 + 1) * d);
        CHECK(metrics::mahalanobis(f, x.data() + b * 2 * d) == Approx(l0).epsilon(1e-9));
        CHECK(per[static_cast<std::size_t>(b)] == Approx((l0 + l1) / 2).epsilon(1e-9));
    }
    // A coordinate that never varies: a singular covariance, which a ridge makes usable.
    Tensor<float> flat({50, 3});
    for (Index s = 0; s < 50; ++s) {
        flat[s * 3] = static_cast<float>(rng.normal());
        flat[s * 3 + 1] = 0.5f;
        flat[s * 3 + 2] = static_cast<float>(rng.normal());
    }
    const metrics::GaussianFit ff = metrics::fit_gaussian(flat);
    CHECK(ff.ridge > 0);
    CHECK(std::isfinite(metrics::mahalanobis(ff, flat.data())));
    CHECK_THROWS_AS(metrics::fit_gaussian(Tensor<float>({5, 2}, 1.0f)), ValueError);
    CHECK_THROWS_AS(metrics::mean_mahalanobis_per_code(f, Tensor<float>({2, 3})), ShapeError);

    // The W distribution of a generator: fresh mapped samples lie at about sqrt(w_dim - 1/2).
    G g = small_generator();
    const LatentStatistics plain = estimate_w_statistics(g, 4000), st = estimate_w_statistics(g, 4000, 123, true);
    CHECK(plain.w_gaussian.empty());
    CHECK(st.w_std == plain.w_std);  // the covariance is an addition: mean and spread unchanged
    CHECK(std::equal(st.w_mean.values().begin(), st.w_mean.values().end(), plain.w_mean.values().begin()));
    const std::vector<double> fresh = metrics::mean_mahalanobis_per_code(st.w_gaussian, sample_w(g, 2000, 77));
    const double mean_fresh = sum(fresh) / static_cast<double>(fresh.size());
    INFO("mean distance of fresh samples " << mean_fresh << ", sqrt(w_dim - 1/2) " << std::sqrt(4.5));
    CHECK(std::fabs(mean_fresh - std::sqrt(4.5)) < 0.05 * std::sqrt(4.5));
}

TEST_CASE("inverter reports the final codes' Mahalanobis distance when asked", "[indomain][metrics]") {
    G g = small_generator();
    const Tensor<float> targets = reachable_targets(g, 2, 3);
    InverterOptions o = inversion_options(5);
    o.w_mahalanobis = true;
    const InversionResult wp = Inverter<G, WPlusSpace, Mse<Cpu>, Adam>(g, Mse<Cpu>{}, Adam{}, o).run(targets);
    const metrics::GaussianFit f = estimate_w_statistics(g, 300, 123, true).w_gaussian;
    REQUIRE(wp.w_mahalanobis.size() == 2);
    const std::vector<double> expect = metrics::mean_mahalanobis_per_code(f, wp.ws);
    for (std::size_t i = 0; i < 2; ++i) CHECK(wp.w_mahalanobis[i] == Approx(expect[i]).epsilon(1e-12));
    const InversionResult z = Inverter<G, ZSpace, Mse<Cpu>, Adam>(g, Mse<Cpu>{}, Adam{}, o).run(targets);
    CHECK(z.w_mahalanobis.size() == 2);
    const InversionResult s = Inverter<G, SSpace, Mse<Cpu>, Adam>(g, Mse<Cpu>{}, Adam{}, o).run(targets);
    CHECK(s.w_mahalanobis.empty());  // S codes are no ws
    o.w_mahalanobis = false;
    CHECK(Inverter<G, WPlusSpace, Mse<Cpu>, Adam>(g, Mse<Cpu>{}, Adam{}, o).run(targets).w_mahalanobis.empty());
}
