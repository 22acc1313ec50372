/// @file modconv_aux.cuh
/// @brief The small kernels around the modulated-conv GEMMs: squared weight norms, demodulation
///        coefficients, weight re-arrangement (transposed, per up-sampling phase, per-sample
///        folded), and the demodulation terms of the backward pass. All FP32.
#pragma once

#include "ganinv/cuda/launch.cuh"

namespace ganinv::cuda::kernels {

/// w2[o, c] = sum_t w[o, c, t]^2
template <class T = float>
__global__ void weight_sq_norm(const T* w, int O, int C, int kk, float* w2) {
    GANINV_GRID_STRIDE(i, static_cast<long long>(O) * C) {
        const T* p = w + i * kk;
        float a = 0.0f;
        for (int t = 0; t < kk; ++t) a += p[t] * p[t];
        w2[i] = a;
    }
}

/// d[n, o] = rsqrt(sum_c s[n, c]^2 w2[o, c] + 1e-8): one warp per (n, o).
template <class T = float>
__global__ void demod_coefficients(const T* w2, const float* s, int N, int O, int C, float* d) {
    const long long warps = static_cast<long long>(N) * O;
    const int lane = threadIdx.x % 32;
    for (long long wi = (blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x) / 32; wi < warps;
         wi += static_cast<long long>(gridDim.x) * blockDim.x / 32) {
        const int n = static_cast<int>(wi / O), o = static_cast<int>(wi % O);
        float a = 0.0f;
        for (int c = lane; c < C; c += 32) {
            const float sv = s[n * C + c];
            a += w2[static_cast<long long>(o) * C + c] * sv * sv;
        }
        a = warp_sum(a);
        if (lane == 0) d[wi] = 1.0f / sqrtf(a + 1e-8f);
    }
}

/// dst[n, o, c * T + jy * ntx + jx] = w[o, c, ky0 + sy * jy, kx0 + sx * jx] * s[n, c] * d[n, o]
/// (s, d optional; nb = 1 when neither is given). Re-arranges the taps of one up-sampling phase
/// and/or folds the styles into per-sample weights.
template <class T = float>
__global__ void arrange_weights(const T* w, int O, int C, int k, int ky0, int sy, int nty, int kx0, int sx, int ntx,
                                const float* s, const float* d, int nb, float* dst) {
    const int Tt = nty * ntx;
    const long long per = static_cast<long long>(O) * C * Tt;
    GANINV_GRID_STRIDE(i, per * nb) {
        const int n = static_cast<int>(i / per);
        long long r = i - n * per;
        const int o = static_cast<int>(r / (static_cast<long long>(C) * Tt));
        r -= static_cast<long long>(o) * C * Tt;
        const int c = static_cast<int>(r / Tt), j = static_cast<int>(r - static_cast<long long>(c) * Tt);
        const int jy = j / ntx, jx = j - jy * ntx;
        float v = w[((static_cast<long long>(o) * C + c) * k + ky0 + sy * jy) * k + kx0 + sx * jx];
        if (s) v *= s[n * C + c];
        if (d) v *= d[n * O + o];
        dst[i] = v;
    }
}

/// wT[c, o, t] = w[o, c, t]: the A operand of the gradient w.r.t. the input.
template <class T = float>
__global__ void transpose_weights(const T* w, int O, int C, int kk, float* wT) {
    GANINV_GRID_STRIDE(i, static_cast<long long>(O) * C * kk) {
        const int t = static_cast<int>(i % kk);
        const long long oc = i / kk;
        const int o = static_cast<int>(oc / C), c = static_cast<int>(oc % C);
        wT[(static_cast<long long>(c) * O + o) * kk + t] = w[i];
    }
}

/// coef[n, o] = d^2 * sum_p grad_y * y over one plane (= dL/dd * d^3): one block per plane.
template <class T = float>
__global__ void demod_grad_coef(const T* grad_y, const float* y, const float* d, long long hw, float* coef) {
    const long long plane = blockIdx.x;
    const T* g = grad_y + plane * hw;
    const float* yy = y + plane * hw;
    float a = 0.0f;
    for (long long i = threadIdx.x; i < hw; i += blockDim.x) a += g[i] * yy[i];
    a = block_sum(a);
    if (threadIdx.x == 0) coef[plane] = a * d[plane] * d[plane];
}

/// grad_s[n, c] -= s[n, c] * sum_o coef[n, o] * w2[o, c]
template <class T = float>
__global__ void demod_backward_styles(const float* coef, const T* w2, const float* s, int N, int O, int C,
                                      float* grad_s) {
    GANINV_GRID_STRIDE(i, static_cast<long long>(N) * C) {
        const int n = static_cast<int>(i / C), c = static_cast<int>(i % C);
        float a = 0.0f;
        for (int o = 0; o < O; ++o) a += coef[n * O + o] * w2[static_cast<long long>(o) * C + c];
        grad_s[i] -= a * s[i];
    }
}

/// grad_w[o, c, t] -= (sum_n coef[n, o] s[n, c]^2) * w[o, c, t]
template <class T = float>
__global__ void demod_backward_weight(const float* coef, const float* s, const T* w, int N, int O, int C, int kk,
                                      float* grad_w) {
    GANINV_GRID_STRIDE(i, static_cast<long long>(O) * C) {
        const int o = static_cast<int>(i / C), c = static_cast<int>(i % C);
        float a = 0.0f;
        for (int n = 0; n < N; ++n) {
            const float sv = s[n * C + c];
            a += coef[n * O + o] * sv * sv;
        }
        for (int t = 0; t < kk; ++t) grad_w[i * kk + t] -= a * w[i * kk + t];
    }
}

}  // namespace ganinv::cuda::kernels
