/// @file encoder_kernels.cuh
/// @brief The pSp/e4e encoder's element-wise and reduction kernels on the GPU (PspEncoderCuda,
///        models/psp_encoder_cuda.cuh): bias add and bias gradient, group norm forward (with its
///        per-group statistics) and backward, PReLU forward and backward, nearest 2x
///        up-sampling forward and backward (both adding into their output), average pooling to
///        the head grid and global average pooling, the codes assembly (base or w_avg + own head
///        + e4e's shared w) and its reverse (each head's output gradient, with the e4e offset-norm
///        term), and an element-wise add. Same semantics as the `nn::` CPU functions they mirror.
///
/// Per-channel parameter gradients (bias, gamma, beta, PReLU slopes) are reduced in two steps,
/// never with atomics: one warp per (sample, channel) plane writes that plane's sum in double
/// to a scratch vector, then one thread per channel adds the batch's sums in a fixed order. So
/// a gradient is the same bits on every run, and it is summed in double like the CPU's. The
/// caller passes the scratch (2 * batch * channels doubles; a float DeviceTensor of twice that
/// many values reinterpreted, the pool's blocks are 256-byte aligned).
///
/// Group-norm statistics are two-pass in float (mean, then the mean squared deviation): one
/// pass of E[x^2] - E[x]^2 cancels badly when the mean is large against the spread.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/cuda/check.hpp"
#include "ganinv/cuda/launch.cuh"
#include "ganinv/nn/group_norm.hpp"

#include <cuda_runtime.h>

#include <algorithm>

namespace ganinv::cuda::enc {

namespace kernels {

/// Loop of one warp over items (planes, rows): every lane of a warp sees the same item, so a
/// warp_sum inside the loop is safe.
#define GANINV_WARP_STRIDE(item, count)                                                                      \
    for (long long item = (blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x) / 32; item < (count); \
         item += static_cast<long long>(gridDim.x) * blockDim.x / 32)

template <class T = float>
__global__ void add(T* y, const T* x, long long n) {
    GANINV_GRID_STRIDE(i, n) y[i] += x[i];
}

/// y[n, c, i] += b[c] on [batch, channels, spatial].
template <class T = float>
__global__ void add_bias(T* y, long long n, long long channels, long long spatial, const T* b) {
    GANINV_GRID_STRIDE(i, n) y[i] += b[(i / spatial) % channels];
}

/// part[p] = sum of plane p (double).
template <class T = float>
__global__ void plane_sums(const T* x, long long planes, long long spatial, double* part) {
    const int lane = static_cast<int>(threadIdx.x % 32);
    GANINV_WARP_STRIDE(p, planes) {
        const T* xp = x + p * spatial;
        double a = 0.0;
        for (long long i = lane; i < spatial; i += 32) a += static_cast<double>(xp[i]);
        a = warp_sum(a);
        if (lane == 0) part[p] = a;
    }
}

/// out[c] += scale * sum_n part[n, c], n ascending (one thread per channel: a fixed order).
template <class T = float>
__global__ void channel_sum_add(const double* part, long long batch, long long channels, double scale, T* out) {
    GANINV_GRID_STRIDE(c, channels) {
        double a = 0.0;
        for (long long n = 0; n < batch; ++n) a += part[n * channels + c];
        out[c] += static_cast<T>(a * scale);
    }
}

/// One block per (sample, group), the group's cpg * spatial values contiguous.
template <class T = float>
__global__ void group_norm_forward(const T* x, const T* gamma, const T* beta, long long groups_total, int groups,
                                   long long cpg, long long spatial, float eps, T* y, T* mean_out, T* rstd_out) {
    __shared__ float bcast;
    const long long m = cpg * spatial;
    for (long long g = blockIdx.x; g < groups_total; g += gridDim.x) {
        const T* xg = x + g * m;
        float s = 0.0f;
        for (long long i = threadIdx.x; i < m; i += blockDim.x) s += xg[i];
        s = block_sum(s);
        if (threadIdx.x == 0) bcast = s / static_cast<float>(m);
        __syncthreads();
        const float mean = bcast;
        float q = 0.0f;
        for (long long i = threadIdx.x; i < m; i += blockDim.x) {
            const float d = xg[i] - mean;
            q += d * d;
        }
        q = block_sum(q);  // its first __syncthreads: every thread has read `bcast` (the mean)
        if (threadIdx.x == 0) {
            bcast = 1.0f / sqrtf(q / static_cast<float>(m) + eps);
            mean_out[g] = mean;
            rstd_out[g] = bcast;
        }
        __syncthreads();
        const float rstd = bcast;
        const long long c0 = (g % groups) * cpg;
        T* yg = y + g * m;
        for (long long i = threadIdx.x; i < m; i += blockDim.x) {
            const long long c = c0 + i / spatial;
            yg[i] = ((xg[i] - mean) * rstd) * (gamma ? gamma[c] : 1.0f) + (beta ? beta[c] : 0.0f);
        }
        __syncthreads();  // `bcast` is rewritten by the next group
    }
}

/// Per (sample, channel) plane: pg = sum dy * xhat, pb = sum dy (double).
template <class T = float>
__global__ void group_norm_backward_partials(const T* x, const T* gy, const T* mean, const T* rstd, long long planes,
                                             long long channels, long long cpg, long long spatial, double* pg,
                                             double* pb) {
    const int lane = static_cast<int>(threadIdx.x % 32);
    GANINV_WARP_STRIDE(p, planes) {
        const long long g = (p / channels) * (channels / cpg) + (p % channels) / cpg;
        const double mu = mean[g], rs = rstd[g];
        const T* xp = x + p * spatial;
        const T* gp = gy + p * spatial;
        double a = 0.0, b = 0.0;
        for (long long i = lane; i < spatial; i += 32) {
            const double d = gp[i];
            a += d * ((xp[i] - mu) * rs);
            b += d;
        }
        a = warp_sum(a);
        b = warp_sum(b);
        if (lane == 0) {
            pg[p] = a;
            pb[p] = b;
        }
    }
}

/// dx = rstd * (dy * gamma - mean(dy * gamma) - xhat * mean(dy * gamma * xhat)), one block per
/// (sample, group); the two group means come from the planes' partial sums.
template <class T = float>
__global__ void group_norm_backward_input(const T* x, const T* gamma, const T* mean, const T* rstd, const T* gy,
                                          const double* pg, const double* pb, long long groups_total, int groups,
                                          long long cpg, long long spatial, T* gx) {
    __shared__ double md_s, mdx_s;
    const long long m = cpg * spatial, channels = groups * cpg;
    for (long long g = blockIdx.x; g < groups_total; g += gridDim.x) {
        const long long n = g / groups, c0 = (g % groups) * cpg;
        if (threadIdx.x == 0) {
            double sd = 0.0, sdx = 0.0;
            for (long long c = 0; c < cpg; ++c) {
                const double ga = gamma ? gamma[c0 + c] : 1.0;
                sd += ga * pb[n * channels + c0 + c];
                sdx += ga * pg[n * channels + c0 + c];
            }
            md_s = sd / static_cast<double>(m);
            mdx_s = sdx / static_cast<double>(m);
        }
        __syncthreads();
        const double md = md_s, mdx = mdx_s, mu = mean[g], rs = rstd[g];
        const T* xg = x + g * m;
        const T* gg = gy + g * m;
        T* og = gx + g * m;
        for (long long i = threadIdx.x; i < m; i += blockDim.x) {
            const double ga = gamma ? gamma[c0 + i / spatial] : 1.0;
            const double xhat = (xg[i] - mu) * rs;
            og[i] = static_cast<T>(rs * (gg[i] * ga - md - xhat * mdx));
        }
        __syncthreads();  // md_s / mdx_s are rewritten by the next group
    }
}

/// y = x > 0 ? x : alpha[c] * x.
template <class T = float>
__global__ void prelu_forward(const T* x, const T* alpha, long long n, long long channels, long long spatial, T* y) {
    GANINV_GRID_STRIDE(i, n) {
        const T v = x[i];
        y[i] = v > 0.0f ? v : alpha[(i / spatial) % channels] * v;
    }
}

/// gx = x > 0 ? gy : alpha[c] * gy; part[p] = sum over the plane's x <= 0 of gy * x (double).
template <class T = float>
__global__ void prelu_backward(const T* x, const T* alpha, const T* gy, long long planes, long long channels,
                               long long spatial, T* gx, double* part) {
    const int lane = static_cast<int>(threadIdx.x % 32);
    GANINV_WARP_STRIDE(p, planes) {
        const T a = alpha[p % channels];
        const long long base = p * spatial;
        double s = 0.0;
        for (long long i = lane; i < spatial; i += 32) {
            const T v = x[base + i], g = gy[base + i];
            const bool pos = v > 0.0f;
            if (!pos) s += static_cast<double>(g) * v;
            gx[base + i] = pos ? g : a * g;
        }
        if (part) {
            s = warp_sum(s);
            if (lane == 0) part[p] = s;
        }
    }
}

/// y[p, i, j] += x[p, i / 2, j / 2]; y is [planes, 2h, 2w].
template <class T = float>
__global__ void upsample2x_add(const T* x, long long planes, long long h, long long w, T* y) {
    const long long W2 = 2 * w, H2 = 2 * h;
    GANINV_GRID_STRIDE(i, planes * H2 * W2) {
        const long long j = i % W2, r = i / W2, row = r % H2, p = r / H2;
        y[i] += x[(p * h + row / 2) * w + j / 2];
    }
}

/// gx[p, i, j] += the 2x2 block of gy it was copied to (summed first, as the CPU does).
template <class T = float>
__global__ void upsample2x_backward_add(const T* gy, long long planes, long long h, long long w, T* gx) {
    const long long W2 = 2 * w;
    GANINV_GRID_STRIDE(i, planes * h * w) {
        const long long j = i % w, r = i / w, row = r % h, p = r / h;
        const T* g = gy + (p * 2 * h + 2 * row) * W2 + 2 * j;
        const T s = g[0] + g[1] + g[W2] + g[W2 + 1];
        gx[i] += s;
    }
}

/// Non-overlapping k x k windows (stride k, h and w multiples of k): y = window sum / k^2,
/// summed row by row as nn::avg_pool2d_forward does.
template <class T = float>
__global__ void avg_pool(const T* x, long long planes, long long h, long long w, long long k, T* y) {
    const long long oh = h / k, ow = w / k;
    const float inv = 1.0f / static_cast<float>(k * k);
    GANINV_GRID_STRIDE(i, planes * oh * ow) {
        const long long ox = i % ow, r = i / ow, oy = r % oh, p = r / oh;
        const T* xp = x + (p * h + oy * k) * w + ox * k;
        float acc = 0.0f;
        for (long long ky = 0; ky < k; ++ky)
            for (long long kx = 0; kx < k; ++kx) acc += xp[ky * w + kx];
        y[i] = acc * inv;
    }
}

/// gx (overwritten) = the gradient of the input's window / k^2.
template <class T = float>
__global__ void avg_pool_backward(const T* gy, long long planes, long long h, long long w, long long k, T* gx) {
    const long long oh = h / k, ow = w / k;
    const float inv = 1.0f / static_cast<float>(k * k);
    GANINV_GRID_STRIDE(i, planes * h * w) {
        const long long ix = i % w, r = i / w, iy = r % h, p = r / h;
        gx[i] = gy[(p * oh + iy / k) * ow + ix / k] * inv;
    }
}

/// y[p] = mean of plane p, summed in double (nn::global_avg_pool_forward).
template <class T = float>
__global__ void global_avg_pool(const T* x, long long planes, long long spatial, T* y) {
    const int lane = static_cast<int>(threadIdx.x % 32);
    GANINV_WARP_STRIDE(p, planes) {
        const T* xp = x + p * spatial;
        double a = 0.0;
        for (long long i = lane; i < spatial; i += 32) a += static_cast<double>(xp[i]);
        a = warp_sum(a);
        if (lane == 0) y[p] = static_cast<T>(a / static_cast<double>(spatial));
    }
}

template <class T = float>
__global__ void global_avg_pool_backward(const T* gy, long long planes, long long spatial, T* gx) {
    const float inv = 1.0f / static_cast<float>(spatial);
    GANINV_GRID_STRIDE(i, planes * spatial) gx[i] = gy[i / spatial] * inv;
}

/// codes[n, i, d] = (base[n, i, d] or w_avg[d]) + delta_i[n, d] (if head i is active)
///                  + delta_0[n, d] (e4e, i > 0); delta is [num_ws, batch, dim].
template <class T = float>
__global__ void assemble_codes(const T* base, const T* w_avg, const T* delta, long long batch, long long num_ws,
                               long long dim, bool e4e, long long active, T* codes) {
    GANINV_GRID_STRIDE(at, batch * num_ws * dim) {
        const long long d = at % dim, r = at / dim, i = r % num_ws, n = r / num_ws, nd = n * dim + d;
        const bool own = !e4e || i <= active;
        T v = base ? base[at] : w_avg[d];
        v = v + (own ? delta[i * batch * dim + nd] : 0.0f);
        v = v + (e4e && i > 0 ? delta[nd] : 0.0f);
        codes[at] = v;
    }
}

/// norms[(i - 1) * batch + n] = ||delta_i[n]||_2 (double) for the e4e offsets i = 1 .. rows / batch.
template <class T = float>
__global__ void offset_norms(const T* delta, long long batch, long long dim, long long rows, double* norms) {
    const int lane = static_cast<int>(threadIdx.x % 32);
    GANINV_WARP_STRIDE(r, rows) {
        const T* v = delta + (batch + r) * dim;  // row r is head 1 + r / batch, sample r % batch
        double s = 0.0;
        for (long long d = lane; d < dim; d += 32) s += static_cast<double>(v[d]) * v[d];
        s = warp_sum(s);
        if (lane == 0) norms[r] = sqrt(s);
    }
}

/// gd[i, n, d] for the first `heads` heads: the codes' gradient over the layers head i reaches
/// (e4e's w, head 0: all of them; otherwise its own), in ascending layer order, plus for an e4e
/// offset offset_weight / (batch * ||delta||) * delta (0 where the norm is 0).
template <class T = float>
__global__ void head_grads(const T* gc, const T* delta, const double* norms, long long batch, long long num_ws,
                           long long dim, bool e4e, long long heads, double offset_weight, T* gd) {
    GANINV_GRID_STRIDE(idx, heads * batch * dim) {
        const long long d = idx % dim, r = idx / dim, n = r % batch, i = r / batch;
        const long long from = e4e && i == 0 ? 0 : i, to = e4e && i == 0 ? num_ws : i + 1;
        T a = 0.0f;
        for (long long j = from; j < to; ++j) a += gc[(n * num_ws + j) * dim + d];
        if (e4e && i > 0 && offset_weight != 0.0) {
            const double norm = norms[(i - 1) * batch + n];
            if (norm != 0.0) a += static_cast<T>(offset_weight / (static_cast<double>(batch) * norm) * delta[idx]);
        }
        gd[idx] = a;
    }
}

#undef GANINV_WARP_STRIDE

}  // namespace kernels

namespace detail {
inline long long ll(Index v) { return static_cast<long long>(v); }
/// Blocks for a one-block-per-item kernel (the kernel loops over the rest).
inline unsigned item_blocks(Index items) { return static_cast<unsigned>(std::clamp<Index>(items, 1, Index{1} << 20)); }
}  // namespace detail

inline void add(float* y, const float* x, Index n, cudaStream_t s) {
    launch_1d(kernels::add<float>, n, s, y, x, detail::ll(n));
}
inline void add_bias(float* y, Index batch, Index channels, Index spatial, const float* b, cudaStream_t s) {
    const Index n = batch * channels * spatial;
    launch_1d(kernels::add_bias<float>, n, s, y, detail::ll(n), detail::ll(channels), detail::ll(spatial), b);
}
/// grad_b[c] += sum over the batch and the plane of gy; scratch: batch * channels doubles.
inline void bias_grad(const float* gy, Index batch, Index channels, Index spatial, double* scratch, float* grad_b,
                      cudaStream_t s) {
    launch_1d(kernels::plane_sums<float>, batch * channels * 32, s, gy, detail::ll(batch * channels),
              detail::ll(spatial), scratch);
    launch_1d(kernels::channel_sum_add<float>, channels, s, static_cast<const double*>(scratch), detail::ll(batch),
              detail::ll(channels), 1.0, grad_b);
}

/// y and the per-(sample, group) mean and 1/sqrt(var + eps) ([batch * groups] each); gamma and
/// beta may be null (no affine).
inline void group_norm_forward(const float* x, const float* gamma, const float* beta, const nn::GroupNormShape& sh,
                               float* y, float* mean, float* rstd, cudaStream_t s) {
    sh.validate();
    const Index ng = sh.batch * sh.groups;
    kernels::group_norm_forward<float><<<detail::item_blocks(ng), kBlock, 0, s>>>(
        x, gamma, beta, detail::ll(ng), static_cast<int>(sh.groups), detail::ll(sh.channels / sh.groups),
        detail::ll(sh.spatial), sh.eps, y, mean, rstd);
    GANINV_CUDA_CHECK_LAUNCH();
}

/// gx (overwritten) from the forward's x, mean, rstd and dL/dy; grad_gamma and grad_beta
/// accumulate (both null: no parameter gradients). scratch: 2 * batch * channels doubles.
inline void group_norm_backward(const float* x, const float* gamma, const float* mean, const float* rstd,
                                const float* gy, const nn::GroupNormShape& sh, float* gx, float* grad_gamma,
                                float* grad_beta, double* scratch, cudaStream_t s) {
    sh.validate();
    const Index planes = sh.batch * sh.channels, ng = sh.batch * sh.groups, cpg = sh.channels / sh.groups;
    double* pg = scratch;
    double* pb = scratch + planes;
    launch_1d(kernels::group_norm_backward_partials<float>, planes * 32, s, x, gy, mean, rstd, detail::ll(planes),
              detail::ll(sh.channels), detail::ll(cpg), detail::ll(sh.spatial), pg, pb);
    kernels::group_norm_backward_input<float><<<detail::item_blocks(ng), kBlock, 0, s>>>(
        x, gamma, mean, rstd, gy, pg, pb, detail::ll(ng), static_cast<int>(sh.groups), detail::ll(cpg),
        detail::ll(sh.spatial), gx);
    GANINV_CUDA_CHECK_LAUNCH();
    if (grad_gamma)
        launch_1d(kernels::channel_sum_add<float>, sh.channels, s, static_cast<const double*>(pg), detail::ll(sh.batch),
                  detail::ll(sh.channels), 1.0, grad_gamma);
    if (grad_beta)
        launch_1d(kernels::channel_sum_add<float>, sh.channels, s, static_cast<const double*>(pb), detail::ll(sh.batch),
                  detail::ll(sh.channels), 1.0, grad_beta);
}

inline void prelu_forward(const float* x, const float* alpha, Index batch, Index channels, Index spatial, float* y,
                          cudaStream_t s) {
    const Index n = batch * channels * spatial;
    launch_1d(kernels::prelu_forward<float>, n, s, x, alpha, detail::ll(n), detail::ll(channels), detail::ll(spatial), y);
}
/// gx overwritten; grad_alpha accumulates (may be null). scratch: batch * channels doubles
/// (unused when grad_alpha is null).
inline void prelu_backward(const float* x, const float* alpha, const float* gy, Index batch, Index channels,
                           Index spatial, float* gx, float* grad_alpha, double* scratch, cudaStream_t s) {
    const Index planes = batch * channels;
    launch_1d(kernels::prelu_backward<float>, planes * 32, s, x, alpha, gy, detail::ll(planes), detail::ll(channels),
              detail::ll(spatial), gx, grad_alpha ? scratch : nullptr);
    if (grad_alpha)
        launch_1d(kernels::channel_sum_add<float>, channels, s, static_cast<const double*>(scratch), detail::ll(batch),
                  detail::ll(channels), 1.0, grad_alpha);
}

/// y [planes, 2h, 2w] += nearest 2x up-sampling of x [planes, h, w].
inline void upsample2x_add(const float* x, Index planes, Index h, Index w, float* y, cudaStream_t s) {
    launch_1d(kernels::upsample2x_add<float>, planes * 4 * h * w, s, x, detail::ll(planes), detail::ll(h),
              detail::ll(w), y);
}
/// gx [planes, h, w] += the adjoint of the up-sampling applied to gy [planes, 2h, 2w].
inline void upsample2x_backward_add(const float* gy, Index planes, Index h, Index w, float* gx, cudaStream_t s) {
    launch_1d(kernels::upsample2x_backward_add<float>, planes * h * w, s, gy, detail::ll(planes), detail::ll(h),
              detail::ll(w), gx);
}

/// k x k average pooling with stride k; h and w must be multiples of k (every input in one window).
inline void avg_pool_forward(const float* x, Index planes, Index h, Index w, Index k, float* y, cudaStream_t s) {
    GANINV_CHECK(k >= 1 && h % k == 0 && w % k == 0, ShapeError, "enc::avg_pool: a ", h, "x", w,
                 " plane does not split into ", k, "x", k, " windows");
    launch_1d(kernels::avg_pool<float>, planes * (h / k) * (w / k), s, x, detail::ll(planes), detail::ll(h),
              detail::ll(w), detail::ll(k), y);
}
inline void avg_pool_backward(const float* gy, Index planes, Index h, Index w, Index k, float* gx, cudaStream_t s) {
    GANINV_CHECK(k >= 1 && h % k == 0 && w % k == 0, ShapeError, "enc::avg_pool_backward: a ", h, "x", w,
                 " plane does not split into ", k, "x", k, " windows");
    launch_1d(kernels::avg_pool_backward<float>, planes * h * w, s, gy, detail::ll(planes), detail::ll(h), detail::ll(w),
              detail::ll(k), gx);
}
inline void global_avg_pool_forward(const float* x, Index planes, Index spatial, float* y, cudaStream_t s) {
    launch_1d(kernels::global_avg_pool<float>, planes * 32, s, x, detail::ll(planes), detail::ll(spatial), y);
}
inline void global_avg_pool_backward(const float* gy, Index planes, Index spatial, float* gx, cudaStream_t s) {
    launch_1d(kernels::global_avg_pool_backward<float>, planes * spatial, s, gy, detail::ll(planes),
              detail::ll(spatial), gx);
}

/// codes [batch, num_ws, dim] from the heads' outputs delta [num_ws, batch, dim] (base may be
/// null: w_avg on every layer). e4e: head 0 is the shared w, heads 1 .. active the offsets.
inline void assemble_codes(const float* base, const float* w_avg, const float* delta, Index batch, Index num_ws,
                           Index dim, bool e4e, Index active, float* codes, cudaStream_t s) {
    launch_1d(kernels::assemble_codes<float>, batch * num_ws * dim, s, base, w_avg, delta, detail::ll(batch),
              detail::ll(num_ws), detail::ll(dim), e4e, detail::ll(active), codes);
}
/// norms [active * batch] (double) of the e4e offsets 1 .. active.
inline void offset_norms(const float* delta, Index batch, Index dim, Index active, double* norms, cudaStream_t s) {
    launch_1d(kernels::offset_norms<float>, active * batch * 32, s, delta, detail::ll(batch), detail::ll(dim),
              detail::ll(active * batch), norms);
}
/// gd [heads, batch, dim] (overwritten): the reverse of assemble_codes for the first `heads`
/// heads, plus the gradient of offset_weight * the batch mean of the offsets' norms (norms may
/// be null when offset_weight is 0 or there is no offset).
inline void head_grads(const float* grad_codes, const float* delta, const double* norms, Index batch, Index num_ws,
                       Index dim, bool e4e, Index heads, double offset_weight, float* gd, cudaStream_t s) {
    GANINV_CHECK(norms || !e4e || heads <= 1 || offset_weight == 0.0, ValueError,
                 "enc::head_grads: the e4e offset penalty needs the offsets' norms");
    launch_1d(kernels::head_grads<float>, heads * batch * dim, s, grad_codes, delta, norms, detail::ll(batch),
              detail::ll(num_ws), detail::ll(dim), e4e, detail::ll(heads), offset_weight, gd);
}

}  // namespace ganinv::cuda::enc
