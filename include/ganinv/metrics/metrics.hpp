/// @file metrics.hpp
/// @brief Image-quality metrics in one include (MSE, MAE, PSNR, SSIM), plus the comparison of
///        two batches or two 8-bit images in one call. LPIPS and identity similarity live with
///        their networks (loss/); they are not part of this header.
#pragma once

#include "ganinv/io/image.hpp"
#include "ganinv/metrics/pixel.hpp"
#include "ganinv/metrics/ssim.hpp"

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
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

/// Generated images [N, C, H, W] (clamped to [-1, 1] first: what a saved picture would show) against
/// targets in [-1, 1], data range 2 — the scores the inverter and the tuner report. Images smaller
/// than the SSIM window (tiny test generators) get SSIM NaN: it is undefined there.
inline std::vector<Comparison> compare_reconstruction(const Tensor<float>& recon, const Tensor<float>& targets) {
    Tensor<float> clamped = recon;
    for (float& v : clamped.values()) v = std::fmin(1.0f, std::fmax(-1.0f, v));
    const SsimOptions ssim_opts{};
    const Index window = 2 * ssim_opts.radius() + 1;
    if (clamped.dim(2) >= window && clamped.dim(3) >= window)
        return compare(clamped, targets, DataRange::signed_unit(), ssim_opts);
    std::vector<Comparison> out;
    const auto e2 = mse(clamped, targets), e1 = mae(clamped, targets);
    for (std::size_t i = 0; i < e2.size(); ++i)
        out.push_back({e2[i], e1[i], psnr_from_mse(e2[i], DataRange::signed_unit()),
                       std::numeric_limits<double>::quiet_NaN()});
    return out;
}

/// Reports the progress of a long comparison: `done` of `total` work units (rows of all planes).
using ProgressFn = std::function<void(Index done, Index total)>;

/// Scores of two 8-bit images of equal size, in pixel units (data range 255, so MSE/MAE are in
/// grey levels). An alpha channel is ignored (RGBA vs RGB compares the colour channels). Gray vs
/// RGB is a ShapeError: convert one of them first if that comparison is meant.
///
/// Works on the 8-bit pixels in place, without a float copy of either image: MSE and MAE are
/// exact integer sums, SSIM streams rows (ssim.hpp), so an image of 64 Mpx needs no memory beyond
/// its own pixels and a few rows. `progress` (optional) is called between blocks of rows.
inline Comparison compare_images(const Image& a, const Image& b, const SsimOptions& opts = {},
                                 const ProgressFn& progress = {}) {
    expect_valid_image(a, "compare_images: first image");
    expect_valid_image(b, "compare_images: second image");
    const int ca = a.channels == 4 ? 3 : a.channels, cb = b.channels == 4 ? 3 : b.channels;
    GANINV_CHECK(ca == cb && a.width == b.width && a.height == b.height, ShapeError, "compare_images: a ", a.width,
                 "x", a.height, "x", a.channels, " image cannot be compared with a ", b.width, "x", b.height, "x",
                 b.channels, " one");
    const Index h = a.height, w = a.width, planes = ca;
    detail::check_ssim_size(h, w, opts);
    const auto k = detail::gaussian_kernel(opts);
    const Index total = planes * h;

    // 8-bit differences: the sums are integers far below 2^63, so they are exact in any order.
    std::int64_t sum_sq = 0, sum_abs = 0;
#pragma omp parallel for schedule(static) reduction(+ : sum_sq, sum_abs) if (h * w > 65536)
    for (Index y = 0; y < h; ++y) {
        const std::uint8_t* pa = a.pixels.data() + static_cast<std::size_t>(y) * a.row_bytes();
        const std::uint8_t* pb = b.pixels.data() + static_cast<std::size_t>(y) * b.row_bytes();
        for (Index x = 0; x < w; ++x)
            for (Index c = 0; c < planes; ++c) {
                const int d = static_cast<int>(pa[x * a.channels + c]) - static_cast<int>(pb[x * b.channels + c]);
                sum_sq += d * d;
                sum_abs += d < 0 ? -d : d;
            }
    }
    const double count = static_cast<double>(h) * static_cast<double>(w) * static_cast<double>(planes);
    Comparison m;
    m.mse = static_cast<double>(sum_sq) / count;
    m.mae = static_cast<double>(sum_abs) / count;
    m.psnr = psnr_from_mse(m.mse, DataRange::uint8());

    const Index pad = opts.radius();
    double total_ssim = 0;
    for (Index c = 0; c < planes; ++c) {
        const detail::PlaneReader<std::uint8_t> ra{a.pixels.data() + c, w, a.channels}, rb{b.pixels.data() + c, w, b.channels};
        total_ssim += detail::ssim_plane_mean(ra, rb, h, w, DataRange::uint8().value, opts, k, [&](Index rows_done) {
            // The cropped border rows count as done with the plane's first and last block.
            if (progress) progress(c * h + rows_done + (rows_done == h - 2 * pad ? 2 * pad : pad), total);
        });
    }
    m.ssim = total_ssim / static_cast<double>(planes);
    return m;
}

}  // namespace ganinv::metrics
