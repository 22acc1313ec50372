/// @file wgrad_taps_kernel.cuh
/// @brief Weight gradient of a 3x3 convolution with every tap in one kernel:
///        grad_w[o, c, t] += sum_{n, pixel} A[n, o, posA(pixel, t)] * B[n, c, posB(pixel, t)],
///        the sum of wgrad_gemm.cuh's nine per-tap GEMMs, for the large planes where those are slow.
///
/// Why: the per-tap GEMMs re-read both operands once per tap (nine passes over 128 MiB at 1024^2)
/// and, at 32 channels, fill a quarter of their 64 x 64 tiles. Here a block stages one patch of
/// pixels once: the unshifted operand U on the patch, the shifted operand S on the patch plus its
/// halo, both scaled while loaded, and every thread keeps 4 U rows x 9 taps of one S row in
/// registers (36 accumulators), sliding a 3 x 3 window of S along each patch row so that a pixel
/// costs one broadcast 16-byte load of U, 3 (stride 1) or 6 (stride 2) loads of S and 36 FFMAs.
/// Arithmetic is float32 FFMA in every precision mode (the per-tap kernels' TF32/BF16 rounding is
/// not needed to be fast here).
///
/// Geometry (PixelOperand, pixel_operand.hpp): exactly one operand is tap-shifted (tap_mul = 1) and
/// the other sits on the pixel grid itself (stride 1, no offset, source = grid):
///   up = 1: U = grad_y * d (rows O) on the output grid, S = x * s (rows C) at (y - pad + ky, ...)
///   up = 2: U = x * s (rows C) on the input grid, S = the FIR-adjoint gradient (rows O) at (2 y + ky, ...)
/// `u_rows_are_outputs` says which of the two index grad_w's first dimension.
/// Partial sums of a split over patches meet in grad_w by atomicAdd (as the per-tap kernel's split-K).
///
/// The kernel and its planner only: no CUDA header, so that tests/unit/test_wgrad_taps_emulated.cpp
/// can compile them with the host compiler under tests/unit/cuda_emulation.hpp (256 threads per
/// block and a barrier for __syncthreads) and check the index arithmetic where no GPU is.
/// The launcher is wgrad_taps.cuh.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/cuda/pixel_operand.hpp"

#include <algorithm>

namespace ganinv::cuda::gemm {

/// The patch one block stages, per stride of the shifted operand (3x3 taps).
template <int kStride>
struct TapPatch {
    static constexpr int kTaps = 3;                        ///< taps per axis
    static constexpr int kPH = 4;                          ///< patch rows
    static constexpr int kPW = kStride == 1 ? 32 : 8;      ///< patch columns (a warp's row at stride 1)
    static constexpr int kPixels = kPH * kPW;
    static constexpr int kFH = (kPH - 1) * kStride + kTaps;  ///< rows of S the patch reaches
    static constexpr int kFW = (kPW - 1) * kStride + kTaps;
    static constexpr int kRows = 32;    ///< U rows and S rows per block
    static constexpr int kLdU = 36;     ///< U row pitch: 16-byte rows for the broadcast float4 read
    static constexpr int kLdS = 33;     ///< S pitch: conflict-free both when written (by pixel) and read (by row)
    static constexpr int kThreads = 256;
    /// Blocks an SM should hold: caps the registers at 85 a thread (unbounded, the kernel took 113
    /// and only 2 blocks fit; ncu, session 15: 20% achieved occupancy, latency-bound).
    static constexpr int kMinBlocksPerSm = 3;
    static constexpr int kSmemFloats = kPixels * kLdU + kFH * kFW * kLdS;
    static_assert(kSmemFloats * 4 <= 48 * 1024, "TapPatch: the staged patch must fit 48 KiB of static shared memory");
    static_assert(kThreads / 32 * 4 == kRows, "TapPatch: 8 warps x 4 U rows");
};

template <int kStride>
__global__ void __launch_bounds__(TapPatch<kStride>::kThreads, TapPatch<kStride>::kMinBlocksPerSm)
    wgrad_taps_kernel(PixelOperand u_op, PixelOperand s_op, float* grad_w, bool u_rows_are_outputs, int C, int GH,
                      int GW, int patches_y, int patches_x, int total_patches, int patches_per_split, bool atomic) {
    using P = TapPatch<kStride>;
    __shared__ __align__(16) float su[P::kPixels * P::kLdU];
    __shared__ float ss[P::kFH * P::kFW * P::kLdS];
    const int s_tiles = (s_op.R + P::kRows - 1) / P::kRows;
    const int u0 = static_cast<int>(blockIdx.x) / s_tiles * P::kRows;
    const int s0 = static_cast<int>(blockIdx.x) % s_tiles * P::kRows;
    const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
    const int pb = static_cast<int>(blockIdx.y) * patches_per_split;
    const int pe = pb + patches_per_split < total_patches ? pb + patches_per_split : total_patches;
    const int per_sample = patches_y * patches_x;

    float acc[4][9];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int t = 0; t < 9; ++t) acc[i][t] = 0.0f;

    for (int patch = pb; patch < pe; ++patch) {
        const int n = patch / per_sample, rem = patch - n * per_sample;
        const int gy0 = rem / patches_x * P::kPH, gx0 = rem % patches_x * P::kPW;
        __syncthreads();  // the previous patch's reads are done before its tiles are overwritten
        // U on the patch: su[p * kLdU + u], consecutive threads on consecutive pixels (coalesced).
        for (int i = static_cast<int>(threadIdx.x); i < P::kRows * P::kPixels; i += P::kThreads) {
            const int u = i / P::kPixels, p = i - u * P::kPixels;
            const int py = p / P::kPW, px = p - py * P::kPW;
            const int gy = gy0 + py, gx = gx0 + px, row = u0 + u;
            float v = 0.0f;
            if (row < u_op.R && gy < GH && gx < GW) {
                const long long plane = static_cast<long long>(n) * u_op.R + row;
                v = __ldg(u_op.src + plane * u_op.SH * u_op.SW + static_cast<long long>(gy) * u_op.SW + gx);
                if (u_op.scale) v *= __ldg(u_op.scale + plane);
            }
            su[p * P::kLdU + u] = v;
        }
        // S on the patch's footprint: ss[(fr * kFW + fc) * kLdS + s], zero outside its source.
        const int fy0 = gy0 * kStride + s_op.base_y, fx0 = gx0 * kStride + s_op.base_x;
        for (int i = static_cast<int>(threadIdx.x); i < P::kRows * P::kFH * P::kFW; i += P::kThreads) {
            const int s = i / (P::kFH * P::kFW), f = i - s * (P::kFH * P::kFW);
            const int fr = f / P::kFW, fc = f - fr * P::kFW;
            const int y = fy0 + fr, x = fx0 + fc, row = s0 + s;
            float v = 0.0f;
            if (row < s_op.R && static_cast<unsigned>(y) < static_cast<unsigned>(s_op.SH) &&
                static_cast<unsigned>(x) < static_cast<unsigned>(s_op.SW)) {
                const long long plane = static_cast<long long>(n) * s_op.R + row;
                v = __ldg(s_op.src + plane * s_op.SH * s_op.SW + static_cast<long long>(y) * s_op.SW + x);
                if (s_op.scale) v *= __ldg(s_op.scale + plane);
            }
            ss[f * P::kLdS + s] = v;
        }
        __syncthreads();

        // This thread: U rows warp*4 .. +3, S row `lane`, all nine taps. Pixels outside the grid
        // have U = 0, so their (in-bounds, maybe nonzero) S values add nothing.
        const float* sp = ss + lane;
        const float* up = su + warp * 4;
#pragma unroll 1
        for (int py = 0; py < P::kPH; ++py) {
            float win[3][3];
#pragma unroll
            for (int ky = 0; ky < 3; ++ky)
#pragma unroll
                for (int kx = 0; kx < 3; ++kx) win[ky][kx] = sp[((py * kStride + ky) * P::kFW + kx) * P::kLdS];
#pragma unroll 4
            for (int px = 0; px < P::kPW; ++px) {
                const float4 uv = *reinterpret_cast<const float4*>(up + (py * P::kPW + px) * P::kLdU);
                const float u4[4] = {uv.x, uv.y, uv.z, uv.w};
#pragma unroll
                for (int i = 0; i < 4; ++i)
#pragma unroll
                    for (int ky = 0; ky < 3; ++ky)
#pragma unroll
                        for (int kx = 0; kx < 3; ++kx) acc[i][ky * 3 + kx] = fmaf(u4[i], win[ky][kx], acc[i][ky * 3 + kx]);
                if (px + 1 < P::kPW) {  // slide the window to pixel px + 1: S columns (px + 1) * stride + 0..2
                    const int c0 = (px + 1) * kStride;
#pragma unroll
                    for (int ky = 0; ky < 3; ++ky) {
                        const float* srow = sp + (py * kStride + ky) * P::kFW * P::kLdS;
                        if constexpr (kStride == 1) {
                            win[ky][0] = win[ky][1];
                            win[ky][1] = win[ky][2];
                            win[ky][2] = srow[(c0 + 2) * P::kLdS];
                        } else {
                            win[ky][0] = win[ky][2];
                            win[ky][1] = srow[(c0 + 1) * P::kLdS];
                            win[ky][2] = srow[(c0 + 2) * P::kLdS];
                        }
                    }
                }
            }
        }
    }

    const int s = s0 + lane;
    if (s >= s_op.R) return;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int u = u0 + warp * 4 + i;
        if (u >= u_op.R) continue;
        const int o = u_rows_are_outputs ? u : s, c = u_rows_are_outputs ? s : u;
        float* dst = grad_w + (static_cast<long long>(o) * C + c) * 9;
#pragma unroll
        for (int t = 0; t < 9; ++t) {
            if (atomic) atomicAdd(dst + t, acc[i][t]);
            else dst[t] += acc[i][t];
        }
    }
}

/// How a launch of the all-taps kernel splits its patches over blocks (host side, testable).
struct TapSplit {
    int channel_tiles = 0, patches_y = 0, patches_x = 0, total_patches = 0, patches_per_split = 0, splits = 0;
};

/// `blocks_per_sm` blocks per SM in all (the launcher passes what is resident at once: one full
/// wave, no half-empty second one), never fewer than one patch per block.
template <int kStride>
inline TapSplit plan_tap_split(int u_rows, int s_rows, int GH, int GW, int batch, int num_sms, int blocks_per_sm = 3) {
    using P = TapPatch<kStride>;
    TapSplit t;
    t.channel_tiles = ((u_rows + P::kRows - 1) / P::kRows) * ((s_rows + P::kRows - 1) / P::kRows);
    t.patches_y = (GH + P::kPH - 1) / P::kPH;
    t.patches_x = (GW + P::kPW - 1) / P::kPW;
    const long long total = static_cast<long long>(batch) * t.patches_y * t.patches_x;
    GANINV_CHECK(total < (1LL << 31), ShapeError, "all-taps weight gradient: ", total, " patches is too many");
    t.total_patches = static_cast<int>(total);
    const long long want = std::max<long long>(1, static_cast<long long>(num_sms) * blocks_per_sm / t.channel_tiles);
    const long long splits = std::clamp<long long>(want, 1, std::min<long long>(total, 65535));
    t.patches_per_split = static_cast<int>((total + splits - 1) / splits);
    t.splits = (t.total_patches + t.patches_per_split - 1) / t.patches_per_split;
    return t;
}

}  // namespace ganinv::cuda::gemm
