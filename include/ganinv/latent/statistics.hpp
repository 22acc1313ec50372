/// @file statistics.hpp
/// @brief Statistics of a generator's W space, estimated as the official projector does (mean
///        and spread of w over N mapped N(0, I) samples; optionally their full covariance), and
///        how a latent code is initialised.
#pragma once

#include "ganinv/core/numpy_rng.hpp"
#include "ganinv/core/rng.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/metrics/latent_distance.hpp"

#include <cmath>
#include <optional>
#include <string>

namespace ganinv {

struct LatentStatistics {
    Tensor<float> w_mean;  ///< [w_dim]
    double w_std = 0.0;    ///< sqrt(sum ||w - w_mean||^2 / N): the expected distance from the mean
    Index samples = 0;
    /// Mean and full covariance of the same samples, when asked for (with_gaussian): the
    /// Mahalanobis distance of codes (metrics/latent_distance.hpp) is measured under it.
    metrics::GaussianFit w_gaussian;
};

/// w = mapping(z) of `samples` z ~ N(0, I) (seed fixed: the same samples every run), batched:
/// [samples, w_dim] (layer 0 of the ws; every layer is the same w without truncation).
template <class G>
Tensor<float> sample_w(G& g, Index samples, std::uint64_t seed = 123) {
    GANINV_CHECK(samples >= 2, ValueError, "sample_w: need at least 2 samples, got ", samples);
    const Index w_dim = g.w_dim(), chunk = 512;
    Rng rng(seed);
    Tensor<float> all({samples, w_dim});
    for (Index b0 = 0; b0 < samples; b0 += chunk) {
        const Index nb = std::min(chunk, samples - b0);
        Tensor<float> z({nb, g.z_dim()});
        rng.fill_normal(z.values());
        const Tensor<float> ws = g.backend().download(g.mapping(g.backend().upload(z)));
        for (Index b = 0; b < nb; ++b)
            std::copy(ws.data() + b * g.num_ws() * w_dim, ws.data() + b * g.num_ws() * w_dim + w_dim,
                      all.data() + (b0 + b) * w_dim);
    }
    return all;
}

/// Mean and spread of w over `samples` mapped samples (the official projector's statistics);
/// with_gaussian also fits their full covariance (w_dim^2 x samples work: opt-in).
template <class G>
LatentStatistics estimate_w_statistics(G& g, Index samples = 10000, std::uint64_t seed = 123, bool with_gaussian = false) {
    GANINV_CHECK(samples >= 2, ValueError, "estimate_w_statistics: need at least 2 samples, got ", samples);
    const Index w_dim = g.w_dim();
    const Tensor<float> all = sample_w(g, samples, seed);
    LatentStatistics st;
    st.samples = samples;
    st.w_mean = Tensor<float>({w_dim}, 0.0f);
    std::vector<double> mean(static_cast<std::size_t>(w_dim), 0.0);
    for (Index s = 0; s < samples; ++s)
        for (Index i = 0; i < w_dim; ++i) mean[static_cast<std::size_t>(i)] += all[s * w_dim + i];
    for (Index i = 0; i < w_dim; ++i) {
        mean[static_cast<std::size_t>(i)] /= static_cast<double>(samples);
        st.w_mean[i] = static_cast<float>(mean[static_cast<std::size_t>(i)]);
    }
    double ss = 0.0;
    for (Index s = 0; s < samples; ++s)
        for (Index i = 0; i < w_dim; ++i) {
            const double d = all[s * w_dim + i] - mean[static_cast<std::size_t>(i)];
            ss += d * d;
        }
    st.w_std = std::sqrt(ss / static_cast<double>(samples));
    if (with_gaussian) st.w_gaussian = metrics::fit_gaussian(all);
    return st;
}

enum class InitKind {
    mean,    ///< the mean w (Z: z = 0, whose image is close to the mean; S: styles of the mean w)
    random,  ///< w = mapping(z), z ~ N(0, I) with `seed` (Z: that z)
    given    ///< `codes`: ws [N, num_ws, w_dim] (or [N, w_dim]) for W/W+/S, z [N, z_dim] for Z
};

struct LatentInit {
    InitKind kind = InitKind::mean;
    std::uint64_t seed = 0;
    Tensor<float> codes;
};

inline InitKind parse_init_kind(const std::string& s) {
    if (s == "mean") return InitKind::mean;
    if (s == "random") return InitKind::random;
    if (s == "given") return InitKind::given;
    throw ValueError(concat("unknown initialisation '", s, "' (mean, random or given)"));
}

}  // namespace ganinv
