/// @file elementwise.cuh
/// @brief The element-wise and small reduction kernels of the generator: fill, axpy, row
///        broadcast/sum, truncation, style-column gather/scatter, the ws reduction, the mapping
///        network's normalize_2nd_moment (forward, backward), noise (forward, backward) and
///        bias_act (forward, backward). Same semantics as the `Cpu` backend members.
#pragma once

#include "ganinv/cuda/conv_gemm.cuh"
#include "ganinv/cuda/launch.cuh"
#include "ganinv/nn/bias_act.hpp"

namespace ganinv::cuda::kernels {

template <class T = float>
__global__ void fill(T* x, long long n, T v) {
    GANINV_GRID_STRIDE(i, n) x[i] = v;
}

template <class T = float>
__global__ void axpy(long long n, float alpha, const T* x, T* y) {
    GANINV_GRID_STRIDE(i, n) y[i] += alpha * x[i];
}

/// dst[b, i] = src[i]
template <class T = float>
__global__ void broadcast_rows(const T* src, long long row, long long batch, T* dst) {
    GANINV_GRID_STRIDE(i, row * batch) dst[i] = src[i % row];
}

/// dst[i] += sum_b src[b, i]
template <class T = float>
__global__ void sum_rows_add(const T* src, long long row, long long batch, T* dst) {
    GANINV_GRID_STRIDE(i, row) {
        float a = 0.0f;
        for (long long b = 0; b < batch; ++b) a += src[b * row + i];
        dst[i] += a;
    }
}

/// ws[b, l, i] = avg[i] + psi * (ws[b, l, i] - avg[i]) for l < cutoff
template <class T = float>
__global__ void truncate(T* ws, long long batch, long long num_ws, long long dim, const T* avg, float psi,
                         long long cutoff) {
    const long long lim = cutoff < num_ws ? cutoff : num_ws;
    GANINV_GRID_STRIDE(i, batch * lim * dim) {
        const long long b = i / (lim * dim), r = i - b * lim * dim;
        T& v = ws[b * num_ws * dim + r];
        const long long c = r % dim;
        v = avg[c] + psi * (v - avg[c]);
    }
}

/// dst[r, c] = scale * src[r, offset + c]
template <class T = float>
__global__ void gather_columns(const T* src, long long rows, long long src_cols, long long offset, long long cols,
                               float scale, T* dst) {
    GANINV_GRID_STRIDE(i, rows * cols) {
        const long long r = i / cols, c = i - r * cols;
        dst[i] = scale * src[r * src_cols + offset + c];
    }
}

/// dst[r, offset + c] += scale * src[r, c]
template <class T = float>
__global__ void scatter_add_columns(const T* src, long long rows, long long cols, float scale, T* dst,
                                    long long dst_cols, long long offset) {
    GANINV_GRID_STRIDE(i, rows * cols) {
        const long long r = i / cols, c = i - r * cols;
        dst[r * dst_cols + offset + c] += scale * src[i];
    }
}

/// out[b, i] = sum_l (l < cutoff ? psi : 1) * g[b, l, i]
template <class T = float>
__global__ void reduce_ws(const T* g, long long batch, long long num_ws, long long dim, float psi, long long cutoff,
                          T* out) {
    GANINV_GRID_STRIDE(i, batch * dim) {
        const long long b = i / dim, c = i - b * dim;
        float a = 0.0f;
        for (long long l = 0; l < num_ws; ++l) a += (l < cutoff ? psi : 1.0f) * g[(b * num_ws + l) * dim + c];
        out[i] = a;
    }
}

/// y = x * rsqrt(mean(x^2) + 1e-8) per row: one warp per row.
template <class T = float>
__global__ void normalize_2nd_moment(const T* x, long long rows, int dim, T* y) {
    const int lane = threadIdx.x % 32;
    for (long long r = (blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x) / 32; r < rows;
         r += static_cast<long long>(gridDim.x) * blockDim.x / 32) {
        float m = 0.0f;
        for (int i = lane; i < dim; i += 32) m += x[r * dim + i] * x[r * dim + i];
        m = warp_sum(m);
        const float scale = 1.0f / sqrtf(m / static_cast<float>(dim) + 1e-8f);
        for (int i = lane; i < dim; i += 32) y[r * dim + i] = x[r * dim + i] * scale;
    }
}

template <class T = float>
__global__ void normalize_2nd_moment_backward(const T* x, const T* gy, long long rows, int dim, T* gx) {
    const int lane = threadIdx.x % 32;
    for (long long r = (blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x) / 32; r < rows;
         r += static_cast<long long>(gridDim.x) * blockDim.x / 32) {
        float m = 0.0f, g = 0.0f;
        for (int i = lane; i < dim; i += 32) {
            m += x[r * dim + i] * x[r * dim + i];
            g += gy[r * dim + i] * x[r * dim + i];
        }
        m = warp_sum(m);
        g = warp_sum(g);
        const float s = 1.0f / sqrtf(m / static_cast<float>(dim) + 1e-8f);
        const float k = g * s * s * s / static_cast<float>(dim);
        for (int i = lane; i < dim; i += 32) gx[r * dim + i] = gy[r * dim + i] * s - x[r * dim + i] * k;
    }
}

/// y[n, c, i] += strength * noise[n or 0, i]
template <class T = float>
__global__ void add_noise(T* y, long long batch, long long channels, long long spatial, const T* noise,
                          bool per_sample, const T* strength) {
    const float k = *strength;
    GANINV_GRID_STRIDE(i, batch * channels * spatial) {
        const long long nc = i / spatial, s = i - nc * spatial;
        y[i] += k * noise[(per_sample ? (nc / channels) * spatial : 0) + s];
    }
}

/// grad_noise[n, i] = strength * sum_c g[n, c, i]; grad_strength += sum g * noise (block sums + atomics).
template <class T = float>
__global__ void add_noise_backward(const T* g, long long batch, long long channels, long long spatial,
                                   const T* noise, bool per_sample, const T* strength, T* grad_noise,
                                   T* grad_strength) {
    float part = 0.0f;
    GANINV_GRID_STRIDE(i, batch * spatial) {
        const long long n = i / spatial, s = i - n * spatial;
        float a = 0.0f;
        for (long long c = 0; c < channels; ++c) a += g[(n * channels + c) * spatial + s];
        if (grad_noise) grad_noise[i] = a * *strength;
        part += a * noise[(per_sample ? n * spatial : 0) + s];
    }
    if (grad_strength) {
        part = block_sum(part);
        if (threadIdx.x == 0) atomicAdd(grad_strength, part);
    }
}

/// In place: x = bias_act(x + bias[c]).
template <class T = float>
__global__ void bias_act_forward(T* x, long long n, long long c, long long spatial, const T* bias,
                                 nn::BiasActParams p) {
    GANINV_GRID_STRIDE(i, n * c * spatial) {
        const float b = bias ? bias[(i / spatial) % c] : 0.0f;
        x[i] = gemm::apply_bias_act(x[i] + b, p);
    }
}

/// out2[n, c, i] = bias_act(y[n, c, i] + strength * noise[n or 0, i] + bias[c]) (noise, bias optional).
template <class T = float>
__global__ void noise_bias_act(const T* y, long long n, long long c, long long spatial, const T* noise,
                               bool per_sample, const T* strength, const T* bias, nn::BiasActParams p, T* out2) {
    GANINV_GRID_STRIDE(i, n * c * spatial) {
        const long long nc = i / spatial, s = i - nc * spatial;
        float u = y[i];
        if (noise) u += *strength * noise[(per_sample ? (nc / c) * spatial : 0) + s];
        if (bias) u += bias[nc % c];
        out2[i] = gemm::apply_bias_act(u, p);
    }
}

__device__ __forceinline__ float bias_act_grad(float y, float g, const nn::BiasActParams& p) {
    if (p.clamp >= 0.0f && fabsf(y) >= p.clamp) g = 0.0f;
    g *= p.gain;
    if (p.act == nn::Activation::lrelu && y < 0.0f) g *= p.alpha;
    return g;
}

/// grad_x (may alias grad_y) from the forward output y; grad_bias[c] += per-plane sums.
/// Grid: (planes, chunks); each block sums its chunk of one plane.
template <class T = float>
__global__ void bias_act_backward(const T* y, const T* gy, long long c, long long spatial, nn::BiasActParams p,
                                  T* gx, T* grad_bias) {
    const long long plane = blockIdx.x;
    const long long base = plane * spatial;
    float part = 0.0f;
    for (long long i = blockIdx.y * static_cast<long long>(blockDim.x) + threadIdx.x; i < spatial;
         i += static_cast<long long>(gridDim.y) * blockDim.x) {
        const float g = bias_act_grad(y[base + i], gy[base + i], p);
        gx[base + i] = g;
        part += g;
    }
    if (grad_bias) {
        part = block_sum(part);
        if (threadIdx.x == 0) atomicAdd(grad_bias + plane % c, part);
    }
}

/// dst[i] += sum_r copies[r * stride + i] for i < stride.
template <class T = float>
__global__ void sum_replicas(const T* copies, int replicas, long long stride, T* dst) {
    GANINV_GRID_STRIDE(i, stride) {
        float a = 0.0f;
        for (int r = 0; r < replicas; ++r) a += copies[r * stride + i];
        dst[i] += a;
    }
}

/// bias_act_backward and add_noise_backward in one pass, threads walking the channels of their
/// pixels (PixelChannelSplit): g_pre = bias_act'(out) * g (g_pre may alias g); grad_bias[c] +=
/// sum g_pre (may be null); with noise, grad_noise[n, p] = strength * sum_c g_pre and
/// grad_strength += sum g_pre * noise (either may be null). Grid (pixel tiles, batch); shared
/// memory: the per-group channel sums of each pixel, C floats with grad_bias and C with
/// demod_sum. gridDim.z > 1 splits the channels across blocks: grad_noise then accumulates (zero
/// it first). With y (the conv's output before the epilogue) and demod_sum: demod_sum[n, c] +=
/// sum_p g_pre * y, the demodulation sums of the conv's backward, from the same pass.
template <class T = float>
__global__ void bias_act_noise_backward(const T* out, const T* g, int channels, long long spatial, int groups,
                                        nn::BiasActParams p, const T* noise, bool per_sample, const T* strength,
                                        T* g_pre, T* grad_bias, T* grad_noise, T* grad_strength, const T* y = nullptr,
                                        T* demod_sum = nullptr) {
    extern __shared__ float sm[];
    const PixelChannelSplit split(groups);
    float* chan_sum = sm;                                              // [groups][tile]
    float* bias_part = sm + groups * split.tile;                       // [channels], with grad_bias
    float* demod_part = bias_part + (grad_bias ? channels : 0);        // [channels], with demod_sum
    const bool demod = y && demod_sum;
    const long long n = blockIdx.y;
    const int c0 = PixelChannelSplit::chunk_first(channels), c1 = PixelChannelSplit::chunk_last(channels);
    if (grad_bias || demod) {
        for (int c = threadIdx.x; c < channels; c += blockDim.x) {
            if (grad_bias) bias_part[c] = 0.0f;
            if (demod) demod_part[c] = 0.0f;
        }
        __syncthreads();
    }
    const long long base = n * channels * spatial;
    float a[kPixelsPerLane] = {};
#pragma unroll 2
    for (int c = c0 + split.group; c < c1; c += groups) {
        float b = 0.0f, dy = 0.0f;
#pragma unroll
        for (int i = 0; i < kPixelsPerLane; ++i) {
            const long long px = split.pixel(i);
            if (px >= spatial) continue;
            const long long idx = base + c * spatial + px;
            const float v = bias_act_grad(out[idx], g[idx], p);
            g_pre[idx] = v;
            a[i] += v;
            b += v;
            if (demod) dy = fmaf(v, y[idx], dy);
        }
        if (grad_bias) {
            b = warp_sum(b);
            if (threadIdx.x % 32 == 0) atomicAdd(&bias_part[c], b);
        }
        if (demod) {
            dy = warp_sum(dy);
            if (threadIdx.x % 32 == 0) atomicAdd(&demod_part[c], dy);
        }
    }
    if (grad_bias || demod) {
        __syncthreads();
        for (int c = c0 + static_cast<int>(threadIdx.x); c < c1; c += blockDim.x) {
            if (grad_bias) atomicAdd(&grad_bias[c], bias_part[c]);
            if (demod) atomicAdd(&demod_sum[n * channels + c], demod_part[c]);
        }
    }
    if (!noise) return;
#pragma unroll
    for (int i = 0; i < kPixelsPerLane; ++i) chan_sum[split.group * split.tile + split.slot_of(i)] = a[i];
    __syncthreads();
    float part = 0.0f;
    if (split.group == 0)
#pragma unroll
        for (int i = 0; i < kPixelsPerLane; ++i) {
            const long long px = split.pixel(i);
            float t = a[i];
            for (int k = 1; k < groups; ++k) t += chan_sum[k * split.tile + split.slot_of(i)];
            if (px >= spatial) continue;
            if (grad_noise && gridDim.z == 1) grad_noise[n * spatial + px] = t * *strength;
            else if (grad_noise) atomicAdd(&grad_noise[n * spatial + px], t * *strength);
            part += t * noise[(per_sample ? n * spatial : 0) + px];
        }
    if (grad_strength) {
        part = block_sum(part);
        if (threadIdx.x == 0) atomicAdd(grad_strength, part);
    }
}

}  // namespace ganinv::cuda::kernels
