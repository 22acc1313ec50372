// ganinv encode: codes of images from a trained encoder in one forward pass (learning-based
// inversion), or K passes of an iterative (ReStyle) encoder; writes the same per-image files and
// summary as `ganinv invert`, as a dataset job (manifest, --resume, the lock, MPI ranks:
// dataset_run.hpp), and the mean PSNR after each refinement iteration. With --device cuda the
// encoder and the generator run on the GPU (encoder_cuda.cu), one GPU per MPI rank of a node.
#include "cuda_options_arg.hpp"
#include "dataset_run.hpp"
#include "encoder_support.hpp"
#if GANINV_CLI_HAS_CUDNN
#include "encoder_cuda.hpp"
#include "invert_cuda.hpp"
#endif

#include <chrono>
#include <iostream>
#include <memory>
#include <optional>

namespace ganinv::cli {
namespace {

int run_encode(const Args& a) {
    const std::string model = a.require("model"), encoder = a.require("encoder"), out_dir = output_dir_option(a);
    const std::string device = encoder_device_option(a);
    [[maybe_unused]] const cuda::CudaOptions cuda_options = cuda_options_from_args(a, device);  // used by the CUDA build
    const Index batch = batch_option(a, 64);
    const std::vector<std::filesystem::path> paths = job_paths(a);
    const std::unique_ptr<JobComm> comm = make_job_comm();
    std::optional<StyleGAN2<Cpu>> g;  // the CPU path's generator; the GPU path loads its own
    if (device == "cpu") g.emplace(StyleGAN2<Cpu>::load(model));
    const StyleGAN2Config gc = g ? g->config() : generator_config_of(model);
    const PspEncoder e = load_encoder_for(encoder, gc.num_ws(), gc.w_dim, gc.img_channels, gc.img_resolution);
    const Index iterations = iterations_option(a, e, encoder);
    // --bootstrap E0 (ReStyle's encoder bootstrapping): the refinement starts at E0's codes.
    std::optional<PspEncoder> bootstrap;
    if (a.has("bootstrap")) {
        bootstrap.emplace(load_encoder_for(*a.get("bootstrap"), gc.num_ws(), gc.w_dim, gc.img_channels, gc.img_resolution));
        try {
            check_bootstrap(e, *bootstrap);
        } catch (const ValueError& err) {
            throw UsageError(concat("--bootstrap '", *a.get("bootstrap"), "' with --encoder '", encoder, "': ", err.what()));
        }
        if (!e.config().bootstrap.empty() && e.config().bootstrap != encoder_fingerprint(*bootstrap))
            std::cerr << "warning: '" << encoder << "' was trained to refine the codes of another single-pass encoder ("
                      << e.config().bootstrap << ") than '" << *a.get("bootstrap") << "'\n";
    } else if (!e.config().bootstrap.empty()) {
        throw UsageError(concat("'", encoder, "' was trained to refine the codes of a single-pass encoder (ReStyle's encoder "
                                "bootstrapping, ", e.config().bootstrap, "), not the mean code: give that encoder with "
                                "--bootstrap E0.safetensors"));
    }
    OutputSpec spec;  // what `--resume` reads back: invert's files, a W+ code, no fixed-noise picture
    spec.resolution = gc.img_resolution;
    spec.channels = gc.img_channels;
    spec.num_ws = gc.num_ws();
    spec.w_dim = gc.w_dim;
    spec.space = "wplus";

    std::string device_label = "cpu";
#if GANINV_CLI_HAS_CUDNN
    std::unique_ptr<CudaEncoding> gpu;
    if (device == "cuda") {
        device_label = concat("cuda:", select_cuda_device(comm->local_rank()));  // one GPU per rank of a node
        gpu = std::make_unique<CudaEncoding>(model, e, bootstrap ? &*bootstrap : nullptr, cuda_options);
        std::cerr << "device (rank " << comm->rank() << "): " << device_label << ", " << gpu->device_name() << "\n";
    }
#endif
    DatasetJob job(*comm, {"encode", "encoded", out_dir, batch, a.has("resume"), device_label}, paths,
                   [&](const std::string& name) { return verify_outputs(out_dir, name, spec); });
    if (!job.started()) return 1;  // rank 0 says why
    std::vector<ImageSummary> summary;  // this process's images, for the summary files of a one-process run
    std::vector<std::vector<double>> psnr_rows;  // the current batch's PSNR per image and iteration
    job.run([&](const JobBatch& b) -> JobTally {
        psnr_rows.clear();
        JobTally tally;
        const DatasetJob::LoadedBatch loaded = job.load_batch(b, spec.resolution, spec.channels, a, tally);
        if (loaded.ids.empty()) return tally;
        const Tensor<float>& t = loaded.images;
        InversionResult r;
        try {
            const auto t0 = std::chrono::steady_clock::now();
            r.space = "wplus";
            // The generator's constant noise; each iterate scored: loss_history[t][image] is its MSE.
            std::vector<std::vector<metrics::Comparison>> scores;
            const auto score = [&](Index, const RefineState& it) {
                scores.push_back(metrics::compare_reconstruction(it.reconstruction, t));
            };
#if GANINV_CLI_HAS_CUDNN
            RefineState s = gpu ? gpu->encode(t, iterations, score)
                                : encode_images(*g, e, t, iterations, score, bootstrap ? &*bootstrap : nullptr);
#else
            RefineState s = encode_images(*g, e, t, iterations, score, bootstrap ? &*bootstrap : nullptr);
#endif
            r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            r.ws = std::move(s.codes);
            r.reconstruction = std::move(s.reconstruction);
            r.metrics = scores.back();
            for (const auto& sc : scores) {
                std::vector<double> mse;
                for (const auto& m : sc) mse.push_back(m.mse);
                r.loss_history.push_back(std::move(mse));
            }
            r.steps_run = 0;
            for (std::size_t k = 0; k < loaded.ids.size(); ++k) {
                psnr_rows.emplace_back();
                for (const auto& sc : scores) psnr_rows.back().push_back(sc[k].psnr);
            }
        } catch (const Error& err) {
            for (long long i : loaded.ids) job.fail(i, concat("encoding failed: ", err.what()), 0.0);
            tally.failed += static_cast<long long>(loaded.ids.size());
            return tally;
        }
        std::vector<std::optional<ImageSummary>> rows = job.write_results(loaded.ids, t, r, tally);
        for (std::size_t k = 0; k < rows.size(); ++k) {
            if (rows[k]) rows[k]->psnr_per_iteration = psnr_rows[k];
            if (rows[k] && !job.many()) summary.push_back(std::move(*rows[k]));
        }
        return tally;
    });

    InverterOptions o;
    o.steps = 0;
    const std::string method =
        concat("encoder ", encoder, iterations == 1 && !bootstrap ? " (one forward pass)" : concat(" (", iterations, " refinement iterations)"),
               bootstrap ? concat(" from the codes of ", *a.get("bootstrap")) : std::string());
    if (!job.many() && !summary.empty()) {  // the images this process encoded; the manifest has the whole job
        const auto t0 = std::chrono::steady_clock::now();
        write_overview(out_dir, summary);
        print_summary(std::cout, summary);
        job.times().summary = seconds_since(t0);
        write_summary_files(out_dir, summary, model, "wplus", method, o, false, "encode", job.times().to_json());
        DatasetJob::say(job.times().line());
    }
    Json settings{Json::Object{}};
    settings.set("model", model);
    settings.set("space", "wplus");
    settings.set("optimizer", method);
    settings.set("steps", 0);
    settings.set("iterations", static_cast<std::int64_t>(iterations));
    if (bootstrap) settings.set("bootstrap", *a.get("bootstrap"));
    job.write_manifest_summary(std::move(settings));
    return job.finish();
}

const bool encode_registered = register_command(Command{
    "encode",
    "Codes of images from a trained encoder in one forward pass (or K refinement passes of an iterative one); writes "
    "codes, reconstructions, a summary.",
    "--model M.safetensors --encoder E.safetensors (--image A.png [B.png ...] | --dir D | --list FILE) --out DIR\n"
    "       [--iterations K] [--bootstrap E0.safetensors] [--resume] [--batch B] [--device cpu|cuda]\n"
    "       [--cuda-precision fp32|tf32|bf16] [--no-resize] [--max-pixels N]",
    {
        {"model", "M.safetensors", "generator weights"},
        {"encoder", "E.safetensors", "encoder file for this generator (ganinv train-encoder)"},
        {"image", "FILE", "image files to encode (PNG, JPEG, BMP)", true},
        {"dir", "D", "encode every image file in this directory"},
        {"list", "FILE", "encode the images named in FILE, one path a line (relative to FILE's folder)"},
        {"out", "DIR", "output directory (created): NAME.safetensors ('ws', as invert writes), NAME_recon.png, summary, "
                       "manifest.jsonl (a line per image); DIR/ganinv.lock keeps a second job out"},
        {"resume", "", "skip the images whose manifest line says ok and whose outputs read back whole; redo the others"},
        {"iterations", "K", "refinement passes of an iterative (ReStyle) encoder: w += E([x, G(w)]) from the mean code "
                            "(default: what it was trained with; 1 for a single-pass encoder, which refuses more)"},
        {"bootstrap", "E0.safetensors", "ReStyle's encoder bootstrapping: an iterative --encoder refines the codes of this "
                                        "single-pass encoder (of the same generator) instead of starting from the mean code"},
        {"batch", "B", "images per encoder pass (default 64)"},
        {"device", "DEV", "cpu (default) or cuda: encoder and generator on the GPU (needs a build with CUDA and cuDNN; "
                          "under MPI: local rank % GPUs)"},
        cuda_precision_option(),
        {"no-resize", "", "fail on images of another size instead of resizing them (with a warning)"},
        max_pixels_option(),
    },
    run_encode});

}  // namespace
}  // namespace ganinv::cli
