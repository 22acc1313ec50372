/// @file cuda.cuh
/// @brief Concept `Backend`: where tensors live and the operations the generator needs.
///
/// Satisfied by: ganinv::Cpu (backend/cpu.hpp), ganinv::Cuda (backend/cuda.cuh).
#pragma once

#include "ganinv/core/tensor.hpp"

#include <concepts>

namespace ganinv {

template <class B>
concept Backend = requires(B& b, const typename B::Buffer& buf, const Tensor<float>& host, const Shape& shape) {
    typename B::Buffer;
    { B::name } -> std::convertible_to<const char*>;
    { b.empty(shape) } -> std::same_as<typename B::Buffer>;
    { b.zeros(shape) } -> std::same_as<typename B::Buffer>;
    { b.upload(host) } -> std::same_as<typename B::Buffer>;
    { b.download(buf) } -> std::same_as<Tensor<float>>;
    { buf.numel() } -> std::convertible_to<Index>;
    { buf.shape() } -> std::convertible_to<Shape>;
    b.synchronize();
};

}  // namespace ganinv
