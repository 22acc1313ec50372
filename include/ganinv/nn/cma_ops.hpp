/// @file cma_ops.hpp
/// @brief The vector work of one CMA-ES generation (sampling, recombination, evolution paths,
///        rank-one + rank-mu covariance update) written once as small per-row functors that the
///        host CmaEs (optim/cmaes.hpp, through CmaSerialRun), the Cpu backend's loops and the CUDA
///        kernels all run: the device-resident CMA-ES loop (invert/device_cma.hpp) keeps every
///        vector of its rows in backend memory and follows the host CmaEs operation for operation.
///
/// What stays with the caller (optim/cma_core.hpp): the ranking of each row's samples, sigma, the
/// generation counters, the stop tests and, for the full variant, the eigendecomposition (Eigen on
/// the host, every few generations as the tutorial's lazy refresh allows). The functors read the
/// caller's decisions from a command block and leave per-row scalars in an out block.
///
/// Shapes: mean, p_sigma, p_c, diag (sqrt of C's eigenvalues, or of diag(C) when separable), y_w
/// and t are [rows, n]; z and Y are [rows, lambda, n]; C and B (full variant) [rows, n, n]
/// row-major, B's column b the eigenvector of diag[b]. Samples x are [rows * lambda, n] floats
/// (what the objective evaluates), best [rows, n]. Random numbers: z = philox_normal(seed of the
/// row, generation, k * n + j) (core/philox.hpp), so every backend draws the same z.
///
/// Shapes of a backend loop, as for nn/lbfgs_ops.hpp: a map `m(r, j)` over every element of each
/// active row, and a row reduction `t.add(acc, r, j)` in element order (Cpu, host) or in a fixed
/// tree order (CUDA), then `t.finish(r, acc)` for every row (acc all zero for an inactive row).
#pragma once

#include "ganinv/core/host_device.hpp"
#include "ganinv/core/philox.hpp"
#include "ganinv/core/tensor.hpp"

#include <cmath>
#include <cstdint>

namespace ganinv::nn {

/// What the caller asks of a row (the command's flags field).
enum CmaFlag : unsigned {
    kCmaSample = 1u,       ///< cma_sample: draw z and write Y and the row's lambda samples
    kCmaFrozen = 2u,       ///< cma_sample: every sample is the row's best point (a stopped row)
    kCmaImprove = 4u,      ///< cma_update: best = the sample at the command's best index
    kCmaUpdate = 8u,       ///< cma_update: recombination, paths and covariance from the ranked samples
    kCmaSymmetrize = 16u,  ///< cma_update (full): C = (C + C') / 2 after the update, before a decomposition
};

/// The command block, field-major ([field, rows]): flags, sigma, generation (the sample's
/// stream; after a ranking the incremented count, as the h_sigma test wants it), the index of
/// the generation's best sample, then the indices of the mu best samples, best first.
enum CmaCmd : int { kCmaCmdFlags = 0, kCmaCmdSigma, kCmaCmdGeneration, kCmaCmdBest, kCmaCmdOrder };

/// The out block, [field, rows]: what the caller reads back after an update.
enum CmaOut : int {
    kCmaOutPsNorm = 0,  ///< ||p_sigma|| (cma_update)
    kCmaOutMaxSd,       ///< max_j sqrt(C_jj) (cma_stats; the diag when separable)
    kCmaOutDiagMax,     ///< max_j diag_j (cma_stats)
    kCmaOutDiagInvMax,  ///< max_j 1 / diag_j (cma_stats): a max, as the reductions start from 0
    kCmaOutFields
};

/// The strategy's constants (Hansen's tutorial Table 1; sep-CMA's rescaled c_1, c_mu).
struct CmaConstants {
    Index n = 0, lambda = 0, mu = 0;
    bool separable = false;
    double c_sigma = 0, ps_coef = 0;  ///< ps_coef = sqrt(c_sigma (2 - c_sigma) mu_eff)
    double c_c = 0, pc_coef = 0;      ///< pc_coef = sqrt(c_c (2 - c_c) mu_eff)
    double c_1 = 0, c_mu = 0;
    double h_threshold = 0;           ///< (1.4 + 2 / (n + 1)) E||N(0, I)||
};

/// The rows' vectors (see the file comment for shapes) and the command / out blocks.
struct CmaVectors {
    Index rows = 0;
    const double* weights = nullptr;      ///< [mu] recombination weights, summing to 1
    const std::uint64_t* seeds = nullptr;  ///< [rows] Philox keys
    double* mean = nullptr;
    double* ps = nullptr;
    double* pc = nullptr;
    double* diag = nullptr;
    double* C = nullptr;  ///< full variant only
    double* B = nullptr;  ///< full variant only
    double* Y = nullptr;  ///< the samples' steps B D z
    double* yw = nullptr;  ///< sum_i w_i Y_(i)
    double* t = nullptr;   ///< full variant: (B' y_w) / diag, half of C^{-1/2} y_w
    double* hsig = nullptr;  ///< [rows] 1 where h_sigma holds this generation
    float* z = nullptr;
    float* x = nullptr;
    float* best = nullptr;
    const double* cmd = nullptr;  ///< [kCmaCmdOrder + mu, rows]
    double* out = nullptr;        ///< [kCmaOutFields, rows]
};

/// What every functor reads: the constants, the vectors and index arithmetic.
struct CmaTerm {
    CmaConstants k;
    CmaVectors v;
    GANINV_HOST_DEVICE double field(int f, Index r) const { return v.cmd[f * v.rows + r]; }
    GANINV_HOST_DEVICE bool has(Index r, unsigned f) const {
        return (static_cast<unsigned>(field(kCmaCmdFlags, r)) & f) != 0u;
    }
    GANINV_HOST_DEVICE Index order(Index r, Index i) const { return static_cast<Index>(field(kCmaCmdOrder + static_cast<int>(i), r)); }
    GANINV_HOST_DEVICE Index vec(Index r, Index j) const { return r * k.n + j; }
    /// Element j of sample s of row r in a [rows, lambda, n] array (and in x).
    GANINV_HOST_DEVICE Index sample(Index r, Index s, Index j) const { return (r * k.lambda + s) * k.n + j; }
    GANINV_HOST_DEVICE Index mat(Index r, Index a, Index b) const { return (r * k.n + a) * k.n + b; }
    GANINV_HOST_DEVICE double* out(int f, Index r) const { return v.out + f * v.rows + r; }
    GANINV_HOST_DEVICE static double merge(int, double a, double b) { return a > b ? a : b; }
    /// The weight of the old covariance: 1 - c_1 - c_mu, plus c_1 c_c (2 - c_c) while h_sigma stalls p_c.
    GANINV_HOST_DEVICE double keep(Index r) const {
        const double delta = v.hsig[r] != 0.0 ? 0.0 : k.c_c * (2.0 - k.c_c);
        return 1.0 - k.c_1 - k.c_mu + k.c_1 * delta;
    }
};

// ---------------------------------------------------------------- sampling (len = lambda * n)

/// z of the sampled rows: number k * n + j of stream `generation` under the row's key.
struct CmaDraw : CmaTerm {
    GANINV_HOST_DEVICE bool active(Index r) const { return has(r, kCmaSample); }
    GANINV_HOST_DEVICE void operator()(Index r, Index e) const {
        const auto gen = static_cast<std::uint64_t>(field(kCmaCmdGeneration, r));
        v.z[r * k.lambda * k.n + e] = philox_normal(v.seeds[r], gen, static_cast<std::uint64_t>(e));
    }
};

/// Y = B D z (D z when separable) and x = float(mean + sigma Y); a frozen row's samples are its best point.
struct CmaScale : CmaTerm {
    GANINV_HOST_DEVICE bool active(Index r) const { return has(r, kCmaSample | kCmaFrozen); }
    GANINV_HOST_DEVICE void operator()(Index r, Index e) const {
        const Index s = e / k.n, a = e - s * k.n;
        if (has(r, kCmaFrozen)) {
            v.x[sample(r, s, a)] = v.best[vec(r, a)];
            return;
        }
        double y;
        if (k.separable) {
            y = v.diag[vec(r, a)] * static_cast<double>(v.z[sample(r, s, a)]);
        } else {
            y = 0.0;
            for (Index b = 0; b < k.n; ++b)
                y += v.B[mat(r, a, b)] * (v.diag[vec(r, b)] * static_cast<double>(v.z[sample(r, s, b)]));
        }
        v.Y[sample(r, s, a)] = y;
        v.x[sample(r, s, a)] = static_cast<float>(v.mean[vec(r, a)] + field(kCmaCmdSigma, r) * y);
    }
};

// ---------------------------------------------------------------- update (len = n unless noted)

/// best = the generation's best sample, where it beat the row's best value.
struct CmaImprove : CmaTerm {
    GANINV_HOST_DEVICE bool active(Index r) const { return has(r, kCmaImprove); }
    GANINV_HOST_DEVICE void operator()(Index r, Index j) const {
        v.best[vec(r, j)] = v.x[sample(r, static_cast<Index>(field(kCmaCmdBest, r)), j)];
    }
};

/// y_w = sum_i w_i Y_(i) over the mu best samples (best first); mean += sigma y_w.
struct CmaRecombine : CmaTerm {
    GANINV_HOST_DEVICE bool active(Index r) const { return has(r, kCmaUpdate); }
    GANINV_HOST_DEVICE void operator()(Index r, Index j) const {
        double acc = 0.0;
        for (Index i = 0; i < k.mu; ++i) acc += v.weights[i] * v.Y[sample(r, order(r, i), j)];
        v.yw[vec(r, j)] = acc;
        v.mean[vec(r, j)] = v.mean[vec(r, j)] + field(kCmaCmdSigma, r) * acc;
    }
};

/// Full variant, first half of C^{-1/2} y_w = B D^{-1} B' y_w: t_b = (B' y_w)_b / diag_b.
struct CmaWhitenHalf : CmaTerm {
    GANINV_HOST_DEVICE bool active(Index r) const { return !k.separable && has(r, kCmaUpdate); }
    GANINV_HOST_DEVICE void operator()(Index r, Index b) const {
        double acc = 0.0;
        for (Index a = 0; a < k.n; ++a) acc += v.B[mat(r, a, b)] * v.yw[vec(r, a)];
        v.t[vec(r, b)] = acc / v.diag[vec(r, b)];
    }
};

/// p_sigma = (1 - c_sigma) p_sigma + ps_coef C^{-1/2} y_w and its norm; then h_sigma, which
/// stalls p_c while ||p_sigma|| is large (sigma still growing). generation: after the increment.
struct CmaPathSigma : CmaTerm {
    static constexpr int kSums = 1;
    GANINV_HOST_DEVICE bool active(Index r) const { return has(r, kCmaUpdate); }
    GANINV_HOST_DEVICE static double merge(int, double a, double b) { return a + b; }
    GANINV_HOST_DEVICE void add(double* acc, Index r, Index j) const {
        double white;
        if (k.separable) {
            white = v.yw[vec(r, j)] / v.diag[vec(r, j)];
        } else {
            white = 0.0;
            for (Index b = 0; b < k.n; ++b) white += v.B[mat(r, j, b)] * v.t[vec(r, b)];
        }
        const double p = (1.0 - k.c_sigma) * v.ps[vec(r, j)] + k.ps_coef * white;
        v.ps[vec(r, j)] = p;
        acc[0] += p * p;
    }
    GANINV_HOST_DEVICE void finish(Index r, const double* acc) const {
        if (!active(r)) return;
        const double norm = sqrt(acc[0]);
        const double decay = 1.0 - pow(1.0 - k.c_sigma, 2.0 * field(kCmaCmdGeneration, r));
        v.hsig[r] = norm / sqrt(decay) < k.h_threshold ? 1.0 : 0.0;
        *out(kCmaOutPsNorm, r) = norm;
    }
};

/// p_c = (1 - c_c) p_c (+ pc_coef y_w under h_sigma); separable: the diagonal covariance update
/// c = keep c + c_1 p_c^2 + c_mu sum_i w_i Y_(i)^2 and diag = sqrt(c) in the same pass.
struct CmaPathC : CmaTerm {
    GANINV_HOST_DEVICE bool active(Index r) const { return has(r, kCmaUpdate); }
    GANINV_HOST_DEVICE void operator()(Index r, Index j) const {
        double pc = (1.0 - k.c_c) * v.pc[vec(r, j)];
        if (v.hsig[r] != 0.0) pc = pc + k.pc_coef * v.yw[vec(r, j)];
        v.pc[vec(r, j)] = pc;
        if (!k.separable) return;
        double rank_mu = 0.0;
        for (Index i = 0; i < k.mu; ++i) {
            const double y = v.Y[sample(r, order(r, i), j)];
            rank_mu += v.weights[i] * (y * y);
        }
        const double d = v.diag[vec(r, j)];
        const double c = keep(r) * (d * d) + k.c_1 * (pc * pc) + k.c_mu * rank_mu;
        v.diag[vec(r, j)] = sqrt(c > 1e-300 ? c : 1e-300);
    }
};

/// Full variant (len = n * n): C = keep C + c_1 p_c p_c' + c_mu sum_i (sqrt(w_i) Y_(i))(sqrt(w_i) Y_(i))'.
struct CmaCovariance : CmaTerm {
    GANINV_HOST_DEVICE bool active(Index r) const { return !k.separable && has(r, kCmaUpdate); }
    GANINV_HOST_DEVICE void operator()(Index r, Index e) const {
        const Index a = e / k.n, b = e - a * k.n;
        double rank_mu = 0.0;
        for (Index i = 0; i < k.mu; ++i) {
            const double s = sqrt(v.weights[i]);
            rank_mu += (s * v.Y[sample(r, order(r, i), a)]) * (s * v.Y[sample(r, order(r, i), b)]);
        }
        const double c1 = k.c_1 * v.pc[vec(r, a)] * v.pc[vec(r, b)];
        v.C[mat(r, a, b)] = keep(r) * v.C[mat(r, a, b)] + c1 + k.c_mu * rank_mu;
    }
};

/// Full variant (len = n * n): C = (C + C') / 2, which round-off lets drift; element (a, b) with
/// a < b writes both halves (each pair once: no race).
struct CmaSymmetrize : CmaTerm {
    GANINV_HOST_DEVICE bool active(Index r) const { return !k.separable && has(r, kCmaSymmetrize); }
    GANINV_HOST_DEVICE void operator()(Index r, Index e) const {
        const Index a = e / k.n, b = e - a * k.n;
        if (a >= b) return;
        const double s = 0.5 * (v.C[mat(r, a, b)] + v.C[mat(r, b, a)]);
        v.C[mat(r, a, b)] = s;
        v.C[mat(r, b, a)] = s;
    }
};

/// The stop tests' scalars (after a decomposition): max sqrt(C_jj), max diag, max 1 / diag.
struct CmaStats : CmaTerm {
    static constexpr int kSums = 3;
    GANINV_HOST_DEVICE bool active(Index r) const { return has(r, kCmaUpdate); }
    GANINV_HOST_DEVICE void add(double* acc, Index r, Index j) const {
        const double d = v.diag[vec(r, j)];
        double sd = d;
        if (!k.separable) {
            const double c = v.C[mat(r, j, j)];
            sd = sqrt(c > 0.0 ? c : 0.0);
        }
        acc[0] = merge(0, acc[0], sd);
        acc[1] = merge(1, acc[1], d);
        acc[2] = merge(2, acc[2], 1.0 / d);
    }
    GANINV_HOST_DEVICE void finish(Index r, const double* acc) const {
        if (!active(r)) return;
        *out(kCmaOutMaxSd, r) = acc[0];
        *out(kCmaOutDiagMax, r) = acc[1];
        *out(kCmaOutDiagInvMax, r) = acc[2];
    }
};

// ---------------------------------------------------------------- the passes, in order

/// z, then Y and the samples. `run.map(m, len)` / `run.reduce(t, len)` are the caller's loops.
template <class Run>
void cma_sample_passes(const CmaConstants& k, const CmaVectors& v, Run&& run) {
    run.map(CmaDraw{{k, v}}, k.lambda * k.n);
    run.map(CmaScale{{k, v}}, k.lambda * k.n);
}

/// Best point, recombination, both paths, the covariance update and (flagged rows) C's symmetrisation.
template <class Run>
void cma_update_passes(const CmaConstants& k, const CmaVectors& v, Run&& run) {
    run.map(CmaImprove{{k, v}}, k.n);
    run.map(CmaRecombine{{k, v}}, k.n);
    if (!k.separable) run.map(CmaWhitenHalf{{k, v}}, k.n);
    run.reduce(CmaPathSigma{{k, v}}, k.n);
    run.map(CmaPathC{{k, v}}, k.n);
    if (!k.separable) {
        run.map(CmaCovariance{{k, v}}, k.n * k.n);
        run.map(CmaSymmetrize{{k, v}}, k.n * k.n);
    }
}

template <class Run>
void cma_stats_passes(const CmaConstants& k, const CmaVectors& v, Run&& run) {
    run.reduce(CmaStats{{k, v}}, k.n);
}

/// The host's loops: rows one after the other, each row's elements in order.
struct CmaSerialRun {
    Index rows;
    template <class M>
    void map(const M& m, Index len) const {
        for (Index r = 0; r < rows; ++r)
            if (m.active(r))
                for (Index j = 0; j < len; ++j) m(r, j);
    }
    template <class T>
    void reduce(const T& t, Index len) const {
        for (Index r = 0; r < rows; ++r) {
            double acc[T::kSums] = {};
            if (t.active(r))
                for (Index j = 0; j < len; ++j) t.add(acc, r, j);
            t.finish(r, acc);
        }
    }
};

}  // namespace ganinv::nn
