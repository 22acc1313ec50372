// ganinv tune: Pivotal Tuning Inversion. Inverts each image to a pivot code, then tunes the
// generator's synthesis weights around it, and writes per image the pivot code, the tuned
// generator (a complete model file), the pictures and the before/after scores.
#include "common.hpp"
#include "dataset_run.hpp"
#include "html_report.hpp"
#include "lpips_metric.hpp"
#include "tune_support.hpp"
#if GANINV_CLI_HAS_CUDA
#include "invert_cuda.hpp"
#include "tune_cuda.hpp"
#endif
#include "cuda_options_arg.hpp"

#include <iomanip>
#include <memory>
#include <iostream>
#include <sstream>

namespace ganinv::cli {
namespace {

struct TuneRow {
    std::string name, generator_file;
    metrics::Comparison before, after;
    std::optional<double> lpips_before, lpips_after;
    double pivot_seconds = 0;  ///< its inversion batch's wall time / the batch's images
    double tune_seconds = 0;   ///< its tuning job's wall time / the job's images
    Index tune_steps = 0;
};

/// --shared tunes one generator on all images at once: they must have one size (resizing them
/// to the generator would hide that they are different pictures of different framing).
void check_one_size(const std::vector<std::filesystem::path>& paths, std::uint64_t max_pixels) {
    std::optional<Image> first;
    for (const auto& p : paths) {
        const Image img = load_image(p, max_pixels);
        if (!first) first = img;
        else if (img.width != first->width || img.height != first->height)
            throw UsageError(concat("--shared tunes one generator on images of one size, but ", paths.front().string(),
                                    " is ", first->width, "x", first->height, " and ", p.string(), " is ", img.width,
                                    "x", img.height));
    }
}

/// The files of one tuned image, each complete or absent: on a failure the ones already written
/// are removed (a part of an image's outputs is not a result).
void write_image_outputs(const std::filesystem::path& dir, const std::string& name, const std::string& space,
                         const Tensor<float>& target, const Tensor<float>& ws, const std::vector<double>& pivot_history,
                         const Tensor<float>& pivot_img, const Tensor<float>& tuned_img) {
    std::vector<std::filesystem::path> written;
    try {
        SafetensorsWriter w;  // the pivot code, as `ganinv invert` writes a code
        w.add("ws", ws);
        if (!pivot_history.empty()) {
            std::vector<float> h(pivot_history.begin(), pivot_history.end());
            w.add("loss_history", {static_cast<Index>(h.size())}, h);
        }
        w.set_metadata("space", space);
        w.write(written.emplace_back(dir / (name + ".safetensors")));
        save_png(written.emplace_back(dir / (name + "_recon.png")), tensor_to_image(tuned_img));
        save_png(written.emplace_back(dir / (name + "_pivot.png")), tensor_to_image(pivot_img));
        const int factor = std::max<int>(1, 128 / static_cast<int>(target.dim(2)));
        save_png(written.emplace_back(dir / (name + "_compare.png")),
                 hconcat({enlarge(tensor_to_image(target), factor), enlarge(tensor_to_image(pivot_img), factor),
                          enlarge(tensor_to_image(tuned_img), factor), enlarge(difference_image(target, tuned_img, 0), factor)},
                         4));
    } catch (...) {
        std::error_code ec;  // files only: the name that failed may be a user's folder in the way
        for (const auto& p : written)
            if (std::filesystem::is_regular_file(p, ec)) std::filesystem::remove(p, ec);
        throw;
    }
}

/// --pivot DIR: every image's NAME.safetensors is there and holds ws of one shape, checked before
/// the job starts (one file at a time: a dataset's codes need not fit in memory together).
void check_given_pivots(const std::filesystem::path& dir, const std::vector<std::string>& names) {
    Shape first;
    for (const auto& name : names) {
        const Shape shape = load_pivot_file(dir / (name + ".safetensors")).shape();
        if (first.empty()) first = shape;
        GANINV_CHECK(shape == first, ShapeError, "--pivot: ", name, ".safetensors holds ws of shape ", shape_to_string(shape),
                     " but ", names.front(), ".safetensors ", shape_to_string(first));
    }
}

void print_tune_summary(std::ostream& os, const std::vector<TuneRow>& rows) {
    const bool lpips = !rows.empty() && rows[0].lpips_after.has_value();
    os << "\n" << std::left << std::setw(22) << "image" << std::right << std::setw(16) << "PSNR dB" << std::setw(18)
       << "SSIM";
    if (lpips) os << std::setw(18) << "LPIPS";
    os << std::setw(8) << "steps" << std::setw(16) << "s pivot + tune" << "\n";
    auto pair = [](double a, double b, int digits) { return html::fixed(a, digits) + " -> " + html::fixed(b, digits); };
    double p0 = 0, p1 = 0, s0 = 0, s1 = 0;
    for (const auto& r : rows) {
        os << std::left << std::setw(22) << r.name.substr(0, 21) << std::right << std::setw(16)
           << pair(r.before.psnr, r.after.psnr, 2) << std::setw(18) << pair(r.before.ssim, r.after.ssim, 4);
        if (lpips) os << std::setw(18) << pair(*r.lpips_before, *r.lpips_after, 4);
        os << std::setw(8) << r.tune_steps << std::setw(16)
           << (html::fixed(r.pivot_seconds, 1) + " + " + html::fixed(r.tune_seconds, 1)) << "\n";
        p0 += r.before.psnr, p1 += r.after.psnr, s0 += r.before.ssim, s1 += r.after.ssim;
    }
    const double n = static_cast<double>(std::max<std::size_t>(1, rows.size()));
    os << std::left << std::setw(22) << "mean" << std::right << std::setw(16) << pair(p0 / n, p1 / n, 2)
       << std::setw(18) << pair(s0 / n, s1 / n, 4) << "\n";
    os << "before -> after tuning: the pivot code through the original and the tuned generator (float images\n"
          "clamped to [-1, 1] vs the target, data range 2, the generator's constant noise).\n";
}

void write_tune_summary(const std::filesystem::path& dir, const std::vector<TuneRow>& rows, const std::string& model,
                        const std::string& device, const TuneSettings& s, bool report) {
    Json root{Json::Object{}};
    root.set("model", model);
    root.set("device", device);
    root.set("space", s.pivot_file ? std::string("given") : s.space);
    root.set("pivot_steps", static_cast<std::int64_t>(s.pivot_file ? 0 : s.pivot.steps));
    root.set("tune_steps", static_cast<std::int64_t>(s.tune.steps));
    root.set("tune_lr", s.tune.learning_rate);
    root.set("tuned_tensors", std::string(to_string(s.tune.selection.kinds)));
    root.set("layers", s.layers_text.empty() ? std::string(":") : s.layers_text);
    root.set("locality", s.tune.locality_weight);
    root.set("shared", s.shared);
    root.set("metrics_domain", "float: images clamped to [-1, 1] vs the target, data range 2");
    Json::Array images;
    for (const auto& r : rows) {
        Json j{Json::Object{}};
        j.set("name", r.name);
        j.set("generator", r.generator_file);
        j.set("psnr_before", r.before.psnr);
        j.set("psnr_after", std::isfinite(r.after.psnr) ? Json(r.after.psnr) : Json());
        j.set("ssim_before", r.before.ssim);
        j.set("ssim_after", r.after.ssim);
        if (r.lpips_after) j.set("lpips_before", *r.lpips_before), j.set("lpips_after", *r.lpips_after);
        j.set("tune_steps", static_cast<std::int64_t>(r.tune_steps));
        j.set("pivot_seconds", r.pivot_seconds);
        j.set("tune_seconds", r.tune_seconds);
        images.push_back(j);
    }
    root.set("images", images);
    write_file_atomically(dir / "summary.json", root.dump() + "\n");
    std::ostringstream table;
    print_tune_summary(table, rows);
    write_file_atomically(dir / "summary.md", "# ganinv tune\n\nmodel `" + model + "`\n\n```" + table.str() + "```\n");
    if (!report) return;
    std::ostringstream h;
    html::begin_page(h, "ganinv tuning report");
    h << "<p>model <code>" << html::escape(model) << "</code></p>\n<pre>" << html::escape(table.str()) << "</pre>\n"
      << "<p>Each row: target | pivot (original generator) | tuned generator | |target - tuned| x4.</p>\n";
    for (const auto& r : rows)
        h << "<div class=\"img\"><h3>" << html::escape(r.name) << "</h3><img src=\"" << html::escape(r.name)
          << "_compare.png\" alt=\"" << html::escape(r.name) << " comparison\"></div>\n";
    html::end_page(h);
    write_file_atomically(dir / "report.html", h.str());
}

int run_tune(const Args& a) {
    const std::string model = a.require("model"), out_dir = output_dir_option(a);
    const std::string device = a.get("device").value_or("cpu");
    if (device != "cpu" && device != "cuda") throw UsageError("--device must be cpu or cuda, got '" + device + "'");
    [[maybe_unused]] const cuda::CudaOptions cuda_options = cuda_options_from_args(a, device);  // used by the CUDA build
#if !GANINV_CLI_HAS_CUDA
    if (device == "cuda")
        throw UsageError("--device cuda: this ganinv was built without CUDA (CMake found no nvcc); rebuild on a "
                         "machine with the CUDA toolkit, or use --device cpu");
#endif
    // Every argument is checked here, before the model is loaded and before DIR is created.
    const std::string loss_text = a.get("loss").value_or(a.has("lpips-weights") ? "mse,lpips:1" : "mse");
    const std::vector<LossTermSpec> terms = parse_loss_terms(loss_text);
    bool has_lpips = false;
    for (const auto& t : terms) has_lpips |= t.name == "lpips";
    const TuneSettings s = tune_settings_from_args(a, has_lpips);
    const bool resume = a.has("resume");
    const std::vector<std::filesystem::path> paths = job_paths(a);
    const std::vector<std::string> names = unique_output_names(paths);
    const bool pivot_dir = s.pivot_file && std::filesystem::is_directory(*s.pivot_file);
    if (s.pivot_file && !pivot_dir && paths.size() != 1)
        throw UsageError("--pivot " + s.pivot_file->string() + " is one code for " + std::to_string(paths.size()) +
                         " images; give one --image, or a folder of NAME.safetensors codes");
    if (s.shared && resume)
        throw UsageError("--shared tunes one generator on all the images at once: a resumed run cannot tune it on a "
                         "part of them; run again without --resume");
    if (s.shared) check_one_size(paths, a.max_pixels());
    if (pivot_dir) check_given_pivots(*s.pivot_file, names);
    const std::unique_ptr<JobComm> comm = make_job_comm();
    if (s.shared && comm->size() > 1) {
        comm->finish();
        throw UsageError("--shared tunes one generator on all the images at once: it runs in one process, not as " +
                         std::to_string(comm->size()) + " MPI ranks");
    }

    const std::string config_text = [&] {
        const auto c = SafetensorsFile(model).metadata("config");
        if (!c) throw FormatError("model '" + model + "' has no 'config' metadata: not a ganinv generator file");
        return *c;
    }();
    const StyleGAN2Config config = StyleGAN2Config::from_json(Json::parse(config_text));
    std::unique_ptr<TuneJob> job;
    std::string device_label = "cpu";
#if GANINV_CLI_HAS_CUDA
    if (device == "cuda") {
        device_label = concat("cuda:", select_cuda_device(comm->local_rank()));  // one GPU per rank of a node
        job = make_cuda_tune_job(model, terms, a, cuda_options, s, config_text);
        std::cerr << "device (rank " << comm->rank() << "): " << device_label << ", " << job->device_name() << "\n";
    }
#endif
    if (!job)
        job = std::make_unique<TuneRunner<StyleGAN2<Cpu>, WeightedLossSum<Cpu>>>(
            [&] { return StyleGAN2<Cpu>::load(model); }, [&] { return build_cli_loss<Cpu>(terms, a); }, s, config_text);
    std::optional<Lpips<Cpu>> lpips_metric;
    if (a.has("lpips-weights")) lpips_metric.emplace(load_lpips(*a.get("lpips-weights"), a.get("vgg-weights")));
    TuneJob& runner = *job;

    OutputSpec spec;  // what --resume reads back: the pivot code, the pictures and the tuned generator
    spec.resolution = runner.resolution();
    spec.channels = runner.img_channels();
    spec.num_ws = config.num_ws();
    spec.w_dim = config.w_dim;
    spec.space = s.pivot_file ? "given" : s.space;
    spec.pictures = {"_recon.png", "_pivot.png", "_compare.png"};
    spec.models = {".generator.safetensors"};
    // --shared: one batch, one tuning job on all images; otherwise invert's batches for the pivots.
    const Index batch = s.shared ? static_cast<Index>(paths.size()) : TuneRunner<StyleGAN2<Cpu>, WeightedLossSum<Cpu>>::kPivotBatch;
    DatasetJob dataset(*comm, {"tune", "tuned", out_dir, batch, resume, device_label}, paths,
                       [&](const std::string& name) { return verify_outputs(out_dir, name, spec); });
    if (!dataset.started()) return 1;  // rank 0 says why

    const std::filesystem::path dir(out_dir);
    std::vector<TuneRow> rows;  // this process's images, for the summary files of a one-process run
    long long generators = 0;
    dataset.run([&](const JobBatch& b) -> JobTally {
        JobTally tally;
        const DatasetJob::LoadedBatch loaded = dataset.load_batch(b, spec.resolution, spec.channels, a, tally);
        const std::vector<long long>& ids = loaded.ids;
        if (ids.empty()) return tally;
        const Index n = static_cast<Index>(ids.size());
        const auto fail_all = [&](const std::vector<long long>& which, const std::string& why, double seconds) {
            for (long long i : which) dataset.fail(i, why, seconds);
            tally.failed += static_cast<long long>(which.size());
        };
        PivotSet pivots;
        try {
            if (s.pivot_file) {
                std::vector<std::string> batch_names;
                for (long long i : ids) batch_names.push_back(dataset.name(i));
                pivots = {"given", load_given_pivots(*s.pivot_file, batch_names),
                          std::vector<std::vector<double>>(ids.size()), std::vector<double>(ids.size(), 0.0)};
            } else {
                std::optional<ProgressBar> bar;  // in a one-process run; ranks share the job's progress line
                Index bar_batch = 0;
                pivots = runner.invert(loaded.images, [&](Index batch, Index batches, const InversionProgress& p) {
                    if (dataset.many()) return;
                    if (batch != bar_batch) {
                        if (bar) bar->finish();
                        bar.emplace(concat("pivots, batch ", batch, "/", batches), s.pivot.steps);
                        bar_batch = batch;
                    }
                    bar->update(p);
                });
                if (bar) bar->finish();
            }
        } catch (const Error& e) {
            fail_all(ids, concat("pivot inversion failed: ", e.what()), 0.0);
            return tally;
        }
        const Index per_job = s.shared ? n : 1;
        for (Index j0 = 0; j0 < n; j0 += per_job) {
            const std::vector<long long> job_ids(ids.begin() + j0, ids.begin() + j0 + per_job);
            const Tensor<float> t = slice_batch(loaded.images, j0, per_job);
            const std::string label = s.shared ? std::string("shared") : dataset.name(job_ids[0]);
            const std::string generator_name = label + ".generator.safetensors";
            TuneResult r;
            std::vector<double> lpips_before, lpips_after;
            try {
                std::optional<ProgressBar> tune_bar;
                if (!dataset.many()) tune_bar.emplace(label + " tune", s.tune.steps);
                runner.set_tune_progress([&](Index step, Index total, double mean_loss) {
                    const std::vector<double> v{mean_loss};
                    if (tune_bar) tune_bar->update(InversionProgress{step, total, &v, nullptr, per_job});
                });
                r = runner.tune(t, slice_batch(pivots.ws, j0, per_job), dir / generator_name, label);
                if (tune_bar) tune_bar->finish();
                if (lpips_metric) {  // clamped, as the pictures show them
                    auto clamped = [](Tensor<float> x) {
                        for (float& v : x.values()) v = std::fmin(1.0f, std::fmax(-1.0f, v));
                        return x;
                    };
                    lpips_before = lpips_metric->distance(clamped(r.before), t);
                    lpips_after = lpips_metric->distance(clamped(r.after), t);
                }
            } catch (const Error& e) {
                fail_all(job_ids, concat("tuning failed: ", e.what()), 0.0);
                continue;
            }
            ++generators;
            long long written = 0;
            for (Index i = 0; i < per_job; ++i) {
                const auto k = static_cast<std::size_t>(i), image = static_cast<std::size_t>(j0 + i);
                TuneRow row;
                row.name = dataset.name(job_ids[k]);
                row.generator_file = generator_name;
                row.before = r.metrics_before[k];
                row.after = r.metrics_after[k];
                if (lpips_metric) row.lpips_before = lpips_before[k], row.lpips_after = lpips_after[k];
                row.pivot_seconds = pivots.seconds[image];
                row.tune_seconds = r.seconds / static_cast<double>(per_job);
                row.tune_steps = r.steps_run;
                try {
                    write_image_outputs(dir, row.name, pivots.space, slice_batch(t, i, 1), slice_batch(pivots.ws, j0 + i, 1),
                                        pivots.history[image], slice_batch(r.before, i, 1), slice_batch(r.after, i, 1));
                    ManifestEntry e = dataset.entry(job_ids[k]);
                    e.ok = true;
                    e.psnr = row.after.psnr;  // the tuned generator's, as the summary's "after"
                    e.ssim = row.after.ssim;
                    e.steps = row.tune_steps;
                    e.seconds = row.pivot_seconds + row.tune_seconds;
                    e.extra = {{"generator", Json(generator_name)},
                               {"psnr_before", std::isfinite(row.before.psnr) ? Json(row.before.psnr) : Json()},
                               {"ssim_before", Json(row.before.ssim)}};
                    dataset.record(e);  // last: the line vouches for outputs already in place
                    ++tally.done;
                    ++written;
                    if (!dataset.many()) rows.push_back(row);
                } catch (const Error& e) {
                    dataset.fail(job_ids[k], e.what(), row.pivot_seconds + row.tune_seconds);
                    ++tally.failed;
                }
            }
            if (written == 0) {  // no image vouches for this generator: not a result
                std::error_code ec;
                std::filesystem::remove(dir / generator_name, ec);
            }
        }
        return tally;
    });

    if (!dataset.many() && !rows.empty()) {  // the images this process tuned; the manifest has the whole job
        std::vector<Image> strips;  // DIR/overview.png: every comparison strip, one per row
        for (const auto& r : rows) strips.push_back(load_image(dir / (r.name + "_compare.png")));
        save_png(dir / "overview.png", make_grid(strips, strips.size() > 8 ? 2 : 1, 6, 255));
        print_tune_summary(std::cout, rows);
        write_tune_summary(dir, rows, model, runner.device_name(), s, a.has("report"));
        std::cout << "tuned " << runner.tuned_tensors() << " tensor(s); wrote " << generators << " generator file(s) to "
                  << out_dir << "\n";
    }
    Json settings{Json::Object{}};
    settings.set("model", model);
    settings.set("space", s.pivot_file ? std::string("given") : s.space);
    settings.set("pivot_steps", static_cast<std::int64_t>(s.pivot_file ? 0 : s.pivot.steps));
    settings.set("tune_steps", static_cast<std::int64_t>(s.tune.steps));
    settings.set("tune_lr", s.tune.learning_rate);
    settings.set("psnr_ssim", "after tuning: the pivot code through the tuned generator (psnr_before: the original)");
    dataset.write_manifest_summary(std::move(settings));
    return dataset.finish();
}

const bool tune_registered = register_command(Command{
    "tune",
    "Pivotal Tuning Inversion: invert images, then tune the generator's weights around the codes.",
    "--model M.safetensors (--image A.png [B.png ...] | --dir D | --list FILE) --out DIR [--resume]\n"
    "       [--pivot-steps 450] [--tune-steps 350] [--tune-lr 3e-4] [--space w|wplus] [--loss mse,lpips:1]\n"
    "       [--layers a:b] [--params all|torgb|biases] [--locality W] [--target-loss L] [--shared]\n"
    "       [--pivot C.safetensors|DIR] [--seed S] [--lpips-weights F [--vgg-weights F]] [--identity-weights F]\n"
    "       [--device cpu|cuda] [--cuda-precision fp32|tf32|bf16] [--cuda-wgrad auto|per_tap|all_taps|all_taps_fp32]\n"
    "       [--no-resize] [--max-pixels N] [--report]",
    {
        {"model", "M.safetensors", "generator weights"},
        {"image", "FILE", "image files to tune for (PNG, JPEG, BMP)", true},
        {"dir", "D", "tune for every image file in this directory"},
        {"list", "FILE", "tune for the images named in FILE, one path a line (relative to FILE's folder)"},
        {"out", "DIR", "output directory (created); DIR/manifest.jsonl gets a line per image, DIR/ganinv.lock keeps a second job out"},
        {"resume", "", "skip the images whose manifest line says ok and whose outputs read back whole; redo the others"},
        {"pivot-steps", "N", "Adam steps of the pivot inversion (official projector schedule; default 450)"},
        {"tune-steps", "N", "Adam steps over the generator's weights (default 350)"},
        {"tune-lr", "LR", "learning rate of the weight tuning (default 3e-4)"},
        {"space", "SPACE", "the pivot's space: w (default, as PTI) or wplus"},
        {"loss", "SPEC", "TERM[:WEIGHT],... for pivot and tuning: mse, l1, charbonnier, lpips, vgg, identity (default mse, "
                         "with --lpips-weights mse,lpips:1)"},
        {"layers", "a:b", "tune only the layers fed by w indices a..b-1 (default: all)"},
        {"params", "KIND", "all (default), torgb (ToRGB layers only) or biases (biases only)"},
        {"locality", "W", "weight of PTI's locality regulariser (default 0: off, as PTI)"},
        {"target-loss", "L", "stop tuning once every image's LPIPS term (else its loss) is <= L (PTI: 0.06)"},
        {"shared", "", "tune one generator for all images (DIR/shared.generator.safetensors)"},
        {"pivot", "C", "pivot codes instead of the inversion: a code file (tensor 'ws', as invert writes it) for one "
                       "image, or invert's output folder (NAME.safetensors per image NAME)"},
        {"seed", "S", "random seed (default 0)"},
        {"lpips-weights", "F", "LPIPS v0.1 linear weights: the lpips term and LPIPS columns in the summary"},
        {"vgg-weights", "F", "VGG16 trunk weights for the lpips/vgg terms"},
        {"identity-weights", "F", "face-recognition ResNet (safetensors, tools/README_face_api.md) for the identity term"},
        {"device", "DEV", "cpu (default) or cuda: pivots and tuning on the GPU (under MPI: local rank % GPUs)"},
        cuda_precision_option(),
        cuda_wgrad_option(),
        {"no-resize", "", "fail on images of another size instead of resizing them (with a warning)"},
        max_pixels_option(),
        {"report", "", "also write DIR/report.html"},
    },
    run_tune});

}  // namespace
}  // namespace ganinv::cli
