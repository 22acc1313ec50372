/// @file stylegan2_synthesis.hpp
/// @brief StyleGAN2 synthesis forward and backward ('skip' architecture). Included by
///        stylegan2.hpp; the member functions are defined here to keep each header readable.
#pragma once

#include "ganinv/models/stylegan2.hpp"

#include <cmath>

namespace ganinv {

template <class Backend>
typename StyleGAN2<Backend>::Buffer StyleGAN2<Backend>::synthesis_from_styles(const Buffer& styles_in,
                                                                             const NoiseInput<Backend>& noise,
                                                                             Cache* cache) {
    const Index n = batch_of(styles_in, style_dim(), "styles");
    Cache local;
    Cache& c = cache ? *cache : local;
    c.batch = n;
    c.styles = styles_in;
    c.noise_mode = noise.mode;
    c.layers.assign(plan_.layers.size(), {});
    c.block_img.clear();
    c.block_x.clear();
    if (noise.mode == NoiseMode::explicit_maps)
        GANINV_CHECK(noise.maps && noise.maps->size() == plan_.noise_resolutions.size(), ShapeError,
                     "explicit noise needs one map per conv layer (", plan_.noise_resolutions.size(), "), got ",
                     noise.maps ? noise.maps->size() : 0);
    Rng rng(noise.seed);

    const Buffer& const_param = param("synthesis.b4.const");
    c.const_x = backend_.empty({n, const_param.dim(0), 4, 4});
    backend_.broadcast_rows(const_param.data(), const_param.numel(), n, c.const_x.data());
    const float* features = c.const_x.data();
    Buffer img;
    const Index fsize = static_cast<Index>(config_.resample_filter.size());

    std::vector<nn::ColumnBlock> slices;  // every layer's styles, split off in one call
    for (std::size_t i = 0; i < plan_.layers.size(); ++i) {
        const SynthesisLayerSpec& l = plan_.layers[i];
        c.layers[i].styles = backend_.empty({n, l.in_channels});
        slices.push_back({l.style_offset, l.in_channels, style_gain(l), c.layers[i].styles.data()});
    }
    backend_.gather_column_blocks(styles_in.data(), n, style_dim(), slices);

    for (std::size_t i = 0; i < plan_.layers.size(); ++i) {
        const SynthesisLayerSpec& l = plan_.layers[i];
        auto& L = c.layers[i];
        const Index R = l.resolution, C = l.in_channels, O = l.out_channels;
        const nn::ModConvShape sh{n, C, O, R / l.up, R / l.up, l.kernel, l.up, !l.is_torgb, fsize};
        L.dcoefs = backend_.empty({n, O});
        L.modconv_out = backend_.empty({n, O, R, R});
        const float* filt = l.is_torgb ? filter_.data() : param(l.name + ".resample_filter").data();
        const auto clamp = config_.conv_clamp.value_or(-1.0f);
        if (!l.is_torgb) {
            if (noise.mode != NoiseMode::none) {
                if (noise.mode == NoiseMode::constant) {
                    L.noise = param(l.name + ".noise_const");
                    L.noise_per_sample = false;
                } else if (noise.mode == NoiseMode::random) {
                    Tensor<float> h({n, R, R});
                    rng.fill_normal(h.values());
                    L.noise = backend_.upload(h);
                    L.noise_per_sample = true;
                } else {
                    const Buffer& m = (*noise.maps)[static_cast<std::size_t>(l.noise_index)];
                    GANINV_CHECK(m.numel() == n * R * R || m.numel() == R * R, ShapeError, "noise map ", l.noise_index,
                                 " (", l.name, "): expected [", n, ", ", R, ", ", R, "] or [", R, ", ", R, "], got ",
                                 shape_to_string(m.shape()));
                    L.noise = m;
                    L.noise_per_sample = m.numel() == n * R * R;
                }
            }
            L.out = backend_.empty({n, O, R, R});  // conv + noise + bias + lrelu (one pass where the backend fuses it)
            backend_.modconv_forward_fused(features, param(l.name + ".weight").data(), L.styles.data(), filt, sh,
                                           L.modconv_out.data(), L.dcoefs.data(), L.out.data(),
                                           L.noise.numel() > 0 ? L.noise.data() : nullptr, L.noise_per_sample,
                                           param(l.name + ".noise_strength").data(), param(l.name + ".bias").data(),
                                           nn::BiasActParams::lrelu(1.0f, clamp));
            features = L.out.data();
            continue;
        }
        L.out = backend_.empty({n, O, R, R});  // ToRGB: conv + bias (+ clamp)
        backend_.modconv_forward_fused(features, param(l.name + ".weight").data(), L.styles.data(), filt, sh,
                                       L.modconv_out.data(), L.dcoefs.data(), L.out.data(), nullptr, false, nullptr,
                                       param(l.name + ".bias").data(), nn::BiasActParams::linear(clamp));
        if (img.numel() == 0) {
            img = L.out;
        } else {
            Buffer up = backend_.empty({n, O, R, R});
            backend_.upfirdn2d_forward(img.data(), n * O, R / 2, R / 2, filter_.data(), fsize, fsize,
                                       nn::Upfirdn2dParams::upsample2d(static_cast<int>(fsize)), up.data());
            backend_.axpy(up.numel(), 1.0f, L.out.data(), up.data());
            img = std::move(up);
        }
        c.block_img.push_back(img);
        c.block_x.push_back(c.layers[i - 1].out);
    }
    return img;
}

template <class Backend>
SynthesisGradients<Backend> StyleGAN2<Backend>::synthesis_backward(const Cache& c, const Buffer& grad_img,
                                                                   GradTarget param_grads) {
    const Index n = c.batch;
    GANINV_CHECK(c.layers.size() == plan_.layers.size() && n > 0, ValueError,
                 "synthesis_backward: the cache was not filled by a forward pass of this generator");
    GANINV_CHECK(grad_img.numel() == n * img_channels() * resolution() * resolution(), ShapeError,
                 "grad_img: expected [", n, ", ", img_channels(), ", ", resolution(), ", ", resolution(), "], got ",
                 shape_to_string(grad_img.shape()));
    SynthesisGradients<Backend> grads;
    grads.styles = backend_.zeros({n, style_dim()});
    if (c.noise_mode != NoiseMode::none) grads.noise.resize(plan_.noise_resolutions.size());

    std::vector<const float*> inputs(plan_.layers.size());
    const float* features = c.const_x.data();
    for (std::size_t i = 0; i < plan_.layers.size(); ++i) {
        inputs[i] = features;
        if (!plan_.layers[i].is_torgb) features = c.layers[i].out.data();
    }
    const Index fsize = static_cast<Index>(config_.resample_filter.size());
    const auto clamp = config_.conv_clamp.value_or(-1.0f);
    Buffer g_img = grad_img;
    Buffer g_x;  // gradient w.r.t. the current features; empty = zero
    std::vector<Buffer> g_styles(plan_.layers.size());  // merged into grads.styles at the end, in one call

    for (std::size_t i = plan_.layers.size(); i-- > 0;) {
        const SynthesisLayerSpec& l = plan_.layers[i];
        const auto& L = c.layers[i];
        const Index R = l.resolution, C = l.in_channels, O = l.out_channels;
        const nn::ModConvShape sh{n, C, O, R / l.up, R / l.up, l.kernel, l.up, !l.is_torgb, fsize};
        const float* filt = l.is_torgb ? filter_.data() : param(l.name + ".resample_filter").data();
        GradSlot gbias(*this, param_grads, l.name + ".bias");
        GradSlot gweight(*this, param_grads, l.name + ".weight");
        GANINV_CHECK(l.is_torgb || g_x.numel() > 0, ValueError, "synthesis_backward: internal order error");
        // ToRGB reads the same features as the next block's conv0, whose gradient is already in g_x.
        const bool accumulate = l.is_torgb && g_x.numel() > 0;
        Buffer g_in = accumulate ? Buffer{} : backend_.empty({n, C, R / l.up, R / l.up});
        Buffer& g_s = g_styles[i] = backend_.empty({n, C});
        const bool with_noise = !l.is_torgb && L.noise.numel() > 0;
        Buffer* gn = with_noise ? &grads.noise[static_cast<std::size_t>(l.noise_index)] : nullptr;
        if (gn) *gn = backend_.empty({n, R, R});
        {
            // One backend call for the epilogue's backward and the conv's: the CUDA backend fuses the
            // first with the conv's demodulation sums and operand packing where it can.
            GradSlot gstrength(*this, with_noise ? param_grads : GradTarget{}, l.name + ".noise_strength");
            backend_.modconv_backward_fused(
                inputs[i], param(l.name + ".weight").data(), L.styles.data(), filt, L.dcoefs.data(),
                L.modconv_out.data(), L.out.data(), (l.is_torgb ? g_img : g_x).data(), sh,
                l.is_torgb ? nn::BiasActParams::linear(clamp) : nn::BiasActParams::lrelu(1.0f, clamp),
                with_noise ? L.noise.data() : nullptr, L.noise_per_sample,
                with_noise ? param(l.name + ".noise_strength").data() : nullptr, accumulate ? g_x.data() : g_in.data(),
                g_s.data(), gweight.ptr(), gbias.ptr(), gn ? gn->data() : nullptr, gstrength.ptr(), accumulate);
            gstrength.commit();
        }
        if (gn && c.noise_mode == NoiseMode::constant && param_grads.wants(l.name + ".noise_const")) {
            GradSlot gconst(*this, param_grads, l.name + ".noise_const");  // sum_rows_add accumulates
            backend_.sum_rows_add(gn->data(), R * R, n, gconst.ptr());
            gconst.commit();
        }
        gbias.commit();
        gweight.commit();

        if (l.is_torgb) {
            if (!accumulate) g_x = std::move(g_in);
            if (R > 4) {  // the skip path: img_b = upsample(img_{b-1}) + torgb_b
                Buffer g_prev = backend_.empty({n, O, R / 2, R / 2});
                backend_.upfirdn2d_backward(g_img.data(), n * O, R / 2, R / 2, filter_.data(), fsize, fsize,
                                            nn::Upfirdn2dParams::upsample2d(static_cast<int>(fsize)), g_prev.data());
                g_img = std::move(g_prev);
            }
        } else {
            g_x = std::move(g_in);
        }
    }
    std::vector<nn::ColumnBlock> slices;
    for (std::size_t i = 0; i < plan_.layers.size(); ++i) {
        const SynthesisLayerSpec& l = plan_.layers[i];
        slices.push_back({l.style_offset, l.in_channels, style_gain(l), g_styles[i].data()});
    }
    backend_.scatter_add_column_blocks(slices, n, grads.styles.data(), style_dim());
    if (param_grads.wants("synthesis.b4.const")) {  // the const input was broadcast over the batch
        GradSlot gconst(*this, param_grads, "synthesis.b4.const");  // sum_rows_add accumulates
        backend_.sum_rows_add(g_x.data(), param("synthesis.b4.const").numel(), n, gconst.ptr());
        gconst.commit();
    }
    return grads;
}

}  // namespace ganinv
