/// @file stylegan2_config.hpp
/// @brief The configuration of a StyleGAN2 generator (fields of the official Generator's
///        init kwargs), its validation, and the layer plan derived from it: which layer
///        consumes which w, where each layer's styles live in the flat style vector.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/json.hpp"
#include "ganinv/core/tensor.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

namespace ganinv {

struct StyleGAN2Config {
    std::string architecture = "skip";
    Index z_dim = 512, c_dim = 0, w_dim = 512;
    Index img_resolution = 1024, img_channels = 3;
    Index mapping_layers = 8;
    Index channel_base = 32768, channel_max = 512;
    Index num_fp16_res = 0;
    std::optional<float> conv_clamp;
    float lr_multiplier = 0.01f;
    float w_avg_beta = 0.995f;
    std::vector<float> resample_filter{1, 3, 3, 1};

    Index channels_at(Index res) const { return std::min(channel_base / res, channel_max); }
    Index log2_resolution() const {
        Index l = 0;
        while ((Index{1} << l) < img_resolution) ++l;
        return l;
    }
    /// One w per conv layer plus one for the last ToRGB.
    Index num_ws() const { return 2 * (log2_resolution() - 2) + 2; }

    /// Upper bounds far above any published StyleGAN2 (1024 px, 8 mapping layers, 512 channels,
    /// 4 taps) that keep a hostile config from allocating before the file is compared with it.
    static constexpr Index kMaxResolution = 16384, kMaxDim = 16384, kMaxMappingLayers = 64, kMaxChannels = 16384,
                           kMaxFilterTaps = 16, kMaxImgChannels = 4;

    void validate() const {
        GANINV_CHECK(architecture == "skip", ValueError, "unsupported StyleGAN2 architecture '", architecture,
                     "' (only 'skip' is implemented)");
        GANINV_CHECK(c_dim == 0, ValueError, "conditional generators (c_dim = ", c_dim, ") are not supported");
        GANINV_CHECK(img_resolution >= 4 && img_resolution <= kMaxResolution && (img_resolution & (img_resolution - 1)) == 0,
                     ValueError, "unsupported resolution ", img_resolution, " (img_resolution): must be a power of two in [4, ",
                     kMaxResolution, "]");
        GANINV_CHECK(z_dim >= 1 && z_dim <= kMaxDim && w_dim >= 1 && w_dim <= kMaxDim, ValueError, "z_dim ", z_dim,
                     " and w_dim ", w_dim, " must be in [1, ", kMaxDim, "]");
        GANINV_CHECK(img_channels >= 1 && img_channels <= kMaxImgChannels, ValueError, "img_channels ", img_channels,
                     " must be in [1, ", kMaxImgChannels, "]");
        GANINV_CHECK(mapping_layers >= 1 && mapping_layers <= kMaxMappingLayers, ValueError, "mapping_layers ",
                     mapping_layers, " must be in [1, ", kMaxMappingLayers, "]");
        GANINV_CHECK(channel_base >= 1 && channel_max >= 1 && channel_max <= kMaxChannels &&
                         channels_at(img_resolution) >= 1,
                     ValueError, "channel_base ", channel_base, " / channel_max ", channel_max,
                     " leave no channels at ", img_resolution, "x", img_resolution, " (channel_max must be in [1, ",
                     kMaxChannels, "])");
        GANINV_CHECK(num_fp16_res >= 0 && num_fp16_res <= log2_resolution(), ValueError, "num_fp16_res ",
                     num_fp16_res, " must be in [0, ", log2_resolution(), "] for a ", img_resolution, "x",
                     img_resolution, " generator");
        GANINV_CHECK(!resample_filter.empty() && static_cast<Index>(resample_filter.size()) <= kMaxFilterTaps,
                     ValueError, "resample_filter has ", resample_filter.size(), " taps, must have 1 to ",
                     kMaxFilterTaps);
        double taps_sum = 0;
        for (float t : resample_filter) {
            GANINV_CHECK(std::isfinite(t), ValueError, "resample_filter holds a non-finite tap");
            taps_sum += t;
        }
        GANINV_CHECK(taps_sum != 0.0, ValueError, "resample_filter taps sum to zero");
        if (conv_clamp)
            GANINV_CHECK(std::isfinite(*conv_clamp) && *conv_clamp > 0, ValueError, "conv_clamp must be positive");
        GANINV_CHECK(std::isfinite(lr_multiplier) && lr_multiplier > 0, ValueError, "lr_multiplier ", lr_multiplier,
                     " must be positive");
        GANINV_CHECK(w_avg_beta >= 0 && w_avg_beta <= 1, ValueError, "w_avg_beta ", w_avg_beta, " must be in [0, 1]");
    }

    /// Parses the JSON of generator.json / the safetensors `config` metadata. Missing optional
    /// fields take the official defaults; a stated num_ws must agree with the resolution (checked
    /// after validate(), so that a bad resolution is reported as such).
    static StyleGAN2Config from_json(const Json& j) {
        StyleGAN2Config c;
        std::optional<Index> stated_num_ws;
        try {
            GANINV_CHECK(j.is_object(), FormatError, "expected a JSON object");
            auto get_int = [&](const char* key, Index& dst) {
                if (const Json* v = j.find(key); v && !v->is_null()) dst = v->as_int();
            };
            if (const Json* v = j.find("architecture")) c.architecture = v->as_string();
            get_int("z_dim", c.z_dim);
            get_int("c_dim", c.c_dim);
            get_int("w_dim", c.w_dim);
            c.img_resolution = j.at("img_resolution").as_int();
            get_int("img_channels", c.img_channels);
            get_int("mapping_layers", c.mapping_layers);
            get_int("channel_base", c.channel_base);
            get_int("channel_max", c.channel_max);
            get_int("num_fp16_res", c.num_fp16_res);
            if (const Json* v = j.find("conv_clamp"); v && !v->is_null()) c.conv_clamp = static_cast<float>(v->as_number());
            if (const Json* v = j.find("lr_multiplier")) c.lr_multiplier = static_cast<float>(v->as_number());
            if (const Json* v = j.find("w_avg_beta")) c.w_avg_beta = static_cast<float>(v->as_number());
            if (const Json* v = j.find("resample_filter")) {
                const Json::Array& taps = v->as_array();
                GANINV_CHECK(static_cast<Index>(taps.size()) <= kMaxFilterTaps, FormatError, "resample_filter has ",
                             taps.size(), " taps, must have 1 to ", kMaxFilterTaps);
                c.resample_filter.clear();
                for (const Json& t : taps) c.resample_filter.push_back(static_cast<float>(t.as_number()));
            }
            if (const Json* v = j.find("num_ws")) stated_num_ws = v->as_int();
        } catch (const FormatError& e) {
            throw FormatError(concat("StyleGAN2 config: ", e.what()));
        }
        c.validate();
        GANINV_CHECK(!stated_num_ws || *stated_num_ws == c.num_ws(), ValueError, "config says num_ws = ",
                     stated_num_ws.value_or(0), " but a ", c.img_resolution, "x", c.img_resolution, " generator has ",
                     c.num_ws());
        return c;
    }

    Json to_json() const {
        Json j{Json::Object{}};
        j.set("architecture", architecture);
        j.set("z_dim", static_cast<std::int64_t>(z_dim));
        j.set("c_dim", static_cast<std::int64_t>(c_dim));
        j.set("w_dim", static_cast<std::int64_t>(w_dim));
        j.set("img_resolution", static_cast<std::int64_t>(img_resolution));
        j.set("img_channels", static_cast<std::int64_t>(img_channels));
        j.set("mapping_layers", static_cast<std::int64_t>(mapping_layers));
        j.set("channel_base", static_cast<std::int64_t>(channel_base));
        j.set("channel_max", static_cast<std::int64_t>(channel_max));
        j.set("num_fp16_res", static_cast<std::int64_t>(num_fp16_res));
        j.set("conv_clamp", conv_clamp ? Json(static_cast<double>(*conv_clamp)) : Json());
        j.set("num_ws", static_cast<std::int64_t>(num_ws()));
        j.set("lr_multiplier", static_cast<double>(lr_multiplier));
        j.set("w_avg_beta", static_cast<double>(w_avg_beta));
        Json::Array f;
        for (float v : resample_filter) f.emplace_back(static_cast<double>(v));
        j.set("resample_filter", f);
        return j;
    }
};

/// One modulated layer of the synthesis network, in execution order.
struct SynthesisLayerSpec {
    std::string name;  ///< "synthesis.b8.conv0", "synthesis.b8.torgb", ...
    Index resolution = 4;
    Index in_channels = 0, out_channels = 0, kernel = 3;
    int up = 1;
    bool is_torgb = false;
    Index w_index = 0;       ///< which of the num_ws vectors feeds its affine
    Index style_offset = 0;  ///< where its in_channels styles start in the flat style vector
    int noise_index = -1;    ///< index among the noise inputs, -1 for ToRGB
};

struct SynthesisPlan {
    std::vector<SynthesisLayerSpec> layers;
    std::vector<Index> noise_resolutions;  ///< one per conv layer, in order
    Index style_dim = 0;                   ///< total length of the flat style vector

    explicit SynthesisPlan(const StyleGAN2Config& c) {
        Index w_idx = 0;
        for (Index res = 4; res <= c.img_resolution; res *= 2) {
            const std::string block = concat("synthesis.b", res);
            const Index out_c = c.channels_at(res);
            auto add = [&](const std::string& suffix, Index in_c, Index oc, Index k, int up, bool torgb, Index w) {
                SynthesisLayerSpec l;
                l.name = block + "." + suffix;
                l.resolution = res;
                l.in_channels = in_c;
                l.out_channels = oc;
                l.kernel = k;
                l.up = up;
                l.is_torgb = torgb;
                l.w_index = w;
                l.style_offset = style_dim;
                style_dim += in_c;
                if (!torgb) {
                    l.noise_index = static_cast<int>(noise_resolutions.size());
                    noise_resolutions.push_back(res);
                }
                layers.push_back(l);
            };
            if (res == 4) {
                add("conv1", out_c, out_c, 3, 1, false, w_idx);
                add("torgb", out_c, c.img_channels, 1, 1, true, w_idx + 1);
                w_idx += 1;
            } else {
                const Index in_c = c.channels_at(res / 2);
                add("conv0", in_c, out_c, 3, 2, false, w_idx);
                add("conv1", out_c, out_c, 3, 1, false, w_idx + 1);
                add("torgb", out_c, c.img_channels, 1, 1, true, w_idx + 2);
                w_idx += 2;
            }
        }
    }
};

}  // namespace ganinv
