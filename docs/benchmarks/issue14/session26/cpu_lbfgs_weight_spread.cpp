// Build (from the repository root): g++ -std=c++20 -O2 -fopenmp -DEIGEN_DONT_PARALLELIZE -I include -I tests/cuda -I tests
//   -I/usr/include/eigen3 -I/usr/include/stb docs/benchmarks/issue14/session26/cpu_lbfgs_weight_spread.cpp -o /tmp/cpu_lbfgs_weight_spread
// CPU-only: how far apart do the first 5 steps' losses of two host L-BFGS runs land when the
// generator's weights move by one float ulp (a forward at float resolution), vs targets one ulp away?
#include <ganinv/backend/cpu.hpp>
#include <ganinv/invert/inverter.hpp>
#include <ganinv/loss/pixel.hpp>
#include <ganinv/models/stylegan2.hpp>
#include <ganinv/optim/optim.hpp>
#include <cmath>
#include <cstdio>
using namespace ganinv;
using G = StyleGAN2<Cpu>;
static StyleGAN2Config cfg() { StyleGAN2Config c; c.img_resolution = 64; c.channel_base = 2048; c.channel_max = 64; c.z_dim = c.w_dim = 64; c.mapping_layers = 2; return c; }
template <class Space> InversionResult run(G& g, const InverterOptions& o, const Tensor<float>& t) {
    Inverter<G, Space, Mse<Cpu>, Lbfgs> inv(g, Mse<Cpu>{}, Lbfgs{}, o); return inv.run(t);
}
static double early(const InversionResult& a, const InversionResult& b, std::size_t steps = 5) {
    double w = 0;
    for (std::size_t s = 0; s < steps; ++s) for (std::size_t i = 0; i < a.loss_history[s].size(); ++i) {
        const double sc = std::max(std::fabs(b.loss_history[s][i]), 1e-5 * std::fabs(b.loss_history[0][i]));
        w = std::max(w, std::fabs(a.loss_history[s][i] - b.loss_history[s][i]) / sc); }
    return w;
}
int main() {
    const NamedTensors p = random_stylegan2_params(cfg(), 7);
    G g(cfg(), p);
    Tensor<float> z({2, 64}); Rng(35).fill_normal(z.values());
    const Tensor<float> t = g.synthesis(g.mapping(z));
    for (const bool wplus : {false, true}) for (const bool noise : {false, true}) {
        InverterOptions o; o.steps = 50; o.seed = 9; o.w_statistics_samples = 500; o.optimize_noise = noise; o.learning_rate = 0.05; o.noise_regularization = 2.0; o.device_loop = false;
        auto go = [&](G& gg, const Tensor<float>& tt) { return wplus ? run<WPlusSpace>(gg, o, tt) : run<WSpace>(gg, o, tt); };
        const InversionResult ref = go(g, t);
        Tensor<float> tn = t; for (float& v : tn.values()) v = std::nextafter(v, 2.0f);
        std::printf("%s%s: targets one ulp away %.2e; weights one ulp away:", wplus ? "W+" : "W", noise ? " + noise" : "", early(go(g, tn), ref));
        for (int seed = 1; seed <= 4; ++seed) {
            NamedTensors q = p; Rng rng(seed);
            for (auto& [name, tq] : q.items()) { if (name.ends_with("resample_filter")) continue; for (float& v : tq.values()) v = std::nextafter(v, rng.normal() > 0 ? 1e30f : -1e30f); }
            G gm(cfg(), q);
            std::printf(" %.2e", early(go(gm, t), ref));
        }
        std::printf("\n");
    }
}
