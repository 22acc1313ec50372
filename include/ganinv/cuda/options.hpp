/// @file options.hpp
/// @brief Options of the CUDA backend: the arithmetic of the modulated-convolution GEMMs and
///        how styles enter them. Plain host code (no CUDA headers needed).
#pragma once

#include "ganinv/core/error.hpp"

#include <string>

namespace ganinv::cuda {

/// Arithmetic of the three modulated-convolution GEMMs (forward, grad-input, grad-weight).
/// Every other operation is float32 in all modes; accumulation is always float32.
enum class Precision {
    fp32,  ///< exact float32 on CUDA cores (FFMA): the default, the parity path
    tf32,  ///< operands rounded to TF32 (10-bit mantissa), tensor cores mma.sync m16n8k8
    bf16   ///< operands rounded to BF16 (7-bit mantissa), tensor cores mma.sync m16n8k16
};

/// How the per-sample styles enter the forward convolution.
enum class StyleMode {
    automatic,     ///< per shape, the variant that measured faster (see docs/cuda.md)
    scale_input,   ///< x * s[n, c] while the activation tile is loaded; d[n, o] in the epilogue
    fold_weights   ///< per-sample weights w * s * d built first (the official grouped-conv form)
};

/// Which kernels run the TF32/BF16 modulated-conv GEMMs (FP32 always uses the exact FFMA kernel).
enum class GemmEngine {
    automatic,  ///< wgmma where this binary has sm_90a code and the device is compute 9.0, else portable
    portable,   ///< the mma.sync kernels (any sm_80+ build)
    wgmma       ///< Hopper warpgroup MMA; constructing the backend throws when it cannot run
};

/// Which kernel computes the 3x3 modulated convs' weight gradients (generator tuning, training).
enum class WgradKernel {
    automatic,  ///< per layer and precision, the faster one on an H100 (cuda/modconv.cuh: wgrad_kernel_for)
    per_tap,    ///< nine implicit GEMMs, one per tap, in the backend's precision (wgrad_gemm.cuh)
    all_taps,   ///< one kernel for all nine taps, each operand staged once (wgrad_taps.cuh): FFMA in FP32,
                ///< the TF32 tensor cores in TF32 / BF16
    all_taps_fp32  ///< the all-taps kernel on FFMA in every precision (the TF32 kernel's baseline)
};

struct CudaOptions {
    Precision precision = Precision::fp32;
    StyleMode style_mode = StyleMode::automatic;
    GemmEngine engine = GemmEngine::automatic;
    WgradKernel wgrad = WgradKernel::automatic;
    /// false: every tensor is a cudaMalloc/cudaFree (slow; handy under compute-sanitizer).
    bool cache_allocations = true;
    /// false: the synthesis backward runs the bias/act/noise backward and the conv backward as
    /// separate passes even where the one-pass prologue applies (cuda/modconv_grad_prologue.cuh);
    /// for A/B timing and tests, the results agree to float rounding.
    bool fuse_backward_prologue = true;
    /// false: the wgmma convs never split K across blocks, so planes too small to fill the GPU
    /// with output tiles (a batch-1 inversion's 4^2..32^2 layers and the 64^2 up = 2 layer) stay
    /// on the portable kernels, as before split-K existed; for A/B timing and tests.
    bool wgmma_split_k = true;
    /// true: stride-1 wgmma convs over planes >= 128 pixels wide read each halo row once per block
    /// (cuda/hopper_conv_rows.cuh) instead of gathering every tap from L2. Off by default: the
    /// step benchmark measured it no faster (H200, TF32, 1024^2 official objective: 10.07 ms per
    /// step against the gather's 10.00: the blocks are bound by their fixed costs, not by the L2
    /// traffic this removes; docs/cuda.md, docs/benchmarks.md, session 25). Tested against the
    /// CPU; for A/B timing and as the base of a faster layout.
    bool wgmma_row_tiles = false;
    /// true (with wgmma_row_tiles): where K is one slice per tap, the row tiles take their strip
    /// variant (a block walking down a strip of rows with the 3 x 3 weights and a ring of halo
    /// rows in shared memory, cuda/hopper_conv_strip.cuh). Off by default: slower still (10.30 ms
    /// in the same run; its 1024^2 grad-input 0.83 ms, the gather's 0.57 on session 23's H100: one block per SM,
    /// whose epilogue does not overlap its MMAs).
    bool wgmma_row_strips = false;
};

inline const char* to_string(Precision p) {
    switch (p) {
        case Precision::fp32: return "fp32";
        case Precision::tf32: return "tf32";
        case Precision::bf16: return "bf16";
    }
    return "?";
}
inline const char* to_string(StyleMode m) {
    switch (m) {
        case StyleMode::automatic: return "auto";
        case StyleMode::scale_input: return "scale_input";
        case StyleMode::fold_weights: return "fold_weights";
    }
    return "?";
}
inline const char* to_string(GemmEngine e) {
    switch (e) {
        case GemmEngine::automatic: return "auto";
        case GemmEngine::portable: return "portable";
        case GemmEngine::wgmma: return "wgmma";
    }
    return "?";
}
inline const char* to_string(WgradKernel k) {
    switch (k) {
        case WgradKernel::automatic: return "auto";
        case WgradKernel::per_tap: return "per_tap";
        case WgradKernel::all_taps: return "all_taps";
        case WgradKernel::all_taps_fp32: return "all_taps_fp32";
    }
    return "?";
}
inline WgradKernel parse_wgrad_kernel(const std::string& s) {
    if (s == "auto") return WgradKernel::automatic;
    if (s == "per_tap") return WgradKernel::per_tap;
    if (s == "all_taps") return WgradKernel::all_taps;
    if (s == "all_taps_fp32") return WgradKernel::all_taps_fp32;
    throw ValueError(concat("unknown weight-gradient kernel '", s, "' (auto, per_tap, all_taps or all_taps_fp32)"));
}
inline GemmEngine parse_gemm_engine(const std::string& s) {
    if (s == "auto") return GemmEngine::automatic;
    if (s == "portable") return GemmEngine::portable;
    if (s == "wgmma") return GemmEngine::wgmma;
    throw ValueError(concat("unknown GEMM engine '", s, "' (auto, portable or wgmma)"));
}
inline Precision parse_precision(const std::string& s) {
    if (s == "fp32") return Precision::fp32;
    if (s == "tf32") return Precision::tf32;
    if (s == "bf16") return Precision::bf16;
    throw ValueError(concat("unknown CUDA precision '", s, "' (fp32, tf32 or bf16)"));
}
inline StyleMode parse_style_mode(const std::string& s) {
    if (s == "auto") return StyleMode::automatic;
    if (s == "scale_input") return StyleMode::scale_input;
    if (s == "fold_weights") return StyleMode::fold_weights;
    throw ValueError(concat("unknown style mode '", s, "' (auto, scale_input or fold_weights)"));
}

}  // namespace ganinv::cuda
