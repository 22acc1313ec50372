/// @file eigen_view.hpp
/// @brief `as_view`: any Eigen object with direct access (Matrix, Map, Block of them, Ref) as a
///        TensorView of rank 2 over the same memory, strides from its storage order, no copy.
///        With reshape_view (core/view.hpp) a row-major matrix of flattened images becomes an
///        [N, C, H, W] view that Inverter::run and the metrics take.
#pragma once

#include "ganinv/core/tensor.hpp"

#include "ganinv/core/eigen.hpp"

#include <type_traits>

namespace ganinv {

template <class E>
    requires requires(E& e) {
        e.data();
        e.innerStride();
        e.outerStride();
    }
auto as_view(E& e) {
    using T = std::remove_pointer_t<decltype(e.data())>;
    const Index inner = static_cast<Index>(e.innerStride()), outer = static_cast<Index>(e.outerStride());
    const std::array<Index, 2> shape{static_cast<Index>(e.rows()), static_cast<Index>(e.cols())};
    const std::array<Index, 2> strides =
        std::remove_cvref_t<E>::IsRowMajor ? std::array<Index, 2>{outer, inner} : std::array<Index, 2>{inner, outer};
    return TensorView<T, 2>(e.data(), shape, strides);
}

}  // namespace ganinv
