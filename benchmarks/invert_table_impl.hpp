/// @file invert_table_impl.hpp
/// @brief The inversion quality table on real Fashion-MNIST test images with the demo generator:
///        every latent space x optimizer (and the official projector's configuration as the
///        baseline row), mean PSNR / SSIM, steps and time; prints markdown and writes JSON.
///        invert_table (Cpu) and invert_table_gpu (Cuda) are this template on two backends.
///
/// Options: [--images K] [--steps N] [--rows all|main|KEY,...] [--json OUT] [--noise-reg W]
/// Row keys: SPACE:OPTIMIZER[+noise], e.g. w:adam+noise (the official projector row), wplus:lbfgs.
/// --noise-reg sets the noise regulariser weight of the +noise rows (default 1e5, the official).
#pragma once

#include "bench_common.hpp"

#include <ganinv/ganinv.hpp>

#include <cstring>
#include <iostream>
#include <string>
#include <vector>

namespace ganinv::bench {

struct TableConfig {
    std::string name, space, optimizer;
    bool optimize_noise = false;
    Index steps = 500;
    double lr = 0.1;
};

template <class Space, class G, class Opt>
InversionResult run(G& g, Opt opt, const InverterOptions& o, const Tensor<float>& targets) {
    using Loss = Mse<typename G::backend_type>;
    Inverter<G, Space, Loss, Opt> inv(g, Loss{}, std::move(opt), o);
    return inv.run(targets);
}

template <class Space, class G>
InversionResult run_space(const TableConfig& c, G& g, const InverterOptions& o, const Tensor<float>& t) {
    if (c.optimizer == "adam") return run<Space>(g, Adam(ProjectorSchedule{}.adam_options()), o, t);
    if (c.optimizer == "lbfgs") return run<Space>(g, Lbfgs{}, o, t);
    if (c.optimizer == "cmaes") {
        CmaEsOptions co;
        co.sigma = 0.5;
        return run<Space>(g, CmaEs(co), o, t);
    }
    BasinCmaOptions bo;
    bo.outer_iterations = o.steps;
    bo.inner_steps = 20;
    bo.final_steps = 300;
    return run<Space>(g, BasinCma(bo), o, t);
}

template <class G>
InversionResult run_config(const TableConfig& c, G& g, const Tensor<float>& t, double noise_reg) {
    InverterOptions o;
    o.noise_regularization = noise_reg;
    o.steps = c.steps;
    o.learning_rate = c.lr;
    o.optimize_noise = c.optimize_noise;
    o.eval_batch = 64;
    if (c.space == "w") return run_space<WSpace>(c, g, o, t);
    if (c.space == "wplus") return run_space<WPlusSpace>(c, g, o, t);
    if (c.space == "z") return run_space<ZSpace>(c, g, o, t);
    return run_space<SSpace>(c, g, o, t);
}

inline double mean_of(const std::vector<metrics::Comparison>& m, double metrics::Comparison::*field) {
    double s = 0;
    for (const auto& x : m) s += x.*field;
    return m.empty() ? 0 : s / static_cast<double>(m.size());
}

/// The whole driver; `backend` runs the generator and the loss, `device` labels the output.
template <class B>
int invert_table_main(int argc, char** argv, B backend, const std::string& device) {
    using G = StyleGAN2<B>;
    Index images = 64, steps = 500;
    double noise_reg = 1e5;
    std::string rows = "main", json = "invert_table.json", data = GANINV_TEST_DATA, model = GANINV_DEFAULT_MODEL;
    for (int i = 1; i < argc; ++i) {
        auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
        if (!std::strcmp(argv[i], "--images")) images = std::stol(next());
        else if (!std::strcmp(argv[i], "--steps")) steps = std::stol(next());
        else if (!std::strcmp(argv[i], "--rows")) rows = next();
        else if (!std::strcmp(argv[i], "--json")) json = next();
        else if (!std::strcmp(argv[i], "--data")) data = next();
        else if (!std::strcmp(argv[i], "--model")) model = next();
        else if (!std::strcmp(argv[i], "--noise-reg")) noise_reg = std::stod(next());
        else {
            std::cerr << "usage: invert_table [--images K] [--steps N] [--rows all|main|NAME,...] [--json OUT] "
                         "[--noise-reg W] [--data DIR] [--model M]\n";
            return 2;
        }
    }
    try {
        G g = G::load(model, backend);
        std::vector<Image> pics;
        for (Index k = 0; k < images; ++k)
            pics.push_back(pad_image(load_image(concat(data, "/fmnist/test_", k < 10 ? "000" : "00", k, ".png")), 2, 0));
        const Tensor<float> targets = images_to_tensor(pics, 1);

        std::vector<TableConfig> all = {
            {"official projector (W, Adam schedule, noise optimised)", "w", "adam", true, steps},
            {"W, Adam schedule", "w", "adam", false, steps},
            {"W+, Adam schedule", "wplus", "adam", false, steps},
            {"W+, Adam schedule, noise optimised", "wplus", "adam", true, steps},
            {"Z, Adam schedule", "z", "adam", false, steps},
            {"S, Adam schedule", "s", "adam", false, steps},
            {"W, L-BFGS", "w", "lbfgs", false, steps / 5},
            {"W+, L-BFGS", "wplus", "lbfgs", false, steps / 5},
            {"Z, L-BFGS", "z", "lbfgs", false, steps / 5},
            {"S, L-BFGS", "s", "lbfgs", false, steps / 5},
            {"W, CMA-ES", "w", "cmaes", false, steps * 2 / 5},
            {"W+, sep-CMA-ES", "wplus", "cmaes", false, steps * 2 / 5},
            {"W, BasinCMA", "w", "basincma", false, 10},
            {"W+, BasinCMA", "wplus", "basincma", false, 10},
        };
        std::vector<TableConfig> chosen;
        for (const auto& c : all) {
            const bool main_row = c.optimizer == "adam";
            const std::string key = c.space + ":" + c.optimizer + (c.optimize_noise ? "+noise" : "");
            bool listed = false;  // --rows is a comma list of keys such as w:adam, wplus:adam+noise
            for (std::size_t b = 0; b <= rows.size();) {
                const std::size_t e = std::min(rows.find(',', b), rows.size());
                listed = listed || rows.substr(b, e - b) == key;
                b = e + 1;
            }
            if (rows == "all" || (rows == "main" && main_row) || listed) chosen.push_back(c);
        }
        std::vector<bench::Row> out;
        for (const auto& c : chosen) {
            std::cerr << "running: " << c.name << " ..." << std::endl;
            const InversionResult r = run_config(c, g, targets, noise_reg);
            bench::Row row;
            const double psnr = mean_of(r.metrics, &metrics::Comparison::psnr);
            const double ssim = mean_of(r.metrics, &metrics::Comparison::ssim);
            const double psnr_fixed = r.metrics_fixed_noise.empty() ? psnr : mean_of(r.metrics_fixed_noise, &metrics::Comparison::psnr);
            row.cells = {c.name, std::to_string(r.steps_run), bench::fmt(psnr), bench::fmt(ssim, 4),
                         c.optimize_noise ? bench::fmt(psnr_fixed) : "-", bench::fmt(r.seconds, 1),
                         std::to_string(r.evaluations)};
            Json j{Json::Object{}};
            j.set("config", c.name);
            j.set("space", c.space);
            j.set("optimizer", c.optimizer);
            j.set("optimize_noise", c.optimize_noise);
            j.set("steps", static_cast<std::int64_t>(r.steps_run));
            j.set("images", static_cast<std::int64_t>(images));
            j.set("mean_psnr", psnr);
            j.set("mean_ssim", ssim);
            j.set("mean_psnr_noise_reset", psnr_fixed);
            j.set("seconds", r.seconds);
            j.set("generator_batches", static_cast<std::int64_t>(r.evaluations));
            j.set("noise_regularization", c.optimize_noise ? noise_reg : 0.0);
            j.set("device", device);
            row.json = j;
            out.push_back(row);
            std::cerr << "  mean PSNR " << psnr << " dB, SSIM " << ssim << ", noise-reset PSNR " << psnr_fixed << " dB, "
                      << r.seconds << " s, " << r.steps_run << " steps" << std::endl;
        }
        std::cout << "Fashion-MNIST test images 0-" << images - 1 << " (padded to 32x32), demo generator, MSE loss, "
                  << device << (noise_reg != 1e5 ? concat(", noise regularisation ", noise_reg) : std::string()) << "\n";
        bench::print_table({"configuration", "steps", "PSNR dB", "SSIM", "PSNR, noise reset", "time s", "generator batches"}, out);
        bench::write_json(json, "inversion_quality_fmnist", out);
    } catch (const std::exception& e) {
        std::cerr << "invert_table: " << e.what() << "\n";
        return 1;
    }
    return 0;
}

}  // namespace ganinv::bench
