/// @file wgrad_gemm.cuh
/// @brief Gradient of a convolution w.r.t. its weights as one GEMM per tap:
///        grad_w[o, c, t] += sum_{n, pixel} A[n, o, posA(pixel, t)] * B[n, c, posB(pixel, t)],
///        M = out channels, N = in channels, K = batch * pixels (split over blocks, atomics).
///
///   up = 1: pixels = output grid; A = grad_y * d (identity), B = x * s shifted by the tap
///   up = 2: pixels = input grid;  A = FIR-adjoint gradient at (2 i + ky, 2 j + kx), B = x * s
#pragma once

#include "ganinv/cuda/check.hpp"
#include "ganinv/cuda/gemm_core.cuh"
#include "ganinv/cuda/pixel_operand.hpp"

namespace ganinv::cuda::gemm {

struct PixelLoader {
    static constexpr TileMap kMap = TileMap::col4;
    PixelOperand op;
    int row, dy, dx, GH, GW, K;
    bool ok;
    __device__ PixelLoader(const PixelOperand& o, int r0, int ky, int kx, int gh, int gw, int K_)
        : op(o), GH(gh), GW(gw), K(K_) {
        row = r0 + static_cast<int>(threadIdx.x) / 4;
        ok = row < op.R;
        dy = op.base_y + op.tap_mul * ky;
        dx = op.base_x + op.tap_mul * kx;
    }
    __device__ void load(int k0, float (&r)[4]) const {
        const int k = k0 + (threadIdx.x % 4) * 4;
        const int ghw = GH * GW;
        int n = k / ghw, p = k - n * ghw;
        int gy = p / GW, gx = p - gy * GW;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            float v = 0.0f;
            if (ok && k + j < K) {
                const int y = gy * op.stride + dy, x = gx * op.stride + dx;
                if (static_cast<unsigned>(y) < static_cast<unsigned>(op.SH) &&
                    static_cast<unsigned>(x) < static_cast<unsigned>(op.SW)) {
                    const long long plane = static_cast<long long>(n) * op.R + row;
                    v = __ldg(op.src + plane * op.SH * op.SW + y * op.SW + x);
                    if (op.scale) v *= __ldg(op.scale + plane);
                }
            }
            r[j] = v;
            if (++gx == GW) {
                gx = 0;
                if (++gy == GH) {
                    gy = 0;
                    ++n;
                }
            }
        }
    }
};

template <Precision P>
__global__ void __launch_bounds__(kThreads) wgrad_kernel(PixelOperand a, PixelOperand b, float* grad_w, int O, int C,
                                                         int ksize, int GH, int GW, int K, int splits,
                                                         int tiles_per_split) {
    __shared__ Smem sm;
    const int t = static_cast<int>(blockIdx.z) / splits, split = static_cast<int>(blockIdx.z) % splits;
    const int ky = t / ksize, kx = t - ky * ksize;
    const int m0 = static_cast<int>(blockIdx.y) * kBM, n0 = static_cast<int>(blockIdx.x) * kBN;
    const int kb = split * tiles_per_split * kBK;
    const int ke = min(K, kb + tiles_per_split * kBK);
    if (kb >= ke) return;
    PixelLoader la(a, m0, ky, kx, GH, GW, K);
    PixelLoader lb(b, n0, ky, kx, GH, GW, K);
    Acc acc;
#pragma unroll
    for (int e = 0; e < 16; ++e) acc.v[e] = 0.0f;
    mainloop<P>(la, lb, kb, ke, acc, sm);
    const int kk = ksize * ksize;
#pragma unroll
    for (int e = 0; e < 16; ++e) {
        int mi, ni;
        Math<P>::coord(e, mi, ni);
        const int o = m0 + mi, c = n0 + ni;
        if (o < O && c < C) {
            float* dst = grad_w + (static_cast<long long>(o) * C + c) * kk + t;
            if (splits > 1) atomicAdd(dst, acc.v[e]);
            else *dst += acc.v[e];
        }
    }
}

/// grad_w[O, C, k, k] += the per-tap GEMMs over a GH x GW pixel grid of `batch` samples.
inline void launch_wgrad(Precision prec, const PixelOperand& a, const PixelOperand& b, float* grad_w, int O, int C,
                         int ksize, int GH, int GW, int batch, int num_sms, cudaStream_t stream) {
    const long long K = static_cast<long long>(batch) * GH * GW;
    GANINV_CHECK(K < (1LL << 31), ShapeError, "weight gradient: batch * pixels = ", K, " is too large");
    const int taps = ksize * ksize;
    const long long blocks = static_cast<long long>((C + kBN - 1) / kBN) * ((O + kBM - 1) / kBM) * taps;
    const SplitK sk = plan_split_k(blocks, static_cast<int>(K), num_sms, 65535 / taps);
    const dim3 grid(static_cast<unsigned>((C + kBN - 1) / kBN), static_cast<unsigned>((O + kBM - 1) / kBM),
                    static_cast<unsigned>(taps * sk.splits));
    const int k32 = static_cast<int>(K);
    switch (prec) {
        case Precision::fp32:
            wgrad_kernel<Precision::fp32><<<grid, kThreads, 0, stream>>>(a, b, grad_w, O, C, ksize, GH, GW, k32, sk.splits, sk.tiles_per_split);
            break;
        case Precision::tf32:
            wgrad_kernel<Precision::tf32><<<grid, kThreads, 0, stream>>>(a, b, grad_w, O, C, ksize, GH, GW, k32, sk.splits, sk.tiles_per_split);
            break;
        case Precision::bf16:
            wgrad_kernel<Precision::bf16><<<grid, kThreads, 0, stream>>>(a, b, grad_w, O, C, ksize, GH, GW, k32, sk.splits, sk.tiles_per_split);
            break;
    }
    GANINV_CUDA_CHECK_LAUNCH();
}

}  // namespace ganinv::cuda::gemm
