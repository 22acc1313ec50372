/// @file stylespace.hpp
/// @brief StyleSpace (Wu, Lischinski, Shechtman, "StyleSpace Analysis: Disentangled Controls for
///        StyleGAN Image Generation", CVPR 2021): edits of single style channels.
///
/// S is the space of the per-layer styles s = affine(w) that modulate every convolution. Single
/// channels of S are far more disentangled than directions in W, so an edit is simply
/// s[layer][channel] += alpha * std(channel), the std measured over sampled styles so that alpha
/// means the same on every channel. Channels are addressed by (layer, channel) with the layer
/// given by name ("synthesis.b16.conv0" or "b16.conv0") or by its index in the synthesis plan
/// (execution order, ToRGB layers included, as in the flat style vector).
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/edit/sampling.hpp"
#include "ganinv/models/stylegan2_config.hpp"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace ganinv::edit {

/// Index of a synthesis layer by full name, short name (without "synthesis.") or decimal index.
inline Index find_style_layer(const SynthesisPlan& plan, const std::string& layer) {
    for (std::size_t i = 0; i < plan.layers.size(); ++i)
        if (plan.layers[i].name == layer || plan.layers[i].name == "synthesis." + layer) return static_cast<Index>(i);
    if (!layer.empty() && layer.size() <= 9 && layer.find_first_not_of("0123456789") == std::string::npos) {
        const Index i = std::stoll(layer);
        GANINV_CHECK(i < static_cast<Index>(plan.layers.size()), ValueError, "style layer index ", i, " outside [0, ",
                     plan.layers.size(), ")");
        return i;
    }
    std::string names;
    for (const auto& l : plan.layers) names += (names.empty() ? "" : ", ") + l.name;
    throw ValueError(concat("unknown style layer '", layer, "' (layers: ", names, ")"));
}

/// Position of (layer, channel) in the flat style vector [style_dim].
inline Index style_channel_index(const SynthesisPlan& plan, Index layer, Index channel) {
    GANINV_CHECK(layer >= 0 && layer < static_cast<Index>(plan.layers.size()), ValueError, "style layer index ",
                 layer, " outside [0, ", plan.layers.size(), ")");
    const SynthesisLayerSpec& l = plan.layers[static_cast<std::size_t>(layer)];
    GANINV_CHECK(channel >= 0 && channel < l.in_channels, ValueError, "style channel ", channel, " outside [0, ",
                 l.in_channels, ") of layer ", l.name);
    return l.style_offset + channel;
}
inline Index style_channel_index(const SynthesisPlan& plan, const std::string& layer, Index channel) {
    return style_channel_index(plan, find_style_layer(plan, layer), channel);
}

/// Per-channel mean and standard deviation of the styles of sampled codes.
struct StyleStats {
    std::vector<float> mean;    ///< [style_dim]
    std::vector<float> stddev;  ///< [style_dim]
    Index samples = 0;
};

/// Style statistics from `count` sampled w (Rng(seed), no truncation by default), accumulated
/// in double around the first sample's styles (a shift that keeps the variance accurate).
template <class G>
StyleStats style_statistics(G& g, Index count, std::uint64_t seed, const SampleOptions& opts = {}) {
    GANINV_CHECK(count >= 2, ValueError, "style_statistics: need at least 2 samples, got ", count);
    const Index sd = g.style_dim();
    std::vector<double> shift, sum(static_cast<std::size_t>(sd), 0.0), sum2(static_cast<std::size_t>(sd), 0.0);
    for_each_sampled_ws(
        g, count, seed,
        [&](const Tensor<float>& ws, Index) {
            const Tensor<float> s = g.backend().download(g.styles(g.backend().upload(ws)));
            if (shift.empty()) shift.assign(s.data(), s.data() + sd);
            for (Index b = 0; b < s.dim(0); ++b)
                for (Index i = 0; i < sd; ++i) {
                    const double v = s[b * sd + i] - shift[static_cast<std::size_t>(i)];
                    sum[static_cast<std::size_t>(i)] += v;
                    sum2[static_cast<std::size_t>(i)] += v * v;
                }
        },
        opts);
    StyleStats st;
    st.samples = count;
    const double n = static_cast<double>(count);
    for (std::size_t i = 0; i < static_cast<std::size_t>(sd); ++i) {
        const double m = sum[i] / n;
        st.mean.push_back(static_cast<float>(shift[i] + m));
        st.stddev.push_back(static_cast<float>(std::sqrt(std::max(0.0, (sum2[i] - n * m * m) / (n - 1.0)))));
    }
    return st;
}

/// styles [N, style_dim] with the one flat channel `index` moved by alpha * stddev[index]
/// (every other value bit-identical).
inline Tensor<float> edit_style_channel(const Tensor<float>& styles, Index index, float alpha, const StyleStats& stats) {
    GANINV_CHECK(styles.rank() == 2 && styles.numel() > 0, ShapeError,
                 "edit_style_channel: expected styles of shape [N, style_dim], got ", shape_to_string(styles.shape()));
    const Index sd = styles.dim(1);
    GANINV_CHECK(static_cast<Index>(stats.stddev.size()) == sd, ShapeError, "edit_style_channel: statistics of ",
                 stats.stddev.size(), " channels for styles of ", sd);
    GANINV_CHECK(index >= 0 && index < sd, ValueError, "edit_style_channel: channel index ", index, " outside [0, ",
                 sd, ")");
    GANINV_CHECK(std::isfinite(alpha), ValueError, "edit_style_channel: alpha must be finite");
    Tensor<float> out = styles;
    const float step = alpha * stats.stddev[static_cast<std::size_t>(index)];
    for (Index b = 0; b < styles.dim(0); ++b) out[b * sd + index] += step;
    return out;
}

/// Same, with the channel given as (layer name or index, channel within the layer).
inline Tensor<float> edit_style_channel(const Tensor<float>& styles, const SynthesisPlan& plan, const std::string& layer,
                                        Index channel, float alpha, const StyleStats& stats) {
    GANINV_CHECK(styles.rank() == 2 && styles.dim(1) == plan.style_dim, ShapeError, "edit_style_channel: styles of shape ",
                 shape_to_string(styles.shape()), " do not match this generator's style_dim ", plan.style_dim);
    return edit_style_channel(styles, style_channel_index(plan, layer, channel), alpha, stats);
}

}  // namespace ganinv::edit
