// CPU: time per step of whole Adam inversions (benchmarks/device_step_impl.hpp) with the loop on
// the generator's backend (invert/device_loop.hpp, Cpu ops) against the host loop of before
// (InverterOptions::device_loop = false), in the same run: the device loop must not be slower.
// Usage: bench_device_step [--quick] [--json OUT.json]
#include "../device_step_impl.hpp"

#include <ganinv/backend/cpu.hpp>
#include <ganinv/loss/pixel.hpp>

#include <cstring>

using namespace ganinv;

int main(int argc, char** argv) {
    std::string json_path = "bench_device_step.json";
    bool quick = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--quick")) quick = true;
        else if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
        else {
            std::cerr << "usage: bench_device_step [--quick] [--json OUT.json]\n";
            return 2;
        }
    }
    try {
        using G = StyleGAN2<Cpu>;
        std::vector<bench::Row> rows;
        struct Cfg {
            std::string name;
            G g;
            Index batch;
        };
        std::vector<Cfg> cfgs;
        cfgs.push_back({"fmnist32 (demo)", G::load(GANINV_DEFAULT_MODEL), 8});
        StyleGAN2Config c64 = bench::official_config(64);
        c64.channel_base = 4096;
        c64.channel_max = 128;
        cfgs.push_back({"64x64 random (cb 4096, cm 128)", G::random(c64, 1), 1});
        const Index s1 = quick ? 3 : 5, s2 = quick ? 8 : 25;
        for (Cfg& c : cfgs) {
            const Tensor<float> t = bench::random_targets(c.g, c.batch, 5);
            for (const bool official : {true, false})
                for (const bool device : {false, true}) {
                    InverterOptions o;
                    o.optimize_noise = official;
                    o.device_loop = device;
                    o.w_statistics_samples = 1000;
                    o.w_statistics_cache = std::make_shared<LatentStatistics>();
                    auto mse = [] { return Mse<Cpu>{}; };
                    const bench::StepTiming st =
                        official ? bench::time_inverter_steps<WSpace>(c.g, mse, o, t, s1, s2)
                                 : bench::time_inverter_steps<WPlusSpace>(c.g, mse, o, t, s1, s2);
                    const std::string obj = official ? "W + noise maps, MSE" : "W+, MSE";
                    bench::Row r;
                    r.cells = {c.name, obj, std::to_string(c.batch), device ? "device loop" : "host loop",
                               bench::fmt(st.ms_per_step), bench::fmt(100.0 * st.spread, 1) + "%",
                               bench::fmt(st.inrun_ms_per_step), bench::fmt(100.0 * st.inrun_spread, 1) + "%",
                               bench::fmt(st.ms_per_step / static_cast<double>(c.batch))};
                    r.json = bench::step_json(c.name, obj, "fp32", c.batch, st);
                    r.json.set("loop", device ? "device" : "host");
                    rows.push_back(r);
                    std::cout << "." << std::flush;
                }
        }
        std::cout << "\nAdam inversion step on the CPU, device loop (Cpu ops) vs host loop\n";
        bench::print_table({"config", "objective", "batch", "loop", "ms/step", "spread", "in-run ms/step", "in-run spread",
                            "ms/image-step"},
                           rows);
        bench::write_json(json_path, "device_step_cpu", rows);
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "bench_device_step: " << e.what() << "\n";
        return 1;
    }
}
