/// @file sampling.hpp
/// @brief Random codes for the statistics the editing methods need (GANSpace's PCA, StyleSpace's
///        channel spreads, the stddev of codes along a direction): z ~ N(0, I) mapped to w in
///        chunks, so that 100k samples never sit in memory at once.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/numpy_rng.hpp"
#include "ganinv/core/rng.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/edit/directions.hpp"
#include "ganinv/concepts/generator_inputs.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

namespace ganinv::edit {

struct SampleOptions {
    Index chunk = 2048;    ///< codes per mapping call (bounds memory, not results)
    Truncation truncation;  ///< psi 1 (none) by default: statistics of the untruncated W
};

/// z of the official scripts' `--seed N`: numpy RandomState(N).randn(z_dim), shape [1, z_dim].
inline Tensor<float> z_from_seed(std::uint32_t seed, Index z_dim) {
    Tensor<float> z({1, z_dim});
    NumpyRandomState rs(seed);
    rs.randn(z.values());
    return z;
}

/// Draws `count` z ~ N(0, I) from Rng(seed), maps them, and calls f(ws, first) for each chunk,
/// ws being the host tensor [nb, num_ws, w_dim] of samples first .. first + nb - 1. The same seed
/// gives the same codes whatever the chunk size.
template <class G, class F>
void for_each_sampled_ws(G& g, Index count, std::uint64_t seed, F&& f, const SampleOptions& opts = {}) {
    GANINV_CHECK(count > 0, ValueError, "sampling: the number of samples must be positive, got ", count);
    GANINV_CHECK(opts.chunk > 0, ValueError, "sampling: chunk must be positive, got ", opts.chunk);
    Rng rng(seed);
    for (Index first = 0; first < count; first += opts.chunk) {
        const Index nb = std::min(opts.chunk, count - first);
        Tensor<float> z({nb, g.z_dim()});
        rng.fill_normal(z.values());
        const Tensor<float> ws = g.backend().download(g.mapping(g.backend().upload(z), opts.truncation));
        f(ws, first);
    }
}

/// All sampled codes at once, [count, num_ws, w_dim] (for modest counts).
template <class G>
Tensor<float> sample_ws(G& g, Index count, std::uint64_t seed, const SampleOptions& opts = {}) {
    Tensor<float> out({count, g.num_ws(), g.w_dim()});
    const Index per = g.num_ws() * g.w_dim();
    for_each_sampled_ws(
        g, count, seed,
        [&](const Tensor<float>& ws, Index first) { std::copy(ws.values().begin(), ws.values().end(), out.data() + first * per); },
        opts);
    return out;
}

/// Standard deviation of sampled w (first w of each sample: all are equal without truncation
/// cutoff) along each row of `directions` [K, w_dim]. Gives SeFa's unit directions a natural
/// step: "alpha sigmas" then means the same on every direction.
template <class G>
std::vector<float> direction_stddev(G& g, const Tensor<float>& directions, Index count, std::uint64_t seed,
                                    const SampleOptions& opts = {}) {
    GANINV_CHECK(directions.rank() == 2 && directions.dim(1) == g.w_dim(), ShapeError,
                 "direction_stddev: directions must be [K, ", g.w_dim(), "], got ",
                 shape_to_string(directions.shape()));
    GANINV_CHECK(count >= 2, ValueError, "direction_stddev: need at least 2 samples, got ", count);
    const Index k = directions.dim(0), d = g.w_dim();
    std::vector<double> sum(static_cast<std::size_t>(k), 0.0), sum2(static_cast<std::size_t>(k), 0.0);
    std::vector<double> shift;  // projections of the first sample: keeps the sums well conditioned
    for_each_sampled_ws(
        g, count, seed,
        [&](const Tensor<float>& ws, Index) {
            for (Index b = 0; b < ws.dim(0); ++b) {
                const float* w = ws.data() + b * g.num_ws() * d;
                for (Index j = 0; j < k; ++j) {
                    double p = 0;
                    for (Index i = 0; i < d; ++i) p += static_cast<double>(w[i]) * directions[j * d + i];
                    if (shift.size() < static_cast<std::size_t>(k)) shift.push_back(p);
                    p -= shift[static_cast<std::size_t>(j)];
                    sum[static_cast<std::size_t>(j)] += p;
                    sum2[static_cast<std::size_t>(j)] += p * p;
                }
            }
        },
        opts);
    std::vector<float> out(static_cast<std::size_t>(k));
    const double n = static_cast<double>(count);
    for (std::size_t j = 0; j < out.size(); ++j)
        out[j] = static_cast<float>(std::sqrt(std::max(0.0, (sum2[j] - sum[j] * sum[j] / n) / (n - 1.0))));
    return out;
}

}  // namespace ganinv::edit
