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
#include <functional>
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
    std::optional<std::filesystem::path> pivot_file;  ///< --pivot: a code file or a folder of them, instead of the inversion
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
    if (const auto p = a.get("pivot")) s.pivot_file = *p;
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

/// --pivot: one code file for one image, or a folder holding NAME.safetensors for every image
/// NAME (what `ganinv invert --out DIR` wrote), stacked in the images' order.
inline Tensor<float> load_given_pivots(const std::filesystem::path& path, const std::vector<std::string>& names) {
    if (!std::filesystem::is_directory(path)) {
        if (names.size() != 1)
            throw UsageError("--pivot " + path.string() + " is one code for " + std::to_string(names.size()) +
                             " images; give one --image, or a folder of NAME.safetensors codes");
        return load_pivot_file(path);
    }
    std::vector<Tensor<float>> codes;
    for (const auto& name : names) {
        codes.push_back(load_pivot_file(path / (name + ".safetensors")));
        GANINV_CHECK(codes.back().shape() == codes.front().shape(), ShapeError, "--pivot: ", name,
                     ".safetensors holds ws of shape ", shape_to_string(codes.back().shape()), " but ", names.front(),
                     ".safetensors ", shape_to_string(codes.front().shape()));
    }
    Shape shape = codes.front().shape();
    shape[0] *= static_cast<Index>(codes.size());
    Tensor<float> all(shape);
    for (std::size_t i = 0; i < codes.size(); ++i)
        std::copy(codes[i].data(), codes[i].data() + codes[i].numel(), all.data() + static_cast<Index>(i) * codes[i].numel());
    return all;
}

/// The pivots of a set of images: codes, each image's inversion loss history, and its share of
/// the inversion's wall time.
struct PivotSet {
    std::string space;
    Tensor<float> ws;  ///< [N, num_ws, w_dim]
    std::vector<std::vector<double>> history;
    std::vector<double> seconds;
};

/// One `ganinv tune` on one device, behind a plain C++ interface so that cmd_tune.cpp needs no
/// CUDA header: TuneRunner<StyleGAN2<Cpu>, ...> here, the CUDA one in tune_cuda.cu.
class TuneJob {
public:
    virtual ~TuneJob() = default;
    virtual Index resolution() const = 0;
    virtual Index img_channels() const = 0;
    /// "cpu", or the GPU's name and the convolutions' precision.
    virtual std::string device_name() const = 0;
    virtual std::size_t tuned_tensors() const = 0;
    virtual void set_tune_progress(std::function<void(Index, Index, double)> f) = 0;
    /// Inverts host targets [N, C, R, R] with the original weights; `progress(batch, batches, p)`.
    virtual PivotSet invert(const Tensor<float>& targets,
                            const std::function<void(Index, Index, const InversionProgress&)>& progress) = 0;
    /// Tunes the original weights for host targets and their pivots; writes the generator file.
    virtual TuneResult tune(const Tensor<float>& targets, const Tensor<float>& pivots,
                            const std::filesystem::path& generator_out, const std::string& tuned_for) = 0;
};

/// Runs the steps of one `ganinv tune` on one generator it owns: pivots by inversion (in
/// batches, as `invert` runs them), then tuning jobs that each start from the original weights
/// and end in a tuned generator file with the model's own config metadata.
template <class G, class LossT>
class TuneRunner : public TuneJob {
public:
    static constexpr Index kPivotBatch = 8;  ///< images inverted together (invert's default --batch)

    /// make_generator() and make_loss() build the two in place (a CUDA generator need not move).
    template <class MakeGenerator, class MakeLoss>
    TuneRunner(MakeGenerator&& make_generator, MakeLoss&& make_loss, const TuneSettings& s, std::string config_text)
        : g_(make_generator()), loss_(make_loss()), s_(s), config_text_(std::move(config_text)), tuner_(g_, loss_, s.tune) {}

    Index resolution() const override { return g_.resolution(); }
    Index img_channels() const override { return g_.img_channels(); }
    std::string device_name() const override { return "cpu"; }
    std::size_t tuned_tensors() const override { return tuner_.tuned_params().size(); }
    void set_tune_progress(std::function<void(Index, Index, double)> f) override { tuner_.set_progress(std::move(f)); }

    PivotSet invert(const Tensor<float>& targets,
                    const std::function<void(Index, Index, const InversionProgress&)>& progress) override {
        tuner_.restore_original();
        const Index n = targets.dim(0), batches = (n + kPivotBatch - 1) / kPivotBatch;
        PivotSet p;
        p.space = s_.space;
        p.ws = Tensor<float>({n, g_.num_ws(), g_.w_dim()});
        const Index per = g_.num_ws() * g_.w_dim();
        for (Index b = 0; b < batches; ++b) {
            const Index b0 = b * kPivotBatch, nb = std::min(kPivotBatch, n - b0);
            InverterOptions o = s_.pivot;
            o.on_progress = [&](const InversionProgress& ip) { progress(b + 1, batches, ip); };
            const Adam adam(ProjectorSchedule{}.adam_options());
            const Tensor<float> t = slice_batch(targets, b0, nb);
            const InversionResult r = s_.space == "w" ? run_inverter<WSpace>(g_, loss_, adam, o, t)
                                                      : run_inverter<WPlusSpace>(g_, loss_, adam, o, t);
            std::copy(r.ws.data(), r.ws.data() + nb * per, p.ws.data() + b0 * per);
            for (Index i = 0; i < nb; ++i) {
                std::vector<double> h;
                for (const auto& step : r.loss_history) h.push_back(step[static_cast<std::size_t>(i)]);
                p.history.push_back(std::move(h));
                p.seconds.push_back(r.seconds / static_cast<double>(nb));
            }
        }
        return p;
    }

    TuneResult tune(const Tensor<float>& targets, const Tensor<float>& pivots, const std::filesystem::path& generator_out,
                    const std::string& tuned_for) override {
        tuner_.restore_original();
        TuneResult r = tuner_.run(targets, pivots);
        save_stylegan2(g_, generator_out, config_text_,
                       {{"tuned_for", tuned_for}, {"tuned_tensors", to_string(s_.tune.selection.kinds)},
                        {"tune_steps", std::to_string(r.steps_run)}});
        return r;
    }

private:
    G g_;
    LossT loss_;
    const TuneSettings& s_;
    std::string config_text_;
    Tuner<G, LossT> tuner_;
};

}  // namespace ganinv::cli
