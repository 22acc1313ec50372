// ganinv encode: codes of images from a trained encoder in one forward pass (learning-based
// inversion); writes the same per-image files and summary as `ganinv invert`.
#include "encoder_support.hpp"

#include <chrono>
#include <iostream>

namespace ganinv::cli {
namespace {

int run_encode(const Args& a) {
    const std::string model = a.require("model"), encoder = a.require("encoder"), out_dir = output_dir_option(a);
    const Index batch = batch_option(a, 64);
    const std::vector<std::filesystem::path> paths = collect_image_paths(a);
    StyleGAN2<Cpu> g = StyleGAN2<Cpu>::load(model);
    const PspEncoder e = load_encoder_for(encoder, g.num_ws(), g.w_dim(), g.img_channels(), g.resolution());
    TargetSet targets = load_targets(paths, g, !a.has("no-resize"), a.max_pixels());
    for (const auto& msg : targets.warnings) std::cerr << "warning: " << msg << "\n";
    for (const auto& msg : targets.failures) std::cerr << "error: " << msg << "\n";
    if (targets.names.empty()) throw IoError("none of the " + std::to_string(paths.size()) + " images could be read");

    const Index n = static_cast<Index>(targets.names.size());
    std::vector<ImageSummary> summary;
    for (Index b0 = 0; b0 < n; b0 += batch) {
        const Index nb = std::min(batch, n - b0);
        const Tensor<float> t = slice_batch(targets.images, b0, nb);
        const auto t0 = std::chrono::steady_clock::now();
        InversionResult r;
        r.space = "wplus";
        r.ws = e.forward(t);
        r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        r.reconstruction = g.synthesis(r.ws);  // the generator's constant noise
        r.metrics = metrics::compare_reconstruction(r.reconstruction, t);
        std::vector<double> mse;
        for (const auto& m : r.metrics) mse.push_back(m.mse);
        r.loss_history = {mse};
        r.steps_run = 0;
        std::filesystem::create_directories(out_dir);
        for (Index i = 0; i < nb; ++i)
            summary.push_back(write_image_outputs(out_dir, targets.names[static_cast<std::size_t>(b0 + i)], i, t, r));
    }
    write_overview(out_dir, summary);
    print_summary(std::cout, summary);
    InverterOptions o;
    o.steps = 0;
    write_summary_files(out_dir, summary, model, "wplus", "encoder " + encoder + " (one forward pass)", o, false,
                        "encode");
    if (!targets.failures.empty()) {
        std::cerr << targets.failures.size() << " image(s) could not be read (listed above); the others were encoded\n";
        return 1;
    }
    return 0;
}

const bool registered = register_command(Command{
    "encode",
    "Codes of images from a trained encoder in one forward pass; writes codes, reconstructions, a summary.",
    "--model M.safetensors --encoder E.safetensors (--image A.png [B.png ...] | --dir D) --out DIR\n"
    "       [--batch B] [--no-resize] [--max-pixels N]",
    {
        {"model", "M.safetensors", "generator weights"},
        {"encoder", "E.safetensors", "encoder file for this generator (ganinv train-encoder)"},
        {"image", "FILE", "image files to encode (PNG, JPEG, BMP)", true},
        {"dir", "D", "encode every image file in this directory"},
        {"out", "DIR", "output directory (created): NAME.safetensors ('ws', as invert writes), NAME_recon.png, summary"},
        {"batch", "B", "images per encoder pass (default 64)"},
        {"no-resize", "", "fail on images of another size instead of resizing them (with a warning)"},
        max_pixels_option(),
    },
    run_encode});

}  // namespace
}  // namespace ganinv::cli
