/// @file network_losses_cuda.cuh
/// @brief `Lpips<Cuda>`, `VggPerceptual<Cuda>` and `Identity<Cuda>`: the perceptual and identity
///        losses on device tensors, with the semantics of their Cpu versions (loss/lpips.hpp,
///        loss/vgg_perceptual.hpp, loss/identity.hpp), whose options, constants, tap lists,
///        checks and identity head they reuse: one header each (lpips_cuda.cuh, vgg_perceptual_cuda.cuh,
///        identity_cuda.cuh) beside its Cpu version; this one includes all three and tells
///        build_loss (loss_spec.hpp) that they exist. CUDA translation units only.
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

#include "ganinv/loss/identity_cuda.cuh"
#include "ganinv/loss/lpips_cuda.cuh"
#include "ganinv/loss/vgg_perceptual_cuda.cuh"

namespace ganinv::detail {
template <>
inline constexpr bool network_losses_defined<Cuda> = true;
}  // namespace ganinv::detail
