// CPU benchmark of the StyleGAN2 generator: forward (synthesis) and forward + backward to ws,
// ms per image at batch 1 and 8, for the bundled demo model and a 256x256 random config.
// Usage: bench_generator [--quick] [--json OUT.json] [--model models/fmnist32.safetensors]
#include "../bench_common.hpp"

#include <ganinv/backend/cpu.hpp>
#include <ganinv/models/stylegan2.hpp>

#include <cstring>
#include <iostream>

using namespace ganinv;

int main(int argc, char** argv) {
    std::string json_path = "bench_generator_cpu.json", model_path = GANINV_DEFAULT_MODEL;
    bool quick = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--quick")) quick = true;
        else if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
        else if (!std::strcmp(argv[i], "--model") && i + 1 < argc) model_path = argv[++i];
        else {
            std::cerr << "usage: bench_generator [--quick] [--json OUT.json] [--model M.safetensors]\n";
            return 2;
        }
    }
    try {
        struct Config {
            std::string name;
            StyleGAN2<Cpu> g;
        };
        std::vector<Config> configs;
        configs.push_back({"fmnist32 (demo)", StyleGAN2<Cpu>::load(model_path)});
        StyleGAN2Config big;
        big.img_resolution = 256;
        big.img_channels = 3;
        big.channel_base = 16384;
        big.channel_max = 512;
        big.mapping_layers = 8;
        big.z_dim = big.w_dim = 512;
        if (!quick) configs.push_back({"256x256 random (cb 16384, cm 512)", StyleGAN2<Cpu>::random(big, 1)});

        std::vector<bench::Row> rows;
        for (auto& [name, g] : configs) {
            for (Index batch : {Index{1}, Index{8}}) {
                Rng rng(7);
                Tensor<float> z({batch, g.z_dim()});
                rng.fill_normal(z.values());
                const Tensor<float> ws = g.mapping(z);
                Tensor<float> grad({batch, g.img_channels(), g.resolution(), g.resolution()});
                rng.fill_normal(grad.values());
                const int reps = g.resolution() > 64 ? 3 : 10;
                const double fwd = bench::median_ms([&] { (void)g.synthesis(ws); }, reps);
                const double fwdbwd = bench::median_ms(
                    [&] {
                        StyleGAN2<Cpu>::Cache cache;
                        g.synthesis(ws, {}, &cache);
                        (void)g.synthesis_backward_ws(cache, grad);
                    },
                    reps);
                bench::Row r;
                r.cells = {name, std::to_string(batch), bench::fmt(fwd / batch), bench::fmt(fwdbwd / batch),
                           bench::fmt(1000.0 * batch / fwdbwd, 1)};
                Json j{Json::Object{}};
                j.set("config", name);
                j.set("batch", static_cast<std::int64_t>(batch));
                j.set("forward_ms_per_image", fwd / batch);
                j.set("forward_backward_ms_per_image", fwdbwd / batch);
                r.json = j;
                rows.push_back(r);
                std::cout << "." << std::flush;
            }
        }
        std::cout << "\nStyleGAN2 generator on the CPU (" << std::thread::hardware_concurrency() << " hardware threads)\n";
        bench::print_table({"config", "batch", "fwd ms/img", "fwd+bwd(ws) ms/img", "fwd+bwd img/s"}, rows);
        bench::write_json(json_path, "stylegan2_generator_cpu", rows);
    } catch (const std::exception& e) {
        std::cerr << "bench_generator: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
