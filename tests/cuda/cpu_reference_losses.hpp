/// @file cpu_reference_losses.hpp
/// @brief The Cpu results of pixel_loss_cases.hpp, compiled in a .cpp (no Eigen in the .cu).
#pragma once

#include "pixel_loss_cases.hpp"

namespace ganinv::test::cpu {

PixelCaseResult pixel_case(const std::string& name, const PixelCaseInputs& in);

}  // namespace ganinv::test::cpu
