/// @file buffer_ops.hpp
/// @brief `detail::BufferOps<B>`, the loss half of a backend: the buffer arithmetic that Mse,
///        Masked, Degraded, Weighted, Sum, AnyLoss and NoiseRegularizer are written against.
///
/// It is part of the Backend contract (concepts/backend.hpp, `BackendBufferOps`): a backend
/// specialises it in its own folder and its policy header includes that specialisation
/// (backend/cpu.hpp -> cpu_buffer_ops.hpp, backend/cuda.cuh -> cuda_buffer_ops.cuh), so whoever
/// can name the backend has its buffer operations; there is no include order to keep.
#pragma once

namespace ganinv::detail {

/// Specialised per backend. The primary template is empty, so `Backend<X>` is simply false
/// (not a hard error) for a type X without buffer operations, and a loss used over X fails with
/// "no type named 'Buffer' in 'BufferOps<X>'".
template <class Backend>
struct BufferOps {};

}  // namespace ganinv::detail
