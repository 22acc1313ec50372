/// @file ssim.hpp
/// @brief SSIM (Wang, Bovik, Sheikh, Simoncelli, IEEE TIP 2004) computed exactly as
///        scikit-image's `structural_similarity(im1, im2, gaussian_weights=True, sigma=1.5,
///        use_sample_covariance=False, data_range=R)` does, per channel and then averaged.
///
/// Semantics reproduced (scikit-image 0.19):
///  - local statistics by a Gaussian filter of sigma 1.5 truncated at 3.5 sigma: radius
///    int(3.5 * 1.5 + 0.5) = 5, an 11-tap kernel exp(-x^2 / 2 sigma^2) normalised to sum 1,
///    applied separably with scipy.ndimage's 'reflect' border (d c b a | a b c d);
///  - population (co)variances: v_x = E[x^2] - E[x]^2, v_xy = E[xy] - E[x]E[y];
///  - C1 = (K1 R)^2, C2 = (K2 R)^2 with K1 = 0.01, K2 = 0.03 and R the data range;
///  - the SSIM map is averaged after cropping the filter radius (5 px) from every side, which
///    removes every value the border handling touched;
///  - multichannel images: the per-channel means are averaged;
///  - all arithmetic in double precision (scikit-image promotes uint8 to float64).
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/metrics/pixel.hpp"

#include <cmath>
#include <vector>

namespace ganinv::metrics {

struct SsimOptions {
    double sigma = 1.5;
    double truncate = 3.5;  ///< kernel radius = int(truncate * sigma + 0.5)
    double k1 = 0.01;
    double k2 = 0.03;

    Index radius() const { return static_cast<Index>(truncate * sigma + 0.5); }
};

namespace detail {

inline std::vector<double> gaussian_kernel(const SsimOptions& o) {
    GANINV_CHECK(o.sigma > 0 && o.truncate > 0 && o.k1 >= 0 && o.k2 >= 0, ValueError,
                 "ssim: sigma and truncate must be positive, K1 and K2 non-negative");
    const Index r = o.radius();
    std::vector<double> k(static_cast<std::size_t>(2 * r + 1));
    double sum = 0;
    for (Index i = -r; i <= r; ++i) {
        const double v = std::exp(-0.5 / (o.sigma * o.sigma) * static_cast<double>(i * i));
        k[static_cast<std::size_t>(i + r)] = v;
        sum += v;
    }
    for (double& v : k) v /= sum;
    return k;
}

/// scipy.ndimage 'reflect' (half-sample symmetric) index into [0, n), repeated as needed.
inline Index reflect_index(Index i, Index n) {
    const Index period = 2 * n;
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - 1 - i;
}

/// Separable correlation of an h x w plane with `k` along rows (axis 0) then columns.
inline std::vector<double> gaussian_filter(const std::vector<double>& x, Index h, Index w, const std::vector<double>& k) {
    const Index r = static_cast<Index>(k.size() / 2);
    std::vector<double> tmp(x.size()), out(x.size());
    for (Index y = 0; y < h; ++y)
        for (Index c = 0; c < w; ++c) {
            double s = 0;
            for (Index j = -r; j <= r; ++j) s += k[static_cast<std::size_t>(j + r)] * x[static_cast<std::size_t>(reflect_index(y + j, h) * w + c)];
            tmp[static_cast<std::size_t>(y * w + c)] = s;
        }
    for (Index y = 0; y < h; ++y)
        for (Index c = 0; c < w; ++c) {
            double s = 0;
            for (Index j = -r; j <= r; ++j) s += k[static_cast<std::size_t>(j + r)] * tmp[static_cast<std::size_t>(y * w + reflect_index(c + j, w))];
            out[static_cast<std::size_t>(y * w + c)] = s;
        }
    return out;
}

/// SSIM map of one plane pair (h x w values each).
inline std::vector<double> ssim_plane(const float* a, const float* b, Index h, Index w, double range,
                                      const SsimOptions& o, const std::vector<double>& k) {
    const std::size_t n = static_cast<std::size_t>(h * w);
    std::vector<double> x(n), y(n), xx(n), yy(n), xy(n);
    for (std::size_t i = 0; i < n; ++i) {
        x[i] = a[i];
        y[i] = b[i];
        xx[i] = x[i] * x[i];
        yy[i] = y[i] * y[i];
        xy[i] = x[i] * y[i];
    }
    const auto ux = gaussian_filter(x, h, w, k), uy = gaussian_filter(y, h, w, k);
    const auto uxx = gaussian_filter(xx, h, w, k), uyy = gaussian_filter(yy, h, w, k), uxy = gaussian_filter(xy, h, w, k);
    const double c1 = (o.k1 * range) * (o.k1 * range), c2 = (o.k2 * range) * (o.k2 * range);
    std::vector<double> s(n);
    for (std::size_t i = 0; i < n; ++i) {
        const double vx = uxx[i] - ux[i] * ux[i], vy = uyy[i] - uy[i] * uy[i], vxy = uxy[i] - ux[i] * uy[i];
        const double a1 = 2 * ux[i] * uy[i] + c1, a2 = 2 * vxy + c2;
        const double b1 = ux[i] * ux[i] + uy[i] * uy[i] + c1, b2 = vx + vy + c2;
        s[i] = (a1 * a2) / (b1 * b2);
    }
    return s;
}

inline void check_ssim_input(const Tensor<float>& a, const Tensor<float>& b, DataRange range, const SsimOptions& o) {
    GANINV_CHECK(a.shape() == b.shape(), ShapeError, "ssim: images of shapes ", shape_to_string(a.shape()), " and ",
                 shape_to_string(b.shape()), " differ");
    GANINV_CHECK(a.rank() == 4 && a.numel() > 0, ShapeError, "ssim: expected a batch [N, C, H, W], got shape ",
                 shape_to_string(a.shape()));
    check_range(range, "ssim");
    const Index win = 2 * o.radius() + 1;
    GANINV_CHECK(a.dim(2) >= win && a.dim(3) >= win, ShapeError, "ssim: images of ", a.dim(2), "x", a.dim(3),
                 " are smaller than the ", win, "x", win, " window");
}

}  // namespace detail

/// The full SSIM map [N, C, H, W] (border values included; `ssim` ignores them).
inline Tensor<float> ssim_map(const Tensor<float>& a, const Tensor<float>& b, DataRange range,
                              const SsimOptions& opts = {}) {
    detail::check_ssim_input(a, b, range, opts);
    const auto k = detail::gaussian_kernel(opts);
    const Index h = a.dim(2), w = a.dim(3), planes = a.dim(0) * a.dim(1);
    Tensor<float> out(a.shape());
    for (Index p = 0; p < planes; ++p) {
        const auto s = detail::ssim_plane(a.data() + p * h * w, b.data() + p * h * w, h, w, range.value, opts, k);
        for (Index i = 0; i < h * w; ++i) out[p * h * w + i] = static_cast<float>(s[static_cast<std::size_t>(i)]);
    }
    return out;
}

/// Mean SSIM of every image of the batch: each channel's map averaged over the interior (filter
/// radius cropped), then the channels averaged.
inline std::vector<double> ssim(const Tensor<float>& a, const Tensor<float>& b, DataRange range,
                                const SsimOptions& opts = {}) {
    detail::check_ssim_input(a, b, range, opts);
    const auto k = detail::gaussian_kernel(opts);
    const Index c = a.dim(1), h = a.dim(2), w = a.dim(3), pad = opts.radius();
    std::vector<double> out;
    for (Index n = 0; n < a.dim(0); ++n) {
        double total = 0;
        for (Index ch = 0; ch < c; ++ch) {
            const Index off = (n * c + ch) * h * w;
            const auto s = detail::ssim_plane(a.data() + off, b.data() + off, h, w, range.value, opts, k);
            double sum = 0;
            for (Index y = pad; y < h - pad; ++y)
                for (Index x = pad; x < w - pad; ++x) sum += s[static_cast<std::size_t>(y * w + x)];
            total += sum / static_cast<double>((h - 2 * pad) * (w - 2 * pad));
        }
        out.push_back(total / static_cast<double>(c));
    }
    return out;
}

}  // namespace ganinv::metrics
