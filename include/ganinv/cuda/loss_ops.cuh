/// @file loss_ops.cuh
/// @brief `BufferOps<Cuda>`: the buffer arithmetic of the losses on device tensors — pixel-loss
///        reductions (plain and masked), masking, area down-sampling and RGB->gray with their
///        adjoints, scale and add, the noise regulariser — with the members and semantics of `BufferOps<Cpu>`
///        (loss/detail/buffer_ops_cpu.hpp). Including it makes Mse/L1/Charbonnier<Cuda>,
///        Masked, Degraded, Weighted, Sum, WeightedLossSum and NoiseRegularizer over Cuda work.
///
/// Include from a .cu file. Work goes to the stream of the input tensor's memory pool (the
/// backend's stream). Per-image sums accumulate in double in a fixed order (partials per
/// block, then a sequential pass), so results are deterministic and match the Cpu loops to
/// float rounding.
#pragma once

#include "ganinv/cuda/backend.hpp"
#include "ganinv/cuda/launch.cuh"
#include "ganinv/loss/detail/buffer_ops_cpu.hpp"

#include <vector>

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
__global__ void pixel_loss_finish(const double* partial_acc, const double* partial_count, long long batch,
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

__global__ void scale_per_image(float* x, long long batch, long long m, const float* norm) {
    GANINV_GRID_STRIDE(i, batch * m) x[i] *= norm[i / m];
}

__global__ void scale_all(float* x, long long n, float w) {
    GANINV_GRID_STRIDE(i, n) x[i] *= w;
}

__global__ void apply_binary_mask(const float* x, const float* mask, long long N, long long C, long long HW,
                                  long long mask_n, long long mask_c, float* out) {
    GANINV_GRID_STRIDE(i, N * C * HW) {
        const long long j = i % HW, nc = i / HW, c = nc % C, n = nc / C;
        out[i] = mask[((mask_n == 1 ? 0 : n) * mask_c + (mask_c == 1 ? 0 : c)) * HW + j] > 0.0f ? x[i] : 0.0f;
    }
}

__global__ void area_downsample(const float* x, long long planes, long long OH, long long OW, int k, float* y) {
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

__global__ void area_downsample_backward(const float* gy, long long planes, long long OH, long long OW, int k,
                                         float* gx) {
    const float inv = 1.0f / static_cast<float>(k * k);
    const long long H = OH * k, W = OW * k;
    GANINV_GRID_STRIDE(o, planes * H * W) {
        const long long x = o % W, py = o / W, y = py % H, p = py / H;
        gx[o] = gy[(p * OH + y / k) * OW + x / k] * inv;
    }
}

__global__ void to_gray(const float* x, long long N, long long HW, float* y) {
    using W = ganinv::detail::LumaWeights;
    GANINV_GRID_STRIDE(o, N * HW) {
        const long long n = o / HW, i = o - n * HW;
        y[o] = W::r * x[(n * 3) * HW + i] + W::g * x[(n * 3 + 1) * HW + i] + W::b * x[(n * 3 + 2) * HW + i];
    }
}

__global__ void to_gray_backward(const float* gy, long long N, long long HW, float* gx) {
    using W = ganinv::detail::LumaWeights;
    GANINV_GRID_STRIDE(o, N * HW) {
        const long long n = o / HW, i = o - n * HW;
        const float g = gy[o];
        gx[(n * 3) * HW + i] = W::r * g;
        gx[(n * 3 + 1) * HW + i] = W::g * g;
        gx[(n * 3 + 2) * HW + i] = W::b * g;
    }
}

/// The pyramid of one noise map: level l is h[l] x w[l] at offset[l] of a plane's workspace.
struct NoiseRegLevels {
    static constexpr int kMax = 32;
    int count = 0;
    long long h[kMax], w[kMax], offset[kMax];
    long long total = 0;  ///< doubles per plane
};

/// One block per plane n: the projector's noise regulariser (levels in double, as the CPU),
/// value into value[n], gradient (nullable) into grad. ws/gws: count * total doubles each.
__global__ void noise_reg_planes(const float* maps, NoiseRegLevels L, double* ws, double* gws, float* grad,
                                 double* value) {
    const long long n = blockIdx.x, H = L.h[0], W = L.w[0];
    double* a = ws + n * L.total;
    for (long long i = threadIdx.x; i < H * W; i += kBlock) a[i] = maps[n * H * W + i];
    __syncthreads();
    __shared__ double cx[NoiseRegLevels::kMax], cy[NoiseRegLevels::kMax];
    for (int l = 0; l < L.count; ++l) {
        const long long h = L.h[l], w = L.w[l];
        const double* al = a + L.offset[l];
        double sx = 0.0, sy = 0.0;
        for (long long i = threadIdx.x; i < h * w; i += kBlock) {
            const long long y = i / w, x = i - y * w;
            sx += al[i] * al[y * w + (x + w - 1) % w];
            sy += al[i] * al[((y + h - 1) % h) * w + x];
        }
        sx = block_sum<double>(sx);
        sy = block_sum<double>(sy);
        if (threadIdx.x == 0) {
            cx[l] = sx / static_cast<double>(h * w);
            cy[l] = sy / static_cast<double>(h * w);
        }
        if (l + 1 < L.count) {  // 2x2 average pool, odd sizes floored
            const long long ow = L.w[l + 1];
            double* next = a + L.offset[l + 1];
            for (long long o = threadIdx.x; o < L.h[l + 1] * ow; o += kBlock) {
                const long long i = o / ow, j = o - i * ow;
                next[o] = 0.25 * (al[2 * i * w + 2 * j] + al[2 * i * w + 2 * j + 1] + al[(2 * i + 1) * w + 2 * j] +
                                  al[(2 * i + 1) * w + 2 * j + 1]);
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        double reg = 0.0;
        for (int l = 0; l < L.count; ++l) reg += cx[l] * cx[l] + cy[l] * cy[l];
        value[n] = reg;
    }
    if (!grad) return;
    // Coarsest level first: each level's own term, plus the pooling adjoint of the level above.
    double* g = gws + n * L.total;
    for (int l = L.count - 1; l >= 0; --l) {
        const long long h = L.h[l], w = L.w[l];
        const double* al = a + L.offset[l];
        const double kx = 2.0 * cx[l] / static_cast<double>(h * w), ky = 2.0 * cy[l] / static_cast<double>(h * w);
        for (long long i = threadIdx.x; i < h * w; i += kBlock) {
            const long long y = i / w, x = i - y * w;
            double v = 0.0;
            if (l + 1 < L.count && y < 2 * L.h[l + 1] && x < 2 * L.w[l + 1])
                v = 0.25 * g[L.offset[l + 1] + (y / 2) * L.w[l + 1] + x / 2];
            v += kx * (al[y * w + (x + w - 1) % w] + al[y * w + (x + 1) % w]) +
                 ky * (al[((y + h - 1) % h) * w + x] + al[((y + 1) % h) * w + x]);
            if (l == 0) grad[n * H * W + i] = static_cast<float>(v);
            else g[L.offset[l] + i] = v;
        }
        __syncthreads();
    }
}

}  // namespace cuda::kernels

namespace detail {

template <>
struct BufferOps<Cuda> {
    using Buffer = cuda::DeviceTensor;

    static void ensure(Buffer& b, const Shape& shape, const Buffer& like) {
        if (b.shape() != shape || b.pool() != like.pool()) b = Buffer(shape, pool_of(like));
    }
    static void scale(Buffer& b, float w) {
        cuda::launch_1d(cuda::kernels::scale_all, b.numel(), b.stream(), b.data(), ll(b.numel()), w);
    }
    /// dst += alpha * src (same shape).
    static void add(Buffer& dst, const Buffer& src, float alpha = 1.0f) {
        GANINV_CHECK(dst.shape() == src.shape(), ShapeError, "BufferOps<Cuda>::add: shapes ",
                     shape_to_string(dst.shape()), " and ", shape_to_string(src.shape()), " differ");
        cuda::launch_1d(cuda::kernels::axpy<float>, dst.numel(), dst.stream(), static_cast<long long>(dst.numel()), alpha,
                        src.data(), dst.data());
    }
    static Buffer apply_binary_mask(const Buffer& x, const Buffer& mask) {
        Buffer out(x.shape(), pool_of(x));
        cuda::launch_1d(cuda::kernels::apply_binary_mask, x.numel(), x.stream(), x.data(), mask.data(), ll(x.dim(0)),
                        ll(x.dim(1)), ll(x.dim(2) * x.dim(3)), ll(mask.dim(0)), ll(mask.dim(1)), out.data());
        return out;
    }

    /// With `values_into`, values_into[n] += weight * value of image n on the device and nothing
    /// comes back (the returned vector is empty); otherwise the values are read back.
    template <class L>
    static std::vector<double> pixel_loss(const L& loss, const Buffer& pred, const Buffer& target, const Buffer* mask,
                                          Buffer* grad, float* values_into = nullptr, float weight = 1.0f) {
        static_assert(std::is_trivially_copyable_v<L>,
                      "BufferOps<Cuda>::pixel_loss: the loss object is passed to a kernel by value and must be "
                      "trivially copyable");
        const Index N = pred.dim(0), C = pred.dim(1), HW = pred.dim(2) * pred.dim(3), m = C * HW;
        GANINV_CHECK(N <= 65535, ShapeError, "CUDA pixel loss: batch ", N, " exceeds 65535");
        if (grad) ensure(*grad, pred.shape(), pred);
        cuda::MemoryPool& pool = *pool_of(pred);
        const cudaStream_t s = pred.stream();
        const Index chunks = std::max<Index>(1, std::min<Index>((m + 4 * cuda::kBlock - 1) / (4 * cuda::kBlock), 64));
        // One scratch block: partial sums and counts (double), per-image values (double), norms.
        const std::size_t parts = static_cast<std::size_t>(N * chunks);
        const std::size_t bytes = sizeof(double) * (2 * parts + static_cast<std::size_t>(N)) +
                                  sizeof(float) * static_cast<std::size_t>(N);
        const cuda::Block scratch = pool.allocate(bytes);
        double* partial_acc = static_cast<double*>(scratch.ptr);
        double* partial_count = partial_acc + parts;
        double* per_image_dev = partial_count + parts;
        float* norm = reinterpret_cast<float*>(per_image_dev + N);
        // Plain losses know their normalisation up front (1/m); masked ones rescale afterwards.
        const float grad_scale = mask ? 1.0f : static_cast<float>(1.0 / static_cast<double>(m));
        cuda::kernels::pixel_loss_partials<L><<<dim3(static_cast<unsigned>(chunks), static_cast<unsigned>(N)),
                                                cuda::kBlock, 0, s>>>(
            loss, pred.data(), target.data(), mask ? mask->data() : nullptr, mask ? ll(mask->dim(0)) : 1,
            mask ? ll(mask->dim(1)) : 1, ll(C), ll(HW), grad_scale, grad ? grad->data() : nullptr, partial_acc,
            partial_count);
        GANINV_CUDA_CHECK_LAUNCH();
        cuda::launch_1d(cuda::kernels::pixel_loss_finish, N, s, static_cast<const double*>(partial_acc),
                        static_cast<const double*>(partial_count), ll(N), ll(chunks), per_image_dev, norm);
        if (grad && mask)
            cuda::launch_1d(cuda::kernels::scale_per_image, N * m, s, grad->data(), ll(N), ll(m),
                            static_cast<const float*>(norm));
        if (values_into) {
            cuda::launch_1d(cuda::kernels::accumulate_values<>, N, s, static_cast<const double*>(per_image_dev), ll(N),
                            weight, values_into);
            pool.release(scratch);  // stream-ordered: reused only by later work on this stream
            return {};
        }
        std::vector<double> per_image(static_cast<std::size_t>(N));
        const cudaError_t copied =
            cudaMemcpyAsync(per_image.data(), per_image_dev, sizeof(double) * per_image.size(), cudaMemcpyDeviceToHost, s);
        const cudaError_t synced = copied == cudaSuccess ? cudaStreamSynchronize(s) : copied;
        ++pool.traffic().downloads;
        ++pool.traffic().syncs;
        pool.release(scratch);
        GANINV_CUDA_CHECK(synced);
        return per_image;
    }

    /// Same contract as BufferOps<Cpu>::add_noise_regularizer: one block per plane.
    /// With `values_into`, values_into[n] += weight * value of image n on the device instead of
    /// per_image (nothing comes back to the host).
    static void add_noise_regularizer(const Buffer& map, Index N, Index H, Index W, Buffer* grad,
                                      std::vector<double>& per_image, float* values_into = nullptr,
                                      float weight = 1.0f) {
        cuda::kernels::NoiseRegLevels L;
        for (Index h = H, w = W;;) {  // the CPU's do-while: stop after the level with h <= 8
            GANINV_CHECK(L.count < cuda::kernels::NoiseRegLevels::kMax, ShapeError,
                         "CUDA noise regulariser: too many pyramid levels for a ", H, "x", W, " map");
            L.h[L.count] = h;
            L.w[L.count] = w;
            L.offset[L.count] = L.total;
            L.total += h * w;
            ++L.count;
            if (h <= 8) break;
            h /= 2;
            w /= 2;
        }
        GANINV_CHECK(N <= 2147483647LL, ShapeError, "CUDA noise regulariser: batch ", N, " too large");
        cuda::MemoryPool& pool = *pool_of(map);
        const cudaStream_t s = map.stream();
        const std::size_t work = sizeof(double) * static_cast<std::size_t>(N * L.total);
        const cuda::Block scratch = pool.allocate(2 * work + sizeof(double) * static_cast<std::size_t>(N));
        double* ws = static_cast<double*>(scratch.ptr);
        double* gws = ws + N * L.total;
        double* value = gws + N * L.total;
        cuda::kernels::noise_reg_planes<<<static_cast<unsigned>(N), cuda::kBlock, 0, s>>>(
            map.data(), L, ws, gws, grad ? grad->data() : nullptr, value);
        const cudaError_t launched = cudaGetLastError();
        if (values_into) {
            if (launched == cudaSuccess)
                cuda::launch_1d(cuda::kernels::accumulate_values<>, N, s, static_cast<const double*>(value), ll(N), weight,
                                values_into);
            pool.release(scratch);
            GANINV_CUDA_CHECK(launched);
            return;
        }
        std::vector<double> v(static_cast<std::size_t>(N));
        cudaError_t e = launched;
        if (e == cudaSuccess) e = cudaMemcpyAsync(v.data(), value, sizeof(double) * v.size(), cudaMemcpyDeviceToHost, s);
        if (e == cudaSuccess) e = cudaStreamSynchronize(s);
        ++pool.traffic().downloads;
        ++pool.traffic().syncs;
        pool.release(scratch);
        GANINV_CUDA_CHECK(e);
        for (Index n = 0; n < N; ++n) per_image[static_cast<std::size_t>(n)] += v[static_cast<std::size_t>(n)];
    }

    static Buffer area_downsample(const Buffer& x, Index k) {
        const Shape& sh = x.shape();
        Buffer y({sh[0], sh[1], sh[2] / k, sh[3] / k}, pool_of(x));
        cuda::launch_1d(cuda::kernels::area_downsample, y.numel(), x.stream(), x.data(), ll(sh[0] * sh[1]), ll(sh[2] / k),
                        ll(sh[3] / k), static_cast<int>(k), y.data());
        return y;
    }
    static Buffer area_downsample_backward(const Buffer& gy, Index k, const Shape& in) {
        Buffer gx(in, pool_of(gy));
        cuda::launch_1d(cuda::kernels::area_downsample_backward, gx.numel(), gy.stream(), gy.data(), ll(in[0] * in[1]),
                        ll(in[2] / k), ll(in[3] / k), static_cast<int>(k), gx.data());
        return gx;
    }
    static Buffer to_gray(const Buffer& x) {
        Buffer y({x.dim(0), 1, x.dim(2), x.dim(3)}, pool_of(x));
        cuda::launch_1d(cuda::kernels::to_gray, y.numel(), x.stream(), x.data(), ll(x.dim(0)), ll(x.dim(2) * x.dim(3)),
                        y.data());
        return y;
    }
    static Buffer to_gray_backward(const Buffer& gy) {
        Buffer gx({gy.dim(0), 3, gy.dim(2), gy.dim(3)}, pool_of(gy));
        cuda::launch_1d(cuda::kernels::to_gray_backward, gy.numel(), gy.stream(), gy.data(), ll(gy.dim(0)),
                        ll(gy.dim(2) * gy.dim(3)), gx.data());
        return gx;
    }

private:
    static long long ll(Index v) { return static_cast<long long>(v); }
    static const std::shared_ptr<cuda::MemoryPool>& pool_of(const Buffer& b) {
        GANINV_CHECK(b.pool() != nullptr, ValueError,
                     "CUDA loss: an input tensor has no device memory (empty tensor; upload it with the backend first)");
        return b.pool();
    }
};

}  // namespace detail
}  // namespace ganinv
