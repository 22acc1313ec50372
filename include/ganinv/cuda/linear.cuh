/// @file linear.cuh
/// @brief StyleGAN2's fully connected layer on the GPU (mapping network and the per-layer style
///        affines): y = bias_act(x W^T * weight_gain + b * bias_gain), and its backward. The
///        matrices are small ([batch, 512] x [512, 512]); one warp per output dot product and
///        one thread per gradient element keep every access coalesced without a GEMM library.
#pragma once

#include "ganinv/cuda/elementwise.cuh"
#include "ganinv/cuda/launch.cuh"
#include "ganinv/cuda/modconv_aux.cuh"
#include "ganinv/nn/linear_params.hpp"

namespace ganinv::cuda {

namespace kernels {

/// One warp per (n, o).
template <class T = float>
__global__ void linear_forward(const T* x, long long n, const T* w, const T* b, nn::LinearParams p, T* y) {
    const int lane = threadIdx.x % 32;
    const long long outs = n * p.out;
    for (long long wi = (blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x) / 32; wi < outs;
         wi += static_cast<long long>(gridDim.x) * blockDim.x / 32) {
        const long long r = wi / p.out, o = wi - r * p.out;
        const T* xr = x + r * p.in;
        const T* wr = w + o * p.in;
        float a = 0.0f;
        for (long long i = lane; i < p.in; i += 32) a += xr[i] * wr[i];
        a = warp_sum(a);
        if (lane == 0) y[wi] = gemm::apply_bias_act(a * p.weight_gain + (b ? b[o] * p.bias_gain : 0.0f), p.act);
    }
}

/// g[n, o] = bias_act'(y) * grad_y in place; grad_b[o] += bias_gain * sum_n g (thread per o).
template <class T = float>
__global__ void linear_act_backward(const T* y, T* gy, long long n, nn::LinearParams p, T* grad_b) {
    GANINV_GRID_STRIDE(o, static_cast<long long>(p.out)) {
        float a = 0.0f;
        for (long long r = 0; r < n; ++r) {
            const long long i = r * p.out + o;
            const float g = kernels::bias_act_grad(y[i], gy[i], p.act);
            gy[i] = g;
            a += g;
        }
        if (grad_b) grad_b[o] += a * p.bias_gain;
    }
}

/// grad_w[o, i] += weight_gain * sum_n g[n, o] x[n, i]
template <class T = float>
__global__ void linear_grad_weight(const T* g, long long n, const T* x, nn::LinearParams p, T* gw) {
    GANINV_GRID_STRIDE(idx, static_cast<long long>(p.out) * p.in) {
        const long long o = idx / p.in, i = idx - o * p.in;
        float a = 0.0f;
        for (long long r = 0; r < n; ++r) a += g[r * p.out + o] * x[r * p.in + i];
        gw[idx] += a * p.weight_gain;
    }
}

}  // namespace kernels

inline void linear_forward(const float* x, Index n, const float* w, const float* b, const nn::LinearParams& p,
                           float* y, cudaStream_t stream) {
    launch_1d(kernels::linear_forward<float>, n * p.out * 32, stream, x, static_cast<long long>(n), w, b, p, y);
}

/// grad_y is consumed as scratch (it holds bias_act's gradient afterwards), as on the CPU.
inline void linear_backward(const float* x, Index n, const float* w, const float* y, float* grad_y,
                            const nn::LinearParams& p, float* grad_x, float* grad_w, float* grad_b,
                            cudaStream_t stream) {
    const long long nn_ = n;
    launch_1d(kernels::linear_act_backward<float>, p.out, stream, y, grad_y, nn_, p, grad_b);
    if (grad_x) kernels::launch_rows_times_matrix<0>(grad_y, n, p.out, w, p.in, p.weight_gain, nullptr, grad_x, stream);
    if (grad_w) launch_1d(kernels::linear_grad_weight<float>, p.out * p.in, stream, grad_y, nn_, x, p, grad_w);
}

}  // namespace ganinv::cuda
