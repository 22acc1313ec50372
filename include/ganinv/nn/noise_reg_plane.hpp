/// @file noise_reg_plane.hpp
/// @brief The official projector's noise regulariser on one [H, W] plane, with its gradient:
///        the Cpu reference (BufferOps<Cpu> loops over planes; the CUDA kernel in
///        backend/cuda_buffer_ops.cuh does the same arithmetic, levels in double, one block per plane).
#pragma once

#include "ganinv/core/tensor.hpp"

#include <utility>
#include <vector>

namespace ganinv {
namespace detail {

/// reg of one [H, W] plane; grad (nullable, [H, W], overwritten) = d reg / d plane.
inline double noise_reg_plane(const float* plane, Index H, Index W, float* grad) {
    std::vector<std::vector<double>> levels{std::vector<double>(plane, plane + H * W)};
    std::vector<std::pair<Index, Index>> sizes{{H, W}};
    std::vector<std::pair<double, double>> corr;  // (mean over x, mean over y) per level
    while (true) {
        const auto [h, w] = sizes.back();
        const std::vector<double>& a = levels.back();
        double sx = 0.0, sy = 0.0;
        for (Index i = 0; i < h; ++i)
            for (Index j = 0; j < w; ++j) {
                const double v = a[static_cast<std::size_t>(i * w + j)];
                sx += v * a[static_cast<std::size_t>(i * w + (j + w - 1) % w)];
                sy += v * a[static_cast<std::size_t>(((i + h - 1) % h) * w + j)];
            }
        const double inv = 1.0 / static_cast<double>(h * w);
        corr.emplace_back(sx * inv, sy * inv);
        if (h <= 8) break;
        const Index oh = h / 2, ow = w / 2;  // avg_pool2d(kernel 2) floors odd sizes
        std::vector<double> pooled(static_cast<std::size_t>(oh * ow));
        for (Index i = 0; i < oh; ++i)
            for (Index j = 0; j < ow; ++j)
                pooled[static_cast<std::size_t>(i * ow + j)] =
                    0.25 * (a[static_cast<std::size_t>(2 * i * w + 2 * j)] + a[static_cast<std::size_t>(2 * i * w + 2 * j + 1)] +
                            a[static_cast<std::size_t>((2 * i + 1) * w + 2 * j)] +
                            a[static_cast<std::size_t>((2 * i + 1) * w + 2 * j + 1)]);
        levels.push_back(std::move(pooled));
        sizes.emplace_back(oh, ow);
    }
    double reg = 0.0;
    for (const auto& [cx, cy] : corr) reg += cx * cx + cy * cy;
    if (!grad) return reg;

    // d(cx^2)/da[i,j] = 2 cx / (h w) * (a[i, j-1] + a[i, j+1]) (circular), likewise in y; then
    // the pooling's adjoint hands each coarse gradient / 4 to its 2x2 block.
    std::vector<double> g;
    for (std::size_t l = levels.size(); l-- > 0;) {
        const auto [h, w] = sizes[l];
        const std::vector<double>& a = levels[l];
        std::vector<double> gl(static_cast<std::size_t>(h * w), 0.0);
        if (!g.empty()) {
            const Index ow = sizes[l + 1].second;
            for (Index i = 0; i < 2 * sizes[l + 1].first; ++i)
                for (Index j = 0; j < 2 * ow; ++j) gl[static_cast<std::size_t>(i * w + j)] = 0.25 * g[static_cast<std::size_t>((i / 2) * ow + j / 2)];
        }
        const double kx = 2.0 * corr[l].first / static_cast<double>(h * w);
        const double ky = 2.0 * corr[l].second / static_cast<double>(h * w);
        for (Index i = 0; i < h; ++i)
            for (Index j = 0; j < w; ++j) {
                const auto at = [&](Index y, Index x) { return a[static_cast<std::size_t>(y * w + x)]; };
                gl[static_cast<std::size_t>(i * w + j)] += kx * (at(i, (j + w - 1) % w) + at(i, (j + 1) % w)) +
                                                           ky * (at((i + h - 1) % h, j) + at((i + 1) % h, j));
            }
        g = std::move(gl);
    }
    for (Index i = 0; i < H * W; ++i) grad[i] = static_cast<float>(g[static_cast<std::size_t>(i)]);
    return reg;
}

}  // namespace detail

}  // namespace ganinv
