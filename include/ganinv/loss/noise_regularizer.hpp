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
/// Not a `Loss` (it looks at noise maps, not images): evaluate(maps, grads) -> LossResult. One
/// template for both backends: the work is BufferOps<B>::add_noise_regularizer per map
/// (nn/noise_reg_plane.hpp on the host), or BufferOps<B>::add_noise_regularizers for the whole
/// list where the backend has it (CUDA: one set of launches for all maps, cuda/noise_reg_kernels.cuh).
#pragma once

#include "ganinv/backend/cpu_fwd.hpp"
#include "ganinv/loss/detail/common.hpp"

#include <string>
#include <vector>

namespace ganinv {


template <class Backend = Cpu>
class NoiseRegularizer {
public:
    using backend_type = Backend;
    using Buffer = typename detail::BufferOps<Backend>::Buffer;
    static constexpr bool differentiable = true;

    std::string name() const { return "noise_reg"; }

    /// maps: one tensor per noise layer, each [N, H, W], [N, 1, H, W] or [H, W] (one image);
    /// all share N. per_image[n] sums image n's regulariser over all maps. grads (nullable)
    /// receives one gradient per map, shaped like it.
    LossResult evaluate(const std::vector<Buffer>& maps, std::vector<Buffer>* grads) const {
        std::vector<double> per_image;
        if constexpr (kBatched) {
            const Batch b = collect(maps, grads);
            per_image.assign(static_cast<std::size_t>(b.N), 0.0);
            detail::BufferOps<Backend>::add_noise_regularizers(b.maps, b.grads, b.N, per_image);
        } else {
            for_each_map(maps, grads, [&](const Buffer& m, Index N, Index H, Index W, Buffer* g) {
                per_image.resize(static_cast<std::size_t>(N), 0.0);
                detail::BufferOps<Backend>::add_noise_regularizer(m, N, H, W, g, per_image);
            });
        }
        return detail::single_term(name(), std::move(per_image));
    }

    /// values[n] += weight * image n's regulariser, kept in backend memory (no read-back): for the
    /// device inversion loops, on backends whose BufferOps can (CUDA). grads as in evaluate().
    /// V: float (the Adam loop) or double (the L-BFGS loop: with weight 1 into zeros, the maps'
    /// values summed in evaluate()'s order, so the very double that evaluate() returns).
    template <class V = float>
    void evaluate_on_device(const std::vector<Buffer>& maps, std::vector<Buffer>* grads, float weight, V* values) const
        requires requires(const Buffer& b, Buffer* g, std::vector<double>& v, V* out) {
            detail::BufferOps<Backend>::add_noise_regularizer(b, 1, 1, 1, g, v, out, 1.0f);
        }
    {
        std::vector<double> unused;
        if constexpr (kBatched) {
            const Batch b = collect(maps, grads);
            detail::BufferOps<Backend>::add_noise_regularizers(b.maps, b.grads, b.N, unused, values, weight);
        } else {
            for_each_map(maps, grads, [&](const Buffer& m, Index N, Index H, Index W, Buffer* g) {
                detail::BufferOps<Backend>::add_noise_regularizer(m, N, H, W, g, unused, values, weight);
            });
        }
    }

private:
    /// Backends whose BufferOps take the whole list of maps at once (CUDA: one set of launches
    /// for all maps instead of a few per map) get it; the others go map by map.
    static constexpr bool kBatched = requires(const std::vector<const Buffer*>& m, const std::vector<Buffer*>& g,
                                              std::vector<double>& v) {
        detail::BufferOps<Backend>::add_noise_regularizers(m, g, Index{1}, v);
    };
    struct Batch {
        std::vector<const Buffer*> maps;
        std::vector<Buffer*> grads;
        Index N = 0;
    };
    /// for_each_map's checks and gradient sizing, the maps gathered into one list.
    static Batch collect(const std::vector<Buffer>& maps, std::vector<Buffer>* grads) {
        Batch b;
        for_each_map(maps, grads, [&](const Buffer& m, Index N, Index, Index, Buffer* g) {
            b.maps.push_back(&m);
            b.grads.push_back(g);
            b.N = N;
        });
        return b;
    }

    /// Checks the maps (shared batch, non-empty planes), sizes *grads, and calls
    /// fn(map, N, H, W, grad or null) for each.
    template <class Fn>
    static void for_each_map(const std::vector<Buffer>& maps, std::vector<Buffer>* grads, Fn&& fn) {
        GANINV_CHECK(!maps.empty(), ValueError, "NoiseRegularizer: no noise maps given");
        const Index N = batch_of(maps[0], 0);
        if (grads) grads->resize(maps.size());
        for (std::size_t k = 0; k < maps.size(); ++k) {
            const Buffer& m = maps[k];
            GANINV_CHECK(batch_of(m, k) == N, ShapeError, "NoiseRegularizer: noise map ", k, " has shape ",
                         shape_to_string(m.shape()), " but map 0 has batch ", N);
            const Index H = m.shape()[m.shape().size() - 2], W = m.shape().back();
            GANINV_CHECK(H >= 1 && W >= 1, ShapeError, "NoiseRegularizer: noise map ", k, " is empty");
            if (grads) detail::BufferOps<Backend>::ensure((*grads)[k], m.shape(), m);
            fn(m, N, H, W, grads ? &(*grads)[k] : nullptr);
        }
    }

    static Index batch_of(const Buffer& m, std::size_t k) {
        const Shape& s = m.shape();
        GANINV_CHECK(s.size() == 2 || s.size() == 3 || (s.size() == 4 && s[1] == 1), ShapeError,
                     "NoiseRegularizer: noise map ", k, " must be [N, H, W], [N, 1, H, W] or [H, W], got shape ",
                     shape_to_string(s));
        return s.size() == 2 ? 1 : s[0];
    }
};

}  // namespace ganinv
