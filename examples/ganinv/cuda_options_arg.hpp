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
    return {"cuda-wgrad", "K", "--device cuda: the 3x3 convs' weight-gradient kernel: auto (default), per_tap, all_taps "
                               "(one kernel for the nine taps: FFMA in fp32, TF32 tensor cores in tf32/bf16) or "
                               "all_taps_fp32 (FFMA in every precision); docs/tuning.md"};
}

/// `--FLAG VALUE` parsed by `parse` into `out` when given: a usage error without --device cuda (it
/// would silently do nothing on the CPU) or for a value `parse` refuses.
template <class T, class Parse>
void cuda_flag(const Args& a, const std::string& device, const std::string& flag, Parse parse, T& out) {
    const auto value = a.get(flag);
    if (!value) return;
    if (device != "cuda") throw UsageError("--" + flag + " applies to --device cuda only");
    try {
        out = parse(*value);
    } catch (const ValueError& e) {
        throw UsageError("--" + flag + ": " + e.what());
    }
}

/// The CUDA backend's options from the arguments (--cuda-wgrad, --cuda-precision).
inline cuda::CudaOptions cuda_options_from_args(const Args& a, const std::string& device) {
    cuda::CudaOptions options;
    cuda_flag(a, device, "cuda-wgrad", cuda::parse_wgrad_kernel, options.wgrad);
    cuda_flag(a, device, "cuda-precision", cuda::parse_precision, options.precision);
    return options;
}

}  // namespace ganinv::cli
