// The pSp / e4e / ReStyle encoder on CUDA (issue 16): each kernel of cuda/encoder_kernels.cuh
// against the CPU nn:: function it mirrors, cuDNN's backward-filter against nn::conv2d_backward's
// weight gradient, and the whole PspEncoderCuda against PspEncoder with the same weights (codes,
// input gradient, every parameter gradient, the e4e penalty), the to_host round trip and the
// shape checks.
//
// Bounds. A kernel that sums in the CPU's order (pooling windows, up-sampling, the codes) is
// checked at 1e-6; reductions in another order (group-norm statistics, per-channel gradient sums,
// cuDNN's GEMMs against Eigen's) differ by float rounding, ~1e-7 per element, so 1e-5. The whole
// encoder is ~15 float32 layers deep, and group norm divides by each group's spread, which scales
// absolute rounding up: measured-scale error is ~1e-6, so the codes get 1e-4 (headroom for other
// cuDNN algorithms). Gradients go through every layer twice (forward activations, then backward)
// and through group norm's backward, a difference of nearly equal terms, and PReLU / lrelu kinks:
// a pre-activation within rounding of 0 may land on the other side on the GPU and change that
// element's gradient by its slope. Hence 1e-3 for gradients; a wrong index or a missing term is
// off by 1e-1 or more.
#include "cuda_catch.hpp"
#include "cuda_check_close.hpp"
#include "cpu_domain_reference.hpp"

#include <ganinv/backend/cuda.cuh>
#include <ganinv/cuda/cudnn_conv.hpp>
#include <ganinv/cuda/encoder_kernels.cuh>
#include <ganinv/cuda/stream.hpp>
#include <ganinv/invert/domain_regularizer.hpp>
#include <ganinv/models/psp_encoder.hpp>
#include <ganinv/models/psp_encoder_cuda.cuh>
#include <ganinv/models/stylegan2.hpp>
#include <ganinv/nn/conv2d.hpp>
#include <ganinv/nn/global_pool.hpp>
#include <ganinv/nn/group_norm.hpp>
#include <ganinv/nn/pooling.hpp>
#include <ganinv/nn/prelu.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

using namespace ganinv;
using Buf = cuda::DeviceTensor;

static_assert(Encoder<PspEncoderCuda>);

namespace {

constexpr auto kFp32 = cuda::Precision::fp32;

Tensor<float> randn(const Shape& shape, std::uint64_t seed, float scale = 1.0f) {
    Tensor<float> t(shape);
    Rng(seed).fill_normal(t.values(), 0.0, scale);
    return t;
}

/// A float buffer of 2n values seen as n doubles (the kernels' reduction scratch).
double* doubles(Buf& b) { return reinterpret_cast<double*>(b.data()); }

bool bit_equal(const Tensor<float>& a, const Tensor<float>& b) {
    return a.shape() == b.shape() && std::equal(a.values().begin(), a.values().end(), b.values().begin(),
                                                [](float x, float y) { return std::memcmp(&x, &y, sizeof(float)) == 0; });
}

double norm2(std::span<const float> v) {
    double s = 0;
    for (float x : v) s += static_cast<double>(x) * x;
    return std::sqrt(s);
}

}  // namespace

TEST_CASE("encoder kernels: group norm forward and backward match nn::group_norm", "[cuda][encoder]") {
    cuda::Stream stream;
    const Cuda b(stream);
    struct Case {
        Index batch, channels, spatial, groups;
    };
    // Odd channel counts, one group and several, batch 1 and 3, a plane larger than a block.
    for (const Case c : {Case{1, 6, 35, 3}, Case{3, 8, 16, 4}, Case{3, 5, 9, 1}, Case{1, 4, 1100, 2}}) {
        const std::string what = concat("N", c.batch, " C", c.channels, " S", c.spatial, " G", c.groups);
        INFO(what);
        const nn::GroupNormShape sh{c.batch, c.channels, c.spatial, c.groups};
        // A large common offset: the two-pass statistics must not cancel.
        Tensor<float> x = randn({c.batch, c.channels, c.spatial}, 1);
        for (float& v : x.values()) v = 3.0f + 2.0f * v;
        const Tensor<float> gamma = randn({c.channels}, 2), beta = randn({c.channels}, 3);
        const Tensor<float> gy = randn(x.shape(), 4);
        Tensor<float> y(x.shape()), gx(x.shape());
        Tensor<float> gg = randn({c.channels}, 5), gb = randn({c.channels}, 6);  // accumulated into
        const Tensor<float> gg0 = gg, gb0 = gb;
        nn::GroupNormStats st;
        nn::group_norm_forward(x.data(), gamma.data(), beta.data(), sh, y.data(), &st);
        nn::group_norm_backward(x.data(), gamma.data(), st, gy.data(), sh, gx.data(), gg.data(), gb.data());

        const Buf dx = b.upload(x), dgamma = b.upload(gamma), dbeta = b.upload(beta), dgy = b.upload(gy);
        Buf dy = b.empty(x.shape()), mean = b.empty({c.batch * c.groups}), rstd = b.empty({c.batch * c.groups});
        cuda::enc::group_norm_forward(dx.data(), dgamma.data(), dbeta.data(), sh, dy.data(), mean.data(), rstd.data(), stream);
        Buf dgx = b.empty(x.shape()), dgg = b.upload(gg0), dgb = b.upload(gb0), scratch = b.empty({4 * c.batch * c.channels});
        cuda::enc::group_norm_backward(dx.data(), dgamma.data(), mean.data(), rstd.data(), dgy.data(), sh, dgx.data(),
                                       dgg.data(), dgb.data(), doubles(scratch), stream);
        Tensor<float> ref_mean({c.batch * c.groups}), ref_rstd({c.batch * c.groups});
        std::copy(st.mean.begin(), st.mean.end(), ref_mean.data());
        std::copy(st.rstd.begin(), st.rstd.end(), ref_rstd.data());
        CHECK_CLOSE("group_norm", kFp32, what + " y", b.download(dy), y, 1e-5);
        CHECK_CLOSE("group_norm", kFp32, what + " mean", b.download(mean), ref_mean, 1e-5);
        CHECK_CLOSE("group_norm", kFp32, what + " rstd", b.download(rstd), ref_rstd, 1e-5);
        CHECK_CLOSE("group_norm_backward", kFp32, what + " gx", b.download(dgx), gx, 1e-5);
        CHECK_CLOSE("group_norm_backward", kFp32, what + " ggamma", b.download(dgg), gg, 1e-5);
        CHECK_CLOSE("group_norm_backward", kFp32, what + " gbeta", b.download(dgb), gb, 1e-5);
    }
}

TEST_CASE("encoder kernels: PReLU, bias and element-wise add match the CPU", "[cuda][encoder]") {
    cuda::Stream stream;
    const Cuda b(stream);
    for (const Index N : {Index{1}, Index{3}}) {
        const Index C = 7, S = 45;
        const std::string what = concat("N", N);
        INFO(what);
        const Tensor<float> x = randn({N, C, S}, 10), gy = randn({N, C, S}, 11), alpha = randn({C}, 12, 0.3f);
        Tensor<float> y(x.shape()), gx(x.shape()), ga = randn({C}, 13);
        const Tensor<float> ga0 = ga;
        nn::prelu_forward(x.data(), alpha.data(), N, C, S, y.data());
        nn::prelu_backward(x.data(), alpha.data(), gy.data(), N, C, S, gx.data(), ga.data());
        const Buf dx = b.upload(x), dgy = b.upload(gy), dalpha = b.upload(alpha);
        Buf dy = b.empty(x.shape()), dgx = b.empty(x.shape()), dga = b.upload(ga0), scratch = b.empty({2 * N * C});
        cuda::enc::prelu_forward(dx.data(), dalpha.data(), N, C, S, dy.data(), stream);
        cuda::enc::prelu_backward(dx.data(), dalpha.data(), dgy.data(), N, C, S, dgx.data(), dga.data(), doubles(scratch),
                                  stream);
        CHECK(bit_equal(b.download(dy), y));  // one multiply per element, as on the CPU
        CHECK(bit_equal(b.download(dgx), gx));
        CHECK_CLOSE("prelu_backward", kFp32, what + " galpha", b.download(dga), ga, 1e-5);

        // Bias: y += b[c]; grad_b[c] += sum over batch and plane (the CPU conv's double sum).
        const Tensor<float> bias = randn({C}, 14);
        Tensor<float> yb = x, gbias = randn({C}, 15);
        const Tensor<float> gbias0 = gbias;
        for (Index i = 0; i < yb.numel(); ++i) yb[i] += bias[(i / S) % C];
        for (Index c = 0; c < C; ++c) {
            double acc = 0;
            for (Index n = 0; n < N; ++n)
                for (Index i = 0; i < S; ++i) acc += gy[(n * C + c) * S + i];
            gbias[c] += static_cast<float>(acc);
        }
        Buf dyb = b.upload(x), dbias = b.upload(bias), dgbias = b.upload(gbias0);
        cuda::enc::add_bias(dyb.data(), N, C, S, dbias.data(), stream);
        cuda::enc::bias_grad(dgy.data(), N, C, S, doubles(scratch), dgbias.data(), stream);
        CHECK(bit_equal(b.download(dyb), yb));
        CHECK_CLOSE("bias_grad", kFp32, what, b.download(dgbias), gbias, 1e-6);

        Tensor<float> sum = x;
        for (Index i = 0; i < sum.numel(); ++i) sum[i] += gy[i];
        Buf dsum = b.upload(x);
        cuda::enc::add(dsum.data(), dgy.data(), x.numel(), stream);
        CHECK(bit_equal(b.download(dsum), sum));
    }
}

TEST_CASE("encoder kernels: up-sampling and pooling match nn::", "[cuda][encoder]") {
    cuda::Stream stream;
    const Cuda b(stream);
    for (const Index N : {Index{1}, Index{3}}) {
        const Index C = 5, h = 3, w = 5, P = N * C;
        const std::string what = concat("N", N);
        INFO(what);
        // Up-sampling into an existing map (the pyramid's lateral + top-down sum) and its adjoint
        // added into an existing gradient.
        const Tensor<float> x = randn({N, C, h, w}, 20), y0 = randn({N, C, 2 * h, 2 * w}, 21);
        Tensor<float> y = y0;
        nn::upsample_nearest2x_forward(x.data(), P, h, w, y.data(), true);
        Tensor<float> gx = randn(x.shape(), 22), up(x.shape());
        const Tensor<float> gx0 = gx;
        nn::upsample_nearest2x_backward(y0.data(), P, h, w, up.data());
        for (Index i = 0; i < gx.numel(); ++i) gx[i] += up[i];
        const Buf dx = b.upload(x), dy0 = b.upload(y0);
        Buf dy = b.upload(y0), dgx = b.upload(gx0);
        cuda::enc::upsample2x_add(dx.data(), P, h, w, dy.data(), stream);
        cuda::enc::upsample2x_backward_add(dy0.data(), P, h, w, dgx.data(), stream);
        CHECK_CLOSE("upsample2x", kFp32, what, b.download(dy), y, 1e-6);
        CHECK_CLOSE("upsample2x_backward", kFp32, what, b.download(dgx), gx, 1e-6);

        // k x k average pooling (k = 2 and 4 on an 8x8 plane) and global average pooling.
        const Index r = 8;
        const Tensor<float> m = randn({N, C, r, r}, 23);
        for (const Index k : {Index{2}, Index{4}}) {
            const nn::Pool2dShape ps{P, r, r, k, k};
            Tensor<float> py({N, C, r / k, r / k}), pgx(m.shape());
            const Tensor<float> pgy = randn(py.shape(), 24);
            nn::avg_pool2d_forward(m.data(), ps, py.data());
            nn::avg_pool2d_backward(pgy.data(), ps, pgx.data());
            const Buf dm = b.upload(m), dpgy = b.upload(pgy);
            Buf dpy = b.empty(py.shape()), dpgx = b.empty(m.shape());
            cuda::enc::avg_pool_forward(dm.data(), P, r, r, k, dpy.data(), stream);
            cuda::enc::avg_pool_backward(dpgy.data(), P, r, r, k, dpgx.data(), stream);
            CHECK_CLOSE("avg_pool", kFp32, concat(what, " k", k), b.download(dpy), py, 1e-6);
            CHECK_CLOSE("avg_pool_backward", kFp32, concat(what, " k", k), b.download(dpgx), pgx, 1e-6);
        }
        Tensor<float> gy({N, C}), ggx(m.shape());
        const Tensor<float> ggy = randn({N, C}, 25);
        nn::global_avg_pool_forward(m.data(), P, r * r, gy.data());
        nn::global_avg_pool_backward(ggy.data(), P, r * r, ggx.data());
        const Buf dm = b.upload(m), dggy = b.upload(ggy);
        Buf dgy = b.empty(gy.shape()), dggx = b.empty(m.shape());
        cuda::enc::global_avg_pool_forward(dm.data(), P, r * r, dgy.data(), stream);
        cuda::enc::global_avg_pool_backward(dggy.data(), P, r * r, dggx.data(), stream);
        CHECK_CLOSE("global_avg_pool", kFp32, what, b.download(dgy), gy, 1e-6);
        CHECK(bit_equal(b.download(dggx), ggx));
    }
}

TEST_CASE("cuDNN backward-filter accumulates nn::conv2d_backward's weight gradient", "[cuda][encoder][cudnn]") {
    cuda::Stream stream;
    const Cuda b(stream);
    cuda::CudnnContext dnn(stream, b.empty(Shape{0}).pool(), cuda::Precision::fp32);
    struct Case {
        Index k, stride, cin;
    };
    for (const Index N : {Index{1}, Index{3}})
        for (const Case c : {Case{3, 1, 1}, Case{3, 1, 3}, Case{3, 2, 1}, Case{3, 2, 3}, Case{1, 2, 1}, Case{1, 2, 3}}) {
            const Index cout = 5, res = 10, pad = c.k / 2;
            const std::string what = concat("N", N, " k", c.k, " s", c.stride, " cin", c.cin);
            INFO(what);
            // The encoder's convention (encoder::ConvLayer::shape): padding k / 2 on every side.
            const nn::Conv2dShape s{N, c.cin, cout, res, res, c.k, c.k, c.stride, pad, pad};
            const cuda::ConvGeometry g{N, c.cin, cout, res, res, c.k, c.stride, pad};
            REQUIRE(g.out_h() == s.out_h());
            const Tensor<float> x = randn({N, c.cin, res, res}, 30), w = randn({cout, c.cin, c.k, c.k}, 31);
            const Tensor<float> gy = randn({N, cout, s.out_h(), s.out_w()}, 32);
            Tensor<float> y({N, cout, s.out_h(), s.out_w()}), gx(x.shape()), gw = randn(w.shape(), 33);
            const Tensor<float> gw0 = gw;
            nn::conv2d_forward(x.data(), w.data(), nullptr, s, y.data());
            nn::conv2d_backward(x.data(), w.data(), gy.data(), s, gx.data(), gw.data(), nullptr);
            const Buf dx = b.upload(x), dw = b.upload(w), dgy = b.upload(gy);
            Buf dy = b.empty(y.shape()), dgx = b.empty(x.shape()), dgw = b.upload(gw0);
            dnn.forward(g, dx.data(), dw.data(), dy.data());
            dnn.backward_data(g, dw.data(), dgy.data(), dgx.data());
            dnn.backward_filter(g, dx.data(), dgy.data(), dgw.data());
            CHECK_CLOSE("conv_forward", kFp32, what, b.download(dy), y, 1e-5);
            CHECK_CLOSE("conv_backward_data", kFp32, what, b.download(dgx), gx, 1e-5);
            CHECK_CLOSE("conv_backward_filter", kFp32, what, b.download(dgw), gw, 1e-5);
            // Deterministic: a second accumulation onto the same start gives the same bits.
            Buf again = b.upload(gw0);
            dnn.backward_filter(g, dx.data(), dgy.data(), again.data());
            CHECK(bit_equal(b.download(again), b.download(dgw)));
        }
}

namespace {

struct EncoderCase {
    std::string name;
    EncoderConfig config;
    Index batch = 1;
    double offset_weight = 0.0;
};

std::vector<EncoderCase> encoder_cases() {
    std::vector<EncoderCase> out;
    // The demo's 32x32 grayscale pSp (the default config): levels 16, 8, 4 pooled to 4x4 (4x4
    // windows, 2x2 windows, a copy).
    out.push_back({"psp gray 32", EncoderConfig{}, 3, 0.0});
    // ReStyle on RGB (the stem reads 6 channels, base codes given), two blocks a stage (the
    // second has no shortcut conv), global average pooling (head_grid 1).
    EncoderConfig r;
    r.resolution = 16;
    r.in_channels = 3;
    r.iterative = true;
    r.iterations = 2;
    r.num_ws = 4;
    r.w_dim = 16;
    r.stem_channels = 8;
    r.stage_channels = {8, 12, 16};
    r.blocks_per_stage = 2;
    r.pyramid_channels = 6;
    r.head_grid = 1;
    r.head_hidden = 10;
    r.groups = 4;
    out.push_back({"restyle rgb 16", r, 2, 0.0});
    // e4e with 2 of its 3 offsets enabled and the offset penalty; odd widths (groups of 3).
    EncoderConfig e;
    e.resolution = 16;
    e.in_channels = 1;
    e.e4e = true;
    e.active_offsets = 2;
    e.num_ws = 4;
    e.w_dim = 12;
    e.stem_channels = 6;
    e.stage_channels = {6, 9};
    e.pyramid_channels = 5;
    e.head_grid = 2;
    e.head_hidden = 7;
    e.groups = 3;
    out.push_back({"e4e 16", e, 3, 0.3});
    return out;
}

}  // namespace

TEST_CASE("PspEncoderCuda computes PspEncoder's codes and gradients", "[cuda][encoder]") {
    cuda::Stream stream;
    const Cuda b(stream);
    for (const EncoderCase& ec : encoder_cases()) {
        INFO(ec.name);
        PspEncoder host(ec.config, 11);
        host.set_w_avg(randn({ec.config.w_dim}, 40));
        const PspEncoderCuda dev(host, b);
        REQUIRE(dev.num_params() == host.num_params());
        REQUIRE(dev.in_channels() == host.in_channels());
        CHECK(bit_equal(b.download(dev.params()), host.params()));

        const Index N = ec.batch, R = ec.config.resolution;
        Tensor<float> x = randn({N, host.in_channels(), R, R}, 41);
        for (float& v : x.values()) v = std::tanh(v);  // images in [-1, 1]
        const Tensor<float> base = randn({N, host.num_ws(), host.w_dim()}, 42);
        const Tensor<float> gc = randn({N, host.num_ws(), host.w_dim()}, 43);
        const Tensor<float>* hb = host.iterative() ? &base : nullptr;
        const Buf dx = b.upload(x), dbase = b.upload(base), dgc = b.upload(gc);
        const Buf* db = host.iterative() ? &dbase : nullptr;

        PspEncoder::Cache hk;
        const Tensor<float> codes = host.forward(x, &hk, hb);
        PspEncoderCuda::Cache dk;
        const Buf dcodes = dev.forward(dx, &dk, db);
        CHECK_CLOSE("encoder_forward", kFp32, ec.name + " codes", b.download(dcodes), codes, 1e-4);
        // Without a cache: the same function.
        CHECK_CLOSE("encoder_forward", kFp32, ec.name + " codes, no cache", b.download(dev.forward(dx, nullptr, db)), codes,
                    1e-4);
        if (ec.config.e4e) {
            const double hp = host.offset_penalty(hk), dp = dev.offset_penalty(dk);
            INFO("offset penalty CPU " << hp << " GPU " << dp);
            CHECK(hp > 0);
            CHECK(std::fabs(dp - hp) <= 1e-4 * hp);
        } else {
            CHECK(dev.offset_penalty(dk) == 0.0);
        }

        Tensor<float> gp({1, host.num_params()}, 0.0f);
        const Tensor<float> gx = host.backward(hk, gc, &gp, true, ec.offset_weight);
        Buf dgp = b.zeros({1, dev.num_params()});
        const Buf dgx = dev.backward(dk, dgc, &dgp, true, ec.offset_weight);
        CHECK_CLOSE("encoder_backward", kFp32, ec.name + " input", b.download(dgx), gx, 1e-3);
        const Tensor<float> got = b.download(dgp);
        CHECK_CLOSE("encoder_backward", kFp32, ec.name + " params", got, gp, 1e-3);
        // Slice by slice, so that a small layer's error is not hidden in the whole vector. A conv
        // bias right before a group norm has an analytic gradient of 0 (the norm subtracts the
        // mean): what both sides hold there is rounding, judged against the whole gradient.
        const double whole = norm2(gp.values());
        for (const EncoderParamSpec& s : host.param_specs()) {
            const auto n = static_cast<std::size_t>(shape_numel(s.shape));
            const auto o = static_cast<std::size_t>(s.offset);
            const std::span<const float> a = got.values().subspan(o, n), r = gp.values().subspan(o, n);
            double diff = 0;
            for (std::size_t i = 0; i < n; ++i) diff += (static_cast<double>(a[i]) - r[i]) * (static_cast<double>(a[i]) - r[i]);
            INFO(s.name << ": |gpu - cpu| " << std::sqrt(diff) << ", |cpu| " << norm2(r) << ", |whole| " << whole);
            CHECK(std::sqrt(diff) <= 1e-3 * norm2(r) + 1e-5 * whole);
        }
        // Without the input gradient: the same parameter gradients, accumulated (twice = 2x).
        const Buf none = dev.backward(dk, dgc, &dgp, false, ec.offset_weight);
        CHECK(none.empty());
        Tensor<float> twice = gp;
        for (float& v : twice.values()) v *= 2.0f;
        CHECK_CLOSE("encoder_backward", kFp32, ec.name + " params accumulated", b.download(dgp), twice, 1e-3);
    }
}

TEST_CASE("PspEncoderCuda: to_host round trip, w_avg, e4e offsets and shape checks", "[cuda][encoder]") {
    cuda::Stream stream;
    const Cuda b(stream);
    const std::vector<EncoderCase> cases = encoder_cases();
    for (const EncoderCase& ec : cases) {
        INFO(ec.name);
        PspEncoder host(ec.config, 5);
        host.set_w_avg(randn({ec.config.w_dim}, 50));
        PspEncoderCuda dev(host, b);
        const PspEncoder back = dev.to_host();
        CHECK(bit_equal(back.params(), host.params()));
        CHECK(bit_equal(back.w_avg(), host.w_avg()));
        CHECK(back.config().to_json().dump() == host.config().to_json().dump());
        // New device weights and w_avg come back as they are.
        const Tensor<float> p2 = randn({1, host.num_params()}, 51), w2 = randn({host.w_dim()}, 52);
        dev.params() = b.upload(p2);
        dev.set_w_avg(b.upload(w2));
        const PspEncoder back2 = dev.to_host();
        CHECK(bit_equal(back2.params(), p2));
        CHECK(bit_equal(back2.w_avg(), w2));
        CHECK_THROWS_AS(dev.set_w_avg(b.zeros({host.w_dim() + 1})), ShapeError);

        const Index R = ec.config.resolution, C = dev.in_channels();
        CHECK_THROWS_AS(dev.forward(b.zeros({1, C, R / 2, R / 2})), ShapeError);
        CHECK_THROWS_AS(dev.forward(b.zeros({1, C + 1, R, R})), ShapeError);
        CHECK_THROWS_AS(dev.forward(b.zeros({C, R, R})), ShapeError);
        const Buf wrong_base = b.zeros({2, dev.num_ws(), dev.w_dim()});
        CHECK_THROWS_AS(dev.forward(b.zeros({1, C, R, R}), nullptr, &wrong_base), ShapeError);
        PspEncoderCuda::Cache k;
        dev.forward(b.zeros({2, C, R, R}), &k);
        CHECK_THROWS_AS(dev.backward(k, b.zeros({1, dev.num_ws(), dev.w_dim()}), nullptr), ShapeError);
        Buf wrong_grads = b.zeros({1, dev.num_params() + 1});
        CHECK_THROWS_AS(dev.backward(k, b.zeros({2, dev.num_ws(), dev.w_dim()}), &wrong_grads), ShapeError);

        if (ec.config.e4e) {
            // The CPU's checks; more offsets than the cached forward computed is refused.
            CHECK_THROWS_AS(dev.set_active_offsets(dev.num_ws()), ValueError);
            dev.set_active_offsets(dev.num_ws() - 1);
            CHECK(dev.config().active_offsets == dev.num_ws() - 1);
            CHECK_THROWS_AS(dev.backward(k, b.zeros({2, dev.num_ws(), dev.w_dim()}), nullptr), ValueError);
        } else {
            CHECK_THROWS_AS(dev.set_active_offsets(1), ValueError);
        }
    }
}

TEST_CASE("in-domain regulariser with StyleGAN2<Cuda> and PspEncoderCuda equals the CPU's", "[cuda][encoder][indomain]") {
    // ganinv invert --domain-regularization --device cuda: E(G(w)) and its gradient through the
    // encoder and the generator on the device, the same numbers as on the CPU.
    cuda::Stream stream;
    const Cuda b(stream);
    const std::uint64_t generator_seed = 5;
    StyleGAN2<Cuda> g = StyleGAN2<Cuda>::random(test::domain_case_config(), generator_seed, b);
    EncoderConfig c;
    c.resolution = g.resolution();
    c.in_channels = g.img_channels();
    c.num_ws = g.num_ws();
    c.w_dim = g.w_dim();
    c.stem_channels = 6;
    c.stage_channels = {6, 9};
    c.pyramid_channels = 5;
    c.head_grid = 2;
    c.head_hidden = 7;
    c.groups = 3;
    PspEncoder host(c, 17);
    host.set_w_avg(randn({c.w_dim}, 18, 0.3f));
    const PspEncoderCuda dev(host, b);
    const Tensor<float> ws = randn({5, c.num_ws, c.w_dim}, 19, 0.5f);
    for (const Index batch : {Index{16}, Index{2}}) {  // one chunk, and chunks of 2 + 2 + 1 rows
        for (const double weight : {0.7, 0.0}) {
            DomainRegularizer<StyleGAN2<Cuda>, PspEncoderCuda> r(g, dev, weight, NoiseMode::constant, 0, batch);
            Tensor<float> grad_gpu, grad_cpu;
            const std::vector<double> v_gpu = r.evaluate(ws, &grad_gpu);
            const std::vector<double> v_cpu = test::cpu_domain_regularizer(generator_seed, host, ws, weight, batch, &grad_cpu);
            INFO("batch " << batch << ", weight " << weight);
            REQUIRE(v_gpu.size() == v_cpu.size());
            for (std::size_t i = 0; i < v_cpu.size(); ++i) CHECK(v_gpu[i] == Approx(v_cpu[i]).epsilon(1e-4).margin(1e-12));
            if (weight == 0.0) {
                CHECK(norm2(grad_gpu.values()) == 0.0);
                continue;
            }
            CHECK(v_cpu[0] > 0.0);
            CHECK_CLOSE("indomain.grad_ws", kFp32, concat("batch", batch), grad_gpu, grad_cpu, 1e-3);
            // Without a gradient request only the values come back, the same ones.
            const std::vector<double> values_only = r.evaluate(ws, nullptr);
            for (std::size_t i = 0; i < v_cpu.size(); ++i) CHECK(values_only[i] == Approx(v_gpu[i]).epsilon(1e-6));
        }
    }
}
