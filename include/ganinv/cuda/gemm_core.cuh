/// @file gemm_core.cuh
/// @brief The shared core of the implicit-GEMM kernels: a 64x64x16 thread-block tile, 256
///        threads, register-prefetched double-buffered shared memory, and three "math" policies
///        that consume the same shared-memory tiles: exact FP32 (FFMA, 4x4 per thread), TF32
///        tensor cores (mma.sync m16n8k8) and BF16 tensor cores (mma.sync m16n8k16).
///
/// A kernel supplies two *loaders* (global -> registers for one k-tile; they implement the
/// implicit-GEMM gathers: convolution taps, zero padding, strides, per-channel scales) and an
/// *epilogue* (what to do with the accumulators). The main loop, the tile shapes and the
/// fragment layouts live here once. Operands are rounded to TF32/BF16 as they enter shared
/// memory, so the inner loops only move bits.
#pragma once

#include "ganinv/cuda/options.hpp"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace ganinv::cuda::gemm {

constexpr int kBM = 64;       ///< tile rows (GEMM M)
constexpr int kBN = 64;       ///< tile columns (GEMM N)
constexpr int kBK = 16;       ///< tile depth (GEMM K)
constexpr int kThreads = 256;
constexpr int kLd = 72;       ///< padded row of a [kBK][64] tile: 72 = 8 mod 32 keeps mma fragment reads conflict-free

/// Both operands, two stages each: 18 KiB of static shared memory.
struct alignas(16) Smem {
    float a[2][kBK][kLd];  ///< A tile stored k-major: a[k][m]
    float b[2][kBK][kLd];  ///< B tile stored k-major: b[k][n]
};

/// Thread-to-tile mappings of a loader (each thread moves 4 elements of a [kBK][64] tile).
enum class TileMap {
    row4,  ///< thread t: k = t / 16, columns 4 * (t % 16) .. + 3 (4 consecutive pixels)
    col4   ///< thread t: column t / 4, k = 4 * (t % 4) .. + 3 (4 consecutive k of one row)
};

__device__ __forceinline__ float round_tf32(float x) {
    std::uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return __uint_as_float(r);
}
__device__ __forceinline__ float round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }
__device__ __forceinline__ std::uint32_t pack_bf16(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x (low half) = lo: the smaller k
    return *reinterpret_cast<const std::uint32_t*>(&v);
}

/// 16 accumulators per thread in every policy; `coord` says which (row, col) of the tile each is.
struct Acc {
    float v[16];
};

template <Precision P>
struct Math;

template <>
struct Math<Precision::fp32> {
    __device__ static float round(float x) { return x; }
    __device__ static void coord(int e, int& m, int& n) {
        m = (threadIdx.x / 16) * 4 + e / 4;
        n = (threadIdx.x % 16) * 4 + e % 4;
    }
    __device__ static void compute(const float (*A)[kLd], const float (*B)[kLd], Acc& acc) {
        const int tm = (threadIdx.x / 16) * 4, tn = (threadIdx.x % 16) * 4;
#pragma unroll
        for (int k = 0; k < kBK; ++k) {
            const float4 a = *reinterpret_cast<const float4*>(&A[k][tm]);
            const float4 b = *reinterpret_cast<const float4*>(&B[k][tn]);
            const float av[4] = {a.x, a.y, a.z, a.w}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc.v[i * 4 + j] = fmaf(av[i], bv[j], acc.v[i * 4 + j]);
        }
    }
};

/// Warp layout of the tensor-core policies: 8 warps as 2 (M) x 4 (N), each a 32x16 sub-tile of
/// 2 x 2 mma tiles; accumulator e = (mi * 2 + ni) * 4 + r in the PTX C-fragment order.
struct MmaLayout {
    __device__ static void coord(int e, int& m, int& n) {
        const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, t = lane & 3;
        const int mi = e / 8, ni = (e / 4) % 2, r = e % 4;
        m = (warp / 4) * 32 + mi * 16 + g + (r >> 1) * 8;
        n = (warp % 4) * 16 + ni * 8 + 2 * t + (r & 1);
    }
};

template <>
struct Math<Precision::tf32> : MmaLayout {
    __device__ static float round(float x) { return round_tf32(x); }
    __device__ static void compute(const float (*A)[kLd], const float (*B)[kLd], Acc& acc) {
        const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, t = lane & 3;
        const int wm = (warp / 4) * 32, wn = (warp % 4) * 16;
#pragma unroll
        for (int ks = 0; ks < kBK; ks += 8) {
            std::uint32_t a[2][4], b[2][2];
#pragma unroll
            for (int mi = 0; mi < 2; ++mi) {
                const int m = wm + mi * 16 + g;
                a[mi][0] = __float_as_uint(A[ks + t][m]);
                a[mi][1] = __float_as_uint(A[ks + t][m + 8]);
                a[mi][2] = __float_as_uint(A[ks + t + 4][m]);
                a[mi][3] = __float_as_uint(A[ks + t + 4][m + 8]);
            }
#pragma unroll
            for (int ni = 0; ni < 2; ++ni) {
                const int n = wn + ni * 8 + g;
                b[ni][0] = __float_as_uint(B[ks + t][n]);
                b[ni][1] = __float_as_uint(B[ks + t + 4][n]);
            }
#pragma unroll
            for (int mi = 0; mi < 2; ++mi)
#pragma unroll
                for (int ni = 0; ni < 2; ++ni) {
                    float* c = acc.v + (mi * 2 + ni) * 4;
                    asm volatile(
                        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
                        "{%8,%9}, {%0,%1,%2,%3};\n"
                        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                        : "r"(a[mi][0]), "r"(a[mi][1]), "r"(a[mi][2]), "r"(a[mi][3]), "r"(b[ni][0]), "r"(b[ni][1]));
                }
        }
    }
};

template <>
struct Math<Precision::bf16> : MmaLayout {
    __device__ static float round(float x) { return round_bf16(x); }
    __device__ static void compute(const float (*A)[kLd], const float (*B)[kLd], Acc& acc) {
        const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, t = lane & 3;
        const int wm = (warp / 4) * 32, wn = (warp % 4) * 16;
        std::uint32_t a[2][4], b[2][2];
#pragma unroll
        for (int mi = 0; mi < 2; ++mi) {
            const int m = wm + mi * 16 + g;
            a[mi][0] = pack_bf16(A[2 * t][m], A[2 * t + 1][m]);
            a[mi][1] = pack_bf16(A[2 * t][m + 8], A[2 * t + 1][m + 8]);
            a[mi][2] = pack_bf16(A[2 * t + 8][m], A[2 * t + 9][m]);
            a[mi][3] = pack_bf16(A[2 * t + 8][m + 8], A[2 * t + 9][m + 8]);
        }
#pragma unroll
        for (int ni = 0; ni < 2; ++ni) {
            const int n = wn + ni * 8 + g;
            b[ni][0] = pack_bf16(B[2 * t][n], B[2 * t + 1][n]);
            b[ni][1] = pack_bf16(B[2 * t + 8][n], B[2 * t + 9][n]);
        }
#pragma unroll
        for (int mi = 0; mi < 2; ++mi)
#pragma unroll
            for (int ni = 0; ni < 2; ++ni) {
                float* c = acc.v + (mi * 2 + ni) * 4;
                asm volatile(
                    "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
                    "{%8,%9}, {%0,%1,%2,%3};\n"
                    : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                    : "r"(a[mi][0]), "r"(a[mi][1]), "r"(a[mi][2]), "r"(a[mi][3]), "r"(b[ni][0]), "r"(b[ni][1]));
            }
    }
};

/// Writes a loader's 4 registers into its place of a [kBK][kLd] tile, rounded for the policy.
template <Precision P, TileMap Map>
__device__ __forceinline__ void store_tile(float (*tile)[kLd], const float (&r)[4]) {
    using M = Math<P>;
    if constexpr (Map == TileMap::row4) {
        const int k = threadIdx.x / 16, c = (threadIdx.x % 16) * 4;
        *reinterpret_cast<float4*>(&tile[k][c]) = make_float4(M::round(r[0]), M::round(r[1]), M::round(r[2]), M::round(r[3]));
    } else {
        const int c = threadIdx.x / 4, k = (threadIdx.x % 4) * 4;
#pragma unroll
        for (int j = 0; j < 4; ++j) tile[k + j][c] = M::round(r[j]);
    }
}

/// acc += A[m0.., k_begin..k_end) * B[k_begin..k_end), n0..) over shared memory `sm`.
/// Loaders: `static constexpr TileMap kMap` and `void load(int k0, float (&r)[4])` (zeros past
/// the edges). The k range is a multiple of kBK except possibly at K's end.
template <Precision P, class LoaderA, class LoaderB>
__device__ __forceinline__ void mainloop(LoaderA& la, LoaderB& lb, int k_begin, int k_end, Acc& acc, Smem& sm) {
    float ra[4], rb[4];
    la.load(k_begin, ra);
    lb.load(k_begin, rb);
    store_tile<P, LoaderA::kMap>(sm.a[0], ra);
    store_tile<P, LoaderB::kMap>(sm.b[0], rb);
    __syncthreads();
    int buf = 0;
    for (int k0 = k_begin; k0 < k_end; k0 += kBK) {
        const bool next = k0 + kBK < k_end;
        if (next) {
            la.load(k0 + kBK, ra);
            lb.load(k0 + kBK, rb);
        }
        Math<P>::compute(sm.a[buf], sm.b[buf], acc);
        if (next) {
            store_tile<P, LoaderA::kMap>(sm.a[buf ^ 1], ra);
            store_tile<P, LoaderB::kMap>(sm.b[buf ^ 1], rb);
        }
        __syncthreads();
        buf ^= 1;
    }
}

/// Split-K plan: how many k-slices a launch uses so that small problems still fill the GPU.
struct SplitK {
    int splits = 1;
    int tiles_per_split = 1;
};
inline SplitK plan_split_k(long long blocks, int K, int num_sms, int max_splits = 32) {
    const int tiles = (K + kBK - 1) / kBK;
    SplitK s;
    s.splits = 1;
    const long long target = 2LL * num_sms;
    if (blocks < target) {
        long long want = (target + blocks - 1) / blocks;
        want = want < tiles / 4 ? want : tiles / 4;  // at least 4 k-tiles per slice
        want = want < max_splits ? want : max_splits;
        s.splits = want > 1 ? static_cast<int>(want) : 1;
    }
    s.tiles_per_split = (tiles + s.splits - 1) / s.splits;
    s.splits = (tiles + s.tiles_per_split - 1) / s.tiles_per_split;
    return s;
}

}  // namespace ganinv::cuda::gemm
