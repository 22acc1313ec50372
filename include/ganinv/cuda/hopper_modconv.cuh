/// @file hopper_modconv.cuh
/// @brief Host side of the Hopper (wgmma) path of the modulated convolution, up = 1: which
///        shapes take it, the NHWC packing of activations and weights, and the forward and
///        grad-input launches (epilogues of hopper_conv.cuh). modconv.cuh calls these when
///        ModconvContext::wgmma is set and the precision is TF32 or BF16.
#pragma once

#include "ganinv/cuda/device_buffer.hpp"
#include "ganinv/cuda/elementwise.cuh"
#include "ganinv/cuda/hopper_conv.cuh"
#include "ganinv/cuda/hopper_conv_rows.cuh"
#include "ganinv/cuda/hopper_conv_strip.cuh"
#include "ganinv/cuda/launch.cuh"
#include "ganinv/cuda/modconv_aux.cuh"
#include "ganinv/cuda/weight_prep.hpp"
#include "ganinv/nn/modconv_shape.hpp"

#include <algorithm>
#include <type_traits>

namespace ganinv::cuda::hopper {

/// True when this binary carries the sm_90a code and the current device runs it. Synchronizes
/// `stream` (one tiny kernel): call it once, outside graph capture (the Cuda backend does, at
/// construction).
inline bool probe_wgmma(cudaStream_t stream) {
    int dev = 0, major = 0, minor = 0;
    GANINV_CUDA_CHECK(cudaGetDevice(&dev));
    GANINV_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    GANINV_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
    if (major != 9 || minor != 0) return false;
    int* flag = nullptr;
    GANINV_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&flag), sizeof(int), stream));
    kernels::wgmma_probe<><<<1, 1, 0, stream>>>(flag);
    GANINV_CUDA_CHECK_LAUNCH();
    int host = 0;
    GANINV_CUDA_CHECK(cudaMemcpyAsync(&host, flag, sizeof(int), cudaMemcpyDeviceToHost, stream));
    GANINV_CUDA_CHECK(cudaFreeAsync(flag, stream));
    GANINV_CUDA_CHECK(cudaStreamSynchronize(stream));
    return host == 1;
}

/// K slices a split-K block gets at least: enough for the S-stage ring to overlap gather and MMA.
constexpr int kMinSlicesPerSplit = 8;

/// K splits for a conv GEMM of `tiles` output tiles over `slices` K slices: when the tiles alone
/// give fewer than two blocks per SM (the small planes of a batch-1 inversion: a 32^2 layer has
/// 64 tiles for 132 SMs), enough splits for two blocks per SM, each with at least
/// kMinSlicesPerSplit slices; 1 = no split (also for num_sms <= 0).
inline int plan_k_splits(long long tiles, int slices, int num_sms) {
    if (num_sms <= 0 || tiles * 2 >= num_sms) return 1;
    long long want = (2LL * num_sms + tiles - 1) / tiles;
    want = std::min<long long>(want, slices / kMinSlicesPerSplit);
    return want > 1 ? static_cast<int>(want) : 1;
}

/// Tile width (output channels per block) for `cols` columns over `rows` GEMM rows and about
/// `slices` K slices, or 0 when the shape is better served by the portable kernels: fewer than
/// 32 columns, or too few blocks to fill the GPU even with narrow tiles and (with `split_k`)
/// split-K over the slices. `forced` (GemmEngine::wgmma) skips those heuristics: every supported
/// shape takes this path.
inline int choose_tile_cols(long long rows, int cols, int slices, int num_sms, bool forced, bool split_k = true) {
    int bn = 256;
    while (bn > 32 && bn >= 2 * cols) bn /= 2;  // the narrowest power of two >= cols (at least 32)
    if (forced) return bn;
    if (cols < 32) return 0;
    const long long m_tiles = (rows + kBM - 1) / kBM;
    while (bn > 64 && m_tiles * ((cols + bn - 1) / bn) < num_sms) bn /= 2;
    const long long tiles = m_tiles * ((cols + bn - 1) / bn);
    return tiles * 2 >= num_sms || (split_k && plan_k_splits(tiles, slices, num_sms) > 1) ? bn : 0;
}

/// The tile width for modconv forward (cols = O, depth = C) or grad-input (cols = C, depth = O)
/// of `sh` on the wgmma path, 0 when it does not take that path. Supported: odd k with
/// k * k <= 16, and k >= 3 for up = 2 (k = 1 leaves output phases without taps).
inline int hopper_tile_cols(const nn::ModConvShape& sh, bool grad_input, int num_sms, bool forced, bool split_k = true) {
    if (sh.kernel % 2 == 0 || sh.kernel * sh.kernel > kMaxTaps || (sh.up == 2 && sh.kernel < 3)) return 0;
    const Index cols = grad_input ? sh.in_channels : sh.out_channels;
    const Index depth = grad_input ? sh.out_channels : sh.in_channels;
    if (depth < 16 && !forced) return 0;  // a 32/64-element K slice would be mostly padding
    // K slices of the BF16 operand (64 channels each; TF32 has twice as many): the fewer, for the rule.
    const int slices = static_cast<int>(sh.kernel * sh.kernel * ((depth + 63) / 64));
    return choose_tile_cols(sh.batch * sh.in_h * sh.in_w, static_cast<int>(cols), slices, num_sms, forced, split_k);
}

constexpr int kGradStyleReplicas = 32;  ///< copies of grad_s the grad-input epilogue spreads its atomics over

template <class Operand>
constexpr int slice_elems() {
    return OperandTraits<Operand>::kPerSlice;
}

/// A scratch buffer of `count` elements of the operand's storage type (from the float pool).
template <class Operand>
DeviceTensor operand_scratch(const std::shared_ptr<MemoryPool>& pool, long long count) {
    const long long floats = (count * static_cast<long long>(sizeof(typename OperandTraits<Operand>::Storage)) + 3) / 4;
    return DeviceTensor({std::max<long long>(floats, 1)}, pool);
}

template <class Operand, int BN, int S, int MinBlocks, class Epi>
void launch_bn(const PixelGather& g, const void* wt, int cols, const Epi& epi, cudaStream_t stream) {
    constexpr int smem = S * (kBM + BN) * kRowBytes + 1024;
    static_assert(MinBlocks * (smem + 2048) <= 228 * 1024, "the ring does not fit MinBlocks blocks per SM");
    auto* kernel = kernels::nhwc_conv_wgmma<Operand, BN, S, MinBlocks, Epi>;
    GANINV_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    const int n_tiles = (cols + BN - 1) / BN;
    const long long blocks = ((g.M + kBM - 1) / kBM) * n_tiles * g.splits;
    GANINV_CHECK(blocks < (1LL << 31), ShapeError, "wgmma conv: ", blocks, " blocks exceed the grid limit");
    kernel<<<static_cast<unsigned>(blocks), kThreads + 128, smem, stream>>>(
        g, static_cast<const typename OperandTraits<Operand>::Storage*>(wt), n_tiles, epi);
    GANINV_CUDA_CHECK_LAUNCH();
}

template <class Operand, class Epi>
void launch_nhwc_conv(const PixelGather& g, const void* wt, int cols, int bn, const Epi& epi, cudaStream_t stream) {
    switch (bn) {
        // Narrow tiles (the 32/64-channel layers at 512^2 and 1024^2, short K) run two blocks per
        // SM so that one block's epilogue overlaps the other's gather and MMAs.
        case 256: return launch_bn<Operand, 256, 4, 1>(g, wt, cols, epi, stream);
        case 128: return launch_bn<Operand, 128, 6, 1>(g, wt, cols, epi, stream);
        case 64: return launch_bn<Operand, 64, 4, 2>(g, wt, cols, epi, stream);
        case 32: return launch_bn<Operand, 32, 5, 2>(g, wt, cols, epi, stream);
        default: throw ValueError(concat("wgmma conv: no kernel for ", bn, " columns per tile"));
    }
}

/// A zero-padded NHWC copy of an activation, in the operand's storage type.
struct PackedActivation {
    DeviceTensor buf;
    int N = 0, C = 0, Hp = 0, Wp = 0, Cp = 0, pad = 0;
};

/// The packed operand of `src` [N, C, H, W] * scale[n, c] (scale may be null).
template <class Operand>
PackedActivation pack_activation(const std::shared_ptr<MemoryPool>& pool, const float* src, const float* scale, int N,
                                 int C, int H, int W, int pad, cudaStream_t stream) {
    PackedActivation p;
    p.N = N, p.C = C, p.pad = pad, p.Hp = H + 2 * pad, p.Wp = W + 2 * pad;
    p.Cp = (C + slice_elems<Operand>() - 1) / slice_elems<Operand>() * slice_elems<Operand>();
    p.buf = operand_scratch<Operand>(pool, static_cast<long long>(N) * p.Hp * p.Wp * p.Cp);
    const int xblocks = (p.Wp + 63) / 64;
    GANINV_CHECK(N <= 65535 && p.Hp <= 65535, ShapeError, "wgmma conv: batch or height exceeds the grid limits");
    auto* out = reinterpret_cast<typename OperandTraits<Operand>::Storage*>(p.buf.data());
    if (p.Cp == 32)  // a 32-channel operand (TF32, C <= 32: the 1024^2 layers) takes the narrow tile
        kernels::pack_nhwc<Operand, 32><<<dim3(static_cast<unsigned>(xblocks), static_cast<unsigned>(p.Hp),
                                               static_cast<unsigned>(N)),
                                          dim3(32, 8), 0, stream>>>(src, scale, C, H, W, p.Hp, p.Wp, p.Cp, pad, xblocks, out);
    else
        kernels::pack_nhwc<Operand, 64><<<dim3(static_cast<unsigned>(xblocks * ((p.Cp + 63) / 64)), static_cast<unsigned>(p.Hp),
                                               static_cast<unsigned>(N)),
                                          dim3(32, 8), 0, stream>>>(src, scale, C, H, W, p.Hp, p.Wp, p.Cp, pad, xblocks, out);
    GANINV_CUDA_CHECK_LAUNCH();
    return p;
}

/// Packs w into [Rp][T][Cp] rows (r, tap, q) = w[r * sr + q * sq + tap].
template <class Operand>
DeviceTensor pack_weights(const std::shared_ptr<MemoryPool>& pool, const float* w, long long sr, long long sq, int T,
                          int R, int Q, int bn, int Cp, cudaStream_t stream) {
    const int Rp = (R + bn - 1) / bn * bn;
    DeviceTensor buf = operand_scratch<Operand>(pool, static_cast<long long>(Rp) * T * Cp);
    launch_1d(kernels::pack_weights<Operand>, Index{Rp} * T * Cp, stream, w, sr, sq, T, R, Q, Rp, Cp,
              reinterpret_cast<typename OperandTraits<Operand>::Storage*>(buf.data()));
    return buf;
}

/// 1 for the TF32 operand, 2 for BF16 (part of a packed form's cache key).
template <class Operand>
constexpr int operand_id() {
    return std::is_same_v<Operand, Tf32Operand> ? 1 : 2;
}

/// How a conv GEMM's K slices are cut over blocks (splits == 1: one block per output tile).
struct KSplit {
    int splits = 1, slices_per_split = 0;
};

/// Which work layouts the wgmma convs may use (ModconvContext::conv_tuning: CudaOptions::
/// wgmma_split_k, wgmma_row_tiles and wgmma_row_strips).
struct ConvTuning {
    int split_k_sms = 0;     ///< SMs to fill with split-K blocks on planes too small for the GPU (0: no split-K)
    bool row_tiles = false;  ///< stride-1 convs over wide planes may take the row-halo kernel (hopper_conv_rows.cuh)
    bool strips = false;     ///< ... and, with one K slice per tap, its strip variant (hopper_conv_strip.cuh)
    int num_sms = 0;         ///< SMs the strip variant sizes its strips for
};

/// True when a conv GEMM takes the row-halo kernel: allowed, one block per output tile (no
/// split-K), stride 1, a tap rectangle of kRowTaps (3) columns (the 3 x 3 convs; fewer columns
/// gain little: with one, the halo row is the gather's own tile), tiles up to 128 columns, and
/// rows wide enough that the 128-pixel runs waste at most 1/8 of a block on the row's tail
/// (OW = 128, 256, 512, 1024, ...; not the 513-wide phases of the up = 2 transposed conv).
inline bool row_tiles_apply(const ConvTuning& tune, int splits, int step, int kh, int kw, int OW, int bn) {
    if (!tune.row_tiles || splits != 1 || step != 1 || kw != kRowTaps || kh < 1 || kh * kw > kMaxTaps) return false;
    if (bn > 128 || OW < kBM) return false;
    const long long covered = (static_cast<long long>(OW) + kBM - 1) / kBM * kBM;
    return covered * 8 <= static_cast<long long>(OW) * 9;
}

/// True when a row-tile conv (row_tiles_apply) takes the strip variant: allowed, 3 x 3 taps, one K
/// slice per tap (TF32 with <= 32 input channels, BF16 with <= 64: the 512^2 / 1024^2 layers),
/// tiles of at most 64 columns (the 9 weight tiles stay in shared memory).
inline bool strip_applies(const ConvTuning& tune, int kh, int kw, int slices_per_tap, int bn) {
    return tune.strips && tune.num_sms > 0 && kh == kStripTaps && kw == kStripTaps && slices_per_tap == 1 && bn <= 64;
}

/// The tap rectangle of offsets (dy[t], dx[t]), t < taps: origin (ymin, xmin), kh x kw, cell
/// (r, j) -> tap index; false when the taps do not fill a rectangle exactly once.
inline bool tap_rectangle(int taps, const int* dy, const int* dx, int& ymin, int& xmin, int& kh, int& kw, int* cell) {
    if (taps < 1 || taps > kMaxTaps) return false;
    ymin = *std::min_element(dy, dy + taps), xmin = *std::min_element(dx, dx + taps);
    kh = *std::max_element(dy, dy + taps) - ymin + 1, kw = *std::max_element(dx, dx + taps) - xmin + 1;
    if (kh * kw != taps) return false;
    std::fill(cell, cell + taps, -1);
    for (int t = 0; t < taps; ++t) {
        int& c = cell[(dy[t] - ymin) * kw + dx[t] - xmin];
        if (c >= 0) return false;
        c = t;
    }
    return true;
}

/// The split-K plan (plan_k_splits) of a conv GEMM of M output pixels x cols over taps x Cp
/// (num_sms <= 0: none); every split gets at least one slice.
template <class Operand>
KSplit plan_conv_split(long long M, int cols, int bn, int taps, int Cp, int num_sms) {
    const int slices = taps * (Cp / slice_elems<Operand>());
    const long long tiles = ((M + kBM - 1) / kBM) * ((cols + bn - 1) / bn);
    KSplit k;
    const int want = plan_k_splits(tiles, slices, num_sms);
    if (want > 1) {
        k.slices_per_split = (slices + want - 1) / want;
        k.splits = (slices + k.slices_per_split - 1) / k.slices_per_split;
    }
    return k;
}

/// One conv GEMM over the packed activation: output pixel (oy, ox) of an OH x OW grid, tap t
/// reads unpadded source pixel (oy * step + dy[t], ox * step + dx[t]); B = packed weights. With
/// ks.splits > 1 the store must add atomically (into zeroed outputs). Where row_tiles_apply, the
/// row-halo kernel (or where strip_applies too, its strip variant) runs instead of the per-tap
/// gather (the same sums in another order).
template <class Operand, class Store>
void run_conv_gemm(const PackedActivation& a, const DeviceTensor& wt, int taps, const int* dy, const int* dx, int step,
                   int OH, int OW, int cols, int bn, const Store& store, cudaStream_t stream, const KSplit& ks = {},
                   const ConvTuning& tune = {}) {
    GANINV_CHECK(ks.splits == 1 || store.atomic, ValueError, "wgmma conv: a split-K launch needs an atomic store");
    int ymin = 0, xmin = 0, kh = 0, kw = 0, cell[kMaxTaps];
    if (tap_rectangle(taps, dy, dx, ymin, xmin, kh, kw, cell) && row_tiles_apply(tune, ks.splits, step, kh, kw, OW, bn)) {
        const int tiles_x = (OW + kBM - 1) / kBM;
        if (strip_applies(tune, kh, kw, a.Cp / slice_elems<Operand>(), bn)) {
            StripGather sg;
            sg.src = a.buf.data(), sg.Hp = a.Hp, sg.Wp = a.Wp, sg.Cp = a.Cp, sg.OH = OH, sg.OW = OW;
            sg.y0 = a.pad + ymin, sg.x0 = a.pad + xmin;
            std::copy(cell, cell + taps, sg.tap);
            sg.tiles_x = tiles_x;
            sg.strip_rows = strip_rows_for(OH, static_cast<long long>(a.N) * tiles_x * ((cols + bn - 1) / bn), tune.num_sms);
            sg.strips = (OH + sg.strip_rows - 1) / sg.strip_rows;
            launch_nhwc_conv_strip<Operand>(sg, a.N, wt.data(), cols, bn, store, stream);
            return;
        }
        RowGather r;
        r.src = a.buf.data(), r.Hp = a.Hp, r.Wp = a.Wp, r.Cp = a.Cp, r.OH = OH, r.OW = OW;
        r.y0 = a.pad + ymin, r.x0 = a.pad + xmin, r.kh = kh, r.kw = kw;
        std::copy(cell, cell + taps, r.tap);
        r.tiles_per_row = tiles_x;
        r.rows = static_cast<long long>(a.N) * OH;
        launch_nhwc_conv_rows<Operand>(r, wt.data(), cols, bn, store, stream);
        return;
    }
    PixelGather g;
    g.src = a.buf.data(), g.Hp = a.Hp, g.Wp = a.Wp, g.Cp = a.Cp, g.OH = OH, g.OW = OW;
    g.y0 = a.pad, g.x0 = a.pad, g.step = step, g.taps = taps;
    for (int t = 0; t < taps; ++t) g.tap_off[t] = (dy[t] * a.Wp + dx[t]) * a.Cp;
    g.M = static_cast<long long>(a.N) * OH * OW;
    g.splits = ks.splits, g.slices_per_split = ks.slices_per_split;
    launch_nhwc_conv<Operand>(g, wt.data(), cols, bn, store, stream);
}

/// y = d * conv(x * s, w) for up = 1 (+ the fused epilogue when `store.out2` is set). tune.split_k_sms > 0
/// allows split-K for planes too small to fill the GPU (the epilogue then runs as its own pass).
template <class Operand>
void modconv_forward_up1(const std::shared_ptr<MemoryPool>& pool, const float* x, const float* w, const float* s,
                         const nn::ModConvShape& sh, int bn, ForwardStore store, cudaStream_t stream,
                         WeightPrepCache* prep = nullptr, const ConvTuning& tune = {}) {
    const int N = static_cast<int>(sh.batch), C = static_cast<int>(sh.in_channels), O = static_cast<int>(sh.out_channels);
    const int H = static_cast<int>(sh.in_h), W = static_cast<int>(sh.in_w), k = static_cast<int>(sh.kernel);
    const int pad = static_cast<int>(sh.padding());
    const PackedActivation xp = pack_activation<Operand>(pool, x, s, N, C, H, W, pad, stream);
    DeviceTensor wt_local;
    const DeviceTensor& wt = prepared_weights(
        prep, weight_prep_key(WeightPrepCache::packed_operand, w, operand_id<Operand>(), 0, O, C, k, bn, xp.Cp), wt_local,
        [&] { return pack_weights<Operand>(pool, w, static_cast<long long>(C) * k * k, k * k, k * k, O, C, bn, xp.Cp, stream); });
    int dy[kMaxTaps], dx[kMaxTaps];
    for (int t = 0; t < k * k; ++t) dy[t] = t / k - pad, dx[t] = t % k - pad;
    store.cols = O, store.plane = H * W, store.grid_w = W, store.out_w = W, store.out_plane = H * W;
    const KSplit ks = plan_conv_split<Operand>(static_cast<long long>(N) * H * W, O, bn, k * k, xp.Cp, tune.split_k_sms);
    if (ks.splits == 1) {
        run_conv_gemm<Operand>(xp, wt, k * k, dy, dx, 1, H, W, O, bn, store, stream, {}, tune);
        return;
    }
    const ForwardStore fused = store;  // split-K: the partial sums first, then the epilogue's pass
    store.atomic = true, store.out2 = nullptr;
    const long long count = static_cast<long long>(N) * O * H * W;
    GANINV_CUDA_CHECK(cudaMemsetAsync(store.y, 0, sizeof(float) * count, stream));
    run_conv_gemm<Operand>(xp, wt, k * k, dy, dx, 1, H, W, O, bn, store, stream, ks);
    if (fused.out2)
        launch_1d(cuda::kernels::noise_bias_act<float>, count, stream, static_cast<const float*>(store.y),
                  static_cast<long long>(N), static_cast<long long>(O), static_cast<long long>(H) * W, fused.noise,
                  fused.noise_per_sample, fused.strength, fused.bias, fused.act, fused.out2);
}

/// The stride-2 transposed conv of up = 2 into yt [N, O, TH, TW] (before the FIR), d applied:
/// one GEMM per output phase (Y % 2, X % 2) over the taps that reach it, sharing one packed x * s.
template <class Operand>
void modconv_transposed_up2(const std::shared_ptr<MemoryPool>& pool, const float* x, const float* w, const float* s,
                            const float* d, const nn::ModConvShape& sh, int bn, float* yt, cudaStream_t stream,
                            WeightPrepCache* prep = nullptr, const ConvTuning& tune = {}) {
    const int N = static_cast<int>(sh.batch), C = static_cast<int>(sh.in_channels), O = static_cast<int>(sh.out_channels);
    const int H = static_cast<int>(sh.in_h), W = static_cast<int>(sh.in_w), k = static_cast<int>(sh.kernel);
    const int TH = static_cast<int>(sh.transposed_h()), TW = static_cast<int>(sh.transposed_w());
    const PackedActivation xp = pack_activation<Operand>(pool, x, s, N, C, H, W, (k - 1) / 2, stream);
    KSplit plans[2][2];  // a phase that splits K adds into yt: zeroed once for all phases
    bool any_split = false;
    for (int py = 0; py < 2; ++py)
        for (int px = 0; px < 2; ++px) {
            const int T = ((k - py + 1) / 2) * ((k - px + 1) / 2);
            const long long M = static_cast<long long>(N) * ((TH - py + 1) / 2) * ((TW - px + 1) / 2);
            plans[py][px] = plan_conv_split<Operand>(M, O, bn, T, xp.Cp, tune.split_k_sms);
            any_split = any_split || plans[py][px].splits > 1;
        }
    if (any_split) GANINV_CUDA_CHECK(cudaMemsetAsync(yt, 0, sizeof(float) * N * O * TH * TW, stream));
    for (int py = 0; py < 2; ++py)
        for (int px = 0; px < 2; ++px) {
            const int nty = (k - py + 1) / 2, ntx = (k - px + 1) / 2, T = nty * ntx;
            const int THp = (TH - py + 1) / 2, TWp = (TW - px + 1) / 2;
            DeviceTensor wt_local;
            const DeviceTensor& wt = prepared_weights(
                prep, weight_prep_key(WeightPrepCache::packed_operand, w, operand_id<Operand>(), 1 + py * 2 + px, O, C, k, bn, xp.Cp),
                wt_local, [&] {
                    DeviceTensor wp({Index{O} * C * T}, pool);  // tap (jy, jx) = kernel (py + 2 jy, px + 2 jx)
                    launch_1d(cuda::kernels::arrange_weights<float>, wp.numel(), stream, w, O, C, k, py, 2, nty, px, 2, ntx,
                              nullptr, nullptr, 1, wp.data());
                    return pack_weights<Operand>(pool, wp.data(), static_cast<long long>(C) * T, T, T, O, C, bn, xp.Cp, stream);
                });
            int dy[kMaxTaps], dx[kMaxTaps];  // output (oy, ox) of the phase meets input (oy - jy, ox - jx)
            for (int t = 0; t < T; ++t) dy[t] = -(t / ntx), dx[t] = -(t % ntx);
            ForwardStore st;
            st.y = yt, st.d = d, st.cols = O, st.plane = THp * TWp, st.grid_w = TWp;
            st.out_w = TW, st.out_plane = TH * TW, st.ostride = 2, st.oy0 = py, st.ox0 = px;
            st.atomic = plans[py][px].splits > 1;
            run_conv_gemm<Operand>(xp, wt, T, dy, dx, 1, THp, TWp, O, bn, st, stream, plans[py][px], tune);
        }
}

/// The padding of the grad-input conv's packed operand (up = 2 gathers the transposed-conv grid
/// with stride 2 and needs none).
inline int grad_input_pad(const nn::ModConvShape& sh) { return sh.up == 2 ? 0 : static_cast<int>(sh.padding()); }

/// grad_x = s * (adjoint conv of the packed operand gp) and grad_s += sum(acc * x); grad_s must be
/// zeroed. gp holds g * d (up = 1) or gt, the FIR adjoint of grad_y * d on the transposed-conv
/// grid (up = 2), padded by grad_input_pad(sh): pack_activation or the fused backward prologue
/// (modconv_grad_prologue.cuh) makes it.
template <class Operand>
void modconv_grad_input_packed(const std::shared_ptr<MemoryPool>& pool, const PackedActivation& gp, const float* x,
                               const float* w, const float* s, const nn::ModConvShape& sh, int bn, float* grad_x,
                               float* grad_s, cudaStream_t stream, WeightPrepCache* prep = nullptr, const ConvTuning& tune = {}) {
    const int N = static_cast<int>(sh.batch), C = static_cast<int>(sh.in_channels), O = static_cast<int>(sh.out_channels);
    const int H = static_cast<int>(sh.in_h), W = static_cast<int>(sh.in_w), k = static_cast<int>(sh.kernel);
    const bool up2 = sh.up == 2;
    const int pad = grad_input_pad(sh);
    GANINV_CHECK(gp.N == N && gp.C == O && gp.pad == pad, ShapeError, "wgmma grad-input: the packed operand (batch ", gp.N,
                 ", ", gp.C, " channels, pad ", gp.pad, ") does not match the layer (batch ", N, ", ", O,
                 " channels, pad ", pad, ")");
    // rows = input channel c, depth = output channel o: w[o][c][t] at c * kk + o * C * kk + t
    DeviceTensor wt_local;
    const DeviceTensor& wt = prepared_weights(
        prep, weight_prep_key(WeightPrepCache::packed_operand, w, operand_id<Operand>(), 5, O, C, k, bn, gp.Cp), wt_local,
        [&] { return pack_weights<Operand>(pool, w, k * k, static_cast<long long>(C) * k * k, k * k, C, O, bn, gp.Cp, stream); });
    int dy[kMaxTaps], dx[kMaxTaps];
    for (int t = 0; t < k * k; ++t) {
        // up = 1: the adjoint reads g at q + pad - t; up = 2: at 2 q + t (the transposed conv's gather)
        dy[t] = up2 ? t / k : pad - t / k;
        dx[t] = up2 ? t % k : pad - t % k;
    }
    GradInputStore store;
    store.grad_x = grad_x, store.s = s, store.x = x;
    store.cols = C, store.plane = H * W;
    const KSplit ks = plan_conv_split<Operand>(static_cast<long long>(N) * H * W, C, bn, k * k, gp.Cp, tune.split_k_sms);
    if (ks.splits > 1) {  // the partial sums add into a zeroed grad_x
        store.atomic = true;
        if (grad_x) GANINV_CUDA_CHECK(cudaMemsetAsync(grad_x, 0, sizeof(float) * N * C * H * W, stream));
    }
    // Spread the style-gradient atomics over copies of grad_s (see GradInputStore), summed below.
    const long long blocks = (static_cast<long long>(N) * H * W + kBM - 1) / kBM * ((C + bn - 1) / bn) * ks.splits;
    store.replicas = static_cast<int>(std::min<long long>(kGradStyleReplicas, std::max<long long>(1, blocks / 64)));
    store.replica_stride = static_cast<long long>(N) * C;
    DeviceTensor copies;
    if (store.replicas > 1) {
        copies = DeviceTensor({store.replicas * store.replica_stride}, pool);
        GANINV_CUDA_CHECK(cudaMemsetAsync(copies.data(), 0, copies.bytes(), stream));
        store.grad_s = copies.data();
    } else {
        store.grad_s = grad_s;
    }
    run_conv_gemm<Operand>(gp, wt, k * k, dy, dx, up2 ? 2 : 1, H, W, C, bn, store, stream, ks, tune);
    if (store.replicas > 1)
        launch_1d(cuda::kernels::sum_replicas<float>, store.replica_stride, stream, copies.data(), store.replicas,
                  store.replica_stride, grad_s);
}

/// grad_x = s * (adjoint conv of g) and grad_s += sum(acc * x); grad_s must be zeroed. up = 1:
/// g = grad_y * d; up = 2: g = gt, the FIR adjoint of grad_y * d on the transposed-conv grid.
template <class Operand>
void modconv_grad_input(const std::shared_ptr<MemoryPool>& pool, const float* x, const float* w, const float* s,
                        const float* d, const float* g, const nn::ModConvShape& sh, int bn, float* grad_x, float* grad_s,
                        cudaStream_t stream, WeightPrepCache* prep = nullptr, const ConvTuning& tune = {}) {
    const int N = static_cast<int>(sh.batch), O = static_cast<int>(sh.out_channels);
    const int H = static_cast<int>(sh.in_h), W = static_cast<int>(sh.in_w);
    const PackedActivation gp = sh.up == 2 ? pack_activation<Operand>(pool, g, nullptr, N, O, static_cast<int>(sh.transposed_h()),
                                                                      static_cast<int>(sh.transposed_w()), 0, stream)
                                           : pack_activation<Operand>(pool, g, d, N, O, H, W, grad_input_pad(sh), stream);
    modconv_grad_input_packed<Operand>(pool, gp, x, w, s, sh, bn, grad_x, grad_s, stream, prep, tune);
}

}  // namespace ganinv::cuda::hopper
