// CPU benchmark of one inversion step (W+ space, MSE, Adam with the projector schedule: code ->
// image -> loss -> gradient -> update), ms per step at batch 1 and 8, for the demo generator and
// a 256x256 random config. Usage: bench_invert_step [--quick] [--json OUT.json]
#include "../bench_common.hpp"

#include <ganinv/ganinv.hpp>

#include <cstring>
#include <iostream>

using namespace ganinv;
using G = StyleGAN2<Cpu>;

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
        std::vector<std::pair<std::string, G>> gens;
        gens.emplace_back("fmnist32 (demo)", G::load(GANINV_DEFAULT_MODEL));
        if (!quick) {
            StyleGAN2Config big;
            big.img_resolution = 256;
            big.channel_base = 16384;
            big.channel_max = 512;
            big.z_dim = big.w_dim = 512;
            gens.emplace_back("256x256 random (cb 16384, cm 512)", G::random(big, 1));
        }
        std::vector<bench::Row> rows;
        for (auto& [name, g] : gens) {
            for (Index batch : {Index{1}, Index{8}}) {
                Tensor<float> z({batch, g.z_dim()});
                Rng(3).fill_normal(z.values());
                const Tensor<float> targets = g.synthesis(g.mapping(z));
                InverterOptions o;
                o.w_statistics_samples = 1000;
                InverterObjective<G, WPlusSpace, Mse<Cpu>> f(g, Mse<Cpu>{}, WPlusSpace{}, o);
                f.set_targets(targets);
                Tensor<float> params = f.initial_params(), grads;
                Adam adam(ProjectorSchedule{}.adam_options());
                adam.reset(batch, params.dim(1));
                Rng rng(1);
                const int reps = g.resolution() > 64 ? 3 : 10;
                const double ms = bench::median_ms(
                    [&] {
                        f.evaluate(params, &grads, 0.01, &rng);
                        adam.step(params, grads);
                    },
                    reps);
                bench::Row r;
                r.cells = {name, std::to_string(batch), bench::fmt(ms), bench::fmt(ms / batch), bench::fmt(1000.0 * batch / ms, 1)};
                Json j{Json::Object{}};
                j.set("config", name);
                j.set("batch", static_cast<std::int64_t>(batch));
                j.set("ms_per_step", ms);
                j.set("ms_per_image_step", ms / batch);
                r.json = j;
                rows.push_back(r);
                std::cout << "." << std::flush;
            }
        }
        std::cout << "\nInversion step on the CPU (W+, MSE, Adam; " << std::thread::hardware_concurrency() << " hardware threads)\n";
        bench::print_table({"config", "batch", "ms/step", "ms/image-step", "image-steps/s"}, rows);
        bench::write_json(json_path, "inversion_step_cpu", rows);
    } catch (const std::exception& e) {
        std::cerr << "bench_invert_step: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
