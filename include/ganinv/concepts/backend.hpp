/// @file backend.hpp
/// @brief Concept `Backend`: every operation a backend provides, in groups — where tensors live
///        (`BackendMemory`), the generator's layer operations on raw pointers (`BackendLayerOps`)
///        and the losses' buffer arithmetic (`BackendBufferOps`, detail::BufferOps<B>).
///
/// Satisfied by: ganinv::Cpu (backend/cpu.hpp), ganinv::Cuda (backend/cuda.cuh).
///
/// A new group of operations is one more sub-concept here, conjoined into `Backend` at the end;
/// both backends then implement it (static_assert(Backend<Cpu>) in tests/static,
/// static_assert(Backend<Cuda>) in tests/cuda/static_backend.cu). Pointer operations take device
/// pointers on Cuda and run on the backend's stream; "overwritten" outputs are written whole,
/// "accumulates" outputs are added to. Contracts are one line each; the Cpu code is the reference.
#pragma once

#include "ganinv/backend/buffer_ops.hpp"
#include "ganinv/concepts/backend_optimizer.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/nn/bias_act.hpp"
#include "ganinv/nn/linear_params.hpp"
#include "ganinv/nn/modconv_shape.hpp"
#include "ganinv/nn/style_blocks.hpp"
#include "ganinv/nn/upfirdn2d.hpp"

#include <concepts>
#include <span>
#include <vector>

namespace ganinv {

/// Tensors in the backend's memory.
template <class B>
concept BackendMemory = requires(const B& b, typename B::Buffer& buf, const Tensor<float>& host, const Shape& shape,
                                 const float* src, float* dst, Index n, float v) {
    typename B::Buffer;
    { B::name } -> std::convertible_to<const char*>;     // short name for messages ("cpu", "cuda")
    { b.empty(shape) } -> std::same_as<typename B::Buffer>;  // uninitialised tensor of `shape`
    { b.zeros(shape) } -> std::same_as<typename B::Buffer>;  // zero-filled tensor of `shape`
    { b.upload(host) } -> std::same_as<typename B::Buffer>;  // copy of a host tensor in backend memory
    { b.download(buf) } -> std::same_as<Tensor<float>>;      // host copy (waits for pending work)
    { buf.numel() } -> std::convertible_to<Index>;
    { buf.shape() } -> std::convertible_to<Shape>;
    { buf.data() } -> std::convertible_to<float*>;            // backend pointer the layer ops take
    b.fill(buf, v);                                           // every element = v
    b.copy(src, dst, n);                                      // dst[0, n) = src[0, n), same memory
    b.synchronize();                                          // returns when all queued work is done
};

/// The operations the generator (models/stylegan2*.hpp) calls, on backend pointers.
template <class B>
concept BackendLayerOps = requires(const B& b, const float* x, float* y, Index n, float a, bool flag,
                                   const nn::LinearParams& lin, const nn::ModConvShape& sh, const nn::BiasActParams& act,
                                   const nn::Upfirdn2dParams& up, std::span<const nn::StyleAffine> affines,
                                   std::span<const nn::ColumnBlock> blocks) {
    b.axpy(n, a, x, y);                                      // y[i] += a * x[i]
    b.broadcast_rows(x, n, n, y);                            // y[b, :] = x[:] for b < batch
    b.sum_rows_add(x, n, n, y);                              // y[:] += sum_b x[b, :]
    b.truncate(y, n, n, n, x, a, n);                         // ws rows < cutoff = lerp(avg, ws, psi)
    b.gather_columns(x, n, n, n, n, a, y);                   // y[r, :] = scale * x[r, off : off + cols]
    b.scatter_add_columns(x, n, n, a, y, n, n);              // adjoint of gather_columns (accumulates)
    b.reduce_ws(x, n, n, n, a, n, y);                        // adjoint of broadcast + truncation (overwritten)
    b.normalize_2nd_moment(x, n, n, y);                      // y = x * rsqrt(mean(x^2) + 1e-8) per row
    b.normalize_2nd_moment_backward(x, x, n, n, y);          // its adjoint (overwritten)
    b.linear_forward(x, n, x, x, lin, y);                    // y = act(x W^T * gain + b * bias_gain)
    b.linear_backward(x, n, x, x, y, lin, y, y, y);          // grad_x overwritten, grad_w / grad_b accumulate
    b.affine_styles(x, n, n, n, affines, n, y);              // every layer's styles from ws in one call
    b.affine_styles_backward(x, x, n, n, n, affines, n, y);  // grad_ws overwritten; layer grads accumulate
    b.gather_column_blocks(x, n, n, blocks);                 // gather_columns for every block
    b.scatter_add_column_blocks(blocks, n, y, n);            // scatter_add_columns for every block
    b.modconv_forward(x, x, x, x, sh, y, y);                 // demodulated conv (+ up-sampling) and dcoefs
    b.modconv_backward(x, x, x, x, x, x, x, sh, y, y, y, flag);  // grad_x, grad_s overwritten; grad_w accumulates
    b.modconv_forward_fused(x, x, x, x, sh, y, y, y, x, flag, x, x, act);  // modconv, + noise, bias_act
    b.add_noise(y, n, n, n, x, flag, x);                     // y[n, c, :] += strength * noise[n or 0, :]
    b.add_noise_backward(x, n, n, n, x, flag, x, y, y);      // grad_noise overwritten; grad_strength accumulates
    b.bias_act_forward(y, n, n, n, x, act);                  // in place: act(x + bias) * gain, clamped
    b.bias_act_backward(x, x, n, n, n, act, y, y);           // from the output y; grad_bias accumulates
    b.bias_act_noise_backward(x, x, n, n, n, act, x, flag, x, y, y, y, y);  // the two above, fused
    b.modconv_backward_fused(x, x, x, x, x, x, x, x, sh, act, x, flag, x, y, y, y, y, y, y, flag);  // the two above, then modconv_backward
    b.upfirdn2d_forward(x, n, n, n, x, n, n, up, y);         // upsample, FIR, downsample per plane
    b.upfirdn2d_backward(x, n, n, n, x, n, n, up, y);        // its exact adjoint (overwritten)
};

/// Stand-in for a pointwise loss in the BufferOps check (Mse/L1/Charbonnier have this shape).
struct PointwiseLossArchetype {
    double pointwise(double d) const { return d * d; }
    double pointwise_grad(double d) const { return 2 * d; }
};

/// The losses' buffer arithmetic (loss/pixel.hpp, masked.hpp, degraded.hpp, compose.hpp,
/// noise_regularizer.hpp): `detail::BufferOps<B>`, specialised beside the backend
/// (backend/cpu_buffer_ops.hpp, backend/cuda_buffer_ops.cuh). Static members, no backend object.
template <class B>
concept BackendBufferOps = requires(typename detail::BufferOps<B>::Buffer& buf, const Shape& shape, float w, Index k,
                                    std::vector<double>& per_image, const PointwiseLossArchetype& loss) {
    requires std::same_as<typename detail::BufferOps<B>::Buffer, typename B::Buffer>;
    detail::BufferOps<B>::ensure(buf, shape, buf);           // buf becomes `shape` in buf's memory (kept if it is)
    detail::BufferOps<B>::scale(buf, w);                     // buf *= w
    detail::BufferOps<B>::add(buf, buf, w);                  // dst += alpha * src (same shape)
    // per image: mean of loss.pointwise(pred - target) over the mask's selection; grad (nullable) resized
    { detail::BufferOps<B>::pixel_loss(loss, buf, buf, &buf, &buf) } -> std::same_as<std::vector<double>>;
    detail::BufferOps<B>::add_noise_regularizer(buf, k, k, k, &buf, per_image);  // per_image[n] += reg(plane n)
    { detail::BufferOps<B>::apply_binary_mask(buf, buf) } -> std::same_as<typename B::Buffer>;  // x * (mask > 0)
    { detail::BufferOps<B>::area_downsample(buf, k) } -> std::same_as<typename B::Buffer>;      // k x k block means
    { detail::BufferOps<B>::area_downsample_backward(buf, k, shape) } -> std::same_as<typename B::Buffer>;
    { detail::BufferOps<B>::to_gray(buf) } -> std::same_as<typename B::Buffer>;           // BT.601 luma
    { detail::BufferOps<B>::to_gray_backward(buf) } -> std::same_as<typename B::Buffer>;  // its adjoint
};

/// Everything a backend provides. Further groups (the optimizer steps of a device-resident
/// inversion loop) are added here as one more `&&`.
template <class B>
concept Backend = BackendMemory<B> && BackendLayerOps<B> && BackendBufferOps<B> && BackendOptimizerOps<B>;

}  // namespace ganinv
