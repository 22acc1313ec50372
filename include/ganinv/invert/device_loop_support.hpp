/// @file device_loop_support.hpp
/// @brief What the device-resident loops (DeviceAdamLoop, DeviceLbfgsLoop, DeviceCmaLoop) share:
///        when a loop may replace the Inverter's host loop, whether a loss or the noise
///        regulariser can add its per-row values in double into backend memory, and the blocks of
///        doubles the L-BFGS and CMA-ES loops keep in the backends' float buffers.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/invert/options.hpp"
#include "ganinv/loss/noise_regularizer.hpp"

#include <cstdint>
#include <cstring>
#include <vector>

namespace ganinv::detail {

/// The options every device loop needs (else the Inverter keeps its host loop): the host-side
/// priors and code regulariser are off, and the batch fits the kernels' row indexing.
inline bool device_loop_allowed(const InverterOptions& o, Index images) {
    return o.device_loop && o.w_avg_prior <= 0 && o.wplus_spread_prior <= 0 && !o.code_regularizer &&
           images <= 65535;
}

/// Whether the loss adds its per-row values, in double, into backend memory (so that they cross
/// to the host in one copy with the loop's other per-row scalars).
template <class LossT, class Buffer>
inline constexpr bool loss_writes_doubles = requires(const LossT& l, const Buffer& b, Buffer* g, double* v) {
    l.evaluate_on_device(b, b, g, v, 1.0f);
};
/// The same for the noise regulariser of backend B.
template <class B, class Buffer>
inline constexpr bool regularizer_writes_doubles = requires(const NoiseRegularizer<B>& r, const std::vector<Buffer>& m,
                                                            std::vector<Buffer>* g, double* v) {
    r.evaluate_on_device(m, g, 1.0f, v);
};

/// `count` zeroed doubles in a float buffer of twice the length (both backends' buffers are float;
/// their storage is aligned for double: std::allocator and the pool's 256 bytes).
template <class B>
typename B::Buffer double_block(const B& backend, Index count) {
    return backend.zeros({2 * count});
}
/// `values` in such a block (one upload).
template <class B>
typename B::Buffer upload_doubles(const B& backend, const std::vector<double>& values) {
    Tensor<float> t({2 * static_cast<Index>(values.size())});
    std::memcpy(t.data(), values.data(), sizeof(double) * values.size());
    return backend.upload(t);
}
/// The block's storage as doubles.
template <class Buffer>
double* as_doubles(Buffer& b) {
    GANINV_CHECK(reinterpret_cast<std::uintptr_t>(b.data()) % alignof(double) == 0, ValueError,
                 "device loop: a buffer is not aligned for double");
    return reinterpret_cast<double*>(b.data());
}

}  // namespace ganinv::detail
