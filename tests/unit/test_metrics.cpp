// Image-quality metrics: MSE, MAE, PSNR and SSIM against scikit-image on real photos
// (tests/data/edit, made by tools/reference/make_metrics_reference.py), closed forms, batching
// and the errors.
#include "test_support.hpp"

#include <ganinv/core/json.hpp>
#include <ganinv/io/image.hpp>
#include <ganinv/metrics/metrics.hpp>

#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>

using namespace ganinv;
using namespace ganinv::metrics;

namespace {

Json load_reference() {
    std::ifstream in(test::data_dir() / "edit" / "metrics_reference.json");
    REQUIRE(in.good());
    std::stringstream ss;
    ss << in.rdbuf();
    return Json::parse(ss.str());
}

Image load(const std::string& name) { return load_image(test::data_dir() / "edit" / name); }

}  // namespace

TEST_CASE("metrics match scikit-image on 8-bit photos (data range 255)", "[metrics][parity]") {
    const Json ref = load_reference();
    int cases = 0;
    double worst_ssim = 0, worst_psnr = 0;
    for (const Json& c : ref.at("cases").as_array()) {
        const Image a = load(c.at("reference").as_string()), b = load(c.at("test").as_string());
        const Comparison m = compare_images(a, b);
        INFO(c.at("test").as_string() << ": ssim " << m.ssim << " vs " << c.at("ssim").as_number() << ", psnr "
                                      << m.psnr << " vs " << c.at("psnr").as_number());
        REQUIRE(m.mse == Approx(c.at("mse").as_number()).epsilon(1e-12));
        REQUIRE(m.mae == Approx(c.at("mae").as_number()).epsilon(1e-12));
        REQUIRE(std::fabs(m.psnr - c.at("psnr").as_number()) <= 1e-4);
        REQUIRE(std::fabs(m.ssim - c.at("ssim").as_number()) <= 1e-4);
        worst_ssim = std::max(worst_ssim, std::fabs(m.ssim - c.at("ssim").as_number()));
        worst_psnr = std::max(worst_psnr, std::fabs(m.psnr - c.at("psnr").as_number()));
        ++cases;
    }
    REQUIRE(cases == 7);
    std::cout << "[metrics] skimage parity, uint8: max |dSSIM| " << worst_ssim << ", max |dPSNR| " << worst_psnr
              << " dB over " << cases << " pairs\n";
}

TEST_CASE("metrics match scikit-image on [-1, 1] tensors (data range 2)", "[metrics][parity]") {
    const Json ref = load_reference();
    double worst_ssim = 0;
    for (const Json& c : ref.at("cases").as_array()) {
        const Image a = load(c.at("reference").as_string()), b = load(c.at("test").as_string());
        const Tensor<float> ta = image_to_tensor(a, a.channels == 1 ? 1 : 3);
        const Tensor<float> tb = image_to_tensor(b, b.channels == 1 ? 1 : 3);
        const double s = ssim(ta, tb, DataRange::signed_unit())[0];
        const double p = psnr(ta, tb, DataRange::signed_unit())[0];
        INFO(c.at("test").as_string() << ": ssim " << s << " vs " << c.at("ssim_range2").as_number());
        REQUIRE(std::fabs(s - c.at("ssim_range2").as_number()) <= 1e-4);
        REQUIRE(std::fabs(p - c.at("psnr_range2").as_number()) <= 1e-4);
        worst_ssim = std::max(worst_ssim, std::fabs(s - c.at("ssim_range2").as_number()));
    }
    std::cout << "[metrics] skimage parity, [-1,1] floats: max |dSSIM| " << worst_ssim << "\n";
}

TEST_CASE("metrics are batched per image", "[metrics]") {
    const Tensor<float> a1 = image_to_tensor(load("astronaut_small.png"), 3);
    const Tensor<float> b1 = image_to_tensor(load("astronaut_small_noise.png"), 3);
    const Tensor<float> b2 = image_to_tensor(load("astronaut_small_blur.png"), 3);
    Tensor<float> a({2, 3, 128, 128}), b({2, 3, 128, 128});
    std::copy(a1.values().begin(), a1.values().end(), a.data());
    std::copy(a1.values().begin(), a1.values().end(), a.data() + a1.numel());
    std::copy(b1.values().begin(), b1.values().end(), b.data());
    std::copy(b2.values().begin(), b2.values().end(), b.data() + a1.numel());
    const auto both = compare(a, b, DataRange::signed_unit());
    REQUIRE(both.size() == 2);
    const auto first = compare(a1, b1, DataRange::signed_unit())[0];
    const auto second = compare(a1, b2, DataRange::signed_unit())[0];
    REQUIRE(both[0].ssim == first.ssim);
    REQUIRE(both[1].ssim == second.ssim);
    REQUIRE(both[0].psnr == first.psnr);
    REQUIRE(both[1].mae == second.mae);
    REQUIRE(both[0].ssim != both[1].ssim);
}

TEST_CASE("metrics closed forms: identical and constant images", "[metrics]") {
    const Tensor<float> a = image_to_tensor(load("camera_small.png"), 1);
    const Comparison same = compare(a, a, DataRange::signed_unit())[0];
    REQUIRE(same.mse == 0.0);
    REQUIRE(same.mae == 0.0);
    REQUIRE(std::isinf(same.psnr));
    REQUIRE(same.ssim == Approx(1.0).margin(1e-12));

    // Constant images: variances vanish, SSIM = (2ab + C1) / (a^2 + b^2 + C1) everywhere.
    const double x = 0.25, y = -0.5, c1 = (0.01 * 2) * (0.01 * 2);
    const Tensor<float> p({1, 1, 16, 20}, static_cast<float>(x)), q({1, 1, 16, 20}, static_cast<float>(y));
    REQUIRE(ssim(p, q, DataRange::signed_unit())[0] == Approx((2 * x * y + c1) / (x * x + y * y + c1)).epsilon(1e-9));
    REQUIRE(mse(p, q)[0] == Approx(0.5625).epsilon(1e-12));
    REQUIRE(mae(p, q)[0] == Approx(0.75).epsilon(1e-12));
    REQUIRE(psnr(p, q, DataRange::signed_unit())[0] == Approx(10 * std::log10(4 / 0.5625)).epsilon(1e-12));
    // The full map has the same constant everywhere, borders included (reflect padding).
    const Tensor<float> map = ssim_map(p, q, DataRange::signed_unit());
    REQUIRE(map[0] == Approx(map[map.numel() - 1]).epsilon(1e-6));
}

TEST_CASE("metrics reject mismatched or unusable input", "[metrics][errors]") {
    const Tensor<float> a({1, 1, 16, 16}, 0.0f), b({1, 1, 16, 17}, 0.0f), tiny({1, 1, 8, 8}, 0.0f);
    REQUIRE_THROWS_AS(mse(a, b), ShapeError);
    REQUIRE_THROWS_AS(ssim(a, b, DataRange::signed_unit()), ShapeError);
    REQUIRE_THROWS_AS(ssim(tiny, tiny, DataRange::signed_unit()), ShapeError);  // smaller than 11x11
    REQUIRE_THROWS_AS(psnr(a, a, DataRange{0.0}), ValueError);
    REQUIRE_THROWS_AS(compare_images(load("camera_small.png"), load("astronaut_small.png")), ShapeError);
}

TEST_CASE("compare_images on 8-bit pixels equals the float path, reports progress, ignores alpha", "[metrics]") {
    const Image a = load("astronaut_small.png"), b = load("astronaut_small_noise.png");
    // The same pair as raw 0..255 floats through the tensor functions (data range 255).
    const auto raw = [](const Image& img) {
        Tensor<float> t({1, img.channels, img.height, img.width});
        const Index plane = static_cast<Index>(img.pixel_count());
        for (Index i = 0; i < plane; ++i)
            for (Index c = 0; c < img.channels; ++c) t[c * plane + i] = img.pixels[static_cast<std::size_t>(i * img.channels + c)];
        return t;
    };
    const Comparison want = compare(raw(a), raw(b), DataRange::uint8())[0];
    Index last_done = -1, last_total = 0;
    bool monotonic = true;
    const Comparison got = compare_images(a, b, {}, [&](Index done, Index total) {
        monotonic = monotonic && done > last_done && done <= total;
        last_done = done;
        last_total = total;
    });
    REQUIRE(got.mse == want.mse);
    REQUIRE(got.mae == want.mae);
    REQUIRE(got.ssim == Approx(want.ssim).epsilon(1e-12));
    REQUIRE(monotonic);
    REQUIRE(last_total == 3 * a.height);
    REQUIRE(last_done == last_total);
    // An alpha channel is not part of the picture: RGBA vs RGB scores the colour channels.
    const Comparison rgba = compare_images(convert_channels(a, 4), b);
    REQUIRE(rgba.mse == got.mse);
    REQUIRE(rgba.ssim == got.ssim);
}
