// Tests of ganinv/io: image files, float<->pixel conversion, resampling, composition, plots, IDX.
#include "test_support.hpp"

#include <ganinv/io/idx.hpp>
#include <ganinv/io/image.hpp>
#include <ganinv/io/image_ops.hpp>
#include <ganinv/io/plot.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

using namespace ganinv;
namespace fs = std::filesystem;

namespace {

/// Runs `f`, requires it to throw E and returns the message.
template <class E, class F>
std::string thrown_message(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    }
    FAIL("the expected exception was not thrown");
    return {};
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

Tensor<float> random_tensor(Shape shape, unsigned seed, float lo = -1.0f, float hi = 1.0f) {
    Tensor<float> t(std::move(shape));
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    for (float& v : t.values()) v = dist(rng);
    return t;
}

Image random_image(int w, int h, int c, unsigned seed) {
    Image img = make_image(w, h, c);
    std::mt19937 rng(seed);
    for (auto& p : img.pixels) p = static_cast<std::uint8_t>(rng() & 0xFF);
    return img;
}

/// A smooth test pattern (a few low frequencies) on an h x w grid, values inside [-1, 1].
Tensor<float> smooth_tensor(Index channels, Index h, Index w) {
    Tensor<float> t({1, channels, h, w});
    for (Index c = 0; c < channels; ++c)
        for (Index y = 0; y < h; ++y)
            for (Index x = 0; x < w; ++x) {
                const double u = (x + 0.5) / static_cast<double>(w), v = (y + 0.5) / static_cast<double>(h);
                t[(c * h + y) * w + x] = static_cast<float>(0.5 * std::sin(2.0 * u + 0.7 * c) * std::cos(1.5 * v) +
                                                            0.3 * u * v - 0.1);
            }
    return t;
}

float max_abs_diff(const Tensor<float>& a, const Tensor<float>& b) {
    REQUIRE(a.shape() == b.shape());
    float m = 0.0f;
    for (Index i = 0; i < a.numel(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
    return m;
}

/// The StyleGAN2 formula evaluated the way PyTorch does: two float32 kernels, then uint8 cast.
std::uint8_t reference_pixel(float x) {
    volatile float scaled = x * 127.5f;  // volatile: no fused multiply-add
    volatile float shifted = scaled + 128.0f;
    const float clamped = std::min(std::max(static_cast<float>(shifted), 0.0f), 255.0f);
    return static_cast<std::uint8_t>(clamped);
}

std::size_t count_color(const Image& img, const Rgb& color) {
    std::size_t n = 0;
    for (int y = 0; y < img.height; ++y)
        for (int x = 0; x < img.width; ++x)
            if (img.at(x, y, 0) == color[0] && img.at(x, y, 1) == color[1] && img.at(x, y, 2) == color[2]) ++n;
    return n;
}

double mean_pixel(const Image& img) {
    return std::accumulate(img.pixels.begin(), img.pixels.end(), 0.0) / static_cast<double>(img.pixels.size());
}

}  // namespace

// ------------------------------------------------------------------ files and conversion

TEST_CASE("tensor -> PNG -> tensor round trip is exact to the 8-bit grid", "[io][image]") {
    const fs::path dir = test::temp_dir("io_roundtrip");
    for (const Index channels : {Index{1}, Index{3}}) {
        const Tensor<float> t = random_tensor({1, channels, 13, 17}, 7 + static_cast<unsigned>(channels));
        const Image img = tensor_to_image(t);
        REQUIRE(img.width == 17);
        REQUIRE(img.height == 13);
        REQUIRE(img.channels == channels);
        const fs::path file = dir / ("rt_" + std::to_string(channels) + ".png");
        save_png(file, img);
        const Image loaded = load_image(file);
        REQUIRE(loaded.width == img.width);
        REQUIRE(loaded.height == img.height);
        REQUIRE(loaded.channels == img.channels);
        REQUIRE(loaded.pixels == img.pixels);
        const Tensor<float> back = image_to_tensor(loaded, static_cast<int>(channels));
        REQUIRE(back.shape() == t.shape());
        // Truncation of x*127.5 + 128 leaves at most half a level: |x - back| <= 0.5 / 127.5.
        CHECK(max_abs_diff(back, t) <= 0.5f / 127.5f + 1e-6f);
        // And the 8-bit values survive a second trip bit for bit.
        REQUIRE(tensor_to_image(back).pixels == img.pixels);
    }
    for (const int channels : {1, 3, 4}) {  // 8-bit images of every kept channel count are lossless
        const Image img = random_image(9, 5, channels, 3);
        save_png(dir / "raw.png", img);
        const Image loaded = load_image(dir / "raw.png");
        CHECK(loaded.channels == channels);
        CHECK(loaded.pixels == img.pixels);
    }
}

TEST_CASE("float -> pixel is the official StyleGAN2 conversion", "[io][image]") {
    CHECK(float_to_pixel(-1.0f) == 0);  // 0.5 truncated
    CHECK(float_to_pixel(1.0f) == 255);
    CHECK(float_to_pixel(0.0f) == 128);
    CHECK(float_to_pixel(-0.992f) == 1);  // 1.52
    CHECK(float_to_pixel(0.5f) == 191);   // 191.75
    CHECK(float_to_pixel(3.0f) == 255);
    CHECK(float_to_pixel(-3.0f) == 0);
    CHECK(float_to_pixel(std::numeric_limits<float>::infinity()) == 255);
    CHECK(float_to_pixel(-std::numeric_limits<float>::infinity()) == 0);

    // Every quantisation level and its float neighbours, plus a random sweep, match the
    // two-kernel float32 evaluation.
    std::vector<float> xs;
    for (int k = 0; k <= 256; ++k) {
        const float x = static_cast<float>((k - 128) / 127.5);
        xs.insert(xs.end(), {x, std::nextafter(x, -2.0f), std::nextafter(x, 2.0f), x + 0.5f / 127.5f});
    }
    const Tensor<float> sweep = random_tensor({20000}, 3, -1.2f, 1.2f);
    xs.insert(xs.end(), sweep.values().begin(), sweep.values().end());
    std::size_t mismatches = 0;
    for (const float x : xs) mismatches += float_to_pixel(x) != reference_pixel(x);
    CHECK(mismatches == 0);

    // Through a tensor: one value per channel position.
    const Tensor<float> t({1, 3, 1, 2}, {-1.0f, 1.0f, 0.0f, 0.25f, -0.5f, 0.999f});
    const Image img = tensor_to_image(t);
    CHECK(img.at(0, 0, 0) == 0);
    CHECK(img.at(1, 0, 0) == 255);
    CHECK(img.at(0, 0, 1) == 128);
    CHECK(img.at(1, 0, 1) == 159);  // 159.875
    CHECK(img.at(0, 0, 2) == 64);   // 64.25
    CHECK(img.at(1, 0, 2) == 255);  // 255.37 clamped
}

TEST_CASE("batch conversion picks the requested entry", "[io][image]") {
    Tensor<float> t({3, 1, 2, 2}, 0.0f);
    for (Index i = 0; i < 4; ++i) t[2 * 4 + i] = 1.0f;
    CHECK(tensor_to_image(t, 2).pixels == std::vector<std::uint8_t>(4, 255));
    CHECK(tensor_to_image(t, 0).pixels == std::vector<std::uint8_t>(4, 128));
    CHECK(tensor_to_images(t).size() == 3);
    const Tensor<float> batch = images_to_tensor(tensor_to_images(t), 3);
    CHECK(batch.shape() == Shape{3, 3, 2, 2});
    CHECK(batch[2 * 12 + 11] == Approx(1.0f));
}

TEST_CASE("gray <-> RGB conversions use BT.601 luma and replication", "[io][image]") {
    Image rgb = make_image(2, 1, 3);
    rgb.pixels = {200, 100, 50, 0, 255, 0};
    const Tensor<float> gray = image_to_tensor(rgb, 1);
    REQUIRE(gray.shape() == Shape{1, 1, 1, 2});
    CHECK(gray[0] == Approx((0.299 * 200 + 0.587 * 100 + 0.114 * 50) / 127.5 - 1.0).margin(1e-6));
    CHECK(gray[1] == Approx(0.587 * 255 / 127.5 - 1.0).margin(1e-6));
    // The tensor path gives the same as converting the RGB tensor.
    CHECK(max_abs_diff(to_channels(image_to_tensor(rgb, 3), 1), gray) <= 1e-6f);

    const Tensor<float> rep = to_channels(gray, 3);
    REQUIRE(rep.shape() == Shape{1, 3, 1, 2});
    for (Index c = 0; c < 3; ++c) CHECK(rep[c * 2 + 1] == gray[1]);

    Image g = make_image(1, 1, 1, 77);
    const Tensor<float> g3 = image_to_tensor(g, 3);
    CHECK(g3[0] == g3[1]);
    CHECK(g3[1] == g3[2]);

    CHECK(convert_channels(rgb, 1).pixels == std::vector<std::uint8_t>{124, 150});  // 124.2 and 149.685 rounded
    CHECK(convert_channels(g, 3).pixels == std::vector<std::uint8_t>{77, 77, 77});
    CHECK(convert_channels(g, 4).pixels == std::vector<std::uint8_t>{77, 77, 77, 255});

    Image rgba = make_image(1, 1, 4);
    rgba.pixels = {10, 20, 30, 0};
    const Tensor<float> no_alpha = image_to_tensor(rgba, 3);
    CHECK(no_alpha[0] == Approx(10 / 127.5 - 1.0));
    CHECK(no_alpha[2] == Approx(30 / 127.5 - 1.0));
}

// ------------------------------------------------------------------ resampling

TEST_CASE("area resize averages exactly", "[io][resize]") {
    SECTION("a constant image stays constant") {
        const Tensor<float> t({2, 3, 9, 7}, 0.37f);
        for (const auto& [h, w] : {std::pair<Index, Index>{3, 2}, {4, 5}, {9, 7}, {1, 1}, {18, 11}}) {
            const Tensor<float> r = resize_area(t, h, w);
            REQUIRE(r.shape() == Shape{2, 3, h, w});
            for (const float v : r.values()) REQUIRE(v == Approx(0.37f).epsilon(1e-6));
        }
    }
    SECTION("a 4x4 ramp shrinks to its 2x2 block means") {
        Tensor<float> t({1, 1, 4, 4});
        std::iota(t.storage().begin(), t.storage().end(), 0.0f);
        const Tensor<float> r = resize_area(t, 2, 2);
        CHECK(r[0] == (0 + 1 + 4 + 5) / 4.0f);
        CHECK(r[1] == (2 + 3 + 6 + 7) / 4.0f);
        CHECK(r[2] == (8 + 9 + 12 + 13) / 4.0f);
        CHECK(r[3] == (10 + 11 + 14 + 15) / 4.0f);
    }
    SECTION("halving equals 2x2 averaging bit for bit") {
        const Tensor<float> t = random_tensor({2, 3, 16, 12}, 11);
        const Tensor<float> r = resize_area(t, 8, 6);
        std::size_t mismatches = 0;
        for (Index p = 0; p < 6; ++p)
            for (Index y = 0; y < 8; ++y)
                for (Index x = 0; x < 6; ++x) {
                    const auto at = [&](Index yy, Index xx) { return static_cast<double>(t[(p * 16 + yy) * 12 + xx]); };
                    const double mean = (at(2 * y, 2 * x) + at(2 * y, 2 * x + 1) + at(2 * y + 1, 2 * x) +
                                         at(2 * y + 1, 2 * x + 1)) / 4.0;
                    mismatches += r[(p * 8 + y) * 6 + x] != static_cast<float>(mean);
                }
        CHECK(mismatches == 0);
    }
    SECTION("fractional overlaps are weighted") {
        const Tensor<float> t({1, 1, 1, 3}, {0.0f, 3.0f, 6.0f});
        const Tensor<float> r = resize_area(t, 1, 2);  // [0, 1.5) and [1.5, 3)
        CHECK(r[0] == Approx((0.0 + 0.5 * 3.0) / 1.5));
        CHECK(r[1] == Approx((0.5 * 3.0 + 6.0) / 1.5));
        // Any shrink keeps the image mean (every input pixel gets the same total weight).
        const Tensor<float> u = random_tensor({1, 1, 7, 5}, 5);
        const Tensor<float> v = resize_area(u, 3, 2);
        const double mean_u = std::accumulate(u.values().begin(), u.values().end(), 0.0) / 35.0;
        const double mean_v = std::accumulate(v.values().begin(), v.values().end(), 0.0) / 6.0;
        CHECK(mean_v == Approx(mean_u).margin(1e-6));
    }
}

TEST_CASE("bicubic and lanczos keep constants and invert with an area shrink", "[io][resize]") {
    const Tensor<float> c({1, 3, 10, 6}, -0.42f);
    for (const auto& [h, w] : {std::pair<Index, Index>{25, 13}, {4, 3}, {10, 6}, {1, 1}}) {
        // Named results: a range-for over a temporary's values() would read freed memory.
        const Tensor<float> bicubic = resize_bicubic(c, h, w), lanczos = resize_lanczos3(c, h, w),
                            chosen = resize(c, h, w);
        for (const Tensor<float>* r : {&bicubic, &lanczos, &chosen}) {
            REQUIRE(r->shape() == Shape{1, 3, h, w});
            for (const float v : r->values()) REQUIRE(v == Approx(-0.42f).epsilon(1e-6));
        }
    }

    const Tensor<float> smooth = smooth_tensor(3, 16, 16);
    const Tensor<float> via_lanczos = resize_area(resize_lanczos3(smooth, 64, 64), 16, 16);
    const Tensor<float> via_bicubic = resize_area(resize_bicubic(smooth, 32, 32), 16, 16);
    const Tensor<float> via_resize = resize(resize(smooth, 48, 48), 16, 16);
    CHECK(max_abs_diff(via_lanczos, smooth) < 0.01f);
    CHECK(max_abs_diff(via_bicubic, smooth) < 0.01f);
    CHECK(max_abs_diff(via_resize, smooth) < 0.01f);

    // Same size is the identity for the interpolating filters, up to float rounding.
    CHECK(max_abs_diff(resize_bicubic(smooth, 16, 16), smooth) < 1e-6f);
    CHECK(max_abs_diff(resize_lanczos3(smooth, 16, 16), smooth) < 1e-6f);
    CHECK(resize(smooth, 16, 16).storage() == smooth_tensor(3, 16, 16).storage());

    // Bicubic (a = -0.5) reproduces a linear ramp away from the clamped borders.
    Tensor<float> ramp({1, 1, 1, 8});
    for (Index x = 0; x < 8; ++x) ramp[x] = static_cast<float>(x);
    const Tensor<float> up = resize_bicubic(ramp, 1, 16);
    for (Index x = 4; x < 12; ++x) CHECK(up[x] == Approx((x + 0.5) / 2.0 - 0.5).margin(1e-5));

    // resize() chooses per axis: rows shrink, columns grow.
    CHECK(resize(smooth_tensor(1, 64, 8), 32, 32).shape() == Shape{1, 1, 32, 32});
}

TEST_CASE("crops take the expected window", "[io][crop]") {
    Tensor<float> t({2, 1, 8, 10});
    for (Index n = 0; n < 2; ++n)
        for (Index y = 0; y < 8; ++y)
            for (Index x = 0; x < 10; ++x) t[(n * 8 + y) * 10 + x] = static_cast<float>(1000 * n + 100 * y + x);

    const Tensor<float> cc = center_crop(t, 4, 4);  // top = 2, left = 3
    REQUIRE(cc.shape() == Shape{2, 1, 4, 4});
    CHECK(cc[0] == 203.0f);
    CHECK(cc[15] == 506.0f);
    CHECK(cc[16] == 1203.0f);

    const Tensor<float> odd = center_crop(t, 5, 7);  // top = 1, left = 1: extra pixel goes bottom/right
    CHECK(odd[0] == 101.0f);

    const Tensor<float> sq = center_crop_square(t);  // 8x8 at left = 1
    REQUIRE(sq.shape() == Shape{2, 1, 8, 8});
    CHECK(sq[0] == 1.0f);
    CHECK(sq[63] == 708.0f);

    const Tensor<float> window = crop(t, 3, 2, 2, 3);
    CHECK(window[0] == 302.0f);
    CHECK(window[5] == 404.0f);
}

// ------------------------------------------------------------------ composition

TEST_CASE("grid and strip geometry", "[io][grid]") {
    std::vector<Image> tiles;
    for (int i = 0; i < 5; ++i) tiles.push_back(make_image(4, 3, 1, static_cast<std::uint8_t>(10 * (i + 1))));
    const Image grid = make_grid(tiles, 3, 2, 255);
    CHECK(grid.width == 3 * (4 + 2) + 2);
    CHECK(grid.height == 2 * (3 + 2) + 2);
    CHECK(grid.channels == 1);
    CHECK(grid.at(0, 0) == 255);
    CHECK(grid.at(2, 2) == 10);                 // tile 0 top-left
    CHECK(grid.at(2 + 6 * 2 + 3, 2 + 2) == 30);  // tile 2 bottom-right
    CHECK(grid.at(2 + 6, 2 + 5) == 50);         // tile 4: second row, second column
    CHECK(grid.at(2 + 12, 2 + 5) == 255);       // the empty sixth cell
    CHECK(make_grid(tiles, 10, 0, 0).width == 5 * 4);  // columns beyond the count are not drawn

    tiles[1] = convert_channels(tiles[1], 3);
    tiles[1].at(0, 0, 0) = 200;
    const Image mixed = make_grid(tiles, 5, 1, 0);
    CHECK(mixed.channels == 3);
    CHECK(mixed.at(1 + 5, 1, 0) == 200);
    CHECK(mixed.at(1, 1, 2) == 10);

    const Image strip = hconcat({make_image(5, 6, 3, 1), make_image(2, 6, 1, 2), make_image(7, 6, 3, 3)}, 3, 9);
    CHECK(strip.width == 5 + 3 + 2 + 3 + 7);
    CHECK(strip.height == 6);
    CHECK(strip.channels == 3);
    CHECK(strip.at(5, 0, 0) == 9);
    CHECK(strip.at(8, 5, 1) == 2);
    CHECK(strip.at(strip.width - 1, 5, 2) == 3);

    const Image padded = pad_image(make_image(28, 28, 1, 100), 2);
    CHECK(padded.width == 32);
    CHECK(padded.at(1, 16) == 0);
    CHECK(padded.at(2, 2) == 100);
}

TEST_CASE("shrink_image averages factor x factor blocks, partial blocks at the edges", "[io][grid]") {
    Image img = make_image(5, 3, 3);
    for (int y = 0; y < 3; ++y)
        for (int x = 0; x < 5; ++x) {
            img.at(x, y, 0) = static_cast<std::uint8_t>(10 * x + y);
            img.at(x, y, 1) = static_cast<std::uint8_t>(x == 4 ? 255 : 0);
        }
    const Image s = shrink_image(img, 2);
    REQUIRE(s.width == 3);
    REQUIRE(s.height == 2);
    REQUIRE(s.channels == 3);
    CHECK(s.at(0, 0, 0) == 6);   // (0 + 1 + 10 + 11) / 4 = 5.5, rounded half up
    CHECK(s.at(1, 0, 0) == 26);  // (20 + 21 + 30 + 31) / 4 = 25.5
    CHECK(s.at(2, 0, 0) == 41);  // the partial column: (40 + 41) / 2 = 40.5
    CHECK(s.at(0, 1, 0) == 7);   // the partial row: (2 + 12) / 2
    CHECK(s.at(2, 1, 0) == 42);  // the corner block is one pixel
    CHECK(s.at(1, 0, 1) == 0);
    CHECK(s.at(2, 1, 1) == 255);  // a partial block is not darkened by pixels it lacks
    CHECK(shrink_image(img, 1).pixels == img.pixels);
    CHECK(shrink_image(img, 9).width == 1);
    CHECK_THROWS_WITH(shrink_image(img, 0), Catch::Contains("factor must be >= 1"));
    CHECK_THROWS_WITH(shrink_image(Image{}, 2), Catch::Contains("shrink_image"));
}

// ------------------------------------------------------------------ plots

TEST_CASE("plot_curves draws axes, curves and legend", "[io][plot]") {
    std::vector<double> loss, other;
    for (int i = 0; i < 200; ++i) {
        loss.push_back(0.8 * std::exp(-i / 40.0) + 1e-3);
        other.push_back(0.05 + 0.02 * std::sin(i / 10.0));
    }
    loss[50] = std::numeric_limits<double>::quiet_NaN();
    other[120] = -1.0;  // not drawable on a log axis
    const Rgb red{220, 30, 30}, green{30, 160, 60};
    PlotOptions options;
    options.width = 480;
    options.height = 300;
    options.title = "inversion loss";
    const Image img = plot_curves({{"total loss", loss, red}, {"lpips", other, green}}, options);
    REQUIRE(img.width == 480);
    REQUIRE(img.height == 300);
    REQUIRE(img.channels == 3);
    CHECK(count_color(img, red) > 200);
    CHECK(count_color(img, green) > 200);
    CHECK(count_color(img, {255, 255, 255}) > 480 * 300 / 2);
    CHECK(count_color(img, {0, 0, 0}) > 500);  // frame, ticks and text

    const fs::path dir = test::temp_dir("io_plot");
    save_png(dir / "plot.png", img);
    options.log_y = false;
    options.y_min = 0.0;
    options.y_max = 0.3;  // clips the first curve at the top
    save_png(dir / "plot_linear_clipped.png", plot_curves({{"total loss", loss, red}, {"lpips", other, green}}, options));

    // No data at all: still an image, no curve pixels.
    const Image empty = plot_curves({{"nothing", {}, red}, {"nan", {std::nan("")}, green}}, {});
    CHECK(empty.width == PlotOptions{}.width);
    CHECK(count_color(empty, red) > 0);  // only the legend swatch
    CHECK(count_color(empty, red) < 200);
    save_png(dir / "plot_empty.png", empty);
    CHECK(plot_curves({}, {}).height == PlotOptions{}.height);

    // A single point and a flat curve.
    CHECK(count_color(plot_curves({{"", {0.5}, red}}, {}), red) > 0);
    CHECK(count_color(plot_curves({{"", std::vector<double>(10, 2.0), red}}, {}), red) > 0);
}

// ------------------------------------------------------------------ errors

TEST_CASE("io errors name the file or argument", "[io][errors]") {
    const fs::path dir = test::temp_dir("io_errors");
    const fs::path missing = dir / "no_such_image.png";
    CHECK(contains(thrown_message<IoError>([&] { load_image(missing); }), missing.string()));

    const fs::path corrupt = dir / "corrupt.png";
    {
        std::ofstream out(corrupt, std::ios::binary);
        std::mt19937 rng(1);
        for (int i = 0; i < 512; ++i) out.put(static_cast<char>(rng() & 0xFF));
    }
    CHECK(contains(thrown_message<FormatError>([&] { load_image(corrupt); }), corrupt.string()));
    {
        std::ofstream out(corrupt, std::ios::binary | std::ios::trunc);
        out << "\x89PNG\r\n\x1a\n garbage after a valid signature";
    }
    CHECK(contains(thrown_message<FormatError>([&] { load_image(corrupt); }), "corrupt.png"));

    const fs::path unwritable = dir / "missing_dir" / "out.png";
    CHECK(contains(thrown_message<IoError>([&] { save_png(unwritable, make_image(2, 2, 3)); }), unwritable.string()));
    CHECK_THROWS_AS(save_png(dir / "bad.png", Image{2, 2, 3, {1, 2, 3}}), ShapeError);

    Tensor<float> t({1, 3, 4, 5}, 0.0f);
    t[(1 * 4 + 2) * 5 + 3] = std::nanf("");
    CHECK(contains(thrown_message<ValueError>([&] { tensor_to_image(t); }), "[0, 1, 2, 3]"));
    CHECK_THROWS_AS(tensor_to_image(Tensor<float>({1, 2, 4, 4})), ShapeError);
    CHECK_THROWS_AS(tensor_to_image(Tensor<float>({3, 4, 4})), ShapeError);
    CHECK_THROWS_AS(tensor_to_image(t, 1), ValueError);
    CHECK_THROWS_AS(image_to_tensor(make_image(2, 2, 3), 2), ValueError);

    const Tensor<float> img({1, 3, 8, 8}, 0.0f);
    CHECK(contains(thrown_message<ValueError>([&] { resize_area(img, 0, 4); }), "out_h"));
    CHECK(contains(thrown_message<ValueError>([&] { resize_lanczos3(img, 4, -2); }), "out_w"));
    CHECK_THROWS_AS(resize_bicubic(Tensor<float>({8, 8}), 4, 4), ShapeError);
    CHECK(contains(thrown_message<ShapeError>([&] { center_crop(img, 9, 4); }), "larger than the image"));
    CHECK_THROWS_AS(center_crop(img, 0, 4), ValueError);
    CHECK_THROWS_AS(crop(img, 6, 0, 3, 3), ShapeError);
    CHECK_THROWS_AS(to_channels(img, 2), ValueError);
    CHECK_THROWS_AS(make_grid({}, 2, 1, 0), ValueError);
    CHECK_THROWS_AS(make_grid({make_image(2, 2, 1), make_image(3, 2, 1)}, 2, 1, 0), ShapeError);
    CHECK_THROWS_AS(make_grid({make_image(2, 2, 4), make_image(2, 2, 3)}, 2, 1, 0), ShapeError);
    CHECK_THROWS_AS(make_grid({make_image(2, 2, 1)}, 0, 1, 0), ValueError);
    CHECK_THROWS_AS(hconcat({make_image(2, 2, 1), make_image(2, 3, 1)}, 1), ShapeError);
    PlotOptions tiny;
    tiny.width = 10;
    CHECK(contains(thrown_message<ValueError>([&] { plot_curves({}, tiny); }), "width"));
    PlotOptions bad_range;
    bad_range.y_min = -1.0;  // log axis
    CHECK(contains(thrown_message<ValueError>([&] { plot_curves({}, bad_range); }), "y_min"));
}

// ------------------------------------------------------------------ IDX and real data

TEST_CASE("IDX reader parses headers and rejects bad files", "[io][idx]") {
    const fs::path dir = test::temp_dir("io_idx");
    const fs::path file = dir / "tiny-images-idx3-ubyte";
    {
        std::ofstream out(file, std::ios::binary);
        const unsigned char header[] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 4};
        out.write(reinterpret_cast<const char*>(header), sizeof header);
        for (int i = 0; i < 3 * 2 * 4; ++i) out.put(static_cast<char>(i * 10));
    }
    CHECK(read_idx_header(file).dims == std::vector<std::uint32_t>{3, 2, 4});
    const std::vector<Image> images = load_idx_images(file, 1, 2);
    REQUIRE(images.size() == 2);
    CHECK(images[0].width == 4);
    CHECK(images[0].height == 2);
    CHECK(images[0].channels == 1);
    CHECK(images[0].pixels.front() == 80);
    CHECK(images[1].pixels.back() == 230);
    CHECK(load_idx_images(file, 3, 0).empty());
    CHECK(contains(thrown_message<ValueError>([&] { load_idx_images(file, 2, 2); }), file.string()));
    CHECK_THROWS_AS(load_idx_labels(file, 0, 1), FormatError);

    const fs::path truncated = dir / "truncated";
    fs::copy_file(file, truncated);
    fs::resize_file(truncated, fs::file_size(file) - 1);
    CHECK(contains(thrown_message<FormatError>([&] { load_idx_images(truncated, 0, 1); }), "truncated"));

    const fs::path gz = dir / "images.gz";
    {
        std::ofstream out(gz, std::ios::binary);
        const char bytes[] = "\x1f\x8b\x08\x00 not really gzip";
        out.write(bytes, sizeof bytes - 1);  // operator<< would stop at the zero byte
    }
    CHECK(contains(thrown_message<FormatError>([&] { load_idx_images(gz, 0, 1); }), "gunzip"));
    CHECK_THROWS_AS(load_idx_images(dir / "absent", 0, 1), IoError);
}

TEST_CASE("bundled Fashion-MNIST images match the dataset", "[io][idx][data]") {
    const fs::path png_dir = test::data_dir() / "fmnist";
    const Image first = load_image(png_dir / "test_0000.png");
    REQUIRE(first.width == 28);
    REQUIRE(first.height == 28);
    REQUIRE(first.channels == 1);
    CHECK(mean_pixel(first) > 10.0);  // an ankle boot, not an empty frame

    const fs::path gz = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
    if (!fs::exists(gz)) {
        WARN("Debian's dataset-fashion-mnist is not installed (" << gz.string()
                                                                 << "): only the bundled PNG's size was checked");
        return;
    }
    const fs::path idx = test::temp_dir("io_fmnist") / "t10k-images-idx3-ubyte";
    const std::string command = "gunzip -c '" + gz.string() + "' > '" + idx.string() + "'";
    if (std::system(command.c_str()) != 0) {
        WARN("could not run `" << command << "`: only the bundled PNG's size was checked");
        return;
    }
    CHECK(read_idx_header(idx).dims == std::vector<std::uint32_t>{10000, 28, 28});
    const std::vector<Image> dataset = load_idx_images(idx, 0, 64);
    CHECK(mean_pixel(first) == mean_pixel(dataset[0]));
    for (std::size_t i = 0; i < dataset.size(); ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "test_%04zu.png", i);
        INFO(name);
        CHECK(load_image(png_dir / name).pixels == dataset[i].pixels);
    }
}

namespace {

std::vector<unsigned char> bytes_of(std::initializer_list<int> v) {
    std::vector<unsigned char> b;
    for (int x : v) b.push_back(static_cast<unsigned char>(x));
    return b;
}
void put_be32(std::vector<unsigned char>& b, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>((v >> s) & 0xFF));
}
/// A PNG signature and IHDR chunk declaring width x height 8-bit gray, then IEND: enough for the
/// header check (stb does not verify CRCs).
std::vector<unsigned char> png_header_only(std::uint32_t width, std::uint32_t height) {
    std::vector<unsigned char> b = bytes_of({0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A});
    put_be32(b, 13);
    for (char c : std::string("IHDR")) b.push_back(static_cast<unsigned char>(c));
    put_be32(b, width);
    put_be32(b, height);
    for (int x : {8, 0, 0, 0, 0}) b.push_back(static_cast<unsigned char>(x));
    put_be32(b, 0);  // CRC
    put_be32(b, 0);
    for (char c : std::string("IEND")) b.push_back(static_cast<unsigned char>(c));
    put_be32(b, 0);
    return b;
}
std::vector<unsigned char> encode_jpeg(const Image& img) {
    std::vector<unsigned char> out;
    const auto append = [](void* ctx, void* data, int size) {
        auto* v = static_cast<std::vector<unsigned char>*>(ctx);
        v->insert(v->end(), static_cast<unsigned char*>(data), static_cast<unsigned char*>(data) + size);
    };
    REQUIRE(stbi_write_jpg_to_func(append, &out, img.width, img.height, img.channels, img.pixels.data(), 90) != 0);
    return out;
}

}  // namespace

TEST_CASE("image size limit is checked from the header before decoding", "[io][image][reliability]") {
    // 16000 x 16000 (256 Mpx): the all-zero PNG of the finding was decoded and inverted at 1.27 GB.
    const auto big = png_header_only(16000, 16000);
    REQUIRE_THROWS_AS(decode_image(big, "big.png"), FormatError);
    REQUIRE_THROWS_WITH(decode_image(big, "big.png"),
                        Catch::Contains("big.png") && Catch::Contains("16000x16000") && Catch::Contains("--max-pixels"));
    // A tiny GIF whose screen declares 17921 x 21071 (cost 385 MB before failing).
    std::vector<unsigned char> gif = bytes_of({'G', 'I', 'F', '8', '9', 'a', 0x01, 0x46, 0x4F, 0x52, 0x80, 0, 0,
                                               0, 0, 0, 255, 255, 255, 0x2C, 0, 0, 0, 0, 0x01, 0x46, 0x4F, 0x52, 0,
                                               2, 2, 0x44, 0x01, 0, 0x3B});
    REQUIRE_THROWS_WITH(decode_image(gif, "screen.gif"), Catch::Contains("17921x21071"));
    // The limit is the caller's: exactly at the limit passes, one pixel less refuses.
    const Image small = make_image(10, 10, 1, 7);
    const auto dir = test::temp_dir("image_limit");
    save_png(dir / "s.png", small);
    REQUIRE(load_image(dir / "s.png", 100).width == 10);
    REQUIRE_THROWS_WITH(load_image(dir / "s.png", 99), Catch::Contains("10x10") && Catch::Contains("limit of 99"));
}

TEST_CASE("JPEG Huffman tables stb would overflow are refused before decoding", "[io][image][reliability]") {
    // The 9-byte input of the finding: a DHT segment whose counts (read past the end) sum over 256.
    const auto crash = bytes_of({0xFF, 0xD8, 0xFF, 0xC4, 0x01, 0xA2, 0x00, 0x48, 0xD9});
    REQUIRE_THROWS_AS(decode_image(crash, "dht.jpg"), FormatError);
    REQUIRE_THROWS_WITH(decode_image(crash, "dht.jpg"), Catch::Contains("dht.jpg") && Catch::Contains("Huffman"));
    // Found by fuzz_image: fill bytes before the SOI code, which stb skips like any marker's.
    const auto filled = bytes_of({0xFF, 0xFF, 0xD8, 0xFF, 0xC4, 0x00, 0xFF, 0x00, 0x48, 0xD9, 0xD8, 0xFF, 0xC4, 0x00,
                                  0xFF, 0x00, 0x48, 0xD9});
    REQUIRE_THROWS_WITH(decode_image(filled, "filled.jpg"), Catch::Contains("Huffman"));
    // A complete segment whose 16 counts sum to 257 (one over stb's array).
    std::vector<unsigned char> over = bytes_of({0xFF, 0xD8, 0xFF, 0xC4});
    const std::size_t len = 2 + 17 + 257;
    over.push_back(static_cast<unsigned char>(len >> 8));
    over.push_back(static_cast<unsigned char>(len & 0xFF));
    over.push_back(0x00);
    for (int k = 0; k < 15; ++k) over.push_back(16);  // 240 codes
    over.push_back(17);                               // + 17 = 257
    over.insert(over.end(), 257, 0);
    over.push_back(0xFF);
    over.push_back(0xD9);
    REQUIRE_THROWS_WITH(decode_image(over, "over.jpg"), Catch::Contains("257 codes"));
    // Real JPEGs (baseline, with their standard tables) still decode.
    Image img = make_image(24, 16, 3);
    for (std::size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<std::uint8_t>(i * 7 % 251);
    const Image back = decode_image(encode_jpeg(img), "ok.jpg");
    REQUIRE(back.width == 24);
    REQUIRE(back.height == 16);
    REQUIRE(back.channels == 3);
    const Image flat = decode_image(encode_jpeg(make_image(9, 9, 1, 200)), "flat.jpg");  // stb writes YCbCr
    REQUIRE(flat.width == 9);
    REQUIRE(std::abs(static_cast<int>(flat.at(4, 4, 1)) - 200) <= 2);
}

TEST_CASE("PNM header fields stb would overflow are refused before decoding", "[io][image][reliability]") {
    // Found by fuzz_image: stb accumulates "2222222222..." into an int (signed overflow).
    const std::string text = "P5" + std::string(70, '2') + "\n5";
    const std::vector<unsigned char> pnm(text.begin(), text.end());
    REQUIRE_THROWS_WITH(decode_image(pnm, "long.pgm"), Catch::Contains("long.pgm") && Catch::Contains("width is too large"));
    const std::string comment = "P6 # a comment\n 3 99999999999 255\n";
    REQUIRE_THROWS_WITH(decode_image(std::vector<unsigned char>(comment.begin(), comment.end()), "c.ppm"),
                        Catch::Contains("height is too large"));
    // Ordinary headers (comments included) still decode.
    const std::string ok = std::string("P5\n# made by hand\n2 1\n255\n") + '\x10' + '\x20';
    const Image img = decode_image(std::vector<unsigned char>(ok.begin(), ok.end()), "ok.pgm");
    REQUIRE(img.width == 2);
    REQUIRE(img.at(1, 0) == 0x20);
}

TEST_CASE("PNG chunks that run past the end of the file are refused before decoding", "[io][image][reliability]") {
    // Found by fuzz_image: an IDAT chunk declaring 1.3 GB in a 110-byte file made stb grow its
    // buffer to 2 GiB before reading the chunk.
    const auto chunk = [](const std::string& type, const std::string& data, std::uint32_t declared) {
        std::string c;
        for (int shift = 24; shift >= 0; shift -= 8) c += static_cast<char>((declared >> shift) & 0xFF);
        return c + type + data + std::string(4, '\0');  // the CRC is not what is tested here
    };
    std::string ihdr;
    for (std::uint32_t v : {4u, 3u}) {
        for (int shift = 24; shift >= 0; shift -= 8) ihdr += static_cast<char>((v >> shift) & 0xFF);
    }
    ihdr += std::string("\x08\x00\x00\x00\x00", 5);
    const std::string signature = "\x89PNG\r\n\x1a\n";
    const std::string head = signature + chunk("IHDR", ihdr, 13);
    const std::string bad = head + chunk("IDAT", "x\xda", 1342177280u);
    REQUIRE_THROWS_WITH(decode_image(std::vector<unsigned char>(bad.begin(), bad.end()), "big.png"),
                        Catch::Contains("big.png") && Catch::Contains("corrupt PNG: chunk 'IDAT' at byte 33") &&
                            Catch::Contains("declares 1342177280 bytes"));
    // A chunk cut short by the end of the file is the same finding.
    const std::string cut = head + chunk("IDAT", "x", 2).substr(0, 10);
    REQUIRE_THROWS_WITH(decode_image(std::vector<unsigned char>(cut.begin(), cut.end()), "cut.png"),
                        Catch::Contains("corrupt PNG"));
    // Whole PNGs, and bytes after IEND, still decode.
    Image img = make_image(5, 4, 3, 77);
    std::vector<unsigned char> png = encode_image(img, ImageFormat::png);
    png.insert(png.end(), {1, 2, 3});
    REQUIRE(decode_image(png, "ok.png").pixels == img.pixels);
}

TEST_CASE("save_image writes the format its extension names, or nothing", "[io][image]") {
    const fs::path dir = test::temp_dir("io_formats");
    Image img = make_image(24, 16, 3);
    for (int y = 0; y < img.height; ++y)
        for (int x = 0; x < img.width; ++x)
            for (int c = 0; c < 3; ++c) img.at(x, y, c) = static_cast<std::uint8_t>(x * 10 + y * 3 + c * 40);
    const auto head = [](const fs::path& p, std::size_t n) {
        std::ifstream in(p, std::ios::binary);
        std::string s(n, '\0');
        in.read(s.data(), static_cast<std::streamsize>(n));
        return s;
    };
    save_image(dir / "a.png", img);
    save_image(dir / "a.BMP", img);
    save_image(dir / "a.jpeg", img);
    CHECK(head(dir / "a.png", 4) == "\x89PNG");
    CHECK(head(dir / "a.BMP", 2) == "BM");
    CHECK(head(dir / "a.jpeg", 3) == "\xff\xd8\xff");
    CHECK(load_image(dir / "a.png").pixels == img.pixels);  // lossless
    CHECK(load_image(dir / "a.BMP").pixels == img.pixels);  // lossless
    const Image jpeg = load_image(dir / "a.jpeg");
    REQUIRE((jpeg.width == 24 && jpeg.height == 16 && jpeg.channels == 3));
    int worst = 0;
    for (std::size_t i = 0; i < img.pixels.size(); ++i) worst = std::max(worst, std::abs(jpeg.pixels[i] - img.pixels[i]));
    CHECK(worst <= 24);  // lossy, quality 95
    CHECK_THROWS_AS(save_image(dir / "a.tiff", img), ValueError);
    CHECK_FALSE(fs::exists(dir / "a.tiff"));
    CHECK(image_format_for("x/y.JPG") == ImageFormat::jpeg);
}
