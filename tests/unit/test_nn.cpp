// Parity of the CPU layers with the official fixtures (modulated conv, upfirdn2d), and their
// gradients against finite differences.
#include "test_support.hpp"

#include <ganinv/core/rng.hpp>
#include <ganinv/io/safetensors.hpp>
#include <ganinv/nn/bias_act.hpp>
#include <ganinv/nn/linear.hpp>
#include <ganinv/nn/modulated_conv.hpp>
#include <ganinv/nn/upfirdn2d.hpp>

using namespace ganinv;
using namespace ganinv::nn;

namespace {

SafetensorsFile fixture(const char* name) { return SafetensorsFile(test::data_dir() / "stylegan2_tiny" / name); }

Tensor<float> random_tensor(const Shape& shape, Rng& rng, float scale = 1.0f) {
    Tensor<float> t(shape);
    rng.fill_normal(t.values(), 0.0, scale);
    return t;
}

double dot(std::span<const float> a, std::span<const float> b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
    return s;
}

}  // namespace

TEST_CASE("upfirdn2d matches the official upsample2d / downsample2d / filter2d", "[nn][parity]") {
    const auto f = fixture("upfirdn2d_case.safetensors");
    const Tensor<float> filt = make_resample_filter({1, 3, 3, 1});
    struct Case {
        const char* name;
        Upfirdn2dParams p;
    };
    for (const Case& c : {Case{"upsample2d", Upfirdn2dParams::upsample2d(4)},
                          Case{"downsample2d", Upfirdn2dParams::downsample2d(4)},
                          Case{"filter2d", Upfirdn2dParams::filter2d(4)}}) {
        const std::string pre = c.name;
        const Tensor<float> x = f.load(pre + ".x");
        const Tensor<float> y = upfirdn2d(x, filt, c.p);
        const Tensor<float> y_ref = f.load(pre + ".y");
        REQUIRE(y.shape() == y_ref.shape());
        GANINV_REQUIRE_CLOSE(y.values(), y_ref.values(), 1e-5, pre + " forward");
        const Tensor<float> gy = f.load(pre + ".grad_y");
        Tensor<float> gx(x.shape());
        upfirdn2d_backward(gy.data(), x.dim(0) * x.dim(1), x.dim(2), x.dim(3), filt.data(), 4, 4, c.p, gx.data());
        GANINV_REQUIRE_CLOSE(gx.values(), f.load(pre + ".grad_x").values(), 1e-4, pre + " backward");
    }
}

TEST_CASE("modulated conv matches all eight official cases", "[nn][parity]") {
    const auto f = fixture("modconv_case.safetensors");
    const Tensor<float> filt = make_resample_filter({1, 3, 3, 1});
    for (int up : {1, 2})
        for (int demod : {1, 0})
            for (int fused : {1, 0}) {
                const std::string pre = concat("up", up, "_demod", demod, "_fused", fused, ".");
                const Tensor<float> x = f.load(pre + "x"), w = f.load(pre + "weight"), s = f.load(pre + "styles");
                ModConvShape sh{x.dim(0), x.dim(1), w.dim(0), x.dim(2), x.dim(3), w.dim(2), up, demod == 1, 4};
                Tensor<float> y({sh.batch, sh.out_channels, sh.out_h(), sh.out_w()}, -999.0f);
                Tensor<float> d({sh.batch, sh.out_channels});
                modconv_forward(x.data(), w.data(), s.data(), filt.data(), sh, y.data(), d.data());
                GANINV_REQUIRE_CLOSE(y.values(), f.load(pre + "y").values(), 1e-5, pre + "y");

                const Tensor<float> gy = f.load(pre + "grad_y");
                Tensor<float> gx(x.shape(), -999.0f), gs(s.shape(), -999.0f), gw(w.shape(), 0.0f);
                modconv_backward(x.data(), w.data(), s.data(), filt.data(), d.data(), y.data(), gy.data(), sh,
                                 gx.data(), gs.data(), gw.data());
                GANINV_REQUIRE_CLOSE(gx.values(), f.load(pre + "grad_x").values(), 1e-4, pre + "grad_x");
                GANINV_REQUIRE_CLOSE(gs.values(), f.load(pre + "grad_styles").values(), 1e-4, pre + "grad_styles");
                GANINV_REQUIRE_CLOSE(gw.values(), f.load(pre + "grad_weight").values(), 1e-4, pre + "grad_weight");
            }
}

TEST_CASE("modulated conv gradients agree with finite differences on odd shapes", "[nn][gradcheck]") {
    Rng rng(11);
    const Tensor<float> filt = make_resample_filter({1, 3, 3, 1});
    for (int up : {1, 2})
        for (Index k : {1, 3}) {
            if (up == 2 && k == 1) continue;
            ModConvShape sh{3, 5, 7, 5, 6, k, up, k == 3, 4};
            Tensor<float> x = random_tensor({3, 5, 5, 6}, rng), w = random_tensor({7, 5, k, k}, rng);
            Tensor<float> s = random_tensor({3, 5}, rng, 0.5f);
            for (float& v : s.values()) v += 1.0f;
            const Tensor<float> gy = random_tensor({3, 7, sh.out_h(), sh.out_w()}, rng);
            auto loss = [&](const Tensor<float>& xx, const Tensor<float>& ww, const Tensor<float>& ss) {
                Tensor<float> y(gy.shape()), d({3, 7});
                modconv_forward(xx.data(), ww.data(), ss.data(), filt.data(), sh, y.data(), d.data());
                return dot(y.values(), gy.values());
            };
            Tensor<float> y(gy.shape()), d({3, 7});
            modconv_forward(x.data(), w.data(), s.data(), filt.data(), sh, y.data(), d.data());
            Tensor<float> gx(x.shape()), gs(s.shape()), gw(w.shape(), 0.0f);
            modconv_backward(x.data(), w.data(), s.data(), filt.data(), d.data(), y.data(), gy.data(), sh, gx.data(),
                             gs.data(), gw.data());
            const float eps = 1e-2f;
            auto check = [&](Tensor<float>& param, const Tensor<float>& grad, const char* what) {
                for (int trial = 0; trial < 6; ++trial) {
                    const Index i = static_cast<Index>(rng.below(static_cast<std::uint64_t>(param.numel())));
                    const float keep = param[i];
                    param[i] = keep + eps;
                    const double lp = loss(x, w, s);
                    param[i] = keep - eps;
                    const double lm = loss(x, w, s);
                    param[i] = keep;
                    const double fd = (lp - lm) / (2.0 * eps);
                    INFO(what << " up=" << up << " k=" << k << " index " << i << ": analytic " << grad[i] << " fd "
                              << fd);
                    REQUIRE(std::fabs(fd - grad[i]) <= 2e-3 * (1.0 + std::fabs(fd)));
                }
            };
            check(x, gx, "grad_x");
            check(s, gs, "grad_styles");
            check(w, gw, "grad_weight");
        }
}

TEST_CASE("linear layer and bias_act gradients agree with finite differences", "[nn][gradcheck]") {
    Rng rng(5);
    const LinearParams p = LinearParams::make(6, 4, 0.01f, Activation::lrelu);
    Tensor<float> x = random_tensor({3, 6}, rng), w = random_tensor({4, 6}, rng, 100.0f), b = random_tensor({4}, rng, 50.0f);
    const Tensor<float> gy = random_tensor({3, 4}, rng);
    auto loss = [&] {
        Tensor<float> y({3, 4});
        linear_forward(x.data(), 3, w.data(), b.data(), p, y.data());
        return dot(y.values(), gy.values());
    };
    Tensor<float> y({3, 4});
    linear_forward(x.data(), 3, w.data(), b.data(), p, y.data());
    Tensor<float> g = gy, gx({3, 6}), gw({4, 6}, 0.0f), gb({4}, 0.0f);
    linear_backward(x.data(), 3, w.data(), y.data(), g.data(), p, gx.data(), gw.data(), gb.data());
    for (auto [param, grad, eps] : {std::tuple{&x, &gx, 1e-2f}, std::tuple{&w, &gw, 1.0f}, std::tuple{&b, &gb, 1.0f}}) {
        for (Index i = 0; i < param->numel(); ++i) {
            const float keep = (*param)[i];
            (*param)[i] = keep + eps;
            const double lp = loss();
            (*param)[i] = keep - eps;
            const double lm = loss();
            (*param)[i] = keep;
            REQUIRE(std::fabs((lp - lm) / (2 * eps) - (*grad)[i]) <= 2e-3 * (1 + std::fabs((*grad)[i])));
        }
    }
}
