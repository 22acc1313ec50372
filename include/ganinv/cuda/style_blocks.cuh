/// @file style_blocks.cuh
/// @brief All layers' style affines, forward and backward, and the per-layer style slices, in a
///        few launches instead of several per layer: at batch 1 a 1024^2 generator has 26 layers,
///        and the per-layer gathers, GEMVs and scatters were ~200 launches of a few microseconds.
///        The layer table travels by value in the kernel parameters (kStyleBatch per launch).
#pragma once

#include "ganinv/cuda/check.hpp"
#include "ganinv/cuda/launch.cuh"
#include "ganinv/nn/style_blocks.hpp"

#include <algorithm>
#include <span>
#include <type_traits>
#include <vector>

namespace ganinv::cuda {

constexpr int kStyleBatch = 32;  ///< layers per launch (the table stays well under 4 KB)

struct AffineTable {
    struct Item {
        const float* weight;
        const float* bias;
        float* grad_weight;
        float* grad_bias;
        int w_index, offset, channels;
        float weight_gain, bias_gain;
    };
    Item items[kStyleBatch];
    int count;
};

struct ColumnTable {
    struct Item {
        float* data;
        long long offset;
        int cols;
        float scale;
    };
    Item items[kStyleBatch];
    int count;
};

namespace kernels {

/// styles[n, offset + c] = dot(ws[n, w_index], weight[c]) * wg + bias[c] * bg: a warp per
/// output. Grid (channel groups of 8, layer, n).
template <class T = float>  // a template: kernels in headers must not break the ODR
__global__ void affine_styles(const T* ws, int num_ws, int w_dim, AffineTable t, int style_dim, T* styles) {
    const AffineTable::Item& L = t.items[blockIdx.y];
    const int c = static_cast<int>(blockIdx.x) * (blockDim.x / 32) + static_cast<int>(threadIdx.x) / 32;
    if (c >= L.channels) return;
    const int lane = threadIdx.x % 32;
    const long long n = blockIdx.z;
    const float* x = ws + (n * num_ws + L.w_index) * w_dim;
    const float* w = L.weight + static_cast<long long>(c) * w_dim;
    float a = 0.0f;
    for (int k = lane; k < w_dim; k += 32) a = fmaf(x[k], w[k], a);
    a = warp_sum(a);
    if (lane == 0) styles[n * style_dim + L.offset + c] = a * L.weight_gain + (L.bias ? L.bias[c] * L.bias_gain : 0.0f);
}

/// grad_ws[n, j, k] (+)= sum over the layers with w_index j of sum_c g[n, offset + c] w[c, k] wg.
/// Grid (w_dim / 32, num_ws, n); the block's 8 warps split the channels, lanes cover k.
template <class T = float>
__global__ void affine_styles_grad_ws(const T* grad_styles, int num_ws, int w_dim, AffineTable t, int style_dim,
                                      bool accumulate, T* grad_ws) {
    __shared__ float part[kBlock / 32][33];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    const int k = static_cast<int>(blockIdx.x) * 32 + lane, j = blockIdx.y;
    const long long n = blockIdx.z;
    const float* g = grad_styles + n * style_dim;
    float a = 0.0f;
    if (k < w_dim)
        for (int i = 0; i < t.count; ++i) {
            const AffineTable::Item& L = t.items[i];
            if (L.w_index != j) continue;
            float b = 0.0f;
            for (int c = warp; c < L.channels; c += warps) b = fmaf(g[L.offset + c], L.weight[static_cast<long long>(c) * w_dim + k], b);
            a = fmaf(b, L.weight_gain, a);
        }
    part[warp][lane] = a;
    __syncthreads();
    if (warp == 0 && k < w_dim) {
        float s = 0.0f;
        for (int w = 0; w < warps; ++w) s += part[w][lane];
        float* dst = grad_ws + (n * num_ws + j) * w_dim + k;
        *dst = accumulate ? *dst + s : s;
    }
}

/// grad_weight[c, k] += wg * sum_n g[n, offset + c] ws[n, w_index, k]; grad_bias[c] += bg * sum_n g.
/// Grid (element blocks over channels x w_dim, layer).
template <class T = float>
__global__ void affine_styles_grad_params(const T* ws, const T* grad_styles, int batch, int num_ws, int w_dim,
                                          AffineTable t, int style_dim) {
    const AffineTable::Item& L = t.items[blockIdx.y];
    if (!L.grad_weight && !L.grad_bias) return;
    const long long idx = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
    if (idx >= static_cast<long long>(L.channels) * w_dim) return;
    const int c = static_cast<int>(idx / w_dim), k = static_cast<int>(idx - static_cast<long long>(c) * w_dim);
    float a = 0.0f, b = 0.0f;
    for (int n = 0; n < batch; ++n) {
        const float g = grad_styles[static_cast<long long>(n) * style_dim + L.offset + c];
        a = fmaf(g, ws[(static_cast<long long>(n) * num_ws + L.w_index) * w_dim + k], a);
        b += g;
    }
    if (L.grad_weight) L.grad_weight[idx] += a * L.weight_gain;
    if (L.grad_bias && k == 0) L.grad_bias[c] += b * L.bias_gain;
}

/// Gather: item.data[r, c] = scale * src[r, offset + c]; scatter: dst[r, offset + c] += scale *
/// item.data[r, c] (blocks do not overlap). Grid (element blocks, item).
template <bool kScatter>
__global__ void column_blocks(std::conditional_t<kScatter, float, const float>* matrix, long long rows,
                              long long matrix_cols, ColumnTable t) {
    const ColumnTable::Item& b = t.items[blockIdx.y];
    const long long total = rows * b.cols;
    for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<long long>(gridDim.x) * blockDim.x) {
        const long long r = i / b.cols, c = i - r * b.cols;
        const long long at = r * matrix_cols + b.offset + c;
        if constexpr (kScatter) matrix[at] += b.scale * b.data[i];
        else b.data[i] = b.scale * matrix[at];
    }
}

}  // namespace kernels

namespace detail {

inline void check_affines(std::span<const nn::StyleAffine> layers, Index num_ws, Index w_dim, Index style_dim) {
    GANINV_CHECK(w_dim > 0 && w_dim < (Index{1} << 30) && num_ws <= 65535 && style_dim < (Index{1} << 31), ShapeError,
                 "style affines: w_dim ", w_dim, ", num_ws ", num_ws, " or style_dim ", style_dim, " out of range");
    for (const nn::StyleAffine& l : layers)
        GANINV_CHECK(l.w_index >= 0 && l.w_index < num_ws && l.offset >= 0 && l.channels >= 0 &&
                         l.offset + l.channels <= style_dim,
                     ShapeError, "style affine: w_index ", l.w_index, ", columns [", l.offset, ", ", l.offset + l.channels,
                     ") outside ", num_ws, " ws and ", style_dim, " styles");
}

/// The table of layers [first, first + count) and their largest channel count.
inline AffineTable affine_table(std::span<const nn::StyleAffine> layers, std::size_t first, int& max_channels) {
    AffineTable t{};
    t.count = static_cast<int>(std::min<std::size_t>(kStyleBatch, layers.size() - first));
    max_channels = 0;
    for (int i = 0; i < t.count; ++i) {
        const nn::StyleAffine& l = layers[first + static_cast<std::size_t>(i)];
        t.items[i] = {l.weight, l.bias, l.grad_weight, l.grad_bias, static_cast<int>(l.w_index), static_cast<int>(l.offset),
                      static_cast<int>(l.channels), l.weight_gain, l.bias_gain};
        max_channels = std::max(max_channels, static_cast<int>(l.channels));
    }
    return t;
}

}  // namespace detail

/// styles [n, style_dim] from ws [n, num_ws, w_dim]: every layer's columns written (others kept).
inline void affine_styles(const float* ws, Index n, Index num_ws, Index w_dim, std::span<const nn::StyleAffine> layers,
                          Index style_dim, float* styles, cudaStream_t stream) {
    detail::check_affines(layers, num_ws, w_dim, style_dim);
    GANINV_CHECK(n <= 65535, ShapeError, "style affines: batch ", n, " exceeds the grid limit");
    for (std::size_t first = 0; first < layers.size(); first += kStyleBatch) {
        int max_c = 0;
        const AffineTable t = detail::affine_table(layers, first, max_c);
        if (max_c == 0 || n == 0) continue;
        const dim3 grid(static_cast<unsigned>((max_c + kBlock / 32 - 1) / (kBlock / 32)), static_cast<unsigned>(t.count),
                        static_cast<unsigned>(n));
        kernels::affine_styles<float><<<grid, kBlock, 0, stream>>>(ws, static_cast<int>(num_ws), static_cast<int>(w_dim), t,
                                                            static_cast<int>(style_dim), styles);
        GANINV_CUDA_CHECK_LAUNCH();
    }
}

/// grad_ws [n, num_ws, w_dim] (overwritten) from grad_styles; the layers' grad_weight /
/// grad_bias (where set) accumulate.
inline void affine_styles_backward(const float* ws, const float* grad_styles, Index n, Index num_ws, Index w_dim,
                                   std::span<const nn::StyleAffine> layers, Index style_dim, float* grad_ws,
                                   cudaStream_t stream) {
    detail::check_affines(layers, num_ws, w_dim, style_dim);
    GANINV_CHECK(n <= 65535, ShapeError, "style affines: batch ", n, " exceeds the grid limit");
    if (n == 0) return;
    if (layers.empty()) {
        GANINV_CUDA_CHECK(cudaMemsetAsync(grad_ws, 0, sizeof(float) * n * num_ws * w_dim, stream));
        return;
    }
    for (std::size_t first = 0; first < layers.size(); first += kStyleBatch) {
        int max_c = 0;
        const AffineTable t = detail::affine_table(layers, first, max_c);
        const dim3 grid(static_cast<unsigned>((w_dim + 31) / 32), static_cast<unsigned>(num_ws), static_cast<unsigned>(n));
        kernels::affine_styles_grad_ws<float><<<grid, kBlock, 0, stream>>>(grad_styles, static_cast<int>(num_ws),
                                                                    static_cast<int>(w_dim), t, static_cast<int>(style_dim),
                                                                    first > 0, grad_ws);
        GANINV_CUDA_CHECK_LAUNCH();
        const bool params = std::any_of(t.items, t.items + t.count, [](const AffineTable::Item& i) { return i.grad_weight || i.grad_bias; });
        if (!params || max_c == 0) continue;
        const dim3 pgrid(static_cast<unsigned>((static_cast<long long>(max_c) * w_dim + kBlock - 1) / kBlock),
                         static_cast<unsigned>(t.count));
        kernels::affine_styles_grad_params<float><<<pgrid, kBlock, 0, stream>>>(ws, grad_styles, static_cast<int>(n),
                                                                         static_cast<int>(num_ws), static_cast<int>(w_dim),
                                                                         t, static_cast<int>(style_dim));
        GANINV_CUDA_CHECK_LAUNCH();
    }
}

/// Gathers (kScatter false) or scatter-adds (true) every block of `blocks` from / into the
/// [rows, cols] matrix. Scattered blocks must not overlap (checked).
template <bool kScatter>
void column_blocks(std::conditional_t<kScatter, float, const float>* matrix, Index rows, Index cols,
                   std::span<const nn::ColumnBlock> blocks, cudaStream_t stream) {
    std::vector<std::pair<Index, Index>> ranges;
    for (const nn::ColumnBlock& b : blocks) {
        GANINV_CHECK(b.offset >= 0 && b.cols >= 0 && b.offset + b.cols <= cols && b.cols < (Index{1} << 31), ShapeError,
                     "column block [", b.offset, ", ", b.offset + b.cols, ") outside a matrix of ", cols, " columns");
        ranges.emplace_back(b.offset, b.offset + b.cols);
    }
    if constexpr (kScatter) {
        std::sort(ranges.begin(), ranges.end());
        for (std::size_t i = 1; i < ranges.size(); ++i)
            GANINV_CHECK(ranges[i].first >= ranges[i - 1].second, ValueError, "scatter_add_column_blocks: blocks overlap at column ",
                         ranges[i].first);
    }
    for (std::size_t first = 0; first < blocks.size(); first += kStyleBatch) {
        ColumnTable t{};
        t.count = static_cast<int>(std::min<std::size_t>(kStyleBatch, blocks.size() - first));
        Index most = 0;
        for (int i = 0; i < t.count; ++i) {
            const nn::ColumnBlock& b = blocks[first + static_cast<std::size_t>(i)];
            t.items[i] = {b.data, static_cast<long long>(b.offset), static_cast<int>(b.cols), b.scale};
            most = std::max(most, rows * b.cols);
        }
        if (most == 0) continue;
        const dim3 grid(blocks_for(most, 4096), static_cast<unsigned>(t.count));
        kernels::column_blocks<kScatter><<<grid, kBlock, 0, stream>>>(matrix, static_cast<long long>(rows),
                                                                       static_cast<long long>(cols), t);
        GANINV_CUDA_CHECK_LAUNCH();
    }
}

}  // namespace ganinv::cuda
