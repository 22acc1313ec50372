/// @file image_ops.hpp
/// @brief Geometry on images: resampling of float NCHW tensors (exact area averaging, Keys
///        bicubic, PIL-style antialiased Lanczos-3), cropping, gray<->RGB, and the composition of
///        8-bit images into grids and strips for reports (and their box-filtered thumbnails).
#pragma once

#include "ganinv/core/axis_weights.hpp"
#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/io/image.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <vector>

namespace ganinv {

namespace detail {

/// Keys' cubic convolution kernel with a = -0.5 (Catmull-Rom; PIL's bicubic).
inline double keys_cubic(double x) {
    constexpr double a = -0.5;
    x = std::abs(x);
    if (x <= 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    return 0.0;
}

/// Plain interpolating bicubic, align_corners = false, out-of-range taps clamped to the border.
inline AxisWeights cubic_weights(Index in, Index out) {
    AxisWeights a{in, out, {0}, {}, {}};
    const double scale = static_cast<double>(in) / static_cast<double>(out);
    for (Index o = 0; o < out; ++o) {
        const double center = (static_cast<double>(o) + 0.5) * scale - 0.5;
        const auto base = static_cast<Index>(std::floor(center));
        for (Index i = base - 1; i <= base + 2; ++i)
            a.add_tap(std::clamp<Index>(i, 0, in - 1), keys_cubic(center - static_cast<double>(i)));
        a.finish_output();
    }
    return a;
}

inline double sinc(double x) {
    if (x == 0.0) return 1.0;
    const double px = std::numbers::pi * x;
    return std::sin(px) / px;
}

/// Lanczos-3 as PIL computes it: when shrinking, the kernel is stretched by the scale so that it
/// low-passes (antialiasing); taps falling outside the image are dropped and the rest renormalised.
inline AxisWeights lanczos3_weights(Index in, Index out) {
    AxisWeights a{in, out, {0}, {}, {}};
    const double scale = static_cast<double>(in) / static_cast<double>(out);
    const double filter_scale = std::max(scale, 1.0);
    const double support = 3.0 * filter_scale;
    for (Index o = 0; o < out; ++o) {
        const double center = (static_cast<double>(o) + 0.5) * scale;
        const Index lo = std::max<Index>(static_cast<Index>(std::floor(center - support + 0.5)), 0);
        const Index hi = std::min<Index>(static_cast<Index>(std::floor(center + support + 0.5)), in);
        for (Index i = lo; i < hi; ++i) {
            const double x = (static_cast<double>(i) + 0.5 - center) / filter_scale;
            if (std::abs(x) < 3.0) a.add_tap(i, sinc(x) * sinc(x / 3.0));
        }
        if (a.source.size() == static_cast<std::size_t>(a.begin.back())) a.add_tap(std::min(lo, in - 1), 1.0);
        a.finish_output();
    }
    return a;
}

/// Throws unless `t` is a non-empty [N, C, H, W] tensor and the requested size is positive.
inline void expect_resizable(const Tensor<float>& t, Index out_h, Index out_w, const char* what) {
    GANINV_CHECK(t.rank() == 4, ShapeError, what, ": expected a [N, C, H, W] tensor, got shape ",
                 shape_to_string(t.shape()));
    GANINV_CHECK(t.dim(2) > 0 && t.dim(3) > 0, ShapeError, what, ": input has an empty image, shape ",
                 shape_to_string(t.shape()));
    GANINV_CHECK(out_h > 0, ValueError, what, ": out_h must be positive, got ", out_h);
    GANINV_CHECK(out_w > 0, ValueError, what, ": out_w must be positive, got ", out_w);
}

/// Applies the separable filter: rows first into a double buffer, then columns. The double
/// intermediate makes a factor-2 area shrink bit-identical to a directly computed 2x2 mean.
inline Tensor<float> resample(const Tensor<float>& t, const AxisWeights& wy, const AxisWeights& wx) {
    const Index planes = t.dim(0) * t.dim(1), in_h = t.dim(2), in_w = t.dim(3);
    const Index out_h = wy.out_size, out_w = wx.out_size;
    Tensor<float> out({t.dim(0), t.dim(1), out_h, out_w});
    const bool worth_threads = planes > 1 && planes * out_h * out_w > (Index{1} << 16);
    (void)worth_threads;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (worth_threads)
#endif
    for (Index p = 0; p < planes; ++p) {
        std::vector<double> rows(static_cast<std::size_t>(in_h * out_w));
        const float* src = t.data() + p * in_h * in_w;
        for (Index y = 0; y < in_h; ++y)
            for (Index x = 0; x < out_w; ++x) {
                double acc = 0.0;
                for (Index k = wx.begin[x]; k < wx.begin[x + 1]; ++k)
                    acc += wx.weight[k] * static_cast<double>(src[y * in_w + wx.source[k]]);
                rows[y * out_w + x] = acc;
            }
        float* dst = out.data() + p * out_h * out_w;
        for (Index y = 0; y < out_h; ++y)
            for (Index x = 0; x < out_w; ++x) {
                double acc = 0.0;
                for (Index k = wy.begin[y]; k < wy.begin[y + 1]; ++k)
                    acc += wy.weight[k] * rows[wy.source[k] * out_w + x];
                dst[y * out_w + x] = static_cast<float>(acc);
            }
    }
    return out;
}

}  // namespace detail

/// Box/area resampling (PIL BOX, OpenCV INTER_AREA): each output pixel is the exact
/// overlap-weighted mean of the input pixels it covers. The right filter for shrinking by any
/// factor; when enlarging it degenerates to nearest-neighbour with blended seams.
inline Tensor<float> resize_area(const Tensor<float>& t, Index out_h, Index out_w) {
    detail::expect_resizable(t, out_h, out_w, "resize_area");
    return detail::resample(t, detail::area_weights(t.dim(2), out_h), detail::area_weights(t.dim(3), out_w));
}

/// Interpolating bicubic (Keys, a = -0.5, align_corners = false, clamped borders). It does not
/// low-pass, so shrinking by more than ~2x aliases: use resize_area or resize_lanczos3 for that.
inline Tensor<float> resize_bicubic(const Tensor<float>& t, Index out_h, Index out_w) {
    detail::expect_resizable(t, out_h, out_w, "resize_bicubic");
    return detail::resample(t, detail::cubic_weights(t.dim(2), out_h), detail::cubic_weights(t.dim(3), out_w));
}

/// Lanczos-3 (PIL's LANCZOS): sharp up-sampling, and antialiased down-sampling.
inline Tensor<float> resize_lanczos3(const Tensor<float>& t, Index out_h, Index out_w) {
    detail::expect_resizable(t, out_h, out_w, "resize_lanczos3");
    return detail::resample(t, detail::lanczos3_weights(t.dim(2), out_h), detail::lanczos3_weights(t.dim(3), out_w));
}

/// Chooses per axis: area averaging where that axis shrinks (or keeps its size: an exact copy),
/// Lanczos-3 where it grows. Because the filter is separable, a 64x16 -> 32x32 resize shrinks
/// rows with the box and enlarges columns with Lanczos.
inline Tensor<float> resize(const Tensor<float>& t, Index out_h, Index out_w) {
    detail::expect_resizable(t, out_h, out_w, "resize");
    const auto pick = [](Index in, Index out) {
        return out > in ? detail::lanczos3_weights(in, out) : detail::area_weights(in, out);
    };
    return detail::resample(t, pick(t.dim(2), out_h), pick(t.dim(3), out_w));
}

/// The [top, top+h) x [left, left+w) window of every image of a [N, C, H, W] tensor.
inline Tensor<float> crop(const Tensor<float>& t, Index top, Index left, Index h, Index w) {
    GANINV_CHECK(t.rank() == 4, ShapeError, "crop: expected a [N, C, H, W] tensor, got shape ",
                 shape_to_string(t.shape()));
    GANINV_CHECK(h > 0, ValueError, "crop: h must be positive, got ", h);
    GANINV_CHECK(w > 0, ValueError, "crop: w must be positive, got ", w);
    GANINV_CHECK(top >= 0 && top + h <= t.dim(2), ShapeError, "crop: rows [", top, ", ", top + h,
                 ") outside the image height ", t.dim(2));
    GANINV_CHECK(left >= 0 && left + w <= t.dim(3), ShapeError, "crop: columns [", left, ", ", left + w,
                 ") outside the image width ", t.dim(3));
    const Index planes = t.dim(0) * t.dim(1), in_h = t.dim(2), in_w = t.dim(3);
    Tensor<float> out({t.dim(0), t.dim(1), h, w});
    for (Index p = 0; p < planes; ++p)
        for (Index y = 0; y < h; ++y) {
            const float* row = t.data() + (p * in_h + top + y) * in_w + left;
            std::copy(row, row + w, out.data() + (p * h + y) * w);
        }
    return out;
}

/// The centred h x w window; when the margin is odd the extra pixel is left at the bottom/right.
inline Tensor<float> center_crop(const Tensor<float>& t, Index h, Index w) {
    GANINV_CHECK(t.rank() == 4, ShapeError, "center_crop: expected a [N, C, H, W] tensor, got shape ",
                 shape_to_string(t.shape()));
    GANINV_CHECK(h > 0 && w > 0, ValueError, "center_crop: size must be positive, got h = ", h, ", w = ", w);
    GANINV_CHECK(h <= t.dim(2) && w <= t.dim(3), ShapeError, "center_crop: crop ", h, "x", w,
                 " (h x w) larger than the image ", t.dim(2), "x", t.dim(3));
    return crop(t, (t.dim(2) - h) / 2, (t.dim(3) - w) / 2, h, w);
}

/// The largest centred square.
inline Tensor<float> center_crop_square(const Tensor<float>& t) {
    GANINV_CHECK(t.rank() == 4, ShapeError, "center_crop_square: expected a [N, C, H, W] tensor, got shape ",
                 shape_to_string(t.shape()));
    const Index side = std::min(t.dim(2), t.dim(3));
    return center_crop(t, side, side);
}

/// 1 <-> 3 channels: RGB->gray by BT.601 luma (0.299, 0.587, 0.114), gray->RGB by replication.
inline Tensor<float> to_channels(const Tensor<float>& t, Index channels) {
    GANINV_CHECK(t.rank() == 4, ShapeError, "to_channels: expected a [N, C, H, W] tensor, got shape ",
                 shape_to_string(t.shape()));
    GANINV_CHECK(t.dim(1) == 1 || t.dim(1) == 3, ShapeError, "to_channels: input must have 1 or 3 channels, shape ",
                 shape_to_string(t.shape()));
    GANINV_CHECK(channels == 1 || channels == 3, ValueError, "to_channels: channels must be 1 or 3, got ", channels);
    if (channels == t.dim(1)) return t;
    const Index n = t.dim(0), plane = t.dim(2) * t.dim(3);
    Tensor<float> out({n, channels, t.dim(2), t.dim(3)});
    for (Index b = 0; b < n; ++b) {
        const float* src = t.data() + b * t.dim(1) * plane;
        float* dst = out.data() + b * channels * plane;
        for (Index i = 0; i < plane; ++i) {
            if (channels == 3) {
                dst[i] = dst[plane + i] = dst[2 * plane + i] = src[i];
            } else {
                dst[i] = static_cast<float>(detail::kLumaR * src[i] + detail::kLumaG * src[plane + i] +
                                            detail::kLumaB * src[2 * plane + i]);
            }
        }
    }
    return out;
}

// ---------------------------------------------------------------- 8-bit composition

namespace detail {

/// The channel count a composition of `images` uses: their common count, or 3 when gray and RGB
/// are mixed. Also checks every image and the empty list.
inline int common_channels(const std::vector<Image>& images, const char* what) {
    GANINV_CHECK(!images.empty(), ValueError, what, ": no images given");
    bool all_same = true, only_gray_rgb = true;
    for (std::size_t i = 0; i < images.size(); ++i) {
        expect_valid_image(images[i], concat(what, ": image ", i));
        all_same = all_same && images[i].channels == images[0].channels;
        only_gray_rgb = only_gray_rgb && images[i].channels != 4;
    }
    GANINV_CHECK(all_same || only_gray_rgb, ShapeError, what,
                 ": images mix RGBA with other channel counts; convert them with convert_channels first");
    return all_same ? images[0].channels : 3;
}

/// Copies `src` (converted to dst's channel count) into `dst` with its top-left corner at (x, y).
inline void blit(Image& dst, const Image& src, int x, int y) {
    const Image converted = src.channels == dst.channels ? Image{} : convert_channels(src, dst.channels);
    const Image& s = src.channels == dst.channels ? src : converted;
    for (int row = 0; row < s.height; ++row)
        std::copy_n(&s.pixels[s.offset(0, row)], s.row_bytes(), &dst.pixels[dst.offset(x, y + row)]);
}

/// A canvas filled with `background`; RGBA canvases are opaque.
inline Image make_canvas(int width, int height, int channels, std::uint8_t background) {
    Image canvas = make_image(width, height, channels, background);
    if (channels == 4)
        for (std::size_t i = 3; i < canvas.pixels.size(); i += 4) canvas.pixels[i] = 255;
    return canvas;
}

}  // namespace detail

/// Adds a `border`-pixel frame of `value` on every side (e.g. 28x28 MNIST -> 32x32 with border 2).
inline Image pad_image(const Image& img, int border, std::uint8_t value = 0) {
    expect_valid_image(img, "pad_image");
    GANINV_CHECK(border >= 0, ValueError, "pad_image: border must be >= 0, got ", border);
    Image out = detail::make_canvas(img.width + 2 * border, img.height + 2 * border, img.channels, value);
    detail::blit(out, img, border, border);
    return out;
}

/// Tiles same-sized images row by row, `columns` per row, with `padding` pixels of `background`
/// between and around them (torchvision's make_grid layout). Gray and RGB mixed give RGB.
inline Image make_grid(const std::vector<Image>& images, int columns, int padding, std::uint8_t background = 0) {
    const int channels = detail::common_channels(images, "make_grid");
    GANINV_CHECK(columns > 0, ValueError, "make_grid: columns must be positive, got ", columns);
    GANINV_CHECK(padding >= 0, ValueError, "make_grid: padding must be >= 0, got ", padding);
    const int w = images[0].width, h = images[0].height;
    for (std::size_t i = 1; i < images.size(); ++i)
        GANINV_CHECK(images[i].width == w && images[i].height == h, ShapeError, "make_grid: image ", i, " is ",
                     images[i].width, "x", images[i].height, ", image 0 is ", w, "x", h);
    const int count = static_cast<int>(images.size());
    const int cols = std::min(columns, count);
    const int rows = (count + cols - 1) / cols;
    Image grid = detail::make_canvas(cols * (w + padding) + padding, rows * (h + padding) + padding, channels,
                                     background);
    for (int i = 0; i < count; ++i)
        detail::blit(grid, images[static_cast<std::size_t>(i)], padding + (i % cols) * (w + padding),
                     padding + (i / cols) * (h + padding));
    return grid;
}

/// Places images of equal height side by side with `padding` columns of `background` between them
/// (no outer border), e.g. target | reconstruction | difference.
inline Image hconcat(const std::vector<Image>& images, int padding, std::uint8_t background = 255) {
    const int channels = detail::common_channels(images, "hconcat");
    GANINV_CHECK(padding >= 0, ValueError, "hconcat: padding must be >= 0, got ", padding);
    const int h = images[0].height;
    int total_width = 0;
    for (std::size_t i = 0; i < images.size(); ++i) {
        GANINV_CHECK(images[i].height == h, ShapeError, "hconcat: image ", i, " has height ", images[i].height,
                     ", image 0 has height ", h);
        total_width += images[i].width + (i ? padding : 0);
    }
    Image strip = detail::make_canvas(total_width, h, channels, background);
    int x = 0;
    for (const Image& img : images) {
        detail::blit(strip, img, x, 0);
        x += img.width + padding;
    }
    return strip;
}

/// Shrinks an 8-bit image by an integer `factor` per axis: each output pixel is the rounded mean
/// of its factor x factor block (box filter: no aliasing of fine detail into moire). The last
/// row/column of blocks may be partial (a width not divisible by `factor`); their mean is over the
/// pixels present, so the output is ceil(width / factor) x ceil(height / factor).
inline Image shrink_image(const Image& img, int factor) {
    expect_valid_image(img, "shrink_image");
    GANINV_CHECK(factor >= 1, ValueError, "shrink_image: factor must be >= 1, got ", factor);
    if (factor == 1) return img;
    const int w = (img.width + factor - 1) / factor, h = (img.height + factor - 1) / factor, c = img.channels;
    Image out = make_image(w, h, c);
    std::vector<std::uint32_t> sum(static_cast<std::size_t>(w) * static_cast<std::size_t>(c));
    for (int oy = 0; oy < h; ++oy) {
        std::fill(sum.begin(), sum.end(), 0u);
        const int y1 = std::min(img.height, (oy + 1) * factor), rows = y1 - oy * factor;
        for (int y = oy * factor; y < y1; ++y)
            for (int x = 0; x < img.width; ++x)
                for (int ch = 0; ch < c; ++ch) sum[static_cast<std::size_t>((x / factor) * c + ch)] += img.pixels[img.offset(x, y, ch)];
        for (int ox = 0; ox < w; ++ox) {
            const int cols = std::min(img.width, (ox + 1) * factor) - ox * factor;
            const std::uint32_t count = static_cast<std::uint32_t>(rows * cols);
            for (int ch = 0; ch < c; ++ch)
                out.pixels[out.offset(ox, oy, ch)] =
                    static_cast<std::uint8_t>((sum[static_cast<std::size_t>(ox * c + ch)] + count / 2) / count);
        }
    }
    return out;
}

}  // namespace ganinv
