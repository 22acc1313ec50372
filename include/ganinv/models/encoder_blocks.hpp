/// @file encoder_blocks.hpp
/// @brief The encoders' building blocks on a flat parameter vector: a conv layer (weight + bias
///        at offsets), a group-norm layer, and pSp's residual unit (conv3x3 (stride s) -> norm ->
///        PReLU -> conv3x3 -> norm, plus the input or a strided 1x1 conv shortcut), each with a
///        forward that records what its backward needs. Gradients accumulate into a vector of the
///        same layout (null: no parameter gradients).
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/nn/conv2d.hpp"
#include "ganinv/nn/group_norm.hpp"
#include "ganinv/nn/prelu.hpp"

namespace ganinv::encoder {

struct ConvLayer {
    Index w = 0, b = 0;  ///< offsets of weight [cout, cin, k, k] and bias [cout]
    Index cin = 0, cout = 0, k = 3, stride = 1;

    nn::Conv2dShape shape(Index batch, Index res) const {
        return {batch, cin, cout, res, res, k, k, stride, k / 2, k / 2};
    }
};

struct NormLayer {
    Index gamma = 0, beta = 0, channels = 0, groups = 1;
};

struct ResBlock {
    ConvLayer conv1, conv2, shortcut;
    NormLayer norm1, norm2;
    Index prelu = 0;  ///< offset of the per-channel slopes
    bool has_shortcut = false;
};

struct ResBlockCache {
    Tensor<float> x, c1, n1, a1, c2;
    nn::GroupNormStats s1, s2;
    Index res = 0;  ///< input resolution
};

inline float* offset_or_null(float* base, Index off) { return base ? base + off : nullptr; }

/// y = conv(x) + b; x is [N, cin, res, res].
inline Tensor<float> conv_forward(const float* params, const ConvLayer& l, const Tensor<float>& x, Index res) {
    const nn::Conv2dShape s = l.shape(x.dim(0), res);
    Tensor<float> y({x.dim(0), l.cout, s.out_h(), s.out_w()});
    nn::conv2d_forward(x.data(), params + l.w, params + l.b, s, y.data());
    return y;
}

/// dL/dx when `want_input` (else empty); weight and bias gradients accumulate into grads.
inline Tensor<float> conv_backward(const float* params, const ConvLayer& l, const Tensor<float>& x,
                                   const Tensor<float>& gy, Index res, float* grads, bool want_input) {
    const nn::Conv2dShape s = l.shape(x.dim(0), res);
    Tensor<float> gx = want_input ? Tensor<float>(x.shape()) : Tensor<float>();
    nn::conv2d_backward(x.data(), params + l.w, gy.data(), s, want_input ? gx.data() : nullptr,
                        offset_or_null(grads, l.w), offset_or_null(grads, l.b));
    return gx;
}

inline Tensor<float> norm_forward(const float* params, const NormLayer& l, const Tensor<float>& x, nn::GroupNormStats* st) {
    Tensor<float> y(x.shape());
    const nn::GroupNormShape s{x.dim(0), l.channels, x.numel() / (x.dim(0) * l.channels), l.groups};
    nn::group_norm_forward(x.data(), params + l.gamma, params + l.beta, s, y.data(), st);
    return y;
}

inline Tensor<float> norm_backward(const float* params, const NormLayer& l, const Tensor<float>& x,
                                   const nn::GroupNormStats& st, const Tensor<float>& gy, float* grads) {
    Tensor<float> gx(x.shape());
    const nn::GroupNormShape s{x.dim(0), l.channels, x.numel() / (x.dim(0) * l.channels), l.groups};
    nn::group_norm_backward(x.data(), params + l.gamma, st, gy.data(), s, gx.data(), offset_or_null(grads, l.gamma),
                            offset_or_null(grads, l.beta));
    return gx;
}

inline Tensor<float> block_forward(const float* params, const ResBlock& b, Tensor<float> x, Index res, ResBlockCache& k) {
    const Index N = x.dim(0);
    k.res = res;
    k.c1 = conv_forward(params, b.conv1, x, res);
    k.n1 = norm_forward(params, b.norm1, k.c1, &k.s1);
    k.a1 = Tensor<float>(k.n1.shape());
    const Index out_res = k.c1.dim(2);
    nn::prelu_forward(k.n1.data(), params + b.prelu, N, b.conv1.cout, out_res * out_res, k.a1.data());
    k.c2 = conv_forward(params, b.conv2, k.a1, out_res);
    Tensor<float> y = norm_forward(params, b.norm2, k.c2, &k.s2);
    if (b.has_shortcut) {
        const Tensor<float> sc = conv_forward(params, b.shortcut, x, res);
        for (Index i = 0; i < y.numel(); ++i) y[i] += sc[i];
    } else {
        for (Index i = 0; i < y.numel(); ++i) y[i] += x[i];
    }
    k.x = std::move(x);
    return y;
}

/// dL/dx of the block (empty unless `want_input`); parameter gradients accumulate into grads.
inline Tensor<float> block_backward(const float* params, const ResBlock& b, const ResBlockCache& k,
                                    const Tensor<float>& gy, float* grads, bool want_input) {
    const Index N = gy.dim(0), out_res = k.c1.dim(2);
    const Tensor<float> g_c2 = norm_backward(params, b.norm2, k.c2, k.s2, gy, grads);
    const Tensor<float> g_a1 = conv_backward(params, b.conv2, k.a1, g_c2, out_res, grads, true);
    Tensor<float> g_n1(g_a1.shape());
    nn::prelu_backward(k.n1.data(), params + b.prelu, g_a1.data(), N, b.conv1.cout, out_res * out_res, g_n1.data(),
                       offset_or_null(grads, b.prelu));
    const Tensor<float> g_c1 = norm_backward(params, b.norm1, k.c1, k.s1, g_n1, grads);
    Tensor<float> gx = conv_backward(params, b.conv1, k.x, g_c1, k.res, grads, want_input);
    if (b.has_shortcut) {
        const Tensor<float> gs = conv_backward(params, b.shortcut, k.x, gy, k.res, grads, want_input);
        if (want_input)
            for (Index i = 0; i < gx.numel(); ++i) gx[i] += gs[i];
    } else if (want_input) {
        for (Index i = 0; i < gx.numel(); ++i) gx[i] += gy[i];
    }
    return gx;
}

}  // namespace ganinv::encoder
