/// @file tensor.hpp
/// @brief Host tensors: `TensorView<T, Rank>` borrows user memory (pointer + shape + strides),
///        `Tensor<T>` owns a contiguous buffer. Ownership is visible in the type: a function that
///        takes a view never frees or reallocates, one that returns a Tensor hands over memory.
#pragma once

#include "ganinv/core/error.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <numeric>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace ganinv {

using Index = std::int64_t;
using Shape = std::vector<Index>;

/// "[2, 3, 32, 32]" for error messages.
inline std::string shape_to_string(std::span<const Index> shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

/// a * b, or false when the product does not fit in T (sizes read from files go through this).
template <std::integral T>
[[nodiscard]] bool checked_mul(T a, T b, T& out) {
    return !__builtin_mul_overflow(a, b, &out);
}

/// The element count of a shape; ShapeError for a negative dimension or a count beyond Index.
inline Index shape_numel(std::span<const Index> shape) {
    Index n = 1;
    for (Index d : shape) GANINV_CHECK(d >= 0, ShapeError, "negative dimension in shape ", shape_to_string(shape));
    for (Index d : shape)
        GANINV_CHECK(checked_mul(n, d, n), ShapeError, "shape ", shape_to_string(shape),
                     " has more elements than a 64-bit count holds");
    return n;
}

/// Non-owning strided view of Rank dimensions. Strides are in elements.
/// Satisfied by any memory the caller keeps alive: a std::vector, a Tensor, a mapped file.
template <class T, std::size_t Rank>
class TensorView {
public:
    using value_type = std::remove_const_t<T>;
    using Extents = std::array<Index, Rank>;

    TensorView() = default;

    /// Contiguous (row-major) view.
    TensorView(T* data, const Extents& shape) : data_(data), shape_(shape) {
        Index s = 1;
        for (std::size_t i = Rank; i-- > 0;) {
            GANINV_CHECK(shape[i] >= 0, ShapeError, "negative dimension in view shape");
            strides_[i] = s;
            s *= shape[i];
        }
    }

    TensorView(T* data, const Extents& shape, const Extents& strides)
        : data_(data), shape_(shape), strides_(strides) {}

    /// A view of T converts to a view of const T.
    template <class U>
        requires(std::is_same_v<const U, T> && !std::is_same_v<U, T>)
    TensorView(const TensorView<U, Rank>& other)  // NOLINT(google-explicit-constructor)
        : data_(other.data()), shape_(other.shape()), strides_(other.strides()) {}

    T* data() const { return data_; }
    const Extents& shape() const { return shape_; }
    const Extents& strides() const { return strides_; }
    Index dim(std::size_t i) const { return shape_[i]; }
    Index stride(std::size_t i) const { return strides_[i]; }
    static constexpr std::size_t rank() { return Rank; }
    Index numel() const { return shape_numel(shape_); }

    bool is_contiguous() const {
        Index s = 1;
        for (std::size_t i = Rank; i-- > 0;) {
            if (shape_[i] != 1 && strides_[i] != s) return false;
            s *= shape_[i];
        }
        return true;
    }

    template <class... I>
        requires(sizeof...(I) == Rank)
    T& operator()(I... idx) const {
        const std::array<Index, Rank> ix{static_cast<Index>(idx)...};
        Index off = 0;
        for (std::size_t d = 0; d < Rank; ++d) off += ix[d] * strides_[d];
        return data_[off];
    }

private:
    T* data_ = nullptr;
    Extents shape_{};
    Extents strides_{};
};

/// Owning, contiguous, row-major host tensor of dynamic rank.
template <class T = float>
class Tensor {
public:
    Tensor() = default;
    explicit Tensor(Shape shape) : shape_(std::move(shape)), data_(static_cast<std::size_t>(shape_numel(shape_))) {}
    Tensor(Shape shape, T fill) : shape_(std::move(shape)), data_(static_cast<std::size_t>(shape_numel(shape_)), fill) {}
    Tensor(Shape shape, std::vector<T> values) : shape_(std::move(shape)), data_(std::move(values)) {
        GANINV_CHECK(static_cast<Index>(data_.size()) == shape_numel(shape_), ShapeError, "tensor of shape ",
                     shape_to_string(shape_), " needs ", shape_numel(shape_), " values, got ", data_.size());
    }

    const Shape& shape() const { return shape_; }
    Index dim(std::size_t i) const {
        GANINV_CHECK(i < shape_.size(), ShapeError, "dimension ", i, " of a rank-", shape_.size(), " tensor");
        return shape_[i];
    }
    std::size_t rank() const { return shape_.size(); }
    Index numel() const { return static_cast<Index>(data_.size()); }
    bool empty() const { return data_.empty(); }

    T* data() { return data_.data(); }
    const T* data() const { return data_.data(); }
    std::span<T> values() { return data_; }
    std::span<const T> values() const { return data_; }
    T& operator[](Index i) { return data_[static_cast<std::size_t>(i)]; }
    const T& operator[](Index i) const { return data_[static_cast<std::size_t>(i)]; }
    std::vector<T>& storage() { return data_; }

    /// Changes the shape, keeping the values (the element count must not change).
    Tensor& reshape(Shape shape) {
        GANINV_CHECK(shape_numel(shape) == numel(), ShapeError, "cannot reshape ", shape_to_string(shape_), " to ",
                     shape_to_string(shape));
        shape_ = std::move(shape);
        return *this;
    }

    template <std::size_t Rank>
    TensorView<T, Rank> view() {
        return TensorView<T, Rank>(data(), extents<Rank>());
    }
    template <std::size_t Rank>
    TensorView<const T, Rank> view() const {
        return TensorView<const T, Rank>(data(), extents<Rank>());
    }

    void fill(T v) { std::fill(data_.begin(), data_.end(), v); }

private:
    template <std::size_t Rank>
    std::array<Index, Rank> extents() const {
        GANINV_CHECK(shape_.size() == Rank, ShapeError, "expected a rank-", Rank, " tensor, got shape ",
                     shape_to_string(shape_));
        std::array<Index, Rank> e{};
        std::copy(shape_.begin(), shape_.end(), e.begin());
        return e;
    }

    Shape shape_;
    std::vector<T> data_;
};

/// Throws ShapeError naming `what` unless `t` (a Tensor, or any buffer with shape(), e.g. a
/// device tensor) has exactly the expected shape.
template <class TensorLike>
    requires requires(const TensorLike& t) { { t.shape() } -> std::convertible_to<const Shape&>; }
void expect_shape(const TensorLike& t, const Shape& expected, const std::string& what) {
    GANINV_CHECK(t.shape() == expected, ShapeError, what, ": expected shape ", shape_to_string(expected), ", got ",
                 shape_to_string(t.shape()));
}

/// Throws ValueError naming `what` if any value is NaN or infinite.
inline void expect_finite(std::span<const float> values, const std::string& what) {
    for (std::size_t i = 0; i < values.size(); ++i)
        GANINV_CHECK(std::isfinite(values[i]), ValueError, what, ": non-finite value ", values[i], " at index ", i);
}

/// ||a - b|| / ||b|| in double precision: the parity measure of the project.
inline double relative_l2_error(std::span<const float> a, std::span<const float> b) {
    GANINV_CHECK(a.size() == b.size(), ShapeError, "relative_l2_error: sizes differ (", a.size(), " vs ", b.size(),
                 ")");
    double num = 0.0, den = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
        num += d * d;
        den += static_cast<double>(b[i]) * static_cast<double>(b[i]);
    }
    if (den == 0.0) return std::sqrt(num);
    return std::sqrt(num / den);
}

}  // namespace ganinv
