/// @file hopper_conv_rows.cuh
/// @brief The row-halo variant of the Hopper (sm_90a) wgmma conv (hopper_conv.cuh) for stride-1
///        convs over wide planes: a block's 128 output pixels are one run of an output row, so the
///        kh x kw taps read kh halo rows of 128 + kw - 1 pixels instead of kh * kw gathered copies.
///
/// Why: on the 32/64-channel layers at 512^2 and 1024^2 the gather kernel moves every input pixel
/// from L2 to shared memory once per tap (9 times for a 3 x 3 conv) and ran at ~4-5 TB/s of L2
/// traffic, 3-5x the time the same bytes take from HBM once (docs/cuda.md, session 24). Here a
/// stage holds one halo row (one 128-byte K slice of 128 + kw - 1 pixels) and that row's kw taps'
/// weights; wgmma reads tap j's A operand from the same halo at a j-pixel offset. That needs the
/// operand stored without swizzle: 16-byte chunk c of halo pixel q at c * kHaloPitch * 16 + q * 16,
/// so any pixel can start a core matrix (8 rows x 16 B, contiguous) and the descriptor's leading
/// byte offset steps along K. kHaloPitch is odd (137 = 8 * 17 + 1) so that the eight chunks of one
/// pixel, written by eight neighbouring threads, fall in different banks.
#pragma once

#include "ganinv/cuda/hopper_conv.cuh"

#include <cstdint>

namespace ganinv::cuda::hopper {

constexpr int kHaloPitch = 137;  ///< pixels per 16-byte chunk column of a halo row (>= kBM + kw - 1)
constexpr int kRowTaps = 3;      ///< taps per halo row (kw) of the instantiated kernels: the 3 x 3 convs
constexpr int kHaloStageBytes = (8 * kHaloPitch * 16 + 1023) / 1024 * 1024;  ///< 17 536 B, rounded to the B tile's 1 KiB alignment

/// The row-halo operand: output pixel (n, oy, ox) and tap (r, j) of the kh x kw rectangle read
/// padded-source pixel (oy + y0 + r, ox + x0 + j) of sample n; tap (r, j) is row tap[r * kw + j]
/// of the packed weights ([cols][tap][Cp], as for PixelGather).
struct RowGather {
    const void* src = nullptr;  ///< [batch][Hp][Wp][Cp] of the operand's storage type
    int Hp = 0, Wp = 0, Cp = 0;
    int OH = 0, OW = 0;
    int y0 = 0, x0 = 0;
    int kh = 1, kw = 1;
    int tap[kMaxTaps] = {};
    int tiles_per_row = 1;  ///< ceil(OW / kBM)
    long long rows = 0;     ///< batch * OH
};

namespace kernels {

#ifdef GANINV_WGMMA_AVAILABLE
/// Descriptor of a K-major operand stored without swizzle: the core matrix of rows [8 i, 8 i + 8)
/// and 16-byte K chunk c starts at p + 128 i + c * k_stride; its eight rows are 16 bytes apart.
__device__ __forceinline__ std::uint64_t smem_desc_plain(const void* p, unsigned k_stride) {
    const auto a = static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
    std::uint64_t d = (a & 0x3FFFFu) >> 4;                    // start address / 16
    d |= std::uint64_t{(k_stride >> 4) & 0x3FFFu} << 16;      // leading byte offset: the next chunk along K
    d |= std::uint64_t{128 >> 4} << 32;                       // stride byte offset: the next 8 rows
    return d;                                                 // bits 62-63 = 0: no swizzle
}

constexpr int kHaloChunkStride = kHaloPitch * 16;  ///< bytes between the K chunks of a halo row

/// Producer thread (chunk, q0) of 128: its 16-byte chunk of halo pixels q0 + 16 i < KW + 127,
/// read from padded column xq + 16 i (clamped to the row: pixels past the output row's end feed
/// no output) of `arow` (the row's first pixel, at this thread's chunk).
template <int KW, class E>
__device__ __forceinline__ void load_halo_row(unsigned char* halo, const E* arow, int chunk, int q0, int xq, int Wp, int Cp) {
    constexpr int kHaloW = kBM + KW - 1, kPasses = (kHaloW + 15) / 16;
#pragma unroll
    for (int i = 0; i < kPasses; ++i)
        if (q0 + 16 * i < kHaloW) cp_async16(halo + chunk * kHaloChunkStride + (q0 + 16 * i) * 16, arow + min(xq + 16 * i, Wp - 1) * Cp);
}

/// The epilogue's Row for output pixel (oy, ox) of sample n, when ox is inside the OW-wide row
/// (a row run's tail past OW stores nothing).
template <class Epi>
__device__ __forceinline__ typename Epi::Row row_run_pixel(const Epi& epi, int n, int oy, int ox, int OW) {
    const bool ok = ox < OW;
    return epi.row(ok, n, ok ? oy * OW + ox : 0);
}

/// Consumer warpgroup wg: acc += the KW taps of one halo row, tap j's A = the halo from pixel
/// wg * 64 + j, its B = the 128-byte-swizzled BN-row tile at b + j * BN * 128 (one K slice).
template <class Operand, int BN, int KW>
__device__ __forceinline__ void mma_halo_row(float (&acc)[BN / 2], const unsigned char* halo, const unsigned char* b, int wg) {
#pragma unroll
    for (int j = 0; j < KW; ++j)
#pragma unroll
        for (int k = 0; k < kRowBytes / 32; ++k)
            Wgmma<Operand, BN>::mma(acc, smem_desc_plain(halo + (wg * 64 + j) * 16 + 2 * k * kHaloChunkStride, kHaloChunkStride),
                                    smem_desc(b + j * BN * kRowBytes + 32 * k));
}
#endif

/// One block: output pixels [ox0, ox0 + 128) of one output row x columns [nt * BN, +BN),
/// warp-specialized as nhwc_conv_wgmma (producer warpgroup 0 fills an S-stage ring with cp.async
/// and mbarriers; warpgroups 1 and 2 multiply 64 pixels each). Stage kt = halo row kt % kh of K
/// slice kt / kh: A = that row's 128 + kw - 1 pixels (unswizzled, see the file comment), B = the
/// row's KW taps' weights for the slice (128-byte swizzle, BN rows each). KW is a template
/// argument so that the tap loop unrolls: with a run-time bound ptxas fences every wgmma.
template <class Operand, int BN, int KW, int S, int MinBlocks, class Epi>
__global__ void __launch_bounds__(kThreads + 128, MinBlocks)
    nhwc_conv_rows_wgmma(RowGather g, const typename OperandTraits<Operand>::Storage* __restrict__ wt, int n_tiles, Epi epi) {
#ifdef GANINV_WGMMA_AVAILABLE
    using Traits = OperandTraits<Operand>;
    using E = typename Traits::Storage;
    static_assert(BN % 32 == 0 && BN >= 32 && BN <= 128, "BN: 32, 64 or 128");
    static_assert(KW >= 1 && kBM + KW - 1 <= kHaloPitch, "the halo row must fit kHaloPitch pixels");
    constexpr int kStageB = KW * BN * kRowBytes, kStage = kHaloStageBytes + kStageB;
    static_assert(BN * (kBM + 4) * 4 <= S * kStage, "the epilogue tile must fit in the ring");
    constexpr int kEpc = 16 / static_cast<int>(sizeof(E));
    extern __shared__ unsigned char smem_raw[];
    unsigned char* smem = reinterpret_cast<unsigned char*>((reinterpret_cast<std::uintptr_t>(smem_raw) + 1023) & ~std::uintptr_t{1023});
    __shared__ int tap[kMaxTaps];
    __shared__ alignas(8) std::uint64_t full[S], empty[S];
    const int tid = static_cast<int>(threadIdx.x);
#pragma unroll
    for (int t = 0; t < kMaxTaps; ++t)
        if (t == tid && t < g.kh * g.kw) tap[t] = g.tap[t];
    if (tid == 0) {
        for (int s = 0; s < S; ++s) {
            mbar_init(&full[s], 128);
            mbar_init(&empty[s], 2);
        }
    }
    __syncthreads();

    const int nt = static_cast<int>(blockIdx.x % n_tiles);
    const long long seg = blockIdx.x / n_tiles;
    const long long orow = seg / g.tiles_per_row;  // n * OH + oy
    const int ox0 = static_cast<int>(seg % g.tiles_per_row) * kBM;
    const int n = static_cast<int>(orow / g.OH), oy = static_cast<int>(orow % g.OH);
    const int slices_per_tap = g.Cp / Traits::kPerSlice;
    const int KT = g.kh * slices_per_tap;

    if (tid < 128) {  // ------------------------------------------------ producer
        if constexpr (MinBlocks == 1) asm volatile("setmaxnreg.dec.sync.aligned.u32 56;\n");
        const int chunk = tid % 8, q0 = tid / 8;   // halo pixels q0 + 16 i; weight rows q0 + 16 i
        const int swz = (chunk ^ (q0 & 7)) << 4;  // B rows q0 + 16 i share q0 % 8
        const E* top = static_cast<const E*>(g.src) + (static_cast<long long>(n) * g.Hp + oy + g.y0) * g.Wp * g.Cp + chunk * kEpc;
        const int xq = ox0 + g.x0 + q0;  // padded column of halo pixel q0 (clamped below: pixels past OW feed no output)
        const long long kw_row = static_cast<long long>(g.kh) * KW * g.Cp;  // one packed weight row
        const E* brow = wt + (static_cast<long long>(nt) * BN + q0) * kw_row + chunk * kEpc;
        const long long row_elems = static_cast<long long>(g.Wp) * g.Cp;
        for (int kt = 0; kt < KT; ++kt) {
            const int s = kt % S;
            if (kt >= S) mbar_wait(&empty[s], ((kt / S) - 1) & 1);
            const int r = kt % g.kh, c0 = (kt / g.kh) * Traits::kPerSlice;
            unsigned char* sa = smem + s * kStage;
            unsigned char* sb = sa + kHaloStageBytes;
            load_halo_row<KW>(sa, top + r * row_elems + c0, chunk, q0, xq, g.Wp, g.Cp);
#pragma unroll
            for (int j = 0; j < KW; ++j) {
                const E* bsrc = brow + static_cast<long long>(tap[r * KW + j]) * g.Cp + c0;
#pragma unroll
                for (int i = 0; i < BN / 16; ++i)
                    cp_async16(sb + j * BN * kRowBytes + (q0 + 16 * i) * kRowBytes + swz, bsrc + 16 * i * kw_row);
            }
            cp_async_arrive(&full[s]);
        }
        cp_async_wait<0>();
        return;
    }
    // ------------------------------------------------------------------ consumers
    if constexpr (MinBlocks == 1) asm volatile("setmaxnreg.inc.sync.aligned.u32 224;\n");
    const int ctid = tid - 128, wg = ctid / 128;
    float acc[BN / 2];
#pragma unroll
    for (int i = 0; i < BN / 2; ++i) acc[i] = 0.0f;
    for (int kt = 0; kt < KT; ++kt) {
        const int s = kt % S;
        mbar_wait(&full[s], (kt / S) & 1);
        fence_proxy_async();
        const unsigned char* sa = smem + s * kStage;
        const unsigned char* sb = sa + kHaloStageBytes;
        wgmma_fence();
        mma_halo_row<Operand, BN, KW>(acc, sa, sb, wg);
        wgmma_commit();
        wgmma_wait<1>();
        if (kt > 0 && ctid % 128 == 0) mbar_arrive(&empty[(kt - 1) % S]);
    }
    wgmma_wait<0>();
    consumer_sync();
    store_tile<BN>(acc, smem, ctid, epi, nt, [&](int row) { return row_run_pixel(epi, n, oy, ox0 + row, g.OW); });
#else
    (void)g, (void)wt, (void)n_tiles, (void)epi;
    __trap();
#endif
}

}  // namespace kernels

/// Shared memory of a row-halo launch with BN columns, KW taps per row and S stages (+ 1 KiB for the alignment).
constexpr int rows_smem_bytes(int bn, int kw, int stages) { return stages * (kHaloStageBytes + kw * bn * kRowBytes) + 1024; }

template <class Operand, int BN, int S, int MinBlocks, class Epi>
void launch_rows_bn(const RowGather& g, const void* wt, int cols, const Epi& epi, cudaStream_t stream) {
    constexpr int smem = rows_smem_bytes(BN, kRowTaps, S);
    static_assert(MinBlocks * (smem + 2048) <= 228 * 1024, "the ring does not fit MinBlocks blocks per SM");
    auto* kernel = kernels::nhwc_conv_rows_wgmma<Operand, BN, kRowTaps, S, MinBlocks, Epi>;
    GANINV_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    const int n_tiles = (cols + BN - 1) / BN;
    const long long blocks = g.rows * g.tiles_per_row * n_tiles;
    GANINV_CHECK(blocks < (1LL << 31), ShapeError, "wgmma row conv: ", blocks, " blocks exceed the grid limit");
    kernel<<<static_cast<unsigned>(blocks), kThreads + 128, smem, stream>>>(
        g, static_cast<const typename OperandTraits<Operand>::Storage*>(wt), n_tiles, epi);
    GANINV_CUDA_CHECK_LAUNCH();
}

/// Launches the row-halo conv for tile width bn (32, 64 or 128) and kRowTaps tap columns.
template <class Operand, class Epi>
void launch_nhwc_conv_rows(const RowGather& g, const void* wt, int cols, int bn, const Epi& epi, cudaStream_t stream) {
    GANINV_CHECK(g.kw == kRowTaps && g.kh >= 1 && g.kh * g.kw <= kMaxTaps, ValueError, "wgmma row conv: a ", g.kh, " x ",
                 g.kw, " tap rectangle is not supported (", kRowTaps, " columns)");
    switch (bn) {
        // Narrow tiles run two blocks per SM (one block's epilogue overlaps the other's loads).
        case 128: return launch_rows_bn<Operand, 128, 3, 1>(g, wt, cols, epi, stream);
        case 64: return launch_rows_bn<Operand, 64, 2, 2>(g, wt, cols, epi, stream);
        case 32: return launch_rows_bn<Operand, 32, 3, 2>(g, wt, cols, epi, stream);
        default: throw ValueError(concat("wgmma row conv: no kernel for ", bn, " columns per tile"));
    }
}

}  // namespace ganinv::cuda::hopper
