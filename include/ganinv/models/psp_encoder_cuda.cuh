/// @file psp_encoder_cuda.cuh
/// @brief `PspEncoderCuda`: the pSp / e4e / ReStyle encoder of models/psp_encoder.hpp on the GPU,
///        the same function on the same flat [1, P] weights (uploaded from a `PspEncoder`, whose
///        layout it reads): convolutions through cuDNN (forward, backward-data, backward-filter;
///        cuda/cudnn_conv.hpp), group norm, PReLU, pyramid, pooling and the codes' assembly in
///        cuda/encoder_kernels.cuh, the heads through StyleGAN2's linear layer (cuda/linear.cuh).
///        Forward, and backward with respect to every weight and to the input image.
///
/// Every launch, copy and cuDNN call goes to the backend's stream; buffers come from its pool.
/// Nothing waits for the stream except offset_penalty (it reads back the e4e offsets' norms)
/// and to_host. Float32 throughout: the convolutions pin FMA math (no TF32) unless the backend
/// was made with Precision::tf32, so that the CPU and GPU encoders agree to float rounding
/// (a trained file gives the same codes on both). Parameter gradients are deterministic: cuDNN's
/// deterministic weight-gradient algorithms and fixed-order reductions (no atomics) in ours; the
/// heads' linear backward (cuda/linear.cuh) sums in a fixed order as well.
#pragma once

#include "ganinv/backend/cuda.cuh"
#include "ganinv/concepts/encoder.hpp"
#include "ganinv/cuda/cudnn_conv.hpp"
#include "ganinv/cuda/encoder_kernels.cuh"
#include "ganinv/cuda/linear.cuh"
#include "ganinv/models/psp_encoder.hpp"

#include <cstring>
#include <memory>
#include <vector>

namespace ganinv {

class PspEncoderCuda {
public:
    using backend_type = Cuda;
    using Buffer = cuda::DeviceTensor;

    /// What a residual block's backward reads.
    struct BlockCache {
        Buffer x, c1, n1, a1, c2;
        Buffer mean1, rstd1, mean2, rstd2;  ///< group-norm statistics, [N * groups]
        Index res = 0;                      ///< input resolution
    };
    /// Every activation the backward reads (device buffers), filled by forward(); reusable.
    struct Cache {
        Index batch = 0;
        Index active_offsets = 0;  ///< e4e: the offsets the forward computed
        Buffer stem_x, stem_c, stem_n, stem_mean, stem_rstd;
        std::vector<BlockCache> blocks;
        std::vector<Buffer> feats, pyramid, pooled;  ///< per pyramid level, finest first
        Buffer hidden, delta;  ///< [num_ws, N, head_hidden], [num_ws, N, w_dim]; disabled e4e offsets unset
        Buffer norms;          ///< e4e: ||delta_i[n]|| for i = 1 .. active_offsets, doubles (two floats each)
    };

    /// Uploads host's weights and w_avg; keeps a copy of its config and layout. Needs cuDNN.
    PspEncoderCuda(const PspEncoder& host, const Cuda& backend)
        : backend_(backend), layout_(host),
          dnn_(std::make_shared<cuda::CudnnContext>(backend.stream(), backend.empty(Shape{0}).pool(),
                                                    backend.options().precision == cuda::Precision::tf32
                                                        ? cuda::Precision::tf32
                                                        : cuda::Precision::fp32)) {
        params_ = backend_.upload(host.params());
        w_avg_ = backend_.upload(host.w_avg());
        layout_.params() = Tensor<float>();  // the device copy holds the weights; the host copy is the layout
    }

    const Cuda& backend() const { return backend_; }
    const EncoderConfig& config() const { return layout_.config(); }
    Index num_ws() const { return config().num_ws; }
    Index w_dim() const { return config().w_dim; }
    Index resolution() const { return config().resolution; }
    Index in_channels() const { return config().input_channels(); }
    Index image_channels() const { return config().in_channels; }
    bool iterative() const { return config().iterative; }
    Index num_params() const { return params_.numel(); }
    Buffer& params() { return params_; }
    const Buffer& params() const { return params_; }
    const Buffer& w_avg() const { return w_avg_; }

    void set_w_avg(const Buffer& w) {
        GANINV_CHECK(w.numel() == w_dim(), ShapeError, "PspEncoderCuda::set_w_avg: ", w.numel(), " values for w_dim ",
                     w_dim());
        Buffer copy = backend_.empty({w_dim()});
        backend_.copy(w.data(), copy.data(), w_dim());
        w_avg_ = std::move(copy);
    }
    /// e4e: how many per-layer offsets are in use (the CPU's checks and messages).
    void set_active_offsets(Index active) { layout_.set_active_offsets(active); }
    void set_bootstrap(std::string fingerprint) { layout_.set_bootstrap(std::move(fingerprint)); }

    /// codes [N, num_ws, w_dim] from images [N, in_channels(), R, R]: `base` ([N, num_ws, w_dim],
    /// an iterative encoder's current codes) or w_avg, plus the heads' outputs (PspEncoder::forward).
    Buffer forward(const Buffer& images, Cache* cache = nullptr, const Buffer* base = nullptr) const {
        const EncoderConfig& c = config();
        GANINV_CHECK(images.rank() == 4 && images.dim(0) >= 1, ShapeError, "PspEncoderCuda::forward: images must be [N, ",
                     in_channels(), ", ", c.resolution, ", ", c.resolution, "], got ", shape_to_string(images.shape()));
        expect_shape(images, {images.dim(0), in_channels(), c.resolution, c.resolution}, "PspEncoderCuda::forward: images");
        const Index N = images.dim(0), L = c.levels(), F = c.pyramid_channels;
        if (base) expect_shape(*base, {N, c.num_ws, c.w_dim}, "PspEncoderCuda::forward: base codes");
        const float* P = params_.data();
        const cudaStream_t s = backend_.stream();
        Cache local;
        Cache& k = cache ? *cache : local;
        k.batch = N;
        k.active_offsets = c.active_offsets;
        k.stem_x = images;
        k.stem_c = conv_forward(P, layout_.stem_conv(), k.stem_x, c.resolution);
        k.stem_n = norm_forward(P, layout_.stem_norm(), k.stem_c, k.stem_mean, k.stem_rstd);
        Buffer h = backend_.empty(k.stem_n.shape());
        cuda::enc::prelu_forward(k.stem_n.data(), P + layout_.stem_prelu(), N, c.stem_channels,
                                 c.resolution * c.resolution, h.data(), s);
        const auto& blocks = layout_.blocks();
        k.blocks.resize(blocks.size());
        k.feats.clear();
        for (std::size_t b = 0; b < blocks.size(); ++b) {
            const Index res = h.dim(2);
            h = block_forward(P, blocks[b], std::move(h), res, k.blocks[b]);
            if (layout_.feeds_pyramid(static_cast<Index>(b))) k.feats.push_back(h);
        }
        // Pyramid, coarsest first: p_l = lateral_l(f_l) + up2(p_{l+1}).
        k.pyramid.assign(static_cast<std::size_t>(L), Buffer{});
        for (Index l = L - 1; l >= 0; --l) {
            const auto sl = static_cast<std::size_t>(l);
            const Index r = layout_.level_resolution(l);
            Buffer pl = conv_forward(P, layout_.laterals()[sl], k.feats[sl], r);
            if (l + 1 < L) cuda::enc::upsample2x_add(k.pyramid[sl + 1].data(), N * F, r / 2, r / 2, pl.data(), s);
            k.pyramid[sl] = std::move(pl);
        }
        k.pooled.assign(static_cast<std::size_t>(L), Buffer{});
        for (Index l = 0; l < L; ++l) k.pooled[static_cast<std::size_t>(l)] = pool(k.pyramid[static_cast<std::size_t>(l)], l);
        // Heads: head i's hidden layer and output are slot i of [num_ws, N, ...].
        k.hidden = backend_.empty({c.num_ws, N, c.head_hidden});
        k.delta = backend_.empty({c.num_ws, N, c.w_dim});
        const nn::LinearParams p1 = layout_.head1(), p2 = layout_.head2();
        for (Index i = 0; i < active_heads(); ++i) {
            const PspEncoder::Head& hd = layout_.heads()[static_cast<std::size_t>(i)];
            const Buffer& x = k.pooled[static_cast<std::size_t>(c.level_of_ws(i))];
            float* hid = k.hidden.data() + i * N * c.head_hidden;
            float* del = k.delta.data() + i * N * c.w_dim;
            cuda::linear_forward(x.data(), N, P + hd.w1, P + hd.b1, p1, hid, s);
            cuda::linear_forward(hid, N, P + hd.w2, P + hd.b2, p2, del, s);
        }
        k.norms = Buffer{};
        if (c.e4e && c.active_offsets > 0) {
            k.norms = backend_.empty({2 * c.active_offsets * N});
            cuda::enc::offset_norms(k.delta.data(), N, c.w_dim, c.active_offsets, doubles(k.norms), s);
        }
        Buffer codes = backend_.empty({N, c.num_ws, c.w_dim});
        cuda::enc::assemble_codes(base ? base->data() : nullptr, w_avg_.data(), k.delta.data(), N, c.num_ws, c.w_dim,
                                  c.e4e, c.active_offsets, codes.data(), s);
        return codes;
    }

    /// Backward of forward() given dL/dcodes (plus, for e4e, `offset_weight` times
    /// offset_penalty()): dL/dparams accumulate into grad_params ([1, P] on the device, may be
    /// null); returns dL/dimages when `want_input_grad`, else an empty buffer.
    Buffer backward(const Cache& k, const Buffer& grad_codes, Buffer* grad_params, bool want_input_grad = true,
                    double offset_weight = 0.0) const {
        const EncoderConfig& c = config();
        const Index N = k.batch, L = c.levels(), F = c.pyramid_channels;
        const auto& blocks = layout_.blocks();
        GANINV_CHECK(N >= 1 && k.blocks.size() == blocks.size(), ValueError,
                     "PspEncoderCuda::backward: the cache holds no forward pass of this encoder");
        GANINV_CHECK(!c.e4e || c.active_offsets <= k.active_offsets, ValueError, "PspEncoderCuda::backward: ",
                     c.active_offsets, " e4e offsets active, but the cached forward computed ", k.active_offsets);
        expect_shape(grad_codes, {N, c.num_ws, c.w_dim}, "PspEncoderCuda::backward: grad_codes");
        if (grad_params) expect_shape(*grad_params, {1, num_params()}, "PspEncoderCuda::backward: grad_params");
        const float* P = params_.data();
        float* G = grad_params ? grad_params->data() : nullptr;
        const cudaStream_t s = backend_.stream();
        // Heads: the gradient of every head's output at once, then each head's two layers; each
        // pooled level collects the input gradients of its heads.
        const Index heads = active_heads();
        Buffer gd = backend_.empty({c.num_ws, N, c.w_dim});
        const bool penalty = c.e4e && c.active_offsets > 0 && offset_weight != 0.0;
        cuda::enc::head_grads(grad_codes.data(), k.delta.data(), penalty ? doubles(k.norms) : nullptr, N, c.num_ws,
                              c.w_dim, c.e4e, heads, penalty ? offset_weight : 0.0, gd.data(), s);
        std::vector<Buffer> g_pool(static_cast<std::size_t>(L));
        for (Index l = 0; l < L; ++l) g_pool[static_cast<std::size_t>(l)] = backend_.zeros(k.pooled[static_cast<std::size_t>(l)].shape());
        const nn::LinearParams p1 = layout_.head1(), p2 = layout_.head2();
        Buffer gh = backend_.empty({N, c.head_hidden}), gx = backend_.empty({N, p1.in});
        for (Index i = 0; i < heads; ++i) {
            const PspEncoder::Head& hd = layout_.heads()[static_cast<std::size_t>(i)];
            const auto l = static_cast<std::size_t>(c.level_of_ws(i));
            const float* hid = k.hidden.data() + i * N * c.head_hidden;
            const float* del = k.delta.data() + i * N * c.w_dim;
            cuda::linear_backward(hid, N, P + hd.w2, del, gd.data() + i * N * c.w_dim, p2, gh.data(), grad_at(G, hd.w2),
                                  grad_at(G, hd.b2), s);
            cuda::linear_backward(k.pooled[l].data(), N, P + hd.w1, hid, gh.data(), p1, gx.data(), grad_at(G, hd.w1),
                                  grad_at(G, hd.b1), s);
            cuda::enc::add(g_pool[l].data(), gx.data(), gx.numel(), s);
        }
        // Pyramid, finest first: a level's gradient also reaches the coarser level it up-sampled.
        std::vector<Buffer> g_pyr(static_cast<std::size_t>(L)), g_feat(static_cast<std::size_t>(L));
        for (Index l = 0; l < L; ++l) g_pyr[static_cast<std::size_t>(l)] = pool_backward(g_pool[static_cast<std::size_t>(l)], l);
        for (Index l = 0; l < L; ++l) {
            const auto sl = static_cast<std::size_t>(l);
            const Index r = layout_.level_resolution(l);
            if (l + 1 < L) cuda::enc::upsample2x_backward_add(g_pyr[sl].data(), N * F, r / 2, r / 2, g_pyr[sl + 1].data(), s);
            g_feat[sl] = conv_backward(P, layout_.laterals()[sl], k.feats[sl], g_pyr[sl], r, G, true);
        }
        // Stages, last first; a block that feeds the pyramid adds its feature's gradient.
        Buffer g;
        Index level = L - 1;
        for (Index b = static_cast<Index>(blocks.size()) - 1; b >= 0; --b) {
            if (layout_.feeds_pyramid(b)) {
                Buffer& gf = g_feat[static_cast<std::size_t>(level--)];
                if (g.empty()) g = std::move(gf);
                else cuda::enc::add(g.data(), gf.data(), g.numel(), s);
            }
            g = block_backward(P, blocks[static_cast<std::size_t>(b)], k.blocks[static_cast<std::size_t>(b)], g, G, true);
        }
        const Index HW = c.resolution * c.resolution;
        Buffer gn = backend_.empty(g.shape());
        Buffer scratch = backend_.empty({2 * N * c.stem_channels});
        cuda::enc::prelu_backward(k.stem_n.data(), P + layout_.stem_prelu(), g.data(), N, c.stem_channels, HW, gn.data(),
                                  grad_at(G, layout_.stem_prelu()), doubles(scratch), s);
        const Buffer gc = norm_backward(P, layout_.stem_norm(), k.stem_c, k.stem_mean, k.stem_rstd, gn, G);
        return conv_backward(P, layout_.stem_conv(), k.stem_x, gc, c.resolution, G, want_input_grad);
    }

    /// e4e's offset regulariser of the cached forward: the batch mean of sum_i ||delta_i||_2 over
    /// the active offsets (0 for pSp). Reads back active_offsets * N doubles.
    double offset_penalty(const Cache& k) const {
        const EncoderConfig& c = config();
        if (!c.e4e || c.active_offsets == 0 || k.batch < 1) return 0.0;
        GANINV_CHECK(c.active_offsets <= k.active_offsets && !k.norms.empty(), ValueError,
                     "PspEncoderCuda::offset_penalty: ", c.active_offsets, " e4e offsets active, but the cached forward computed ",
                     k.active_offsets);
        const Tensor<float> raw = backend_.download(k.norms);
        std::vector<double> norms(static_cast<std::size_t>(k.active_offsets * k.batch));
        std::memcpy(norms.data(), raw.data(), sizeof(double) * norms.size());
        double sum = 0;  // offset-major, sample-minor: the CPU's order
        for (Index r = 0; r < c.active_offsets * k.batch; ++r) sum += norms[static_cast<std::size_t>(r)];
        return sum / static_cast<double>(k.batch);
    }

    /// A host PspEncoder with the device weights (for saving files): config, params, w_avg downloaded.
    PspEncoder to_host() const {
        PspEncoder h = layout_;
        h.params() = backend_.download(params_);
        h.set_w_avg(backend_.download(w_avg_));
        return h;
    }

private:
    Index active_heads() const {
        const EncoderConfig& c = config();
        return c.e4e ? c.active_offsets + 1 : c.num_ws;
    }
    static float* grad_at(float* g, Index off) { return g ? g + off : nullptr; }
    /// A buffer of 2n floats as n doubles (pool blocks are 256-byte aligned).
    static double* doubles(Buffer& b) { return reinterpret_cast<double*>(b.data()); }
    static const double* doubles(const Buffer& b) { return reinterpret_cast<const double*>(b.data()); }

    static cuda::ConvGeometry geometry(const encoder::ConvLayer& l, Index batch, Index res) {
        // The CPU's convention (ConvLayer::shape): square kernel, padding k / 2 on every side.
        return {batch, l.cin, l.cout, res, res, l.k, l.stride, l.k / 2};
    }
    static nn::GroupNormShape norm_shape(const encoder::NormLayer& l, const Buffer& x) {
        return {x.dim(0), l.channels, x.numel() / (x.dim(0) * l.channels), l.groups};
    }

    Buffer conv_forward(const float* P, const encoder::ConvLayer& l, const Buffer& x, Index res) const {
        const cuda::ConvGeometry g = geometry(l, x.dim(0), res);
        Buffer y = backend_.empty({g.n, g.o, g.out_h(), g.out_w()});
        dnn_->forward(g, x.data(), P + l.w, y.data());
        cuda::enc::add_bias(y.data(), g.n, g.o, g.out_h() * g.out_w(), P + l.b, backend_.stream());
        return y;
    }
    /// dL/dx when `want_input` (else empty); weight and bias gradients accumulate into G (may be null).
    Buffer conv_backward(const float* P, const encoder::ConvLayer& l, const Buffer& x, const Buffer& gy, Index res,
                         float* G, bool want_input) const {
        const cuda::ConvGeometry g = geometry(l, x.dim(0), res);
        Buffer gx;
        if (want_input) {
            gx = backend_.empty(x.shape());
            dnn_->backward_data(g, P + l.w, gy.data(), gx.data());
        }
        if (G) {
            dnn_->backward_filter(g, x.data(), gy.data(), G + l.w);
            Buffer scratch = backend_.empty({2 * g.n * g.o});
            cuda::enc::bias_grad(gy.data(), g.n, g.o, g.out_h() * g.out_w(), doubles(scratch), G + l.b, backend_.stream());
        }
        return gx;
    }
    Buffer norm_forward(const float* P, const encoder::NormLayer& l, const Buffer& x, Buffer& mean, Buffer& rstd) const {
        const nn::GroupNormShape sh = norm_shape(l, x);
        Buffer y = backend_.empty(x.shape());
        mean = backend_.empty({sh.batch * sh.groups});
        rstd = backend_.empty({sh.batch * sh.groups});
        cuda::enc::group_norm_forward(x.data(), P + l.gamma, P + l.beta, sh, y.data(), mean.data(), rstd.data(),
                                      backend_.stream());
        return y;
    }
    Buffer norm_backward(const float* P, const encoder::NormLayer& l, const Buffer& x, const Buffer& mean,
                         const Buffer& rstd, const Buffer& gy, float* G) const {
        const nn::GroupNormShape sh = norm_shape(l, x);
        Buffer gx = backend_.empty(x.shape());
        Buffer scratch = backend_.empty({4 * sh.batch * sh.channels});
        cuda::enc::group_norm_backward(x.data(), P + l.gamma, mean.data(), rstd.data(), gy.data(), sh, gx.data(),
                                       grad_at(G, l.gamma), grad_at(G, l.beta), doubles(scratch), backend_.stream());
        return gx;
    }

    Buffer block_forward(const float* P, const encoder::ResBlock& b, Buffer x, Index res, BlockCache& k) const {
        const Index N = x.dim(0);
        const cudaStream_t s = backend_.stream();
        k.res = res;
        k.c1 = conv_forward(P, b.conv1, x, res);
        k.n1 = norm_forward(P, b.norm1, k.c1, k.mean1, k.rstd1);
        k.a1 = backend_.empty(k.n1.shape());
        const Index out_res = k.c1.dim(2);
        cuda::enc::prelu_forward(k.n1.data(), P + b.prelu, N, b.conv1.cout, out_res * out_res, k.a1.data(), s);
        k.c2 = conv_forward(P, b.conv2, k.a1, out_res);
        Buffer y = norm_forward(P, b.norm2, k.c2, k.mean2, k.rstd2);
        if (b.has_shortcut) {
            const Buffer sc = conv_forward(P, b.shortcut, x, res);
            cuda::enc::add(y.data(), sc.data(), y.numel(), s);
        } else {
            cuda::enc::add(y.data(), x.data(), y.numel(), s);
        }
        k.x = std::move(x);
        return y;
    }
    Buffer block_backward(const float* P, const encoder::ResBlock& b, const BlockCache& k, const Buffer& gy, float* G,
                          bool want_input) const {
        const Index N = gy.dim(0), out_res = k.c1.dim(2);
        const cudaStream_t s = backend_.stream();
        const Buffer g_c2 = norm_backward(P, b.norm2, k.c2, k.mean2, k.rstd2, gy, G);
        const Buffer g_a1 = conv_backward(P, b.conv2, k.a1, g_c2, out_res, G, true);
        Buffer g_n1 = backend_.empty(g_a1.shape());
        Buffer scratch = backend_.empty({2 * N * b.conv1.cout});
        cuda::enc::prelu_backward(k.n1.data(), P + b.prelu, g_a1.data(), N, b.conv1.cout, out_res * out_res, g_n1.data(),
                                  grad_at(G, b.prelu), doubles(scratch), s);
        const Buffer g_c1 = norm_backward(P, b.norm1, k.c1, k.mean1, k.rstd1, g_n1, G);
        Buffer gx = conv_backward(P, b.conv1, k.x, g_c1, k.res, G, want_input);
        if (b.has_shortcut) {
            const Buffer gs = conv_backward(P, b.shortcut, k.x, gy, k.res, G, want_input);
            if (want_input) cuda::enc::add(gx.data(), gs.data(), gx.numel(), s);
        } else if (want_input) {
            cuda::enc::add(gx.data(), gy.data(), gx.numel(), s);
        }
        return gx;
    }

    /// [N, F, r, r] -> [N, F * g * g]: average over (r/g)^2 windows (global average when g = 1).
    Buffer pool(const Buffer& x, Index level) const {
        const EncoderConfig& c = config();
        const Index r = layout_.level_resolution(level), g = c.head_grid, planes = x.dim(0) * c.pyramid_channels;
        Buffer y = backend_.empty({x.dim(0), c.pyramid_channels * g * g});
        if (g == 1) cuda::enc::global_avg_pool_forward(x.data(), planes, r * r, y.data(), backend_.stream());
        else if (g == r) backend_.copy(x.data(), y.data(), x.numel());
        else cuda::enc::avg_pool_forward(x.data(), planes, r, r, r / g, y.data(), backend_.stream());
        return y;
    }
    Buffer pool_backward(const Buffer& gy, Index level) const {
        const EncoderConfig& c = config();
        const Index r = layout_.level_resolution(level), g = c.head_grid, planes = gy.dim(0) * c.pyramid_channels;
        Buffer gx = backend_.empty({gy.dim(0), c.pyramid_channels, r, r});
        if (g == 1) cuda::enc::global_avg_pool_backward(gy.data(), planes, r * r, gx.data(), backend_.stream());
        else if (g == r) backend_.copy(gy.data(), gx.data(), gy.numel());
        else cuda::enc::avg_pool_backward(gy.data(), planes, r, r, r / g, gx.data(), backend_.stream());
        return gx;
    }

    Cuda backend_;
    PspEncoder layout_;  ///< config and layout; its params are dropped (the device holds them)
    std::shared_ptr<cuda::CudnnContext> dnn_;
    Buffer params_, w_avg_;
};

static_assert(Encoder<PspEncoderCuda>);

}  // namespace ganinv
