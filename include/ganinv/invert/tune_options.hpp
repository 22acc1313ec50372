/// @file tune_options.hpp
/// @brief Settings, progress reports and results of generator tuning (Pivotal Tuning Inversion,
///        invert/tuner.hpp): which synthesis tensors move, the Adam step, the stopping rule and
///        PTI's locality regulariser.
#pragma once

#include "ganinv/concepts/generator_inputs.hpp"
#include "ganinv/concepts/loss.hpp"
#include "ganinv/metrics/metrics.hpp"
#include "ganinv/models/stylegan2_config.hpp"
#include "ganinv/models/stylegan2_params.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ganinv {

/// Which kinds of synthesis tensors are tuned (PTI tunes all of them).
enum class TunedKinds {
    all,     ///< every trainable synthesis tensor: conv and ToRGB weights, biases, affines, noise strengths, const
    torgb,   ///< the ToRGB layers only (weights, biases and their affines)
    biases,  ///< the biases only (conv/ToRGB biases and the affines' biases)
};

inline const char* to_string(TunedKinds k) {
    switch (k) {
        case TunedKinds::torgb: return "torgb";
        case TunedKinds::biases: return "biases";
        default: return "all";
    }
}

inline TunedKinds parse_tuned_kinds(const std::string& s) {
    if (s == "all") return TunedKinds::all;
    if (s == "torgb") return TunedKinds::torgb;
    if (s == "biases") return TunedKinds::biases;
    throw ValueError("unknown set of tuned tensors '" + s + "' (all, torgb or biases)");
}

/// The synthesis tensors to tune: a kind, and a half-open range of w indices [first, last) — the
/// layers whose affine reads one of those ws (the same indices as style mixing uses); the const
/// input belongs to w index 0. last < 0 means "to the end".
struct TuneSelection {
    TunedKinds kinds = TunedKinds::all;
    Index first_w = 0;
    Index last_w = -1;
};

/// The tensor names a selection picks on a generator with this config, in spec order. A range
/// outside [0, num_ws] or an empty one is a ValueError naming the generator's num_ws; a
/// selection that picks nothing (e.g. ToRGB of a range without ToRGB layers) also is.
inline std::vector<std::string> select_tuned_params(const StyleGAN2Config& cfg, const TuneSelection& s) {
    const Index num_ws = cfg.num_ws();
    const Index last = s.last_w < 0 ? num_ws : s.last_w;
    GANINV_CHECK(s.first_w >= 0 && last <= num_ws && s.first_w < last, ValueError, "tuned layer range ", s.first_w, ":",
                 s.last_w < 0 ? std::string() : std::to_string(s.last_w), " is out of bounds: this generator has ",
                 num_ws, " w indices, so a range a:b needs 0 <= a < b <= ", num_ws);
    std::map<std::string, Index> w_index_of_layer;
    const SynthesisPlan plan(cfg);
    for (const auto& l : plan.layers) w_index_of_layer[l.name] = l.w_index;
    std::vector<std::string> names;
    for (const ParamSpec& spec : stylegan2_param_specs(cfg)) {
        if (!spec.trainable || !spec.name.starts_with("synthesis.")) continue;
        Index w_index = 0;  // synthesis.b4.const feeds the first layer
        const auto dot = spec.name.find('.', spec.name.find('.', 10) + 1);  // "synthesis.bR.layer"
        if (const auto it = w_index_of_layer.find(spec.name.substr(0, dot)); it != w_index_of_layer.end())
            w_index = it->second;
        if (w_index < s.first_w || w_index >= last) continue;
        const bool torgb = spec.name.find(".torgb.") != std::string::npos;
        const bool bias = spec.kind == ParamKind::bias || spec.kind == ParamKind::affine_bias;
        if ((s.kinds == TunedKinds::torgb && !torgb) || (s.kinds == TunedKinds::biases && !bias)) continue;
        names.push_back(spec.name);
    }
    GANINV_CHECK(!names.empty(), ValueError, "the tuning selection (", to_string(s.kinds), ", w indices ", s.first_w, ":",
                 last, ") picks no tensor of this generator");
    return names;
}

struct TunerOptions {
    Index steps = 350;            ///< Adam steps over the weights (PTI: 350)
    double learning_rate = 3e-4;  ///< constant, as PTI
    double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    TuneSelection selection{};
    NoiseMode noise = NoiseMode::constant;  ///< the generator's fixed noise buffers (none/constant)

    /// Stop once every image's value of `stop_term` (a loss term's name, e.g. "lpips"; empty:
    /// the total loss) is <= this (PTI: LPIPS <= 0.06). Checked after each step's evaluation.
    std::optional<double> target_loss;
    std::string stop_term;

    /// PTI's locality regulariser (off at 0, as in PTI): each step, `locality_samples` random
    /// codes w_r = mapping(z) are pulled to pivot + locality_alpha * (w_r - pivot) / |w_r - pivot|,
    /// and the tuned generator's images of them must stay the original generator's: the term is
    /// locality_weight * loss(tuned image, original image), the tuning loss (PTI: L2 + LPIPS).
    double locality_weight = 0.0;
    double locality_alpha = 30.0;  ///< PTI's regulizer_alpha
    Index locality_samples = 1;    ///< random codes per step
    std::uint64_t seed = 0;        ///< the locality codes

    Index progress_every = 1;
    std::function<void(Index step, Index total, double mean_loss)> on_progress;
};

struct TuneResult {
    std::vector<std::string> tuned;             ///< the tensor names that moved
    Index tuned_values = 0;                     ///< their total element count
    Tensor<float> before;                       ///< [N, C, R, R] the pivots' images, original generator
    Tensor<float> after;                        ///< the same codes through the tuned generator
    std::vector<metrics::Comparison> metrics_before, metrics_after;  ///< vs the targets (clamped, range 2)
    std::vector<std::vector<double>> loss_history;  ///< [step][image], the tuning loss before each step
    std::vector<double> locality_history;           ///< [step] the regulariser's value (when on)
    Index steps_run = 0;
    double seconds = 0;
};

}  // namespace ganinv
