/// @file pixel.hpp
/// @brief Per-pixel image distances, batched per image: MSE, MAE and PSNR. PSNR depends on the
///        value range of the data, which is never guessed: pass `DataRange::signed_unit()` (2)
///        for the library's [-1, 1] tensors, `DataRange::uint8()` (255) for 8-bit pixel values.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace ganinv::metrics {

/// max - min of the values an image can take (skimage's `data_range`).
struct DataRange {
    double value;
    /// Tensors in [-1, 1], the layout of the generator and image_to_tensor.
    static constexpr DataRange signed_unit() { return {2.0}; }
    /// 8-bit pixel values 0..255.
    static constexpr DataRange uint8() { return {255.0}; }
    /// Values in [0, 1].
    static constexpr DataRange unit() { return {1.0}; }
};

namespace detail {

/// Checks two [N, ...] tensors of equal, non-empty shape; returns the values per image.
inline Index per_image(const Tensor<float>& a, const Tensor<float>& b, const char* what) {
    GANINV_CHECK(a.shape() == b.shape(), ShapeError, what, ": images of shapes ", shape_to_string(a.shape()), " and ",
                 shape_to_string(b.shape()), " differ");
    GANINV_CHECK(a.rank() >= 2 && a.numel() > 0, ShapeError, what, ": expected a batch [N, C, H, W], got shape ",
                 shape_to_string(a.shape()));
    return a.numel() / a.dim(0);
}

inline void check_range(DataRange r, const char* what) {
    GANINV_CHECK(r.value > 0 && std::isfinite(r.value), ValueError, what, ": data range must be positive, got ",
                 r.value);
}

}  // namespace detail

/// Mean squared error of every image in the batch (float64 accumulation).
inline std::vector<double> mse(const Tensor<float>& a, const Tensor<float>& b) {
    const Index per = detail::per_image(a, b, "mse");
    std::vector<double> out;
    for (Index n = 0; n < a.dim(0); ++n) {
        double s = 0;
        for (Index i = n * per; i < (n + 1) * per; ++i) {
            const double d = static_cast<double>(a[i]) - b[i];
            s += d * d;
        }
        out.push_back(s / static_cast<double>(per));
    }
    return out;
}

/// Mean absolute error of every image in the batch.
inline std::vector<double> mae(const Tensor<float>& a, const Tensor<float>& b) {
    const Index per = detail::per_image(a, b, "mae");
    std::vector<double> out;
    for (Index n = 0; n < a.dim(0); ++n) {
        double s = 0;
        for (Index i = n * per; i < (n + 1) * per; ++i) s += std::fabs(static_cast<double>(a[i]) - b[i]);
        out.push_back(s / static_cast<double>(per));
    }
    return out;
}

/// 10 log10(range^2 / MSE) per image in dB; identical images give +infinity.
inline double psnr_from_mse(double mse_value, DataRange range) {
    detail::check_range(range, "psnr");
    if (mse_value <= 0) return std::numeric_limits<double>::infinity();
    return 10.0 * std::log10(range.value * range.value / mse_value);
}

inline std::vector<double> psnr(const Tensor<float>& a, const Tensor<float>& b, DataRange range) {
    detail::check_range(range, "psnr");
    std::vector<double> out = mse(a, b);
    for (double& v : out) v = psnr_from_mse(v, range);
    return out;
}

}  // namespace ganinv::metrics
