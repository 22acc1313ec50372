/// @file cpu_reference_losses.hpp
/// @brief The Cpu results of pixel_loss_cases.hpp and of the noise regulariser, compiled in a
///        .cpp (no Eigen in the .cu).
#pragma once

#include "pixel_loss_cases.hpp"

#include <utility>

namespace ganinv::test::cpu {

PixelCaseResult pixel_case(const std::string& name, const PixelCaseInputs& in);

/// NoiseRegularizer<Cpu> on `maps`: per-image values and one gradient per map.
std::pair<std::vector<double>, std::vector<Tensor<float>>> noise_regularizer(const std::vector<Tensor<float>>& maps);

}  // namespace ganinv::test::cpu
