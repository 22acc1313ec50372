/// @file invert_step_impl.hpp
/// @brief One inversion step (code -> image -> MSE -> gradient -> Adam update, as the Inverter
///        runs it) timed per backend: bench_invert_step (Cpu) and bench_invert_step_gpu (Cuda)
///        are this template with a different generator backend. Two objectives per config: the
///        official projector's (W, noise maps optimised with the 1e5 regulariser, re-normalised
///        after the update) and W+ with constant noise (this project's default).
#pragma once

#include "bench_common.hpp"

#include <ganinv/core/json.hpp>
#include <ganinv/invert/objective.hpp>
#include <ganinv/loss/pixel.hpp>
#include <ganinv/models/stylegan2.hpp>
#include <ganinv/invert/projector_schedule.hpp>
#include <ganinv/optim/adam.hpp>

#include <iostream>
#include <string>
#include <utility>
#include <vector>

namespace ganinv::bench {

struct StepConfig {
    std::string name;
    StyleGAN2Config config;  ///< used when model is empty
    std::string model;       ///< a .safetensors generator, or empty for random weights
    std::vector<Index> batches;
};

inline StyleGAN2Config square_config(Index res, Index channel_base) {
    StyleGAN2Config c;
    c.img_resolution = res;
    c.channel_base = channel_base;
    c.channel_max = 512;
    c.z_dim = c.w_dim = 512;
    return c;
}

/// ms per step of objective `Space` (+ noise maps when `noise`) at `batch`.
template <class Space, class G>
double time_step(G& g, Index batch, bool noise, int reps) {
    Tensor<float> z({batch, g.z_dim()});
    Rng(3).fill_normal(z.values());
    const Tensor<float> targets = g.backend().download(g.synthesis(g.mapping(g.backend().upload(z))));
    InverterOptions o;
    o.w_statistics_samples = 1000;
    o.optimize_noise = noise;
    o.eval_batch = batch;
    InverterObjective<G, Space, Mse<typename G::backend_type>> f(g, Mse<typename G::backend_type>{}, Space{}, o);
    f.set_targets(targets);
    Tensor<float> params = f.initial_params(), grads;
    Adam adam(ProjectorSchedule{}.adam_options());
    adam.reset(batch, params.dim(1));
    Rng rng(1);
    return median_ms(
        [&] {
            f.evaluate(params, &grads, 0.01, &rng);
            adam.step(params, grads);
            f.renormalize_noise(params);
        },
        reps, 2);
}

/// Runs every config x batch x objective; prints the table and writes JSON.
template <class B>
int invert_step_main(const std::vector<StepConfig>& configs, B backend, const std::string& device_label,
                     const std::string& json_path) {
    using G = StyleGAN2<B>;
    std::vector<Row> rows;
    for (const StepConfig& c : configs) {
        G g = c.model.empty() ? G::random(c.config, 1, backend) : G::load(c.model, backend);
        const int reps = g.resolution() >= 512 ? 5 : (g.resolution() > 64 ? 10 : 30);
        for (Index batch : c.batches)
            for (const bool official : {true, false}) {
                const double ms = official ? time_step<WSpace>(g, batch, true, reps) : time_step<WPlusSpace>(g, batch, false, reps);
                const std::string objective = official ? "W + noise (official projector)" : "W+, const noise";
                Row r;
                r.cells = {c.name, objective, std::to_string(batch), fmt(ms), fmt(ms / static_cast<double>(batch)),
                           fmt(1000.0 * static_cast<double>(batch) / ms, 1)};
                Json j{Json::Object{}};
                j.set("config", c.name);
                j.set("objective", official ? "w_noise" : "wplus");
                j.set("batch", static_cast<std::int64_t>(batch));
                j.set("resolution", static_cast<std::int64_t>(g.resolution()));
                j.set("ms_per_step", ms);
                j.set("ms_per_image_step", ms / static_cast<double>(batch));
                j.set("device", device_label);
                r.json = j;
                rows.push_back(r);
                std::cout << "." << std::flush;
            }
    }
    std::cout << "\nInversion step on " << device_label << " (MSE, Adam with the projector schedule)\n";
    print_table({"config", "objective", "batch", "ms/step", "ms/image-step", "image-steps/s"}, rows);
    write_json(json_path, "inversion_step", rows);
    return 0;
}

}  // namespace ganinv::bench
