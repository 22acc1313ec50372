/// @file cpu_fwd.hpp
/// @brief Forward declaration of the Cpu backend, so model headers can default to it without
///        pulling Eigen into translation units that never use it (CUDA files).
#pragma once

namespace ganinv {
struct Cpu;
}  // namespace ganinv
