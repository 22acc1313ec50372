// Parity of the CPU layers with the official fixtures (modulated conv, upfirdn2d), and their
// gradients against finite differences.
#include "test_support.hpp"
#include "upfirdn2d_direct.hpp"

#include <ganinv/core/rng.hpp>
#include <ganinv/io/safetensors.hpp>
#include <ganinv/nn/bias_act.hpp>
#include <ganinv/nn/conv2d.hpp>
#include <ganinv/nn/global_pool.hpp>
#include <ganinv/nn/group_norm.hpp>
#include <ganinv/nn/linear.hpp>
#include <ganinv/nn/modulated_conv.hpp>
#include <ganinv/nn/prelu.hpp>
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

/// Central differences of `loss` (a function of every parameter, double) at `trials` random entries
/// of `param`, compared with the analytic `grad`. `skip(i)` excludes entries where the function has
/// a kink within eps (PReLU at 0).
template <class Loss, class Skip>
void fd_check(Tensor<float>& param, const Tensor<float>& grad, Loss&& loss, Rng& rng, const std::string& what,
              float eps, int trials, double tol, Skip&& skip) {
    REQUIRE(param.shape() == grad.shape());
    for (int trial = 0; trial < trials; ++trial) {
        const Index i = static_cast<Index>(rng.below(static_cast<std::uint64_t>(param.numel())));
        if (skip(i)) continue;
        const float keep = param[i];
        param[i] = keep + eps;
        const double lp = loss();
        param[i] = keep - eps;
        const double lm = loss();
        param[i] = keep;
        const double fd = (lp - lm) / (2.0 * eps);
        INFO(what << " index " << i << ": analytic " << grad[i] << " fd " << fd);
        REQUIRE(std::fabs(fd - grad[i]) <= tol * (1.0 + std::fabs(fd)));
    }
}
template <class Loss>
void fd_check(Tensor<float>& param, const Tensor<float>& grad, Loss&& loss, Rng& rng, const std::string& what,
              float eps = 1e-2f, int trials = 12, double tol = 3e-3) {
    fd_check(param, grad, loss, rng, what, eps, trials, tol, [](Index) { return false; });
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

TEST_CASE("the 4x4 stencil rule of the tiled CUDA FIR equals upfirdn2d and its adjoint", "[nn][upfirdn2d]") {
    // cuda/upfirdn2d.cuh's fir4_tiled computes out[y][x] = sum gain * f[fir4_stencil_tap(...)] *
    // in[y + a - py][x + b - px]; here that formula, on the host, against the library's forward and
    // adjoint for asymmetric filters (a symmetric one, as the synthesis uses, hides a mirrored rule).
    Rng rng(23);
    for (int trial = 0; trial < 200; ++trial) {
        Upfirdn2dParams p;
        p.pad_x0 = static_cast<int>(rng.below(5)) - 1;
        p.pad_x1 = static_cast<int>(rng.below(5)) - 1;
        p.pad_y0 = static_cast<int>(rng.below(5)) - 1;
        p.pad_y1 = static_cast<int>(rng.below(5)) - 1;
        p.flip_filter = rng.below(2) == 1;
        p.gain = 0.5f + static_cast<float>(rng.below(4));
        const Index in_h = 2 + static_cast<Index>(rng.below(9)), in_w = 2 + static_cast<Index>(rng.below(9));
        const Index out_h = p.out_h(in_h, 4), out_w = p.out_w(in_w, 4);
        if (out_h < 1 || out_w < 1) continue;
        const Tensor<float> filt = random_tensor({4, 4}, rng);
        const Tensor<float> x = random_tensor({1, in_h, in_w}, rng), gy = random_tensor({1, out_h, out_w}, rng);
        auto stencil = [&](const Tensor<float>& in, Index ih, Index iw, Index oh, Index ow, bool adjoint) {
            const Index py = adjoint ? 3 - p.pad_y0 : p.pad_y0, px = adjoint ? 3 - p.pad_x0 : p.pad_x0;
            std::vector<float> out(static_cast<std::size_t>(oh * ow));
            for (Index y = 0; y < oh; ++y)
                for (Index xx = 0; xx < ow; ++xx) {
                    float acc = 0.0f;
                    for (int a = 0; a < 4; ++a)
                        for (int b = 0; b < 4; ++b) {
                            const Index iy = y + a - py, ix = xx + b - px;
                            if (iy < 0 || iy >= ih || ix < 0 || ix >= iw) continue;
                            acc += filt[fir4_stencil_tap(p.flip_filter, adjoint, a, b)] * p.gain * in[iy * iw + ix];
                        }
                    out[static_cast<std::size_t>(y * ow + xx)] = acc;
                }
            return out;
        };
        std::vector<float> y(static_cast<std::size_t>(out_h * out_w)), gx(static_cast<std::size_t>(in_h * in_w));
        upfirdn2d_forward(x.data(), 1, in_h, in_w, filt.data(), 4, 4, p, y.data());
        upfirdn2d_backward(gy.data(), 1, in_h, in_w, filt.data(), 4, 4, p, gx.data());
        const std::vector<float> ys = stencil(x, in_h, in_w, out_h, out_w, false);
        const std::vector<float> gxs = stencil(gy, out_h, out_w, in_h, in_w, true);
        INFO("trial " << trial << (p.flip_filter ? " flipped" : "") << " pads " << p.pad_x0 << "," << p.pad_x1 << ","
                      << p.pad_y0 << "," << p.pad_y1 << " input " << in_h << "x" << in_w);
        for (std::size_t i = 0; i < y.size(); ++i) REQUIRE(std::fabs(y[i] - ys[i]) <= 1e-5f * (1 + std::fabs(y[i])));
        for (std::size_t i = 0; i < gx.size(); ++i) REQUIRE(std::fabs(gx[i] - gxs[i]) <= 1e-5f * (1 + std::fabs(gx[i])));
    }
}

TEST_CASE("upfirdn2d equals its direct definition on random geometries", "[nn][upfirdn2d]") {
    // The library walks precomputed tap tables in strided runs; the direct form tests every tap.
    // Up/down factors 1-3, padding and cropping, odd filters, flipped or not, forward and adjoint.
    Rng rng(11);
    int checked = 0;
    for (int trial = 0; trial < 600; ++trial) {
        Upfirdn2dParams p;
        p.up = 1 + static_cast<int>(rng.below(3));
        p.down = 1 + static_cast<int>(rng.below(3));
        p.pad_x0 = static_cast<int>(rng.below(7)) - 3;
        p.pad_x1 = static_cast<int>(rng.below(7)) - 3;
        p.pad_y0 = static_cast<int>(rng.below(7)) - 3;
        p.pad_y1 = static_cast<int>(rng.below(7)) - 3;
        p.flip_filter = rng.below(2) == 1;
        p.gain = 0.5f + static_cast<float>(rng.below(4));
        const Index fh = 1 + static_cast<Index>(rng.below(5)), fw = 1 + static_cast<Index>(rng.below(5));
        const Index in_h = 1 + static_cast<Index>(rng.below(9)), in_w = 1 + static_cast<Index>(rng.below(9));
        if (p.out_h(in_h, fh) < 1 || p.out_w(in_w, fw) < 1) continue;
        const Index planes = 2, out_size = planes * p.out_h(in_h, fh) * p.out_w(in_w, fw);
        const Tensor<float> filt = random_tensor({fh, fw}, rng);
        const Tensor<float> x = random_tensor({planes, in_h, in_w}, rng);
        const Tensor<float> gy = random_tensor({out_size}, rng);
        std::vector<float> y(static_cast<std::size_t>(out_size)), y_ref(y.size());
        std::vector<float> gx(static_cast<std::size_t>(x.numel())), gx_ref(gx.size());
        upfirdn2d_forward(x.data(), planes, in_h, in_w, filt.data(), fh, fw, p, y.data());
        test::upfirdn2d_direct_forward(x.data(), planes, in_h, in_w, filt.data(), fh, fw, p, y_ref.data());
        upfirdn2d_backward(gy.data(), planes, in_h, in_w, filt.data(), fh, fw, p, gx.data());
        test::upfirdn2d_direct_backward(gy.data(), planes, in_h, in_w, filt.data(), fh, fw, p, gx_ref.data());
        INFO("trial " << trial << ": up " << p.up << " down " << p.down << " pads " << p.pad_x0 << "," << p.pad_x1
                      << "," << p.pad_y0 << "," << p.pad_y1 << " filter " << fh << "x" << fw << " input " << in_h
                      << "x" << in_w);
        for (std::size_t i = 0; i < y.size(); ++i) REQUIRE(std::fabs(y[i] - y_ref[i]) <= 1e-5f * (1 + std::fabs(y_ref[i])));
        for (std::size_t i = 0; i < gx.size(); ++i)
            REQUIRE(std::fabs(gx[i] - gx_ref[i]) <= 1e-5f * (1 + std::fabs(gx_ref[i])));
        ++checked;
    }
    REQUIRE(checked > 300);
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

TEST_CASE("strided conv2d gradients (input, weight, bias) agree with finite differences", "[nn][gradcheck]") {
    Rng rng(21);
    // The encoders' down-sampling convs: 3x3 stride 2 pad 1 on odd and even sizes, 1x1 stride 2 shortcuts.
    for (const auto& s : {Conv2dShape{2, 3, 4, 9, 8, 3, 3, 2, 1, 1}, Conv2dShape{2, 2, 5, 8, 8, 1, 1, 2, 0, 0},
                          Conv2dShape{1, 1, 3, 7, 7, 3, 3, 2, 1, 1}}) {
        Tensor<float> x = random_tensor({s.batch, s.in_channels, s.in_h, s.in_w}, rng);
        Tensor<float> w = random_tensor({s.out_channels, s.in_channels, s.kernel_h, s.kernel_w}, rng);
        Tensor<float> b = random_tensor({s.out_channels}, rng);
        const Tensor<float> gy = random_tensor({s.batch, s.out_channels, s.out_h(), s.out_w()}, rng);
        auto loss = [&] {
            Tensor<float> y(gy.shape());
            conv2d_forward(x.data(), w.data(), b.data(), s, y.data());
            return dot(y.values(), gy.values());
        };
        Tensor<float> gx(x.shape()), gw(w.shape(), 0.0f), gb(b.shape(), 0.0f);
        conv2d_backward(x.data(), w.data(), gy.data(), s, gx.data(), gw.data(), gb.data());
        const std::string tag = concat("k", s.kernel_h, " s", s.stride, " ", s.in_h, "x", s.in_w);
        fd_check(x, gx, loss, rng, "conv grad_x " + tag);
        fd_check(w, gw, loss, rng, "conv grad_weight " + tag);
        fd_check(b, gb, loss, rng, "conv grad_bias " + tag);
    }
}

TEST_CASE("group norm normalises each group and its gradients agree with finite differences", "[nn][gradcheck]") {
    Rng rng(22);
    const GroupNormShape s{3, 6, 10, 3};
    Tensor<float> x = random_tensor({3, 6, 10}, rng, 2.0f);
    for (float& v : x.values()) v += 3.0f;  // a large mean: the two-pass variance must not cancel
    Tensor<float> gamma = random_tensor({6}, rng), beta = random_tensor({6}, rng);
    {
        // Without the affine every (sample, group) comes out with mean 0 and variance ~1.
        Tensor<float> y(x.shape());
        group_norm_forward(x.data(), nullptr, nullptr, s, y.data(), nullptr);
        for (Index g = 0; g < 9; ++g) {
            double m = 0, v = 0;
            for (Index i = 0; i < 20; ++i) m += y[g * 20 + i];
            m /= 20;
            for (Index i = 0; i < 20; ++i) v += (y[g * 20 + i] - m) * (y[g * 20 + i] - m);
            REQUIRE(std::fabs(m) < 1e-5);
            REQUIRE(v / 20 == Approx(1.0).epsilon(1e-3));
        }
    }
    const Tensor<float> gy = random_tensor(x.shape(), rng);
    auto loss = [&] {
        Tensor<float> y(x.shape());
        group_norm_forward(x.data(), gamma.data(), beta.data(), s, y.data(), nullptr);
        return dot(y.values(), gy.values());
    };
    Tensor<float> y(x.shape());
    GroupNormStats st;
    group_norm_forward(x.data(), gamma.data(), beta.data(), s, y.data(), &st);
    Tensor<float> gx(x.shape()), gg({6}, 0.0f), gb({6}, 0.0f);
    group_norm_backward(x.data(), gamma.data(), st, gy.data(), s, gx.data(), gg.data(), gb.data());
    fd_check(x, gx, loss, rng, "group norm grad_x", 1e-2f, 20, 5e-3);
    fd_check(gamma, gg, loss, rng, "group norm grad_gamma");
    fd_check(beta, gb, loss, rng, "group norm grad_beta");
    REQUIRE_THROWS_WITH(group_norm_forward(x.data(), nullptr, nullptr, GroupNormShape{3, 6, 10, 4}, y.data(), nullptr),
                        Catch::Matchers::Contains("6 channels do not split into 4 groups"));
}

TEST_CASE("PReLU gradients (input and per-channel slope) agree with finite differences", "[nn][gradcheck]") {
    Rng rng(23);
    Tensor<float> x = random_tensor({2, 4, 9}, rng), alpha = random_tensor({4}, rng, 0.3f);
    const Tensor<float> gy = random_tensor(x.shape(), rng);
    auto loss = [&] {
        Tensor<float> y(x.shape());
        prelu_forward(x.data(), alpha.data(), 2, 4, 9, y.data());
        return dot(y.values(), gy.values());
    };
    Tensor<float> gx(x.shape()), ga({4}, 0.0f);
    prelu_backward(x.data(), alpha.data(), gy.data(), 2, 4, 9, gx.data(), ga.data());
    const float eps = 1e-2f;
    fd_check(x, gx, loss, rng, "prelu grad_x", eps, 20, 3e-3, [&](Index i) { return std::fabs(x[i]) < 2 * eps; });
    fd_check(alpha, ga, loss, rng, "prelu grad_alpha");
    // The slope really applies to negative inputs only.
    Tensor<float> y(x.shape());
    prelu_forward(x.data(), alpha.data(), 2, 4, 9, y.data());
    for (Index i = 0; i < x.numel(); ++i) REQUIRE(y[i] == (x[i] > 0 ? x[i] : alpha[(i / 9) % 4] * x[i]));
}

TEST_CASE("global average pooling and nearest 2x up-sampling: values and adjoint gradients", "[nn][gradcheck]") {
    Rng rng(24);
    Tensor<float> x = random_tensor({6, 3, 5}, rng);
    const Tensor<float> gy = random_tensor({6}, rng);
    Tensor<float> y({6});
    global_avg_pool_forward(x.data(), 6, 15, y.data());
    for (Index p = 0; p < 6; ++p) {
        double m = 0;
        for (Index i = 0; i < 15; ++i) m += x[p * 15 + i];
        REQUIRE(y[p] == Approx(m / 15).epsilon(1e-6));
    }
    Tensor<float> gx(x.shape());
    global_avg_pool_backward(gy.data(), 6, 15, gx.data());
    fd_check(x, gx, [&] {
        Tensor<float> yy({6});
        global_avg_pool_forward(x.data(), 6, 15, yy.data());
        return dot(yy.values(), gy.values());
    }, rng, "global pool grad_x");

    Tensor<float> u = random_tensor({2, 3, 4}, rng), base = random_tensor({2, 6, 8}, rng);
    const Tensor<float> gu_y = random_tensor({2, 6, 8}, rng);
    Tensor<float> up = base;
    upsample_nearest2x_forward(u.data(), 2, 3, 4, up.data(), true);
    REQUIRE(up[(1 * 6 + 5) * 8 + 7] == base[(1 * 6 + 5) * 8 + 7] + u[(1 * 3 + 2) * 4 + 3]);
    Tensor<float> gu(u.shape());
    upsample_nearest2x_backward(gu_y.data(), 2, 3, 4, gu.data());
    fd_check(u, gu, [&] {
        Tensor<float> yy({2, 6, 8});
        upsample_nearest2x_forward(u.data(), 2, 3, 4, yy.data(), false);
        return dot(yy.values(), gu_y.values());
    }, rng, "upsample grad_x");
}
