// The pixel losses and the loss wrappers on the Cuda backend against the Cpu backend: per-image
// values and gradients (NaN-poisoned before each run), on odd shapes and batches, with shared and
// per-image masks (one selecting nothing), every degradation op, and the compile-time and
// run-time compositions. Then bad input: the same clear errors as on the CPU.
#include "cuda_catch.hpp"
#include "cuda_check_close.hpp"

#include "cpu_reference_losses.hpp"

#include <ganinv/cuda/loss_ops.cuh>
#include <ganinv/cuda/stream.hpp>

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
