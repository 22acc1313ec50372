/// @file psp_encoder.hpp
/// @brief A pSp-style encoder on the CPU (Richardson et al. 2021): residual stages (group norm,
///        PReLU, stride-2 down-sampling with a 1x1 shortcut), a feature pyramid over the last
///        three stages (1x1 laterals + nearest up-sampling), and one map-to-style head per style
///        layer (pyramid map pooled to a small grid -> linear -> lrelu -> linear) giving W+ codes
///        [N, num_ws, w_dim] as offsets from the generator's mean w (or, for an iterative ReStyle
///        encoder, from the current codes); with `EncoderConfig::e4e`, e4e's codes instead: the
///        first head's w on every layer plus the other heads' per-layer offsets, with the offsets'
///        norm penalty. Forward, and backward with respect to every weight and to the input image.
///
/// Group norm replaces pSp's batch norm so that an image's code never depends on its batch.
/// Weights live in one flat [1, P] tensor (one Adam row); param_specs() names the slices.
#pragma once

#include "ganinv/backend/cpu.hpp"
#include "ganinv/core/rng.hpp"
#include "ganinv/models/encoder_blocks.hpp"
#include "ganinv/models/encoder_config.hpp"
#include "ganinv/nn/global_pool.hpp"
#include "ganinv/nn/linear.hpp"
#include "ganinv/nn/pooling.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace ganinv {

struct EncoderParamSpec {
    std::string name;
    Shape shape;
    Index offset = 0;
};

class PspEncoder {
public:
    using backend_type = Cpu;
    using Buffer = Tensor<float>;

    /// Every activation the backward reads; filled by forward(), reusable across calls.
    struct Cache {
        Index batch = 0;
        Tensor<float> stem_x, stem_c, stem_n;
        nn::GroupNormStats stem_s;
        std::vector<encoder::ResBlockCache> blocks;
        std::vector<Tensor<float>> feats, pyramid, pooled;  // per pyramid level, finest first
        std::vector<Tensor<float>> hidden, delta;           // per head
    };

    /// Random weights (He-normal convs, unit norms, PReLU slopes 0.25) from `seed`; w_avg zero.
    explicit PspEncoder(EncoderConfig config, std::uint64_t seed = 0) : config_(std::move(config)) {
        config_.validate();
        build();
        params_ = Tensor<float>({1, total_}, 0.0f);
        Rng rng(seed);
        for (const auto& s : specs_) init_param(s, rng);
        w_avg_ = Tensor<float>({config_.w_dim}, 0.0f);
    }

    const EncoderConfig& config() const { return config_; }
    Index num_ws() const { return config_.num_ws; }
    Index w_dim() const { return config_.w_dim; }
    Index resolution() const { return config_.resolution; }
    /// Channels forward() reads: the image's, twice that for an iterative encoder ([x, G(w_t)]).
    Index in_channels() const { return config_.input_channels(); }
    Index image_channels() const { return config_.in_channels; }
    bool iterative() const { return config_.iterative; }
    Index num_params() const { return params_.numel(); }
    const std::vector<EncoderParamSpec>& param_specs() const { return specs_; }
    Tensor<float>& params() { return params_; }
    const Tensor<float>& params() const { return params_; }
    /// The generator's mean w: codes are w_avg + the heads' outputs (a fixed buffer, not trained).
    const Tensor<float>& w_avg() const { return w_avg_; }
    /// e4e: how many per-layer offsets are in use (training raises it progressively).
    void set_active_offsets(Index active) {
        GANINV_CHECK(config_.e4e && active >= 0 && active < config_.num_ws, ValueError,
                     "PspEncoder::set_active_offsets: ", active, config_.e4e ? concat(" is outside [0, ", config_.num_ws - 1, "]")
                                                                              : std::string(" for an encoder that is not e4e"));
        config_.active_offsets = active;
    }
    /// e4e's offset regulariser of the last forward(): the batch mean of sum_i ||delta_i||_2 over
    /// the active offsets (0 for pSp). backward() takes its gradient with `offset_weight`.
    double offset_penalty(const Cache& k) const {
        if (!config_.e4e) return 0.0;
        double sum = 0;
        for (Index i = 1; i <= config_.active_offsets; ++i)
            for (Index n = 0; n < k.batch; ++n) sum += offset_norm(k, i, n);
        return sum / static_cast<double>(k.batch);
    }

    void set_w_avg(const Tensor<float>& w) {
        GANINV_CHECK(w.numel() == config_.w_dim, ShapeError, "PspEncoder::set_w_avg: ", w.numel(), " values for w_dim ",
                     config_.w_dim);
        w_avg_ = Tensor<float>({config_.w_dim}, std::vector<float>(w.values().begin(), w.values().end()));
    }

    /// Records the single-pass encoder (its encoder_fingerprint) whose codes this iterative one is
    /// trained to refine (EncoderConfig::bootstrap); empty: the mean code.
    void set_bootstrap(std::string fingerprint) {
        GANINV_CHECK(config_.iterative || fingerprint.empty(), ValueError,
                     "PspEncoder::set_bootstrap: a single-pass encoder refines nothing");
        config_.bootstrap = std::move(fingerprint);
    }

    /// A ReStyle encoder grown from a trained single-pass one: the same network reading
    /// [x, G(w_t)], every weight copied and the stem's reconstruction inputs zero. Its first pass
    /// from the mean code therefore gives exactly the single-pass codes, and training only has to
    /// teach the later passes to read the reconstruction (cheaper than ReStyle from scratch).
    static PspEncoder iterative_from(const PspEncoder& single, Index iterations) {
        GANINV_CHECK(!single.iterative(), ValueError,
                     "PspEncoder::iterative_from: the encoder is iterative already (it reads [x, G(w)])");
        GANINV_CHECK(iterations >= 1, ValueError, "PspEncoder::iterative_from: iterations must be >= 1, got ", iterations);
        EncoderConfig c = single.config();
        c.iterative = true;
        c.iterations = iterations;
        c.bootstrap.clear();
        PspEncoder e(c);
        e.w_avg_ = single.w_avg_;
        const auto& from = single.specs_;
        GANINV_CHECK(from.size() == e.specs_.size(), ValueError, "PspEncoder::iterative_from: layouts differ");
        for (std::size_t i = 0; i < from.size(); ++i) {
            const EncoderParamSpec &s = from[i], &d = e.specs_[i];
            const float* src = single.params_.data() + s.offset;
            float* dst = e.params_.data() + d.offset;
            if (s.name != "stem.conv.weight") {
                std::copy(src, src + shape_numel(s.shape), dst);
                continue;
            }
            // [cout, cin, k, k] -> [cout, 2 cin, k, k]: the image's taps first, the reconstruction's zero
            const Index per_out_src = shape_numel(s.shape) / s.shape[0], per_out_dst = shape_numel(d.shape) / d.shape[0];
            for (Index o = 0; o < s.shape[0]; ++o) {
                std::copy(src + o * per_out_src, src + (o + 1) * per_out_src, dst + o * per_out_dst);
                std::fill(dst + o * per_out_dst + per_out_src, dst + (o + 1) * per_out_dst, 0.0f);
            }
        }
        return e;
    }

    /// codes [N, num_ws, w_dim] from images [N, in_channels(), R, R] in [-1, 1]: `base` + the
    /// heads' outputs, where base is [N, num_ws, w_dim] (an iterative encoder's current codes)
    /// or, when null, w_avg on every layer. The codes' gradient is the heads' (base is a constant).
    /// e4e: layer i gets base + head 0's output + (head i's offset if i <= active_offsets).
    Tensor<float> forward(const Tensor<float>& images, Cache* cache = nullptr, const Tensor<float>* base = nullptr) const {
        const EncoderConfig& c = config_;
        GANINV_CHECK(images.rank() == 4 && images.dim(0) >= 1, ShapeError, "PspEncoder::forward: images must be [N, ",
                     in_channels(), ", ", c.resolution, ", ", c.resolution, "], got ", shape_to_string(images.shape()));
        expect_shape(images, {images.dim(0), in_channels(), c.resolution, c.resolution}, "PspEncoder::forward: images");
        const Index N = images.dim(0), L = c.levels();
        if (base) expect_shape(*base, {N, c.num_ws, c.w_dim}, "PspEncoder::forward: base codes");
        const float* P = params_.data();
        Cache local;
        Cache& k = cache ? *cache : local;
        k.batch = N;
        k.stem_x = images;
        k.stem_c = encoder::conv_forward(P, stem_conv_, k.stem_x, c.resolution);
        k.stem_n = encoder::norm_forward(P, stem_norm_, k.stem_c, &k.stem_s);
        Tensor<float> h(k.stem_n.shape());
        nn::prelu_forward(k.stem_n.data(), P + stem_prelu_, N, c.stem_channels, c.resolution * c.resolution, h.data());
        k.blocks.resize(blocks_.size());
        k.feats.clear();
        for (std::size_t b = 0; b < blocks_.size(); ++b) {
            const Index res = h.dim(2);
            h = encoder::block_forward(P, blocks_[b], std::move(h), res, k.blocks[b]);
            if (feeds_pyramid(static_cast<Index>(b))) k.feats.push_back(h);
        }
        // Pyramid, coarsest first: p_l = lateral_l(f_l) + up2(p_{l+1}).
        k.pyramid.assign(static_cast<std::size_t>(L), {});
        for (Index l = L - 1; l >= 0; --l) {
            const Index r = level_resolution(l);
            Tensor<float> pl = encoder::conv_forward(P, laterals_[static_cast<std::size_t>(l)], k.feats[static_cast<std::size_t>(l)], r);
            if (l + 1 < L)
                nn::upsample_nearest2x_forward(k.pyramid[static_cast<std::size_t>(l + 1)].data(), N * c.pyramid_channels,
                                               r / 2, r / 2, pl.data(), true);
            k.pyramid[static_cast<std::size_t>(l)] = std::move(pl);
        }
        k.pooled.assign(static_cast<std::size_t>(L), {});
        for (Index l = 0; l < L; ++l) k.pooled[static_cast<std::size_t>(l)] = pool(k.pyramid[static_cast<std::size_t>(l)], l);
        Tensor<float> codes({N, c.num_ws, c.w_dim});
        k.hidden.assign(static_cast<std::size_t>(c.num_ws), {});
        k.delta.assign(static_cast<std::size_t>(c.num_ws), {});
        for (Index i = 0; i < c.num_ws; ++i) {
            if (!head_active(i)) continue;  // an e4e offset not yet enabled: never computed
            const Head& hd = heads_[static_cast<std::size_t>(i)];
            const Tensor<float>& x = k.pooled[static_cast<std::size_t>(c.level_of_ws(i))];
            Tensor<float>& hid = k.hidden[static_cast<std::size_t>(i)];
            Tensor<float>& del = k.delta[static_cast<std::size_t>(i)];
            hid = Tensor<float>({N, c.head_hidden});
            del = Tensor<float>({N, c.w_dim});
            nn::linear_forward(x.data(), N, P + hd.w1, P + hd.b1, head1(), hid.data());
            nn::linear_forward(hid.data(), N, P + hd.w2, P + hd.b2, head2(), del.data());
        }
        for (Index i = 0; i < c.num_ws; ++i) {
            const float* own = head_active(i) ? k.delta[static_cast<std::size_t>(i)].data() : nullptr;
            const float* shared = c.e4e && i > 0 ? k.delta[0].data() : nullptr;  // e4e's single w
            for (Index n = 0; n < N; ++n)
                for (Index d = 0; d < c.w_dim; ++d) {
                    const Index at = (n * c.num_ws + i) * c.w_dim + d, nd = n * c.w_dim + d;
                    codes[at] = (base ? (*base)[at] : w_avg_[d]) + (own ? own[nd] : 0.0f) + (shared ? shared[nd] : 0.0f);
                }
        }
        return codes;
    }

    /// Backward of forward() given dL/dcodes [N, num_ws, w_dim] (plus, for e4e, `offset_weight`
    /// times offset_penalty()). Accumulates dL/dparams into grad_params ([1, P], may be null);
    /// returns dL/dimages when `want_input_grad`, else empty.
    Tensor<float> backward(const Cache& k, const Tensor<float>& grad_codes, Tensor<float>* grad_params,
                           bool want_input_grad = true, double offset_weight = 0.0) const {
        const EncoderConfig& c = config_;
        const Index N = k.batch, L = c.levels();
        GANINV_CHECK(N >= 1 && k.blocks.size() == blocks_.size(), ValueError,
                     "PspEncoder::backward: the cache holds no forward pass of this encoder");
        expect_shape(grad_codes, {N, c.num_ws, c.w_dim}, "PspEncoder::backward: grad_codes");
        if (grad_params) expect_shape(*grad_params, {1, num_params()}, "PspEncoder::backward: grad_params");
        const float* P = params_.data();
        float* G = grad_params ? grad_params->data() : nullptr;
        // Heads: each pooled level collects the input gradients of its heads.
        std::vector<Tensor<float>> g_pool(static_cast<std::size_t>(L));
        for (Index l = 0; l < L; ++l) g_pool[static_cast<std::size_t>(l)] = Tensor<float>(k.pooled[static_cast<std::size_t>(l)].shape(), 0.0f);
        for (Index i = 0; i < c.num_ws; ++i) {
            if (!head_active(i)) continue;
            const Head& hd = heads_[static_cast<std::size_t>(i)];
            const auto l = static_cast<std::size_t>(c.level_of_ws(i));
            const auto si = static_cast<std::size_t>(i);
            Tensor<float> gd({N, c.w_dim}, 0.0f);
            // e4e's w (head 0) reaches every layer; a pSp head or an e4e offset only its own.
            const Index from = c.e4e && i == 0 ? 0 : i, to = c.e4e && i == 0 ? c.num_ws : i + 1;
            for (Index n = 0; n < N; ++n)
                for (Index j = from; j < to; ++j)
                    for (Index d = 0; d < c.w_dim; ++d) gd[n * c.w_dim + d] += grad_codes[(n * c.num_ws + j) * c.w_dim + d];
            if (c.e4e && i > 0 && offset_weight != 0)
                for (Index n = 0; n < N; ++n) {  // d||delta||/d delta = delta / ||delta|| (0 at 0)
                    const double norm = offset_norm(k, i, n);
                    if (norm == 0) continue;
                    const double scale = offset_weight / (static_cast<double>(N) * norm);
                    for (Index d = 0; d < c.w_dim; ++d)
                        gd[n * c.w_dim + d] += static_cast<float>(scale * k.delta[si][n * c.w_dim + d]);
                }
            Tensor<float> gh({N, c.head_hidden}), gx(k.pooled[l].shape());
            nn::linear_backward(k.hidden[si].data(), N, P + hd.w2, k.delta[si].data(), gd.data(), head2(), gh.data(),
                                encoder::offset_or_null(G, hd.w2), encoder::offset_or_null(G, hd.b2));
            nn::linear_backward(k.pooled[l].data(), N, P + hd.w1, k.hidden[si].data(), gh.data(), head1(), gx.data(),
                                encoder::offset_or_null(G, hd.w1), encoder::offset_or_null(G, hd.b1));
            for (Index j = 0; j < gx.numel(); ++j) g_pool[l][j] += gx[j];
        }
        // Pyramid, finest first: a level's gradient also reaches the coarser level it up-sampled.
        std::vector<Tensor<float>> g_pyr(static_cast<std::size_t>(L)), g_feat(static_cast<std::size_t>(L));
        for (Index l = 0; l < L; ++l) g_pyr[static_cast<std::size_t>(l)] = pool_backward(g_pool[static_cast<std::size_t>(l)], l);
        for (Index l = 0; l < L; ++l) {
            const auto sl = static_cast<std::size_t>(l);
            const Index r = level_resolution(l);
            if (l + 1 < L) {
                Tensor<float> up(g_pyr[sl + 1].shape());
                nn::upsample_nearest2x_backward(g_pyr[sl].data(), N * c.pyramid_channels, r / 2, r / 2, up.data());
                for (Index j = 0; j < up.numel(); ++j) g_pyr[sl + 1][j] += up[j];
            }
            g_feat[sl] = encoder::conv_backward(P, laterals_[sl], k.feats[sl], g_pyr[sl], r, G, true);
        }
        // Stages, last first; a block that feeds the pyramid adds its feature's gradient.
        Tensor<float> gh;
        Index level = L - 1;
        for (Index b = static_cast<Index>(blocks_.size()) - 1; b >= 0; --b) {
            if (feeds_pyramid(b)) {
                const Tensor<float>& gf = g_feat[static_cast<std::size_t>(level--)];
                if (gh.empty()) gh = gf;
                else
                    for (Index j = 0; j < gh.numel(); ++j) gh[j] += gf[j];
            }
            gh = encoder::block_backward(P, blocks_[static_cast<std::size_t>(b)], k.blocks[static_cast<std::size_t>(b)], gh,
                                         G, true);
        }
        const Index HW = c.resolution * c.resolution;
        Tensor<float> gn(gh.shape());
        nn::prelu_backward(k.stem_n.data(), P + stem_prelu_, gh.data(), N, c.stem_channels, HW, gn.data(),
                           encoder::offset_or_null(G, stem_prelu_));
        const Tensor<float> gc = encoder::norm_backward(P, stem_norm_, k.stem_c, k.stem_s, gn, G);
        return encoder::conv_backward(P, stem_conv_, k.stem_x, gc, c.resolution, G, want_input_grad);
    }

    // ---- The layout, read-only: what a twin on another backend (PspEncoderCuda) needs to run
    // the same function on the same flat parameter vector. Offsets index params().
    struct Head {
        Index w1 = 0, b1 = 0, w2 = 0, b2 = 0;  ///< offsets of fc1/fc2 weight and bias
    };
    const encoder::ConvLayer& stem_conv() const { return stem_conv_; }
    const encoder::NormLayer& stem_norm() const { return stem_norm_; }
    Index stem_prelu() const { return stem_prelu_; }
    const std::vector<encoder::ResBlock>& blocks() const { return blocks_; }
    const std::vector<encoder::ConvLayer>& laterals() const { return laterals_; }  ///< finest level first
    const std::vector<Head>& heads() const { return heads_; }                       ///< one per style layer

    nn::LinearParams head1() const {
        const Index in = config_.pyramid_channels * config_.head_grid * config_.head_grid;
        return nn::LinearParams::make(in, config_.head_hidden, 1.0f, nn::Activation::lrelu);
    }
    nn::LinearParams head2() const {
        return nn::LinearParams::make(config_.head_hidden, config_.w_dim, 1.0f, nn::Activation::linear);
    }
    /// A pSp head always; an e4e head when it is the w or an enabled offset.
    bool head_active(Index i) const { return !config_.e4e || i <= config_.active_offsets; }
    /// Resolution of pyramid level l (0 = finest).
    Index level_resolution(Index l) const {
        return config_.stage_resolution(static_cast<Index>(config_.stage_channels.size()) - config_.levels() + l);
    }
    /// True for the last block of each of the last `levels` stages.
    bool feeds_pyramid(Index b) const {
        const Index S = static_cast<Index>(config_.stage_channels.size());
        return (b + 1) % config_.blocks_per_stage == 0 && b / config_.blocks_per_stage >= S - config_.levels();
    }

private:
    double offset_norm(const Cache& k, Index i, Index n) const {
        const float* v = k.delta[static_cast<std::size_t>(i)].data() + n * config_.w_dim;
        double s = 0;
        for (Index d = 0; d < config_.w_dim; ++d) s += static_cast<double>(v[d]) * v[d];
        return std::sqrt(s);
    }

    Index add(const std::string& name, Shape shape) {
        const Index off = total_;
        total_ += shape_numel(shape);
        specs_.push_back({name, std::move(shape), off});
        return off;
    }
    encoder::ConvLayer add_conv(const std::string& name, Index cin, Index cout, Index k, Index stride) {
        encoder::ConvLayer l{0, 0, cin, cout, k, stride};
        l.w = add(name + ".weight", {cout, cin, k, k});
        l.b = add(name + ".bias", {cout});
        return l;
    }
    encoder::NormLayer add_norm(const std::string& name, Index ch) {
        const Index g = add(name + ".gamma", {ch});
        return {g, add(name + ".beta", {ch}), ch, config_.groups};
    }

    void build() {
        const EncoderConfig& c = config_;
        stem_conv_ = add_conv("stem.conv", c.input_channels(), c.stem_channels, 3, 1);
        stem_norm_ = add_norm("stem.norm", c.stem_channels);
        stem_prelu_ = add("stem.prelu", {c.stem_channels});
        Index cin = c.stem_channels;
        for (std::size_t s = 0; s < c.stage_channels.size(); ++s)
            for (Index j = 0; j < c.blocks_per_stage; ++j) {
                const std::string n = concat("stage", s, ".block", j);
                const Index cout = c.stage_channels[s], stride = j == 0 ? 2 : 1;
                encoder::ResBlock b;
                b.conv1 = add_conv(n + ".conv1", cin, cout, 3, stride);
                b.norm1 = add_norm(n + ".norm1", cout);
                b.prelu = add(n + ".prelu", {cout});
                b.conv2 = add_conv(n + ".conv2", cout, cout, 3, 1);
                b.norm2 = add_norm(n + ".norm2", cout);
                b.has_shortcut = stride != 1 || cin != cout;
                if (b.has_shortcut) b.shortcut = add_conv(n + ".shortcut", cin, cout, 1, stride);
                blocks_.push_back(b);
                cin = cout;
            }
        const Index S = static_cast<Index>(c.stage_channels.size());
        for (Index l = 0; l < c.levels(); ++l)
            laterals_.push_back(add_conv(concat("pyramid.lateral", l), c.stage_channels[static_cast<std::size_t>(S - c.levels() + l)],
                                         c.pyramid_channels, 1, 1));
        const Index head_in = c.pyramid_channels * c.head_grid * c.head_grid;
        for (Index i = 0; i < c.num_ws; ++i) {
            Head h;
            h.w1 = add(concat("head", i, ".fc1.weight"), {c.head_hidden, head_in});
            h.b1 = add(concat("head", i, ".fc1.bias"), {c.head_hidden});
            h.w2 = add(concat("head", i, ".fc2.weight"), {c.w_dim, c.head_hidden});
            h.b2 = add(concat("head", i, ".fc2.bias"), {c.w_dim});
            heads_.push_back(h);
        }
    }

    void init_param(const EncoderParamSpec& s, Rng& rng) {
        float* dst = params_.data() + s.offset;
        const Index n = shape_numel(s.shape);
        const auto ends_with = [&](const char* suffix) { return s.name.ends_with(suffix); };
        float value = 0.0f, std_dev = 0.0f;
        if (ends_with(".gamma")) value = 1.0f;
        else if (ends_with(".prelu")) value = 0.25f;
        else if (s.name.starts_with("head") && ends_with(".weight")) {
            // Linear layers scale by 1/sqrt(fan-in) at run time (equalised learning rate);
            // the last layer starts small so that the first codes stay near w_avg.
            std_dev = ends_with("fc2.weight") ? 0.1f : 1.0f;
        } else if (ends_with(".weight") && s.shape.size() == 4) {
            std_dev = std::sqrt(2.0f / static_cast<float>(s.shape[1] * s.shape[2] * s.shape[3]));  // He
        }
        for (Index i = 0; i < n; ++i) dst[i] = std_dev > 0 ? static_cast<float>(rng.normal()) * std_dev : value;
    }

    /// [N, F, r, r] -> [N, F * g * g]: average over (r/g)^2 windows (global average when g = 1).
    Tensor<float> pool(const Tensor<float>& x, Index level) const {
        const Index r = level_resolution(level), g = config_.head_grid, planes = x.dim(0) * config_.pyramid_channels;
        Tensor<float> y({x.dim(0), config_.pyramid_channels * g * g});
        if (g == 1) nn::global_avg_pool_forward(x.data(), planes, r * r, y.data());
        else if (g == r) std::copy(x.data(), x.data() + x.numel(), y.data());
        else nn::avg_pool2d_forward(x.data(), nn::Pool2dShape{planes, r, r, r / g, r / g}, y.data());
        return y;
    }
    Tensor<float> pool_backward(const Tensor<float>& gy, Index level) const {
        const Index r = level_resolution(level), g = config_.head_grid, planes = gy.dim(0) * config_.pyramid_channels;
        Tensor<float> gx({gy.dim(0), config_.pyramid_channels, r, r});
        if (g == 1) nn::global_avg_pool_backward(gy.data(), planes, r * r, gx.data());
        else if (g == r) std::copy(gy.data(), gy.data() + gy.numel(), gx.data());
        else nn::avg_pool2d_backward(gy.data(), nn::Pool2dShape{planes, r, r, r / g, r / g}, gx.data());
        return gx;
    }

    EncoderConfig config_;
    std::vector<EncoderParamSpec> specs_;
    Index total_ = 0;
    Tensor<float> params_, w_avg_;
    encoder::ConvLayer stem_conv_;
    encoder::NormLayer stem_norm_;
    Index stem_prelu_ = 0;
    std::vector<encoder::ResBlock> blocks_;
    std::vector<encoder::ConvLayer> laterals_;
    std::vector<Head> heads_;
};

}  // namespace ganinv
