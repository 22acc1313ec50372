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
    // The demo model's map sizes plus odd and non-square ones ([N, H, W] and [N, 1, H, W]).
    const std::vector<Shape> shapes = {{3, 4, 4}, {3, 8, 8}, {3, 1, 32, 32}, {3, 17, 17}, {3, 64, 48}, {3, 128, 128}};
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
