/// @file device_step_impl.hpp
/// @brief Time per step of whole `Inverter` runs with Adam (the projector's loop as the
///        `ganinv invert` tool runs it: schedule, exploration noise, stop rule, progress), measured
///        as the official projector is timed (tools: official_projector_timing.py): ms/step =
///        (t(long run) - t(short run)) / (long - short), so setup (W statistics, cuDNN plans, the
///        graph capture, the final render and metrics) cancels. bench_device_step (Cpu: the device
///        loop vs the host loop of before) and bench_device_step_gpu (Cuda) are this template.
///        Several (short, long) pairs are timed and the median pair reported with the spread: one
///        pair is at the mercy of its setup (session 21 saw a 1024^2 row at ~0.6x of its true
///        time when the per-run fixed cost differed by ~60 ms between the two runs).
///        Each long run also times its own steps from the inside ("in-run"): it reports progress
///        every `short` steps (each report waits for the device), and (t(report at long) -
///        t(report at short)) / (long - short) is the step time with no setup in it at all, which
///        session 22 needed: at 1024^2 on an H100 the per-run setup varied by ~0.1-0.7 s, and the
///        (short, long) pairs spread by 30%.
#pragma once

#include "bench_common.hpp"
#include "official_config.hpp"

#include <ganinv/core/json.hpp>
#include <ganinv/invert/inverter.hpp>
#include <ganinv/models/stylegan2.hpp>
#include <ganinv/invert/projector_schedule.hpp>
#include <ganinv/loss/vgg_perceptual.hpp>
#include <ganinv/optim/adam.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ganinv::bench {

struct StepTiming {
    double ms_per_step = 0, setup_s = 0;  ///< of the median pair
    double spread = 0;                    ///< (max - min) / median of the pairs' ms/step
    std::vector<double> pair_ms;          ///< every pair's ms/step, in the order timed
    double inrun_ms_per_step = 0;         ///< median of the long runs' in-run step times
    double inrun_spread = 0;              ///< (max - min) / median of those
    std::vector<double> inrun_ms;         ///< every long run's in-run ms/step, in the order timed
    std::string mode;
};

/// `make_loss()` builds a fresh loss for every run (network losses are not copied). After one
/// warm-up run, `pairs` (short, long) pairs are timed.
template <class Space, class G, class MakeLoss>
StepTiming time_inverter_steps(G& g, MakeLoss&& make_loss, InverterOptions o, const Tensor<float>& targets,
                               Index short_steps, Index long_steps, int pairs = 3) {
    if (pairs < 1 || long_steps <= short_steps)
        throw ValueError(concat("time_inverter_steps: need pairs >= 1 and long > short steps (got ", pairs, ", ",
                                short_steps, ", ", long_steps, ")"));
    using LossT = decltype(make_loss());
    StepTiming r;
    using Clock = std::chrono::steady_clock;
    Clock::time_point at_short{}, at_long{};  // the long run's reports after `short_steps` and `long_steps` steps
    auto run = [&](Index steps) {
        InverterOptions ro = o;
        ro.steps = steps;
        if (steps == long_steps) {  // the in-run clock: a report (one event wait) every short_steps steps
            ro.progress_every = short_steps;
            ro.on_progress = [&, user = o.on_progress](const InversionProgress& p) {
                if (p.step == short_steps) at_short = Clock::now();
                if (p.step == long_steps) at_long = Clock::now();
                if (user) user(p);
            };
        }
        g.backend().synchronize();
        const auto t0 = Clock::now();
        Inverter<G, Space, LossT, Adam> inv(g, make_loss(), Adam(ProjectorSchedule{}.adam_options()), ro);
        (void)inv.run(targets);
        g.backend().synchronize();
        r.mode = inv.launch_mode();
        return std::chrono::duration<double>(Clock::now() - t0).count();
    };
    (void)run(short_steps);  // warm-up: W statistics into o.w_statistics_cache, cuDNN, the pool
    std::vector<std::pair<double, double>> timed;  // (ms/step, setup s) per pair
    for (int p = 0; p < pairs; ++p) {
        at_short = at_long = Clock::time_point{};
        const double ts = run(short_steps), tl = run(long_steps);
        const double ms = (tl - ts) / static_cast<double>(long_steps - short_steps) * 1e3;
        timed.emplace_back(ms, ts - static_cast<double>(short_steps) * ms * 1e-3);
        r.pair_ms.push_back(ms);
        if (at_short == Clock::time_point{} || at_long == Clock::time_point{})
            throw ValueError("time_inverter_steps: the long run did not report after its short and long step counts "
                             "(a stop rule ended it early?)");
        r.inrun_ms.push_back(std::chrono::duration<double, std::milli>(at_long - at_short).count() /
                             static_cast<double>(long_steps - short_steps));
    }
    std::vector<double> inrun = r.inrun_ms;
    std::sort(inrun.begin(), inrun.end());
    r.inrun_ms_per_step = inrun[inrun.size() / 2];
    r.inrun_spread = r.inrun_ms_per_step > 0 ? (inrun.back() - inrun.front()) / r.inrun_ms_per_step : 0.0;
    std::sort(timed.begin(), timed.end());
    const auto& median = timed[timed.size() / 2];  // the upper one of an even count
    r.ms_per_step = median.first;
    r.setup_s = median.second;
    r.spread = r.ms_per_step > 0 ? (timed.back().first - timed.front().first) / r.ms_per_step : 0.0;
    return r;
}

/// The official projector's VGG taps: the five pooling inputs (13 convs), after ReLU, at <= 256^2.
inline VggPerceptualOptions official_vgg_options() {
    VggPerceptualOptions v;
    v.layers = {"conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3"};
    v.max_size = 256;
    return v;
}

/// Images of random codes of g (reachable targets), on the host.
template <class G>
Tensor<float> random_targets(G& g, Index n, std::uint64_t seed) {
    Tensor<float> z({n, g.z_dim()});
    Rng(seed).fill_normal(z.values());
    return g.backend().download(g.synthesis(g.mapping(g.backend().upload(z))));
}

inline Json step_json(const std::string& config, const std::string& objective, const std::string& precision,
                      Index batch, const StepTiming& t) {
    Json j{Json::Object{}};
    j.set("config", config);
    j.set("objective", objective);
    j.set("precision", precision);
    j.set("batch", static_cast<std::int64_t>(batch));
    j.set("ms_per_step", t.ms_per_step);
    j.set("ms_per_image_step", t.ms_per_step / static_cast<double>(batch));
    j.set("setup_s", t.setup_s);
    j.set("spread", t.spread);
    Json::Array pairs;
    for (const double ms : t.pair_ms) pairs.emplace_back(ms);
    j.set("pair_ms_per_step", Json(std::move(pairs)));
    j.set("inrun_ms_per_step", t.inrun_ms_per_step);
    j.set("inrun_spread", t.inrun_spread);
    Json::Array inrun;
    for (const double ms : t.inrun_ms) inrun.emplace_back(ms);
    j.set("inrun_runs_ms_per_step", Json(std::move(inrun)));
    j.set("launch_mode", t.mode);
    return j;
}

}  // namespace ganinv::bench
