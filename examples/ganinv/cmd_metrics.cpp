// ganinv metrics: full-reference image-quality scores (MSE, MAE, PSNR, SSIM) of two image files,
// plus the LPIPS distance and the face-identity similarity when their weights are given.
#include "common.hpp"
#include "lpips_metric.hpp"

#include <ganinv/backend/cpu.hpp>
#include <ganinv/io/image.hpp>
#include <ganinv/loss/identity.hpp>
#include <ganinv/loss/lpips.hpp>
#include <ganinv/metrics/metrics.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>

namespace ganinv::cli {
namespace {

int run_metrics(const Args& a) {
    const auto& files = a.positionals();
    if (files.size() != 2) throw UsageError("expected two image files: REFERENCE.png TEST.png");
    Image ref = load_image(files[0], a.max_pixels()), test = load_image(files[1], a.max_pixels());
    if (ref.channels == 4) ref = convert_channels(ref, 3);  // alpha is not part of the picture's quality
    if (test.channels == 4) test = convert_channels(test, 3);
    if (a.has("gray")) {
        ref = convert_channels(ref, 1);
        test = convert_channels(test, 1);
    } else if (ref.channels != test.channels) {
        throw UsageError(concat("'", files[0], "' has ", ref.channels, " channel(s), '", files[1], "' has ",
                                test.channels, "; pass --gray to compare both as grayscale"));
    }
    if (ref.width != test.width || ref.height != test.height)
        throw UsageError(concat("the images differ in size: ", ref.width, "x", ref.height, " vs ", test.width, "x",
                                test.height));
    const metrics::Comparison m = metrics::compare_images(ref, test);
    if (a.has("vgg-weights") && !a.has("lpips")) throw UsageError("--vgg-weights is the trunk of --lpips; give --lpips too");
    std::optional<double> lpips, id_cos, id_dist;
    if (a.has("lpips") || a.has("face-weights")) {
        const Tensor<float> tr = image_to_tensor(ref, ref.channels), tt = image_to_tensor(test, test.channels);
        if (a.has("lpips")) lpips = load_lpips(*a.get("lpips"), a.get("vgg-weights")).distance(tr, tt)[0];
        if (a.has("face-weights")) {
            // Identity resizes both images to the network's 150x150 input (area down, bilinear up).
            const Identity<Cpu> id = Identity<Cpu>::load(*a.get("face-weights"));
            const Tensor<float> da = id.descriptors(tr), db = id.descriptors(tt);
            double dot = 0, na = 0, nb = 0;
            for (Index i = 0; i < da.numel(); ++i) {
                dot += static_cast<double>(da[i]) * db[i];
                na += static_cast<double>(da[i]) * da[i];
                nb += static_cast<double>(db[i]) * db[i];
            }
            id_cos = dot / std::max(1e-30, std::sqrt(na * nb));
            id_dist = descriptor_distance(da, db)[0];
        }
    }
    if (a.has("json")) {
        std::printf("{\"mse\": %.10g, \"mae\": %.10g, \"psnr\": %.10g, \"ssim\": %.10g", m.mse, m.mae, m.psnr, m.ssim);
        if (lpips) std::printf(", \"lpips\": %.10g", *lpips);
        if (id_cos) std::printf(", \"identity_cosine\": %.10g, \"identity_distance\": %.10g", *id_cos, *id_dist);
        std::printf("}\n");
        return 0;
    }
    std::printf("%s vs %s (%dx%d, %d channel%s, 8-bit: data range 255)\n", files[0].c_str(), files[1].c_str(),
                ref.width, ref.height, ref.channels, ref.channels == 1 ? "" : "s");
    std::printf("  MSE   %.4f\n", m.mse);
    std::printf("  MAE   %.4f\n", m.mae);
    std::printf("  PSNR  %.4f dB\n", m.psnr);
    std::printf("  SSIM  %.6f   (Gaussian 11x11, sigma 1.5, as scikit-image with gaussian_weights=True)\n", m.ssim);
    if (lpips) std::printf("  LPIPS %.6f   (VGG, v0.1; 0 = identical)\n", *lpips);
    if (id_cos)
        std::printf("  identity cosine %.6f, distance %.6f   (dlib face descriptors at 150x150; same person below 0.6)\n",
                    *id_cos, *id_dist);
    return 0;
}

const bool registered = register_command(Command{
    "metrics",
    "Compare two images: MSE, MAE, PSNR, SSIM; LPIPS and face identity with their weights.",
    "REFERENCE.png TEST.png [--gray] [--json] [--lpips L.safetensors [--vgg-weights V.safetensors]]\n"
    "       [--face-weights F.safetensors]",
    {
        {"gray", "", "convert both images to grayscale (BT.601 luma) first"},
        {"json", "", "print one JSON object instead of the table"},
        {"lpips", "L.safetensors", "also the LPIPS distance (v0.1 linear weights, as loss/lpips.hpp reads them)"},
        {"vgg-weights", "V.safetensors", "VGG16 trunk for --lpips (torchvision features converted to safetensors)"},
        {"face-weights", "F.safetensors", "also the identity similarity: cosine and Euclidean distance of the dlib "
                                          "face descriptors (face-api face_recognition weights)"},
        max_pixels_option(),
    },
    run_metrics});

}  // namespace
}  // namespace ganinv::cli
