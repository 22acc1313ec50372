// CPU benchmark of the encoders (issue 16): forward ms per image at batch 1, 8 and 64 for the demo
// model's preset encoder and the shipped wide one (and, without --quick, the preset for a 256x256
// RGB generator), and one training step of the demo's encoder at batch 8 split into its parts
// (generator synthesis, encoder forward + backward, the generator's backward to the codes), which
// says where a CPU training run spends its time.
// Usage: bench_encoder [--quick] [--json OUT.json] [--model models/fmnist32.safetensors]
#include "../bench_common.hpp"

#include <ganinv/backend/cpu.hpp>
#include <ganinv/invert/encoder_trainer.hpp>
#include <ganinv/models/psp_encoder.hpp>
#include <ganinv/models/stylegan2.hpp>

#include <cstring>
#include <iostream>
#include <thread>

using namespace ganinv;

int main(int argc, char** argv) {
    std::string json_path = "bench_encoder_cpu.json", model_path = GANINV_DEFAULT_MODEL;
    bool quick = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--quick")) quick = true;
        else if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
        else if (!std::strcmp(argv[i], "--model") && i + 1 < argc) model_path = argv[++i];
        else {
            std::cerr << "usage: bench_encoder [--quick] [--json OUT.json] [--model M.safetensors]\n";
            return 2;
        }
    }
    try {
        StyleGAN2<Cpu> g = StyleGAN2<Cpu>::load(model_path);
        struct Case {
            std::string name;
            EncoderConfig config;
        };
        const EncoderConfig demo = EncoderConfig::for_generator(g.resolution(), g.img_channels(), g.num_ws(), g.w_dim());
        // The shipped encoder's network (models/fmnist32_encoder.safetensors since session 17): the
        // preset twice as wide with two residual blocks a stage (train-encoder --width 2 --blocks-per-stage 2).
        std::vector<Case> cases{{"demo preset (32x32x1)", demo}, {"demo wide x2, 2 blocks (shipped)", demo.widened(2, 2)}};
        if (!quick) cases.push_back({"256x256x3 preset (14 ws, w 512)", EncoderConfig::for_generator(256, 3, 14, 512)});

        std::vector<bench::Row> rows;
        for (const auto& c : cases) {
            const PspEncoder e(c.config, 1);
            for (Index batch : {Index{1}, Index{8}, Index{64}}) {
                if (c.config.resolution > 64 && batch > 8) continue;  // minutes per repetition on 2 cores
                Tensor<float> x({batch, e.in_channels(), c.config.resolution, c.config.resolution});
                Rng(3).fill_normal(x.values());
                const int reps = c.config.resolution > 64 ? 2 : (batch > 8 ? 3 : 10);
                const double fwd = bench::median_ms([&] { (void)e.forward(x); }, reps);
                Tensor<float> gy({batch, e.num_ws(), e.w_dim()}, 1e-3f);
                const double fwdbwd = bench::median_ms(
                    [&] {
                        PspEncoder::Cache k;
                        e.forward(x, &k);
                        Tensor<float> gp({1, e.num_params()}, 0.0f);
                        (void)e.backward(k, gy, &gp, false);
                    },
                    reps);
                bench::Row r;
                r.cells = {c.name, std::to_string(e.num_params()), std::to_string(batch), bench::fmt(fwd / batch, 3),
                           bench::fmt(fwdbwd / batch, 3)};
                Json j{Json::Object{}};
                j.set("what", "encoder");
                j.set("config", c.name);
                j.set("parameters", static_cast<std::int64_t>(e.num_params()));
                j.set("batch", static_cast<std::int64_t>(batch));
                j.set("forward_ms_per_image", fwd / batch);
                j.set("forward_backward_ms_per_image", fwdbwd / batch);
                r.json = j;
                rows.push_back(r);
                std::cout << "." << std::flush;
            }
        }

        // One training step of the demo encoder at batch 8 and its parts.
        const Index B = 8;
        PspEncoder e(cases[0].config, 1);
        e.set_w_avg(g.param("mapping.w_avg"));
        EncoderTrainerOptions o;
        o.batch = B;
        EncoderTrainer t(g, e, o);
        const double step = bench::median_ms([&] { (void)t.step(); }, quick ? 3 : 8);
        Tensor<float> z({B, g.z_dim()});
        Rng(5).fill_normal(z.values());
        const Tensor<float> ws = g.mapping(z);
        const Tensor<float> img = g.synthesis(ws);
        const double synth = bench::median_ms([&] { (void)g.synthesis(ws); }, 5);
        const double synth_bwd = bench::median_ms(
            [&] {
                StyleGAN2<Cpu>::Cache gc;
                g.synthesis(ws, {}, &gc);
                (void)g.synthesis_backward_ws(gc, img);
            },
            5);
        const double enc = bench::median_ms(
            [&] {
                PspEncoder::Cache k;
                const Tensor<float> codes = e.forward(img, &k);
                Tensor<float> gp({1, e.num_params()}, 0.0f);
                (void)e.backward(k, codes, &gp, false);
            },
            5);
        std::vector<bench::Row> parts;
        for (auto [name, ms] : {std::pair<const char*, double>{"whole training step (generated samples, code + pixel MSE, Adam)", step},
                                {"  generator synthesis (the targets)", synth},
                                {"  generator synthesis + backward to the codes (the reconstruction)", synth_bwd},
                                {"  encoder forward + backward to its weights", enc}}) {
            bench::Row r;
            r.cells = {name, bench::fmt(ms, 1), bench::fmt(100.0 * ms / step, 0)};
            Json j{Json::Object{}};
            j.set("what", "training step part");
            j.set("part", std::string(name).substr(std::string(name).find_first_not_of(' ')));
            j.set("batch", static_cast<std::int64_t>(B));
            j.set("ms", ms);
            r.json = j;
            parts.push_back(r);
            rows.push_back(r);
        }
        std::cout << "\nEncoders on the CPU (" << std::thread::hardware_concurrency() << " hardware threads)\n";
        bench::print_table({"encoder", "parameters", "batch", "fwd ms/img", "fwd+bwd ms/img"},
                           std::vector<bench::Row>(rows.begin(), rows.end() - static_cast<std::ptrdiff_t>(parts.size())));
        std::cout << "\nOne training step of the demo encoder, batch " << B << "\n";
        bench::print_table({"part", "ms", "% of the step"}, parts);
        bench::write_json(json_path, "encoder_cpu", rows);
    } catch (const std::exception& e) {
        std::cerr << "bench_encoder: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
