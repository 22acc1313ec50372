// Latent editing: SeFa against an independent NumPy reference, GANSpace PCA on the demo model,
// InterFaceGAN boundaries on synthetic data with a known hyperplane, conditional editing,
// interpolation, style mixing, StyleSpace channel edits, directions files, the GIF writer and
// the errors for bad input.
#include "test_support.hpp"

#include <ganinv/backend/cpu.hpp>
#include <ganinv/edit/edit.hpp>
#include <ganinv/io/gif.hpp>
#include <ganinv/models/stylegan2.hpp>

#include <cmath>
#include <iostream>
#include <numbers>

using namespace ganinv;
using namespace ganinv::edit;

namespace {

StyleGAN2<Cpu>& demo() {
    static StyleGAN2<Cpu> g = StyleGAN2<Cpu>::load(test::models_dir() / "fmnist32.safetensors");
    return g;
}

double dot(std::span<const float> a, std::span<const float> b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
    return s;
}
double norm(std::span<const float> a) { return std::sqrt(dot(a, a)); }

std::span<const float> row(const Tensor<float>& t, Index r) {
    const Index d = t.numel() / t.dim(0);
    return {t.data() + r * d, static_cast<std::size_t>(d)};
}

std::vector<float> random_unit(Index dim, Rng& rng) {
    std::vector<float> v(static_cast<std::size_t>(dim));
    rng.fill_normal(v);
    const double n = norm(v);
    for (float& x : v) x = static_cast<float>(x / n);
    return v;
}

}  // namespace

TEST_CASE("SeFa matches the NumPy reference of the official recipe", "[edit][sefa][parity]") {
    const SafetensorsFile ref(test::data_dir() / "edit" / "sefa_fmnist32.safetensors");
    struct Case {
        const char* suffix;
        SefaOptions opts;
    };
    const Case cases[] = {{"", {}},
                          {"_w2_6", {LayerRange{2, 6}, SefaTorgb::skip, 0}},
                          {"_final_torgb", {LayerRange::all(), SefaTorgb::final_only, 0}}};
    for (const auto& c : cases) {
        const Directions d = sefa(demo(), c.opts);
        const Tensor<float> want = ref.load(concat("directions", c.suffix));
        const Tensor<float> values = ref.load(concat("eigenvalues", c.suffix));
        REQUIRE(d.count() == demo().w_dim());
        double worst = 1;
        for (Index k = 0; k < 5; ++k) {
            const double cosine = std::fabs(dot(d.row(k), row(want, k)));
            INFO(c.suffix << " direction " << k << ": |cos| " << cosine);
            REQUIRE(cosine >= 0.9999);
            REQUIRE(d.eigenvalues[static_cast<std::size_t>(k)] == Approx(values[k]).epsilon(1e-5));
            worst = std::min(worst, cosine);
        }
        for (Index k = 1; k < d.count(); ++k)
            REQUIRE(d.eigenvalues[static_cast<std::size_t>(k)] <= d.eigenvalues[static_cast<std::size_t>(k - 1)]);
        std::cout << "[sefa] directions" << c.suffix << ": 1 - min |cos| over the top 5 = " << 1.0 - worst << "\n";
    }
    // The default skips every ToRGB layer; the range keeps the metadata the edit needs.
    const Directions d = sefa(demo(), {LayerRange{2, 6}, SefaTorgb::skip, 3});
    REQUIRE(d.count() == 3);
    REQUIRE(d.layers.begin == 2);
    REQUIRE(d.layers.end == 6);
    REQUIRE(d.info.at("sefa_layers").find("torgb") == std::string::npos);
}

TEST_CASE("GANSpace components are orthonormal with decreasing variance", "[edit][ganspace]") {
    GanSpaceOptions opts;
    opts.samples = 20000;
    opts.count = 20;
    opts.seed = 7;
    const Directions d = ganspace(demo(), opts);
    REQUIRE(d.count() == 20);
    double worst = 0;
    for (Index i = 0; i < d.count(); ++i)
        for (Index j = 0; j < d.count(); ++j)
            worst = std::max(worst, std::fabs(dot(d.row(i), d.row(j)) - (i == j ? 1.0 : 0.0)));
    REQUIRE(worst < 1e-5);
    double ratio_sum = 0;
    for (std::size_t k = 0; k < 20; ++k) {
        REQUIRE(d.stddev[k] == Approx(std::sqrt(d.eigenvalues[k])).epsilon(1e-6));
        if (k > 0) {
            REQUIRE(d.explained_variance[k] <= d.explained_variance[k - 1]);
            REQUIRE(d.stddev[k] <= d.stddev[k - 1]);
        }
        ratio_sum += d.explained_variance[k];
    }
    REQUIRE(ratio_sum < 1.0);
    REQUIRE(d.mean.size() == static_cast<std::size_t>(demo().w_dim()));
    std::cout << "[ganspace] N=20000: orthonormality error " << worst << ", explained variance of PC0..4: "
              << d.explained_variance[0] << " " << d.explained_variance[1] << " " << d.explained_variance[2] << " "
              << d.explained_variance[3] << " " << d.explained_variance[4] << " (top 20: " << ratio_sum << ")\n";

    // The std of sampled w along a component (fresh samples) agrees with the PCA's stddev.
    const std::vector<float> sd = direction_stddev(demo(), d.directions, 20000, 99);
    REQUIRE(sd[0] == Approx(d.stddev[0]).epsilon(0.03));
}

TEST_CASE("PcaAccumulator: chunked accumulation equals the two-pass covariance", "[edit][ganspace]") {
    Rng rng(3);
    const Index n = 501, dim = 6;
    Tensor<float> x({n, dim});
    for (Index r = 0; r < n; ++r)
        for (Index i = 0; i < dim; ++i) x[r * dim + i] = static_cast<float>(100.0 + (i + 1) * rng.normal() + (i == 2 ? 0.5 * x[r * dim] : 0.0));
    PcaAccumulator acc(dim);
    Index r = 0;
    for (Index chunk : {1, 7, 100, 393}) {
        acc.add(x.data() + r * dim, chunk, dim);
        r += chunk;
    }
    REQUIRE(r == n);
    std::vector<double> mean(dim, 0.0);
    for (Index k = 0; k < n; ++k)
        for (Index i = 0; i < dim; ++i) mean[static_cast<std::size_t>(i)] += x[k * dim + i] / static_cast<double>(n);
    const Eigen::MatrixXd cov = acc.covariance();
    for (Index i = 0; i < dim; ++i)
        for (Index j = 0; j < dim; ++j) {
            double c = 0;
            for (Index k = 0; k < n; ++k)
                c += (x[k * dim + i] - mean[static_cast<std::size_t>(i)]) * (x[k * dim + j] - mean[static_cast<std::size_t>(j)]);
            REQUIRE(cov(i, j) == Approx(c / (n - 1)).epsilon(1e-10).margin(1e-12));
        }
    const Pca p = acc.finish();
    REQUIRE(p.explained_variance[0] > p.explained_variance[5]);
}

TEST_CASE("InterFaceGAN recovers a known separating hyperplane", "[edit][interfacegan]") {
    Rng rng(11);
    const Index n = 4000, dim = 32;
    const std::vector<float> truth = random_unit(dim, rng);
    const double offset = 0.3;
    Tensor<float> codes({n, dim});
    rng.fill_normal(codes.values());
    std::vector<int> labels(static_cast<std::size_t>(n));
    std::vector<float> scores(static_cast<std::size_t>(n));
    for (Index r = 0; r < n; ++r) {
        const double s = dot(row(codes, r), truth) + offset;
        labels[static_cast<std::size_t>(r)] = s > 0 ? 1 : 0;
        scores[static_cast<std::size_t>(r)] = static_cast<float>(s + 0.1 * rng.normal());  // a noisy classifier
    }
    const LinearBoundary svm = train_linear_svm(codes, labels);
    const LinearBoundary logit = train_logistic_regression(codes, labels);
    const LinearBoundary paper = interfacegan_boundary(codes, scores, 0.25);
    const double c_svm = std::fabs(dot(svm.normal, truth)), c_log = std::fabs(dot(logit.normal, truth));
    const double c_paper = std::fabs(dot(paper.normal, truth));
    std::cout << "[interfacegan] |cos| with the true normal: SVM " << c_svm << " (accuracy " << svm.train_accuracy
              << "), logistic " << c_log << ", top/bottom 25% SVM " << c_paper << "\n";
    REQUIRE(c_svm >= 0.99);
    REQUIRE(c_log >= 0.99);
    REQUIRE(c_paper >= 0.99);
    REQUIRE(dot(svm.normal, truth) > 0);  // label 1 lies on the positive side
    REQUIRE(svm.train_accuracy > 0.98);
    REQUIRE(svm.offset == Approx(offset).margin(0.05));
}

TEST_CASE("InterFaceGAN conditional editing leaves the conditioned scores unchanged", "[edit][interfacegan]") {
    Rng rng(5);
    const Index n = 3000, dim = 24;
    const std::vector<float> t1 = random_unit(dim, rng), noise = random_unit(dim, rng);
    std::vector<float> t2(static_cast<std::size_t>(dim));  // correlated attributes (cos ~ 0.6)
    for (std::size_t i = 0; i < t2.size(); ++i) t2[i] = 0.6f * t1[i] + 0.8f * noise[i];
    Tensor<float> codes({n, dim});
    rng.fill_normal(codes.values());
    std::vector<int> l1(static_cast<std::size_t>(n)), l2(static_cast<std::size_t>(n));
    for (Index r = 0; r < n; ++r) {
        l1[static_cast<std::size_t>(r)] = dot(row(codes, r), t1) > 0;
        l2[static_cast<std::size_t>(r)] = dot(row(codes, r), t2) > 0;
    }
    const LinearBoundary b1 = train_linear_svm(codes, l1), b2 = train_linear_svm(codes, l2);
    const std::vector<float> cond = conditional_direction(b1.normal, {b2.normal});
    REQUIRE(norm(cond) == Approx(1.0).epsilon(1e-6));
    REQUIRE(std::fabs(dot(cond, b2.normal)) < 1e-6);
    REQUIRE(dot(cond, b1.normal) > 0.5);

    // Edit the codes (as ws [N, 1, dim]) along the conditional direction.
    Tensor<float> ws = codes;
    ws.reshape({n, 1, dim});
    const Tensor<float> edited = apply_direction(ws, cond, 2.0f);
    double worst = 0, moved = 0;
    for (Index r = 0; r < n; ++r) {
        worst = std::max(worst, std::fabs(b2.score(row(edited, r)) - b2.score(row(ws, r))));
        moved += (b1.score(row(edited, r)) - b1.score(row(ws, r))) / static_cast<double>(n);
    }
    std::cout << "[interfacegan] conditional edit (alpha 2): max change of the conditioned score " << worst
              << ", mean change of the edited score " << moved << "\n";
    REQUIRE(worst < 1e-6);
    REQUIRE(moved > 1.0);

    // Several (non-orthogonal) conditions: orthogonal to every one of them.
    std::vector<std::vector<float>> conds{b2.normal, random_unit(dim, rng), random_unit(dim, rng)};
    const std::vector<float> multi = conditional_direction(b1.normal, conds);
    for (const auto& c : conds) REQUIRE(std::fabs(dot(multi, c)) < 1e-6);
    REQUIRE_THROWS_AS(conditional_direction(b2.normal, {b2.normal}), ValueError);
    REQUIRE_THROWS_AS(conditional_direction(b1.normal, {std::vector<float>(3, 1.0f)}), ShapeError);
}

TEST_CASE("lerp and slerp: endpoints, norms, angles, degenerate pairs", "[edit][interpolate]") {
    Rng rng(1);
    Tensor<float> a({1, 64}), b({1, 64});
    rng.fill_normal(a.values());
    rng.fill_normal(b.values());
    REQUIRE(lerp(a, b, 0.0).values()[5] == a[5]);
    REQUIRE(lerp(a, b, 1.0).values()[5] == b[5]);
    REQUIRE(lerp(a, b, 0.5)[7] == Approx(0.5 * (a[7] + b[7])).epsilon(1e-6));
    const Tensor<float> s0 = slerp(a, b, 0.0), s1 = slerp(a, b, 1.0);
    REQUIRE(std::equal(s0.values().begin(), s0.values().end(), a.values().begin()));
    REQUIRE(std::equal(s1.values().begin(), s1.values().end(), b.values().begin()));
    const double na = norm(a.values()), nb = norm(b.values());
    const double theta = std::acos(dot(a.values(), b.values()) / (na * nb));
    for (double t : {0.1, 0.25, 0.5, 0.9}) {
        const Tensor<float> s = slerp(a, b, t);
        REQUIRE(norm(s.values()) == Approx((1 - t) * na + t * nb).epsilon(1e-5));
        REQUIRE(std::acos(dot(s.values(), a.values()) / (norm(s.values()) * na)) == Approx(t * theta).epsilon(1e-4));
    }
    // Equal norms stay on the sphere.
    Tensor<float> c = b;
    for (float& v : c.values()) v = static_cast<float>(v * na / nb);
    REQUIRE(norm(slerp(a, c, 0.37).values()) == Approx(na).epsilon(1e-5));
    // Nearly parallel: finite, between the endpoints.
    Tensor<float> d = a;
    d[0] += 1e-6f;
    const Tensor<float> sd = slerp(a, d, 0.5);
    for (float v : sd.values()) REQUIRE(std::isfinite(v));
    REQUIRE(relative_l2_error(sd.values(), a.values()) < 1e-6);
    // Antipodal: a half-way point orthogonal to both, same norm.
    Tensor<float> e = a;
    for (float& v : e.values()) v = -v;
    const Tensor<float> half = slerp(a, e, 0.5);
    REQUIRE(std::fabs(dot(half.values(), a.values())) < 1e-4 * na * na);
    REQUIRE(norm(half.values()) == Approx(na).epsilon(1e-5));
    REQUIRE_THROWS_AS(slerp(a, Tensor<float>({1, 63}, 0.0f), 0.5), ShapeError);
}

TEST_CASE("interpolate_path hits every key and spaces the frames evenly", "[edit][interpolate]") {
    Rng rng(2);
    std::vector<Tensor<float>> keys;
    for (int k = 0; k < 3; ++k) {
        keys.emplace_back(Shape{1, 8, 16});
        rng.fill_normal(keys.back().values());
    }
    const Tensor<float> path = interpolate_path(keys, 9, EditSpace::wplus);
    REQUIRE(path.shape() == Shape{9, 8, 16});
    for (auto [frame, key] : {std::pair{0, 0}, std::pair{4, 1}, std::pair{8, 2}})
        REQUIRE(std::equal(keys[key].values().begin(), keys[key].values().end(), path.data() + frame * 128));
    const Tensor<float> mid = lerp(keys[0], keys[1], 0.5);
    REQUIRE(relative_l2_error(std::span<const float>(path.data() + 2 * 128, 128), mid.values()) < 1e-6);
    REQUIRE_THROWS_AS(interpolate_path({keys[0]}, 5, EditSpace::w), ValueError);
    REQUIRE_THROWS_AS(interpolate_path(keys, 1, EditSpace::w), ValueError);
}

TEST_CASE("apply_direction moves only the chosen layers; mix_styles picks layers from b", "[edit]") {
    StyleGAN2<Cpu>& g = demo();
    const Tensor<float> ws = sample_ws(g, 3, 4);
    Rng rng(8);
    const std::vector<float> dir = random_unit(g.w_dim(), rng);
    const Tensor<float> moved = apply_direction(ws, dir, 1.5f, LayerRange{2, 5});
    const Index w = g.w_dim(), L = g.num_ws();
    for (Index b = 0; b < 3; ++b)
        for (Index l = 0; l < L; ++l)
            for (Index i = 0; i < w; ++i) {
                const Index at = (b * L + l) * w + i;
                if (l >= 2 && l < 5) REQUIRE(moved[at] == ws[at] + 1.5f * dir[static_cast<std::size_t>(i)]);
                else REQUIRE(moved[at] == ws[at]);
            }
    const Tensor<float> other = sample_ws(g, 3, 5), one = sample_ws(g, 1, 6);
    const Tensor<float> mixed = mix_styles(ws, other, 4, 8), mixed1 = mix_styles(ws, one, 0, 2);
    for (Index b = 0; b < 3; ++b)
        for (Index l = 0; l < L; ++l) {
            const Index at = (b * L + l) * w + 3;
            REQUIRE(mixed[at] == (l >= 4 ? other[at] : ws[at]));
            REQUIRE(mixed1[at] == (l < 2 ? one[l * w + 3] : ws[at]));
        }
}

TEST_CASE("StyleSpace edits change only the chosen channel", "[edit][stylespace]") {
    StyleGAN2<Cpu>& g = demo();
    const StyleStats stats = style_statistics(g, 2000, 3);
    REQUIRE(static_cast<Index>(stats.stddev.size()) == g.style_dim());
    const Tensor<float> styles = g.styles(sample_ws(g, 2, 9));
    const Index idx = style_channel_index(g.plan(), "b16.conv0", 5);
    REQUIRE(idx == style_channel_index(g.plan(), "synthesis.b16.conv0", 5));
    REQUIRE(idx == style_channel_index(g.plan(), "5", 5));  // b16.conv0 is layer 5 in execution order
    REQUIRE(idx == g.plan().layers[5].style_offset + 5);
    const Tensor<float> edited = edit_style_channel(styles, g.plan(), "b16.conv0", 5, 10.0f, stats);
    for (Index b = 0; b < 2; ++b)
        for (Index i = 0; i < g.style_dim(); ++i) {
            const Index at = b * g.style_dim() + i;
            if (i == idx) REQUIRE(edited[at] == Approx(styles[at] + 10.0f * stats.stddev[static_cast<std::size_t>(idx)]));
            else REQUIRE(edited[at] == styles[at]);
        }
    REQUIRE(stats.stddev[static_cast<std::size_t>(idx)] > 0);
    const Tensor<float> img0 = g.synthesis_from_styles(styles), img1 = g.synthesis_from_styles(edited);
    REQUIRE(relative_l2_error(img1.values(), img0.values()) > 1e-3);  // the image does change
}

TEST_CASE("directions files round-trip", "[edit]") {
    GanSpaceOptions opts;
    opts.samples = 2000;
    opts.count = 4;
    opts.layers = LayerRange{1, 6};
    const Directions d = ganspace(demo(), opts);
    const auto path = test::temp_dir("edit_dirs") / "d.safetensors";
    save_directions(path, d);
    const Directions e = load_directions(path);
    REQUIRE(e.method == "ganspace");
    REQUIRE(e.space == EditSpace::w);
    REQUIRE(e.layers.begin == 1);
    REQUIRE(e.layers.end == 6);
    REQUIRE(e.directions.values()[17] == d.directions.values()[17]);
    REQUIRE(e.stddev == d.stddev);
    REQUIRE(e.explained_variance == d.explained_variance);
    REQUIRE(e.mean == d.mean);
    REQUIRE(e.info.at("samples") == "2000");
    const Tensor<float> ws = sample_ws(demo(), 1, 0);
    const Tensor<float> moved = apply_direction(ws, e, 0, 2.0f);
    REQUIRE(moved[0] == ws[0]);  // layer 0 is outside 1:6
    REQUIRE(moved[demo().w_dim()] == Approx(ws[demo().w_dim()] + 2.0f * e.stddev[0] * e.directions[0]));
}

TEST_CASE("editing rejects bad input with clear errors", "[edit][errors]") {
    StyleGAN2<Cpu>& g = demo();
    const Tensor<float> ws = sample_ws(g, 1, 0);
    const std::vector<float> short_dir(5, 0.0f), dir(static_cast<std::size_t>(g.w_dim()), 0.0f);
    REQUIRE_THROWS_AS(apply_direction(ws, short_dir, 1.0f), ShapeError);
    REQUIRE_THROWS_AS(apply_direction(ws, dir, 1.0f, LayerRange{3, 9}), ValueError);
    REQUIRE_THROWS_AS(apply_direction(ws, dir, 1.0f, LayerRange{4, 4}), ValueError);
    REQUIRE_THROWS_AS(mix_styles(ws, Tensor<float>({1, 7, g.w_dim()}, 0.0f), 0, 2), ShapeError);
    REQUIRE_THROWS_AS(mix_styles(ws, ws, 2, 12), ValueError);
    REQUIRE_THROWS_AS(style_channel_index(g.plan(), "b64.conv0", 0), ValueError);
    REQUIRE_THROWS_AS(style_channel_index(g.plan(), "b16.conv0", 10000), ValueError);
    REQUIRE_THROWS_AS(sefa(g, {LayerRange{0, 20}, SefaTorgb::skip, 0}), ValueError);
    REQUIRE_THROWS_AS(parse_layer_range("2:x"), ValueError);
    REQUIRE_THROWS_AS(parse_edit_space("q"), ValueError);
    try {
        apply_direction(ws, short_dir, 1.0f);
    } catch (const ShapeError& e) {
        REQUIRE(std::string(e.what()).find("direction") != std::string::npos);
    }
    REQUIRE(parse_layer_range("2:5").begin == 2);
    REQUIRE(parse_layer_range(":5").end == 5);
    REQUIRE(parse_layer_range("3").end == 4);
}

TEST_CASE("GIF writer: stb_image decodes the frames back", "[edit][gif]") {
    // Gray frames are lossless; a noisy 200x200 frame fills the 4096-entry LZW table many times.
    Rng rng(4);
    std::vector<Image> frames;
    for (int f = 0; f < 3; ++f) {
        Image img = make_image(200, 150, 1);
        for (std::size_t i = 0; i < img.pixels.size(); ++i)
            img.pixels[i] = static_cast<std::uint8_t>(f == 1 ? rng.below(256) : (i * (f + 1)) % 251);
        frames.push_back(img);
    }
    auto decode = [](const std::vector<std::uint8_t>& bytes, int& w, int& h, int& n) {
        int* delays = nullptr;
        int comp = 0;
        stbi_uc* p = stbi_load_gif_from_memory(bytes.data(), static_cast<int>(bytes.size()), &delays, &w, &h, &n,
                                               &comp, 4);
        REQUIRE(p != nullptr);
        std::vector<std::uint8_t> out(p, p + static_cast<std::size_t>(w) * h * n * 4);
        stbi_image_free(p);
        stbi_image_free(delays);
        return out;
    };
    int w = 0, h = 0, n = 0;
    const auto rgba = decode(encode_gif(frames), w, h, n);
    REQUIRE((w == 200 && h == 150 && n == 3));
    for (int f = 0; f < 3; ++f)
        for (std::size_t i = 0; i < frames[0].pixels.size(); ++i)
            REQUIRE(rgba[(static_cast<std::size_t>(f) * 200 * 150 + i) * 4] == frames[static_cast<std::size_t>(f)].pixels[i]);
    // Random lines whose codes straddle the first width change (9 -> 10 bits); three of them end
    // exactly when the table reaches 512 entries (the end-code width case of gif_lzw).
    Rng line_rng(4);
    for (int pass = 0; pass < 3; ++pass)
    for (int len = 240; len <= 280; ++len) {
        Image line = make_image(len, 1, 1);
        for (auto& p : line.pixels) p = static_cast<std::uint8_t>(line_rng.below(256));
        const auto back = decode(encode_gif({line}), w, h, n);
        REQUIRE(w == len);
        for (int i = 0; i < len; ++i) REQUIRE(back[static_cast<std::size_t>(i) * 4] == line.pixels[static_cast<std::size_t>(i)]);
    }
    // Colour frames go through the fixed palette: no farther from the pixel than the nearest cube
    // colour, which is within half a cube step (25) per channel.
    Image colour = make_image(64, 40, 3);
    for (std::size_t i = 0; i < colour.pixels.size(); ++i) colour.pixels[i] = static_cast<std::uint8_t>(rng.below(256));
    const auto c = decode(encode_gif({colour}), w, h, n);
    REQUIRE(n == 1);
    int worst = 0;
    for (std::size_t i = 0; i < colour.pixel_count(); ++i) {
        int d2 = 0;
        for (int k = 0; k < 3; ++k) d2 += (c[i * 4 + k] - colour.pixels[i * 3 + k]) * (c[i * 4 + k] - colour.pixels[i * 3 + k]);
        worst = std::max(worst, d2);
    }
    REQUIRE(worst <= 3 * 25 * 25);
}
