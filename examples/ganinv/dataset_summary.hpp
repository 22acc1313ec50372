/// @file dataset_summary.hpp
/// @brief The summary of a dataset job run by several ranks (docs/datasets.md): rank 0 has none
///        of the other ranks' images, so DIR/summary.json and summary.md are built from the
///        manifest lines, the one record every rank writes.
#pragma once

#include "dataset_job.hpp"
#include "html_report.hpp"

#include <ganinv/core/json.hpp>
#include <ganinv/io/file_write.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace ganinv::cli {

/// This run of the job: how many ranks, and how many images it did in how long.
struct JobRunInfo {
    std::string command;  ///< "invert", "encode", "tune"
    int ranks = 1;
    long long images = 0;  ///< images this run did (ok or failed)
    double seconds = 0;    ///< this run's wall time on rank 0, from the first batch to the last
};

/// Writes DIR/summary.json and DIR/summary.md for every image of `paths`: the fields of its last
/// manifest line (status, psnr, ssim, steps, seconds, rank, device, and what the command adds),
/// "missing" for an image without a line, the mean scores of the ok images and this run's
/// images per second. `settings` (the command's model, steps, ...) head summary.json.
inline void write_manifest_summary_files(const std::filesystem::path& dir, const std::vector<std::filesystem::path>& paths,
                                   const std::vector<std::string>& names, Json settings, const JobRunInfo& run) {
    std::map<std::string, Json> last;  // by the input path, as the manifest names it
    {
        std::ifstream in(dir / ManifestWriter::kFileName);
        for (std::string line; std::getline(in, line);) {
            try {
                Json j = Json::parse(line);
                const std::string image = j.at("image").as_string();
                last[image] = std::move(j);
            } catch (const Error&) {
                // a line cut by a crash: planning (images_done_in_manifest) warned about it already
            }
        }
    }
    Json::Array images;
    long long ok = 0, failed = 0, missing = 0, scored = 0;
    double psnr = 0, ssim = 0;
    std::ostringstream table;
    table << std::left << std::setw(24) << "image" << std::setw(8) << "status" << std::right << std::setw(10) << "PSNR dB"
          << std::setw(9) << "SSIM" << std::setw(8) << "steps" << std::setw(10) << "seconds" << std::setw(6) << "rank"
          << "  device\n";
    for (std::size_t i = 0; i < paths.size(); ++i) {
        const auto it = last.find(paths[i].string());
        Json row = it != last.end() ? it->second : Json(Json::Object{});
        row.set("name", names[i]);
        if (it == last.end()) {
            row.set("image", paths[i].string());
            row.set("status", "missing");
        }
        const auto text = [&](const char* key) {
            const Json* v = row.find(key);
            if (v == nullptr || v->is_null()) return std::string("-");
            if (v->is_string()) return v->as_string();
            return html::fixed(v->as_number(), std::string(key) == "psnr" ? 2 : (std::string(key) == "ssim" ? 4 : 0));
        };
        const std::string status = row.at("status").as_string();
        if (status == "ok") {
            ++ok;
            const Json* p = row.find("psnr");
            const Json* s = row.find("ssim");
            if (p && p->is_number() && s && s->is_number()) {  // psnr is null for an exact reconstruction
                psnr += p->as_number();
                ssim += s->as_number();
                ++scored;
            }
        } else if (status == "error") {
            ++failed;
        } else {
            ++missing;
        }
        const Json* sec = row.find("seconds");
        table << std::left << std::setw(24) << names[i].substr(0, 23) << std::setw(8) << status << std::right << std::setw(10)
              << text("psnr") << std::setw(9) << text("ssim") << std::setw(8) << text("steps") << std::setw(10)
              << (sec && sec->is_number() ? html::fixed(sec->as_number(), 3) : std::string("-")) << std::setw(6)
              << text("rank") << "  " << text("device") << "\n";
        images.push_back(std::move(row));
    }
    const double rate = run.seconds > 0 ? static_cast<double>(run.images) / run.seconds : 0.0;
    const std::string source = concat("built from ", ManifestWriter::kFileName, " (the last line of each image) after a job of ",
                                      run.ranks, " ranks; no overview.png: rank 0 does not hold the other ranks' images");
    Json root = settings.is_object() ? std::move(settings) : Json(Json::Object{});
    root.set("command", run.command);
    root.set("summary_source", source);
    root.set("ranks", run.ranks);
    root.set("images_total", static_cast<std::int64_t>(paths.size()));
    root.set("images_ok", static_cast<std::int64_t>(ok));
    root.set("images_failed", static_cast<std::int64_t>(failed));
    root.set("images_missing", static_cast<std::int64_t>(missing));
    root.set("mean_psnr", scored > 0 ? Json(psnr / static_cast<double>(scored)) : Json());
    root.set("mean_ssim", scored > 0 ? Json(ssim / static_cast<double>(scored)) : Json());
    root.set("run_images", static_cast<std::int64_t>(run.images));
    root.set("run_seconds", run.seconds);
    root.set("run_images_per_second", rate);
    root.set("metrics_domain", "float: reconstruction clamped to [-1, 1] vs the target, data range 2");
    root.set("images", Json(std::move(images)));
    write_file_atomically(dir / "summary.json", root.dump() + "\n");

    std::ostringstream md;
    md << "# ganinv " << run.command << "\n\n_Summary " << source << "._\n\n"
       << paths.size() << " images: " << ok << " ok, " << failed << " failed" << (missing > 0 ? concat(", ", missing, " missing") : "")
       << "; mean PSNR " << (scored > 0 ? html::fixed(psnr / static_cast<double>(scored), 2) : "-") << " dB, mean SSIM "
       << (scored > 0 ? html::fixed(ssim / static_cast<double>(scored), 4) : "-") << " (float, over the ok images).\n"
       << "This run: " << run.images << " images in " << html::fixed(run.seconds, 1) << " s on " << run.ranks << " ranks, "
       << html::fixed(rate, 2) << " images/s.\n\n```\n" << table.str() << "```\n";
    write_file_atomically(dir / "summary.md", md.str());
}

}  // namespace ganinv::cli
