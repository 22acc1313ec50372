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
///
/// The map is streamed row by row (detail::ssim_rows): a few rows of doubles per thread instead
/// of five full-size double planes, so an 8000x8000 image costs no more than its own pixels.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/metrics/pixel.hpp"

#include <algorithm>
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

/// One plane of an image read as doubles: element (y, x) is data[(y * width + x) * step], so the
/// same code reads a planar float tensor (step 1) and one channel of interleaved 8-bit pixels
/// (step = channels) without converting the whole image first.
template <class T>
struct PlaneReader {
    const T* data;
    Index width;
    Index step;
    double operator()(Index y, Index x) const { return static_cast<double>(data[(y * width + x) * step]); }
};

/// Rows [y0, y1) of the SSIM map of one plane pair (h x w), streamed: each output row reads the
/// 2r + 1 input rows around it once (Gaussian along rows, axis 0, then along columns, as
/// scipy.ndimage.gaussian_filter does) and keeps 11 rows of w doubles per thread, so memory does
/// not grow with the image height. `sink(y, row)` receives each finished row (w values); it is
/// called from several threads at once, for distinct rows.
template <class ReaderA, class ReaderB, class Sink>
void ssim_rows(const ReaderA& a, const ReaderB& b, Index h, Index w, double range, const SsimOptions& o,
               const std::vector<double>& k, Index y0, Index y1, Sink&& sink) {
    const Index r = static_cast<Index>(k.size() / 2), taps = static_cast<Index>(k.size());
    const auto padded = static_cast<std::size_t>(w + 2 * r), width = static_cast<std::size_t>(w);
    const double c1 = (o.k1 * range) * (o.k1 * range), c2 = (o.k2 * range) * (o.k2 * range);
#pragma omp parallel if ((y1 - y0) * w > 65536)
    {
        // m[q]: moment q (x, y, xx, yy, xy) after the row filter, in a row padded by reflection so
        // that the column filter needs no index checks; u[q]: after both filters.
        std::vector<std::vector<double>> m(5, std::vector<double>(padded)), u(5, std::vector<double>(width));
        std::vector<double> out(width);
#pragma omp for schedule(static)
        for (Index y = y0; y < y1; ++y) {
            for (auto& v : m) std::fill(v.begin(), v.end(), 0.0);
            // Loops over x inside the taps: every sum still adds its taps in order, and the inner
            // loop runs along a row, where the compiler can vectorise it.
            for (Index t = 0; t < taps; ++t) {
                const Index row = reflect_index(y + t - r, h);
                const double kt = k[static_cast<std::size_t>(t)];
                double *mx = m[0].data() + r, *my = m[1].data() + r, *mxx = m[2].data() + r, *myy = m[3].data() + r,
                       *mxy = m[4].data() + r;
                for (Index x = 0; x < w; ++x) {
                    const double p = a(row, x), q = b(row, x);
                    mx[x] += kt * p;
                    my[x] += kt * q;
                    mxx[x] += kt * (p * p);
                    myy[x] += kt * (q * q);
                    mxy[x] += kt * (p * q);
                }
            }
            for (auto& v : m)
                for (Index i = 0; i < r; ++i) {
                    v[static_cast<std::size_t>(i)] = v[static_cast<std::size_t>(r + reflect_index(i - r, w))];
                    v[static_cast<std::size_t>(r + w + i)] = v[static_cast<std::size_t>(r + reflect_index(w + i, w))];
                }
            for (std::size_t q = 0; q < 5; ++q) {
                double* acc = u[q].data();
                const double* src = m[q].data();
                std::fill(acc, acc + w, 0.0);
                for (Index t = 0; t < taps; ++t) {
                    const double kt = k[static_cast<std::size_t>(t)];
                    for (Index x = 0; x < w; ++x) acc[x] += kt * src[x + t];
                }
            }
            for (std::size_t x = 0; x < width; ++x) {
                const double ux = u[0][x], uy = u[1][x];
                const double vx = u[2][x] - ux * ux, vy = u[3][x] - uy * uy, vxy = u[4][x] - ux * uy;
                const double a1 = 2 * ux * uy + c1, a2 = 2 * vxy + c2;
                const double b1 = ux * ux + uy * uy + c1, b2 = vx + vy + c2;
                out[x] = (a1 * a2) / (b1 * b2);
            }
            sink(y, static_cast<const double*>(out.data()));
        }
    }
}

/// Mean of one plane pair's SSIM map over the interior (filter radius cropped from every side),
/// in blocks of rows; `after_block(rows_done)` runs between blocks (progress reports). The row
/// sums are added in row order, so the result does not depend on the number of threads.
template <class ReaderA, class ReaderB, class AfterBlock>
double ssim_plane_mean(const ReaderA& a, const ReaderB& b, Index h, Index w, double range, const SsimOptions& o,
                       const std::vector<double>& k, AfterBlock&& after_block) {
    const Index pad = o.radius(), block = 256;
    std::vector<double> row_sum(static_cast<std::size_t>(h), 0.0);
    for (Index y0 = pad; y0 < h - pad; y0 += block) {
        const Index y1 = std::min(h - pad, y0 + block);
        ssim_rows(a, b, h, w, range, o, k, y0, y1, [&](Index y, const double* s) {
            double sum = 0;
            for (Index x = pad; x < w - pad; ++x) sum += s[x];
            row_sum[static_cast<std::size_t>(y)] = sum;
        });
        after_block(y1 - pad);
    }
    double sum = 0;
    for (double v : row_sum) sum += v;
    return sum / static_cast<double>((h - 2 * pad) * (w - 2 * pad));
}

inline void check_ssim_size(Index h, Index w, const SsimOptions& o) {
    const Index win = 2 * o.radius() + 1;
    GANINV_CHECK(h >= win && w >= win, ShapeError, "ssim: images of ", h, "x", w, " are smaller than the ", win, "x",
                 win, " window");
}

inline void check_ssim_input(const Tensor<float>& a, const Tensor<float>& b, DataRange range, const SsimOptions& o) {
    GANINV_CHECK(a.shape() == b.shape(), ShapeError, "ssim: images of shapes ", shape_to_string(a.shape()), " and ",
                 shape_to_string(b.shape()), " differ");
    GANINV_CHECK(a.rank() == 4 && a.numel() > 0, ShapeError, "ssim: expected a batch [N, C, H, W], got shape ",
                 shape_to_string(a.shape()));
    check_range(range, "ssim");
    check_ssim_size(a.dim(2), a.dim(3), o);
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
        float* dst = out.data() + p * h * w;
        detail::ssim_rows(detail::PlaneReader<float>{a.data() + p * h * w, w, 1},
                          detail::PlaneReader<float>{b.data() + p * h * w, w, 1}, h, w, range.value, opts, k, 0, h,
                          [&](Index y, const double* s) {
                              for (Index x = 0; x < w; ++x) dst[y * w + x] = static_cast<float>(s[x]);
                          });
    }
    return out;
}

/// Mean SSIM of every image of the batch: each channel's map averaged over the interior (filter
/// radius cropped), then the channels averaged.
inline std::vector<double> ssim(const Tensor<float>& a, const Tensor<float>& b, DataRange range,
                                const SsimOptions& opts = {}) {
    detail::check_ssim_input(a, b, range, opts);
    const auto k = detail::gaussian_kernel(opts);
    const Index c = a.dim(1), h = a.dim(2), w = a.dim(3);
    std::vector<double> out;
    for (Index n = 0; n < a.dim(0); ++n) {
        double total = 0;
        for (Index ch = 0; ch < c; ++ch) {
            const Index off = (n * c + ch) * h * w;
            total += detail::ssim_plane_mean(detail::PlaneReader<float>{a.data() + off, w, 1},
                                             detail::PlaneReader<float>{b.data() + off, w, 1}, h, w, range.value,
                                             opts, k, [](Index) {});
        }
        out.push_back(total / static_cast<double>(c));
    }
    return out;
}

}  // namespace ganinv::metrics
