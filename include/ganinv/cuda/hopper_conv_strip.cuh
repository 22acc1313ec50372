/// @file hopper_conv_strip.cuh
/// @brief The strip variant of the Hopper (sm_90a) row-halo conv (hopper_conv_rows.cuh) for 3 x 3
///        stride-1 convs whose K is one 128-byte slice per tap (TF32 with <= 32 input channels,
///        BF16 with <= 64): a block walks down a strip of output rows over one 128-pixel column
///        run, keeps the 9 taps' weights in shared memory for the whole strip, and holds halo rows
///        in a ring so that each input row is loaded once per strip instead of three times.
///
/// Why: with the row tiles, a 1024^2 x 32-channel layer still moved 3 halo rows + 9 weight tiles
/// (~88 KB) per 128 output pixels from L2; here it is one halo row (~16 KB) per output row of the
/// strip, about the layer's own size. Stage layout and descriptors are those of the row tiles.
#pragma once

#include "ganinv/cuda/hopper_conv_rows.cuh"

#include <algorithm>
#include <cstdint>

namespace ganinv::cuda::hopper {

constexpr int kStripTaps = 3;   ///< kh = kw = 3
constexpr int kStripRing = 4;   ///< halo rows in shared memory: the 3 of the current output row + 1 loading
constexpr int kStripEpiLd = kBM + 4;  ///< the epilogue tile's row length in floats (store_tile's layout)

/// The strip operand: as RowGather (kh = kw = 3, one K slice per tap), output rows
/// [strip * strip_rows, +strip_rows) of sample n per block.
struct StripGather {
    const void* src = nullptr;  ///< [batch][Hp][Wp][Cp], Cp = one slice
    int Hp = 0, Wp = 0, Cp = 0;
    int OH = 0, OW = 0;
    int y0 = 0, x0 = 0;
    int tap[kStripTaps * kStripTaps] = {};
    int tiles_x = 1;     ///< ceil(OW / kBM)
    int strip_rows = 1;  ///< output rows per block
    int strips = 1;      ///< ceil(OH / strip_rows)
};

/// Shared memory of a strip launch with BN columns (+ 1 KiB for the alignment): the 9 weight
/// tiles, the ring of halo rows, the epilogue tile.
constexpr int strip_smem_bytes(int bn) {
    return kStripTaps * kStripTaps * bn * kRowBytes + kStripRing * kHaloStageBytes + bn * kStripEpiLd * 4 + 1024;
}

namespace kernels {

/// One block: sample n, output rows [oy0, oy0 + strip_rows), pixels [ox0, ox0 + 128), columns
/// [nt * BN, +BN). Producer warpgroup 0 loads the 9 weight tiles once ("weights" mbarrier), then
/// halo row h (padded row oy0 + y0 + h) into ring slot h % kStripRing ("full"), after the slot's
/// previous row was released ("empty"). Consumer warpgroups 1 and 2 (64 pixels each) compute
/// output row i from halo rows i, i + 1, i + 2, release row i, and store the row through the
/// epilogue while the producer loads ahead.
template <class Operand, int BN, class Epi>
__global__ void __launch_bounds__(kThreads + 128, 1)
    nhwc_conv_strip_wgmma(StripGather g, const typename OperandTraits<Operand>::Storage* __restrict__ wt, int n_tiles, Epi epi) {
#ifdef GANINV_WGMMA_AVAILABLE
    using Traits = OperandTraits<Operand>;
    using E = typename Traits::Storage;
    static_assert(BN == 32 || BN == 64, "BN: 32 or 64");
    constexpr int kTaps = kStripTaps * kStripTaps, kTile = BN * kRowBytes;
    constexpr int kEpc = 16 / static_cast<int>(sizeof(E));
    extern __shared__ unsigned char smem_raw[];
    unsigned char* smem = reinterpret_cast<unsigned char*>((reinterpret_cast<std::uintptr_t>(smem_raw) + 1023) & ~std::uintptr_t{1023});
    unsigned char* wsm = smem;                             // 9 weight tiles (128-byte swizzle)
    unsigned char* ring = wsm + kTaps * kTile;             // kStripRing halo rows
    unsigned char* etile = ring + kStripRing * kHaloStageBytes;  // the epilogue tile
    __shared__ alignas(8) std::uint64_t wfull, full[kStripRing], empty[kStripRing];
    const int tid = static_cast<int>(threadIdx.x);
    if (tid == 0) {
        mbar_init(&wfull, 128);
        for (int s = 0; s < kStripRing; ++s) {
            mbar_init(&full[s], 128);
            mbar_init(&empty[s], 2);
        }
    }
    __syncthreads();

    const int nt = static_cast<int>(blockIdx.x % n_tiles);
    long long rest = blockIdx.x / n_tiles;
    const int ox0 = static_cast<int>(rest % g.tiles_x) * kBM;
    rest /= g.tiles_x;
    const int oy0 = static_cast<int>(rest % g.strips) * g.strip_rows;
    const int n = static_cast<int>(rest / g.strips);
    const int rows = min(g.strip_rows, g.OH - oy0);

    if (tid < 128) {  // ------------------------------------------------ producer
        const int chunk = tid % 8, q0 = tid / 8;
        const int swz = (chunk ^ (q0 & 7)) << 4;
        const long long kw_row = static_cast<long long>(kTaps) * g.Cp;  // one packed weight row
        const E* brow = wt + (static_cast<long long>(nt) * BN + q0) * kw_row + chunk * kEpc;
#pragma unroll
        for (int cell = 0; cell < kTaps; ++cell) {
            const E* bsrc = brow + static_cast<long long>(g.tap[cell]) * g.Cp;
#pragma unroll
            for (int i = 0; i < BN / 16; ++i) cp_async16(wsm + cell * kTile + (q0 + 16 * i) * kRowBytes + swz, bsrc + 16 * i * kw_row);
        }
        cp_async_arrive(&wfull);
        const int xq = ox0 + g.x0 + q0;
        const long long row_elems = static_cast<long long>(g.Wp) * g.Cp;
        const E* top = static_cast<const E*>(g.src) + (static_cast<long long>(n) * g.Hp + oy0 + g.y0) * row_elems + chunk * kEpc;
        for (int h = 0; h < rows + kStripTaps - 1; ++h) {
            const int s = h % kStripRing;
            if (h >= kStripRing) mbar_wait(&empty[s], ((h / kStripRing) - 1) & 1);
            unsigned char* sa = ring + s * kHaloStageBytes;
            load_halo_row<kStripTaps>(sa, top + h * row_elems, chunk, q0, xq, g.Wp, g.Cp);
            cp_async_arrive(&full[s]);
        }
        cp_async_wait<0>();
        return;
    }
    // ------------------------------------------------------------------ consumers
    const int ctid = tid - 128, wg = ctid / 128;
    mbar_wait(&wfull, 0);
    for (int i = 0; i < rows; ++i) {
        float acc[BN / 2];
#pragma unroll
        for (int a = 0; a < BN / 2; ++a) acc[a] = 0.0f;
        // All three halo rows first: a barrier wait (a loop) between wgmmas makes ptxas serialize them.
#pragma unroll
        for (int r = 0; r < kStripTaps; ++r) mbar_wait(&full[(i + r) % kStripRing], ((i + r) / kStripRing) & 1);
        fence_proxy_async();
        wgmma_fence();
#pragma unroll
        for (int r = 0; r < kStripTaps; ++r)
            mma_halo_row<Operand, BN, kStripTaps>(acc, ring + ((i + r) % kStripRing) * kHaloStageBytes, wsm + r * kStripTaps * kTile, wg);
        wgmma_commit();
        wgmma_wait<0>();
        if (ctid % 128 == 0) mbar_arrive(&empty[i % kStripRing]);  // halo row i feeds no later output row
        consumer_sync();  // the previous row's epilogue is done reading the tile
        const int oy = oy0 + i;
        store_tile<BN>(acc, etile, ctid, epi, nt, [&](int row) { return row_run_pixel(epi, n, oy, ox0 + row, g.OW); });
    }
#else
    (void)g, (void)wt, (void)n_tiles, (void)epi;
    __trap();
#endif
}

}  // namespace kernels

/// Rows per strip for `blocks_per_row_band` blocks side by side (samples x column runs x column
/// tiles): about two blocks per SM over the whole plane, at least 4 rows (the halo's 2 extra rows
/// stay a small share).
inline int strip_rows_for(int OH, long long blocks_per_row_band, int num_sms) {
    const long long want_strips = std::max<long long>(1, 2LL * std::max(num_sms, 1) / std::max<long long>(blocks_per_row_band, 1));
    const int rows = static_cast<int>((OH + want_strips - 1) / want_strips);
    return std::max(4, rows);
}

template <class Operand, class Epi>
void launch_nhwc_conv_strip(const StripGather& g, int batch, const void* wt, int cols, int bn, const Epi& epi,
                            cudaStream_t stream) {
    auto go = [&](auto kernel, int smem, int BN) {
        GANINV_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
        const int n_tiles = (cols + BN - 1) / BN;
        const long long blocks = static_cast<long long>(batch) * g.strips * g.tiles_x * n_tiles;
        GANINV_CHECK(blocks < (1LL << 31), ShapeError, "wgmma strip conv: ", blocks, " blocks exceed the grid limit");
        kernel<<<static_cast<unsigned>(blocks), kThreads + 128, smem, stream>>>(
            g, static_cast<const typename OperandTraits<Operand>::Storage*>(wt), n_tiles, epi);
        GANINV_CUDA_CHECK_LAUNCH();
    };
    static_assert(strip_smem_bytes(64) + 2048 <= 228 * 1024, "the strip kernel's shared memory does not fit an SM");
    switch (bn) {
        case 32: return go(kernels::nhwc_conv_strip_wgmma<Operand, 32, Epi>, strip_smem_bytes(32), 32);
        case 64: return go(kernels::nhwc_conv_strip_wgmma<Operand, 64, Epi>, strip_smem_bytes(64), 64);
        default: throw ValueError(concat("wgmma strip conv: no kernel for ", bn, " columns per tile"));
    }
}

}  // namespace ganinv::cuda::hopper
