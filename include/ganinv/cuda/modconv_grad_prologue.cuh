/// @file modconv_grad_prologue.cuh
/// @brief The backward of a modulated conv layer's epilogue (bias, activation, noise) fused with
///        what its grad-input conv needs, in one pass over the layer's output: the wgmma path's
///        zero-padded NHWC operand g_pre * d, the demodulation sums sum_p g_pre * y, and the
///        noise, noise-strength and bias gradients.
///
/// Unfused, an up = 1 layer on the wgmma path ran three kernels over [N, C, H, W] tensors for
/// this, seven tensor reads and writes: the bias/act/noise backward (reads out and g, writes
/// g_pre), the demodulation sums (reads g_pre and y), the NHWC packing (reads g_pre, writes the
/// operand). At 1024^2 x 32 channels each tensor is 128 MB; fused, the pass reads out, g and y
/// and writes the operand only (four), and g_pre is never stored (the weight gradient, which would read it, is not wanted
/// during an inversion: callers that want it take the unfused path).
///
/// The kernel is pack_nhwc's (hopper_conv.cuh) 64 x 64 (x, channel) transpose through shared
/// memory (64 x 32 for a 32-channel operand), with the element computed as bias_act_grad(out, g)
/// instead of read, over kPrologueRows rows per block so that the per-channel sums stay in
/// registers across rows. The demodulation sums go to `replicas` copies (summed by the caller)
/// to spread their atomics.
#pragma once

#include "ganinv/cuda/elementwise.cuh"
#include "ganinv/cuda/hopper_modconv.cuh"
#include "ganinv/cuda/launch.cuh"
#include "ganinv/nn/bias_act.hpp"

namespace ganinv::cuda {

/// Inputs and outputs of the fused prologue; all tensors [N, C, H, W] unless said otherwise.
struct ModconvGradPrologue {
    const float* out = nullptr;   ///< the layer's output, act(y + noise + bias)
    const float* grad = nullptr;  ///< dL/d(out)
    const float* y = nullptr;     ///< the modulated conv's output (after demodulation)
    const float* d = nullptr;     ///< [N, C] demodulation coefficients
    nn::BiasActParams act;
    const float* noise = nullptr;  ///< [N or 1, H, W]; null: no noise input
    bool noise_per_sample = false;
    const float* strength = nullptr;   ///< [1]
    float* grad_bias = nullptr;        ///< [C], accumulates; may be null
    float* grad_noise = nullptr;       ///< [N, H, W], overwritten (C <= 64) or accumulated into zeros
    float* grad_strength = nullptr;    ///< [1], accumulates; may be null
    float* demod_sums = nullptr;       ///< [replicas][N][C], accumulated into zeros
    int replicas = 1;
    int N = 0, C = 0, H = 0, W = 0;
};

namespace kernels {

constexpr int kPrologueRows = 4;  ///< padded rows per block

/// Grid (x blocks * channel blocks, ceil(Hp / kPrologueRows), N), block (32, 8); a block covers
/// 64 x positions by KC channels (32 when the operand has 32 channels, else 64).
template <class Operand, int KC>
__global__ void __launch_bounds__(256) modconv_grad_prologue(ModconvGradPrologue a, int Hp, int Wp, int Cp, int pad,
                                                             int xblocks,
                                                             typename hopper::OperandTraits<Operand>::Storage* __restrict__ dst) {
    using Traits = hopper::OperandTraits<Operand>;
    constexpr int kX = 64, kPerThread = KC / 8;
    constexpr int kLanesPerPixel = KC / 2, kPixelsPerWarp = 32 / kLanesPerPixel;  // write phase: 2 channels a lane
    __shared__ float tile[KC][kX + 1];
    __shared__ float channel_sums[8][kX];  // per warp row ty: its channels' sum at each x
    __shared__ float warp_parts[8];
    const int n = blockIdx.z, C = a.C, H = a.H, W = a.W;
    const int xb = static_cast<int>(blockIdx.x % xblocks) * kX, cb = static_cast<int>(blockIdx.x / xblocks) * KC;
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 32 + tx;
    const bool whole_channels = gridDim.x == static_cast<unsigned>(xblocks);  // one channel block: no noise atomics
    float dsum[kPerThread] = {}, bsum[kPerThread] = {};
    float strength_part = 0.0f;
    const float strength = a.noise ? __ldg(a.strength) : 0.0f;
    for (int r = 0; r < kPrologueRows; ++r) {
        const int yp = blockIdx.y * kPrologueRows + r, y = yp - pad;
        if (yp >= Hp) break;
        const bool y_ok = y >= 0 && y < H;
        float nsum[2] = {0.0f, 0.0f};
#pragma unroll
        for (int j = 0; j < kPerThread; ++j) {
            const int cc = ty + 8 * j, c = cb + cc;
            const bool ok = y_ok && c < C;
            const long long row = ((static_cast<long long>(n) * C + (ok ? c : 0)) * H + (ok ? y : 0)) * W;
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int xs = xb + tx + 32 * h - pad;
                float v = 0.0f;
                if (ok && xs >= 0 && xs < W) {
                    v = bias_act_grad(__ldg(a.out + row + xs), __ldg(a.grad + row + xs), a.act);
                    dsum[j] += v * __ldg(a.y + row + xs);
                    bsum[j] += v;
                }
                tile[cc][tx + 32 * h] = v;
                nsum[h] += v;
            }
        }
        if (a.noise) channel_sums[ty][tx] = nsum[0], channel_sums[ty][tx + 32] = nsum[1];
        __syncthreads();
        if (a.noise && tid < kX && y_ok) {  // grad_noise = strength * sum_c g_pre over this block's channels
            const int xs = xb + tid - pad;
            if (xs >= 0 && xs < W) {
                float t = 0.0f;
#pragma unroll
                for (int k = 0; k < 8; ++k) t += channel_sums[k][tid];
                const long long px = static_cast<long long>(y) * W + xs;
                if (a.grad_noise) {
                    float* gn = a.grad_noise + static_cast<long long>(n) * H * W + px;
                    if (whole_channels) *gn = t * strength;
                    else atomicAdd(gn, t * strength);
                }
                strength_part += t * __ldg(a.noise + (a.noise_per_sample ? static_cast<long long>(n) * H * W : 0) + px);
            }
        }
        const int c = cb + 2 * (tx % kLanesPerPixel);
        if (c < Cp) {  // Cp is even: both channels exist (the tile holds 0 beyond C)
            const float d0 = c < C ? __ldg(a.d + n * C + c) : 0.0f, d1 = c + 1 < C ? __ldg(a.d + n * C + c + 1) : 0.0f;
            const int cl = c - cb;
#pragma unroll
            for (int xx = ty * kPixelsPerWarp + tx / kLanesPerPixel; xx < kX; xx += 8 * kPixelsPerWarp) {
                const int xp = xb + xx;
                if (xp >= Wp) break;
                auto* o = dst + ((static_cast<long long>(n) * Hp + yp) * Wp + xp) * Cp + c;
                const float v0 = tile[cl][xx] * d0, v1 = tile[cl + 1][xx] * d1;
                if constexpr (sizeof(typename Traits::Storage) == 2)
                    *reinterpret_cast<__nv_bfloat162*>(o) = __floats2bfloat162_rn(v0, v1);
                else
                    *reinterpret_cast<float2*>(o) = make_float2(Traits::convert(v0), Traits::convert(v1));
            }
        }
        __syncthreads();  // the tile and the channel sums are rewritten by the next row
    }
    // Per-channel sums: a warp (fixed ty) holds channels ty + 8 j; its lanes split the pixels.
    const int replica = static_cast<int>((blockIdx.x + static_cast<unsigned>(xblocks) * blockIdx.y) % static_cast<unsigned>(a.replicas));
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
        const int c = cb + ty + 8 * j;
        const float ds = warp_sum(dsum[j]), bs = a.grad_bias ? warp_sum(bsum[j]) : 0.0f;
        if (tx == 0 && c < C) {
            atomicAdd(a.demod_sums + (static_cast<long long>(replica) * a.N + n) * C + c, ds);
            if (a.grad_bias) atomicAdd(a.grad_bias + c, bs);
        }
    }
    if (a.noise && a.grad_strength) {  // (block_sum assumes a 1-D block: reduce per warp row here)
        const float w = warp_sum(strength_part);
        if (tx == 0) warp_parts[ty] = w;
        __syncthreads();
        if (tid == 0) {
            float t = 0.0f;
#pragma unroll
            for (int k = 0; k < 8; ++k) t += warp_parts[k];
            atomicAdd(a.grad_strength, t);
        }
    }
}

}  // namespace kernels

/// Runs the fused prologue into a new packed operand (padding `pad`, the grad-input conv's) and
/// a.demod_sums (which must hold a.replicas zeroed copies; grad_noise is zeroed here when the
/// channels span several blocks).
template <class Operand>
hopper::PackedActivation modconv_grad_prologue(const std::shared_ptr<MemoryPool>& pool, const ModconvGradPrologue& a,
                                               int pad, cudaStream_t stream) {
    hopper::PackedActivation p;
    p.N = a.N, p.C = a.C, p.pad = pad, p.Hp = a.H + 2 * pad, p.Wp = a.W + 2 * pad;
    constexpr int slice = hopper::slice_elems<Operand>();
    p.Cp = (a.C + slice - 1) / slice * slice;
    p.buf = hopper::operand_scratch<Operand>(pool, static_cast<long long>(a.N) * p.Hp * p.Wp * p.Cp);
    const int kc = p.Cp == 32 ? 32 : 64;  // a 32-channel operand (TF32, C <= 32) takes the narrow tile
    const int xblocks = (p.Wp + 63) / 64, cblocks = (p.Cp + kc - 1) / kc;
    const int yblocks = (p.Hp + kernels::kPrologueRows - 1) / kernels::kPrologueRows;
    GANINV_CHECK(a.N <= 65535 && yblocks <= 65535 && a.replicas >= 1, ShapeError,
                 "modconv grad prologue: batch ", a.N, " or height ", a.H, " exceeds the grid limits");
    if (a.noise && a.grad_noise && cblocks > 1)
        GANINV_CUDA_CHECK(cudaMemsetAsync(a.grad_noise, 0, sizeof(float) * a.N * a.H * a.W, stream));
    const dim3 grid(static_cast<unsigned>(xblocks * cblocks), static_cast<unsigned>(yblocks), static_cast<unsigned>(a.N));
    auto* out = reinterpret_cast<typename hopper::OperandTraits<Operand>::Storage*>(p.buf.data());
    if (kc == 32) kernels::modconv_grad_prologue<Operand, 32><<<grid, dim3(32, 8), 0, stream>>>(a, p.Hp, p.Wp, p.Cp, pad, xblocks, out);
    else kernels::modconv_grad_prologue<Operand, 64><<<grid, dim3(32, 8), 0, stream>>>(a, p.Hp, p.Wp, p.Cp, pad, xblocks, out);
    GANINV_CUDA_CHECK_LAUNCH();
    return p;
}

}  // namespace ganinv::cuda
