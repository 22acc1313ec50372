/// @file stylegan2_params.hpp
/// @brief The named tensors of a StyleGAN2 generator under NVIDIA's state-dict names: the list
///        a config implies, loading it from safetensors (every tensor's shape checked), random
///        initialisation as the official constructor does it, and a same-layout gradient store.
#pragma once

#include "ganinv/core/rng.hpp"
#include "ganinv/io/safetensors.hpp"
#include "ganinv/models/stylegan2_config.hpp"
#include "ganinv/nn/upfirdn2d.hpp"

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ganinv {

enum class ParamKind { weight, bias, affine_bias, const_input, noise_strength, w_avg, noise_const, filter };

struct ParamSpec {
    std::string name;
    Shape shape;
    ParamKind kind;
    bool trainable;  ///< receives a gradient in generator tuning
};

/// Every tensor of the generator, mapping first, in a fixed order.
inline std::vector<ParamSpec> stylegan2_param_specs(const StyleGAN2Config& c) {
    std::vector<ParamSpec> specs;
    for (Index i = 0; i < c.mapping_layers; ++i) {
        const Index in = i == 0 ? c.z_dim : c.w_dim;
        specs.push_back({concat("mapping.fc", i, ".weight"), {c.w_dim, in}, ParamKind::weight, true});
        specs.push_back({concat("mapping.fc", i, ".bias"), {c.w_dim}, ParamKind::bias, true});
    }
    specs.push_back({"mapping.w_avg", {c.w_dim}, ParamKind::w_avg, false});
    const Index f = static_cast<Index>(c.resample_filter.size());
    const SynthesisPlan plan(c);
    for (const auto& l : plan.layers) {
        if (l.resolution == 4 && l.name.ends_with("conv1"))
            specs.push_back({"synthesis.b4.const", {l.in_channels, 4, 4}, ParamKind::const_input, true});
        specs.push_back({l.name + ".weight", {l.out_channels, l.in_channels, l.kernel, l.kernel}, ParamKind::weight, true});
        if (!l.is_torgb) specs.push_back({l.name + ".noise_strength", {}, ParamKind::noise_strength, true});
        specs.push_back({l.name + ".bias", {l.out_channels}, ParamKind::bias, true});
        if (!l.is_torgb) {
            specs.push_back({l.name + ".resample_filter", {f, f}, ParamKind::filter, false});
            specs.push_back({l.name + ".noise_const", {l.resolution, l.resolution}, ParamKind::noise_const, false});
        }
        specs.push_back({l.name + ".affine.weight", {l.in_channels, c.w_dim}, ParamKind::weight, true});
        specs.push_back({l.name + ".affine.bias", {l.in_channels}, ParamKind::affine_bias, true});
    }
    return specs;
}

/// Named host tensors in spec order (parameters, or gradients of the same layout).
class NamedTensors {
public:
    NamedTensors() = default;
    explicit NamedTensors(const std::vector<ParamSpec>& specs, float fill = 0.0f) {
        for (const auto& s : specs) add(s.name, Tensor<float>(s.shape, fill));
    }
    void add(const std::string& name, Tensor<float> t) {
        GANINV_CHECK(index_.emplace(name, items_.size()).second, ValueError, "tensor '", name, "' added twice");
        items_.emplace_back(name, std::move(t));
    }
    bool contains(const std::string& name) const { return index_.count(name) != 0; }
    Tensor<float>& at(const std::string& name) { return items_[find(name)].second; }
    const Tensor<float>& at(const std::string& name) const { return items_[find(name)].second; }
    const std::vector<std::pair<std::string, Tensor<float>>>& items() const { return items_; }
    std::vector<std::pair<std::string, Tensor<float>>>& items() { return items_; }

private:
    std::size_t find(const std::string& name) const {
        const auto it = index_.find(name);
        GANINV_CHECK(it != index_.end(), ValueError, "no generator tensor named '", name, "'");
        return it->second;
    }
    std::vector<std::pair<std::string, Tensor<float>>> items_;
    std::map<std::string, std::size_t> index_;
};

/// Reads the config from the file's `config` metadata (or `config_override`) and every tensor.
/// Missing resample filters are rebuilt from the config; every other tensor is required.
inline std::pair<StyleGAN2Config, NamedTensors> load_stylegan2_params(const SafetensorsFile& file) {
    const auto meta = file.metadata("config");
    GANINV_CHECK(meta.has_value(), FormatError, "'", file.path().string(),
                 "' has no 'config' entry in its __metadata__: is it a ganinv StyleGAN2 generator file?");
    StyleGAN2Config cfg;
    try {
        cfg = StyleGAN2Config::from_json(Json::parse(*meta));
    } catch (const Error& e) {
        throw FormatError(concat("'", file.path().string(), "': ", e.what()));
    }
    GANINV_CHECK(file.contains("mapping.fc0.weight") && file.contains("synthesis.b4.const"), FormatError, "'",
                 file.path().string(), "' does not hold StyleGAN2 generator weights (no mapping.fc0.weight / synthesis.b4.const)");
    // Every tensor the config implies is compared with the file's header before anything is
    // allocated or read: a config that disagrees with the weights fails here, cheaply.
    const std::vector<ParamSpec> specs = stylegan2_param_specs(cfg);
    GANINV_CHECK(!file.contains(concat("mapping.fc", cfg.mapping_layers, ".weight")), FormatError, "'",
                 file.path().string(), "': the config says mapping_layers = ", cfg.mapping_layers,
                 " but the file holds mapping.fc", cfg.mapping_layers, ".weight");
    for (const auto& spec : specs) {
        if (spec.kind == ParamKind::filter && !file.contains(spec.name)) continue;
        const SafetensorsEntry& e = file.entry(spec.name);  // names the file and the missing tensor
        GANINV_CHECK(e.shape == spec.shape, ShapeError, "'", file.path().string(), "': tensor '", spec.name,
                     "' has shape ", shape_to_string(e.shape), " but the config implies ", shape_to_string(spec.shape));
    }
    NamedTensors params;
    const Tensor<float> filter = nn::make_resample_filter(cfg.resample_filter);
    for (const auto& spec : specs) {
        if (spec.kind == ParamKind::filter && !file.contains(spec.name)) {
            params.add(spec.name, filter);
            continue;
        }
        Tensor<float> t = file.load(spec.name, spec.shape);
        expect_finite(t.values(), concat("'", file.path().string(), "': tensor '", spec.name, "'"));
        params.add(spec.name, std::move(t));
    }
    return {cfg, std::move(params)};
}

/// Random weights as the official constructor draws them (weights N(0,1) / lr_multiplier for the
/// mapping, biases 0 except the affine's 1, noise strengths 0, const N(0,1)), plus random noise
/// buffers. Deterministic for a seed; used by benchmarks and self-contained tests.
inline NamedTensors random_stylegan2_params(const StyleGAN2Config& cfg, std::uint64_t seed) {
    cfg.validate();
    Rng rng(seed);
    NamedTensors params;
    const Tensor<float> filter = nn::make_resample_filter(cfg.resample_filter);
    for (const auto& spec : stylegan2_param_specs(cfg)) {
        Tensor<float> t(spec.shape, 0.0f);
        switch (spec.kind) {
            case ParamKind::weight:
                rng.fill_normal(t.values(), 0.0, spec.name.starts_with("mapping.") ? 1.0 / cfg.lr_multiplier : 1.0);
                break;
            case ParamKind::const_input:
            case ParamKind::noise_const: rng.fill_normal(t.values()); break;
            case ParamKind::affine_bias: t.fill(1.0f); break;
            case ParamKind::filter: t = filter; break;
            default: break;
        }
        params.add(spec.name, std::move(t));
    }
    return params;
}

}  // namespace ganinv
