// ganinv invert: finds the latent codes of images with a StyleGAN2 generator and writes, per
// image, the code, the reconstruction, a side-by-side comparison and a loss curve.
#include "common.hpp"
#include "cuda_options_arg.hpp"
#include "dataset_job.hpp"
#include "encoder_support.hpp"
#include "job_comm.hpp"
#include "invert_support.hpp"
#include "lpips_metric.hpp"
#if GANINV_CLI_HAS_CUDA
#include "invert_cuda.hpp"
#endif

#include <ganinv/cuda/options.hpp>
#include <ganinv/invert/inverter.hpp>
#include <ganinv/optim/optim.hpp>

#include <cmath>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

namespace ganinv::cli {
namespace {

/// The images of the job: --list FILE, then --image and --dir as before.
std::vector<std::filesystem::path> job_paths(const Args& a) {
    std::vector<std::filesystem::path> paths;
    if (a.has("list")) paths = read_path_list(*a.get("list"));
    if (!a.has("list") || a.has("image") || a.has("dir")) {
        const auto more = collect_image_paths(a);
        paths.insert(paths.end(), more.begin(), more.end());
    }
    return paths;
}

/// Rank 0, holding the lock: the indices of the images this run inverts. Without --resume that
/// is every image (and the manifest starts afresh); with it, every image but those whose last
/// manifest line says ok AND whose outputs read back whole.
std::vector<long long> plan_images(const std::filesystem::path& out, const std::vector<std::filesystem::path>& paths,
                                   const std::vector<std::string>& names, const OutputSpec& spec, bool resume) {
    if (const int n = remove_stale_temporaries(out); n > 0)
        std::cerr << "note: removed " << n << " temporary file(s) that an interrupted job left in " << out.string() << "\n";
    std::vector<long long> todo;
    if (!resume) {
        write_file_atomically(out / ManifestWriter::kFileName, std::string_view());
        for (std::size_t i = 0; i < paths.size(); ++i) todo.push_back(static_cast<long long>(i));
        return todo;
    }
    int bad_lines = 0;
    const std::set<std::string> done = images_done_in_manifest(out, bad_lines);
    if (bad_lines > 0) std::cerr << "warning: " << bad_lines << " manifest line(s) could not be read; their images are redone\n";
    for (std::size_t i = 0; i < paths.size(); ++i) {
        if (done.count(paths[i].string()) != 0) {
            const std::string why = verify_outputs(out, names[i], spec);
            if (why.empty()) continue;
            std::cerr << "resume: redoing " << paths[i].string() << ": " << why << "\n";
        }
        todo.push_back(static_cast<long long>(i));
    }
    std::cerr << "resume: " << paths.size() - todo.size() << " of " << paths.size() << " images are done, " << todo.size()
              << " to invert\n";
    return todo;
}

int run_invert(const Args& a) {
    const std::string model = a.require("model"), out_dir = output_dir_option(a);
    const std::string device = a.get("device").value_or("cpu");
    if (device != "cpu" && device != "cuda") throw UsageError("--device must be cpu or cuda, got '" + device + "'");
    [[maybe_unused]] const cuda::CudaOptions cuda_options = cuda_options_from_args(a, device);  // checked before the GPU is touched
    // Every argument is checked here, before the model is loaded and before DIR is created.
    const std::string space = space_option(a, "wplus");
    const std::string optimizer = optimizer_option(a, true, "invert");
    const std::vector<LossTermSpec> terms = parse_loss_terms(a.get("loss").value_or("mse"));
    const Index batch = batch_option(a);
    const bool resume = a.has("resume");
    InverterOptions o = inverter_options_from_args(a);
    o.w_statistics_cache = std::make_shared<LatentStatistics>();  // one generator: W statistics once, not per batch
    const std::vector<std::filesystem::path> paths = job_paths(a);
    const std::optional<PspEncoder> init_encoder = encoder_init_option(a, space, model);  // --init encoder:E
    const std::vector<std::string> names = unique_output_names(paths);
    // Every rank lists the same images in the same order (a sorted folder or the list file) and
    // names their outputs alike; rank 0 alone decides which of them this run inverts.
    const std::unique_ptr<JobComm> comm = make_job_comm();
    const bool many = comm->size() > 1;

    // One of the two runs the batches: the CPU generator and loss, or their CUDA twins.
    std::function<InversionResult(const InverterOptions&, const Tensor<float>&)> invert_batch;
    OutputSpec spec;
    spec.space = space;
    spec.fixed_noise_png = o.optimize_noise;
    std::string device_label = "cpu";
    std::optional<StyleGAN2<Cpu>> g;
    std::optional<WeightedLossSum<Cpu>> loss;
#if GANINV_CLI_HAS_CUDA
    std::unique_ptr<CudaInversion> gpu;
#endif
    if (device == "cuda") {
#if GANINV_CLI_HAS_CUDA
        device_label = concat("cuda:", select_cuda_device(comm->local_rank()));  // one GPU per rank of a node
        gpu = std::make_unique<CudaInversion>(model, terms, a, cuda_options);
        std::cerr << "device (rank " << comm->rank() << "): " << device_label << ", " << gpu->device_name() << "\n";
        spec.resolution = gpu->resolution();
        spec.channels = gpu->img_channels();
        spec.num_ws = gpu->num_ws();
        spec.w_dim = gpu->w_dim();
        invert_batch = [&](const InverterOptions& o, const Tensor<float>& t) { return gpu->run(space, optimizer, a, o, t); };
#else
        throw UsageError("--device cuda: this ganinv was built without CUDA (CMake found no nvcc); rebuild on a "
                         "machine with the CUDA toolkit, or use --device cpu");
#endif
    } else {
        g.emplace(StyleGAN2<Cpu>::load(model));
        loss.emplace(build_cli_loss<Cpu>(terms, a));
        spec.resolution = g->resolution();
        spec.channels = g->img_channels();
        spec.num_ws = g->num_ws();
        spec.w_dim = g->w_dim();
        invert_batch = [&](const InverterOptions& o, const Tensor<float>& t) {
            return run_inversion(space, optimizer, a, *g, *loss, o, t);
        };
    }
    // LPIPS as a reported metric whenever its weights are given (whatever the loss).
    std::optional<Lpips<Cpu>> lpips_metric;
    if (a.has("lpips-weights")) lpips_metric.emplace(load_lpips(*a.get("lpips-weights"), a.get("vgg-weights")));

    // Rank 0 takes the folder (lock, leftovers, the plan) and tells the others the plan, or that
    // there is none: "ok i j k ..." or "error".
    const std::filesystem::path out(out_dir);
    std::optional<OutputLock> lock;
    std::string plan = "error";
    std::exception_ptr plan_failure;
    if (comm->rank() == 0) {
        try {
            std::filesystem::create_directories(out);
            lock.emplace(out);
            std::ostringstream os;
            os << "ok";
            for (long long i : plan_images(out, paths, names, spec, resume)) os << ' ' << i;
            plan = os.str();
        } catch (...) {
            plan_failure = std::current_exception();
        }
    }
    plan = comm->broadcast(plan);
    if (plan_failure) {
        comm->finish();
        std::rethrow_exception(plan_failure);
    }
    if (plan.rfind("ok", 0) != 0) {  // the others: rank 0 says why
        comm->finish();
        return 1;
    }
    std::vector<long long> todo;
    {
        std::istringstream is(plan.substr(2));
        for (long long i; is >> i;) todo.push_back(i);
    }
    // Batches of consecutive images of the plan: the same batches whatever the number of ranks,
    // so an image is inverted with the same neighbours and seed, and gets the same code.
    std::vector<JobBatch> batches;
    for (std::size_t b0 = 0; b0 < todo.size(); b0 += static_cast<std::size_t>(batch))
        batches.emplace_back(todo.begin() + static_cast<std::ptrdiff_t>(b0),
                             todo.begin() + static_cast<std::ptrdiff_t>(std::min(todo.size(), b0 + static_cast<std::size_t>(batch))));

    ManifestWriter manifest(out);
    std::vector<ImageSummary> summary;  // this process's images, for the summary files of a one-process run
    // One write per message: rank 0's worker thread and its progress line share stderr.
    const auto say = [](const std::string& line) { std::cerr << (line + "\n") << std::flush; };
    const auto fail = [&](long long i, const std::string& why, double seconds) {
        say(concat("error: ", paths[static_cast<std::size_t>(i)].string(), ": ", why));
        ManifestEntry e;
        e.image = paths[static_cast<std::size_t>(i)].string();
        e.name = names[static_cast<std::size_t>(i)];
        e.error = why;
        e.seconds = seconds;
        e.rank = comm->rank();
        e.device = device_label;
        manifest.append(e);
    };
    long long batch_number = 0;
    const auto work = [&](const JobBatch& b) -> JobTally {
        JobTally tally;
        std::vector<long long> ids;
        std::vector<Tensor<float>> rows;
        for (long long i : b) {
            try {
                std::vector<std::string> warnings;
                rows.push_back(load_target(paths[static_cast<std::size_t>(i)], spec.resolution, spec.channels,
                                           !a.has("no-resize"), a.max_pixels(), warnings));
                for (const auto& msg : warnings) say("warning: " + msg);
                ids.push_back(i);
            } catch (const Error& e) {
                fail(i, e.what(), 0.0);
                ++tally.failed;
            }
        }
        if (ids.empty()) return tally;
        const Tensor<float> t = stack_rows(rows, spec.channels, spec.resolution);
        InversionResult r;
        std::vector<double> lpips;
        try {
            std::optional<ProgressBar> bar;  // per batch in a one-process run; ranks share the job's line
            if (!many) bar.emplace(concat("batch ", ++batch_number, "/", batches.size()), o.steps);
            InverterOptions ob = o;
            if (init_encoder) ob.init.codes = encoder_init_codes(*init_encoder, t, space);  // hybrid: the encoder's codes
            ob.on_progress = [&](const InversionProgress& p) {
                if (bar) bar->update(p);
            };
            r = invert_batch(ob, t);
            if (bar) bar->finish();
            if (lpips_metric) {  // the summary's LPIPS column: target vs the (clamped) reconstruction
                Tensor<float> recon = r.reconstruction;
                for (float& v : recon.values()) v = std::fmin(1.0f, std::fmax(-1.0f, v));
                lpips = lpips_metric->distance(recon, t);
            }
        } catch (const Error& e) {
            for (long long i : ids) fail(i, concat("inversion failed: ", e.what()), 0.0);
            tally.failed += static_cast<long long>(ids.size());
            return tally;
        }
        for (std::size_t k = 0; k < ids.size(); ++k) {
            const auto i = static_cast<std::size_t>(ids[k]);
            try {
                ImageSummary s = write_image_outputs(out_dir, names[i], static_cast<Index>(k), t, r);
                if (!lpips.empty()) s.lpips = lpips[k];
                ManifestEntry e;
                e.image = paths[i].string();
                e.name = names[i];
                e.ok = true;
                e.psnr = s.m.psnr;
                e.ssim = s.m.ssim;
                e.steps = s.steps;
                e.seconds = s.seconds;
                e.rank = comm->rank();
                e.device = device_label;
                manifest.append(e);  // last: the line vouches for outputs already in place
                if (!many) summary.push_back(s);
                ++tally.done;
            } catch (const Error& e) {
                fail(ids[k], e.what(), r.seconds / static_cast<double>(ids.size()));
                ++tally.failed;
            }
        }
        return tally;
    };
    std::optional<JobProgress> progress;
    if (comm->rank() == 0) progress.emplace(static_cast<long long>(todo.size()), many ? 10.0 : 1e9);
    const JobTally total = comm->run_queue(batches, work, [&](const JobTally& t) {
        if (progress) progress->update(t.done + t.failed, t.failed);
    });

    if (!many && !summary.empty()) {  // the images this process inverted; the manifest has the whole job
        write_overview(out_dir, summary);
        print_summary(std::cout, summary);
        write_summary_files(out_dir, summary, model, space, optimizer, o, a.has("report"));
    }
    lock.reset();
    comm->finish();
    if (total.failed > 0) {
        if (comm->rank() == 0)
            std::cerr << total.failed << " of " << todo.size() << " image(s) failed (listed above and in "
                      << (out / ManifestWriter::kFileName).string() << " with status \"error\"); the others were inverted\n";
        return 1;
    }
    return 0;
}

const bool registered = register_command(Command{
    "invert",
    "Find the latent codes of images (GAN inversion) and write codes, reconstructions and reports.",
    "--model M.safetensors (--image A.png [B.png ...] | --dir D | --list FILE) --out DIR [--resume]\n"
    "       [--space z|w|wplus|s] [--loss mse,lpips:W,...] [--optimizer adam|lbfgs|cmaes|basincma]\n"
    "       [--steps N] [--seed S] [--device cpu|cuda] [--cuda-precision fp32|tf32|bf16] [--optimize-noise] [--batch B]\n"
    "       [--init mean|random|C.safetensors] [--lpips-weights F [--vgg-weights F]] [--no-resize] [--max-pixels N] [--report]\n"
    "       Adam: [--lr LR] [--no-schedule]  noise: [--noise-regularization W]\n"
    "       priors: [--w-avg-prior W] [--wplus-spread-prior W]  stopping: [--target-loss L] [--patience K]\n"
    "       CMA-ES, BasinCMA: [--population P] [--sigma S] [--inner-steps K] [--final-steps K]\n"
    "       L-BFGS: [--lbfgs-history K]",
    {
        {"model", "M.safetensors", "generator weights"},
        {"image", "FILE", "image files to invert (PNG, JPEG, BMP)", true},
        {"dir", "D", "invert every image file in this directory"},
        {"list", "FILE", "invert the images named in FILE, one path a line (relative to FILE's folder)"},
        {"out", "DIR", "output directory (created); DIR/manifest.jsonl gets a line per image, DIR/ganinv.lock keeps a second job out"},
        {"resume", "", "skip the images whose manifest line says ok and whose outputs read back whole; redo the others"},
        {"space", "SPACE", "latent space: z, w, wplus (default) or s"},
        {"loss", "SPEC", "comma list of TERM[:WEIGHT]: mse (default), l1, charbonnier, lpips, vgg"},
        {"vgg-weights", "F", "VGG16 trunk weights (safetensors) for the lpips/vgg terms and the LPIPS column"},
        {"lpips-weights", "F", "LPIPS v0.1 linear weights (safetensors): the lpips term, and an LPIPS column in the summary"},
        {"optimizer", "OPT", "adam (default, official projector schedule), lbfgs, cmaes or basincma"},
        {"steps", "N", "optimizer steps (CMA-ES: generations; BasinCMA: outer iterations); default 500"},
        {"seed", "S", "random seed (default 0)"},
        {"init", "KIND", "mean (default), random, a file with 'ws' (or 'z' for --space z), or encoder:E.safetensors (hybrid)"},
        {"lr", "LR", "initial learning rate (Adam, default 0.1)"},
        {"no-schedule", "", "Adam with a constant learning rate and no exploration noise"},
        {"optimize-noise", "", "optimise the noise maps too (regularised as the official projector)"},
        {"noise-regularization", "W", "weight of the noise regulariser (default 1e5)"},
        {"w-avg-prior", "W", "weight of an L2 pull of the code towards the mean w (default 0)"},
        {"wplus-spread-prior", "W", "weight of the distance of W+ layers from their mean (default 0)"},
        {"target-loss", "L", "stop an image once its loss is at or below L"},
        {"patience", "K", "stop an image after K steps without relative improvement 1e-4"},
        {"population", "P", "CMA-ES population (default 4 + 3 ln n)"},
        {"sigma", "S", "CMA-ES initial step size (default 0.5)"},
        {"inner-steps", "K", "BasinCMA: Adam steps per sample (default 30)"},
        {"final-steps", "K", "BasinCMA: final Adam steps (default 300)"},
        {"lbfgs-history", "K", "L-BFGS history size (default 10)"},
        {"batch", "B", "images inverted together (default 8)"},
        {"no-resize", "", "fail on images of another size instead of resizing them (with a warning)"},
        {"device", "DEV", "cpu (default) or cuda"},
        cuda_precision_option(),
        {"report", "", "also write DIR/report.html (static page with every picture and the metrics)"},
        max_pixels_option(),
    },
    run_invert});

}  // namespace
}  // namespace ganinv::cli
