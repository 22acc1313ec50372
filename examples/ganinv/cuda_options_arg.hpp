/// @file cuda_options_arg.hpp
/// @brief `--cuda-precision` of the commands that run on `--device cuda` (invert, tune): parsed
///        once, before the model is loaded and before the GPU is touched.
#pragma once

#include "cli.hpp"

#include <ganinv/cuda/options.hpp>

#include <string>

namespace ganinv::cli {

inline OptionSpec cuda_precision_option() {
    return {"cuda-precision", "P", "--device cuda: fp32 (default, exact), tf32 or bf16 tensor-core convolutions (wgmma on Hopper)"};
}

/// The CUDA backend's options from the arguments; --cuda-precision without --device cuda is a
/// usage error (it would silently do nothing on the CPU).
inline cuda::CudaOptions cuda_options_from_args(const Args& a, const std::string& device) {
    cuda::CudaOptions options;
    if (const auto p = a.get("cuda-precision")) {
        if (device != "cuda") throw UsageError("--cuda-precision applies to --device cuda only");
        try {
            options.precision = cuda::parse_precision(*p);
        } catch (const ValueError& e) {
            throw UsageError(std::string("--cuda-precision: ") + e.what());
        }
    }
    return options;
}

}  // namespace ganinv::cli
