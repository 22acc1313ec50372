// Build (from the repository root): g++ -std=c++20 -O2 -fopenmp -DEIGEN_DONT_PARALLELIZE -I include -I tests/cuda -I tests
//   -I/usr/include/eigen3 -I/usr/include/stb docs/benchmarks/issue14/session26/cpu_flip_where.cpp -o /tmp/cpu_flip_where
// CPU-only: where does b1024.conv0's noise-map gradient of test_cuda's [large] case move when
// every parameter moves by one ulp? Concentrated on a few pixels = activation-slope flips.
#include "backend_cases.hpp"
#include <ganinv/backend/cpu.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
using namespace ganinv;
using namespace ganinv::test;
int main() {
    const GenCase gc = make_gen_case(1024, 2048, 5, 1, 3, std::nullopt, NoiseMode::constant, 61);
    const GenResult ref = run_generator(gc, Cpu{});
    GenCase g2 = gc;
    Rng rng(5);
    for (auto& [name, t] : g2.params.items()) {
        if (name.ends_with("resample_filter")) continue;
        for (float& v : t.values()) v = std::nextafter(v, rng.normal() > 0 ? 1e30f : -1e30f);
    }
    const GenResult r = run_generator(g2, Cpu{});
    for (std::size_t m = 0; m < ref.grad_noise.size(); ++m) {
        const auto& a = ref.grad_noise[m].values(); const auto& b = r.grad_noise[m].values();
        std::vector<double> e(a.size()); double den = 0, num = 0;
        for (std::size_t i = 0; i < a.size(); ++i) { e[i] = std::fabs(double(a[i]) - b[i]); num += e[i] * e[i]; den += double(a[i]) * a[i]; }
        std::vector<double> s = e; std::sort(s.begin(), s.end(), std::greater<>());
        double top = 0; const std::size_t K = std::min<std::size_t>(20, s.size());
        for (std::size_t i = 0; i < K; ++i) top += s[i] * s[i];
        std::printf("noise %2zu (%zu px): rel_l2 %.3e, share of the error in the top %zu pixels %.3f, median |e| %.2e, max %.2e, rms |g| %.2e\n",
                    m, a.size(), std::sqrt(num / std::max(den, 1e-300)), K, top / std::max(num, 1e-300), s[s.size() / 2], s[0], std::sqrt(den / a.size()));
    }
}
