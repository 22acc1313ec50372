/// @file modconv.cuh
/// @brief Host launchers of the modulated convolution on the GPU, forward and backward, with
///        the semantics of nn::modconv_forward / nn::modconv_backward (same arguments, device
///        pointers). They sequence the kernels of modconv_aux.cuh, conv_gemm.cuh, wgrad_gemm.cuh
///        and upfirdn2d.cuh on one stream; scratch comes from the caller's pool.
///
/// Forward, up = 1: demod coefficients, then one implicit GEMM whose epilogue applies d (and,
/// when asked, noise + bias + lrelu + clamp). Forward, up = 2: the official stride-2 transposed
/// conv as four phase GEMMs (each output phase only meets the taps that reach it), then the FIR
/// filter with gain 4 (+ the fused epilogue). Backward: dL/dd per (n, o) from sum(grad * y),
/// grad-input GEMM (grad_x = acc * s and grad_s = sum acc * x in its epilogue), the
/// demodulation terms, and the per-tap weight-gradient GEMMs when grad_w is requested.
#pragma once

#include "ganinv/cuda/conv_gemm.cuh"
#include "ganinv/cuda/device_buffer.hpp"
#include "ganinv/cuda/elementwise.cuh"
#include "ganinv/cuda/hopper_modconv.cuh"
#include "ganinv/cuda/modconv_aux.cuh"
#include "ganinv/cuda/modconv_grad_prologue.cuh"
#include "ganinv/cuda/pointwise_modconv.cuh"
#include "ganinv/cuda/upfirdn2d.cuh"
#include "ganinv/cuda/wgrad_gemm.cuh"
#include "ganinv/cuda/wgrad_taps.cuh"
#include "ganinv/nn/modconv_shape.hpp"

#include <algorithm>
#include <memory>

namespace ganinv::cuda {

/// Where a modulated conv runs and how.
struct ModconvContext {
    std::shared_ptr<MemoryPool> pool;  ///< scratch; its stream is the stream of every launch
    int num_sms = 132;
    Precision precision = Precision::fp32;
    StyleMode style_mode = StyleMode::automatic;
    bool wgmma = false;         ///< TF32/BF16 up = 1 convs may take the Hopper kernels (hopper_modconv.cuh)
    bool wgmma_forced = false;  ///< ... and take them for every supported shape (GemmEngine::wgmma)
    WgradKernel wgrad = WgradKernel::automatic;  ///< the 3x3 weight-gradient kernel (wgrad_kernel_for)
    WeightPrepCache* prep = nullptr;  ///< prepared weight forms, reused while frozen (cuda/weight_prep.hpp)
    bool fuse_grad_prologue = true;   ///< CudaOptions::fuse_backward_prologue
    bool wgmma_split_k = true;        ///< CudaOptions::wgmma_split_k
    bool wgmma_row_tiles = false;     ///< CudaOptions::wgmma_row_tiles
    bool wgmma_row_strips = false;    ///< CudaOptions::wgmma_row_strips
    /// SMs to fill with split-K blocks on the wgmma path (0: no split-K).
    int split_k_sms() const { return wgmma_split_k ? num_sms : 0; }
    /// The work layouts the wgmma convs may use.
    hopper::ConvTuning conv_tuning() const { return {split_k_sms(), wgmma_row_tiles, wgmma_row_tiles && wgmma_row_strips, num_sms}; }
    cudaStream_t stream() const { return pool->stream(); }
    DeviceTensor scratch(const Shape& s) const { return DeviceTensor(s, pool); }
};

/// The style variant used for a shape: `requested` unless automatic. The rule comes from the
/// measurements in docs/cuda.md (benchmarks/gpu, both variants per shape).
inline StyleMode choose_style_mode(const nn::ModConvShape& sh, StyleMode requested) {
    if (requested != StyleMode::automatic) return requested;
    // Measured on an H100 (docs/cuda.md, bench_gpu --both-style-variants, 2026-11-22): folding
    // the styles into per-sample weights was 0-6.5% slower than scaling the activation tile for
    // every benchmarked shape and precision (512->512, 64^2 and 256^2, batch 1 and 8), and never
    // faster by more than 0.8% (noise): it costs an extra pass over N copies of the weights while
    // the per-element multiply it saves is free next to the gather. Input scaling everywhere.
    (void)sh;
    return StyleMode::scale_input;
}

/// The weight-gradient kernel of a non-pointwise conv. A 1x1 kernel has a single tap: its one
/// GEMM is what all_taps would compute, so it always takes per_tap. Automatic follows the per-layer
/// measurement of `bench_tune_gpu --wgrad-layers` (H100, session 16, after the all-taps kernel's
/// occupancy fix; docs/tuning.md): the all-taps kernel wins every stride-1 3x3 conv (6x at 1024^2
/// x 32 channels, 1.1-1.7x at 8^2-512^2) and every transposed (up = 2) conv whose input plane is
/// 64^2 or more (1.1-1.2x: 512->256 at 64^2, 256->128 at 128^2, 128->64 at 256^2) or has 64 input
/// channels or fewer; the per-tap GEMMs keep the 512-channel transposed convs on 16^2-32^2 planes
/// (up to 1.09x: few output rows per tap there, and the per-tap GEMMs fill the machine better).
/// That rule is the FP32 mode's (FFMA all-taps kernel). In TF32 and BF16 the all-taps kernel runs on
/// the tensor cores (wgrad_taps_tf32.cuh) and wins every 3x3 conv of the 1024^2 config (H100,
/// session 19: 1.3-2.6x over the per-tap GEMMs on the 512-channel transposed convs at 4^2-32^2,
/// which FP32 still sends to them), so automatic takes it everywhere there.
inline WgradKernel wgrad_kernel_for(const nn::ModConvShape& sh, WgradKernel requested,
                                    Precision precision = Precision::fp32) {
    if (sh.kernel != 3 || requested == WgradKernel::per_tap) return WgradKernel::per_tap;
    if (requested == WgradKernel::all_taps || requested == WgradKernel::all_taps_fp32) return requested;
    if (precision != Precision::fp32) return WgradKernel::all_taps;
    const bool large_plane = sh.in_h * sh.in_w >= 64 * 64;
    return sh.up == 1 || sh.in_channels <= 64 || large_plane ? WgradKernel::all_taps : WgradKernel::per_tap;
}

namespace detail {

inline void check_modconv_limits(const nn::ModConvShape& sh) {
    sh.validate();
    const Index big = Index{1} << 30;
    GANINV_CHECK(sh.in_channels * sh.kernel * sh.kernel < big && sh.out_channels * sh.kernel * sh.kernel < big &&
                     (sh.in_h * sh.up + sh.kernel) * (sh.in_w * sh.up + sh.kernel) < big &&
                     sh.batch * sh.out_channels < big && sh.batch * sh.in_channels < big,
                 ShapeError, "modulated conv: shape too large for the CUDA kernels (32-bit plane indexing)");
}

/// w2[o, c] = sum over taps of w[o, c, t]^2 (demodulation).
inline const DeviceTensor& weight_sq_norms(const ModconvContext& ctx, const float* w, int O, int C, int kk,
                                           DeviceTensor& local) {
    return prepared_weights(ctx.prep, weight_prep_key(WeightPrepCache::squared_norms, w, O, C, kk), local, [&] {
        DeviceTensor w2 = ctx.scratch({Index{O} * C});
        launch_1d(kernels::weight_sq_norm<float>, w2.numel(), ctx.stream(), w, O, C, kk, w2.data());
        return w2;
    });
}

/// d[n, o] (ones without demodulation).
inline void demod_forward(const ModconvContext& ctx, const float* w, const float* s, const nn::ModConvShape& sh,
                          float* d) {
    const int N = static_cast<int>(sh.batch), C = static_cast<int>(sh.in_channels), O = static_cast<int>(sh.out_channels);
    const int kk = static_cast<int>(sh.kernel * sh.kernel);
    if (!sh.demodulate) {
        launch_1d(kernels::fill<float>, sh.batch * O, ctx.stream(), d, static_cast<long long>(N) * O, 1.0f);
        return;
    }
    DeviceTensor local;
    const DeviceTensor& w2 = weight_sq_norms(ctx, w, O, C, kk, local);
    launch_1d(kernels::demod_coefficients<float>, Index{N} * O * 32, ctx.stream(), w2.data(), s, N, O, C, d);
}

/// The wgmma tile width for `sh` (forward: columns = O; grad-input: columns = C), or 0 when the
/// portable kernels run it (FP32, folded styles, no sm_90a code, or a shape the heuristics skip).
inline int wgmma_tile_cols(const ModconvContext& ctx, const nn::ModConvShape& sh, bool grad_input, bool fold = false) {
    if (!ctx.wgmma || fold || ctx.precision == Precision::fp32) return 0;
    return hopper::hopper_tile_cols(sh, grad_input, ctx.num_sms, ctx.wgmma_forced, ctx.wgmma_split_k);
}

/// Calls f(operand) with the wgmma operand tag of the context's precision (TF32 or BF16).
template <class F>
void with_wgmma_operand(const ModconvContext& ctx, F&& f) {
    if (ctx.precision == Precision::bf16) f(hopper::Bf16Operand{});
    else f(hopper::Tf32Operand{});
}

/// up = 2 on the portable kernels: the stride-2 transposed conv into yt [N, O, TH, TW], phase by
/// phase (each output phase only meets the taps that reach it).
inline void transposed_conv_phases(const ModconvContext& ctx, const float* x, const float* w, const float* s,
                                   const float* dcoefs, const float* dscale, const nn::ModConvShape& sh, bool fold,
                                   float* yt) {
    const int N = static_cast<int>(sh.batch), C = static_cast<int>(sh.in_channels), O = static_cast<int>(sh.out_channels);
    const int H = static_cast<int>(sh.in_h), W = static_cast<int>(sh.in_w), k = static_cast<int>(sh.kernel);
    const int TH = static_cast<int>(sh.transposed_h()), TW = static_cast<int>(sh.transposed_w());
    cudaStream_t stream = ctx.stream();
    gemm::SplitK plans[2][2];
    bool need_zero = false;  // a phase without taps (k = 1) or a split-K phase accumulates into zeros
    for (int py = 0; py < 2; ++py)
        for (int px = 0; px < 2; ++px) {
            const int T = ((k - py + 1) / 2) * ((k - px + 1) / 2);
            const int THp = (TH - py + 1) / 2, TWp = (TW - px + 1) / 2;
            const long long blocks = ((Index{THp} * TWp + gemm::kBN - 1) / gemm::kBN) * ((O + gemm::kBM - 1) / gemm::kBM) * N;
            plans[py][px] = T > 0 ? gemm::plan_split_k(blocks, C * T, ctx.num_sms, 65535 / N) : gemm::SplitK{};
            need_zero = need_zero || T == 0 || plans[py][px].splits > 1;
        }
    if (need_zero) GANINV_CUDA_CHECK(cudaMemsetAsync(yt, 0, sizeof(float) * N * O * TH * TW, stream));
    for (int py = 0; py < 2; ++py)
        for (int px = 0; px < 2; ++px) {
            const int nty = (k - py + 1) / 2, ntx = (k - px + 1) / 2, T = nty * ntx;
            const int THp = (TH - py + 1) / 2, TWp = (TW - px + 1) / 2;
            const gemm::SplitK sk = plans[py][px];
            if (T == 0) continue;
            const int nb = fold ? N : 1;
            auto arrange = [&] {
                DeviceTensor wp = ctx.scratch({Index{nb} * O * C * T});
                launch_1d(kernels::arrange_weights<float>, wp.numel(), stream, w, O, C, k, py, 2, nty, px, 2, ntx,
                          fold ? s : nullptr, (fold && sh.demodulate) ? dcoefs : nullptr, nb, wp.data());
                return wp;
            };
            DeviceTensor wp_local;  // folded styles change every call: only the plain arrangement is kept
            const DeviceTensor& wp = fold ? (wp_local = arrange())
                                          : prepared_weights(ctx.prep, weight_prep_key(WeightPrepCache::arranged_phase, w, O, C, k, py, px),
                                                     wp_local, arrange);
            gemm::DenseA a{wp.data(), fold ? static_cast<long long>(O) * C * T : 0, C * T};
            gemm::ConvGeom g;
            g.src = x;
            g.scale = fold ? nullptr : s;
            g.C = C, g.SH = H, g.SW = W, g.OH = THp, g.OW = TWp, g.T = T, g.ntx = ntx;
            g.ay = 0, g.by = -1, g.ax = 0, g.bx = -1, g.stride = 1;
            gemm::FwdEpilogue epi;
            epi.out = yt, epi.M = O, epi.OH = THp, epi.OW = TWp, epi.outH = TH, epi.outW = TW;
            epi.ostride = 2, epi.oy0 = py, epi.ox0 = px, epi.dscale = dscale, epi.atomic = sk.splits > 1;
            gemm::launch_conv_gemm(ctx.precision, a, g, epi, N, O, sk, stream);
        }
}

}  // namespace detail

/// y[N, O, out_h, out_w] and dcoefs[N, O] as nn::modconv_forward; with `fused`, also
/// fused->out = bias_act(y + noise + bias) in the same pass where the schedule allows.
inline void modconv_forward(const ModconvContext& ctx, const float* x, const float* w, const float* s,
                            const float* filter, const nn::ModConvShape& sh, float* y, float* dcoefs,
                            const ModconvFusedEpilogue* fused = nullptr) {
    detail::check_modconv_limits(sh);
    const int N = static_cast<int>(sh.batch), C = static_cast<int>(sh.in_channels), O = static_cast<int>(sh.out_channels);
    const int H = static_cast<int>(sh.in_h), W = static_cast<int>(sh.in_w), k = static_cast<int>(sh.kernel);
    const int kk = k * k, pad = static_cast<int>(sh.padding());
    cudaStream_t stream = ctx.stream();
    detail::demod_forward(ctx, w, s, sh, dcoefs);
    const StyleMode mode = choose_style_mode(sh, ctx.style_mode);
    const bool fold = mode == StyleMode::fold_weights;
    const float* dscale = (!fold && sh.demodulate) ? dcoefs : nullptr;

    if (pointwise_modconv_eligible(sh)) {  // ToRGB: memory-bound, FP32 in every mode
        pointwise_modconv_forward(x, w, s, sh.demodulate ? dcoefs : nullptr, sh, y, fused ? *fused : ModconvFusedEpilogue{},
                                  stream);
        return;
    }
    if (const int bn = sh.up == 1 ? detail::wgmma_tile_cols(ctx, sh, false, fold) : 0) {
        hopper::ForwardStore st;
        st.y = y, st.d = dscale;
        if (fused) {
            st.out2 = fused->out, st.noise = fused->noise, st.noise_per_sample = fused->noise_per_sample;
            st.strength = fused->strength, st.bias = fused->bias, st.act = fused->act;
        }
        detail::with_wgmma_operand(ctx, [&](auto op) {
            hopper::modconv_forward_up1<decltype(op)>(ctx.pool, x, w, s, sh, bn, st, stream, ctx.prep, ctx.conv_tuning());
        });
        return;
    }
    if (sh.up == 1) {
        gemm::ConvGeom g;
        g.src = x;
        g.scale = fold ? nullptr : s;
        g.C = C, g.SH = H, g.SW = W, g.OH = H, g.OW = W, g.T = kk, g.ntx = k;
        g.ay = -pad, g.by = 1, g.ax = -pad, g.bx = 1, g.stride = 1;
        DeviceTensor wf;
        gemm::DenseA a{w, 0, C * kk};
        if (fold) {
            wf = ctx.scratch({Index{N} * O * C * kk});
            launch_1d(kernels::arrange_weights<float>, wf.numel(), stream, w, O, C, k, 0, 1, k, 0, 1, k, s,
                      sh.demodulate ? dcoefs : nullptr, N, wf.data());
            a = {wf.data(), static_cast<long long>(O) * C * kk, C * kk};
        }
        const long long blocks = ((Index{H} * W + gemm::kBN - 1) / gemm::kBN) * ((O + gemm::kBM - 1) / gemm::kBM) * N;
        const gemm::SplitK sk = gemm::plan_split_k(blocks, C * kk, ctx.num_sms, 65535 / N);
        gemm::FwdEpilogue epi;
        epi.out = y, epi.M = O, epi.OH = H, epi.OW = W, epi.outH = H, epi.outW = W, epi.dscale = dscale;
        epi.atomic = sk.splits > 1;
        if (epi.atomic) GANINV_CUDA_CHECK(cudaMemsetAsync(y, 0, sizeof(float) * N * O * H * W, stream));
        if (fused && !epi.atomic) {
            epi.out2 = fused->out, epi.noise = fused->noise, epi.noise_per_sample = fused->noise_per_sample;
            epi.strength = fused->strength, epi.bias = fused->bias, epi.act = fused->act;
        }
        gemm::launch_conv_gemm(ctx.precision, a, g, epi, N, O, sk, stream);
        if (fused && epi.atomic)
            launch_1d(kernels::noise_bias_act<float>, Index{N} * O * H * W, stream, y, static_cast<long long>(N),
                      static_cast<long long>(O), static_cast<long long>(H) * W, fused->noise, fused->noise_per_sample,
                      fused->strength, fused->bias, fused->act, fused->out);
        return;
    }

    // up == 2: transposed conv (stride 2) into yt [N, O, TH, TW], phase by phase.
    const int TH = static_cast<int>(sh.transposed_h()), TW = static_cast<int>(sh.transposed_w());
    DeviceTensor yt = ctx.scratch({Index{N}, Index{O}, Index{TH}, Index{TW}});
    if (const int bn = detail::wgmma_tile_cols(ctx, sh, false, fold))
        detail::with_wgmma_operand(ctx, [&](auto op) {
            hopper::modconv_transposed_up2<decltype(op)>(ctx.pool, x, w, s, dscale, sh, bn, yt.data(), stream, ctx.prep,
                                                         ctx.conv_tuning());
        });
    else
        detail::transposed_conv_phases(ctx, x, w, s, dcoefs, dscale, sh, fold, yt.data());
    const FirGeom fg = FirGeom::make(TH, TW, sh.filter_size, sh.filter_size, sh.fir_params());
    FirEpilogue fe;
    fe.channels = O;
    if (fused) {
        fe.out2 = fused->out, fe.noise = fused->noise, fe.noise_per_sample = fused->noise_per_sample;
        fe.strength = fused->strength, fe.bias = fused->bias, fe.act = fused->act;
    }
    upfirdn2d_forward(yt.data(), Index{N} * O, fg, filter, y, stream, fe);
}

namespace detail {

/// What modconv_backward_impl may take ready-made from the fused backward prologue
/// (modconv_grad_prologue.cuh) instead of deriving it from grad_y.
struct PreparedBackward {
    const hopper::PackedActivation* operand = nullptr;  ///< the grad-input conv's packed g * d (wgmma path)
    const float* coef = nullptr;                        ///< [N, O] dL/dd * d^3 (demodulated layers)
};

inline void modconv_backward_impl(const ModconvContext& ctx, const float* x, const float* w, const float* s,
                                  const float* filter, const float* dcoefs, const float* y, const float* grad_y,
                                  const nn::ModConvShape& sh, float* grad_x, float* grad_s, float* grad_w,
                                  bool accumulate_grad_x, const PreparedBackward& pre);

}  // namespace detail

/// Backward of modconv_forward, as nn::modconv_backward: grad_x (may be null) and grad_s are
/// overwritten, grad_w (may be null) accumulates. With `accumulate_grad_x`, grad_x += instead
/// (the ToRGB kernel does it in place; the other paths go through a scratch tensor).
inline void modconv_backward(const ModconvContext& ctx, const float* x, const float* w, const float* s,
                             const float* filter, const float* dcoefs, const float* y, const float* grad_y,
                             const nn::ModConvShape& sh, float* grad_x, float* grad_s, float* grad_w,
                             bool accumulate_grad_x = false) {
    detail::modconv_backward_impl(ctx, x, w, s, filter, dcoefs, y, grad_y, sh, grad_x, grad_s, grad_w,
                                  accumulate_grad_x, {});
}

/// Whether modconv_backward_fused takes the fused prologue for `sh`: a demodulated up = 1 conv
/// whose grad-input runs on the wgmma path, when no weight gradient is wanted (it would read
/// g_pre, which the fused pass never stores).
inline bool modconv_grad_prologue_applies(const ModconvContext& ctx, const nn::ModConvShape& sh, bool want_grad_w) {
    return ctx.fuse_grad_prologue && !want_grad_w && sh.up == 1 && sh.demodulate && !pointwise_modconv_eligible(sh) &&
           detail::wgmma_tile_cols(ctx, sh, true) != 0;
}

/// The backward of modconv_forward followed by out = bias_act(y + strength * noise + bias), for
/// a shape modconv_grad_prologue_applies to: the fused prologue (g_pre = bias_act'(out) * grad_out,
/// packed as g_pre * d, the demodulation sums, the noise / strength / bias gradients) in one pass,
/// then the grad-input conv and the demodulation terms as modconv_backward. grad_x, grad_s and
/// grad_noise are overwritten; grad_bias and grad_strength accumulate (each may be null).
inline void modconv_backward_prologue_fused(const ModconvContext& ctx, const float* x, const float* w, const float* s,
                                            const float* dcoefs, const float* y, const float* out,
                                            const float* grad_out, const nn::ModConvShape& sh,
                                            const nn::BiasActParams& act, const float* noise, bool noise_per_sample,
                                            const float* strength, float* grad_x, float* grad_s, float* grad_bias,
                                            float* grad_noise, float* grad_strength, bool accumulate_grad_x = false) {
    detail::check_modconv_limits(sh);
    GANINV_CHECK(modconv_grad_prologue_applies(ctx, sh, false), ValueError,
                 "modconv_backward_prologue_fused: the shape does not take the fused prologue (",
                 "modconv_grad_prologue_applies is false)");
    const int N = static_cast<int>(sh.batch), O = static_cast<int>(sh.out_channels);
    cudaStream_t stream = ctx.stream();
    ModconvGradPrologue a;
    a.out = out, a.grad = grad_out, a.y = y, a.d = dcoefs, a.act = act;
    a.noise = noise, a.noise_per_sample = noise_per_sample, a.strength = strength;
    a.grad_bias = grad_bias, a.grad_noise = noise ? grad_noise : nullptr, a.grad_strength = noise ? grad_strength : nullptr;
    a.N = N, a.C = O, a.H = static_cast<int>(sh.out_h()), a.W = static_cast<int>(sh.out_w());
    const int pad = hopper::grad_input_pad(sh);
    const long long blocks = static_cast<long long>(N) * ((a.W + 2 * pad + 63) / 64) *
                             ((a.H + 2 * pad + kernels::kPrologueRows - 1) / kernels::kPrologueRows);
    // Copies of the demodulation sums to spread the blocks' atomics over (as the grad-input
    // conv spreads its style-gradient atomics), summed below.
    a.replicas = static_cast<int>(std::min<long long>(hopper::kGradStyleReplicas, std::max<long long>(1, blocks / 64)));
    DeviceTensor sums = ctx.scratch({Index{a.replicas} * N * O}), coef = ctx.scratch({Index{N} * O});
    GANINV_CUDA_CHECK(cudaMemsetAsync(sums.data(), 0, sums.bytes(), stream));
    a.demod_sums = sums.data();
    detail::with_wgmma_operand(ctx, [&](auto op) {
        const hopper::PackedActivation gp =
            modconv_grad_prologue<decltype(op)>(ctx.pool, a, pad, stream);
        launch_1d(kernels::demod_replicas_finish<float>, coef.numel(), stream, static_cast<const float*>(sums.data()),
                  a.replicas, static_cast<long long>(coef.numel()), dcoefs, coef.data());
        detail::modconv_backward_impl(ctx, x, w, s, nullptr, dcoefs, y, nullptr, sh, grad_x, grad_s, nullptr,
                                      accumulate_grad_x, {&gp, coef.data()});
    });
}

/// modconv_backward of a demodulated shape whose demodulation sums sum_p grad_y * y ([N, O]) the
/// caller has already added up (Cuda::modconv_backward_fused: in the epilogue's backward pass):
/// they become the coefficients in place (x d^2, so `sums` is overwritten) and the conv's backward
/// skips its own pass over grad_y and y.
inline void modconv_backward_from_sums(const ModconvContext& ctx, const float* x, const float* w, const float* s,
                                       const float* filter, const float* dcoefs, const float* y, const float* grad_y,
                                       const nn::ModConvShape& sh, float* grad_x, float* grad_s, float* grad_w,
                                       bool accumulate_grad_x, float* sums) {
    GANINV_CHECK(sh.demodulate && sums, ValueError, "modconv_backward_from_sums: a demodulated shape and its sums");
    const long long n = static_cast<long long>(sh.batch) * sh.out_channels;
    launch_1d(kernels::demod_grad_finish<float>, n, ctx.stream(), sums, dcoefs, n);
    detail::modconv_backward_impl(ctx, x, w, s, filter, dcoefs, y, grad_y, sh, grad_x, grad_s, grad_w,
                                  accumulate_grad_x, {nullptr, sums});
}

inline void detail::modconv_backward_impl(const ModconvContext& ctx, const float* x, const float* w, const float* s,
                                          const float* filter, const float* dcoefs, const float* y,
                                          const float* grad_y, const nn::ModConvShape& sh, float* grad_x,
                                          float* grad_s, float* grad_w, bool accumulate_grad_x,
                                          const PreparedBackward& pre) {
    detail::check_modconv_limits(sh);
    const int N = static_cast<int>(sh.batch), C = static_cast<int>(sh.in_channels), O = static_cast<int>(sh.out_channels);
    const int H = static_cast<int>(sh.in_h), W = static_cast<int>(sh.in_w), k = static_cast<int>(sh.kernel);
    const int kk = k * k, pad = static_cast<int>(sh.padding());
    const int OH = static_cast<int>(sh.out_h()), OW = static_cast<int>(sh.out_w());
    cudaStream_t stream = ctx.stream();
    const float* dplane = sh.demodulate ? dcoefs : nullptr;
    // A prepared operand replaces grad_y, which then is not there for the other paths to read.
    GANINV_CHECK(!pre.operand || (sh.up == 1 && !grad_w && (!sh.demodulate || pre.coef)), ValueError,
                 "modconv backward: a prepared operand needs up = 1, no weight gradient and the demodulation sums");

    DeviceTensor w2_local, coef;
    const float* w2 = nullptr;
    const float* coef_ptr = pre.coef;
    if (sh.demodulate) w2 = detail::weight_sq_norms(ctx, w, O, C, kk, w2_local).data();
    if (sh.demodulate && !coef_ptr) {
        coef = ctx.scratch({Index{N} * O});
        coef_ptr = coef.data();
        GANINV_CUDA_CHECK(cudaMemsetAsync(coef.data(), 0, coef.bytes(), stream));
        const long long hw = static_cast<long long>(OH) * OW;
        const long long chunks = std::max<long long>(1, std::min<long long>((hw + 8 * kBlock - 1) / (8 * kBlock),
                                                                           (4LL * ctx.num_sms * 8 + N * O - 1) / (N * O)));
        kernels::demod_grad_coef<float><<<dim3(static_cast<unsigned>(N * O), static_cast<unsigned>(std::min(chunks, 65535LL))),
                                          kBlock, 0, stream>>>(grad_y, y, hw, coef.data());
        GANINV_CUDA_CHECK_LAUNCH();
        launch_1d(kernels::demod_grad_finish<float>, coef.numel(), stream, coef.data(), dcoefs, static_cast<long long>(coef.numel()));
    }
    GANINV_CUDA_CHECK(cudaMemsetAsync(grad_s, 0, sizeof(float) * N * C, stream));
    const bool pointwise = pointwise_modconv_eligible(sh);
    GANINV_CHECK(!pre.operand || (!pointwise && detail::wgmma_tile_cols(ctx, sh, true) != 0), ValueError,
                 "modconv backward: a prepared operand needs the wgmma grad-input path");
    if (pointwise)
        pointwise_modconv_backward(x, w, s, dplane, grad_y, sh, grad_x, accumulate_grad_x, grad_s, grad_w, ctx.num_sms,
                                   stream);
    DeviceTensor gx_scratch;  // accumulate_grad_x on the GEMM paths: computed here, then added
    float* const grad_x_out = grad_x;
    if (!pointwise && accumulate_grad_x && grad_x) {
        gx_scratch = ctx.scratch({Index{N} * C * H * W});
        grad_x = gx_scratch.data();
    }

    // Gradient w.r.t. the (modulated) input: a conv of grad_y * d with the transposed weights.
    DeviceTensor gt;  // up = 2: the FIR adjoint of grad_y * d on the transposed-conv grid
    if (sh.up == 2 && !pointwise) {
        const int TH = static_cast<int>(sh.transposed_h()), TW = static_cast<int>(sh.transposed_w());
        gt = ctx.scratch({Index{N}, Index{O}, Index{TH}, Index{TW}});
        const FirGeom fg = FirGeom::make(TH, TW, sh.filter_size, sh.filter_size, sh.fir_params());
        upfirdn2d_backward(grad_y, Index{N} * O, fg, filter, gt.data(), stream, dplane);
    }
    const float* g_src = sh.up == 2 ? gt.data() : grad_y;  // up = 2: d is already in gt
    if (const int bn = pointwise ? 0 : detail::wgmma_tile_cols(ctx, sh, true)) {
        detail::with_wgmma_operand(ctx, [&](auto op) {
            if (pre.operand)
                hopper::modconv_grad_input_packed<decltype(op)>(ctx.pool, *pre.operand, x, w, s, sh, bn, grad_x, grad_s,
                                                                stream, ctx.prep, ctx.conv_tuning());
            else
                hopper::modconv_grad_input<decltype(op)>(ctx.pool, x, w, s, dplane, g_src, sh, bn, grad_x, grad_s,
                                                         stream, ctx.prep, ctx.conv_tuning());
        });
    } else if (!pointwise) {  // (the pointwise kernel above did grad_x, grad_s and its grad_w part)
        DeviceTensor wT_local;
        const DeviceTensor& wT =
            prepared_weights(ctx.prep, weight_prep_key(WeightPrepCache::transposed, w, O, C, kk), wT_local, [&] {
                DeviceTensor t = ctx.scratch({Index{C} * O * kk});
                launch_1d(kernels::transpose_weights<float>, t.numel(), stream, w, O, C, kk, t.data());
                return t;
            });
        gemm::ConvGeom g;
        g.C = O, g.OH = H, g.OW = W, g.T = kk, g.ntx = k;
        if (sh.up == 1) {
            g.src = grad_y, g.scale = dplane, g.SH = H, g.SW = W;
            g.ay = pad, g.by = -1, g.ax = pad, g.bx = -1, g.stride = 1;
        } else {
            g.src = gt.data(), g.scale = nullptr, g.SH = static_cast<int>(sh.transposed_h()), g.SW = static_cast<int>(sh.transposed_w());
            g.ay = 0, g.by = 1, g.ax = 0, g.bx = 1, g.stride = 2;
        }
        const long long blocks = ((Index{H} * W + gemm::kBN - 1) / gemm::kBN) * ((C + gemm::kBM - 1) / gemm::kBM) * N;
        const gemm::SplitK sk = gemm::plan_split_k(blocks, O * kk, ctx.num_sms, 65535 / N);
        gemm::BwdDataEpilogue epi;
        epi.grad_x = grad_x, epi.s = s, epi.x = x, epi.grad_s = grad_s, epi.M = C, epi.N = H * W;
        epi.atomic = sk.splits > 1;
        if (epi.atomic && grad_x) GANINV_CUDA_CHECK(cudaMemsetAsync(grad_x, 0, sizeof(float) * N * C * H * W, stream));
        gemm::launch_conv_gemm(ctx.precision, gemm::DenseA{wT.data(), 0, O * kk}, g, epi, N, C, sk, stream);
    }

    if (gx_scratch.numel() > 0)
        launch_1d(kernels::axpy<float>, gx_scratch.numel(), stream, static_cast<long long>(gx_scratch.numel()), 1.0f,
                  gx_scratch.data(), grad_x_out);
    if (sh.demodulate)  // grad_s[n, c] -= s[n, c] * sum_o coef[n, o] * w2[o, c]
        kernels::launch_rows_times_matrix<1>(coef_ptr, N, O, w2, C, 1.0f, s, grad_s, stream);
    if (!grad_w) return;
    if (sh.demodulate)
        launch_1d(kernels::demod_backward_weight<float>, Index{O} * C, stream, coef_ptr, s, w, N, O, C, kk,
                  grad_w);
    if (pointwise) return;  // its GEMM part came with the pointwise kernel
    gemm::PixelOperand A, B;
    B.src = x, B.scale = s, B.R = C, B.SH = H, B.SW = W;
    if (sh.up == 1) {
        A.src = grad_y, A.scale = dplane, A.R = O, A.SH = H, A.SW = W;
        B.base_y = -pad, B.base_x = -pad, B.tap_mul = 1;
    } else {
        A.src = gt.data(), A.R = O, A.SH = static_cast<int>(sh.transposed_h()), A.SW = static_cast<int>(sh.transposed_w());
        A.stride = 2, A.tap_mul = 1;
    }
    if (const WgradKernel wk = wgrad_kernel_for(sh, ctx.wgrad, ctx.precision); wk != WgradKernel::per_tap)
        gemm::launch_wgrad_taps(wk == WgradKernel::all_taps_fp32 ? gemm::TapArithmetic::ffma
                                                                 : gemm::tap_arithmetic_for(ctx.precision),
                                A, B, grad_w, O, C, k, H, W, N, ctx.num_sms, stream);
    else
        gemm::launch_wgrad(ctx.precision, A, B, grad_w, O, C, k, H, W, N, ctx.num_sms, stream);
}

}  // namespace ganinv::cuda
