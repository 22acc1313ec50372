/// @file backend_cases.hpp
/// @brief Test drivers written once against the Backend interface and instantiated for `Cpu`
///        (cpu_reference.cpp, compiled by the host compiler with Eigen) and for `Cuda` (the .cu
///        tests), so both backends run literally the same sequence of calls. Outputs that an
///        operation overwrites are poisoned with NaN first: an element it fails to write fails
///        the comparison. Outputs that accumulate start from the same random values on both.
#pragma once

#include <ganinv/core/rng.hpp>
#include <ganinv/core/tensor.hpp>
#include <ganinv/models/stylegan2.hpp>
#include <ganinv/nn/bias_act.hpp>
#include <ganinv/nn/linear_params.hpp>
#include <ganinv/nn/modconv_shape.hpp>
#include <ganinv/nn/upfirdn2d.hpp>

#include <limits>
#include <optional>
#include <vector>

namespace ganinv::test {

inline constexpr float kPoison = std::numeric_limits<float>::quiet_NaN();

using Tensors = std::vector<Tensor<float>>;

inline Tensor<float> random_tensor(const Shape& shape, std::uint64_t seed, float scale = 1.0f, float offset = 0.0f) {
    Tensor<float> t(shape);
    Rng rng(seed);
    rng.fill_normal(t.values(), 0.0, scale);
    for (float& v : t.values()) v += offset;
    return t;
}

template <class B>
typename B::Buffer poisoned(B& b, const Shape& shape) {
    auto buf = b.empty(shape);
    b.fill(buf, kPoison);
    return buf;
}

/// {y, dcoefs, grad_x, grad_styles, grad_weight, fused out, x + grad_x}: grad_weight starts from
/// `gw0`; "fused out" = modconv_forward_fused with per-sample noise, a bias and lrelu; the last
/// is modconv_backward accumulating into a grad_x that holds x.
template <class B>
Tensors run_modconv(B& b, const Tensor<float>& x, const Tensor<float>& w, const Tensor<float>& s,
                    const Tensor<float>& filter, const nn::ModConvShape& sh, const Tensor<float>& gy,
                    const Tensor<float>& gw0) {
    auto X = b.upload(x), Wt = b.upload(w), S = b.upload(s), F = b.upload(filter), GY = b.upload(gy), GW = b.upload(gw0);
    const Shape out_shape{sh.batch, sh.out_channels, sh.out_h(), sh.out_w()};
    auto Y = poisoned(b, out_shape);
    auto D = poisoned(b, {sh.batch, sh.out_channels});
    b.modconv_forward(X.data(), Wt.data(), S.data(), F.data(), sh, Y.data(), D.data());
    auto GX = poisoned(b, x.shape()), GS = poisoned(b, s.shape());
    b.modconv_backward(X.data(), Wt.data(), S.data(), F.data(), D.data(), Y.data(), GY.data(), sh, GX.data(), GS.data(),
                       GW.data());
    Tensors r{b.download(Y), b.download(D), b.download(GX), b.download(GS), b.download(GW)};

    auto Nz = b.upload(random_tensor({sh.batch, sh.out_h(), sh.out_w()}, 99)), St = b.upload(Tensor<float>({1}, 0.3f));
    auto Bi = b.upload(random_tensor({sh.out_channels}, 98));
    auto Y2 = poisoned(b, out_shape), Out = poisoned(b, out_shape), D2 = poisoned(b, {sh.batch, sh.out_channels});
    b.modconv_forward_fused(X.data(), Wt.data(), S.data(), F.data(), sh, Y2.data(), D2.data(), Out.data(), Nz.data(), true,
                            St.data(), Bi.data(), nn::BiasActParams::lrelu(1.0f, -1.0f));
    r.push_back(b.download(Out));
    auto GX2 = b.upload(x), GS2 = poisoned(b, s.shape());
    b.modconv_backward(X.data(), Wt.data(), S.data(), F.data(), D.data(), Y.data(), GY.data(), sh, GX2.data(),
                       GS2.data(), nullptr, true);
    r.push_back(b.download(GX2));
    return r;
}

/// {y, grad_x} of upfirdn2d on x [planes, h, w].
template <class B>
Tensors run_upfirdn2d(B& b, const Tensor<float>& x, const Tensor<float>& f, const nn::Upfirdn2dParams& p,
                      const Tensor<float>& gy) {
    const Index planes = x.dim(0), h = x.dim(1), w = x.dim(2), fh = f.dim(0), fw = f.dim(1);
    auto X = b.upload(x), F = b.upload(f), GY = b.upload(gy);
    auto Y = poisoned(b, {planes, p.out_h(h, fh), p.out_w(w, fw)});
    b.upfirdn2d_forward(X.data(), planes, h, w, F.data(), fh, fw, p, Y.data());
    auto GX = poisoned(b, x.shape());
    b.upfirdn2d_backward(GY.data(), planes, h, w, F.data(), fh, fw, p, GX.data());
    return {b.download(Y), b.download(GX)};
}

/// {y (in place on x), grad_x, grad_bias (from gb0)} on x [n, c, spatial].
template <class B>
Tensors run_bias_act(B& b, const Tensor<float>& x, const Tensor<float>& bias, const nn::BiasActParams& p,
                     const Tensor<float>& gy, const Tensor<float>& gb0) {
    const Index n = x.dim(0), c = x.dim(1), sp = x.dim(2);
    auto Y = b.upload(x), Bi = b.upload(bias), GY = b.upload(gy), GB = b.upload(gb0);
    b.bias_act_forward(Y.data(), n, c, sp, Bi.data(), p);
    auto GX = poisoned(b, x.shape());
    b.bias_act_backward(Y.data(), GY.data(), n, c, sp, p, GX.data(), GB.data());
    return {b.download(Y), b.download(GX), b.download(GB)};
}

/// {y, grad_x, grad_w (from gw0), grad_b (from gb0)} of a linear layer on x [n, in].
template <class B>
Tensors run_linear(B& b, const Tensor<float>& x, const Tensor<float>& w, const Tensor<float>& bias,
                   const nn::LinearParams& p, const Tensor<float>& gy, const Tensor<float>& gw0,
                   const Tensor<float>& gb0) {
    const Index n = x.dim(0);
    auto X = b.upload(x), Wt = b.upload(w), Bi = b.upload(bias), G = b.upload(gy), GW = b.upload(gw0), GB = b.upload(gb0);
    auto Y = poisoned(b, {n, p.out});
    b.linear_forward(X.data(), n, Wt.data(), Bi.data(), p, Y.data());
    auto GX = poisoned(b, x.shape());
    b.linear_backward(X.data(), n, Wt.data(), Y.data(), G.data(), p, GX.data(), GW.data(), GB.data());
    return {b.download(Y), b.download(GX), b.download(GW), b.download(GB)};
}

/// {y, grad_x} of normalize_2nd_moment on x [rows, dim].
template <class B>
Tensors run_normalize(B& b, const Tensor<float>& x, const Tensor<float>& gy) {
    const Index rows = x.dim(0), dim = x.dim(1);
    auto X = b.upload(x), G = b.upload(gy);
    auto Y = poisoned(b, x.shape()), GX = poisoned(b, x.shape());
    b.normalize_2nd_moment(X.data(), rows, dim, Y.data());
    b.normalize_2nd_moment_backward(X.data(), G.data(), rows, dim, GX.data());
    return {b.download(Y), b.download(GX)};
}

/// {y, grad_noise, grad_strength (from gs0)} of add_noise on y0 [n, c, spatial].
template <class B>
Tensors run_noise(B& b, const Tensor<float>& y0, const Tensor<float>& noise, bool per_sample, float strength,
                  const Tensor<float>& g, float gs0) {
    const Index n = y0.dim(0), c = y0.dim(1), sp = y0.dim(2);
    auto Y = b.upload(y0), Nz = b.upload(noise), G = b.upload(g);
    auto St = b.upload(Tensor<float>({1}, strength)), GS = b.upload(Tensor<float>({1}, gs0));
    b.add_noise(Y.data(), n, c, sp, Nz.data(), per_sample, St.data());
    auto GN = poisoned(b, {n, sp});
    b.add_noise_backward(G.data(), n, c, sp, Nz.data(), per_sample, St.data(), GN.data(), GS.data());
    return {b.download(Y), b.download(GN), b.download(GS)};
}

/// The small ops: axpy, broadcast_rows, sum_rows_add, truncate, gather/scatter columns, reduce_ws.
template <class B>
Tensors run_small_ops(B& b, std::uint64_t seed) {
    const Index batch = 3, num_ws = 5, dim = 7, row = 11;
    const Tensor<float> a = random_tensor({batch, num_ws, dim}, seed), c = random_tensor({batch, num_ws, dim}, seed + 1);
    const Tensor<float> r = random_tensor({row}, seed + 2), avg = random_tensor({dim}, seed + 3);
    const Tensor<float> m = random_tensor({batch, row}, seed + 4);
    Tensors out;
    auto A = b.upload(a), C = b.upload(c);
    b.axpy(A.numel(), 0.37f, C.data(), A.data());
    out.push_back(b.download(A));
    auto R = b.upload(r);
    auto Bc = poisoned(b, {batch, row});
    b.broadcast_rows(R.data(), row, batch, Bc.data());
    out.push_back(b.download(Bc));
    auto M = b.upload(m);
    b.sum_rows_add(M.data(), row, batch, R.data());
    out.push_back(b.download(R));
    auto T = b.upload(a), Avg = b.upload(avg);
    b.truncate(T.data(), batch, num_ws, dim, Avg.data(), 0.6f, 3);
    out.push_back(b.download(T));
    auto Gc = poisoned(b, {batch, 4});
    b.gather_columns(A.data(), batch, num_ws * dim, 9, 4, 1.7f, Gc.data());
    out.push_back(b.download(Gc));
    b.scatter_add_columns(Gc.data(), batch, 4, -0.3f, C.data(), num_ws * dim, 20);
    out.push_back(b.download(C));
    auto Rw = poisoned(b, {batch, dim});
    b.reduce_ws(A.data(), batch, num_ws, dim, 0.7f, 2, Rw.data());
    out.push_back(b.download(Rw));
    return out;
}

/// {styles, grad_ws, gathered blocks, scattered matrix, then grad_weight and grad_bias per layer}
/// of the all-layer style ops (w_dim and channel counts that are not multiples of 32, two layers
/// sharing a w index, style columns no layer covers).
template <class B>
Tensors run_style_ops(B& b, std::uint64_t seed) {
    const Index batch = 3, num_ws = 4, w_dim = 37, style_dim = 50;
    struct L {
        Index w_index, offset, channels;
    };
    const L spec[] = {{0, 0, 5}, {2, 5, 40}, {2, 45, 3}};
    std::vector<typename B::Buffer> W, Bi, GW, GB;
    std::vector<nn::StyleAffine> layers;
    for (const L& l : spec) {
        W.push_back(b.upload(random_tensor({l.channels, w_dim}, ++seed)));
        Bi.push_back(b.upload(random_tensor({l.channels}, ++seed)));
        GW.push_back(b.upload(random_tensor({l.channels, w_dim}, ++seed)));
        GB.push_back(b.upload(random_tensor({l.channels}, ++seed)));
        nn::StyleAffine a;
        a.weight = W.back().data(), a.bias = Bi.back().data(), a.w_index = l.w_index, a.offset = l.offset;
        a.channels = l.channels, a.weight_gain = 1.0f / std::sqrt(static_cast<float>(w_dim)), a.bias_gain = 0.5f;
        layers.push_back(a);
    }
    auto Ws = b.upload(random_tensor({batch, num_ws, w_dim}, ++seed));
    auto S = b.upload(random_tensor({batch, style_dim}, ++seed));
    b.affine_styles(Ws.data(), batch, num_ws, w_dim, layers, style_dim, S.data());
    Tensors out{b.download(S)};
    auto G = b.upload(random_tensor({batch, style_dim}, ++seed));
    auto GWs = poisoned(b, {batch, num_ws, w_dim});
    for (std::size_t i = 0; i < layers.size(); ++i) layers[i].grad_weight = GW[i].data(), layers[i].grad_bias = GB[i].data();
    b.affine_styles_backward(Ws.data(), G.data(), batch, num_ws, w_dim, layers, style_dim, GWs.data());
    out.push_back(b.download(GWs));
    std::vector<typename B::Buffer> parts;
    std::vector<nn::ColumnBlock> blocks;
    for (const L& l : spec) {
        parts.push_back(poisoned(b, {batch, l.channels}));
        blocks.push_back({l.offset, l.channels, 0.25f * static_cast<float>(l.channels), parts.back().data()});
    }
    b.gather_column_blocks(G.data(), batch, style_dim, blocks);
    for (auto& t : parts) out.push_back(b.download(t));
    b.scatter_add_column_blocks(blocks, batch, S.data(), style_dim);
    out.push_back(b.download(S));
    for (std::size_t i = 0; i < layers.size(); ++i) {
        out.push_back(b.download(GW[i]));
        out.push_back(b.download(GB[i]));
    }
    return out;
}

/// {grad_x, grad_bias (from gb0), grad_noise, grad_strength (from gs0)} of the fused
/// bias_act + noise backward on y [n, c, spatial] (y: the forward output).
template <class B>
Tensors run_bias_act_noise(B& b, const Tensor<float>& y, const Tensor<float>& gy, const nn::BiasActParams& p,
                           const Tensor<float>& noise, bool per_sample, const Tensor<float>& gb0, float gs0) {
    const Index n = y.dim(0), c = y.dim(1), sp = y.dim(2);
    auto Y = b.upload(y), GY = b.upload(gy), Nz = b.upload(noise), GB = b.upload(gb0);
    auto St = b.upload(Tensor<float>({1}, 0.37f)), GS = b.upload(Tensor<float>({1}, gs0));
    auto GX = poisoned(b, y.shape()), GN = poisoned(b, {n, sp});
    b.bias_act_noise_backward(Y.data(), GY.data(), n, c, sp, p, Nz.data(), per_sample, St.data(), GX.data(), GB.data(),
                              GN.data(), GS.data());
    return {b.download(GX), b.download(GB), b.download(GN), b.download(GS)};
}

/// {y, dcoefs, out} of modconv_forward_fused with per-sample noise [n, out_h, out_w], strength
/// 0.3, a bias and `act`.
template <class B>
Tensors run_modconv_forward_fused(B& b, const Tensor<float>& x, const Tensor<float>& w, const Tensor<float>& s,
                                  const Tensor<float>& filter, const nn::ModConvShape& sh, const nn::BiasActParams& act,
                                  const Tensor<float>& noise, const Tensor<float>& bias) {
    auto X = b.upload(x), Wt = b.upload(w), S = b.upload(s), F = b.upload(filter), Nz = b.upload(noise), Bi = b.upload(bias);
    auto St = b.upload(Tensor<float>({1}, 0.3f));
    const Shape out_shape{sh.batch, sh.out_channels, sh.out_h(), sh.out_w()};
    auto Y = poisoned(b, out_shape), Out = poisoned(b, out_shape), D = poisoned(b, {sh.batch, sh.out_channels});
    b.modconv_forward_fused(X.data(), Wt.data(), S.data(), F.data(), sh, Y.data(), D.data(), Out.data(), Nz.data(), true,
                            St.data(), Bi.data(), act);
    return {b.download(Y), b.download(D), b.download(Out)};
}

/// {grad_x, grad_styles, grad_weight, grad_bias, grad_noise, grad_strength} of
/// modconv_backward_fused from grad_out, given the forward's {y, dcoefs, out} (`fwd`, from one
/// backend for both, so that the activation's masks are the same) and its noise (strength 0.3).
/// Gradients that accumulate start from gw0, gb0 and gs0; `want_grad_w` false passes a null
/// grad_weight (an inversion's case; grad_weight then comes back as gw0).
template <class B>
Tensors run_modconv_backward_fused(B& b, const Tensor<float>& x, const Tensor<float>& w, const Tensor<float>& s,
                                   const Tensor<float>& filter, const nn::ModConvShape& sh, const nn::BiasActParams& act,
                                   const Tensors& fwd, const Tensor<float>& noise, const Tensor<float>& grad_out,
                                   const Tensor<float>& gw0, const Tensor<float>& gb0, float gs0, bool want_grad_w) {
    auto X = b.upload(x), Wt = b.upload(w), S = b.upload(s), F = b.upload(filter), GO = b.upload(grad_out);
    auto Y = b.upload(fwd.at(0)), D = b.upload(fwd.at(1)), Out = b.upload(fwd.at(2)), Nz = b.upload(noise);
    auto St = b.upload(Tensor<float>({1}, 0.3f));
    auto GX = poisoned(b, x.shape()), GS = poisoned(b, s.shape()), GN = poisoned(b, {sh.batch, sh.out_h(), sh.out_w()});
    auto GW = b.upload(gw0), GB = b.upload(gb0), GSt = b.upload(Tensor<float>({1}, gs0));
    b.modconv_backward_fused(X.data(), Wt.data(), S.data(), F.data(), D.data(), Y.data(), Out.data(), GO.data(), sh, act,
                             Nz.data(), true, St.data(), GX.data(), GS.data(), want_grad_w ? GW.data() : nullptr,
                             GB.data(), GN.data(), GSt.data());
    return {b.download(GX), b.download(GS), b.download(GW), b.download(GB), b.download(GN), b.download(GSt)};
}

/// One generator case: mapping (with truncation) -> synthesis -> backward to z and parameters.
struct GenCase {
    StyleGAN2Config cfg;
    NamedTensors params;
    Tensor<float> z;
    Truncation trunc;
    NoiseMode noise_mode = NoiseMode::constant;
    std::uint64_t noise_seed = 0;
    Tensors noise_maps;  ///< for explicit_maps
    Tensor<float> grad_img;
    bool param_grads = true;
};

struct GenResult {
    Tensor<float> ws, img, grad_ws, grad_z, styles;
    Tensors grad_noise, block_img, block_x;
    NamedTensors pgrads;
};

template <class B>
GenResult run_generator(const GenCase& gc, B backend) {
    StyleGAN2<B> g(gc.cfg, gc.params, backend);
    B& b = g.backend();
    GenResult r;
    std::vector<typename B::Buffer> maps;
    for (const auto& m : gc.noise_maps) maps.push_back(b.upload(m));
    const NoiseInput<B> noise{gc.noise_mode, gc.noise_seed, gc.noise_mode == NoiseMode::explicit_maps ? &maps : nullptr};
    typename StyleGAN2<B>::MapCache mc;
    typename StyleGAN2<B>::Cache cache;
    const auto ws = g.mapping(b.upload(gc.z), gc.trunc, &mc);
    const auto img = g.synthesis(ws, noise, &cache);
    r.ws = b.download(ws);
    r.img = b.download(img);
    r.styles = b.download(cache.styles);
    for (const auto& t : cache.block_img) r.block_img.push_back(b.download(t));
    for (const auto& t : cache.block_x) r.block_x.push_back(b.download(t));
    if (gc.param_grads) r.pgrads = g.zero_param_grads();
    SynthesisGradients<B> sg;
    const auto grad_ws = g.synthesis_backward_ws(cache, b.upload(gc.grad_img), gc.param_grads ? &r.pgrads : nullptr, &sg);
    r.grad_ws = b.download(grad_ws);
    for (const auto& t : sg.noise) r.grad_noise.push_back(b.download(t));
    r.grad_z = b.download(g.mapping_backward(mc, grad_ws, gc.param_grads ? &r.pgrads : nullptr));
    return r;
}

/// A random generator case (every parameter perturbed so no path hides behind a zero).
inline GenCase make_gen_case(Index resolution, Index channel_base, Index channel_max, Index batch, Index img_channels,
                             std::optional<float> clamp, NoiseMode mode, std::uint64_t seed) {
    GenCase gc;
    gc.cfg.z_dim = 13;
    gc.cfg.w_dim = 11;
    gc.cfg.img_resolution = resolution;
    gc.cfg.img_channels = img_channels;
    gc.cfg.mapping_layers = 3;
    gc.cfg.channel_base = channel_base;
    gc.cfg.channel_max = channel_max;
    gc.cfg.conv_clamp = clamp;
    gc.params = random_stylegan2_params(gc.cfg, seed);
    Rng rng(seed + 100);
    for (auto& [name, t] : gc.params.items()) {
        if (name.ends_with("resample_filter")) continue;
        for (float& v : t.values()) v += static_cast<float>(0.2 * rng.normal());
    }
    gc.z = random_tensor({batch, gc.cfg.z_dim}, seed + 1);
    gc.trunc = {0.8f, 3};
    gc.noise_mode = mode;
    gc.noise_seed = seed + 2;
    const SynthesisPlan plan(gc.cfg);
    if (mode == NoiseMode::explicit_maps)
        for (std::size_t i = 0; i < plan.noise_resolutions.size(); ++i) {
            const Index r = plan.noise_resolutions[i];
            gc.noise_maps.push_back(i % 2 ? random_tensor({r, r}, seed + 10 + i) : random_tensor({batch, r, r}, seed + 10 + i));
        }
    gc.grad_img = random_tensor({batch, img_channels, resolution, resolution}, seed + 3);
    return gc;
}

}  // namespace ganinv::test
