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

/// coef[n, o] += sum_p grad_y * y over one chunk of one plane (coef zeroed before; grid: planes x
/// chunks, so a few large planes still spread over the whole GPU). demod_grad_finish scales by d^2.
template <class T = float>
__global__ void demod_grad_coef(const T* grad_y, const float* y, long long hw, float* coef) {
    const long long plane = blockIdx.x;
    const T* g = grad_y + plane * hw;
    const float* yy = y + plane * hw;
    float a = 0.0f;
    for (long long i = blockIdx.y * static_cast<long long>(blockDim.x) + threadIdx.x; i < hw;
         i += static_cast<long long>(gridDim.y) * blockDim.x)
        a += g[i] * yy[i];
    a = block_sum(a);
    if (threadIdx.x == 0) atomicAdd(coef + plane, a);
}

/// coef = dL/dd * d^3 = d^2 * sum(grad_y * y)
template <class T = float>
__global__ void demod_grad_finish(float* coef, const T* d, long long n) {
    GANINV_GRID_STRIDE(i, n) coef[i] *= d[i] * d[i];
}

/// coef[i] = d[i]^2 * sum_r copies[r * n + i]: the fused backward prologue's replicated
/// demodulation sums turned into coefficients in one pass (what zeroing coef, sum_replicas and
/// demod_grad_finish give, bit for bit).
template <class T = float>
__global__ void demod_replicas_finish(const float* copies, int replicas, long long n, const T* d, float* coef) {
    GANINV_GRID_STRIDE(i, n) {
        float a = 0.0f;
        for (int r = 0; r < replicas; ++r) a += copies[r * n + i];
        coef[i] = a * (d[i] * d[i]);
    }
}

/// Small "rows times matrix" products: acc[r, j] = sum_k a[r, k] * B[k, j] for few rows r and
/// K, J up to a few thousand. Block = 32 columns x 16 k-groups (coalesced reads of B, enough
/// loads in flight), grid = (column blocks, rows). mode 0: out[r, j] = alpha * acc (gradient of
/// a linear layer w.r.t. its input); mode 1: out[r, j] -= acc * s[r, j] (demodulation term of
/// the style gradient).
template <int Mode, class T = float>
__global__ void rows_times_matrix(const T* a, int K, const T* B, int J, float alpha, const T* s, T* out) {
    __shared__ float part[16][33];
    const int r = blockIdx.y, j = blockIdx.x * 32 + threadIdx.x;
    float acc = 0.0f;
    if (j < J) {
#pragma unroll 4
        for (int k = threadIdx.y; k < K; k += 16) acc += a[static_cast<long long>(r) * K + k] * B[static_cast<long long>(k) * J + j];
    }
    part[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && j < J) {
        float v = 0.0f;
#pragma unroll
        for (int i = 0; i < 16; ++i) v += part[i][threadIdx.x];
        const long long idx = static_cast<long long>(r) * J + j;
        if constexpr (Mode == 0) out[idx] = alpha * v;
        else out[idx] -= v * s[idx];
    }
}

template <int Mode>
inline void launch_rows_times_matrix(const float* a, Index rows, Index K, const float* B, Index J, float alpha,
                                     const float* s, float* out, cudaStream_t stream) {
    if (rows <= 0 || J <= 0) return;
    GANINV_CHECK(rows <= 65535 && K < (Index{1} << 31) && J < (Index{1} << 31), ShapeError,
                 "rows_times_matrix: ", rows, " rows exceed the grid limit");
    const dim3 grid(static_cast<unsigned>((J + 31) / 32), static_cast<unsigned>(rows));
    rows_times_matrix<Mode, float><<<grid, dim3(32, 16), 0, stream>>>(a, static_cast<int>(K), B, static_cast<int>(J),
                                                                       alpha, s, out);
    GANINV_CUDA_CHECK_LAUNCH();
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
