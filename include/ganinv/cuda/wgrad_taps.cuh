/// @file wgrad_taps.cuh
/// @brief The host launcher of the all-taps weight-gradient kernels: FFMA (wgrad_taps_kernel.cuh)
///        in FP32, the TF32 tensor cores (wgrad_taps_tf32.cuh) in TF32/BF16; checks the geometry,
///        plans the split over patches, launches on the caller's stream.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/cuda/check.hpp"
#include "ganinv/cuda/options.hpp"
#include "ganinv/cuda/wgrad_taps_kernel.cuh"
#include "ganinv/cuda/wgrad_taps_tf32.cuh"

#include <type_traits>

namespace ganinv::cuda::gemm {

/// Which arithmetic the all-taps weight gradient uses.
enum class TapArithmetic {
    ffma,  ///< float32 FFMA (wgrad_taps_kernel.cuh): FP32 mode, or asked for by WgradKernel::all_taps_fp32
    tf32   ///< TF32 tensor cores, float32 sums (wgrad_taps_tf32.cuh): TF32 and BF16 modes
};

/// The arithmetic a backend precision gets: FP32 stays exact; TF32 and BF16 take the tensor cores
/// (BF16 too: TF32 operands keep 3 more mantissa bits than the per-tap kernels' BF16 ones).
inline TapArithmetic tap_arithmetic_for(Precision p) { return p == Precision::fp32 ? TapArithmetic::ffma : TapArithmetic::tf32; }

/// Blocks of `kernel` an SM holds at once with `smem_bytes` of dynamic shared memory each and
/// shared memory preferred over L1 (host calls only: nothing is enqueued); asked once per kernel.
template <auto kernel, int smem_bytes = 0>
int wgrad_taps_resident_blocks() {
    static const int blocks = [] {
        GANINV_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                               cudaSharedmemCarveoutMaxShared));
        if (smem_bytes > 48 * 1024)
            GANINV_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes));
        int n = 0;
        GANINV_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, TapPatch<1>::kThreads, smem_bytes));
        GANINV_CHECK(n > 0, Error, "all-taps weight gradient: the kernel fits no SM (", smem_bytes,
                     " bytes of shared memory)");
        return n;
    }();
    return blocks;
}

/// grad_w[O, C, 3, 3] += the weight gradient over a GH x GW pixel grid of `batch` samples; `a`
/// and `b` as for launch_wgrad (a: rows O, b: rows C), one of them tap-shifted with stride 1 or 2.
inline void launch_wgrad_taps(TapArithmetic arithmetic, const PixelOperand& a, const PixelOperand& b, float* grad_w,
                              int O, int C, int ksize, int GH, int GW, int batch, int num_sms, cudaStream_t stream) {
    GANINV_CHECK(ksize == 3, ShapeError, "all-taps weight gradient: 3x3 kernels only, got ", ksize, "x", ksize);
    GANINV_CHECK((a.tap_mul == 1) != (b.tap_mul == 1) && a.tap_mul + b.tap_mul == 1, ShapeError,
                 "all-taps weight gradient: exactly one operand must move with the tap");
    const bool a_shifted = a.tap_mul == 1;
    const PixelOperand& u = a_shifted ? b : a;
    const PixelOperand& s = a_shifted ? a : b;
    GANINV_CHECK(u.stride == 1 && u.base_y == 0 && u.base_x == 0 && u.SH == GH && u.SW == GW, ShapeError,
                 "all-taps weight gradient: the unshifted operand must lie on the pixel grid");
    GANINV_CHECK(s.stride == 1 || s.stride == 2, ShapeError, "all-taps weight gradient: stride ", s.stride,
                 " of the shifted operand (1 or 2 supported)");
    GANINV_CHECK(u.R == (a_shifted ? C : O) && s.R == (a_shifted ? O : C), ShapeError,
                 "all-taps weight gradient: operand rows differ from the weight's channels");
    auto launch = [&](auto stride_tag) {
        constexpr int kStride = decltype(stride_tag)::value;
        using P = TapPatch<kStride>;
        const bool tc = arithmetic == TapArithmetic::tf32;
        constexpr int kTcSmem = TapPatchTf32<kStride>::kSmemBytes;
        const int resident = tc ? wgrad_taps_resident_blocks<wgrad_taps_tf32_kernel<kStride>, kTcSmem>()
                                : wgrad_taps_resident_blocks<wgrad_taps_kernel<kStride>>();
        const TapSplit t = plan_tap_split<kStride>(u.R, s.R, GH, GW, batch, num_sms, resident);
        const dim3 grid(static_cast<unsigned>(t.channel_tiles), static_cast<unsigned>(t.splits));
        if (tc)
            wgrad_taps_tf32_kernel<kStride><<<grid, P::kThreads, kTcSmem, stream>>>(
                u, s, grad_w, !a_shifted, C, GH, GW, t.patches_y, t.patches_x, t.total_patches, t.patches_per_split,
                t.splits > 1);
        else
            wgrad_taps_kernel<kStride><<<grid, P::kThreads, 0, stream>>>(u, s, grad_w, !a_shifted, C, GH, GW,
                                                                         t.patches_y, t.patches_x, t.total_patches,
                                                                         t.patches_per_split, t.splits > 1);
        GANINV_CUDA_CHECK_LAUNCH();
    };
    if (s.stride == 1) launch(std::integral_constant<int, 1>{});
    else launch(std::integral_constant<int, 2>{});
}

}  // namespace ganinv::cuda::gemm
