/// @file cuda_buffer_ops.cuh
/// @brief `BufferOps<Cuda>`: the buffer arithmetic of the losses on device tensors — pixel-loss
///        reductions (plain and masked), masking, area down-sampling and RGB->gray with their
///        adjoints, scale and add, the noise regulariser — with the members and semantics of `BufferOps<Cpu>`
///        (backend/cpu_buffer_ops.hpp); the kernels are in cuda/buffer_kernels.cuh. backend/cuda.cuh
///        includes it, so Mse/L1/Charbonnier<Cuda>, Masked, Degraded, Weighted, Sum,
///        WeightedLossSum and NoiseRegularizer over Cuda work wherever `Cuda` does.
///
/// CUDA translation units only (.cu). Work goes to the stream of the input tensor's memory pool (the
/// backend's stream). Per-image sums accumulate in double in a fixed order (partials per
/// block, then a sequential pass), so results are deterministic and match the Cpu loops to
/// float rounding.
#pragma once

#include "ganinv/cuda/buffer_kernels.cuh"
#include "ganinv/cuda/noise_reg_kernels.cuh"
#include "ganinv/cuda/optim_kernels.cuh"
#include "ganinv/cuda/device_buffer.hpp"
#include "ganinv/cuda/elementwise.cuh"
#include "ganinv/backend/buffer_ops.hpp"

#include <algorithm>
#include <memory>
#include <vector>

namespace ganinv {

struct Cuda;

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
    /// comes back (the returned vector is empty); otherwise the values are read back. V: float
    /// (the Adam loop) or double (the L-BFGS loop, which keeps the host objective's doubles).
    template <class L, class V = float>
    static std::vector<double> pixel_loss(const L& loss, const Buffer& pred, const Buffer& target, const Buffer* mask,
                                          Buffer* grad, V* values_into = nullptr, float weight = 1.0f) {
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
            cuda::launch_1d(cuda::kernels::accumulate_values<V>, N, s, static_cast<const double*>(per_image_dev), ll(N),
                            weight, values_into);
            pool.release(scratch);  // stream-ordered: reused only by later work on this stream
            return {};
        }
        std::vector<double> per_image(static_cast<std::size_t>(N));
        const cudaError_t copied =
            cudaMemcpyAsync(per_image.data(), per_image_dev, sizeof(double) * per_image.size(), cudaMemcpyDeviceToHost, s);
        const cudaError_t synced = copied == cudaSuccess ? cudaStreamSynchronize(s) : copied;
        pool.traffic().download(sizeof(double) * per_image.size());
        ++pool.traffic().syncs;
        pool.release(scratch);
        GANINV_CUDA_CHECK(synced);
        return per_image;
    }

    /// Same contract as BufferOps<Cpu>::add_noise_regularizer: one map, through
    /// add_noise_regularizers. With `values_into`, values_into[n] += weight * value of image n on
    /// the device instead of per_image (nothing comes back to the host); V as in pixel_loss.
    template <class V = float>
    static void add_noise_regularizer(const Buffer& map, Index N, Index H, Index W, Buffer* grad,
                                      std::vector<double>& per_image, V* values_into = nullptr,
                                      float weight = 1.0f) {
        GANINV_CHECK(map.numel() == N * H * W, ShapeError, "add_noise_regularizer: a map of ", map.numel(),
                     " values is not ", N, " planes of ", H, "x", W);
        add_noise_regularizers_impl({&map}, {grad}, {{H, W}}, N, per_image, values_into, weight);
    }

    /// Every map of `maps` at once (one set of launches for the whole list: the kernels are in
    /// cuda/noise_reg_kernels.cuh); maps are [.., H, W] with a shared batch N, grads[k] (each
    /// nullable, map k's shape) receives map k's gradient. per_image[n] += the maps' values in list
    /// order; with `values_into`, values_into[n] += weight * each value, in the same order, on the
    /// device (as many add_noise_regularizer calls would add them).
    template <class V = float>
    static void add_noise_regularizers(const std::vector<const Buffer*>& maps, const std::vector<Buffer*>& grads,
                                       Index N, std::vector<double>& per_image, V* values_into = nullptr,
                                       float weight = 1.0f) {
        std::vector<std::pair<Index, Index>> planes;
        for (const Buffer* m : maps) {
            GANINV_CHECK(m && m->shape().size() >= 2, ShapeError, "add_noise_regularizers: a map without a plane");
            const Shape& s = m->shape();
            planes.emplace_back(s[s.size() - 2], s.back());
        }
        add_noise_regularizers_impl(maps, grads, planes, N, per_image, values_into, weight);
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
    template <class V>
    static void add_noise_regularizers_impl(const std::vector<const Buffer*>& maps, const std::vector<Buffer*>& grads,
                                            const std::vector<std::pair<Index, Index>>& planes, Index N,
                                            std::vector<double>& per_image, V* values_into, float weight) {
        GANINV_CHECK(!maps.empty() && grads.size() == maps.size(), ValueError, "add_noise_regularizers: ",
                     maps.size(), " maps and ", grads.size(), " gradient slots");
        const Index M = static_cast<Index>(maps.size());
        std::vector<cuda::NoiseRegInput> in;
        for (Index k = 0; k < M; ++k) {
            const auto [H, W] = planes[static_cast<std::size_t>(k)];
            Buffer* g = grads[static_cast<std::size_t>(k)];
            GANINV_CHECK(maps[static_cast<std::size_t>(k)]->numel() == N * H * W && (!g || g->numel() == N * H * W),
                         ShapeError, "add_noise_regularizers: map ", k, " or its gradient is not ", N, " planes of ",
                         H, "x", W);
            in.push_back({maps[static_cast<std::size_t>(k)]->data(), g ? g->data() : nullptr, H, W});
        }
        cuda::MemoryPool& pool = *pool_of(*maps[0]);
        const cudaStream_t s = maps[0]->stream();
        const cuda::Block scratch = pool.allocate(sizeof(double) * static_cast<std::size_t>(N * M));
        double* value = static_cast<double*>(scratch.ptr);  // [N][M]
        try {
            cuda::launch_noise_regularizers(in, N, value, pool, s);
        } catch (...) {
            pool.release(scratch);
            throw;
        }
        if (values_into) {
            cuda::launch_1d(cuda::kernels::noise_reg_values<V>, N, s, static_cast<const double*>(value), static_cast<int>(M),
                            ll(N), weight, values_into);
            pool.release(scratch);
            return;
        }
        std::vector<double> v(static_cast<std::size_t>(N * M));
        cudaError_t e = cudaMemcpyAsync(v.data(), value, sizeof(double) * v.size(), cudaMemcpyDeviceToHost, s);
        if (e == cudaSuccess) e = cudaStreamSynchronize(s);
        pool.traffic().download(sizeof(double) * v.size());
        ++pool.traffic().syncs;
        pool.release(scratch);
        GANINV_CUDA_CHECK(e);
        per_image.resize(std::max(per_image.size(), static_cast<std::size_t>(N)), 0.0);
        for (Index n = 0; n < N; ++n)
            for (Index k = 0; k < M; ++k) per_image[static_cast<std::size_t>(n)] += v[static_cast<std::size_t>(n * M + k)];
    }

    static long long ll(Index v) { return static_cast<long long>(v); }
    static const std::shared_ptr<cuda::MemoryPool>& pool_of(const Buffer& b) {
        GANINV_CHECK(b.pool() != nullptr, ValueError,
                     "CUDA loss: an input tensor has no device memory (empty tensor; upload it with the backend first)");
        return b.pool();
    }
};

}  // namespace detail
}  // namespace ganinv
