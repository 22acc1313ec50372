// ganinv invert: finds the latent codes of images with a StyleGAN2 generator and writes, per
// image, the code, the reconstruction, a side-by-side comparison and a loss curve.
#include "common.hpp"
#include "cuda_options_arg.hpp"
#include "dataset_run.hpp"
#include "encoder_support.hpp"
#include "invert_support.hpp"
#include "lpips_metric.hpp"
#if GANINV_CLI_HAS_CUDA
#include "invert_cuda.hpp"
#endif

#include <ganinv/cuda/options.hpp>
#include <ganinv/invert/domain_regularizer.hpp>
#include <ganinv/invert/inverter.hpp>
#include <ganinv/optim/optim.hpp>

#include <chrono>
#include <cmath>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

namespace ganinv::cli {
namespace {

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
    std::optional<EncoderInit> init_encoder = encoder_init_option(a, space, model);  // --init encoder:E
    // --domain-regularization L (in-domain inversion): its encoder is --encoder, else the --init one.
    const std::optional<double> domain_weight = domain_regularization_option(a, space, device);
    std::optional<PspEncoder> domain_encoder;
    if (domain_weight) domain_encoder.emplace(a.has("encoder") ? load_encoder_for_model(*a.get("encoder"), model) : init_encoder->encoder);
    if (domain_encoder && domain_encoder->iterative())  // E(G(w)) is one pass over the image alone
        throw UsageError("--domain-regularization needs a single-pass encoder; this one is iterative (ReStyle, trained "
                         "with --iterations): give a single-pass encoder with --encoder");
    Json domain_settings{Json::Object{}};  // recorded in the manifest's summary of a multi-process job
    if (domain_weight) {
        domain_settings.set("domain_regularization", *domain_weight);
        domain_settings.set("domain_encoder", a.has("encoder") ? *a.get("encoder") : a.get("init").value_or("").substr(8));
    }
    o.w_mahalanobis = true;  // every run reports how far its codes lie from the W distribution
    // Every rank lists the same images in the same order (a sorted folder or the list file) and
    // names their outputs alike; rank 0 alone decides which of them this run inverts.
    const std::unique_ptr<JobComm> comm = make_job_comm();

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
        if (domain_weight) gpu->set_domain_regularization(*domain_encoder, *domain_weight, o.fixed_noise, o.seed);
        invert_batch = [&](const InverterOptions& o, const Tensor<float>& t) { return gpu->run(space, optimizer, a, o, t); };
#else
        throw UsageError("--device cuda: this ganinv was built without CUDA (CMake found no nvcc); rebuild on a "
                         "machine with the CUDA toolkit, or use --device cpu");
#endif
    } else {
        g.emplace(StyleGAN2<Cpu>::load(model));
        loss.emplace(build_cli_loss<Cpu>(terms, a));
        if (domain_weight)
            o.code_regularizer = make_domain_regularization(*g, *domain_encoder, *domain_weight, o.fixed_noise, o.seed);
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

    const DatasetJob::Spec job_spec{"invert", "inverted", out_dir, batch, resume, device_label};
    DatasetJob job(*comm, job_spec, paths, [&](const std::string& name) { return verify_outputs(out_dir, name, spec); });
    if (!job.started()) return 1;  // rank 0 says why

    std::vector<ImageSummary> summary;  // this process's images, for the summary files of a one-process run
    long long batch_number = 0;
    const auto work = [&](const JobBatch& b) -> JobTally {
        JobTally tally;
        DatasetJob::LoadedBatch loaded = job.load_batch(b, spec.resolution, spec.channels, a, tally);
        const std::vector<long long>& ids = loaded.ids;
        if (ids.empty()) return tally;
        const Tensor<float>& t = loaded.images;
        InversionResult r;
        std::vector<double> lpips;
        try {
            std::optional<ProgressBar> bar;  // per batch in a one-process run; ranks share the job's line
            if (!job.many()) bar.emplace(concat("batch ", ++batch_number, "/", job.batch_count()), o.steps);
            InverterOptions ob = o;
            if (init_encoder)  // hybrid: the encoder's codes
                ob.init.codes = encoder_init_codes(*init_encoder, g ? &*g : nullptr, t, space);
            ob.on_progress = [&](const InversionProgress& p) {
                if (bar) bar->update(p);
            };
            r = invert_batch(ob, t);
            if (bar) bar->finish();
            if (r.launch_mode.find("graph capture failed") != std::string::npos)  // slower, still right
                DatasetJob::say(concat("note: batch of ", ids.size(), " image(s) from ", job.path(ids.front()).string(),
                                       ": its steps ran as ", r.launch_mode.substr(8)));
            if (lpips_metric) {  // the summary's LPIPS column: target vs the (clamped) reconstruction
                Tensor<float> recon = r.reconstruction;
                for (float& v : recon.values()) v = std::fmin(1.0f, std::fmax(-1.0f, v));
                lpips = lpips_metric->distance(recon, t);
            }
        } catch (const Error& e) {
            for (long long i : ids) job.fail(i, concat("inversion failed: ", e.what()), 0.0);
            tally.failed += static_cast<long long>(ids.size());
            return tally;
        }
        // The files are written while the next batch inverts (one process); the rows join the
        // summary when they are done.
        tally += job.write_results_overlapped(ids, std::move(loaded.images), std::move(r),
                                              [&summary, &job, lpips](std::vector<std::optional<ImageSummary>>& rows) {
                                                  for (std::size_t k = 0; k < rows.size(); ++k) {
                                                      if (rows[k] && !lpips.empty()) rows[k]->lpips = lpips[k];
                                                      if (rows[k] && !job.many()) summary.push_back(std::move(*rows[k]));
                                                  }
                                              });
        return tally;
    };
    job.run(work);

    if (!job.many() && !summary.empty()) {  // the images this process inverted; the manifest has the whole job
        const auto t0 = std::chrono::steady_clock::now();
        write_overview(out_dir, summary);
        print_summary(std::cout, summary);
        job.times().summary = seconds_since(t0);  // the summary files, a few kB, are written after this
        write_summary_files(out_dir, summary, model, space, optimizer, o, a.has("report"), "invert", job.times().to_json());
        DatasetJob::say(job.times().line());
    }
    Json settings{Json::Object{}};
    settings.set("model", model);
    settings.set("space", space);
    settings.set("optimizer", optimizer);
    settings.set("steps", static_cast<std::int64_t>(o.steps));
    settings.set("seed", static_cast<std::int64_t>(o.seed));
    settings.set("optimize_noise", o.optimize_noise);
    if (optimizer == "adam" || optimizer == "basincma") settings.set("schedule", schedule_description(o));
    for (const auto& [key, value] : domain_settings.as_object()) settings.set(key, value);
    job.write_manifest_summary(std::move(settings));
    return job.finish();
}

const bool invert_registered = register_command(Command{
    "invert",
    "Find the latent codes of images (GAN inversion) and write codes, reconstructions and reports.",
    "--model M.safetensors (--image A.png [B.png ...] | --dir D | --list FILE) --out DIR [--resume]\n"
    "       [--space z|w|wplus|s] [--loss mse,lpips:W,...] [--optimizer adam|lbfgs|cmaes|basincma]\n"
    "       [--steps N] [--seed S] [--device cpu|cuda] [--cuda-precision fp32|tf32|bf16] [--optimize-noise] [--batch B]\n"
    "       [--init mean|random|C.safetensors|encoder:E.safetensors] [--lpips-weights F [--vgg-weights F]]\n"
    "       [--identity-weights F] [--no-resize] [--max-pixels N] [--report]\n"
    "       in-domain: [--domain-regularization L [--encoder E.safetensors]]\n"
    "       Adam: [--lr LR] [--no-schedule | --lr-rampup F --lr-rampdown F --w-noise F]  noise: [--noise-regularization W]\n"
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
        {"loss", "SPEC", "comma list of TERM[:WEIGHT]: mse (default), l1, charbonnier, lpips, vgg, identity"},
        {"vgg-weights", "F", "VGG16 trunk weights (safetensors) for the lpips/vgg terms and the LPIPS column"},
        {"lpips-weights", "F", "LPIPS v0.1 linear weights (safetensors): the lpips term, and an LPIPS column in the summary"},
        {"identity-weights", "F", "face-recognition ResNet (safetensors, tools/README_face_api.md) for the identity term"},
        {"optimizer", "OPT", "adam (default, official projector schedule), lbfgs, cmaes or basincma"},
        {"steps", "N", "optimizer steps (CMA-ES: generations; BasinCMA: outer iterations); default 500"},
        {"seed", "S", "random seed (default 0)"},
        {"init", "KIND", "mean (default), random, a file with 'ws' (or 'z' for --space z), or encoder:E.safetensors (hybrid; an iterative encoder "
                          "refines its codes as often as it was trained to; Adam then warms up over 20% of the steps, without "
                          "exploration noise, unless --no-schedule/--lr-rampup/--lr-rampdown/--w-noise say otherwise)"},
        {"lr", "LR", "initial learning rate (Adam, default 0.1)"},
        {"no-schedule", "", "Adam with a constant learning rate and no exploration noise"},
        {"lr-rampup", "F", "fraction of the steps over which the learning rate ramps up from 0 (default 0.05; 0 = none)"},
        {"lr-rampdown", "F", "fraction of the steps over which it falls to 0 on a cosine (default 0.25; 0 = none)"},
        {"w-noise", "F", "exploration noise on the code: F * w_std * max(0, 1 - t/0.75)^2 (default 0.05; 0 = none)"},
        {"optimize-noise", "", "optimise the noise maps too (regularised as the official projector)"},
        {"noise-regularization", "W", "weight of the noise regulariser (default 1e5)"},
        {"w-avg-prior", "W", "weight of an L2 pull of the code towards the mean w (default 0)"},
        {"wplus-spread-prior", "W", "weight of the distance of W+ layers from their mean (default 0)"},
        {"domain-regularization", "L",
         "in-domain inversion (W/W+; on the GPU the encoder runs there too): add L * mean((w - E(G(w)))^2) over the code's num_ws x w_dim entries"},
        {"encoder", "E.safetensors", "the encoder of --domain-regularization (default: the --init encoder:E file)"},
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
