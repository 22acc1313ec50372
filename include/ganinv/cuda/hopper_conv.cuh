/// @file hopper_conv.cuh
/// @brief Hopper (sm_90a) implicit-GEMM convolution for the TF32 and BF16 modes: a zero-padded
///        NHWC copy of the (style-scaled) activation is gathered tap by tap straight into
///        128-byte-swizzled shared memory with cp.async by a producer warpgroup, and two consumer
///        warpgroups multiply it with wgmma (128 output pixels x BN channels per block, 128-byte K
///        slices, a 4-8 stage ring synchronized with mbarriers).
///
///   GEMM rows  = output pixels of the whole batch (m = n * OH * OW + p)
///   GEMM cols  = output channels (weights packed [cols][tap][Cp], K-major like the pixels)
///   GEMM depth = (tap, input channel): for each tap, a dense run of Cp channels
/// The padding makes every tap load in-bounds, so the loads have no predicates; channels are
/// padded with zeros to a whole 128-byte slice. The epilogue is a functor per output element,
/// called with a warp on 32 consecutive pixels of one channel (forward: x d, + noise + bias +
/// activation; grad input: x s and the warp-reduced style gradient).
#pragma once

#include "ganinv/cuda/check.hpp"
#include "ganinv/cuda/conv_gemm.cuh"
#include "ganinv/cuda/launch.cuh"
#include "ganinv/cuda/wgmma_ops.cuh"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace ganinv::cuda::hopper {

constexpr int kBM = 128;        ///< output pixels per block (two warpgroups x 64)
constexpr int kThreads = 256;   ///< consumer threads (two warpgroups); the block adds one producer warpgroup
constexpr int kRowBytes = 128;  ///< one K slice of one row: the 128-byte swizzle span
constexpr int kMaxTaps = 16;    ///< k x k up to 4 x 4

template <class Operand>
struct OperandTraits;
template <>
struct OperandTraits<Bf16Operand> {
    using Storage = __nv_bfloat16;
    static constexpr int kPerSlice = 64;  ///< elements per 128-byte K slice
    __device__ static Storage convert(float v) { return __float2bfloat16_rn(v); }
};
template <>
struct OperandTraits<Tf32Operand> {
    using Storage = float;
    static constexpr int kPerSlice = 32;
    __device__ static Storage convert(float v) { return gemm::round_tf32(v); }
};

/// The pixel operand: output pixel (n, oy, ox), tap t reads padded-source pixel
/// (oy * step + y0, ox * step + x0) + tap t's offset, channels [0, Cp).
struct PixelGather {
    const void* src = nullptr;  ///< [batch][Hp][Wp][Cp] of the operand's storage type
    int Hp = 0, Wp = 0, Cp = 0;
    int OH = 0, OW = 0;
    int y0 = 0, x0 = 0, step = 1;
    int taps = 1;
    int tap_off[kMaxTaps] = {};  ///< (dy * Wp + dx) * Cp per tap, in elements
    long long M = 0;             ///< batch * OH * OW
    /// Split-K: the K slices (taps x channel slices) are cut into `splits` ranges of
    /// `slices_per_split`, one block each; the epilogue then adds its partial sums atomically.
    int splits = 1, slices_per_split = 0;
};

/// Barrier of the kThreads consumer threads only (the producer warpgroup may have left).
__device__ __forceinline__ void consumer_sync() { asm volatile("bar.sync 1, %0;\n" ::"n"(kThreads) : "memory"); }

namespace kernels {

/// out[n][yp][xp][c] = x[n][c][yp - pad][xp - pad] * scale[n][c] rounded to the operand type;
/// 0 in the border and for c >= C. Block (32, 8) transposes a 64 x KC (x, channel) tile (KC = 64,
/// or 32 for a 32-channel operand so that no lane idles): reads are 128-byte rows along x, writes
/// put two channels per lane (one or two pixels of 128-256 contiguous bytes per warp along c).
template <class Operand, int KC = 64>
__global__ void __launch_bounds__(256) pack_nhwc(const float* __restrict__ x, const float* __restrict__ scale, int C,
                                                 int H, int W, int Hp, int Wp, int Cp, int pad, int xblocks,
                                                 typename OperandTraits<Operand>::Storage* __restrict__ out) {
    using Traits = OperandTraits<Operand>;
    constexpr int kX = 64, kLanesPerPixel = KC / 2, kPixelsPerWarp = 32 / kLanesPerPixel;
    __shared__ float tile[KC][kX + 1];
    const int n = blockIdx.z, yp = blockIdx.y, y = yp - pad;
    const int xb = static_cast<int>(blockIdx.x % xblocks) * kX, cb = static_cast<int>(blockIdx.x / xblocks) * KC;
    const int tx = threadIdx.x, ty = threadIdx.y;
    const bool y_ok = y >= 0 && y < H;
#pragma unroll
    for (int cc = ty; cc < KC; cc += 8) {
        const int c = cb + cc;
        const bool ok = y_ok && c < C;
        const float sc = ok && scale ? __ldg(scale + n * C + c) : 1.0f;
        const float* row = x + ((static_cast<long long>(n) * C + (ok ? c : 0)) * H + (ok ? y : 0)) * W;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int xs = xb + tx + 32 * h - pad;
            tile[cc][tx + 32 * h] = (ok && xs >= 0 && xs < W) ? __ldg(row + xs) * sc : 0.0f;
        }
    }
    __syncthreads();
    const int cl = 2 * (tx % kLanesPerPixel), c = cb + cl;
    if (c >= Cp) return;  // Cp is even: both channels exist
#pragma unroll
    for (int xx = ty * kPixelsPerWarp + tx / kLanesPerPixel; xx < kX; xx += 8 * kPixelsPerWarp) {
        const int xp = xb + xx;
        if (xp >= Wp) break;
        auto* dst = out + ((static_cast<long long>(n) * Hp + yp) * Wp + xp) * Cp + c;
        if constexpr (sizeof(typename Traits::Storage) == 2) {
            *reinterpret_cast<__nv_bfloat162*>(dst) = __floats2bfloat162_rn(tile[cl][xx], tile[cl + 1][xx]);
        } else {
            *reinterpret_cast<float2*>(dst) = make_float2(Traits::convert(tile[cl][xx]), Traits::convert(tile[cl + 1][xx]));
        }
    }
}

/// out[r][t][q] = w[r * sr + q * sq + t] (0 for r >= R or q >= Q), r < Rp, q < Cp.
template <class Operand>
__global__ void pack_weights(const float* __restrict__ w, long long sr, long long sq, int T, int R, int Q, int Rp,
                             int Cp, typename OperandTraits<Operand>::Storage* __restrict__ out) {
    GANINV_GRID_STRIDE(i, static_cast<long long>(Rp) * T * Cp) {
        const int q = static_cast<int>(i % Cp);
        const int t = static_cast<int>((i / Cp) % T);
        const int r = static_cast<int>(i / (static_cast<long long>(Cp) * T));
        const float v = (r < R && q < Q) ? w[r * sr + q * sq + t] : 0.0f;
        out[i] = OperandTraits<Operand>::convert(v);
    }
}

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
    const auto s = static_cast<std::uint32_t>(__cvta_generic_to_shared(smem));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int Pending>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending) : "memory"); }

/// Writes 1 to *flag when this binary carries the sm_90a (wgmma) code path (a template: one
/// definition across translation units).
template <int Unused = 0>
__global__ void wgmma_probe(int* flag) {
#ifdef GANINV_WGMMA_AVAILABLE
    *flag = 1;
#else
    *flag = 0;
#endif
}

#ifdef GANINV_WGMMA_AVAILABLE
__device__ __forceinline__ std::uint32_t smem_u32(const void* p) {
    return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbar_init(std::uint64_t* b, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(b)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(std::uint64_t* b) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_u32(b)) : "memory");
}
/// Blocks until the barrier's phase with this parity has completed.
__device__ __forceinline__ void mbar_wait(std::uint64_t* b, unsigned parity) {
    asm volatile(
        "{\n.reg .pred done;\nWAIT_LOOP:\n"
        "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
        "@!done bra WAIT_LOOP;\n}\n" ::"r"(smem_u32(b)),
        "r"(parity)
        : "memory");
}
/// Arrives on the barrier once all of this thread's earlier cp.async copies have landed.
__device__ __forceinline__ void cp_async_arrive(std::uint64_t* b) {
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(smem_u32(b)) : "memory");
}
#endif

#ifdef GANINV_WGMMA_AVAILABLE
/// The consumers' epilogue, shared by the conv kernels: the accumulators go through shared memory
/// (the ring, free by then; call after both warpgroups are done with it) so that each warp stores
/// 32 consecutive pixels of one channel; `row_of(r)` gives the epilogue's Row of tile row r.
template <int BN, class Epi, class RowOf>
__device__ __forceinline__ void store_tile(const float (&acc)[BN / 2], unsigned char* smem, int ctid, const Epi& epi, int nt,
                                           RowOf&& row_of) {
    // Accumulator (row, col) of this thread: row = 16 warp + lane / 4 + 8 i, col = 8 j + 2 (lane % 4) + c.
    constexpr int kLd = kBM + 4;  // [BN][kLd] floats: conflict-free writes (col * 4 + row covers 32 banks)
    float* tile = reinterpret_cast<float*>(smem);
    const int wg = ctid / 128, warp = (ctid % 128) / 32, lane = ctid % 32;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int row = wg * 64 + warp * 16 + lane / 4 + 8 * i;
#pragma unroll
        for (int j = 0; j < BN / 8; ++j)
#pragma unroll
            for (int c = 0; c < 2; ++c) tile[(8 * j + 2 * (lane % 4) + c) * kLd + row] = acc[j * 4 + i * 2 + c];
    }
    consumer_sync();
    const int row = ctid % kBM;  // fixed per thread: the column advances by kThreads / kBM
    const typename Epi::Row r = row_of(row);
#pragma unroll 4
    for (int col = ctid / kBM; col < BN; col += kThreads / kBM) epi.apply(r, nt * BN + col, tile[col * kLd + row]);
}
#endif

/// One block: output pixels [mt * 128, +128) x columns [nt * BN, +BN) (x one K range of
/// g.slices_per_split slices when g.splits > 1: small planes, whose few tiles would leave most
/// SMs idle, run the K depth on several blocks and add up in the epilogue), warp-specialized:
/// warpgroup 0 only gathers (cp.async into a ring of S stages, completion signalled on each
/// stage's "full" mbarrier), warpgroups 1 and 2 (64 pixel rows each) only multiply and release a
/// stage on its "empty" mbarrier once their wgmma has read it. No block-wide barrier in the main
/// loop, so the gather runs up to S slices ahead; registers move from producer to consumers.
/// Epilogue: the accumulators go through shared memory (the ring is free by then) so that each
/// warp stores 32 consecutive pixels of one channel and the per-element code stays small.
template <class Operand, int BN, int S, int MinBlocks, class Epi>
__global__ void __launch_bounds__(kThreads + 128, MinBlocks)
    nhwc_conv_wgmma(PixelGather g, const typename OperandTraits<Operand>::Storage* __restrict__ wt, int n_tiles, Epi epi) {
#ifdef GANINV_WGMMA_AVAILABLE
    using Traits = OperandTraits<Operand>;
    using E = typename Traits::Storage;
    static_assert(BN % 32 == 0 && BN >= 32 && BN <= 256, "BN: a multiple of 32 up to 256");
    constexpr int kStageA = kBM * kRowBytes, kStageB = BN * kRowBytes, kStage = kStageA + kStageB;
    static_assert(BN * (kBM + 4) * 4 <= S * kStage, "the epilogue tile must fit in the ring");
    constexpr int kEpc = 16 / static_cast<int>(sizeof(E));
    constexpr int kSteps = kRowBytes / 32;
    extern __shared__ unsigned char smem_raw[];
    unsigned char* smem = reinterpret_cast<unsigned char*>((reinterpret_cast<std::uintptr_t>(smem_raw) + 1023) & ~std::uintptr_t{1023});
    __shared__ int tap_off[kMaxTaps];
    __shared__ alignas(8) std::uint64_t full[S], empty[S];
    const int tid = static_cast<int>(threadIdx.x);
#pragma unroll
    for (int t = 0; t < kMaxTaps; ++t)
        if (t == tid && t < g.taps) tap_off[t] = g.tap_off[t];
    if (tid == 0) {
        for (int s = 0; s < S; ++s) {
            mbar_init(&full[s], 128);  // every producer thread's copies
            mbar_init(&empty[s], 2);   // one arrival per consumer warpgroup
        }
    }
    __syncthreads();

    const long long out_tile = blockIdx.x / g.splits;
    const int nt = static_cast<int>(out_tile % n_tiles);
    const long long m0 = (out_tile / n_tiles) * kBM;
    const int slices_per_tap = g.Cp / Traits::kPerSlice;
    const int kt0 = g.splits > 1 ? static_cast<int>(blockIdx.x % g.splits) * g.slices_per_split : 0;
    const int KT = g.splits > 1 ? min(g.taps * slices_per_tap - kt0, g.slices_per_split) : g.taps * slices_per_tap;
    const int plane = g.OH * g.OW;

    if (tid < 128) {  // ------------------------------------------------ producer
        if constexpr (MinBlocks == 1) asm volatile("setmaxnreg.dec.sync.aligned.u32 56;\n");
        const int chunk = tid % 8, row0 = tid / 8;  // 16 rows per pass
        const int swz = (chunk ^ (row0 & 7)) << 4;   // rows row0 + 16 i share row0 % 8
        const E* src = static_cast<const E*>(g.src);
        const E* arow[kBM / 16];
#pragma unroll
        for (int i = 0; i < kBM / 16; ++i) {
            const long long m = min(m0 + row0 + 16 * i, g.M - 1);
            const int n = static_cast<int>(m / plane), p = static_cast<int>(m - static_cast<long long>(n) * plane);
            const int oy = p / g.OW, ox = p - oy * g.OW;
            arow[i] = src + ((static_cast<long long>(n) * g.Hp + g.y0 + oy * g.step) * g.Wp + g.x0 + ox * g.step) * g.Cp + chunk * kEpc;
        }
        const long long kw = static_cast<long long>(g.taps) * g.Cp;
        const E* brow = wt + (static_cast<long long>(nt) * BN + row0) * kw + chunk * kEpc;
        for (int kt = 0; kt < KT; ++kt) {  // kt counts this block's slices; slice kt0 + kt of K
            const int s = kt % S;
            if (kt >= S) mbar_wait(&empty[s], ((kt / S) - 1) & 1);
            const int t = (kt0 + kt) / slices_per_tap, c0 = (kt0 + kt - t * slices_per_tap) * Traits::kPerSlice;
            unsigned char* sa = smem + s * kStage;
            unsigned char* sb = sa + kStageA;
            const int aoff = tap_off[t] + c0;
#pragma unroll
            for (int i = 0; i < kBM / 16; ++i) cp_async16(sa + (row0 + 16 * i) * kRowBytes + swz, arow[i] + aoff);
            const E* bsrc = brow + static_cast<long long>(t) * g.Cp + c0;
#pragma unroll
            for (int i = 0; i < BN / 16; ++i) cp_async16(sb + (row0 + 16 * i) * kRowBytes + swz, bsrc + 16 * i * kw);
            cp_async_arrive(&full[s]);
        }
        cp_async_wait<0>();
        return;
    }
    // ------------------------------------------------------------------ consumers
    // One block per SM: move registers to the consumers. Two (narrow tiles): 80 each suffice.
    if constexpr (MinBlocks == 1) asm volatile("setmaxnreg.inc.sync.aligned.u32 224;\n");
    const int ctid = tid - 128, wg = ctid / 128;
    float acc[BN / 2];
#pragma unroll
    for (int i = 0; i < BN / 2; ++i) acc[i] = 0.0f;
    for (int kt = 0; kt < KT; ++kt) {
        const int s = kt % S;
        mbar_wait(&full[s], (kt / S) & 1);
        fence_proxy_async();  // the gathered bytes were written through the generic proxy
        const unsigned char* sa = smem + s * kStage;
        const unsigned char* sb = sa + kStageA;
        wgmma_fence();
#pragma unroll
        for (int k = 0; k < kSteps; ++k)
            Wgmma<Operand, BN>::mma(acc, smem_desc(sa + wg * 64 * kRowBytes + 32 * k), smem_desc(sb + 32 * k));
        wgmma_commit();
        wgmma_wait<1>();  // slice kt - 1 is no longer read by this warpgroup
        if (kt > 0 && ctid % 128 == 0) mbar_arrive(&empty[(kt - 1) % S]);
    }
    wgmma_wait<0>();

    consumer_sync();  // both warpgroups are done with the ring
    store_tile<BN>(acc, smem, ctid, epi, nt, [&](int row) {
        const long long m = m0 + row;
        const bool ok = m < g.M;
        const int n = ok ? static_cast<int>(m / plane) : 0;
        return epi.row(ok, n, ok ? static_cast<int>(m - static_cast<long long>(n) * plane) : 0);
    });
#else
    (void)g, (void)wt, (void)n_tiles, (void)epi;
    __trap();
#endif
}

}  // namespace kernels

/// Forward epilogue: y[n, o, p] = acc * d[n, o] (d may be null); with out2, also
/// out2 = bias_act(y + strength * noise + bias). A warp handles 32 consecutive pixels of one
/// channel, so the column is warp-uniform. `atomic` (split-K): y += acc * d into a zeroed y, no out2.
struct ForwardStore {
    float* y = nullptr;
    const float* d = nullptr;
    bool atomic = false;
    int cols = 0, plane = 0;  ///< GEMM columns; pixels per sample of the GEMM's output grid
    int grid_w = 0;           ///< width of that grid
    /// Where grid pixel (gy, gx) lands: (gy * ostride + oy0, gx * ostride + ox0) of an output
    /// plane out_plane wide out_w (the up = 2 phases write every other pixel of the transposed grid).
    int out_w = 0, out_plane = 0, ostride = 1, oy0 = 0, ox0 = 0;
    float* out2 = nullptr;  ///< fused epilogue (up = 1 only: out_plane == plane)
    const float* noise = nullptr;
    bool noise_per_sample = false;
    const float* strength = nullptr;
    const float* bias = nullptr;
    nn::BiasActParams act{};

    /// What a thread's pixel contributes to every column: the output offset and the noise term.
    struct Row {
        bool ok;
        int n;
        long long base;  ///< n * cols * out_plane + the pixel's offset in its plane
        float noise;
    };
    __device__ Row row(bool ok, int n, int p) const {
        float nz = 0.0f;
        if (ok && out2 && noise) nz = *strength * noise[(noise_per_sample ? static_cast<long long>(n) * plane : 0) + p];
        const int gy = p / grid_w, gx = p - gy * grid_w;
        return {ok, n, static_cast<long long>(n) * cols * out_plane + (gy * ostride + oy0) * out_w + gx * ostride + ox0, nz};
    }
    __device__ void apply(const Row& r, int o, float acc) const {
        if (!r.ok || o >= cols) return;
        const float v = acc * (d ? d[r.n * cols + o] : 1.0f);
        const long long idx = r.base + static_cast<long long>(o) * out_plane;
        if (atomic) {
            atomicAdd(y + idx, v);
            return;
        }
        y[idx] = v;
        if (out2) out2[idx] = gemm::apply_bias_act(v + r.noise + (bias ? bias[o] : 0.0f), act);
    }
};

/// Grad-input epilogue: grad_x[n, c, p] = acc * s[n, c] (grad_x may be null) and
/// grad_s[n, c] += sum_p acc * x[n, c, p]: a warp's 32 pixels share c, so the sum is a warp
/// reduction and one atomic when they also share the sample (per-pixel atomics otherwise).
/// The atomics go to `replicas` copies of grad_s (block b uses copy b % replicas; the caller sums
/// them): with one copy, the thousands of blocks of a 1024^2 layer serialized on the same
/// 32-64 addresses (a cache line or two), which made this epilogue 3x slower than the forward's.
/// `atomic` (split-K): grad_x += acc * s into a zeroed grad_x (grad_s adds up either way).
struct GradInputStore {
    float* grad_x = nullptr;
    bool atomic = false;
    const float* s = nullptr;
    const float* x = nullptr;
    float* grad_s = nullptr;  ///< [replicas][batch][cols]
    int replicas = 1;
    long long replica_stride = 0;  ///< batch * cols
    int cols = 0, plane = 0;

    struct Row {
        bool ok;
        int n;
        long long base;
    };
    __device__ Row row(bool ok, int n, int p) const { return {ok, n, static_cast<long long>(n) * cols * plane + p}; }
    __device__ void apply(const Row& r, int c, float acc) const {
        if (c >= cols) return;  // warp-uniform: every lane below takes part in the shuffles
        float v = 0.0f;
        if (r.ok) {
            const long long idx = r.base + static_cast<long long>(c) * plane;
            if (grad_x && atomic) atomicAdd(grad_x + idx, acc * s[r.n * cols + c]);
            else if (grad_x) grad_x[idx] = acc * s[r.n * cols + c];
            v = acc * x[idx];
        }
        float* gs = grad_s + static_cast<long long>(blockIdx.x % replicas) * replica_stride;
        const int n0 = __shfl_sync(0xffffffffu, r.n, 0);
        if (__all_sync(0xffffffffu, !r.ok || r.n == n0)) {
            v = warp_sum(v);
            if (threadIdx.x % 32 == 0) atomicAdd(&gs[n0 * cols + c], v);
        } else if (r.ok) {
            atomicAdd(&gs[r.n * cols + c], v);
        }
    }
};

}  // namespace ganinv::cuda::hopper
