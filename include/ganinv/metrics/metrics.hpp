/// @file metrics.hpp
/// @brief Image-quality metrics in one include (MSE, MAE, PSNR, SSIM), plus the comparison of
///        two batches or two 8-bit images in one call. LPIPS and identity similarity live with
///        their networks (loss/); they are not part of this header.
#pragma once

#include "ganinv/io/image.hpp"
#include "ganinv/metrics/pixel.hpp"
#include "ganinv/metrics/ssim.hpp"

#include <vector>

namespace ganinv::metrics {

/// The four full-reference scores of one image pair.
struct Comparison {
    double mse = 0;   ///< in squared data units
    double mae = 0;   ///< in data units
    double psnr = 0;  ///< dB, +inf for identical images
    double ssim = 0;  ///< in (-1, 1], 1 for identical images
};

/// Every score for every image of two batches [N, C, H, W] in the given data range.
inline std::vector<Comparison> compare(const Tensor<float>& a, const Tensor<float>& b, DataRange range,
                                       const SsimOptions& opts = {}) {
    const auto e2 = mse(a, b), e1 = mae(a, b), s = ssim(a, b, range, opts);
    std::vector<Comparison> out;
    for (std::size_t i = 0; i < e2.size(); ++i) out.push_back({e2[i], e1[i], psnr_from_mse(e2[i], range), s[i]});
    return out;
}

/// Scores of two 8-bit images of equal size and channel count, in pixel units (data range 255,
/// so MSE/MAE are in grey levels). An alpha channel is ignored. Gray vs RGB is a ShapeError:
/// convert one of them first if that comparison is meant.
inline Comparison compare_images(const Image& a, const Image& b, const SsimOptions& opts = {}) {
    const Tensor<float> ta = detail::raw_pixels(a, "compare_images: first image");
    const Tensor<float> tb = detail::raw_pixels(b, "compare_images: second image");
    GANINV_CHECK(ta.shape() == tb.shape(), ShapeError, "compare_images: a ", a.width, "x", a.height, "x", a.channels,
                 " image cannot be compared with a ", b.width, "x", b.height, "x", b.channels, " one");
    return compare(ta, tb, DataRange::uint8(), opts)[0];
}

}  // namespace ganinv::metrics
