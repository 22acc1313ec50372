// CPU benchmark of one inversion step (benchmarks/invert_step_impl.hpp): ms per step at batch 1
// and 8 for the demo generator and a 256x256 random config.
// Usage: bench_invert_step [--quick] [--json OUT.json]
#include "../invert_step_impl.hpp"

#include <ganinv/backend/cpu.hpp>

#include <cstring>
#include <thread>

using namespace ganinv;

int main(int argc, char** argv) {
    std::string json_path = "bench_invert_step_cpu.json";
    bool quick = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--quick")) quick = true;
        else if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
        else {
            std::cerr << "usage: bench_invert_step [--quick] [--json OUT.json]\n";
            return 2;
        }
    }
    try {
        std::vector<bench::StepConfig> configs = {{"fmnist32 (demo)", {}, GANINV_DEFAULT_MODEL, {1, 8}}};
        if (!quick) configs.push_back({"256x256 random (cb 16384, cm 512)", bench::square_config(256, 16384), "", {1, 8}});
        return bench::invert_step_main(configs, Cpu{},
                                       concat("the CPU (", std::thread::hardware_concurrency(), " hardware threads)"),
                                       json_path);
    } catch (const std::exception& e) {
        std::cerr << "bench_invert_step: " << e.what() << "\n";
        return 1;
    }
}
