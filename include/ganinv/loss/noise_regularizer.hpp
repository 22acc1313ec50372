/// @file noise_regularizer.hpp
/// @brief The noise regulariser of the official StyleGAN2(-ADA) projector, batched per image,
///        with its gradient w.r.t. every noise map.
///
/// For each noise map a (one image's [H, W] plane), starting at full size:
///   reg += mean(a * roll(a, 1, x))^2 + mean(a * roll(a, 1, y))^2
///   stop if H <= 8, otherwise a = avg_pool2x2(a) and repeat
/// (the projector's do-while: the 8x8 level, or a smaller first map, is counted once). roll is
/// circular, so the term penalises the lag-1 autocorrelation at every scale: it keeps optimised
/// noise maps from smuggling image structure. The projector multiplies the result by 1e5.
///
/// Not a `Loss` (it looks at noise maps, not images): evaluate(maps, grads) -> LossResult.
#pragma once

#include "ganinv/backend/cpu.hpp"
#include "ganinv/loss/detail/common.hpp"

#include <string>
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

template <class Backend = Cpu>
class NoiseRegularizer {
    static_assert(std::is_same_v<Backend, Cpu>, "NoiseRegularizer: only the Cpu backend is implemented so far");

public:
    using backend_type = Backend;
    using Buffer = typename Backend::Buffer;
    static constexpr bool differentiable = true;

    std::string name() const { return "noise_reg"; }

    /// maps: one tensor per noise layer, each [N, H, W], [N, 1, H, W] or [H, W] (one image);
    /// all share N. per_image[n] sums image n's regulariser over all maps. grads (nullable)
    /// receives one gradient per map, shaped like it.
    LossResult evaluate(const std::vector<Buffer>& maps, std::vector<Buffer>* grads) const {
        GANINV_CHECK(!maps.empty(), ValueError, "NoiseRegularizer: no noise maps given");
        const Index N = batch_of(maps[0], 0);
        std::vector<double> per_image(static_cast<std::size_t>(N), 0.0);
        if (grads) grads->resize(maps.size());
        for (std::size_t k = 0; k < maps.size(); ++k) {
            const Buffer& m = maps[k];
            GANINV_CHECK(batch_of(m, k) == N, ShapeError, "NoiseRegularizer: noise map ", k, " has shape ",
                         shape_to_string(m.shape()), " but map 0 has batch ", N);
            const Index H = m.shape()[m.shape().size() - 2], W = m.shape().back();
            GANINV_CHECK(H >= 1 && W >= 1, ShapeError, "NoiseRegularizer: noise map ", k, " is empty");
            if (grads) detail::BufferOps<Backend>::ensure((*grads)[k], m.shape(), m);
            for (Index n = 0; n < N; ++n)
                per_image[static_cast<std::size_t>(n)] += detail::noise_reg_plane(
                    m.data() + n * H * W, H, W, grads ? (*grads)[k].data() + n * H * W : nullptr);
        }
        return detail::single_term(name(), std::move(per_image));
    }

private:
    static Index batch_of(const Buffer& m, std::size_t k) {
        const Shape& s = m.shape();
        GANINV_CHECK(s.size() == 2 || s.size() == 3 || (s.size() == 4 && s[1] == 1), ShapeError,
                     "NoiseRegularizer: noise map ", k, " must be [N, H, W], [N, 1, H, W] or [H, W], got shape ",
                     shape_to_string(s));
        return s.size() == 2 ? 1 : s[0];
    }
};

}  // namespace ganinv
