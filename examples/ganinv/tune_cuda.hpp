/// @file tune_cuda.hpp
/// @brief `ganinv tune --device cuda`: the pivot inversion and the weight tuning of
///        StyleGAN2<Cuda> with the CUDA losses, behind TuneJob (tune_cuda.cu, built only when
///        CMake found nvcc; GANINV_CLI_HAS_CUDA says so).
#pragma once

#include "loss_spec.hpp"
#include "tune_support.hpp"

#include <ganinv/cuda/options.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace ganinv::cli {

/// Throws CudaError when no CUDA device is usable (before any allocation), IoError/FormatError
/// for a bad model file, UsageError for a loss term or weight file missing.
std::unique_ptr<TuneJob> make_cuda_tune_job(const std::filesystem::path& model, const std::vector<LossTermSpec>& terms,
                                            const Args& a, const cuda::CudaOptions& options, const TuneSettings& s,
                                            const std::string& config_text);

}  // namespace ganinv::cli
