/// @file restore_support.hpp
/// @brief The parts of `ganinv restore` around the inverter: the three tasks' forward models
///        (hole masks, area down-sampling, RGB->gray) as losses and as operations on images, the
///        naive baselines the results are compared with, and the scores.
#pragma once

#include "common.hpp"

#include <ganinv/backend/cpu.hpp>
#include <ganinv/core/rng.hpp>
#include <ganinv/io/image.hpp>
#include <ganinv/io/image_ops.hpp>
#include <ganinv/loss/any_loss.hpp>
#include <ganinv/loss/degraded.hpp>
#include <ganinv/loss/masked.hpp>
#include <ganinv/loss/pixel.hpp>
#include <ganinv/metrics/metrics.hpp>

#include <cmath>
#include <limits>

namespace ganinv::cli::restore {

enum class Task { inpaint, superres, colorize };

inline Task parse_task(const std::string& s) {
    if (s == "inpaint") return Task::inpaint;
    if (s == "superres") return Task::superres;
    if (s == "colorize") return Task::colorize;
    throw UsageError("unknown --task '" + s + "' (inpaint, superres or colorize)");
}

/// Where the hole of an inpainting run comes from.
struct HoleSpec {
    enum class Kind { file, center, random } kind = Kind::center;
    double fraction = 0.25;  ///< share of the image area the box covers (center, random)
    std::string file;        ///< mask PNG (white = hole)
};

/// "center:0.25" or "random:0.3".
inline HoleSpec parse_hole(const std::string& s) {
    const auto colon = s.find(':');
    const std::string kind = s.substr(0, colon);
    HoleSpec h;
    if (kind == "center") h.kind = HoleSpec::Kind::center;
    else if (kind == "random") h.kind = HoleSpec::Kind::random;
    else throw UsageError("--hole must be center:FRACTION or random:FRACTION, got '" + s + "'");
    if (colon != std::string::npos) {
        const std::string f = s.substr(colon + 1);
        try {
            std::size_t used = 0;
            h.fraction = std::stod(f, &used);
            if (used != f.size()) throw std::invalid_argument("trailing");
        } catch (const std::exception&) {
            throw UsageError("--hole: '" + f + "' is not a number (the share of the image to hide, e.g. 0.25)");
        }
    }
    if (!(h.fraction > 0.0 && h.fraction < 1.0))
        throw UsageError(concat("--hole: the fraction must be in (0, 1), got ", h.fraction));
    return h;
}

/// [1, 1, R, R] with 1 = known pixel, 0 = hole (Masked's convention).
inline Tensor<float> box_mask(Index R, Index side, Index top, Index left) {
    Tensor<float> m({1, 1, R, R});
    for (Index y = 0; y < R; ++y)
        for (Index x = 0; x < R; ++x)
            m[y * R + x] = (y >= top && y < top + side && x >= left && x < left + side) ? 0.0f : 1.0f;
    return m;
}

/// The known-pixel mask of image `index`: a square of the requested area share (centred, or at a
/// position drawn from the seed and the index), or the user's PNG where white marks the hole.
inline Tensor<float> make_mask(const HoleSpec& h, Index R, std::uint64_t seed, Index index) {
    if (h.kind == HoleSpec::Kind::file) {
        const Image img = convert_channels(load_image(h.file), 1);
        if (img.width != R || img.height != R)
            throw ShapeError(concat("--mask '", h.file, "' is ", img.width, "x", img.height, " but the generator makes ", R,
                                    "x", R, " images; the mask must have the generator's size"));
        Tensor<float> m({1, 1, R, R});
        Index holes = 0;
        for (Index i = 0; i < R * R; ++i) {
            m[i] = img.pixels[static_cast<std::size_t>(i)] >= 128 ? 0.0f : 1.0f;
            holes += m[i] == 0.0f;
        }
        if (holes == 0) throw ValueError("--mask '" + h.file + "' has no hole (white pixels mark the pixels to fill)");
        if (holes == R * R) throw ValueError("--mask '" + h.file + "' hides every pixel; nothing is known to invert from");
        return m;
    }
    const Index side = std::clamp<Index>(static_cast<Index>(std::lround(static_cast<double>(R) * std::sqrt(h.fraction))), 1, R - 1);
    if (h.kind == HoleSpec::Kind::center) return box_mask(R, side, (R - side) / 2, (R - side) / 2);
    Rng rng(seed * 0x9E3779B97F4A7C15ULL + static_cast<std::uint64_t>(index) + 1);
    const auto span = static_cast<double>(R - side + 1);
    const Index top = std::min<Index>(R - side, static_cast<Index>(rng.uniform() * span));
    const Index left = std::min<Index>(R - side, static_cast<Index>(rng.uniform() * span));
    return box_mask(R, side, top, left);
}

/// Every channel of `img` [1, C, R, R] where the mask is 0 replaced by the mean of the known
/// pixels of that channel: the mean-fill baseline (and a harmless filler for the inverter's target).
inline Tensor<float> mean_fill(const Tensor<float>& img, const Tensor<float>& mask) {
    Tensor<float> out = img;
    const Index C = img.dim(1), HW = img.dim(2) * img.dim(3);
    for (Index c = 0; c < C; ++c) {
        double sum = 0;
        Index n = 0;
        for (Index i = 0; i < HW; ++i)
            if (mask[i] > 0) {
                sum += img[c * HW + i];
                ++n;
            }
        const float mean = n > 0 ? static_cast<float>(sum / static_cast<double>(n)) : 0.0f;
        for (Index i = 0; i < HW; ++i)
            if (!(mask[i] > 0)) out[c * HW + i] = mean;
    }
    return out;
}

/// The hole painted mid-gray, for showing what the inverter saw.
inline Tensor<float> show_hole(const Tensor<float>& img, const Tensor<float>& mask) {
    Tensor<float> out = img;
    const Index C = img.dim(1), HW = img.dim(2) * img.dim(3);
    for (Index c = 0; c < C; ++c)
        for (Index i = 0; i < HW; ++i)
            if (!(mask[i] > 0)) out[c * HW + i] = 0.0f;
    return out;
}

/// Nearest-neighbour enlargement of [N, C, h, w] by k. Area down-sampling of the result gives
/// the input back exactly, so it can stand as the inverter's full-size target of Degraded.
inline Tensor<float> replicate_up(const Tensor<float>& t, Index k) {
    const Index N = t.dim(0), C = t.dim(1), h = t.dim(2), w = t.dim(3);
    Tensor<float> out({N, C, h * k, w * k});
    for (Index p = 0; p < N * C; ++p)
        for (Index y = 0; y < h * k; ++y)
            for (Index x = 0; x < w * k; ++x) out[(p * h * k + y) * w * k + x] = t[(p * h + y / k) * w + x / k];
    return out;
}

/// The supported super-resolution factors (the loss's down-sampling is a template parameter).
inline AnyLoss<Cpu> superres_loss(Index factor) {
    switch (factor) {
        case 2: return AnyLoss<Cpu>(Degraded<Mse<Cpu>, AreaDownsample<2>>(Mse<Cpu>{}));
        case 4: return AnyLoss<Cpu>(Degraded<Mse<Cpu>, AreaDownsample<4>>(Mse<Cpu>{}));
        case 8: return AnyLoss<Cpu>(Degraded<Mse<Cpu>, AreaDownsample<8>>(Mse<Cpu>{}));
        case 16: return AnyLoss<Cpu>(Degraded<Mse<Cpu>, AreaDownsample<16>>(Mse<Cpu>{}));
        default: throw UsageError(concat("--factor must be 2, 4, 8 or 16, got ", factor));
    }
}

inline AnyLoss<Cpu> inpaint_loss(const Tensor<float>& mask) { return AnyLoss<Cpu>(Masked<Mse<Cpu>>(Mse<Cpu>{}, mask)); }
inline AnyLoss<Cpu> colorize_loss() { return AnyLoss<Cpu>(Degraded<Mse<Cpu>, ToGray<>>(Mse<Cpu>{})); }

inline Tensor<float> clamp_unit(Tensor<float> t) {
    for (float& v : t.values()) v = std::fmin(1.0f, std::fmax(-1.0f, v));
    return t;
}

/// PSNR (data range 2, images in [-1, 1]) over the pixels where `select` > 0 (all when empty).
inline double psnr_where(const Tensor<float>& a, const Tensor<float>& b, const Tensor<float>& select = {}) {
    const Index C = a.dim(1), HW = a.dim(2) * a.dim(3);
    double acc = 0;
    Index n = 0;
    for (Index c = 0; c < C; ++c)
        for (Index i = 0; i < HW; ++i) {
            if (select.numel() > 0 && !(select[i] > 0)) continue;
            const double d = static_cast<double>(a[c * HW + i]) - static_cast<double>(b[c * HW + i]);
            acc += d * d;
            ++n;
        }
    if (n == 0) return std::numeric_limits<double>::quiet_NaN();
    return metrics::psnr_from_mse(acc / static_cast<double>(n), metrics::DataRange::signed_unit());
}

/// Chroma of RGB [1, 3, R, R]: each channel minus the BT.601 luma (zero for any gray image), so
/// its PSNR measures the colour alone, not the brightness the gray input already gives.
inline Tensor<float> chroma(const Tensor<float>& rgb) {
    const Tensor<float> y = to_channels(rgb, 1);
    Tensor<float> out = rgb;
    const Index HW = rgb.dim(2) * rgb.dim(3);
    for (Index c = 0; c < 3; ++c)
        for (Index i = 0; i < HW; ++i) out[c * HW + i] -= y[i];
    return out;
}

inline Tensor<float> hole_of(const Tensor<float>& mask) {
    Tensor<float> h = mask;
    for (float& v : h.values()) v = v > 0 ? 0.0f : 1.0f;
    return h;
}

}  // namespace ganinv::cli::restore
