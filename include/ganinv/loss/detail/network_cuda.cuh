/// @file network_cuda.cuh
/// @brief What the CUDA network losses (lpips_cuda.cuh, vgg_perceptual_cuda.cuh,
///        identity_cuda.cuh) share: the input-stage affine and geometry of the VGG losses, the
///        backend's pool, the gradient buffer and one cuDNN context per loss object.
///
/// Each loss owns a cuDNN handle bound to its backend's stream (`CudnnContext`), device copies
/// of its weights, and a `DeviceTargetCache` (the target's features are recomputed only when the
/// target's bits change). The gradient is written into `*grad` in place when it already has
/// pred's shape (allocated otherwise). The per-image values are the only data that come back to
/// the host (Identity also reads back the N x 128 descriptors: its head is the Cpu's function).
///
/// `set_reference_precision(true)` runs the network's convolutions with double accumulation
/// (TrunkConvs, cuda/network_ops.cuh), the GPU twin of the Cpu trunks' mode of the same name: for
/// parity checks against the official code, several times slower. Float32 is the default. The
/// switch drops the cached target features, which were computed in the other precision.
#pragma once

#include "ganinv/backend/cuda.cuh"
#include "ganinv/cuda/cudnn_conv.hpp"
#include "ganinv/cuda/input_stage.cuh"

#include <algorithm>
#include <array>
#include <memory>

namespace ganinv {

namespace cuda::detail {

inline InputAffine vgg_affine(const std::array<float, 3>& shift, const std::array<float, 3>& scale) {
    InputAffine a;
    for (int c = 0; c < 3; ++c) {
        a.shift[c] = shift[static_cast<std::size_t>(c)];
        a.scale[c] = scale[static_cast<std::size_t>(c)];
    }
    return a;
}

/// The VGG losses' geometry: the whole image, area-shrunk per axis to at most max_size (0 = never).
inline StageGeometry vgg_geometry(const Shape& x, Index max_size) {
    const Index h = x[2], w = x[3];
    return {h, w, 0, 0, w, h, max_size > 0 ? std::min(h, max_size) : h, max_size > 0 ? std::min(w, max_size) : w};
}

/// The backend's memory pool as a shared pointer (an empty tensor allocates nothing but keeps it).
inline std::shared_ptr<MemoryPool> pool_of(const Cuda& backend) { return backend.empty(Shape{0}).pool(); }

/// `*grad` as a tensor of pred's shape on pred's pool (kept when it already is one).
inline DeviceTensor& ensure_grad(DeviceTensor* grad, const DeviceTensor& pred) {
    if (grad->shape() != pred.shape() || grad->pool() != pred.pool()) *grad = DeviceTensor(pred.shape(), pred.pool());
    return *grad;
}

/// One cuDNN context per loss object, on the backend's stream and pool, at its precision.
inline std::shared_ptr<CudnnContext> make_cudnn(const Cuda& backend, AlgoSearch search) {
    return std::make_shared<CudnnContext>(backend.stream(), pool_of(backend), backend.options().precision, search);
}

}  // namespace cuda::detail

}  // namespace ganinv
