/// @file encoder_config.hpp
/// @brief The size of a pSp-style encoder (residual stages, feature pyramid, map-to-style heads)
///        and the generator it is made for, with its JSON form (the `encoder_config` metadata of
///        an encoder file) and presets: a small one for 32x32 grayscale generators, a wider one
///        for large RGB generators. An iterative (ReStyle) encoder reads the image and the current
///        reconstruction side by side and gives a residual to the current code. An e4e encoder
///        gives one w plus per-layer offsets, enabled progressively while it trains.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/json.hpp"
#include "ganinv/core/tensor.hpp"

#include <algorithm>
#include <string>
#include <vector>

namespace ganinv {

struct EncoderConfig {
    // The generator the codes are for: an encoder file is refused for another one. in_channels
    // is the generator's image channels, whatever the network reads (input_channels()).
    Index resolution = 32, in_channels = 1, num_ws = 8, w_dim = 128;
    /// ReStyle (Alaluf et al. 2021): the network reads [image, G(w_t)] (2 * in_channels) and
    /// gives a residual, w_{t+1} = w_t + E([x, G(w_t)]), starting from w_0 = w_avg. Files
    /// written before this field existed load as non-iterative.
    bool iterative = false;
    /// Refinement steps the encoder was trained with: what `encode` and `invert --init encoder:`
    /// run unless told otherwise (always 1 for a non-iterative encoder).
    Index iterations = 1;
    /// ReStyle's encoder bootstrapping: when set, the iterative encoder was trained to refine the
    /// codes of a single-pass encoder, w_0 = E_0(x), not the mean code; this is E_0's fingerprint
    /// (encoder_fingerprint, "fnv1a64:..."), and refinement refuses to start without an E_0.
    std::string bootstrap;
    /// e4e (Tov et al. 2021): the codes are one w (the first head's, from the coarsest map) plus
    /// per-layer offsets from the other heads, w_i = w + delta_i (delta_0 = 0), so that the codes
    /// stay near W, where edits work, unless an offset earns its place in training.
    bool e4e = false;
    /// e4e: the offsets delta_1 .. delta_active_offsets in use; later layers take w alone. Training
    /// raises it one layer at a time; a finished encoder usually has num_ws - 1. 0 for pSp.
    Index active_offsets = 0;
    Index stem_channels = 16;
    /// One stage per entry; each starts with a stride-2 residual block, so stage i works at
    /// resolution / 2^(i + 1). The pyramid takes the last (up to) three stages.
    std::vector<Index> stage_channels{16, 32, 64};
    Index blocks_per_stage = 1;
    Index pyramid_channels = 32;
    /// Pyramid maps are average-pooled to head_grid x head_grid before the heads (1: global
    /// average pooling; > 1 keeps coarse positions, which a small image needs).
    Index head_grid = 4;
    Index head_hidden = 128;
    Index groups = 4;  ///< group-norm groups

    /// Channels the network's stem reads: the image, plus its current reconstruction when iterative.
    Index input_channels() const { return iterative ? 2 * in_channels : in_channels; }
    Index levels() const { return std::min<Index>(3, static_cast<Index>(stage_channels.size())); }
    /// Resolution of the output of stage i.
    Index stage_resolution(Index i) const { return resolution >> (i + 1); }
    /// Pyramid level (0 = finest) that feeds style layer i: pSp's coarse / medium / fine split
    /// (for 18 layers 3/4/11; here the first quarter coarse, the second medium, the rest fine).
    Index level_of_ws(Index i) const {
        const Index L = levels();
        const Index coarse_end = std::max<Index>(1, num_ws / 4), medium_end = std::max(coarse_end + 1, num_ws / 2);
        const Index from_top = i < coarse_end ? 0 : (i < medium_end ? 1 : 2);  // 0 = coarsest
        return std::max<Index>(0, L - 1 - std::min(from_top, L - 1));
    }

    void validate() const {
        GANINV_CHECK(in_channels >= 1 && num_ws >= 1 && w_dim >= 1, ValueError,
                     "encoder config: in_channels, num_ws and w_dim must be positive (", in_channels, ", ", num_ws, ", ",
                     w_dim, ")");
        GANINV_CHECK(iterations >= 1 && (iterative || iterations == 1), ValueError, "encoder config: iterations ",
                     iterations, iterative ? " must be >= 1" : " needs an iterative encoder (a single pass has 1)");
        GANINV_CHECK(iterative || bootstrap.empty(), ValueError,
                     "encoder config: a bootstrapping encoder starts an iterative encoder's refinement; this one is single-pass");
        GANINV_CHECK(active_offsets >= 0 && active_offsets <= (e4e ? num_ws - 1 : 0), ValueError,
                     "encoder config: active_offsets ", active_offsets,
                     e4e ? concat(" must be in [0, num_ws - 1 = ", num_ws - 1, "]") : std::string(" needs an e4e encoder"));
        GANINV_CHECK(!stage_channels.empty() && stage_channels.size() <= 8, ValueError,
                     "encoder config: 1 to 8 stages needed, got ", stage_channels.size());
        GANINV_CHECK(blocks_per_stage >= 1 && head_hidden >= 1 && head_grid >= 1 && groups >= 1, ValueError,
                     "encoder config: blocks_per_stage, head_hidden, head_grid and groups must be positive");
        for (Index c : stage_channels)
            GANINV_CHECK(c >= 1 && c % groups == 0, ValueError, "encoder config: stage width ", c,
                         " is not a positive multiple of the ", groups, " group-norm groups");
        GANINV_CHECK(stem_channels >= 1 && stem_channels % groups == 0, ValueError, "encoder config: stem width ",
                     stem_channels, " is not a positive multiple of the ", groups, " group-norm groups");
        GANINV_CHECK(pyramid_channels >= 1, ValueError, "encoder config: pyramid_channels must be positive");
        const Index S = static_cast<Index>(stage_channels.size());
        GANINV_CHECK(resolution >= 2 && resolution % (Index{1} << S) == 0, ValueError, "encoder config: resolution ",
                     resolution, " must be divisible by 2^", S, " (one halving per stage)");
        for (Index l = 0; l < levels(); ++l) {
            const Index r = stage_resolution(S - levels() + l);
            GANINV_CHECK(r >= head_grid && r % head_grid == 0, ValueError, "encoder config: pyramid level of ", r, "x", r,
                         " does not pool to the ", head_grid, "x", head_grid, " head grid");
        }
    }

    /// A preset for a generator: small for <= 64 px (the 32x32 grayscale demo: ~0.8 M parameters),
    /// pSp-like widths with more stages for large images.
    static EncoderConfig for_generator(Index resolution, Index channels, Index num_ws, Index w_dim) {
        EncoderConfig c;
        c.resolution = resolution;
        c.in_channels = channels;
        c.num_ws = num_ws;
        c.w_dim = w_dim;
        if (resolution > 64) {
            c.stem_channels = 64;
            c.stage_channels = {64, 128, 256, 512};
            while (c.stage_resolution(static_cast<Index>(c.stage_channels.size()) - 1) > 16) c.stage_channels.push_back(512);
            c.blocks_per_stage = 2;
            c.pyramid_channels = 512;
            c.head_hidden = 512;
            c.groups = 32;
        }
        c.validate();
        return c;
    }

    /// The same network with every width (stem, stages, pyramid, head) times `factor` and
    /// `blocks` residual blocks a stage: a larger encoder than the preset for the same generator.
    EncoderConfig widened(Index factor, Index blocks) const {
        GANINV_CHECK(factor >= 1 && factor <= 16, ValueError, "encoder config: width factor ", factor, " outside [1, 16]");
        GANINV_CHECK(blocks >= 1 && blocks <= 8, ValueError, "encoder config: blocks per stage ", blocks, " outside [1, 8]");
        EncoderConfig c = *this;
        c.stem_channels *= factor;
        for (Index& w : c.stage_channels) w *= factor;
        c.pyramid_channels *= factor;
        c.head_hidden *= factor;
        c.blocks_per_stage = blocks;
        c.validate();
        return c;
    }

    Json to_json() const {
        Json j{Json::Object{}};
        j.set("architecture", e4e ? "e4e" : "psp");
        for (auto [k, v] : {std::pair{"resolution", resolution}, {"in_channels", in_channels}, {"num_ws", num_ws},
                            {"w_dim", w_dim}, {"stem_channels", stem_channels}, {"blocks_per_stage", blocks_per_stage},
                            {"pyramid_channels", pyramid_channels}, {"head_grid", head_grid},
                            {"head_hidden", head_hidden}, {"groups", groups}})
            j.set(k, static_cast<std::int64_t>(v));
        Json::Array st;
        for (Index c : stage_channels) st.emplace_back(static_cast<std::int64_t>(c));
        j.set("stage_channels", st);
        j.set("iterative", iterative);
        j.set("iterations", static_cast<std::int64_t>(iterations));
        if (e4e) j.set("active_offsets", static_cast<std::int64_t>(active_offsets));
        if (!bootstrap.empty()) j.set("bootstrap", bootstrap);
        return j;
    }

    /// `where` names the file in messages.
    static EncoderConfig from_json(const Json& j, const std::string& where) {
        EncoderConfig c;
        try {
            GANINV_CHECK(j.is_object(), FormatError, "expected a JSON object");
            const std::string arch = j.at("architecture").as_string();
            GANINV_CHECK(arch == "psp" || arch == "e4e", FormatError, "unknown encoder architecture '", arch,
                         "' (this build knows 'psp' and 'e4e')");
            c.e4e = arch == "e4e";
            if (c.e4e) c.active_offsets = j.at("active_offsets").as_int();
            for (auto [k, dst] : {std::pair{"resolution", &c.resolution}, {"in_channels", &c.in_channels},
                                  {"num_ws", &c.num_ws}, {"w_dim", &c.w_dim}, {"stem_channels", &c.stem_channels},
                                  {"blocks_per_stage", &c.blocks_per_stage}, {"pyramid_channels", &c.pyramid_channels},
                                  {"head_grid", &c.head_grid}, {"head_hidden", &c.head_hidden}, {"groups", &c.groups}})
                *dst = j.at(k).as_int();
            c.stage_channels.clear();
            for (const Json& v : j.at("stage_channels").as_array()) c.stage_channels.push_back(v.as_int());
            // Absent from the files of single-pass encoders written before ReStyle refinement.
            if (const Json* v = j.find("iterative")) c.iterative = v->as_bool();
            if (const Json* v = j.find("iterations")) c.iterations = v->as_int();
            if (const Json* v = j.find("bootstrap")) c.bootstrap = v->as_string();
            c.validate();
        } catch (const Error& e) {
            throw FormatError(concat(where, ": bad encoder_config: ", e.what()));
        }
        return c;
    }
};

}  // namespace ganinv
