/// @file buffer_kernels.cuh
/// @brief Kernels of the buffer arithmetic the losses are written against (backend/cuda_buffer_ops.cuh
///        holds their launchers, `BufferOps<Cuda>`): pointwise-loss partial sums (plain and masked)
///        with a fixed-order finish, per-image scaling, masking, area down-sampling and RGB->gray with
///        their adjoints (the projector's noise regulariser: cuda/noise_reg_kernels.cuh).
///
/// The pointwise function is a template parameter (any trivially copyable functor with
/// `pointwise(double)` and `pointwise_grad(double)`): these kernels know no loss.
#pragma once

#include "ganinv/core/color.hpp"
#include "ganinv/cuda/launch.cuh"

// The non-template kernels below are `static`: this header reaches every .cu file that includes
// backend/cuda.cuh (through BufferOps<Cuda>), and a plain __global__ function defined in a header
// would be defined again in each of them (multiple definitions when one binary links several).
namespace ganinv {
namespace cuda::kernels {

/// grid (chunks, N): block (chunk, n) reduces its share of image n's m = C*HW values into
/// partial_acc[n * chunks + chunk] (and the selected count into partial_count). grad gets
/// f'(d) * grad_scale on selected values, 0 elsewhere.
template <class L>
__global__ void pixel_loss_partials(L loss, const float* pred, const float* target, const float* mask, long long mask_n,
                                    long long mask_c, long long C, long long HW, float grad_scale, float* grad,
                                    double* partial_acc, double* partial_count) {
    const long long n = blockIdx.y, m = C * HW, chunks = gridDim.x;
    const float* p = pred + n * m;
    const float* t = target + n * m;
    double acc = 0.0, count = 0.0;
    for (long long i = blockIdx.x * static_cast<long long>(kBlock) + threadIdx.x; i < m; i += chunks * kBlock) {
        bool on = true;
        if (mask) {
            const long long c = i / HW, j = i - c * HW;
            on = mask[((mask_n == 1 ? 0 : n) * mask_c + (mask_c == 1 ? 0 : c)) * HW + j] > 0.0f;
        }
        const double d = static_cast<double>(p[i]) - static_cast<double>(t[i]);
        if (on) {
            acc += loss.pointwise(d);
            count += 1.0;
        }
        if (grad) grad[n * m + i] = on ? static_cast<float>(loss.pointwise_grad(d) * grad_scale) : 0.0f;
    }
    acc = block_sum<double>(acc);
    count = block_sum<double>(count);
    if (threadIdx.x == 0) {
        partial_acc[n * chunks + blockIdx.x] = acc;
        partial_count[n * chunks + blockIdx.x] = count;
    }
}

/// per_image[n] = (sum of partials) * norm[n], norm = 1 / count (0 for an empty selection).
static __global__ void pixel_loss_finish(const double* partial_acc, const double* partial_count, long long batch,
                                  long long chunks, double* per_image, float* norm) {
    GANINV_GRID_STRIDE(n, batch) {
        double acc = 0.0, count = 0.0;
        for (long long k = 0; k < chunks; ++k) {
            acc += partial_acc[n * chunks + k];
            count += partial_count[n * chunks + k];
        }
        const double inv = count > 0.0 ? 1.0 / count : 0.0;
        per_image[n] = acc * inv;
        norm[n] = static_cast<float>(inv);
    }
}

static __global__ void scale_per_image(float* x, long long batch, long long m, const float* norm) {
    GANINV_GRID_STRIDE(i, batch * m) x[i] *= norm[i / m];
}

static __global__ void scale_all(float* x, long long n, float w) {
    GANINV_GRID_STRIDE(i, n) x[i] *= w;
}

static __global__ void apply_binary_mask(const float* x, const float* mask, long long N, long long C, long long HW,
                                  long long mask_n, long long mask_c, float* out) {
    GANINV_GRID_STRIDE(i, N * C * HW) {
        const long long j = i % HW, nc = i / HW, c = nc % C, n = nc / C;
        out[i] = mask[((mask_n == 1 ? 0 : n) * mask_c + (mask_c == 1 ? 0 : c)) * HW + j] > 0.0f ? x[i] : 0.0f;
    }
}

static __global__ void area_downsample(const float* x, long long planes, long long OH, long long OW, int k, float* y) {
    const float inv = 1.0f / static_cast<float>(k * k);
    const long long W = OW * k;
    GANINV_GRID_STRIDE(o, planes * OH * OW) {
        const long long j = o % OW, pi = o / OW, i = pi % OH, p = pi / OH;
        float acc = 0.0f;  // same order as the Cpu loop: rows a, then columns b
        for (int a = 0; a < k; ++a)
            for (int b = 0; b < k; ++b) acc += x[(p * OH * k + i * k + a) * W + j * k + b];
        y[o] = acc * inv;
    }
}

static __global__ void area_downsample_backward(const float* gy, long long planes, long long OH, long long OW, int k,
                                         float* gx) {
    const float inv = 1.0f / static_cast<float>(k * k);
    const long long H = OH * k, W = OW * k;
    GANINV_GRID_STRIDE(o, planes * H * W) {
        const long long x = o % W, py = o / W, y = py % H, p = py / H;
        gx[o] = gy[(p * OH + y / k) * OW + x / k] * inv;
    }
}

static __global__ void to_gray(const float* x, long long N, long long HW, float* y) {
    using W = ganinv::LumaWeights;
    GANINV_GRID_STRIDE(o, N * HW) {
        const long long n = o / HW, i = o - n * HW;
        y[o] = W::r * x[(n * 3) * HW + i] + W::g * x[(n * 3 + 1) * HW + i] + W::b * x[(n * 3 + 2) * HW + i];
    }
}

static __global__ void to_gray_backward(const float* gy, long long N, long long HW, float* gx) {
    using W = ganinv::LumaWeights;
    GANINV_GRID_STRIDE(o, N * HW) {
        const long long n = o / HW, i = o - n * HW;
        const float g = gy[o];
        gx[(n * 3) * HW + i] = W::r * g;
        gx[(n * 3 + 1) * HW + i] = W::g * g;
        gx[(n * 3 + 2) * HW + i] = W::b * g;
    }
}

}  // namespace cuda::kernels

}  // namespace ganinv
