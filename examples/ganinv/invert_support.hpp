/// @file invert_support.hpp
/// @brief The parts of `ganinv invert` around the Inverter: loss specs, loading and conforming
///        target images, the progress bar, and the files written per image and per run.
#pragma once

#include "common.hpp"
#include "invert_dispatch.hpp"
#include "lpips_metric.hpp"

#include <ganinv/backend/cpu.hpp>
#include <ganinv/invert/options.hpp>
#include <ganinv/io/image.hpp>
#include <ganinv/io/image_ops.hpp>
#include <ganinv/io/plot.hpp>
#include <ganinv/loss/any_loss.hpp>
#include <ganinv/loss/lpips.hpp>
#include <ganinv/loss/pixel.hpp>
#include <ganinv/loss/vgg_perceptual.hpp>
#include <ganinv/models/stylegan2.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <ostream>
#include <unistd.h>

namespace ganinv::cli {


/// "mse,lpips:0.5" -> weighted sum of the named terms (CPU).
inline WeightedLossSum<Cpu> parse_loss_spec(const std::string& spec, const Args& a) {
    return build_cli_loss<Cpu>(parse_loss_terms(spec), a);
}

inline bool is_image_file(const std::filesystem::path& p) {
    std::string ext = p.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

inline std::vector<std::filesystem::path> collect_image_paths(const Args& a) {
    std::vector<std::filesystem::path> paths;
    for (const auto& s : a.all("image")) {
        if (std::filesystem::is_directory(s))
            throw UsageError("--image '" + s + "' is a directory, not an image file; use --dir " + s +
                             " to take every image in it");
        paths.emplace_back(s);
    }
    if (a.has("dir")) {
        const std::filesystem::path d(*a.get("dir"));
        if (!std::filesystem::is_directory(d)) throw IoError("--dir '" + d.string() + "' is not a directory");
        std::vector<std::filesystem::path> found;
        for (const auto& e : std::filesystem::directory_iterator(d))
            if (e.is_regular_file() && is_image_file(e.path())) found.push_back(e.path());
        std::sort(found.begin(), found.end());
        if (found.empty()) throw IoError("--dir '" + d.string() + "' holds no image files (.png, .jpg, .jpeg, .bmp)");
        paths.insert(paths.end(), found.begin(), found.end());
    }
    if (paths.empty()) throw UsageError("give images with --image FILE ... or --dir D");
    return paths;
}

struct TargetSet {
    std::vector<std::string> names;
    Tensor<float> images;  ///< [N, C, R, R]
    std::vector<std::string> warnings, failures;
};

/// One image as a generator target [1, C, R, R]: channels converted and (unless forbidden)
/// centre-cropped and resized, each with a note in `warnings`. Throws ShapeError for a wrong size
/// under --no-resize, IoError/FormatError for a file that cannot be read.
inline Tensor<float> load_target(const std::filesystem::path& p, Index R, Index C, bool allow_resize, std::uint64_t max_pixels,
                                 std::vector<std::string>& warnings) {
    const Image img = load_image(p, max_pixels);
    Tensor<float> t = image_to_tensor(img, static_cast<int>(C));
    if (img.channels != C && !(img.channels == 4 && C == 3))
        warnings.push_back(concat(p.string(), ": converted ", img.channels, " channel(s) to ", C));
    if (t.dim(2) != R || t.dim(3) != R) {
        if (!allow_resize)
            throw ShapeError(concat(p.string(), " is ", img.width, "x", img.height, " but the generator makes ", R, "x", R,
                                    " images (drop --no-resize to resize it)"));
        if (t.dim(2) != t.dim(3)) {
            t = center_crop_square(t);
            warnings.push_back(concat(p.string(), ": centre-cropped to a square"));
        }
        warnings.push_back(concat(p.string(), ": resized ", t.dim(3), "x", t.dim(2), " to ", R, "x", R));
        t = resize(t, R, R);
    }
    return t;
}

/// Rows [1, C, R, R] stacked into one batch [N, C, R, R].
inline Tensor<float> stack_rows(const std::vector<Tensor<float>>& rows, Index C, Index R) {
    Tensor<float> out({static_cast<Index>(rows.size()), C, R, R});
    for (std::size_t i = 0; i < rows.size(); ++i)
        std::copy(rows[i].data(), rows[i].data() + C * R * R, out.data() + static_cast<Index>(i) * C * R * R);
    return out;
}

/// Loads every readable image, converts channels and (unless forbidden) resizes to the generator;
/// unreadable files are reported, not fatal, so one bad file does not stop a batch.
inline TargetSet load_targets(const std::vector<std::filesystem::path>& paths, Index R, Index C, bool allow_resize,
                              std::uint64_t max_pixels = kDefaultMaxImagePixels) {
    TargetSet ts;
    std::vector<Tensor<float>> loaded;
    for (const auto& p : paths) {
        try {
            loaded.push_back(load_target(p, R, C, allow_resize, max_pixels, ts.warnings));
            std::string name = p.stem().string();
            for (int k = 2; std::find(ts.names.begin(), ts.names.end(), name) != ts.names.end(); ++k)
                name = p.stem().string() + "_" + std::to_string(k);
            ts.names.push_back(name);
        } catch (const ShapeError&) {
            throw;
        } catch (const Error& e) {
            ts.failures.push_back(e.what());
        }
    }
    if (loaded.empty()) return ts;
    ts.images = stack_rows(loaded, C, R);
    return ts;
}

inline TargetSet load_targets(const std::vector<std::filesystem::path>& paths, const StyleGAN2<Cpu>& g, bool allow_resize,
                              std::uint64_t max_pixels = kDefaultMaxImagePixels) {
    return load_targets(paths, g.resolution(), g.img_channels(), allow_resize, max_pixels);
}

inline Tensor<float> slice_batch(const Tensor<float>& t, Index b0, Index nb) {
    Shape s = t.shape();
    const Index per = t.numel() / s[0];
    s[0] = nb;
    Tensor<float> out(s);
    std::copy(t.data() + b0 * per, t.data() + (b0 + nb) * per, out.data());
    return out;
}

/// Item n of a batch, as a batch of one.
inline Tensor<float> row_of(const Tensor<float>& t, Index n) { return slice_batch(t, n, 1); }

inline InverterOptions inverter_options_from_args(const Args& a) {
    InverterOptions o;
    o.steps = a.integer("steps", 500);
    if (o.steps < 1) throw UsageError("--steps must be >= 1");
    o.seed = static_cast<std::uint64_t>(a.integer("seed", 0));
    o.learning_rate = a.number("lr", 0.1);
    o.projector_schedule = !a.has("no-schedule");
    const bool shaped = a.has("no-schedule") || a.has("lr-rampup") || a.has("lr-rampdown") || a.has("w-noise");
    // Hybrid inversion starts near the answer: its own schedule unless the command shapes one.
    if (!shaped && a.get("init").value_or("").rfind("encoder:", 0) == 0) use_refinement_schedule(o);
    o.lr_rampup = a.number("lr-rampup", o.lr_rampup);
    o.lr_rampdown = a.number("lr-rampdown", o.lr_rampdown);
    o.w_noise_factor = a.number("w-noise", o.w_noise_factor);
    for (const auto& [flag, value] : {std::pair{"lr-rampup", o.lr_rampup}, std::pair{"lr-rampdown", o.lr_rampdown}})
        if (!(value >= 0.0 && value <= 1.0))
            throw UsageError(std::string("--") + flag + " must be a fraction of the run in [0, 1], got " + std::to_string(value));
    if (!(o.w_noise_factor >= 0.0)) throw UsageError("--w-noise must be >= 0, got " + std::to_string(o.w_noise_factor));
    if (a.has("no-schedule") && (a.has("lr-rampup") || a.has("lr-rampdown") || a.has("w-noise")))
        throw UsageError("--no-schedule switches the schedule off; --lr-rampup, --lr-rampdown and --w-noise shape it: use one or the other");
    o.optimize_noise = a.has("optimize-noise");
    o.noise_regularization = a.number("noise-regularization", 1e5);
    o.w_avg_prior = a.number("w-avg-prior", 0.0);
    o.wplus_spread_prior = a.number("wplus-spread-prior", 0.0);
    if (a.has("target-loss")) o.target_loss = a.number("target-loss", 0.0);
    o.patience = a.integer("patience", 0);
    // Every 1%: the device loop reads the loss back only at reports (a wait per report).
    o.progress_every = std::max<Index>(1, o.steps / 100);
    const std::string init = a.get("init").value_or("mean");
    if (init == "mean" || init == "random") {
        o.init.kind = parse_init_kind(init);
        o.init.seed = o.seed;
    } else if (init.rfind("encoder:", 0) == 0) {  // hybrid: codes per batch from the encoder (encoder_support.hpp)
        if (init.size() == 8) throw UsageError("--init encoder: names no file; use --init encoder:E.safetensors");
        o.init.kind = InitKind::given;
    } else {
        o.init.kind = InitKind::given;
        const SafetensorsFile f(init);
        GANINV_CHECK(f.contains("ws") || f.contains("z") || f.entries().size() == 1, FormatError, "--init '", init,
                     "' holds no tensor 'ws' or 'z' (and not exactly one tensor)");
        o.init.codes = load_nonempty(f, f.contains("ws") ? "ws" : (f.contains("z") ? "z" : f.entries().at(0).name));
    }
    return o;
}

/// The Adam schedule a run used, for the summary's settings.
inline std::string schedule_description(const InverterOptions& o) {
    if (!o.projector_schedule) return concat("constant lr ", o.learning_rate);
    return concat("lr ", o.learning_rate, ", ramp-up ", o.lr_rampup, ", ramp-down ", o.lr_rampdown, ", w noise ",
                  o.w_noise_factor);
}

/// One line per update on a terminal (carriage return), every 10% otherwise (logs stay short).
class ProgressBar {
public:
    ProgressBar(std::string label, Index total) : label_(std::move(label)), total_(std::max<Index>(1, total)), tty_(isatty(2)) {}
    void update(const InversionProgress& p) {
        const int pct = static_cast<int>(100 * p.step / total_);
        if (!tty_ && pct / 10 == last_decile_ && p.step != total_) return;
        last_decile_ = pct / 10;
        double mean = 0;
        for (double v : *p.loss) mean += v;
        mean /= static_cast<double>(std::max<std::size_t>(1, p.loss->size()));
        const int filled = pct * 30 / 100;
        std::fprintf(stderr, "%s%s [%s%s] %3d%% step %ld/%ld  mean loss %.5g%s", tty_ ? "\r" : "", label_.c_str(),
                     std::string(static_cast<std::size_t>(filled), '#').c_str(),
                     std::string(static_cast<std::size_t>(30 - filled), '.').c_str(), pct, static_cast<long>(p.step),
                     static_cast<long>(p.total_steps), mean, tty_ ? "" : "\n");
        std::fflush(stderr);
    }
    void finish() {
        if (tty_) std::fprintf(stderr, "\n");
    }

private:
    std::string label_;
    Index total_;
    bool tty_;
    int last_decile_ = -1;
};

struct ImageSummary {
    std::string name;
    metrics::Comparison m;
    std::optional<metrics::Comparison> fixed_noise;
    std::optional<double> lpips;  ///< LPIPS(target, reconstruction) when the weights were given
    std::optional<double> w_mahalanobis;  ///< the code's mean Mahalanobis distance under the W distribution
    Index steps = 0;
    double seconds = 0;        ///< the batch's wall time divided by its size (one batch is one optimisation)
    double batch_seconds = 0;  ///< wall time of the image's whole batch
    Index batch_size = 1;
    double final_loss = 0;
    std::vector<double> psnr_per_iteration;  ///< encode: PSNR after each refinement iteration (else empty)
};

/// Nearest-neighbour enlargement so that small images stay visible in comparisons.
inline Image enlarge(const Image& img, int factor) {
    if (factor <= 1) return img;
    Image out = make_image(img.width * factor, img.height * factor, img.channels);
    for (int y = 0; y < out.height; ++y)
        for (int x = 0; x < out.width; ++x)
            for (int c = 0; c < img.channels; ++c)
                out.pixels[static_cast<std::size_t>((y * out.width + x) * img.channels + c)] =
                    img.pixels[static_cast<std::size_t>(((y / factor) * img.width + x / factor) * img.channels + c)];
    return out;
}

/// |target - reconstruction|, amplified 4x, as an image (white = large error).
inline Image difference_image(const Tensor<float>& target, const Tensor<float>& recon, Index n) {
    Tensor<float> d({1, target.dim(1), target.dim(2), target.dim(3)});
    const Index per = d.numel();
    for (Index i = 0; i < per; ++i)
        d[i] = std::fmin(1.0f, -1.0f + 4.0f * std::fabs(target[n * per + i] - std::fmin(1.0f, std::fmax(-1.0f, recon[n * per + i]))));
    return tensor_to_image(d);
}

/// Writes image `i` of a batch: NAME.safetensors (code, noise, loss history), NAME_recon.png,
/// NAME_compare.png, NAME_loss.png (and NAME_recon_fixed_noise.png when noise was optimised),
/// each all-or-nothing. On a failure the files of this image already written are removed.
ImageSummary write_image_outputs(const std::string& dir, const std::string& name, Index i, const Tensor<float>& targets,
                                 const InversionResult& r);
void print_summary(std::ostream& os, const std::vector<ImageSummary>& rows);
/// At most this many images (the first ones of the run) are shown in overview.png.
inline constexpr std::size_t kOverviewMaxImages = 64;
/// ... each strip shrunk (by an integer factor) to at most this height.
inline constexpr int kOverviewMaxStripHeight = 256;
/// DIR/overview.png: the comparison strips of the first kOverviewMaxImages images, one per row
/// (two columns beyond eight), shrunk to at most kOverviewMaxStripHeight pixels high: a picture
/// to look at, not a second copy of the results (every NAME_compare.png is full size).
void write_overview(const std::string& dir, const std::vector<ImageSummary>& rows);
/// summary.json (with `timing`, when not null, as its "timing" object), summary.md, report.html.
void write_summary_files(const std::string& dir, const std::vector<ImageSummary>& rows, const std::string& model,
                         const std::string& space, const std::string& optimizer, const InverterOptions& o,
                         bool report, const std::string& command = "invert", const Json& timing = Json());

}  // namespace ganinv::cli
