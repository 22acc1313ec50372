/// @file tune_support.hpp
/// @brief The backend-independent part of `ganinv tune`: reading its options, and one tuning
///        job (the pivots by inversion or from a file, then the Tuner, then the tuned generator
///        file) as a template over the generator and loss, so that a CUDA translation unit can
///        instantiate it with StyleGAN2<Cuda> as cmd_tune.cpp does with StyleGAN2<Cpu>.
#pragma once

#include "invert_dispatch.hpp"
#include "invert_support.hpp"

#include <ganinv/edit/directions.hpp>
#include <ganinv/invert/tuner.hpp>
#include <ganinv/latent/spaces.hpp>
#include <ganinv/models/stylegan2_file.hpp>

#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace ganinv::cli {

/// Everything `ganinv tune` decides from its arguments, checked before any model is loaded.
struct TuneSettings {
    std::string space = "w";   ///< the pivot's space: w (PTI) or wplus
    InverterOptions pivot;     ///< the pivot inversion (Adam with the projector schedule)
    TunerOptions tune;         ///< the tuning; selection.last_w < 0 until the model is known
    std::string layers_text;   ///< --layers as given, for the messages
    bool shared = false;
    std::optional<std::filesystem::path> pivot_file;  ///< --pivot: a code instead of the inversion
};

inline TuneSettings tune_settings_from_args(const Args& a, bool loss_has_lpips) {
    TuneSettings s;
    s.space = a.get("space").value_or("w");
    if (s.space != "w" && s.space != "wplus") throw UsageError("--space must be w or wplus for tuning, got '" + s.space + "'");
    s.pivot.steps = a.integer("pivot-steps", 450);
    if (s.pivot.steps < 0) throw UsageError("--pivot-steps must be >= 0");
    s.pivot.seed = static_cast<std::uint64_t>(a.integer("seed", 0));
    s.pivot.progress_every = std::max<Index>(1, s.pivot.steps / 100);
    s.pivot.w_statistics_cache = std::make_shared<LatentStatistics>();
    s.tune.steps = a.integer("tune-steps", 350);
    if (s.tune.steps < 0) throw UsageError("--tune-steps must be >= 0");
    s.tune.learning_rate = a.number("tune-lr", 3e-4);
    if (!(s.tune.learning_rate >= 0)) throw UsageError("--tune-lr must be >= 0");
    s.tune.seed = s.pivot.seed;
    s.tune.locality_weight = a.number("locality", 0.0);
    if (!(s.tune.locality_weight >= 0)) throw UsageError("--locality must be >= 0");
    s.tune.progress_every = std::max<Index>(1, s.tune.steps / 100);
    if (a.has("target-loss")) {
        s.tune.target_loss = a.number("target-loss", 0.0);
        if (loss_has_lpips) s.tune.stop_term = "lpips";  // PTI stops on LPIPS
    }
    try {
        s.tune.selection.kinds = parse_tuned_kinds(a.get("params").value_or("all"));
        if (const auto l = a.get("layers")) {
            s.layers_text = *l;
            const edit::LayerRange r = edit::parse_layer_range(*l);
            s.tune.selection.first_w = r.begin;
            s.tune.selection.last_w = r.end;
        }
    } catch (const ValueError& e) {
        throw UsageError(std::string(a.has("layers") ? "--layers / --params: " : "--params: ") + e.what());
    }
    s.shared = a.has("shared");
    if (const auto p = a.get("pivot")) {
        if (s.shared) throw UsageError("--pivot gives one image's code; it does not go with --shared");
        s.pivot_file = *p;
    }
    return s;
}

/// The ws of a code file as `invert` writes it ([1, num_ws, w_dim]; [num_ws, w_dim] also taken).
inline Tensor<float> load_pivot_file(const std::filesystem::path& path) {
    const SafetensorsFile f(path);
    GANINV_CHECK(f.contains("ws"), FormatError, "--pivot '", path.string(), "' holds no tensor 'ws' (write it with "
                 "ganinv invert)");
    Tensor<float> ws = load_nonempty(f, "ws");
    if (ws.rank() == 2) ws = Tensor<float>({1, ws.dim(0), ws.dim(1)}, std::vector<float>(ws.values().begin(), ws.values().end()));
    return ws;
}

/// One tuning job's results on the host.
struct TuneJobResult {
    InversionResult pivot;  ///< ws (and, when inverted, the loss history and seconds)
    TuneResult tune;
};

/// Runs the jobs of one `ganinv tune` on one generator: each job inverts its images (or takes the
/// given code), tunes the generator from its original weights for them, and writes the tuned
/// generator file with the model's own config metadata.
template <class G, class LossT>
class TuneRunner {
public:
    TuneRunner(G& g, const LossT& loss, const TuneSettings& s, std::string config_text)
        : g_(g), loss_(loss), s_(s), config_text_(std::move(config_text)), tuner_(g, loss, s.tune) {}

    std::size_t tuned_tensors() const { return tuner_.tuned_params().size(); }
    void set_tune_progress(std::function<void(Index, Index, double)> f) { tuner_.set_progress(std::move(f)); }

    TuneJobResult run(const Tensor<float>& targets, const std::optional<Tensor<float>>& given_pivots,
                      const std::filesystem::path& generator_out, const std::string& tuned_for,
                      const std::function<void(const InversionProgress&)>& on_pivot_progress) {
        TuneJobResult r;
        tuner_.restore_original();  // every job starts from the model as loaded
        if (given_pivots) {
            r.pivot.ws = *given_pivots;
            r.pivot.space = "given";
        } else {
            InverterOptions o = s_.pivot;
            o.on_progress = on_pivot_progress;
            const Adam adam(ProjectorSchedule{}.adam_options());
            r.pivot = s_.space == "w" ? run_inverter<WSpace>(g_, loss_, adam, o, targets)
                                      : run_inverter<WPlusSpace>(g_, loss_, adam, o, targets);
        }
        r.tune = tuner_.run(targets, r.pivot.ws);
        save_stylegan2(g_, generator_out, config_text_,
                       {{"tuned_for", tuned_for}, {"tuned_tensors", to_string(s_.tune.selection.kinds)},
                        {"tune_steps", std::to_string(r.tune.steps_run)}});
        return r;
    }

private:
    G& g_;
    const LossT& loss_;
    const TuneSettings& s_;
    std::string config_text_;
    Tuner<G, LossT> tuner_;
};

}  // namespace ganinv::cli
