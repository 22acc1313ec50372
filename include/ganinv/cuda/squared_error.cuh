/// @file squared_error.cuh
/// @brief The mean squared error of two float arrays with its gradient, on the device: the
///        encoder trainer's code and pixel terms (invert/encoder_trainer_cuda.cuh). The value is
///        summed in double in a fixed order (per-block partials, then one sequential pass), so it
///        is deterministic and matches the CPU trainer's double sum to rounding; the gradient is
///        the CPU's expression, float(coef * d / n) with d = double(a) - double(b).
#pragma once

#include "ganinv/core/tensor.hpp"
#include "ganinv/cuda/check.hpp"
#include "ganinv/cuda/launch.cuh"

#include <algorithm>

namespace ganinv::cuda {

/// Blocks (and double partial sums) of one mean_squared_error: the scratch it needs.
inline constexpr Index kSquaredErrorParts = 128;

namespace kernels {

/// partials[block] = sum of (a - b)^2 over the block's grid-stride elements; grad (may be null)
/// gets coef * (a - b) / n.
template <int = 0>  // a template: defined once however many TUs include this
__global__ void squared_error_partials(const float* a, const float* b, long long n, double coef, float* grad,
                                       double* partials) {
    double acc = 0;
    GANINV_GRID_STRIDE(i, n) {
        const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
        acc += d * d;
        if (grad) grad[i] = static_cast<float>(coef * d / static_cast<double>(n));
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

/// *out = (partials[0] + ... + partials[parts - 1]) / n, in that order (one thread).
template <int = 0>  // a template: defined once however many TUs include this
__global__ void squared_error_finish(const double* partials, int parts, long long n, double* out) {
    if (threadIdx.x != 0 || blockIdx.x != 0) return;
    double sum = 0;
    for (int i = 0; i < parts; ++i) sum += partials[i];
    *out = sum / static_cast<double>(n);
}

}  // namespace kernels

/// *out = mean over i < n of (a[i] - b[i])^2 (double, in device memory); with `grad` (may be
/// null), grad[i] = float(coef * (a[i] - b[i]) / n): coef = 2 w gives the gradient of w * the
/// mean. `partials` holds kSquaredErrorParts doubles of scratch. Nothing waits for the stream.
inline void mean_squared_error(const float* a, const float* b, Index n, double coef, float* grad, double* partials,
                               double* out, cudaStream_t stream) {
    GANINV_CHECK(n > 0, ShapeError, "mean_squared_error: no elements");
    const unsigned blocks = blocks_for(n, kSquaredErrorParts);
    kernels::squared_error_partials<><<<blocks, kBlock, 0, stream>>>(a, b, static_cast<long long>(n), coef, grad, partials);
    GANINV_CUDA_CHECK_LAUNCH();
    kernels::squared_error_finish<><<<1, 32, 0, stream>>>(partials, static_cast<int>(blocks), static_cast<long long>(n), out);
    GANINV_CUDA_CHECK_LAUNCH();
}

}  // namespace ganinv::cuda
