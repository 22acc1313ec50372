// Files written by `ganinv invert`: per image the code, the pictures and the loss curve; per run
// a summary (printed table, summary.json, summary.md) and optionally a static HTML report.
#include "html_report.hpp"
#include "invert_support.hpp"

#include <algorithm>
#include <exception>
#include <functional>
#include <iomanip>
#include <sstream>

namespace ganinv::cli {
namespace {

using html::escape;
using html::fixed;

/// Numbers as a JSON array; a non-finite one (the PSNR of an exact match) as null.
Json json_numbers(const std::vector<double>& v) {
    Json::Array a;
    for (double x : v) a.emplace_back(std::isfinite(x) ? Json(x) : Json());
    return Json(a);
}

/// encode's refinement: the mean over the images of the PSNR after each iteration (empty for invert).
std::vector<double> mean_psnr_per_iteration(const std::vector<ImageSummary>& rows) {
    if (rows.empty() || rows[0].psnr_per_iteration.empty()) return {};
    std::vector<double> mean(rows[0].psnr_per_iteration.size(), 0.0);
    for (const auto& r : rows)
        for (std::size_t t = 0; t < mean.size(); ++t) mean[t] += r.psnr_per_iteration.at(t) / static_cast<double>(rows.size());
    return mean;
}

/// One line for the printed summary and summary.md.
std::string refinement_line(const std::vector<double>& mean_psnr) {
    std::string s = "mean PSNR per refinement iteration (dB):";
    for (double p : mean_psnr) {
        s += ' ';  // not `" " + fixed(..)`: GCC 12 warns (-Wrestrict) on that temporary
        s += fixed(p, 2);
    }
    return s;
}

}  // namespace

ImageSummary write_image_outputs(const std::string& dir, const std::string& name, Index i, const Tensor<float>& targets,
                                 const InversionResult& r) {
    const std::filesystem::path d(dir);
    const Index n = targets.dim(0);
    const int factor = std::max<int>(1, 128 / static_cast<int>(targets.dim(2)));
    SafetensorsWriter w;
    w.add("ws", row_of(r.ws, i));
    if (r.z.numel() > 0) w.add("z", row_of(r.z, i));
    if (r.styles.numel() > 0) w.add("styles", row_of(r.styles, i));
    for (std::size_t k = 0; k < r.noise.size(); ++k) w.add(concat("noise", k), row_of(r.noise[k], i));
    std::vector<float> hist;
    for (const auto& step : r.loss_history) hist.push_back(static_cast<float>(step[static_cast<std::size_t>(i)]));
    if (!hist.empty()) w.add("loss_history", {static_cast<Index>(hist.size())}, hist);
    w.set_metadata("space", r.space);
    const Image target = tensor_to_image(targets, i), recon = tensor_to_image(r.reconstruction, i);
    const bool fixed = r.reconstruction_fixed_noise.numel() > 0;
    const Image fixed_noise = fixed ? tensor_to_image(r.reconstruction_fixed_noise, i) : Image{};

    // One writer per file; the PNG encodings are most of an image's output time (~1 s at 1024^2),
    // so they run side by side when this image is written alone (a batch's images are written
    // in parallel already: there this loop, nested, runs on one thread).
    std::vector<std::filesystem::path> paths;
    std::vector<std::function<void(const std::filesystem::path&)>> writers;
    const auto add = [&](const std::string& suffix, std::function<void(const std::filesystem::path&)> write) {
        paths.push_back(d / (name + suffix));
        writers.push_back(std::move(write));
    };
    add(".safetensors", [&](const std::filesystem::path& p) { w.write(p); });
    add("_recon.png", [&](const std::filesystem::path& p) { save_png(p, recon); });
    if (fixed) add("_recon_fixed_noise.png", [&](const std::filesystem::path& p) { save_png(p, fixed_noise); });
    add("_compare.png", [&](const std::filesystem::path& p) {
        std::vector<Image> panels{enlarge(target, factor), enlarge(recon, factor),
                                  enlarge(difference_image(targets, r.reconstruction, i), factor)};
        if (fixed) panels.push_back(enlarge(fixed_noise, factor));
        save_png(p, hconcat(panels, 4));
    });
    add("_loss.png", [&](const std::filesystem::path& p) {
        PlotOptions po;
        po.title = name + " (" + r.space + ")";
        po.width = 480;
        po.height = 300;
        save_png(p, plot_curves({Curve{"loss", std::vector<double>(hist.begin(), hist.end()), palette_color(0)}}, po));
    });
    std::vector<std::exception_ptr> failures(writers.size());
    const auto m = static_cast<std::ptrdiff_t>(writers.size());
#pragma omp parallel for schedule(dynamic, 1)
    for (std::ptrdiff_t k = 0; k < m; ++k) {
        const auto u = static_cast<std::size_t>(k);
        try {  // nothing may leave an OpenMP loop's body by an exception
            writers[u](paths[u]);
        } catch (...) {
            failures[u] = std::current_exception();
        }
    }
    for (const auto& f : failures) {
        if (!f) continue;
        // A part of an image's outputs is not a result: no later reader may take it for one.
        std::error_code ec;
        for (const auto& p : paths) std::filesystem::remove(p, ec);
        std::rethrow_exception(f);
    }

    ImageSummary s;
    s.name = name;
    s.m = r.metrics[static_cast<std::size_t>(i)];
    if (!r.metrics_fixed_noise.empty()) s.fixed_noise = r.metrics_fixed_noise[static_cast<std::size_t>(i)];
    if (!r.w_mahalanobis.empty()) s.w_mahalanobis = r.w_mahalanobis[static_cast<std::size_t>(i)];
    s.steps = r.stopped_at.empty() ? r.steps_run : r.stopped_at[static_cast<std::size_t>(i)];
    s.seconds = r.seconds / static_cast<double>(n);
    s.batch_seconds = r.seconds;
    s.batch_size = n;
    s.final_loss = hist.empty() ? 0.0 : hist.back();
    return s;
}

void write_overview(const std::string& dir, const std::vector<ImageSummary>& rows) {
    std::vector<Image> strips(std::min(rows.size(), kOverviewMaxImages));
    if (strips.empty()) return;
    std::vector<std::exception_ptr> failures(strips.size());
    const auto n = static_cast<std::ptrdiff_t>(strips.size());
    // Decoding 64 strips of 1024^2 images takes seconds on one thread.
#pragma omp parallel for schedule(dynamic, 1)
    for (std::ptrdiff_t k = 0; k < n; ++k) {
        const auto u = static_cast<std::size_t>(k);
        try {
            const Image strip = load_image(std::filesystem::path(dir) / (rows[u].name + "_compare.png"));
            strips[u] = shrink_image(strip, (strip.height + kOverviewMaxStripHeight - 1) / kOverviewMaxStripHeight);
        } catch (...) {
            failures[u] = std::current_exception();
        }
    }
    for (const auto& f : failures)
        if (f) std::rethrow_exception(f);
    const int columns = strips.size() > 8 ? 2 : 1;
    save_png(std::filesystem::path(dir) / "overview.png", make_grid(strips, columns, 6, 255));
}

void print_summary(std::ostream& os, const std::vector<ImageSummary>& rows) {
    const bool noise = !rows.empty() && rows[0].fixed_noise.has_value();
    const bool lpips = !rows.empty() && rows[0].lpips.has_value();
    const bool mahal = !rows.empty() && rows[0].w_mahalanobis.has_value();
    // The scores are those of the float images, which the 8-bit PNGs only approximate, and the
    // images of a batch are optimised together: both headers say so.
    os << "\n" << std::left << std::setw(24) << "" << std::right << std::setw(19) << "float [-1, 1]" << "\n";
    os << std::left << std::setw(24) << "image" << std::right << std::setw(10) << "PSNR dB" << std::setw(9) << "SSIM";
    if (lpips) os << std::setw(9) << "LPIPS";
    if (noise) os << std::setw(16) << "PSNR fixed-noise";
    if (mahal) os << std::setw(9) << "W-Mahal";
    os << std::setw(12) << "final loss" << std::setw(8) << "steps" << std::setw(16) << "s (batch / n)" << "\n";
    double psnr = 0, ssim = 0, mahal_sum = 0;
    for (const auto& r : rows) {
        if (mahal) mahal_sum += *r.w_mahalanobis;
        os << std::left << std::setw(24) << r.name.substr(0, 23) << std::right << std::setw(10) << fixed(r.m.psnr, 2)
           << std::setw(9) << fixed(r.m.ssim, 4);
        if (lpips) os << std::setw(9) << fixed(*r.lpips, 4);
        if (noise) os << std::setw(16) << fixed(r.fixed_noise->psnr, 2);
        if (mahal) os << std::setw(9) << fixed(*r.w_mahalanobis, 3);
        os << std::setw(12) << std::setprecision(4) << r.final_loss << std::setw(8) << r.steps << std::setw(16)
           << fixed(r.seconds, 2) << "\n";
        psnr += r.m.psnr;
        ssim += r.m.ssim;
    }
    if (!rows.empty()) {
        const double k = static_cast<double>(rows.size());
        os << std::left << std::setw(24) << "mean" << std::right << std::setw(10) << fixed(psnr / k, 2) << std::setw(9)
           << fixed(ssim / k, 4);
        if (mahal) os << std::string((lpips ? 9 : 0) + (noise ? 16 : 0), ' ') << std::setw(9) << fixed(mahal_sum / k, 3);
        os << "\n";
    }
    if (const std::vector<double> refinement = mean_psnr_per_iteration(rows); !refinement.empty())
        os << refinement_line(refinement) << "\n";
    os << "PSNR/SSIM: reconstruction clamped to [-1, 1] vs the float target (data range 2), before 8-bit\n"
          "rounding; `ganinv metrics --model M --code NAME.safetensors TARGET` gives these numbers, `ganinv\n"
          "metrics` on two PNGs the 8-bit ones. s (batch / n): the batch's wall time divided by its images.\n";
    if (mahal)
        os << "W-Mahal: the code's Mahalanobis distance under the W distribution (mean and covariance of the\n"
              "mapping network's w over its statistics samples), averaged over the code's w vectors; fresh\n"
              "samples of W score about sqrt(w_dim).\n";
}

void write_summary_files(const std::string& dir, const std::vector<ImageSummary>& rows, const std::string& model,
                         const std::string& space, const std::string& optimizer, const InverterOptions& o, bool report,
                         const std::string& command, const Json& timing) {
    const std::filesystem::path d(dir);
    Json root{Json::Object{}};
    root.set("model", model);
    root.set("space", space);
    root.set("optimizer", optimizer);
    root.set("steps", static_cast<std::int64_t>(o.steps));
    root.set("seed", static_cast<std::int64_t>(o.seed));
    root.set("optimize_noise", o.optimize_noise);
    if (optimizer == "adam" || optimizer == "basincma") root.set("schedule", schedule_description(o));
    root.set("metrics_domain", "float: reconstruction clamped to [-1, 1] vs the target, data range 2");
    Json::Array images;
    for (const auto& r : rows) {
        Json j{Json::Object{}};
        j.set("name", r.name);
        j.set("psnr", std::isfinite(r.m.psnr) ? Json(r.m.psnr) : Json());
        j.set("ssim", r.m.ssim);
        j.set("mse", r.m.mse);
        if (r.fixed_noise) j.set("psnr_fixed_noise", r.fixed_noise->psnr);
        if (r.lpips) j.set("lpips", *r.lpips);
        if (r.w_mahalanobis) j.set("w_mahalanobis", *r.w_mahalanobis);
        j.set("final_loss", r.final_loss);
        j.set("steps", static_cast<std::int64_t>(r.steps));
        j.set("seconds", r.seconds);  // batch_seconds / batch_size: images of a batch run together
        j.set("batch_seconds", r.batch_seconds);
        j.set("batch_size", static_cast<std::int64_t>(r.batch_size));
        if (!r.psnr_per_iteration.empty()) j.set("psnr_per_iteration", json_numbers(r.psnr_per_iteration));
        images.push_back(j);
    }
    root.set("images", images);
    const std::vector<double> refinement = mean_psnr_per_iteration(rows);
    if (!refinement.empty()) {  // encode's ReStyle refinement: does each pass improve on the last?
        root.set("iterations", static_cast<std::int64_t>(refinement.size()));
        root.set("mean_psnr_per_iteration", json_numbers(refinement));
    }
    if (!rows.empty() && rows[0].w_mahalanobis) {
        double m = 0;
        for (const auto& r : rows) m += r.w_mahalanobis.value_or(0.0);
        root.set("mean_w_mahalanobis", m / static_cast<double>(rows.size()));
        root.set("w_mahalanobis_definition",
                 "per code: Mahalanobis distance of each of its w vectors under N(mean, covariance) of the mapping "
                 "network's w over " + std::to_string(o.w_statistics_samples) + " samples, averaged over the vectors");
    }
    if (!timing.is_null()) root.set("timing", timing);
    // Checked, all-or-nothing writes: a full disk is an error naming the file, never an empty summary.
    write_file_atomically(d / "summary.json", root.dump() + "\n");
    std::ostringstream table, md;
    print_summary(table, rows);
    md << "# ganinv " << command << "\n\nmodel `" << model << "`, space `" << space << "`, optimizer `" << optimizer << "`, "
       << o.steps << " steps, seed " << o.seed << "\n\n```" << table.str() << "```\n";
    write_file_atomically(d / "summary.md", md.str());
    if (!report) return;
    std::ostringstream h;
    html::begin_page(h, "ganinv inversion report");
    h << "<p>model <code>" << escape(model) << "</code>, space <b>" << escape(space) << "</b>, optimizer <b>"
      << escape(optimizer) << "</b>, " << o.steps << " steps, seed " << o.seed
      << (o.optimize_noise ? ", noise maps optimised" : "") << "</p>\n";
    const bool noise = !rows.empty() && rows[0].fixed_noise.has_value();
    std::vector<std::string> header{"image", "PSNR dB (float)", "SSIM (float)", "MSE (float)"};
    if (!rows.empty() && rows[0].lpips) header.push_back("LPIPS");
    if (noise) header.push_back("PSNR fixed noise");
    header.push_back("steps");
    std::vector<std::vector<std::string>> cells;
    for (const auto& r : rows) {
        std::ostringstream mse;
        mse << std::setprecision(4) << r.m.mse;
        std::vector<std::string> c{r.name, fixed(r.m.psnr, 2), fixed(r.m.ssim, 4), mse.str()};
        if (r.lpips) c.push_back(fixed(*r.lpips, 4));
        if (r.fixed_noise) c.push_back(fixed(r.fixed_noise->psnr, 2));
        c.push_back(std::to_string(r.steps));
        cells.push_back(std::move(c));
    }
    html::table(h, header, cells);
    h << "<p class=\"note\">Scores of the float images: the reconstruction clamped to [-1, 1] against the target "
         "(data range 2), before 8-bit rounding; <code>ganinv metrics</code> on the PNGs scores their 8-bit pixels.</p>\n";
    h << "<p>Each comparison shows target | reconstruction | |difference| x4"
      << (noise ? " | reconstruction with the generator's fixed noise" : "") << ".</p>\n";
    for (const auto& r : rows) {
        h << "<div class=\"img\"><h3>" << escape(r.name) << "</h3><img src=\"" << escape(r.name) << "_compare.png\" alt=\""
          << escape(r.name) << " comparison\"><br><img src=\"" << escape(r.name) << "_loss.png\" alt=\"" << escape(r.name)
          << " loss curve\"></div>\n";
    }
    html::end_page(h);
    write_file_atomically(d / "report.html", h.str());
}

}  // namespace ganinv::cli
