// ganinv metrics: full-reference image-quality scores (MSE, MAE, PSNR, SSIM), plus the LPIPS
// distance and the face-identity similarity when their weights are given. Two domains, never
// mixed up: two image files are scored on their 8-bit pixels (data range 255); a code file
// (--model M --code C) is drawn again as `invert` draws it and scored on float images in [-1, 1]
// (data range 2), which reproduces invert's summary.
#include "common.hpp"
#include "invert_support.hpp"
#include "lpips_metric.hpp"

#include <ganinv/backend/cpu.hpp>
#include <ganinv/io/image.hpp>
#include <ganinv/loss/identity.hpp>
#include <ganinv/loss/lpips.hpp>
#include <ganinv/metrics/metrics.hpp>
#include <ganinv/models/stylegan2.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <unistd.h>

namespace ganinv::cli {
namespace {

/// Images from this size on report their progress on stderr (a 2-Mpx pair takes about a second).
constexpr Index kProgressPixels = Index{2} << 20;

/// Progress of one comparison on stderr: rewritten in place on a terminal, every 10% otherwise.
class MetricsProgress {
public:
    explicit MetricsProgress(bool enabled) : enabled_(enabled), tty_(isatty(2) != 0) {}
    void operator()(Index done, Index total) {
        if (!enabled_) return;
        const int pct = static_cast<int>(100 * done / std::max<Index>(1, total));
        if (!tty_ && pct / 10 == last_decile_) return;
        last_decile_ = pct / 10;
        std::fprintf(stderr, "%smetrics: SSIM %3d%% (%lld of %lld rows)%s", tty_ ? "\r" : "", pct,
                     static_cast<long long>(done), static_cast<long long>(total), tty_ ? "" : "\n");
        if (tty_ && done == total) std::fprintf(stderr, "\n");
        std::fflush(stderr);
    }

private:
    bool enabled_, tty_;
    int last_decile_ = -1;
};

/// The image a code file (as invert and restore write it) stands for, drawn as the inverter drew
/// its reconstruction: S-space codes from their styles, others from ws; optimised noise maps
/// (noise0, noise1, ...) when the file has them, else the generator's constant noise.
Tensor<float> render_code(StyleGAN2<Cpu>& g, const std::string& path, std::string& how) {
    const SafetensorsFile f(path);
    std::vector<Tensor<float>> maps;
    while (f.contains(concat("noise", maps.size()))) maps.push_back(f.load(concat("noise", maps.size())));
    NoiseInput<Cpu> noise{NoiseMode::constant, 0, nullptr};
    if (!maps.empty()) {
        GANINV_CHECK(maps.size() == g.plan().noise_resolutions.size(), ShapeError, "'", path, "' holds ", maps.size(),
                     " noise maps; this generator has ", g.plan().noise_resolutions.size(), " noise inputs");
        noise = {NoiseMode::explicit_maps, 0, &maps};
    }
    how = maps.empty() ? "constant noise" : "its optimised noise maps";
    if (f.contains("styles")) {
        Tensor<float> st = f.load("styles");
        GANINV_CHECK(st.numel() == g.style_dim(), ShapeError, "'", path, "': styles has shape ", shape_to_string(st.shape()),
                     "; this generator's codes have ", g.style_dim(), " styles (one code per file)");
        expect_finite(st.values(), "styles of '" + path + "'");
        how = "styles, " + how;
        return g.synthesis_from_styles(st.reshape({1, g.style_dim()}), noise);
    }
    GANINV_CHECK(f.contains("ws"), FormatError, "'", path, "' has no tensor 'ws' or 'styles': give a code written by ",
                 "ganinv invert or restore");
    Tensor<float> ws = f.load("ws");
    GANINV_CHECK(ws.numel() == g.num_ws() * g.w_dim(), ShapeError, "'", path, "': ws has shape ",
                 shape_to_string(ws.shape()), "; this generator's codes are [1, ", g.num_ws(), ", ", g.w_dim(), "]");
    expect_finite(ws.values(), "ws of '" + path + "'");
    how = "ws, " + how;
    return g.synthesis(ws.reshape({1, g.num_ws(), g.w_dim()}), noise);
}

/// Scores of invert's summary: the reconstruction clamped to [-1, 1] against the float target.
metrics::Comparison float_scores(const Tensor<float>& recon, const Tensor<float>& target) {
    const metrics::SsimOptions opts{};
    const Index window = 2 * opts.radius() + 1;
    if (recon.dim(2) >= window && recon.dim(3) >= window)
        return metrics::compare(recon, target, metrics::DataRange::signed_unit(), opts)[0];
    // Smaller than the SSIM window (tiny test generators): SSIM is undefined, as in invert.
    const double e2 = metrics::mse(recon, target)[0];
    return {e2, metrics::mae(recon, target)[0], metrics::psnr_from_mse(e2, metrics::DataRange::signed_unit()),
            std::numeric_limits<double>::quiet_NaN()};
}

/// Decodes an image; large ones say how long that took (stb decodes in one go, without progress).
Image load_timed(const std::string& path, std::uint64_t max_pixels) {
    const auto t0 = std::chrono::steady_clock::now();
    Image img = load_image(path, max_pixels);
    if (img.pixel_count() >= static_cast<std::size_t>(kProgressPixels))
        std::fprintf(stderr, "metrics: decoded '%s' (%dx%d, %d channel%s) in %.1f s\n", path.c_str(), img.width,
                     img.height, img.channels, img.channels == 1 ? "" : "s",
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    return img;
}

int run_metrics(const Args& a) {
    const auto& files = a.positionals();
    const bool from_code = a.has("code");
    if (from_code != a.has("model")) throw UsageError("--code and --model go together: --model M --code C.safetensors TARGET.png");
    if (from_code && files.size() != 1)
        throw UsageError("with --code, give one image file: the target the code was inverted from");
    if (!from_code && files.size() != 2) throw UsageError("expected two image files: REFERENCE.png TEST.png");
    if (from_code && a.has("gray")) throw UsageError("--gray applies to two image files; with --code the generator's channels are used");
    if (a.has("vgg-weights") && !a.has("lpips")) throw UsageError("--vgg-weights is the trunk of --lpips; give --lpips too");

    metrics::Comparison m;
    Tensor<float> ta, tb;  // the float [-1, 1] pair the network scores see
    std::string title, domain, code_note;
    if (from_code) {
        StyleGAN2<Cpu> g = StyleGAN2<Cpu>::load(*a.get("model"));
        TargetSet ts = load_targets({std::filesystem::path(files[0])}, g, true, a.max_pixels());
        if (!ts.failures.empty()) throw IoError(ts.failures.front());
        for (const auto& w : ts.warnings) std::cerr << "warning: " << w << " (as invert does)\n";
        tb = render_code(g, *a.get("code"), code_note);
        for (float& v : tb.values()) v = std::fmin(1.0f, std::fmax(-1.0f, v));
        ta = std::move(ts.images);
        m = float_scores(tb, ta);
        title = concat(files[0], " vs the image of ", *a.get("code"), " (", ta.dim(3), "x", ta.dim(2), ", ", ta.dim(1),
                       " channel", ta.dim(1) == 1 ? "" : "s", ")");
        domain = "float images in [-1, 1], data range 2, reconstruction clamped: the domain of invert's summary";
    } else {
        Image ref = load_timed(files[0], a.max_pixels()), test = load_timed(files[1], a.max_pixels());
        const int ref_c = ref.channels == 4 ? 3 : ref.channels, test_c = test.channels == 4 ? 3 : test.channels;
        if (a.has("gray")) {
            ref = convert_channels(ref, 1);
            test = convert_channels(test, 1);
        } else if (ref_c != test_c) {
            throw UsageError(concat("'", files[0], "' has ", ref.channels, " channel(s), '", files[1], "' has ",
                                    test.channels, "; pass --gray to compare both as grayscale"));
        }
        if (ref.width != test.width || ref.height != test.height)
            throw UsageError(concat("the images differ in size: ", ref.width, "x", ref.height, " vs ", test.width, "x",
                                    test.height));
        MetricsProgress progress(static_cast<Index>(ref.pixel_count()) >= kProgressPixels);
        m = metrics::compare_images(ref, test, {}, [&](Index done, Index total) { progress(done, total); });
        const int channels = a.has("gray") ? 1 : ref_c;
        title = concat(files[0], " vs ", files[1], " (", ref.width, "x", ref.height, ", ", channels, " channel",
                       channels == 1 ? "" : "s", ")");
        domain = "8-bit pixels, data range 255 (invert's summary scores float images: see --code)";
        if (a.has("lpips") || a.has("face-weights")) {
            ta = image_to_tensor(ref, ref.channels == 1 ? 1 : 3);
            tb = image_to_tensor(test, test.channels == 1 ? 1 : 3);
        }
    }

    std::optional<double> lpips, id_cos, id_dist;
    if (a.has("lpips")) lpips = load_lpips(*a.get("lpips"), a.get("vgg-weights")).distance(ta, tb)[0];
    if (a.has("face-weights")) {
        // Identity resizes both images to the network's 150x150 input (area down, bilinear up).
        const Identity<Cpu> id = Identity<Cpu>::load(*a.get("face-weights"));
        const Tensor<float> da = id.descriptors(ta), db = id.descriptors(tb);
        double dot = 0, na = 0, nb = 0;
        for (Index i = 0; i < da.numel(); ++i) {
            dot += static_cast<double>(da[i]) * db[i];
            na += static_cast<double>(da[i]) * da[i];
            nb += static_cast<double>(db[i]) * db[i];
        }
        id_cos = dot / std::max(1e-30, std::sqrt(na * nb));
        id_dist = descriptor_distance(da, db)[0];
    }
    if (a.has("json")) {
        // JSON has no NaN: an undefined SSIM (image below the 11x11 window) is null.
        const auto num = [](double v) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.10g", v);
            return std::isnan(v) ? std::string("null") : std::string(buf);
        };
        std::printf("{\"domain\": \"%s\", \"mse\": %.10g, \"mae\": %.10g, \"psnr\": %.10g, \"ssim\": %s",
                    from_code ? "float" : "uint8", m.mse, m.mae, m.psnr, num(m.ssim).c_str());
        if (lpips) std::printf(", \"lpips\": %.10g", *lpips);
        if (id_cos) std::printf(", \"identity_cosine\": %.10g, \"identity_distance\": %.10g", *id_cos, *id_dist);
        std::printf("}\n");
        return 0;
    }
    std::printf("%s\n  scores on %s\n", title.c_str(), domain.c_str());
    if (from_code) std::printf("  code drawn from its %s\n", code_note.c_str());
    std::printf("  MSE   %.6g\n", m.mse);
    std::printf("  MAE   %.6g\n", m.mae);
    std::printf("  PSNR  %.4f dB\n", m.psnr);
    std::printf("  SSIM  %.6f   (Gaussian 11x11, sigma 1.5, as scikit-image with gaussian_weights=True)\n", m.ssim);
    if (lpips) std::printf("  LPIPS %.6f   (VGG, v0.1; 0 = identical)\n", *lpips);
    if (id_cos)
        std::printf("  identity cosine %.6f, distance %.6f   (dlib face descriptors at 150x150; same person below 0.6)\n",
                    *id_cos, *id_dist);
    return 0;
}

const bool metrics_registered = register_command(Command{
    "metrics",
    "Compare two images (8-bit) or a code's image with its target (float, as invert): MSE, MAE, PSNR, SSIM; LPIPS, identity.",
    "REFERENCE.png TEST.png [--gray] [--json] [--lpips L.safetensors [--vgg-weights V.safetensors]]\n"
    "       [--face-weights F.safetensors] [--max-pixels N]\n"
    "   or: ganinv metrics --model M.safetensors --code C.safetensors TARGET.png [--json] [--lpips ...] [--face-weights ...]",
    {
        {"gray", "", "convert both images to grayscale (BT.601 luma) first"},
        {"json", "", "print one JSON object instead of the table (\"domain\": \"uint8\" or \"float\")"},
        {"model", "M.safetensors", "with --code: the generator the code belongs to"},
        {"code", "C.safetensors", "score this code's image (drawn as invert draws its reconstruction) against TARGET "
                                  "on float [-1, 1] images: the numbers of invert's summary"},
        {"lpips", "L.safetensors", "also the LPIPS distance (v0.1 linear weights, as loss/lpips.hpp reads them)"},
        {"vgg-weights", "V.safetensors", "VGG16 trunk for --lpips (torchvision features converted to safetensors)"},
        {"face-weights", "F.safetensors", "also the identity similarity: cosine and Euclidean distance of the dlib "
                                          "face descriptors (face-api face_recognition weights)"},
        max_pixels_option(),
    },
    run_metrics});

}  // namespace
}  // namespace ganinv::cli
