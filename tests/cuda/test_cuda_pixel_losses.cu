// The pixel losses and the loss wrappers on the Cuda backend against the Cpu backend: per-image
// values and gradients (NaN-poisoned before each run), on odd shapes and batches, with shared and
// per-image masks (one selecting nothing), every degradation op, and the compile-time and
// run-time compositions. Then bad input: the same clear errors as on the CPU.
#include "cuda_catch.hpp"
#include "cuda_check_close.hpp"

#include "cpu_reference_losses.hpp"

#include <ganinv/backend/cuda.cuh>
#include <ganinv/cuda/stream.hpp>
#include <ganinv/loss/noise_regularizer.hpp>

#include <cmath>
#include <cstring>
#include <limits>

using namespace ganinv;
using namespace ganinv::test;

namespace {

PixelCaseResult gpu_pixel_case(const Cuda& b, const std::string& name, const PixelCaseInputs& in) {
    return run_pixel_case<Cuda>(
        name, in, [&](const Tensor<float>& t) { return b.upload(t); },
        [&](const cuda::DeviceTensor& t) { return b.download(t); },
        [&](cuda::DeviceTensor& t) { b.fill(t, std::numeric_limits<float>::quiet_NaN()); });
}

double max_relative_difference(const std::vector<double>& a, const std::vector<double>& b) {
    REQUIRE(a.size() == b.size());
    double e = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        e = std::fmax(e, std::fabs(a[i] - b[i]) / std::fmax(std::fabs(b[i]), 1e-30));
    return e;
}

}  // namespace

TEST_CASE("CUDA pixel losses and wrappers match the CPU", "[cuda][losses][pixel]") {
    cuda::Stream stream;
    const Cuda b(stream);
    std::uint64_t seed = 7;
    for (const std::string& name : pixel_case_names()) {
        INFO("case " << name);
        const PixelCaseInputs in = pixel_case_inputs(name, seed++);
        const PixelCaseResult c = cpu::pixel_case(name, in);
        const PixelCaseResult g = gpu_pixel_case(b, name, in);
        CHECK(g.term_names == c.term_names);
        const double ev = max_relative_difference(g.per_image, c.per_image);
        std::printf("ERRBOUND op=loss_%s prec=fp32 case=values rel_max=%.3e\n", name.c_str(), ev);
        CHECK(ev <= 1e-9);  // both accumulate in double over float32 inputs
        for (double v : g.per_image) CHECK(std::isfinite(v));
        CHECK_CLOSE("loss_" + name, cuda::Precision::fp32, "grad", g.grad, c.grad, 1e-6);
        for (float v : g.grad.values()) REQUIRE(std::isfinite(v));
    }
}

TEST_CASE("CUDA masked pixel loss: an image whose mask selects nothing scores 0", "[cuda][losses][pixel]") {
    cuda::Stream stream;
    const Cuda b(stream);
    const PixelCaseInputs in = pixel_case_inputs("masked_l1_per_image", 3);
    const PixelCaseResult g = gpu_pixel_case(b, "masked_l1_per_image", in);
    CHECK(g.per_image[1] == 0.0);
    CHECK(g.per_image[0] > 0.0);
    const Index m = in.pred.numel() / in.pred.dim(0);
    for (Index i = 0; i < m; ++i) REQUIRE(g.grad[m + i] == 0.0f);
}

TEST_CASE("CUDA noise regulariser matches the CPU", "[cuda][losses][pixel][noise]") {
    cuda::Stream stream;
    const Cuda b(stream);
    // The demo model's map sizes plus odd and non-square ones ([N, H, W] and [N, 1, H, W]); from
    // 128^2 on the multi-block kernels (two pyramid passes at 1024^2), the rest one block a plane.
    const std::vector<Shape> shapes = {{3, 4, 4},     {3, 8, 8},       {3, 1, 32, 32},  {3, 17, 17},
                                       {3, 64, 48},   {3, 128, 128},   {3, 300, 170},   {3, 97, 1030},
                                       {3, 256, 256}, {3, 1, 1024, 1024}};
    std::vector<Tensor<float>> maps;
    std::vector<cuda::DeviceTensor> maps_dev;
    std::uint64_t seed = 11;
    for (const Shape& s : shapes) {
        Tensor<float> m(s);
        Rng(seed++).fill_normal(m.values());
        for (Index i = 0; i < m.numel(); i += 7) m[i] += 0.5f * m[(i + 1) % m.numel()];  // some autocorrelation
        maps.push_back(m);
        maps_dev.push_back(b.upload(m));
    }
    const auto [values_cpu, grads_cpu] = cpu::noise_regularizer(maps);
    std::vector<cuda::DeviceTensor> grads;
    for (const auto& m : maps_dev) {  // poisoned, so every gradient element must be written
        grads.push_back(b.upload(Tensor<float>(m.shape())));
        b.fill(grads.back(), std::numeric_limits<float>::quiet_NaN());
    }
    const LossResult r = NoiseRegularizer<Cuda>{}.evaluate(maps_dev, &grads);
    const double ev = max_relative_difference(r.per_image, values_cpu);
    std::printf("ERRBOUND op=noise_regularizer prec=fp32 case=values rel_max=%.3e\n", ev);
    CHECK(ev <= 1e-9);
    for (std::size_t k = 0; k < maps.size(); ++k) {
        INFO("map " << k << " " << shape_to_string(maps[k].shape()));
        const Tensor<float> g = b.download(grads[k]);
        for (float v : g.values()) REQUIRE(std::isfinite(v));
        CHECK_CLOSE("noise_regularizer", cuda::Precision::fp32, concat("grad_", k), g, grads_cpu[k], 1e-6);
    }
    const LossResult no_grad = NoiseRegularizer<Cuda>{}.evaluate(maps_dev, nullptr);
    CHECK(no_grad.per_image == r.per_image);
    CHECK_THROWS_AS(NoiseRegularizer<Cuda>{}.evaluate({b.upload(Tensor<float>({2, 4, 4}, 1.0f)), maps_dev[0]}, nullptr),
                    ShapeError);
}

TEST_CASE("CUDA noise regulariser: the one-block and multi-block kernels both match the CPU", "[cuda][losses][pixel][noise]") {
    cuda::Stream stream;
    const Cuda b(stream);
    // Each path forced on the shapes the automatic choice gives the other (a 5x70 map has one
    // level; 130x66 and 512x512 pool into partial tiles and take the multi-block path by default).
    for (const Shape& s : std::vector<Shape>{{2, 4, 4}, {2, 5, 70}, {2, 17, 17}, {2, 64, 48}, {2, 130, 66}, {1, 512, 512}}) {
        Tensor<float> m(s);
        Rng(s[1] * 1000 + s[2]).fill_normal(m.values());
        for (Index i = 0; i < m.numel(); i += 5) m[i] += 0.3f * m[(i + 1) % m.numel()];
        const auto [values_cpu, grads_cpu] = cpu::noise_regularizer({m});
        const cuda::DeviceTensor md = b.upload(m);
        for (const int multi : {0, 1}) {
            INFO("map " << shape_to_string(s) << (multi ? " multi-block" : " one block"));
            cuda::DeviceTensor grad = b.upload(Tensor<float>(s));
            b.fill(grad, std::numeric_limits<float>::quiet_NaN());
            cuda::DeviceTensor value = b.empty({2 * s[0]});  // doubles
            cuda::launch_noise_regularizer(md.data(), s[0], s[1], s[2], grad.data(), reinterpret_cast<double*>(value.data()),
                                           b.pool(), b.stream(), multi);
            const Tensor<float> vraw = b.download(value);
            std::vector<double> v(static_cast<std::size_t>(s[0]));
            std::memcpy(v.data(), vraw.data(), sizeof(double) * v.size());
            const double ev = max_relative_difference(v, values_cpu);
            std::printf("ERRBOUND op=noise_regularizer_%s prec=fp32 case=values rel_max=%.3e\n",
                        multi ? "multi_block" : "one_block", ev);
            CHECK(ev <= 1e-9);
            const Tensor<float> g = b.download(grad);
            for (float x : g.values()) REQUIRE(std::isfinite(x));
            const std::string op = multi ? "noise_regularizer_multi_block" : "noise_regularizer_one_block";
            CHECK_CLOSE(op, cuda::Precision::fp32, shape_to_string(s), g, grads_cpu[0], 1e-6);
        }
    }
    // Deterministic: a second multi-block run gives the same bits.
    Tensor<float> m({2, 1024, 768});
    Rng(3).fill_normal(m.values());
    const cuda::DeviceTensor md = b.upload(m);
    std::vector<Tensor<float>> runs;
    for (int k = 0; k < 2; ++k) {
        cuda::DeviceTensor grad = b.empty(m.shape()), value = b.empty({4});
        cuda::launch_noise_regularizer(md.data(), 2, 1024, 768, grad.data(), reinterpret_cast<double*>(value.data()),
                                       b.pool(), b.stream(), 1);
        runs.push_back(b.download(grad));
        runs.push_back(b.download(value));
    }
    for (int k = 0; k < 2; ++k)
        CHECK(std::memcmp(runs[k].data(), runs[k + 2].data(), sizeof(float) * static_cast<std::size_t>(runs[k].numel())) == 0);
}

TEST_CASE("CUDA losses reject bad input with the CPU's messages", "[cuda][losses][pixel]") {
    cuda::Stream stream;
    const Cuda b(stream);
    const auto pred = b.upload(Tensor<float>({2, 1, 8, 8}, 0.0f));
    const auto other = b.upload(Tensor<float>({2, 1, 8, 9}, 0.0f));
    cuda::DeviceTensor grad;
    CHECK_THROWS_AS(Mse<Cuda>{}.evaluate(pred, other, &grad), ShapeError);
    Masked<Mse<Cuda>> masked(Mse<Cuda>{}, b.upload(Tensor<float>({1, 1, 4, 4}, 1.0f)));
    CHECK_THROWS_AS(masked.evaluate(pred, pred, &grad), ShapeError);
    Degraded<Mse<Cuda>, AreaDownsample<3, Cuda>> sr(Mse<Cuda>{});
    CHECK_THROWS_AS(sr.evaluate(pred, pred, &grad), ShapeError);
    Degraded<Mse<Cuda>, ToGray<Cuda>> gray(Mse<Cuda>{});
    CHECK_THROWS_AS(gray.evaluate(b.upload(Tensor<float>({1, 2, 4, 4}, 0.0f)), pred, &grad), ShapeError);
    CHECK_THROWS_AS(Mse<Cuda>{}.evaluate(cuda::DeviceTensor{}, cuda::DeviceTensor{}, &grad), ShapeError);
}
