// Build (from the repository root): g++ -std=c++20 -O2 -fopenmp -DEIGEN_DONT_PARALLELIZE -I include -I tests/cuda -I tests
//   -I/usr/include/eigen3 -I/usr/include/stb docs/benchmarks/issue14/session26/cpu_flip_spread.cpp -o /tmp/cpu_flip_spread
// CPU-only: spread of b1024.conv0's parameter gradients over several one-ulp parameter moves.
#include "backend_cases.hpp"
#include <ganinv/backend/cpu.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
using namespace ganinv;
using namespace ganinv::test;
static double rel_l2(const Tensor<float>& a, const Tensor<float>& b) {
    double n = 0, d = 0;
    for (std::size_t i = 0; i < a.values().size(); ++i) { const double e = double(a.values()[i]) - b.values()[i]; n += e * e; d += double(b.values()[i]) * b.values()[i]; }
    return std::sqrt(n / std::max(d, 1e-300));
}
int main(int argc, char** argv) {
    const GenCase gc = make_gen_case(1024, 2048, 5, 1, 3, std::nullopt, NoiseMode::constant, 61);
    const GenResult ref = run_generator(gc, Cpu{});
    for (int seed = 1; seed <= 8; ++seed) {
        GenCase g2 = gc;
        Rng rng(seed);
        for (auto& [name, t] : g2.params.items()) {
            if (name.ends_with("resample_filter")) continue;
            for (float& v : t.values()) v = std::nextafter(v, rng.normal() > 0 ? 1e30f : -1e30f);
        }
        const GenResult r = run_generator(g2, Cpu{});
        std::printf("seed %d:", seed);
        for (const char* n : {"synthesis.b1024.conv0.weight", "synthesis.b1024.conv0.bias", "synthesis.b1024.conv0.affine.weight", "synthesis.b1024.conv0.noise_const", "synthesis.b1024.conv1.bias", "synthesis.b512.conv1.bias"})
            std::printf(" %.2e", rel_l2(r.pgrads.at(n), ref.pgrads.at(n)));
        std::printf("\n");
    }
}
