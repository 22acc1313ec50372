/// @file wgrad_taps_tf32.cuh
/// @brief The all-taps weight gradient of a 3x3 convolution on the TF32 tensor cores (mma.sync
///        m16n8k8): the same sum as wgrad_taps_kernel.cuh, for the TF32 and BF16 precision modes.
///
/// Why: the FFMA kernel runs the nine large layers of a 1024^2 generator's tuning step at 21-31
/// TFLOP/s, 7.6 of a 21.5 ms step on an H100 (docs/tuning.md, session 18's profile). The sum is nine
/// small GEMMs per 32 x 32 channel tile, grad_w[u, s, tap] += sum_pixels U[u, p] * S_tap[p, s], with
/// the pixels as the reduction dimension: mma-shaped with M = U rows, N = S rows, K = pixels.
///
/// A block walks its patches (TapPatch's geometry) through a two-stage shared-memory ring filled by
/// cp.async: the next patch is in flight while this one is multiplied, so the global loads no
/// longer wait for the tensor cores (a first version staged through registers, one patch at a
/// time, and ran at the latency of those loads: 0.53-0.69 ms for each large layer on an H100).
/// Staged values are raw: the operands' per-(sample, row) scales (the styles s, the demodulation d)
/// are constant over a sample's pixels, so they multiply the sums when a sample's patches end
/// (`flush`), not every value; and each value is rounded to TF32 when its fragment is read (adding
/// half a TF32 ulp to the float's bits: the tensor cores ignore the 13 low bits, so this rounds to
/// nearest, ties away from zero, for one integer add; an infinity would become a NaN, which a
/// gradient holding one is anyway). Layout, channel-major:
///   su[u * kLdU + p]                          p = py * kPW + px
///   ss[s * kLdS + fr * kFW + column(fc)]      a footprint row, stride 2: even columns, then odd ones
/// so that the pixels of one tap's fragment are consecutive words (stride 2 de-interleaved) and the
/// row pitches (4 mod 32) make every fragment read conflict-free. Each of the 8 warps owns one 16 x 8
/// tile of (U rows, S rows) for all nine taps (36 accumulators a thread); a k-step is 8 pixels of one
/// patch row: one A fragment (4 loads) serves the nine taps, each tap loads its own B fragment (2
/// loads) at its shift. Sums are float32.
#pragma once

#include "ganinv/cuda/pixel_operand.hpp"
#include "ganinv/cuda/wgrad_taps_kernel.cuh"

#include <cstdint>

namespace ganinv::cuda::gemm {

/// Shared-memory layout of the tensor-core kernel over TapPatch<kStride>'s patch geometry.
template <int kStride>
struct TapPatchTf32 : TapPatch<kStride> {
    using P = TapPatch<kStride>;
    static constexpr int kFootprint = P::kFH * P::kFW;
    /// Pitches 4 mod 32: fragment lane (g, t) reads word g * pitch + t, 32 distinct banks.
    static constexpr int pitch(int n) { return (n + 27) / 32 * 32 + 4; }
    static constexpr int kLdU = pitch(P::kPixels);
    static constexpr int kLdS = pitch(kFootprint);
    static constexpr int kEvenColumns = (P::kFW + 1) / 2;  ///< stride 2: a footprint row's even columns first
    static constexpr int kStageFloats = P::kRows * (kLdU + kLdS);
    static constexpr int kStages = 2;
    static constexpr int kSmemBytes = kStages * kStageFloats * 4;  ///< dynamic shared memory of a block
    /// Footprint positions a thread copies per S row: 8 thread groups of 32 take 4 S rows each.
    static constexpr int kSRowsPerGroup = P::kRows / 8;
    /// Blocks an SM should hold: as many as the two stages' shared memory allows (2 at stride 1,
    /// 92 KiB a block; 3 at stride 2, 51 KiB), which caps the registers at 128 / 85 a thread.
    static constexpr int kMinBlocksPerSm = kStride == 1 ? 2 : 3;
    static_assert(kLdU >= P::kPixels && kLdS >= kFootprint && kLdU % 32 == 4 && kLdS % 32 == 4);
    static_assert(P::kPW % 8 == 0, "TapPatchTf32: a k-step is 8 pixels of one patch row");
    static_assert(P::kThreads == 256 && P::kRows == 32, "TapPatchTf32: 8 warps as 2 (U) x 4 (S) tiles of 16 x 8");
    static_assert(P::kThreads % P::kPixels == 0, "TapPatchTf32: each thread copies one pixel of several U rows");
    /// Where footprint column fc is stored in its row.
    __host__ __device__ static constexpr int column(int fc) {
        if constexpr (kStride == 1) return fc;
        else return (fc & 1) ? kEvenColumns + (fc >> 1) : (fc >> 1);
    }
};

// The copy, rounding and mma steps below are PTX; tests/unit/test_wgrad_taps_tf32_emulated.cpp
// defines GANINV_CUDA_EMULATION and host versions of them (the mma exchanging fragments across a
// warp's 32 emulated threads), so the kernel's layout and index arithmetic run in CI without a GPU.
#ifndef GANINV_CUDA_EMULATION
__device__ __forceinline__ void tap_copy_async(float* smem, const float* gmem, bool valid) {
    const auto d = static_cast<std::uint32_t>(__cvta_generic_to_shared(smem));
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(d), "l"(gmem), "r"(valid ? 4 : 0) : "memory");
}
__device__ __forceinline__ void tap_copy_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int Pending>
__device__ __forceinline__ void tap_copy_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending) : "memory"); }

/// A float's bits rounded to TF32 for the tensor cores (they ignore the 13 low bits).
__device__ __forceinline__ std::uint32_t tf32_bits(float v) { return __float_as_uint(v) + 0x1000u; }

__device__ __forceinline__ void mma_tf32_16x8x8(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                                std::uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
#endif

/// Arguments as wgrad_taps_kernel's (wgrad_taps_kernel.cuh); grid (channel tiles, splits), 256
/// threads, TapPatchTf32::kSmemBytes of dynamic shared memory. `atomic` is required when another
/// block adds to the same outputs; without it a block's samples are added one after the other.
template <int kStride>
__global__ void __launch_bounds__(TapPatch<kStride>::kThreads, TapPatchTf32<kStride>::kMinBlocksPerSm)
    wgrad_taps_tf32_kernel(PixelOperand u_op, PixelOperand s_op, float* grad_w, bool u_rows_are_outputs, int C,
                           int GH, int GW, int patches_y, int patches_x, int total_patches, int patches_per_split,
                           bool atomic) {
    using P = TapPatchTf32<kStride>;
#ifndef GANINV_CUDA_EMULATION
    extern __shared__ __align__(16) float tap_smem[];
#else
    float* tap_smem = tap_dynamic_shared();
#endif
    const int s_tiles = (s_op.R + P::kRows - 1) / P::kRows;
    const int u0 = static_cast<int>(blockIdx.x) / s_tiles * P::kRows;
    const int s0 = static_cast<int>(blockIdx.x) % s_tiles * P::kRows;
    const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
    const int g = lane >> 2, t = lane & 3;
    const int wu = (warp & 1) * 16, ws = (warp >> 1) * 8;  // this warp's tile: U rows wu.., S rows ws..
    const int pb = static_cast<int>(blockIdx.y) * patches_per_split;
    const int pe = pb + patches_per_split < total_patches ? pb + patches_per_split : total_patches;
    const int per_sample = patches_y * patches_x;
    const long long u_plane = static_cast<long long>(u_op.SH) * u_op.SW, s_plane = static_cast<long long>(s_op.SH) * s_op.SW;

    // Copies patch `patch` into stage `stage` (zero outside the operands' sources and rows).
    auto issue = [&](int patch, int stage) {
        float* su = tap_smem + stage * P::kStageFloats;
        float* ss = su + P::kRows * P::kLdU;
        const int n = patch / per_sample, rem = patch - n * per_sample;
        const int gy0 = rem / patches_x * P::kPH, gx0 = rem % patches_x * P::kPW;
        {  // U: this thread's pixel of rows u = tid / kPixels + k * (kThreads / kPixels)
            const int p = tid % P::kPixels, py = p / P::kPW, px = p - py * P::kPW;
            const int gy = gy0 + py, gx = gx0 + px;
            const bool in_grid = gy < GH && gx < GW;
            const float* src = u_op.src + static_cast<long long>(gy) * u_op.SW + gx;
#pragma unroll
            for (int u = tid / P::kPixels; u < P::kRows; u += P::kThreads / P::kPixels) {
                const int row = u0 + u;
                const bool ok = in_grid && row < u_op.R;
                tap_copy_async(su + u * P::kLdU + p, ok ? src + (static_cast<long long>(n) * u_op.R + row) * u_plane : u_op.src, ok);
            }
        }
        {  // S: thread group tid / 32 takes rows 4 * group .. + 3; lanes walk the footprint.
            const int fy0 = gy0 * kStride + s_op.base_y, fx0 = gx0 * kStride + s_op.base_x;
            const int r0 = (tid / 32) * P::kSRowsPerGroup;
#pragma unroll 1
            for (int f = lane; f < P::kFootprint; f += 32) {
                const int fr = f / P::kFW, fc = f - fr * P::kFW;
                const int y = fy0 + fr, x = fx0 + fc;
                const bool in_src = static_cast<unsigned>(y) < static_cast<unsigned>(s_op.SH) &&
                                    static_cast<unsigned>(x) < static_cast<unsigned>(s_op.SW);
                const float* src = s_op.src + static_cast<long long>(y) * s_op.SW + x;
                const int at = fr * P::kFW + P::column(fc);
#pragma unroll
                for (int k = 0; k < P::kSRowsPerGroup; ++k) {
                    const int row = s0 + r0 + k;
                    const bool ok = in_src && row < s_op.R;
                    tap_copy_async(ss + (r0 + k) * P::kLdS + at,
                                   ok ? src + (static_cast<long long>(n) * s_op.R + row) * s_plane : s_op.src, ok);
                }
            }
        }
        tap_copy_commit();
    };

    float acc[9][4];
#pragma unroll
    for (int k = 0; k < 9; ++k)
#pragma unroll
        for (int r = 0; r < 4; ++r) acc[k][r] = 0.0f;

    // grad_w += the sums of sample n times its rows' scales; the sums restart from zero.
    auto flush = [&](int n) {
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            const int u = u0 + wu + g + (r >> 1) * 8, s = s0 + ws + 2 * t + (r & 1);
            if (u < u_op.R && s < s_op.R) {
                float f = 1.0f;
                if (u_op.scale) f *= __ldg(u_op.scale + static_cast<long long>(n) * u_op.R + u);
                if (s_op.scale) f *= __ldg(s_op.scale + static_cast<long long>(n) * s_op.R + s);
                const int o = u_rows_are_outputs ? u : s, c = u_rows_are_outputs ? s : u;
                float* dst = grad_w + (static_cast<long long>(o) * C + c) * 9;
#pragma unroll
                for (int k = 0; k < 9; ++k) {
                    if (atomic) atomicAdd(dst + k, acc[k][r] * f);
                    else dst[k] += acc[k][r] * f;
                }
            }
#pragma unroll
            for (int k = 0; k < 9; ++k) acc[k][r] = 0.0f;
        }
    };

    if (pb >= pe) return;
    issue(pb, 0);
    int sample = pb / per_sample;
    for (int patch = pb; patch < pe; ++patch) {
        const int stage = (patch - pb) & 1;
        if (patch + 1 < pe) {
            issue(patch + 1, stage ^ 1);  // its stage was last read in the previous iteration, before the barrier
            tap_copy_wait<1>();
        } else {
            tap_copy_wait<0>();
        }
        __syncthreads();  // this patch's copies, from every thread, have landed
        if (const int n = patch / per_sample; n != sample) {
            flush(sample);
            sample = n;
        }
        const float* su = tap_smem + stage * P::kStageFloats;
        const float* ss = su + P::kRows * P::kLdU;
        const float* a_base = su + (wu + g) * P::kLdU + t;  // A rows wu + g (+ 8), lane t's pixel
        const float* b_base = ss + (ws + g) * P::kLdS;      // B column ws + g
        // k-steps of 8 pixels (px0 .. px0 + 7 of patch row py); fragment slots t and t + 4 are
        // pixels px0 + t and px0 + t + 4. Pixels outside the grid have U = 0 and add nothing.
#pragma unroll 1
        for (int py = 0; py < P::kPH; ++py) {
#pragma unroll
            for (int px0 = 0; px0 < P::kPW; px0 += 8) {
                const float* ap = a_base + py * P::kPW + px0;
                std::uint32_t a[4];
                a[0] = tf32_bits(ap[0]);
                a[1] = tf32_bits(ap[8 * P::kLdU]);
                a[2] = tf32_bits(ap[4]);
                a[3] = tf32_bits(ap[8 * P::kLdU + 4]);
#pragma unroll
                for (int ky = 0; ky < 3; ++ky) {
                    const float* brow = b_base + (py * kStride + ky) * P::kFW;
#pragma unroll
                    for (int kx = 0; kx < 3; ++kx) {
                        // footprint column of pixel px: px * stride + kx, stored at column(...)
                        int c;
                        if constexpr (kStride == 1) c = px0 + t + kx;
                        else c = kx == 1 ? P::kEvenColumns + px0 + t : px0 + t + kx / 2;
                        mma_tf32_16x8x8(acc[ky * 3 + kx], a, tf32_bits(brow[c]), tf32_bits(brow[c + 4]));
                    }
                }
            }
        }
        __syncthreads();  // every warp is done with this stage before the next iteration refills it
    }
    flush(sample);
}

}  // namespace ganinv::cuda::gemm
