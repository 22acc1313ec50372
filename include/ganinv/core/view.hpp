/// @file view.hpp
/// @brief Working with borrowed memory: `to_tensor` (a strided view gathered into an owning
///        Tensor, the one copy an entry point makes when its backend needs its own memory) and
///        `reshape_view` (a view of row-contiguous rows seen as images, no copy). Adapters from
///        Eigen objects are in core/eigen_view.hpp.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"

#include <array>
#include <cstring>
#include <type_traits>

namespace ganinv {

/// A contiguous copy of `v` (any strides), with v's shape.
template <class T, std::size_t Rank>
Tensor<std::remove_const_t<T>> to_tensor(const TensorView<T, Rank>& v) {
    Tensor<std::remove_const_t<T>> out(Shape(v.shape().begin(), v.shape().end()));
    if (out.numel() == 0) return out;
    if (v.is_contiguous()) {
        std::memcpy(out.data(), v.data(), sizeof(T) * static_cast<std::size_t>(out.numel()));
        return out;
    }
    std::array<Index, Rank> ix{};
    for (Index flat = 0; flat < out.numel(); ++flat) {
        Index off = 0;
        for (std::size_t d = 0; d < Rank; ++d) off += ix[d] * v.stride(d);
        out[flat] = v.data()[off];
        for (std::size_t d = Rank; d-- > 0;) {  // row-major increment of the index
            if (++ix[d] < v.dim(d)) break;
            ix[d] = 0;
        }
    }
    return out;
}

/// Rows [N, M] of a view whose rows are contiguous (inner stride 1) seen as [N, shape...] with
/// prod(shape) == M: the same memory, no copy. ShapeError otherwise.
template <std::size_t Rank, class T>
TensorView<T, Rank> reshape_view(const TensorView<T, 2>& rows, const std::array<Index, Rank>& shape) {
    static_assert(Rank >= 2, "reshape_view: the first dimension is the row index");
    GANINV_CHECK(shape[0] == rows.dim(0), ShapeError, "reshape_view: ", rows.dim(0), " rows cannot be ", shape[0],
                 " images");
    Index per = 1;
    for (std::size_t d = 1; d < Rank; ++d) per *= shape[d];
    GANINV_CHECK(per == rows.dim(1), ShapeError, "reshape_view: rows of ", rows.dim(1), " values are not images of ",
                 per, " values, shape ", shape_to_string(shape));
    GANINV_CHECK(rows.dim(1) <= 1 || rows.stride(1) == 1, ShapeError,
                 "reshape_view: the rows are not contiguous (inner stride ", rows.stride(1),
                 "); use a row-major matrix or to_tensor first");
    std::array<Index, Rank> strides{};
    Index s = 1;
    for (std::size_t d = Rank; d-- > 1;) {
        strides[d] = s;
        s *= shape[d];
    }
    strides[0] = rows.stride(0);
    return TensorView<T, Rank>(rows.data(), shape, strides);
}

}  // namespace ganinv
