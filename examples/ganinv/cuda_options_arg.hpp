/// @file cuda_options_arg.hpp
/// @brief `--cuda-precision` (and tune's `--cuda-wgrad`) of the commands that run on `--device cuda`: parsed
///        once, before the model is loaded and before the GPU is touched.
#pragma once

#include "cli.hpp"

#include <ganinv/cuda/options.hpp>

#include <string>

namespace ganinv::cli {

inline OptionSpec cuda_precision_option() {
    return {"cuda-precision", "P", "--device cuda: fp32 (default, exact), tf32 or bf16 tensor-core convolutions (wgmma on Hopper)"};
}

/// `ganinv tune`'s weight-gradient kernel (the other commands compute no weight gradients).
inline OptionSpec cuda_wgrad_option() {
    return {"cuda-wgrad", "K", "--device cuda: the 3x3 convs' weight-gradient kernel: auto (default), per_tap or all_taps "
                               "(one FP32 kernel for the nine taps; docs/tuning.md)"};
}

/// The CUDA backend's options from the arguments; --cuda-precision or --cuda-wgrad without
/// --device cuda is a usage error (it would silently do nothing on the CPU).
inline cuda::CudaOptions cuda_options_from_args(const Args& a, const std::string& device) {
    cuda::CudaOptions options;
    if (const auto k = a.get("cuda-wgrad")) {
        if (device != "cuda") throw UsageError("--cuda-wgrad applies to --device cuda only");
        try {
            options.wgrad = cuda::parse_wgrad_kernel(*k);
        } catch (const ValueError& e) {
            throw UsageError(std::string("--cuda-wgrad: ") + e.what());
        }
    }
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
