/// @file wgrad_taps.cuh
/// @brief The host launcher of the all-taps weight-gradient kernel (wgrad_taps_kernel.cuh): checks
///        the geometry, plans the split over patches, launches on the caller's stream.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/cuda/check.hpp"
#include "ganinv/cuda/wgrad_taps_kernel.cuh"

#include <type_traits>

namespace ganinv::cuda::gemm {

/// Blocks of the kernel an SM holds at once, with shared memory preferred over L1 (three 45 KiB
/// patches), asked once per stride (host calls only: nothing is enqueued).
template <int kStride>
int wgrad_taps_resident_blocks() {
    static const int blocks = [] {
        GANINV_CUDA_CHECK(cudaFuncSetAttribute(wgrad_taps_kernel<kStride>, cudaFuncAttributePreferredSharedMemoryCarveout,
                                               cudaSharedmemCarveoutMaxShared));
        int n = 0;
        GANINV_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, wgrad_taps_kernel<kStride>,
                                                                        TapPatch<kStride>::kThreads, 0));
        return n > 0 ? n : 1;
    }();
    return blocks;
}

/// grad_w[O, C, 3, 3] += the weight gradient over a GH x GW pixel grid of `batch` samples; `a`
/// and `b` as for launch_wgrad (a: rows O, b: rows C), one of them tap-shifted with stride 1 or 2.
inline void launch_wgrad_taps(const PixelOperand& a, const PixelOperand& b, float* grad_w, int O, int C, int ksize,
                              int GH, int GW, int batch, int num_sms, cudaStream_t stream) {
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
        const TapSplit t = plan_tap_split<kStride>(u.R, s.R, GH, GW, batch, num_sms, wgrad_taps_resident_blocks<kStride>());
        const dim3 grid(static_cast<unsigned>(t.channel_tiles), static_cast<unsigned>(t.splits));
        wgrad_taps_kernel<kStride><<<grid, P::kThreads, 0, stream>>>(u, s, grad_w, !a_shifted, C, GH, GW, t.patches_y,
                                                                     t.patches_x, t.total_patches, t.patches_per_split,
                                                                     t.splits > 1);
        GANINV_CUDA_CHECK_LAUNCH();
    };
    if (s.stride == 1) launch(std::integral_constant<int, 1>{});
    else launch(std::integral_constant<int, 2>{});
}

}  // namespace ganinv::cuda::gemm
