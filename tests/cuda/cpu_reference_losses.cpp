// The Cpu side of the pixel-loss parity cases (tests/cuda/pixel_loss_cases.hpp).
#include "cpu_reference_losses.hpp"

#include <ganinv/backend/cpu.hpp>
#include <ganinv/loss/noise_regularizer.hpp>

#include <limits>

namespace ganinv::test::cpu {

PixelCaseResult pixel_case(const std::string& name, const PixelCaseInputs& in) {
    return run_pixel_case<Cpu>(
        name, in, [](const Tensor<float>& t) { return t; }, [](const Tensor<float>& t) { return t; },
        [](Tensor<float>& t) { t.fill(std::numeric_limits<float>::quiet_NaN()); });
}

std::pair<std::vector<double>, std::vector<Tensor<float>>> noise_regularizer(const std::vector<Tensor<float>>& maps) {
    std::vector<Tensor<float>> grads;
    const LossResult r = NoiseRegularizer<Cpu>{}.evaluate(maps, &grads);
    return {r.per_image, grads};
}

}  // namespace ganinv::test::cpu
