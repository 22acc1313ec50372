/// @file plot.hpp
/// @brief Line charts (e.g. the loss curves of an inversion) drawn straight into an RGB `Image`,
///        with axes, tick marks, a legend and a built-in 5x7 bitmap font, so reports need no
///        plotting or font library.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/io/image.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ganinv {

using Rgb = std::array<std::uint8_t, 3>;

/// One series: values[i] is plotted at step i.
struct Curve {
    std::string label;
    std::vector<double> values;
    Rgb color{31, 119, 180};
};

struct PlotOptions {
    int width = 640, height = 400;
    bool log_y = true;                   ///< losses span decades; non-positive values are then skipped
    std::optional<double> y_min, y_max;  ///< fixed axis range; by default the data's range
    std::string title;
    std::string x_label = "step";
    Rgb background{255, 255, 255};
    Rgb axis_color{0, 0, 0};
    Rgb grid_color{225, 225, 225};
    int line_width = 2;
    int font_scale = 0;  ///< pixels per font dot; 0 picks one from the image size
    bool legend = true;
};

/// A distinct colour for curve i (the matplotlib "tab10" cycle).
inline Rgb palette_color(std::size_t i) {
    static constexpr std::array<Rgb, 10> colors{{{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40},
                                                 {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                                 {188, 189, 34}, {23, 190, 207}}};
    return colors[i % colors.size()];
}

namespace detail {

/// 5x7 glyph: seven rows, bit 4 is the leftmost column.
struct Glyph {
    char ch;
    std::array<std::uint8_t, 7> rows;
};

// Lower-case letters are drawn with the upper-case glyphs, which keeps the table small.
inline constexpr std::array<Glyph, 54> kFont{{
    {' ', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}}, {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}},
    {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}}, {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}},
    {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}}, {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}},
    {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}}, {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}},
    {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}}, {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}},
    {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}}, {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}}, {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}},
    {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}}, {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}},
    {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}}, {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}},
    {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}}, {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}}, {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}}, {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}},
    {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}}, {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}}, {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}},
    {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}}, {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}},
    {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}}, {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}}, {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}},
    {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}}, {'Y', {0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04}},
    {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}}, {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}},
    {'-', {0x00, 0x00, 0x00, 0x0E, 0x00, 0x00, 0x00}}, {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}},
    {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}}, {'/', {0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10}},
    {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}}, {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}}, {',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}},
    {'=', {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}}, {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {'*', {0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00}}, {'[', {0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E}},
    {']', {0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E}}, {'<', {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}},
    {'>', {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}}, {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}},
}};
static_assert(kFont.back().ch == '?', "glyph_rows falls back to the last glyph, which must be '?'");

inline const std::array<std::uint8_t, 7>& glyph_rows(char c) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    for (const Glyph& g : kFont)
        if (g.ch == c) return g.rows;
    return kFont.back().rows;  // '?' for anything the font lacks
}

inline void put_pixel(Image& img, int x, int y, const Rgb& color) {
    if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
    for (int c = 0; c < 3; ++c) img.at(x, y, c) = color[static_cast<std::size_t>(c)];
}

inline void fill_rect(Image& img, int x0, int y0, int x1, int y1, const Rgb& color) {  // inclusive corners
    for (int y = std::max(y0, 0); y <= std::min(y1, img.height - 1); ++y)
        for (int x = std::max(x0, 0); x <= std::min(x1, img.width - 1); ++x) put_pixel(img, x, y, color);
}

/// Clip rectangle (inclusive) for curve drawing, so that a fixed y range cuts lines at the frame.
struct ClipRect {
    int x0, y0, x1, y1;
};

/// Bresenham line stamped with a width x width square at every step.
inline void draw_line(Image& img, int x0, int y0, int x1, int y1, int width, const Rgb& color, const ClipRect& clip) {
    const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
    const int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    const int before = (width - 1) / 2, after = width / 2;
    for (;;) {
        fill_rect(img, std::max(x0 - before, clip.x0), std::max(y0 - before, clip.y0), std::min(x0 + after, clip.x1),
                  std::min(y0 + after, clip.y1), color);
        if (x0 == x1 && y0 == y1) break;
        const int e2 = 2 * err;
        if (e2 >= dy) {
            err += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            err += dx;
            y0 += sy;
        }
    }
}

/// Draws the part of the segment (ax, ay)-(bx, by) inside `clip` (Liang-Barsky clipping first, so
/// that a point far outside a fixed y range neither overflows int nor bends the visible part).
inline void draw_segment(Image& img, double ax, double ay, double bx, double by, int width, const Rgb& color,
                         const ClipRect& clip) {
    double t0 = 0.0, t1 = 1.0;
    const double dx = bx - ax, dy = by - ay;
    const double p[4] = {-dx, dx, -dy, dy};
    const double q[4] = {ax - clip.x0, clip.x1 - ax, ay - clip.y0, clip.y1 - ay};
    for (int k = 0; k < 4; ++k) {
        if (p[k] == 0.0) {
            if (q[k] < 0.0) return;  // parallel to this edge and outside it
            continue;
        }
        const double t = q[k] / p[k];
        if (p[k] < 0.0) {
            t0 = std::max(t0, t);
        } else {
            t1 = std::min(t1, t);
        }
    }
    if (t0 > t1) return;
    draw_line(img, static_cast<int>(std::lround(ax + t0 * dx)), static_cast<int>(std::lround(ay + t0 * dy)),
              static_cast<int>(std::lround(ax + t1 * dx)), static_cast<int>(std::lround(ay + t1 * dy)), width, color,
              clip);
}

/// A round tick spacing (1, 2 or 5 times a power of ten) giving about `target` intervals over `span`.
inline double nice_step(double span, int target) {
    const double raw = span / target;
    const double decade = std::pow(10.0, std::floor(std::log10(raw)));
    for (const double m : {1.0, 2.0, 5.0})
        if (m * decade >= raw) return m * decade;
    return 10.0 * decade;
}

/// "1.23E-04", "0.5", "1.2E+03": three significant digits in the font's alphabet.
inline std::string format_tick(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3G", v);
    return buf;
}

}  // namespace detail

/// Width in pixels of `text` drawn with draw_text at `scale`.
inline int text_width(std::string_view text, int scale) {
    return text.empty() ? 0 : static_cast<int>(text.size()) * 6 * scale - scale;
}

/// Draws `text` with the built-in 5x7 font, top-left corner at (x, y), each dot scale x scale
/// pixels; characters outside the image are clipped. Lower case is drawn as upper case.
inline void draw_text(Image& img, int x, int y, std::string_view text, const Rgb& color, int scale = 1) {
    GANINV_CHECK(img.channels == 3, ShapeError, "draw_text: needs an RGB image, got ", img.channels, " channels");
    GANINV_CHECK(scale > 0, ValueError, "draw_text: scale must be positive, got ", scale);
    for (const char ch : text) {
        const auto& rows = detail::glyph_rows(ch);
        for (int r = 0; r < 7; ++r)
            for (int c = 0; c < 5; ++c)
                if (rows[static_cast<std::size_t>(r)] & (0x10 >> c))
                    detail::fill_rect(img, x + c * scale, y + r * scale, x + (c + 1) * scale - 1,
                                      y + (r + 1) * scale - 1, color);
        x += 6 * scale;
    }
}

/// Plots every curve against its step index. Non-finite values (and, on a log axis, values <= 0)
/// are skipped and break the line; a lone point is drawn as a dot. Without any drawable value the
/// frame says "no data".
inline Image plot_curves(const std::vector<Curve>& curves, const PlotOptions& options = {}) {
    GANINV_CHECK(options.width >= 96 && options.width <= 16384, ValueError,
                 "plot_curves: PlotOptions.width must be in [96, 16384], got ", options.width);
    GANINV_CHECK(options.height >= 64 && options.height <= 16384, ValueError,
                 "plot_curves: PlotOptions.height must be in [64, 16384], got ", options.height);
    GANINV_CHECK(options.line_width >= 1 && options.line_width <= 32, ValueError,
                 "plot_curves: PlotOptions.line_width must be in [1, 32], got ", options.line_width);
    GANINV_CHECK(options.font_scale >= 0 && options.font_scale <= 16, ValueError,
                 "plot_curves: PlotOptions.font_scale must be in [0, 16], got ", options.font_scale);
    for (const auto* bound : {&options.y_min, &options.y_max})
        if (*bound)
            GANINV_CHECK(std::isfinite(**bound) && (!options.log_y || **bound > 0.0), ValueError,
                         "plot_curves: PlotOptions.", bound == &options.y_min ? "y_min" : "y_max", " = ", **bound,
                         options.log_y ? " must be finite and positive on a log axis" : " must be finite");
    if (options.y_min && options.y_max)
        GANINV_CHECK(*options.y_min < *options.y_max, ValueError, "plot_curves: PlotOptions.y_min (", *options.y_min,
                     ") must be below y_max (", *options.y_max, ")");

    const bool log_y = options.log_y;
    const auto drawable = [log_y](double v) { return std::isfinite(v) && (!log_y || v > 0.0); };
    const auto transform = [log_y](double v) { return log_y ? std::log10(v) : v; };

    // ---- data range (in transformed units)
    std::size_t steps = 0;
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (const Curve& curve : curves) {
        steps = std::max(steps, curve.values.size());
        for (const double v : curve.values)
            if (drawable(v)) {
                lo = std::min(lo, transform(v));
                hi = std::max(hi, transform(v));
            }
    }
    const bool has_data = lo <= hi;
    if (has_data) {
        if (hi == lo) {  // a flat curve: open a window around it
            const double half = log_y ? 0.1 : (lo == 0.0 ? 1.0 : 0.05 * std::abs(lo));
            lo -= half;
            hi += half;
        } else {  // a small margin keeps the extremes off the frame
            const double margin = 0.04 * (hi - lo);
            lo -= margin;
            hi += margin;
        }
    }
    if (options.y_min) lo = transform(*options.y_min);
    if (options.y_max) hi = transform(*options.y_max);
    if (lo >= hi) hi = lo + 1.0;  // only one fixed bound given, on the wrong side of the data
    const bool has_range = has_data || (options.y_min && options.y_max);

    // ---- layout
    const int s = options.font_scale > 0 ? options.font_scale : std::max(1, std::min(options.width, options.height) / 300);
    const int char_h = 7 * s, tick = 4 * s, gap = 3 * s;
    std::vector<double> y_ticks;  // transformed units; the ends first so they win label collisions
    if (has_range) {
        y_ticks = {lo, hi};
        if (log_y && std::floor(hi) - std::ceil(lo) >= 0.0 && hi - lo >= 1.0) {
            for (double d = std::ceil(lo); d <= hi; d += 1.0) y_ticks.push_back(d);
        } else {
            if (log_y) {  // less than a decade: evenly spaced in log space
                for (int k = 1; k < 4; ++k) y_ticks.push_back(lo + (hi - lo) * k / 4.0);
            } else {  // round values (0.05, 0.1, ...) between the labelled ends
                const double step = detail::nice_step(hi - lo, 5);
                for (double v = std::floor(lo / step + 1.0) * step; v < hi; v += step)
                    if (std::abs(v) < 1e-9 * step) {
                        y_ticks.push_back(0.0);  // avoid labels like "-1.39E-17"
                    } else {
                        y_ticks.push_back(v);
                    }
            }
        }
    }
    const auto y_label = [&](double t) { return detail::format_tick(log_y ? std::pow(10.0, t) : t); };
    int y_label_width = 0;
    for (const double t : y_ticks) y_label_width = std::max(y_label_width, text_width(y_label(t), s));

    const int left = gap + y_label_width + gap + tick;
    const int top = (options.title.empty() ? 0 : char_h + 2 * gap) + char_h / 2 + gap;
    const int bottom = tick + gap + char_h + (options.x_label.empty() ? 0 : gap + char_h) + gap;
    const int right = std::max(text_width(std::to_string(steps ? steps - 1 : 0), s) / 2 + gap, 4 * gap);
    const int x0 = left, x1 = options.width - 1 - right, y0 = top, y1 = options.height - 1 - bottom;
    GANINV_CHECK(x1 - x0 >= 16 && y1 - y0 >= 16, ValueError, "plot_curves: PlotOptions.width x height = ",
                 options.width, "x", options.height, " leaves no room for the plot at font scale ", s);

    Image img = make_image(options.width, options.height, 3);
    detail::fill_rect(img, 0, 0, img.width - 1, img.height - 1, options.background);
    if (!options.title.empty())
        draw_text(img, (options.width - text_width(options.title, s)) / 2, gap, options.title, options.axis_color, s);

    // Curves use the unrounded coordinates (clipped before rasterising); axes round them.
    const auto to_y = [&](double t) { return y1 - (t - lo) / (hi - lo) * (y1 - y0); };
    const double last_step = steps > 1 ? static_cast<double>(steps - 1) : 1.0;
    // A single step sits in the middle rather than on the frame.
    const auto to_x = [&](double step) { return steps > 1 ? x0 + step / last_step * (x1 - x0) : 0.5 * (x0 + x1); };
    const auto to_px_y = [&](double t) { return static_cast<int>(std::lround(to_y(t))); };
    const auto to_px_x = [&](double step) { return static_cast<int>(std::lround(to_x(step))); };

    // ---- y ticks, grid lines and labels (a label is dropped where it would overlap another)
    std::vector<int> labelled_rows;
    for (const double t : y_ticks) {
        const int py = to_px_y(t);
        detail::fill_rect(img, x0 + 1, py, x1 - 1, py, options.grid_color);
        detail::fill_rect(img, x0 - tick, py, x0 - 1, py, options.axis_color);
        const bool overlaps = std::any_of(labelled_rows.begin(), labelled_rows.end(),
                                          [&](int row) { return std::abs(row - py) < char_h + s; });
        if (overlaps) continue;
        labelled_rows.push_back(py);
        const std::string text = y_label(t);
        draw_text(img, x0 - tick - gap - text_width(text, s), py - char_h / 2, text, options.axis_color, s);
    }

    // ---- x ticks and labels: the step range, plus interior steps where they fit
    std::vector<int> labelled_cols;
    const std::size_t last = steps ? steps - 1 : 0;
    std::vector<std::size_t> x_ticks{0, last};
    if (last >= 2) {
        const auto step = static_cast<std::size_t>(std::max(1.0, detail::nice_step(static_cast<double>(last), 4)));
        for (std::size_t v = step; v < last; v += step) x_ticks.push_back(v);
    }
    for (const std::size_t step : x_ticks) {
        const int px = to_px_x(static_cast<double>(step));
        detail::fill_rect(img, px, y1 + 1, px, y1 + tick, options.axis_color);
        const std::string text = std::to_string(step);
        const int half = text_width(text, s) / 2;
        const bool overlaps = std::any_of(labelled_cols.begin(), labelled_cols.end(), [&](int col) {
            return std::abs(col - px) < half + text_width(std::to_string(last), s) / 2 + 3 * gap;
        });
        if (overlaps) continue;
        labelled_cols.push_back(px);
        draw_text(img, px - half, y1 + tick + gap, text, options.axis_color, s);
    }
    if (!options.x_label.empty())
        draw_text(img, (x0 + x1 - text_width(options.x_label, s)) / 2, y1 + tick + 2 * gap + char_h, options.x_label,
                  options.axis_color, s);

    // ---- curves, clipped to the inside of the frame
    const detail::ClipRect clip{x0 + 1, y0 + 1, x1 - 1, y1 - 1};
    bool drew_anything = false;
    for (const Curve& curve : curves) {
        for (std::size_t i = 0; i < curve.values.size(); ++i) {
            if (!drawable(curve.values[i])) continue;
            const double px = to_x(static_cast<double>(i)), py = to_y(transform(curve.values[i]));
            const bool prev_ok = i > 0 && drawable(curve.values[i - 1]);
            const bool next_ok = i + 1 < curve.values.size() && drawable(curve.values[i + 1]);
            if (prev_ok) {
                detail::draw_segment(img, to_x(static_cast<double>(i - 1)), to_y(transform(curve.values[i - 1])), px,
                                     py, options.line_width, curve.color, clip);
            } else if (!next_ok) {  // an isolated point: a dot, clipped pixel by pixel
                const double limit = 4.0 * (options.width + options.height);  // keeps lround in int range
                const int dot_x = static_cast<int>(std::lround(std::clamp(px, -limit, limit)));
                const int dot_y = static_cast<int>(std::lround(std::clamp(py, -limit, limit)));
                detail::draw_line(img, dot_x, dot_y, dot_x, dot_y, options.line_width + 2, curve.color, clip);
            }
            drew_anything = true;
        }
    }
    if (!drew_anything) {
        const std::string text = "no data";
        draw_text(img, (x0 + x1 - text_width(text, s)) / 2, (y0 + y1 - char_h) / 2, text, options.axis_color, s);
    }

    // ---- frame last, so that curves touching the range ends do not hide it
    detail::fill_rect(img, x0, y0, x1, y0, options.axis_color);
    detail::fill_rect(img, x0, y1, x1, y1, options.axis_color);
    detail::fill_rect(img, x0, y0, x0, y1, options.axis_color);
    detail::fill_rect(img, x1, y0, x1, y1, options.axis_color);

    // ---- legend in the top-right corner of the frame
    int label_width = 0, entries = 0;
    for (const Curve& curve : curves)
        if (!curve.label.empty()) {
            label_width = std::max(label_width, text_width(curve.label, s));
            ++entries;
        }
    if (options.legend && entries > 0) {
        const int swatch = 12 * s, row_h = char_h + 2 * s;
        const int box_w = gap + swatch + gap + label_width + gap, box_h = gap + entries * row_h;
        const int bx1 = x1 - gap, bx0 = bx1 - box_w, by0 = y0 + gap, by1 = by0 + box_h;
        detail::fill_rect(img, bx0, by0, bx1, by1, options.background);
        detail::fill_rect(img, bx0, by0, bx1, by0, options.grid_color);
        detail::fill_rect(img, bx0, by1, bx1, by1, options.grid_color);
        detail::fill_rect(img, bx0, by0, bx0, by1, options.grid_color);
        detail::fill_rect(img, bx1, by0, bx1, by1, options.grid_color);
        int row_y = by0 + gap;
        for (const Curve& curve : curves) {
            if (curve.label.empty()) continue;
            const int mid = row_y + char_h / 2;
            detail::draw_line(img, bx0 + gap, mid, bx0 + gap + swatch, mid, options.line_width, curve.color,
                              {0, 0, img.width - 1, img.height - 1});
            draw_text(img, bx0 + 2 * gap + swatch, row_y, curve.label, options.axis_color, s);
            row_y += row_h;
        }
    }
    return img;
}

}  // namespace ganinv
