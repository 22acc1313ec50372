// ganinv metrics: full-reference image-quality scores (MSE, MAE, PSNR, SSIM) of two image files.
#include "common.hpp"

#include <ganinv/io/image.hpp>
#include <ganinv/metrics/metrics.hpp>

#include <cstdio>
#include <iostream>

namespace ganinv::cli {
namespace {

int run_metrics(const Args& a) {
    const auto& files = a.positionals();
    if (files.size() != 2) throw UsageError("expected two image files: REFERENCE.png TEST.png");
    Image ref = load_image(files[0]), test = load_image(files[1]);
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
    if (a.has("json")) {
        std::printf("{\"mse\": %.10g, \"mae\": %.10g, \"psnr\": %.10g, \"ssim\": %.10g}\n", m.mse, m.mae, m.psnr,
                    m.ssim);
        return 0;
    }
    std::printf("%s vs %s (%dx%d, %d channel%s, 8-bit: data range 255)\n", files[0].c_str(), files[1].c_str(),
                ref.width, ref.height, ref.channels, ref.channels == 1 ? "" : "s");
    std::printf("  MSE   %.4f\n", m.mse);
    std::printf("  MAE   %.4f\n", m.mae);
    std::printf("  PSNR  %.4f dB\n", m.psnr);
    std::printf("  SSIM  %.6f   (Gaussian 11x11, sigma 1.5, as scikit-image with gaussian_weights=True)\n", m.ssim);
    return 0;
}

const bool registered = register_command(Command{
    "metrics",
    "Compare two images: MSE, MAE, PSNR and SSIM.",
    "REFERENCE.png TEST.png [--gray] [--json]",
    {
        {"gray", "", "convert both images to grayscale (BT.601 luma) first"},
        {"json", "", "print one JSON object instead of the table"},
    },
    run_metrics});

}  // namespace
}  // namespace ganinv::cli
