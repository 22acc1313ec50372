/// @file heads_cuda.cuh
/// @brief The heads of the CUDA network losses and their bookkeeping: LPIPS' channel
///        normalisation and per-layer distance + gradient (the per-position math of
///        loss/detail/lpips_math.hpp, shared with the CPU), the per-layer mean squared error of
///        VggPerceptual, deterministic per-image sums, and `DeviceTargetCache`, detail::TargetCache
///        keyed by a device tensor.
///
/// Per-image sums: block (chunk, n) reduces its share of image n in double in a fixed order
/// into partial[n * chunks + chunk]; a second kernel adds scale * (sum of the partials, in
/// order) to the image's accumulator. No atomics: the same inputs give the same bits.
#pragma once

#include "ganinv/cuda/device_buffer.hpp"
#include "ganinv/cuda/network_ops.cuh"
#include "ganinv/cuda/optim_kernels.cuh"
#include "ganinv/loss/detail/common.hpp"
#include "ganinv/loss/detail/lpips_math.hpp"

#include <algorithm>
#include <memory>
#include <vector>

namespace ganinv::cuda {

namespace kernels {

/// Sum over a block of kBlock threads in a fixed order; valid in thread 0.
__device__ __forceinline__ double block_sum_fixed(double v) {
    __shared__ double part[kBlock / 32];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) part[warp] = v;
    __syncthreads();
    double s = 0.0;
    if (threadIdx.x == 0)
        for (int w = 0; w < kBlock / 32; ++w) s += part[w];
    return s;
}

template <int = 0>  // a template: defined once however many TUs of a binary include this
__global__ void lpips_normalize(float* f, long long C, long long P, long long total) {
    GANINV_GRID_STRIDE(i, total) ganinv::detail::lpips_normalize_position(f + (i / P) * C * P + i % P, C, P);
}

/// grid (chunks, N): positions of image n; grad (nullable) = the layer's gradient w.r.t. f.
template <int = 0>  // a template: defined once however many TUs of a binary include this
__global__ void lpips_head(const float* f, const float* t, const float* w, long long C, long long P, float* grad,
                           double* partial) {
    const long long n = blockIdx.y, chunks = gridDim.x;
    double acc = 0.0;
    for (long long p = blockIdx.x * static_cast<long long>(kBlock) + threadIdx.x; p < P; p += chunks * kBlock) {
        const long long off = n * C * P + p;
        acc += ganinv::detail::lpips_position(f + off, t + off, w, C, P, grad ? grad + off : nullptr,
                                              static_cast<double>(P));
    }
    acc = block_sum_fixed(acc);
    if (threadIdx.x == 0) partial[n * chunks + blockIdx.x] = acc;
}

/// grid (chunks, N) over the m values of image n: sum of (a - b)^2; grad = 2 k (a - b).
template <int = 0>  // a template: defined once however many TUs of a binary include this
__global__ void mse_head(const float* a, const float* b, long long m, double k, float* grad, double* partial) {
    const long long n = blockIdx.y, chunks = gridDim.x;
    double acc = 0.0;
    for (long long i = blockIdx.x * static_cast<long long>(kBlock) + threadIdx.x; i < m; i += chunks * kBlock) {
        const double d = static_cast<double>(a[n * m + i]) - b[n * m + i];
        acc += d * d;
        if (grad) grad[n * m + i] = static_cast<float>(2.0 * k * d);
    }
    acc = block_sum_fixed(acc);
    if (threadIdx.x == 0) partial[n * chunks + blockIdx.x] = acc;
}

/// grid batch: block n adds image n's chunk sums (strided over its threads, then the fixed-order
/// block sum). One thread per image walking up to 512 chunks took ~40 us a head.
template <int = 0>  // a template: defined once however many TUs of a binary include this
__global__ void per_image_finish(const double* partial, long long chunks, double scale, double* acc) {
    const long long n = blockIdx.x;
    double s = 0.0;
    for (long long c = threadIdx.x; c < chunks; c += kBlock) s += partial[n * chunks + c];
    s = block_sum_fixed(s);
    if (threadIdx.x == 0) acc[n] += scale * s;
}

template <int = 0>  // a template: defined once however many TUs of a binary include this
__global__ void bits_differ(const float* a, const float* b, long long n, unsigned* flag) {
    GANINV_GRID_STRIDE(i, n) if (__float_as_uint(a[i]) != __float_as_uint(b[i])) atomicOr(flag, 1u);
}

}  // namespace kernels

/// Per-image accumulators in double on the device, summed over any number of heads.
class PerImageSums {
public:
    PerImageSums(std::shared_ptr<MemoryPool> pool, Index batch) : pool_(std::move(pool)), batch_(batch), acc_(pool_, static_cast<std::size_t>(batch)) {
        GANINV_CUDA_CHECK(cudaMemsetAsync(acc_.data(), 0, sizeof(double) * acc_.size(), pool_->stream()));
    }

    /// Blocks per image for `work` items per image: enough blocks in all to fill the device.
    Index chunks(Index work) const {
        const Index per_image = std::max<Index>(1, 512 / batch_);
        return std::clamp<Index>((work + kBlock - 1) / kBlock, 1, per_image);
    }
    /// LPIPS layer: acc[n] += mean over positions of the weighted distance; grad (nullable).
    void lpips(const DeviceTensor& f, const DeviceTensor& t, const float* w, float* grad) {
        const Index C = f.dim(1), P = f.dim(2) * f.dim(3), k = chunks(P);
        PoolArray<double> partial(pool_, static_cast<std::size_t>(batch_ * k));
        kernels::lpips_head<><<<dim3(static_cast<unsigned>(k), static_cast<unsigned>(batch_)), kBlock, 0, pool_->stream()>>>(
            f.data(), t.data(), w, C, P, grad, partial.data());
        GANINV_CUDA_CHECK_LAUNCH();
        finish(partial, k, 1.0 / static_cast<double>(P));
    }
    /// acc[n] += weight * mean((a - b)^2) over image n; grad (nullable) = its gradient w.r.t. a.
    void mse(const DeviceTensor& a, const DeviceTensor& b, double weight, float* grad) {
        const Index m = a.numel() / batch_, k = chunks(m);
        const double scale = weight / static_cast<double>(m);
        PoolArray<double> partial(pool_, static_cast<std::size_t>(batch_ * k));
        kernels::mse_head<><<<dim3(static_cast<unsigned>(k), static_cast<unsigned>(batch_)), kBlock, 0, pool_->stream()>>>(
            a.data(), b.data(), m, scale, grad, partial.data());
        GANINV_CUDA_CHECK_LAUNCH();
        finish(partial, k, scale);
    }
    /// Waits for the stream; the per-image values.
    std::vector<double> download() const { return acc_.download(); }
    /// values[n] += weight * the value of image n, on the stream (nothing comes back).
    void accumulate_into(float* values, float weight = 1.0f) const {
        launch_1d(kernels::accumulate_values<>, batch_, pool_->stream(), acc_.data(), static_cast<long long>(batch_),
                  weight, values);
    }

private:
    void finish(const PoolArray<double>& partial, Index chunks, double scale) {
        kernels::per_image_finish<><<<static_cast<unsigned>(batch_), kBlock, 0, pool_->stream()>>>(
            partial.data(), static_cast<long long>(chunks), scale, acc_.data());
        GANINV_CUDA_CHECK_LAUNCH();
    }
    std::shared_ptr<MemoryPool> pool_;
    Index batch_;
    PoolArray<double> acc_;
};

/// f [N, C, H, W] -> f / (||f||_channels + eps) per position, in place.
inline void lpips_normalize(DeviceTensor& f) {
    const Index C = f.dim(1), P = f.dim(2) * f.dim(3), total = f.dim(0) * P;
    launch_1d(kernels::lpips_normalize<>, total, f.stream(), f.data(), static_cast<long long>(C), static_cast<long long>(P),
              static_cast<long long>(total));
}

/// True when two device tensors of one shape hold the same bits: one kernel and a 4-byte
/// read-back, far cheaper than a network pass. The key test of detail::TargetCache for device
/// targets (found by argument-dependent lookup), correct whatever the caller does with the
/// target's memory since the key is the cache's own device copy.
inline bool same_bits(const DeviceTensor& key, const DeviceTensor& target) {
    PoolArray<unsigned> flag(target.pool(), 1);
    GANINV_CUDA_CHECK(cudaMemsetAsync(flag.data(), 0, sizeof(unsigned), target.stream()));
    launch_1d(kernels::bits_differ<>, target.numel(), target.stream(), key.data(), target.data(),
              static_cast<long long>(target.numel()), flag.data());
    return flag.download()[0] == 0;
}

/// The target cache of the Cuda losses: detail::TargetCache keyed by a device tensor.
template <class Value>
using DeviceTargetCache = ganinv::detail::TargetCache<Value, DeviceTensor>;

}  // namespace ganinv::cuda
