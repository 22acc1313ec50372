// ganinv invert: finds the latent codes of images with a StyleGAN2 generator and writes, per
// image, the code, the reconstruction, a side-by-side comparison and a loss curve.
#include "common.hpp"
#include "encoder_support.hpp"
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

namespace ganinv::cli {
namespace {

int run_invert(const Args& a) {
    const std::string model = a.require("model"), out_dir = output_dir_option(a);
    const std::string device = a.get("device").value_or("cpu");
    if (device != "cpu" && device != "cuda") throw UsageError("--device must be cpu or cuda, got '" + device + "'");
    cuda::CudaOptions cuda_options;  // --cuda-precision, parsed here once, before the GPU is touched
    if (const auto p = a.get("cuda-precision")) {
        if (device != "cuda") throw UsageError("--cuda-precision applies to --device cuda only");
        try {
            cuda_options.precision = cuda::parse_precision(*p);
        } catch (const ValueError& e) {
            throw UsageError(std::string("--cuda-precision: ") + e.what());
        }
    }
    // Every argument is checked here, before the model is loaded and before DIR is created.
    const std::string space = space_option(a, "wplus");
    const std::string optimizer = optimizer_option(a, true, "invert");
    const std::vector<LossTermSpec> terms = parse_loss_terms(a.get("loss").value_or("mse"));
    const Index batch = batch_option(a);
    InverterOptions o = inverter_options_from_args(a);
    o.w_statistics_cache = std::make_shared<LatentStatistics>();  // one generator: W statistics once, not per batch
    const std::vector<std::filesystem::path> paths = collect_image_paths(a);
    const std::optional<PspEncoder> init_encoder = encoder_init_option(a, space, model);  // --init encoder:E

    // One of the two runs the batches: the CPU generator and loss, or their CUDA twins.
    std::function<InversionResult(const InverterOptions&, const Tensor<float>&)> invert_batch;
    Index resolution = 0, channels = 0;
    std::optional<StyleGAN2<Cpu>> g;
    std::optional<WeightedLossSum<Cpu>> loss;
#if GANINV_CLI_HAS_CUDA
    std::unique_ptr<CudaInversion> gpu;
#endif
    if (device == "cuda") {
#if GANINV_CLI_HAS_CUDA
        gpu = std::make_unique<CudaInversion>(model, terms, a, cuda_options);
        std::cerr << "device: " << gpu->device_name() << "\n";
        resolution = gpu->resolution();
        channels = gpu->img_channels();
        invert_batch = [&](const InverterOptions& o, const Tensor<float>& t) { return gpu->run(space, optimizer, a, o, t); };
#else
        throw UsageError("--device cuda: this ganinv was built without CUDA (CMake found no nvcc); rebuild on a "
                         "machine with the CUDA toolkit, or use --device cpu");
#endif
    } else {
        g.emplace(StyleGAN2<Cpu>::load(model));
        loss.emplace(build_cli_loss<Cpu>(terms, a));
        resolution = g->resolution();
        channels = g->img_channels();
        invert_batch = [&](const InverterOptions& o, const Tensor<float>& t) {
            return run_inversion(space, optimizer, a, *g, *loss, o, t);
        };
    }
    // LPIPS as a reported metric whenever its weights are given (whatever the loss).
    std::optional<Lpips<Cpu>> lpips_metric;
    if (a.has("lpips-weights")) lpips_metric.emplace(load_lpips(*a.get("lpips-weights"), a.get("vgg-weights")));
    TargetSet targets = load_targets(paths, resolution, channels, !a.has("no-resize"), a.max_pixels());
    for (const auto& msg : targets.warnings) std::cerr << "warning: " << msg << "\n";
    for (const auto& msg : targets.failures) std::cerr << "error: " << msg << "\n";
    if (targets.names.empty()) throw IoError("none of the " + std::to_string(paths.size()) + " images could be read");

    const Index n = static_cast<Index>(targets.names.size());
    std::vector<ImageSummary> summary;
    for (Index b0 = 0, bi = 1; b0 < n; b0 += batch, ++bi) {
        const Index nb = std::min(batch, n - b0);
        const Tensor<float> t = slice_batch(targets.images, b0, nb);
        if (init_encoder) o.init.codes = encoder_init_codes(*init_encoder, t, space);
        ProgressBar bar(concat("batch ", bi, "/", (n + batch - 1) / batch), o.steps);
        o.on_progress = [&](const InversionProgress& p) { bar.update(p); };
        const InversionResult r = invert_batch(o, t);
        bar.finish();
        const auto names = std::vector<std::string>(targets.names.begin() + b0, targets.names.begin() + b0 + nb);
        // DIR appears with the first results: a run that fails before them leaves nothing behind.
        std::filesystem::create_directories(out_dir);
        auto s = write_outputs(out_dir, names, t, r, a.has("report"));
        if (lpips_metric) {  // the summary's LPIPS column: target vs the (clamped) reconstruction
            Tensor<float> recon = r.reconstruction;
            for (float& v : recon.values()) v = std::fmin(1.0f, std::fmax(-1.0f, v));
            const std::vector<double> d = lpips_metric->distance(recon, t);
            for (std::size_t i = 0; i < s.size(); ++i) s[i].lpips = d[i];
        }
        summary.insert(summary.end(), s.begin(), s.end());
    }
    write_overview(out_dir, summary);
    print_summary(std::cout, summary);
    write_summary_files(out_dir, summary, model, space, optimizer, o, a.has("report"));
    if (!targets.failures.empty()) {
        std::cerr << targets.failures.size() << " image(s) could not be read (listed above); the others were inverted\n";
        return 1;
    }
    return 0;
}

const bool registered = register_command(Command{
    "invert",
    "Find the latent codes of images (GAN inversion) and write codes, reconstructions and reports.",
    "--model M.safetensors (--image A.png [B.png ...] | --dir D) --out DIR\n"
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
        {"out", "DIR", "output directory (created)"},
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
        {"cuda-precision", "P", "--device cuda: fp32 (default, exact), tf32 or bf16 tensor-core convolutions (wgmma on Hopper)"},
        {"report", "", "also write DIR/report.html (static page with every picture and the metrics)"},
        max_pixels_option(),
    },
    run_invert});

}  // namespace
}  // namespace ganinv::cli
