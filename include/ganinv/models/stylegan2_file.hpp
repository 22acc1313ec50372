/// @file stylegan2_file.hpp
/// @brief Writing a StyleGAN2 generator back to a complete model file (every tensor under its
///        state-dict name plus the `config` metadata), so that a generator changed in memory — a
///        tuned one (invert/tuner.hpp) — loads again through `StyleGAN2::load` like any other.
#pragma once

#include "ganinv/io/safetensors.hpp"
#include "ganinv/models/stylegan2.hpp"

#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace ganinv {

/// Every tensor of the generator (trainable or not) copied to the host, in spec order.
template <class B>
NamedTensors download_stylegan2_params(const StyleGAN2<B>& g) {
    NamedTensors out;
    for (const ParamSpec& spec : g.param_specs()) out.add(spec.name, g.backend().download(g.param(spec.name)));
    return out;
}

/// Writes `g` to `path` atomically (nothing half-written on failure). `config_json`: the `config`
/// metadata text to store — pass the source file's own text to keep its extra keys (source,
/// snapshot); it must describe the same architecture as g.config() (a ValueError otherwise, since
/// the file would not load). Without it, g.config() is written. `extra_metadata` adds entries
/// such as where the weights came from; it may not replace `config`.
template <class B>
void save_stylegan2(const StyleGAN2<B>& g, const std::filesystem::path& path,
                    const std::optional<std::string>& config_json = std::nullopt,
                    const std::map<std::string, std::string>& extra_metadata = {}) {
    std::string config_text = g.config().to_json().dump();
    if (config_json) {
        StyleGAN2Config described;
        try {
            described = StyleGAN2Config::from_json(Json::parse(*config_json));
        } catch (const Error& e) {
            throw ValueError(concat("save_stylegan2: the config metadata to write does not parse: ", e.what()));
        }
        GANINV_CHECK(described.to_json().dump() == config_text, ValueError,
                     "save_stylegan2: the config metadata to write describes another architecture than the generator "
                     "(", described.to_json().dump(), " vs ", config_text, ")");
        config_text = *config_json;
    }
    SafetensorsWriter w;
    const NamedTensors params = download_stylegan2_params(g);  // named: items() refers into it
    for (const auto& [name, t] : params.items()) w.add(name, t);
    w.set_metadata("config", config_text);
    for (const auto& [key, value] : extra_metadata) {
        GANINV_CHECK(key != "config", ValueError, "save_stylegan2: extra metadata may not replace 'config'");
        w.set_metadata(key, value);
    }
    w.write(path);
}

}  // namespace ganinv
