// Writes a StyleGAN2 generator with random weights in the official configuration of a resolution
// (benchmarks/official_config.hpp) as a ganinv model file, so that command-line benchmarks (the
// dataset job of benchmarks/gpu/bench_dataset_gpu.sh) can run at 256^2 and 1024^2 without the
// official weights, which the GPU machine cannot download. Weights are drawn as
// StyleGAN2<Cpu>::random(config, seed) draws them; the file is written next to OUT and renamed,
// so a stopped run never leaves a partial model behind.
// Usage: write_random_generator --res R --out M.safetensors [--seed S]
#include "../official_config.hpp"

#include <ganinv/backend/cpu.hpp>
#include <ganinv/models/stylegan2_file.hpp>

#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>

using namespace ganinv;

int main(int argc, char** argv) {
    long long res = 0;
    long long seed = 1;
    std::string out;
    for (int i = 1; i < argc; ++i) {
        const bool has_value = i + 1 < argc;
        if (!std::strcmp(argv[i], "--res") && has_value) res = std::atoll(argv[++i]);
        else if (!std::strcmp(argv[i], "--seed") && has_value) seed = std::atoll(argv[++i]);
        else if (!std::strcmp(argv[i], "--out") && has_value) out = argv[++i];
        else {
            std::cerr << "usage: write_random_generator --res R --out M.safetensors [--seed S]\n";
            return 2;
        }
    }
    if (out.empty() || res < 4 || (res & (res - 1)) != 0 || seed < 0) {
        std::cerr << "write_random_generator: --res must be a power of two >= 4, --seed >= 0, and --out is required\n";
        return 2;
    }
    try {
        const StyleGAN2Config cfg = bench::official_config(static_cast<Index>(res));
        const StyleGAN2<Cpu> g = StyleGAN2<Cpu>::random(cfg, static_cast<std::uint64_t>(seed));
        const std::filesystem::path target(out), partial(out + ".partial");
        save_stylegan2(g, partial, std::nullopt, {{"weights", "random, seed " + std::to_string(seed)}});
        std::filesystem::rename(partial, target);
        std::cout << "wrote " << target.string() << " (" << res << "x" << res << ", channel_base " << cfg.channel_base
                  << ", random weights, seed " << seed << ")\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "write_random_generator: " << e.what() << "\n";
        return 1;
    }
}
