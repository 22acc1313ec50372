/// @file encoder_file.hpp
/// @brief Encoder files: safetensors with every weight under its name, the generator's mean w,
///        and the encoder's config and target generator in the metadata. Loading checks the
///        file completely; an encoder made for another generator is refused with the mismatch named.
#pragma once

#include "ganinv/io/safetensors.hpp"
#include "ganinv/models/psp_encoder.hpp"

#include <filesystem>
#include <string>

namespace ganinv {

inline constexpr const char* kEncoderFormat = "ganinv-encoder-1";

/// Adds the encoder's weights, w_avg and metadata to a writer (checkpoints add their own state).
inline void add_encoder_tensors(SafetensorsWriter& w, const PspEncoder& e) {
    for (const auto& s : e.param_specs())
        w.add(s.name, s.shape, std::span<const float>(e.params().data() + s.offset, static_cast<std::size_t>(shape_numel(s.shape))));
    w.add("w_avg", e.w_avg());
    w.set_metadata("format", kEncoderFormat);
    w.set_metadata("encoder_config", e.config().to_json().dump());
}

/// Writes an encoder file (atomically: a failed write leaves no file that could be read as good).
inline void save_encoder(const std::filesystem::path& path, const PspEncoder& e) {
    SafetensorsWriter w;
    add_encoder_tensors(w, e);
    w.write(path);
}

/// Reads an encoder file; every weight must be present with its config's shape.
inline PspEncoder load_encoder(const std::filesystem::path& path) {
    const SafetensorsFile f(path);
    const auto format = f.metadata("format");
    GANINV_CHECK(format && *format == kEncoderFormat, FormatError, "'", path.string(),
                 "' is not a ganinv encoder file (metadata 'format' is '", format.value_or("(none)"), "', expected '",
                 kEncoderFormat, "'; make one with `ganinv train-encoder`)");
    const auto cfg = f.metadata("encoder_config");
    GANINV_CHECK(cfg.has_value(), FormatError, "'", path.string(), "' has no 'encoder_config' metadata");
    Json j;
    try {
        j = Json::parse(*cfg);
    } catch (const Error& e) {
        throw FormatError(concat("'", path.string(), "': encoder_config is not valid JSON: ", e.what()));
    }
    PspEncoder e(EncoderConfig::from_json(j, concat("'", path.string(), "'")));
    for (const auto& s : e.param_specs()) {
        GANINV_CHECK(f.contains(s.name), FormatError, "'", path.string(), "' lacks the encoder weight '", s.name, "'");
        const Tensor<float> t = f.load(s.name, s.shape);
        std::copy(t.data(), t.data() + t.numel(), e.params().data() + s.offset);
    }
    GANINV_CHECK(f.contains("w_avg"), FormatError, "'", path.string(), "' lacks 'w_avg'");
    e.set_w_avg(f.load("w_avg", {e.w_dim()}));
    for (float v : e.params().values())
        GANINV_CHECK(std::isfinite(v), FormatError, "'", path.string(), "' holds non-finite weights");
    return e;
}

/// Refuses an encoder whose codes or inputs do not fit the generator, naming every mismatch.
inline void check_encoder_fits(const EncoderConfig& c, Index num_ws, Index w_dim, Index channels, Index resolution,
                               const std::string& where) {
    std::string bad;
    const auto cmp = [&](const char* what, Index enc, Index gen) {
        if (enc != gen) bad += concat(bad.empty() ? "" : ", ", what, " ", enc, " (the generator has ", gen, ")");
    };
    cmp("num_ws", c.num_ws, num_ws);
    cmp("w_dim", c.w_dim, w_dim);
    cmp("channels", c.in_channels, channels);
    cmp("resolution", c.resolution, resolution);
    GANINV_CHECK(bad.empty(), ShapeError, "encoder ", where, " was made for another generator: ", bad);
}

}  // namespace ganinv
