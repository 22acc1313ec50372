// The face-descriptor ResNet against the descriptors of @vladmandic/face-api's own JavaScript,
// the identity loss's gradient against PyTorch autograd and finite differences, identity
// structure (mirror pairs vs different people), and error messages.
#include "test_loss_support.hpp"

#include <ganinv/loss/identity.hpp>
#include <ganinv/models/vgg16.hpp>

#include <cstring>

using namespace ganinv;
using namespace ganinv::test;

namespace {

std::filesystem::path face_dir() { return data_dir() / "face_api"; }

const FaceResNet& face_net() {
    static const FaceResNet net = FaceResNet::load(face_dir() / "face_recognition.safetensors");
    return net;
}

struct Case {
    Tensor<float> crops, descriptors;
    std::vector<std::string> names;
};

const Case& face_case() {
    static const Case c = [] {
        const SafetensorsFile f(face_dir() / "identity_case.safetensors");
        Case k{f.load("crops"), f.load("descriptors"), {}};
        const Json names = Json::parse(*f.metadata("names"));
        for (const Json& n : names.as_array()) k.names.push_back(n.as_string());
        return k;
    }();
    return c;
}

/// Images i of the crops mapped from 0..255 to [-1, 1].
Tensor<float> crops_pm1(const std::vector<Index>& idx) {
    const Tensor<float>& c = face_case().crops;
    const Index per = 3 * 150 * 150;
    Tensor<float> out({static_cast<Index>(idx.size()), 3, 150, 150});
    for (std::size_t k = 0; k < idx.size(); ++k)
        for (Index i = 0; i < per; ++i) out[static_cast<Index>(k) * per + i] = static_cast<float>(c[idx[k] * per + i] / 127.5 - 1.0);
    return out;
}

Index index_of(const std::string& name) {
    const auto& n = face_case().names;
    return static_cast<Index>(std::find(n.begin(), n.end(), name) - n.begin());
}

double cosine(const float* a, const float* b, Index d) {
    double ab = 0, aa = 0, bb = 0;
    for (Index k = 0; k < d; ++k) {
        ab += static_cast<double>(a[k]) * b[k];
        aa += static_cast<double>(a[k]) * a[k];
        bb += static_cast<double>(b[k]) * b[k];
    }
    return ab / std::sqrt(aa * bb);
}

}  // namespace

TEST_CASE("quantised face weights dequantise bit-exactly as tfjs does", "[loss][identity]") {
    // Reference values: the package's weights as tfjs loads them (the float32 conversion,
    // tools/convert_face_api.mjs --float32, checked bit for bit against getParamList()).
    const SafetensorsFile f(face_dir() / "face_recognition.safetensors");
    REQUIRE(f.entry("fc").dtype == "U8");
    REQUIRE(f.entry("fc.__scale").dtype == "F64");
    const Tensor<float> fc = FaceResNet::load_dequantised(f, "fc", {256, 128});
    CHECK(fc[0] == -0x1.bd6324p-8f);
    CHECK(fc[1] == -0x1.482e1ap-7f);
    CHECK(fc[2] == 0x1.5f9f1cp-8f);
    CHECK(fc[3] == -0x1.77101ep-12f);
    const Tensor<float> w = FaceResNet::load_dequantised(f, "conv128_1/conv2/conv/filters", {3, 3, 128, 128});
    CHECK(w[0] == 0x1.aaf0a6p-8f);
    CHECK(w[1] == -0x1.558d52p-9f);
    double sum = 0;
    for (float v : w.values()) sum += v;
    CHECK(sum == -9.7935974040301517);  // float32 values summed in double, order fixed: exact
    CHECK(f.entry("conv64_1/conv1/conv/filters").dtype == "F32");  // stored unquantised by the package
}

TEST_CASE("FaceResNet matches face-api's descriptors on all 22 crops", "[loss][identity][parity]") {
    const Case& c = face_case();
    const Tensor<float> d = face_net().forward(c.crops);
    REQUIRE(d.shape() == Shape{22, 128});
    double min_cos = 1.0, max_rel = 0.0;
    for (Index n = 0; n < 22; ++n) {
        const double cs = cosine(d.data() + n * 128, c.descriptors.data() + n * 128, 128);
        const double rel = relative_l2_error(std::span<const float>(d.data() + n * 128, 128),
                                             std::span<const float>(c.descriptors.data() + n * 128, 128));
        INFO(c.names[static_cast<std::size_t>(n)] << ": cosine " << cs << ", relative L2 " << rel);
        CHECK(cs >= 0.9999);
        CHECK(rel <= 1e-5);
        min_cos = std::min(min_cos, cs);
        max_rel = std::max(max_rel, rel);
    }
    WARN("FaceResNet vs face-api: min cosine 1 - " << 1.0 - min_cos << ", max relative L2 " << max_rel);

    // The same through the loss's [-1, 1] input stage.
    Identity<> id(face_net());
    const Tensor<float> d2 = id.descriptors(crops_pm1({0, 1}));
    CHECK(cosine(d2.data(), c.descriptors.data(), 128) >= 0.9999);
    CHECK(cosine(d2.data() + 128, c.descriptors.data() + 128, 128) >= 0.9999);
}

TEST_CASE("Identity: mirror pairs are closer than different people", "[loss][identity]") {
    const Case& c = face_case();
    Identity<> id(face_net());
    const Tensor<float> all = crops_pm1([] {
        std::vector<Index> v(22);
        for (Index i = 0; i < 22; ++i) v[static_cast<std::size_t>(i)] = i;
        return v;
    }());
    const Tensor<float> d = id.descriptors(all);
    double worst_same = 0, best_diff = 1e9, worst_same_e = 0, best_diff_e = 1e9;
    const auto person = [&](Index i) {
        std::string n = c.names[static_cast<std::size_t>(i)];
        return n.ends_with("_mirror") ? n.substr(0, n.size() - 7) : n;
    };
    for (Index i = 0; i < 22; ++i)
        for (Index j = i + 1; j < 22; ++j) {
            const double loss = 1.0 - cosine(d.data() + i * 128, d.data() + j * 128, 128);
            const Tensor<float> a({1, 128}, std::vector<float>(d.data() + i * 128, d.data() + (i + 1) * 128));
            const Tensor<float> b({1, 128}, std::vector<float>(d.data() + j * 128, d.data() + (j + 1) * 128));
            const double e = descriptor_distance(a, b)[0];
            if (person(i) == person(j)) {
                worst_same = std::max(worst_same, loss);
                worst_same_e = std::max(worst_same_e, e);
            } else {
                best_diff = std::min(best_diff, loss);
                best_diff_e = std::min(best_diff_e, e);
            }
        }
    WARN("1 - cos: same person <= " << worst_same << ", different people >= " << best_diff << "; Euclidean: same <= "
                                    << worst_same_e << ", different >= " << best_diff_e);
    CHECK(worst_same < best_diff);
    CHECK(worst_same_e < best_diff_e);
    // the loss API on one pair of each kind
    const Index a = index_of("astronaut"), am = index_of("astronaut_mirror"), l = index_of("lfw_0");
    const LossResult r = id.evaluate(crops_pm1({a, a}), crops_pm1({am, l}), nullptr);
    CHECK(r.per_image[0] < r.per_image[1]);
    const auto e = id.euclidean_distance(crops_pm1({a, a}), crops_pm1({am, l}));
    CHECK(e[0] < 0.6);  // dlib's same-person threshold
    CHECK(e[0] < e[1]);
}

TEST_CASE("Identity gradient matches PyTorch autograd and finite differences", "[loss][identity][gradcheck]") {
    const SafetensorsFile f(face_dir() / "identity_grad_case.safetensors");
    // The fixture's dither (tools/make_identity_grad_fixture.py): breaks the exact max-pool ties of
    // flat image regions, whose winners depend on each implementation's rounding.
    Tensor<float> pred = crops_pm1({index_of("astronaut"), index_of("lfw_0")});
    for (Index i = 0; i < pred.numel(); ++i)
        pred[i] += static_cast<float>(0.01 * static_cast<double>(detail::vgg_hash_uniform(99, static_cast<std::uint64_t>(i))));
    const Tensor<float> target = crops_pm1({index_of("astronaut_mirror"), index_of("lfw_0_mirror")});
    for (bool precise : {true, false}) {
        Identity<> id(face_net());
        id.network().set_reference_precision(precise);
        Tensor<float> grad;
        const LossResult r = id.evaluate(pred, target, &grad);
        const Tensor<float> loss_ref = f.load("loss");
        INFO((precise ? "double-accumulated convs" : "float32 convs") << ": loss " << r.per_image[0] << ", "
                                                                   << r.per_image[1]);
        CHECK(r.per_image[0] == Approx(loss_ref[0]).epsilon(1e-4));
        CHECK(r.per_image[1] == Approx(loss_ref[1]).epsilon(1e-4));
        GANINV_REQUIRE_CLOSE(grad.values(), f.load("grad_pred").values(), precise ? 1e-4 : 1e-3, "identity grad");
    }

}

namespace {

/// <descriptor(x), r> summed over images, as a loss-shaped functional of the 0..255 input: a
/// linear head keeps the finite-difference signal large (1 - cos is nearly flat near a match).
struct DescriptorProbe {
    const FaceResNet& net;
    Tensor<float> r;  // [N, 128]
    LossResult evaluate(const Tensor<float>& x, const Tensor<float>&, Tensor<float>* grad) const {
        FaceResNet::Cache c;
        const Tensor<float> d = net.forward(x, &c);
        std::vector<double> per(static_cast<std::size_t>(x.dim(0)), 0.0);
        for (Index i = 0; i < d.numel(); ++i) per[static_cast<std::size_t>(i / 128)] += static_cast<double>(d[i]) * r[i];
        if (grad) *grad = net.backward(c, r);
        return detail::single_term("probe", per);
    }
};

}  // namespace

TEST_CASE("FaceResNet backward matches finite differences", "[loss][identity][gradcheck]") {
    // Float features limit finite differences through a ReLU net (see test_loss_vgg.cpp): here
    // the flip-free step moves the descriptor by ~1e-6 while its float rounding is ~1e-7, so the
    // bound is loose (0.25: right sign and size; a wrong transpose or a missed branch is off by
    // O(1)). The precise check is the PyTorch autograd comparison above (1e-4). Real faces have
    // flat regions whose near-tied max-pool windows leave no usable step: noise images here.
    Rng rng(21);
    FaceResNet net = face_net();
    net.set_reference_precision(true);
    Tensor<float> x = random_image({2, 3, 150, 150}, rng);
    for (float& v : x.values()) v = (v + 1.0f) * 127.5f;
    DescriptorProbe probe{net, random_tensor({2, 128}, rng)};
    const auto pattern = [&](const Tensor<float>& in) {  // on the fast float32 network
        FaceResNet::Cache c;
        face_net().forward(in, &c);
        std::vector<std::int32_t> p(c.pool_argmax.begin(), c.pool_argmax.end());
        for (float v : c.stem.values()) p.push_back(v > 0.0f);
        for (const auto& b : c.blocks) {
            for (float v : b.t1.values()) p.push_back(v > 0.0f);
            for (float v : b.out.values()) p.push_back(v > 0.0f);
        }
        return p;
    };
    const auto step = [&](const Tensor<float>& p, const Tensor<float>& v) { return flip_free_step(p, v, pattern, 0.03); };
    check_gradient_with(probe, x, x, rng, 0.25, "face resnet", step, 24, 2e-3);
}

TEST_CASE("Identity's box, resize and gray stage passes gradients back through its adjoints", "[loss][identity]") {
    // With a box, the gradient must be crop^T(resample^T(replicate^T(g))) of the gradient the
    // plain loss gives on the prepared 150x150 RGB input (each adjoint is checked on its own in
    // test_loss_vgg.cpp and above).
    Rng rng(4);
    const Tensor<float> big = random_image({1, 1, 170, 168}, rng), big_t = random_image({1, 1, 170, 168}, rng);
    IdentityOptions o;
    o.box = FaceBox{3, 2, 163, 162};  // 160x160 -> 150x150 area
    Identity<> boxed(face_net(), o);
    Tensor<float> g;
    const LossResult r = boxed.evaluate(big, big_t, &g);

    const nn::Resampler shrink(160, 160, 150, 150);
    const auto prep = [&](const Tensor<float>& x) { return detail::gray_to_rgb(shrink.forward(crop_box(x, 3, 2, 163, 162))); };
    Identity<> plain(face_net());
    Tensor<float> gp;
    const LossResult rp = plain.evaluate(prep(big), prep(big_t), &gp);
    CHECK(r.per_image[0] == Approx(rp.per_image[0]).epsilon(1e-6));
    const Tensor<float> g_small = shrink.backward(detail::gray_to_rgb_backward(gp, 1));
    Tensor<float> expected({1, 1, 170, 168}, 0.0f);
    for (Index y = 0; y < 160; ++y)
        for (Index x = 0; x < 160; ++x) expected[(y + 2) * 168 + x + 3] = g_small[y * 160 + x];
    GANINV_REQUIRE_CLOSE(g.values(), expected.values(), 1e-6, "boxed identity gradient");
}

TEST_CASE("Identity and crop_box report bad input clearly", "[loss][identity][errors]") {
    REQUIRE_THROWS_AS(FaceResNet::load(face_dir() / "missing.safetensors"), IoError);
    REQUIRE_THROWS_WITH(FaceResNet::load(face_dir() / "missing.safetensors"), Catch::Matchers::Contains("missing.safetensors"));
    REQUIRE_THROWS_WITH(FaceResNet::load(data_dir() / "stylegan2_tiny" / "generator.safetensors"),
                        Catch::Matchers::Contains("not a face-api face-recognition weights file") &&
                            Catch::Matchers::Contains("generator.safetensors"));
    Rng rng(2);
    const Tensor<float> img = random_image({1, 3, 20, 30}, rng);
    REQUIRE_THROWS_WITH(crop_box(img, 5, 5, 40, 10), Catch::Matchers::Contains("outside the 30x20"));
    REQUIRE_THROWS_WITH(crop_box(img, 5, 5, 5, 10), Catch::Matchers::Contains("is empty"));
    CHECK(crop_box(img, 2, 3, 12, 8).shape() == Shape{1, 3, 5, 10});
    CHECK(crop_box(img, 2, 3, 12, 8)[0] == img[3 * 30 + 2]);
    Identity<> id(face_net());
    REQUIRE_THROWS_WITH(id.evaluate(img, random_image({1, 3, 20, 31}, rng), nullptr),
                        Catch::Matchers::Contains("Identity: pred has shape [1, 3, 20, 30] but target has shape [1, 3, 20, 31]"));
    REQUIRE_THROWS_WITH(face_net().forward(img), Catch::Matchers::Contains("[N, 3, 150, 150]"));
}
