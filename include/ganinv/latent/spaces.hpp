/// @file spaces.hpp
/// @brief The latent spaces an inverter can optimise: Z (through the mapping network), W (one w
///        for every layer), W+ (one w per layer) and S (the per-layer styles after the affine
///        layers). Parameters are host rows [N, dim]; the image work runs on the generator's backend.
#pragma once

#include "ganinv/concepts/latent_space.hpp"
#include "ganinv/latent/statistics.hpp"
#include "ganinv/models/stylegan2_cache.hpp"

#include <vector>

namespace ganinv {

namespace detail {

/// ws [N, num_ws, w_dim] from [N, num_ws, w_dim], [N, w_dim] or [num_ws, w_dim].
inline Tensor<float> as_ws(const Tensor<float>& codes, Index n, Index num_ws, Index w_dim, const char* what) {
    const Shape& s = codes.shape();
    Tensor<float> ws({n, num_ws, w_dim});
    if (s.size() == 3 && s[0] == n && s[1] == num_ws && s[2] == w_dim) return codes;
    const bool per_image_w = s.size() == 2 && s[0] == n && s[1] == w_dim;
    const bool shared_ws = s.size() == 2 && s[0] == num_ws && s[1] == w_dim;
    GANINV_CHECK(per_image_w || shared_ws, ShapeError, what, ": initial codes of shape ", shape_to_string(s),
                 " fit neither [", n, ", ", num_ws, ", ", w_dim, "] nor [", n, ", ", w_dim, "]");
    for (Index b = 0; b < n; ++b)
        for (Index l = 0; l < num_ws; ++l)
            for (Index i = 0; i < w_dim; ++i)
                ws[(b * num_ws + l) * w_dim + i] = per_image_w ? codes[b * w_dim + i] : codes[l * w_dim + i];
    return ws;
}

/// The starting ws of W, W+ and S for every init kind.
template <class G>
Tensor<float> initial_ws(G& g, const LatentStatistics& stats, const LatentInit& init, Index n, const char* what) {
    const Index L = g.num_ws(), D = g.w_dim();
    if (init.kind == InitKind::given) return as_ws(init.codes, n, L, D, what);
    Tensor<float> w({n, D});
    if (init.kind == InitKind::mean) {
        GANINV_CHECK(stats.w_mean.numel() == D, ValueError, what, ": mean initialisation needs W statistics");
        for (Index b = 0; b < n; ++b) std::copy(stats.w_mean.data(), stats.w_mean.data() + D, w.data() + b * D);
        return as_ws(w, n, L, D, what);
    }
    Tensor<float> z({n, g.z_dim()});
    Rng(init.seed).fill_normal(z.values());
    return g.backend().download(g.mapping(g.backend().upload(z)));
}

template <class G>
struct SpaceCacheBase {
    typename G::Cache synthesis;
    typename G::Buffer ws;
    SynthesisGradients<typename G::backend_type> grads;  ///< filled by backward (noise gradients)
};

/// Image from host ws; the cache keeps the device ws for the backward.
template <class G>
typename G::Buffer synthesize_ws(G& g, const Tensor<float>& ws, const NoiseInput<typename G::backend_type>& noise,
                                 SpaceCacheBase<G>& c) {
    c.ws = g.backend().upload(ws);
    return g.synthesis(c.ws, noise, &c.synthesis);
}

/// dL/dws on the host (noise gradients stay in the cache).
template <class G>
Tensor<float> ws_gradient(G& g, SpaceCacheBase<G>& c, const typename G::Buffer& grad_img) {
    return g.backend().download(g.synthesis_backward_ws(c.synthesis, grad_img, nullptr, &c.grads));
}

}  // namespace detail

/// One w per image, shared by every layer (the official projector's space).
struct WSpace {
    static constexpr const char* name = "w";
    static constexpr bool w_like = true;
    template <class G>
    using Cache = detail::SpaceCacheBase<G>;

    template <class G>
    Index dim(const G& g) const { return g.w_dim(); }

    template <class G>
    Tensor<float> initial(G& g, const LatentStatistics& st, const LatentInit& init, Index n) {
        const Tensor<float> ws = detail::initial_ws(g, st, init, n, "W space");
        Tensor<float> p({n, g.w_dim()});
        for (Index b = 0; b < n; ++b)  // a given per-layer code collapses to its layer mean
            for (Index i = 0; i < g.w_dim(); ++i) {
                double acc = 0;
                for (Index l = 0; l < g.num_ws(); ++l) acc += ws[(b * g.num_ws() + l) * g.w_dim() + i];
                p[b * g.w_dim() + i] = static_cast<float>(acc / static_cast<double>(g.num_ws()));
            }
        return p;
    }
    template <class G>
    Tensor<float> to_ws(G& g, const Tensor<float>& p) const {
        return detail::as_ws(p, p.dim(0), g.num_ws(), g.w_dim(), "W space");
    }
    template <class G>
    typename G::Buffer forward(G& g, const Tensor<float>& p, const NoiseInput<typename G::backend_type>& noise,
                               Cache<G>& c) {
        return detail::synthesize_ws(g, to_ws(g, p), noise, c);
    }
    template <class G>
    Tensor<float> backward(G& g, Cache<G>& c, const typename G::Buffer& grad_img) {
        const Tensor<float> gws = detail::ws_gradient(g, c, grad_img);
        const Index n = gws.dim(0), L = g.num_ws(), D = g.w_dim();
        Tensor<float> gp({n, D}, 0.0f);
        for (Index b = 0; b < n; ++b)
            for (Index l = 0; l < L; ++l)
                for (Index i = 0; i < D; ++i) gp[b * D + i] += gws[(b * L + l) * D + i];
        return gp;
    }
};

/// One w per layer and image (Abdal et al.'s W+).
struct WPlusSpace {
    static constexpr const char* name = "wplus";
    static constexpr bool w_like = true;
    template <class G>
    using Cache = detail::SpaceCacheBase<G>;

    template <class G>
    Index dim(const G& g) const { return g.num_ws() * g.w_dim(); }
    template <class G>
    Tensor<float> initial(G& g, const LatentStatistics& st, const LatentInit& init, Index n) {
        return detail::initial_ws(g, st, init, n, "W+ space").reshape({n, dim(g)});
    }
    template <class G>
    Tensor<float> to_ws(G& g, const Tensor<float>& p) const {
        Tensor<float> ws = p;
        return ws.reshape({p.dim(0), g.num_ws(), g.w_dim()});
    }
    template <class G>
    typename G::Buffer forward(G& g, const Tensor<float>& p, const NoiseInput<typename G::backend_type>& noise,
                               Cache<G>& c) {
        return detail::synthesize_ws(g, to_ws(g, p), noise, c);
    }
    template <class G>
    Tensor<float> backward(G& g, Cache<G>& c, const typename G::Buffer& grad_img) {
        Tensor<float> gws = detail::ws_gradient(g, c, grad_img);
        return gws.reshape({gws.dim(0), dim(g)});
    }
};

/// z through the mapping network. There is no "mean z": mean initialisation draws z from `seed`.
struct ZSpace {
    static constexpr const char* name = "z";
    static constexpr bool w_like = false;
    template <class G>
    struct Cache : detail::SpaceCacheBase<G> {
        typename G::MapCache mapping;
    };

    template <class G>
    Index dim(const G& g) const { return g.z_dim(); }
    template <class G>
    Tensor<float> initial(G& g, const LatentStatistics&, const LatentInit& init, Index n) {
        if (init.kind == InitKind::given) {
            GANINV_CHECK(init.codes.rank() == 2 && init.codes.dim(0) == n && init.codes.dim(1) == g.z_dim(), ShapeError,
                         "Z space: initial codes must be z [", n, ", ", g.z_dim(), "], got ",
                         shape_to_string(init.codes.shape()));
            return init.codes;
        }
        Tensor<float> z({n, g.z_dim()});
        Rng(init.seed).fill_normal(z.values());
        return z;
    }
    template <class G>
    Tensor<float> to_ws(G& g, const Tensor<float>& p) const {
        return g.backend().download(g.mapping(g.backend().upload(p)));
    }
    template <class G>
    typename G::Buffer forward(G& g, const Tensor<float>& p, const NoiseInput<typename G::backend_type>& noise,
                               Cache<G>& c) {
        c.ws = g.mapping(g.backend().upload(p), {}, &c.mapping);
        return g.synthesis(c.ws, noise, &c.synthesis);
    }
    template <class G>
    Tensor<float> backward(G& g, Cache<G>& c, const typename G::Buffer& grad_img) {
        const auto gws = g.synthesis_backward_ws(c.synthesis, grad_img, nullptr, &c.grads);
        return g.backend().download(g.mapping_backward(c.mapping, gws));
    }
};

/// The per-layer styles after the affine layers (StyleSpace), optimised directly. Its codes are
/// not ws: to_ws returns the ws the styles started from.
struct SSpace {
    static constexpr const char* name = "s";
    static constexpr bool w_like = false;
    template <class G>
    using Cache = detail::SpaceCacheBase<G>;

    template <class G>
    Index dim(const G& g) const { return g.style_dim(); }
    template <class G>
    Tensor<float> initial(G& g, const LatentStatistics& st, const LatentInit& init, Index n) {
        initial_ws_ = detail::initial_ws(g, st, init, n, "S space");
        return g.backend().download(g.styles(g.backend().upload(initial_ws_)));
    }
    template <class G>
    Tensor<float> to_ws(G&, const Tensor<float>&) const {
        return initial_ws_;
    }
    template <class G>
    typename G::Buffer forward(G& g, const Tensor<float>& p, const NoiseInput<typename G::backend_type>& noise,
                               Cache<G>& c) {
        return g.synthesis_from_styles(g.backend().upload(p), noise, &c.synthesis);
    }
    template <class G>
    Tensor<float> backward(G& g, Cache<G>& c, const typename G::Buffer& grad_img) {
        c.grads = g.synthesis_backward(c.synthesis, grad_img);
        return g.backend().download(c.grads.styles);
    }

private:
    Tensor<float> initial_ws_;
};

}  // namespace ganinv
