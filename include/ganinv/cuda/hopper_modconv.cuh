/// @file hopper_modconv.cuh
/// @brief Host side of the Hopper (wgmma) path of the modulated convolution, up = 1: which
///        shapes take it, the NHWC packing of activations and weights, and the forward and
///        grad-input launches (epilogues of hopper_conv.cuh). modconv.cuh calls these when
///        ModconvContext::wgmma is set and the precision is TF32 or BF16.
#pragma once

#include "ganinv/cuda/device_buffer.hpp"
#include "ganinv/cuda/hopper_conv.cuh"
#include "ganinv/cuda/launch.cuh"
#include "ganinv/nn/modconv_shape.hpp"

#include <algorithm>

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

/// Tile width (output channels per block) for `cols` columns over `rows` GEMM rows, or 0 when
/// the shape is better served by the portable kernels: fewer than 32 columns, or too few
/// blocks to fill the GPU even with narrow tiles (small planes: those use split-K there).
/// `forced` (GemmEngine::wgmma) skips those heuristics: every supported shape takes this path.
inline int choose_tile_cols(long long rows, int cols, int num_sms, bool forced) {
    int bn = 256;
    while (bn > 32 && bn >= 2 * cols) bn /= 2;  // the narrowest power of two >= cols (at least 32)
    if (forced) return bn;
    if (cols < 32) return 0;
    const long long m_tiles = (rows + kBM - 1) / kBM;
    while (bn > 64 && m_tiles * ((cols + bn - 1) / bn) < num_sms) bn /= 2;
    return m_tiles * ((cols + bn - 1) / bn) * 2 >= num_sms ? bn : 0;
}

/// The tile width for modconv forward (cols = O, depth = C) or grad-input (cols = C, depth = O)
/// of `sh` on the wgmma path, 0 when it does not take that path. Supported: up = 1, odd k with
/// k * k <= 16.
inline int hopper_tile_cols(const nn::ModConvShape& sh, bool grad_input, int num_sms, bool forced) {
    if (sh.up != 1 || sh.kernel % 2 == 0 || sh.kernel * sh.kernel > kMaxTaps) return 0;
    const Index cols = grad_input ? sh.in_channels : sh.out_channels;
    const Index depth = grad_input ? sh.out_channels : sh.in_channels;
    if (depth < 16 && !forced) return 0;  // a 32/64-element K slice would be mostly padding
    return choose_tile_cols(sh.batch * sh.out_h() * sh.out_w(), static_cast<int>(cols), num_sms, forced);
}

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

template <class Operand, int BN, int S, class Epi>
void launch_bn(const PixelGather& g, const void* wt, int cols, const Epi& epi, cudaStream_t stream) {
    constexpr int smem = S * (kBM + BN) * kRowBytes + 1024;
    auto* kernel = kernels::nhwc_conv_wgmma<Operand, BN, S, Epi>;
    GANINV_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    const int n_tiles = (cols + BN - 1) / BN;
    const long long blocks = ((g.M + kBM - 1) / kBM) * n_tiles;
    GANINV_CHECK(blocks < (1LL << 31), ShapeError, "wgmma conv: ", blocks, " blocks exceed the grid limit");
    kernel<<<static_cast<unsigned>(blocks), kThreads + 128, smem, stream>>>(
        g, static_cast<const typename OperandTraits<Operand>::Storage*>(wt), n_tiles, epi);
    GANINV_CUDA_CHECK_LAUNCH();
}

template <class Operand, class Epi>
void launch_nhwc_conv(const PixelGather& g, const void* wt, int cols, int bn, const Epi& epi, cudaStream_t stream) {
    switch (bn) {
        case 256: return launch_bn<Operand, 256, 4>(g, wt, cols, epi, stream);
        case 128: return launch_bn<Operand, 128, 6>(g, wt, cols, epi, stream);
        case 64: return launch_bn<Operand, 64, 8>(g, wt, cols, epi, stream);
        case 32: return launch_bn<Operand, 32, 8>(g, wt, cols, epi, stream);
        default: throw ValueError(concat("wgmma conv: no kernel for ", bn, " columns per tile"));
    }
}

/// The zero-padded NHWC operand of `src` [N, C, H, W] * scale[n, c] (scale may be null).
template <class Operand>
DeviceTensor pack_activation(const std::shared_ptr<MemoryPool>& pool, const float* src, const float* scale, int N,
                             int C, int H, int W, int pad, int& Cp, cudaStream_t stream) {
    Cp = (C + slice_elems<Operand>() - 1) / slice_elems<Operand>() * slice_elems<Operand>();
    const int Hp = H + 2 * pad, Wp = W + 2 * pad;
    DeviceTensor buf = operand_scratch<Operand>(pool, static_cast<long long>(N) * Hp * Wp * Cp);
    const int xblocks = (Wp + 63) / 64;
    GANINV_CHECK(N <= 65535 && Hp <= 65535, ShapeError, "wgmma conv: batch or height exceeds the grid limits");
    kernels::pack_nhwc<Operand><<<dim3(static_cast<unsigned>(xblocks * ((Cp + 63) / 64)), static_cast<unsigned>(Hp),
                                       static_cast<unsigned>(N)),
                                  dim3(32, 8), 0, stream>>>(
        src, scale, C, H, W, Hp, Wp, Cp, pad, xblocks,
        reinterpret_cast<typename OperandTraits<Operand>::Storage*>(buf.data()));
    GANINV_CUDA_CHECK_LAUNCH();
    return buf;
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

/// y = d * conv(x * s, w) for up = 1 (+ the fused epilogue when `store.out2` is set).
template <class Operand>
void modconv_forward_up1(const std::shared_ptr<MemoryPool>& pool, const float* x, const float* w, const float* s,
                         const nn::ModConvShape& sh, int bn, ForwardStore store, cudaStream_t stream) {
    const int N = static_cast<int>(sh.batch), C = static_cast<int>(sh.in_channels), O = static_cast<int>(sh.out_channels);
    const int H = static_cast<int>(sh.in_h), W = static_cast<int>(sh.in_w), k = static_cast<int>(sh.kernel);
    const int pad = static_cast<int>(sh.padding());
    int Cp = 0;
    DeviceTensor xp = pack_activation<Operand>(pool, x, s, N, C, H, W, pad, Cp, stream);
    DeviceTensor wt = pack_weights<Operand>(pool, w, static_cast<long long>(C) * k * k, k * k, k * k, O, C, bn, Cp, stream);
    PixelGather g;
    g.src = xp.data(), g.Hp = H + 2 * pad, g.Wp = W + 2 * pad, g.Cp = Cp, g.OH = H, g.OW = W, g.taps = k * k;
    for (int t = 0; t < k * k; ++t) g.tap_off[t] = ((t / k) * g.Wp + t % k) * Cp;  // padded coords: oy + ty
    g.M = static_cast<long long>(N) * H * W;
    store.cols = O, store.plane = H * W;
    launch_nhwc_conv<Operand>(g, wt.data(), O, bn, store, stream);
}

/// grad_x = s * conv^T(grad_y * d, w), grad_s += sum(acc * x) for up = 1; grad_s must be zeroed.
template <class Operand>
void modconv_grad_input_up1(const std::shared_ptr<MemoryPool>& pool, const float* x, const float* w, const float* s,
                            const float* d, const float* grad_y, const nn::ModConvShape& sh, int bn, float* grad_x,
                            float* grad_s, cudaStream_t stream) {
    const int N = static_cast<int>(sh.batch), C = static_cast<int>(sh.in_channels), O = static_cast<int>(sh.out_channels);
    const int H = static_cast<int>(sh.in_h), W = static_cast<int>(sh.in_w), k = static_cast<int>(sh.kernel);
    const int pad = static_cast<int>(sh.padding());
    int Op = 0;
    DeviceTensor gp = pack_activation<Operand>(pool, grad_y, d, N, O, H, W, pad, Op, stream);
    // rows = input channel c, depth = output channel o: w[o][c][t] at c * kk + o * C * kk + t
    DeviceTensor wt = pack_weights<Operand>(pool, w, k * k, static_cast<long long>(C) * k * k, k * k, C, O, bn, Op, stream);
    PixelGather g;
    g.src = gp.data(), g.Hp = H + 2 * pad, g.Wp = W + 2 * pad, g.Cp = Op, g.OH = H, g.OW = W, g.taps = k * k;
    // the adjoint reads grad_y at q + pad - t, i.e. padded coordinate q + 2 pad - t
    for (int t = 0; t < k * k; ++t) g.tap_off[t] = ((2 * pad - t / k) * g.Wp + 2 * pad - t % k) * Op;
    g.M = static_cast<long long>(N) * H * W;
    GradInputStore store;
    store.grad_x = grad_x, store.s = s, store.x = x, store.grad_s = grad_s;
    store.cols = C, store.plane = H * W;
    launch_nhwc_conv<Operand>(g, wt.data(), C, bn, store, stream);
}

}  // namespace ganinv::cuda::hopper
