/// @file lbfgs_ops.hpp
/// @brief The L-BFGS work a backend runs for the device-resident L-BFGS loop
///        (invert/device_lbfgs.hpp): the data it works on, and its per-row math written once as
///        small functors that the Cpu loops and the CUDA kernels both run.
///
/// Every vector of a row (the point, its gradient, the trial point, the direction, the history
/// pairs) stays in backend memory; per row, the host sees only scalars: the line search's value
/// and slope, whether a trial point moved, the gradient's max-norm, the number of stored pairs.
/// Coefficients of the two-loop recursion (rho, alpha, beta, gamma) never leave the backend.
///
/// The arithmetic is the host Lbfgs's (optim/lbfgs.hpp) operation for operation: points in float
/// as evaluated, gradients in float as the objective returns them, everything derived from them
/// (direction, s_k, y_k, dot products) in double. A backend runs the functors in two shapes:
///  - a map, `m(r, j)` for every element j of every row r with `m.active(r)`;
///  - a row reduction: `t.add(acc, r, j)` over the elements of each active row (kSums values,
///    combined with `merge`), then `t.finish(r, acc)` once per row, active or not (acc all zero
///    for an inactive row). Cpu sums each row's elements in order, as the host Lbfgs does;
///    CUDA in a fixed tree order (deterministic, not bitwise the host's).
/// An `add` may also write element j of its row (each element is visited exactly once).
#pragma once

#include "ganinv/core/host_device.hpp"
#include "ganinv/core/tensor.hpp"

#include <cmath>

namespace ganinv::nn {

/// What the host asks of a row (bits of LbfgsRows::flags).
enum LbfgsFlag : unsigned {
    kLbfgsRun = 1u,      ///< lbfgs_direction: compute this row's direction
    kLbfgsReset = 2u,    ///< lbfgs_trial: d = -g and forget the history (steepest descent)
    kLbfgsKeep = 4u,     ///< lbfgs_trial / lbfgs_accept first: g_best = g_trial (the last trial became the best)
    kLbfgsWrite = 8u,    ///< lbfgs_trial: trial = x + step * d; lbfgs_slope: its slope
    kLbfgsAccept = 16u,  ///< lbfgs_accept: x = x + step * d, g = g_best, store the pair if it has curvature
    kLbfgsClear = 32u,   ///< lbfgs_accept: forget the history (the search failed along a quasi-Newton direction)
};

/// The fields of LbfgsRows::out, each [rows]: what the host reads back.
enum LbfgsOut : int {
    kLbfgsOutMaxAbs = 0,  ///< max |g| (lbfgs_direction; NaN if g has one)
    kLbfgsOutSlope0,      ///< g'd (lbfgs_direction)
    kLbfgsOutGG,          ///< g'g (lbfgs_direction: the slope of steepest descent is -g'g)
    kLbfgsOutPairs,       ///< pairs in the history (lbfgs_direction)
    kLbfgsOutMoved,       ///< 1 if float(x + step * d) differs from x anywhere (lbfgs_trial)
    kLbfgsOutSlope,       ///< g_trial'd (lbfgs_slope)
    kLbfgsOutLoss,        ///< the loss at the point evaluated last (the loop's evaluation, where the loss can)
    kLbfgsOutReg,         ///< the noise regulariser there, unweighted (likewise)
    kLbfgsOutFields
};

/// The vectors of a batch of rows, each [rows, len] row-major; s and y are rings of `history`
/// pairs, [history, rows, len].
struct LbfgsVectors {
    Index rows = 0, len = 0, history = 0;
    float* x = nullptr;        ///< the accepted point, exactly as evaluated
    float* g = nullptr;        ///< the gradient at x
    float* trial = nullptr;    ///< the point evaluated last
    float* g_trial = nullptr;  ///< the gradient there
    float* g_best = nullptr;   ///< the gradient at the best trial of the current search
    double* d = nullptr;       ///< the search direction
    double* s = nullptr;       ///< x_{k+1} - x_k of the stored pairs
    double* y = nullptr;       ///< g_{k+1} - g_k of the stored pairs
};

/// Per-row scalars in backend memory. head/count is the history ring of each row (advanced by
/// lbfgs_accept when a pair is stored); rho, sy, yy describe each stored pair; alpha and coef
/// are the two-loop recursion's scratch. step and flags are the host's command.
struct LbfgsRows {
    double* head = nullptr;   ///< [rows] the slot the next pair goes to
    double* count = nullptr;  ///< [rows] stored pairs (<= history)
    double* slot = nullptr;   ///< [rows] where lbfgs_accept stores this step's pair, -1: not stored
    double* coef = nullptr;   ///< [rows] alpha_k - beta_k of the second loop
    double* rho = nullptr;    ///< [history, rows] 1 / s'y
    double* sy = nullptr;     ///< [history, rows] s'y
    double* yy = nullptr;     ///< [history, rows] y'y
    double* alpha = nullptr;  ///< [history, rows] the first loop's alpha_k
    const double* step = nullptr;   ///< [rows] the step along d to write or accept
    const double* flags = nullptr;  ///< [rows] LbfgsFlag bits
    double* out = nullptr;          ///< [kLbfgsOutFields, rows]
};

/// Whether a pair goes into the history: Wolfe guarantees s'y > 0 in exact arithmetic, float
/// rounding of the point can break it, and a pair without positive curvature would make the
/// inverse Hessian model indefinite.
GANINV_HOST_DEVICE inline bool lbfgs_keeps_pair(double sy, double ss, double yy) {
    return sy > 1e-12 * sqrt(ss * yy) && sy > 0.0;
}

/// The float point at step alpha along d from x (what the objective will evaluate).
GANINV_HOST_DEVICE inline float lbfgs_point(float x, double alpha, double d) {
    return static_cast<float>(static_cast<double>(x) + alpha * d);
}

/// What every functor reads: the vectors, the per-row scalars and index arithmetic.
struct LbfgsTerm {
    LbfgsVectors v;
    LbfgsRows w;
    GANINV_HOST_DEVICE unsigned flags(Index r) const { return static_cast<unsigned>(w.flags[r]); }
    GANINV_HOST_DEVICE bool has(Index r, unsigned f) const { return (flags(r) & f) != 0u; }
    GANINV_HOST_DEVICE Index pairs(Index r) const { return static_cast<Index>(w.count[r]); }
    /// The slot of row r's k-th newest pair.
    GANINV_HOST_DEVICE Index slot(Index r, Index k) const {
        return (static_cast<Index>(w.head[r]) - 1 - k + 2 * v.history) % v.history;
    }
    GANINV_HOST_DEVICE Index at(Index r, Index j) const { return r * v.len + j; }
    GANINV_HOST_DEVICE Index pair_at(Index slot, Index r, Index j) const { return (slot * v.rows + r) * v.len + j; }
    GANINV_HOST_DEVICE double* out(int field, Index r) const { return w.out + field * v.rows + r; }
    GANINV_HOST_DEVICE static double merge(int, double a, double b) { return a + b; }
};

// ---------------------------------------------------------------- the two-loop recursion
// (Nocedal & Wright, Algorithm 7.4; H0 = gamma I with gamma = s'y / y'y of the newest pair.)

/// d = g on the rows to run.
struct LbfgsDirectionStart : LbfgsTerm {
    GANINV_HOST_DEVICE bool active(Index r) const { return has(r, kLbfgsRun); }
    GANINV_HOST_DEVICE void operator()(Index r, Index j) const { v.d[at(r, j)] = static_cast<double>(v.g[at(r, j)]); }
};

/// First loop (k = 0 newest, ...): alpha_k = rho_i s_i'd. Second loop: coef = alpha_k - rho_i y_i'd.
struct LbfgsTwoLoopDot : LbfgsTerm {
    static constexpr int kSums = 1;
    Index k = 0;
    bool second = false;
    GANINV_HOST_DEVICE bool active(Index r) const { return has(r, kLbfgsRun) && k < pairs(r); }
    GANINV_HOST_DEVICE void add(double* acc, Index r, Index j) const {
        const double* p = second ? v.y : v.s;
        acc[0] += p[pair_at(slot(r, k), r, j)] * v.d[at(r, j)];
    }
    GANINV_HOST_DEVICE void finish(Index r, const double* acc) const {
        if (!active(r)) return;
        const Index i = slot(r, k);
        const double a = w.rho[i * v.rows + r] * acc[0];
        if (second) w.coef[r] = w.alpha[k * v.rows + r] - a;
        else w.alpha[k * v.rows + r] = a;
    }
};

/// First loop: d -= alpha_k y_i. Second loop: d += coef s_i.
struct LbfgsTwoLoopAxpy : LbfgsTerm {
    Index k = 0;
    bool second = false;
    GANINV_HOST_DEVICE bool active(Index r) const { return has(r, kLbfgsRun) && k < pairs(r); }
    GANINV_HOST_DEVICE void operator()(Index r, Index j) const {
        const Index p = pair_at(slot(r, k), r, j);
        if (second) v.d[at(r, j)] += w.coef[r] * v.s[p];
        else v.d[at(r, j)] += -w.alpha[k * v.rows + r] * v.y[p];
    }
};

/// d *= gamma = s'y / y'y of the newest pair (rows with a history).
struct LbfgsGamma : LbfgsTerm {
    GANINV_HOST_DEVICE bool active(Index r) const { return has(r, kLbfgsRun) && pairs(r) > 0; }
    GANINV_HOST_DEVICE void operator()(Index r, Index j) const {
        const Index i = slot(r, 0);
        v.d[at(r, j)] *= w.sy[i * v.rows + r] / w.yy[i * v.rows + r];
    }
};

/// d = -d (now -H g), and the row's scalars for the host: g'd, g'g, max |g|, pairs.
struct LbfgsDirectionEnd : LbfgsTerm {
    static constexpr int kSums = 3;
    GANINV_HOST_DEVICE bool active(Index r) const { return has(r, kLbfgsRun); }
    GANINV_HOST_DEVICE void add(double* acc, Index r, Index j) const {
        const double dj = -v.d[at(r, j)], g = static_cast<double>(v.g[at(r, j)]);
        v.d[at(r, j)] = dj;
        acc[0] += g * dj;
        acc[1] += g * g;
        const double a = fabs(g);
        acc[2] = merge(2, acc[2], a);
    }
    /// Sums, and a max that keeps a NaN (the host must see a non-finite gradient).
    GANINV_HOST_DEVICE static double merge(int i, double a, double b) {
        if (i < 2) return a + b;
        return (a != a || b != b) ? (a != a ? a : b) : (a > b ? a : b);
    }
    GANINV_HOST_DEVICE void finish(Index r, const double* acc) const {
        if (!active(r)) return;
        *out(kLbfgsOutSlope0, r) = acc[0];
        *out(kLbfgsOutGG, r) = acc[1];
        *out(kLbfgsOutMaxAbs, r) = acc[2];
        *out(kLbfgsOutPairs, r) = w.count[r];
    }
};

/// The direction passes in order; `run.map(f)` and `run.reduce(t)` are the backend's loops.
/// `max_pairs` bounds every row's history (the loops run k < max_pairs; rows with fewer skip).
template <class Run>
void lbfgs_direction_passes(const LbfgsVectors& v, const LbfgsRows& w, Index max_pairs, Run&& run) {
    run.map(LbfgsDirectionStart{{v, w}});
    for (Index k = 0; k < max_pairs; ++k) {
        run.reduce(LbfgsTwoLoopDot{{v, w}, k, false});
        run.map(LbfgsTwoLoopAxpy{{v, w}, k, false});
    }
    run.map(LbfgsGamma{{v, w}});
    for (Index k = max_pairs; k-- > 0;) {
        run.reduce(LbfgsTwoLoopDot{{v, w}, k, true});
        run.map(LbfgsTwoLoopAxpy{{v, w}, k, true});
    }
    run.reduce(LbfgsDirectionEnd{{v, w}});
}

// ---------------------------------------------------------------- line search and acceptance

/// Keep (g_best = g_trial), reset (d = -g, history forgotten) and write the trial point
/// x + step d, with the row's "moved" flag: whether any float coordinate changed.
struct LbfgsTrial : LbfgsTerm {
    static constexpr int kSums = 1;
    GANINV_HOST_DEVICE bool active(Index r) const { return has(r, kLbfgsKeep | kLbfgsReset | kLbfgsWrite); }
    GANINV_HOST_DEVICE void add(double* acc, Index r, Index j) const {
        const Index e = at(r, j);
        if (has(r, kLbfgsKeep)) v.g_best[e] = v.g_trial[e];
        if (has(r, kLbfgsReset)) v.d[e] = -static_cast<double>(v.g[e]);
        if (has(r, kLbfgsWrite)) {
            const float t = lbfgs_point(v.x[e], w.step[r], v.d[e]);
            v.trial[e] = t;
            acc[0] += t != v.x[e] ? 1.0 : 0.0;
        }
    }
    GANINV_HOST_DEVICE void finish(Index r, const double* acc) const {
        if (has(r, kLbfgsWrite)) *out(kLbfgsOutMoved, r) = acc[0] > 0.0 ? 1.0 : 0.0;
        if (has(r, kLbfgsReset)) w.head[r] = w.count[r] = 0.0;
    }
};

/// The slope of the written rows at their trial point: g_trial'd.
struct LbfgsSlope : LbfgsTerm {
    static constexpr int kSums = 1;
    GANINV_HOST_DEVICE bool active(Index r) const { return has(r, kLbfgsWrite); }
    GANINV_HOST_DEVICE void add(double* acc, Index r, Index j) const {
        acc[0] += static_cast<double>(v.g_trial[at(r, j)]) * v.d[at(r, j)];
    }
    GANINV_HOST_DEVICE void finish(Index r, const double* acc) const {
        if (active(r)) *out(kLbfgsOutSlope, r) = acc[0];
    }
};

/// Acceptance, first pass: keep, then s'y, s's and y'y of the new pair (s and y made on the fly),
/// the curvature test, and the ring update: a stored pair goes to slot `head`.
struct LbfgsAcceptDots : LbfgsTerm {
    static constexpr int kSums = 3;
    GANINV_HOST_DEVICE bool active(Index r) const { return has(r, kLbfgsKeep | kLbfgsAccept); }
    GANINV_HOST_DEVICE void add(double* acc, Index r, Index j) const {
        const Index e = at(r, j);
        if (has(r, kLbfgsKeep)) v.g_best[e] = v.g_trial[e];
        if (!has(r, kLbfgsAccept)) return;
        const double s = static_cast<double>(lbfgs_point(v.x[e], w.step[r], v.d[e])) - static_cast<double>(v.x[e]);
        const double y = static_cast<double>(v.g_best[e]) - static_cast<double>(v.g[e]);
        acc[0] += s * y;
        acc[1] += s * s;
        acc[2] += y * y;
    }
    GANINV_HOST_DEVICE void finish(Index r, const double* acc) const {
        w.slot[r] = -1.0;
        if (has(r, kLbfgsAccept) && lbfgs_keeps_pair(acc[0], acc[1], acc[2])) {
            const Index i = static_cast<Index>(w.head[r]);
            w.rho[i * v.rows + r] = 1.0 / acc[0];
            w.sy[i * v.rows + r] = acc[0];
            w.yy[i * v.rows + r] = acc[2];
            w.slot[r] = static_cast<double>(i);
            w.head[r] = static_cast<double>((i + 1) % v.history);
            const double full = static_cast<double>(v.history);
            w.count[r] = w.count[r] + 1.0 < full ? w.count[r] + 1.0 : full;
        }
        if (has(r, kLbfgsClear)) w.head[r] = w.count[r] = 0.0;
    }
};

/// Acceptance, second pass: the pair into its slot (when stored), x and g to the new point.
struct LbfgsAcceptMove : LbfgsTerm {
    GANINV_HOST_DEVICE bool active(Index r) const { return has(r, kLbfgsAccept); }
    GANINV_HOST_DEVICE void operator()(Index r, Index j) const {
        const Index e = at(r, j);
        const float xn = lbfgs_point(v.x[e], w.step[r], v.d[e]);
        if (w.slot[r] >= 0.0) {
            const Index p = pair_at(static_cast<Index>(w.slot[r]), r, j);
            v.s[p] = static_cast<double>(xn) - static_cast<double>(v.x[e]);
            v.y[p] = static_cast<double>(v.g_best[e]) - static_cast<double>(v.g[e]);
        }
        v.x[e] = xn;
        v.g[e] = v.g_best[e];
    }
};

// ---------------------------------------------------------------- rows <-> generator inputs

/// Columns [offset, offset + len) of the [rows, width] L-BFGS vectors and the generator input
/// they feed: `input` is [rows, repeat, len] (W: the row's code once per layer), written from a
/// point; the gradient of those columns is the sum over the repeats of `grad` ([rows, repeat,
/// len]) plus grad2_scale * grad2 ([rows, len], may be null: the noise regulariser).
struct RowBlock {
    Index offset = 0, len = 0, repeat = 1;
    float* input = nullptr;
    const float* grad = nullptr;
    const float* grad2 = nullptr;
    float grad2_scale = 0.0f;
};

/// Element j of row r's gradient in block b: float sums in the order the host objective makes
/// them (WSpace::backward adds the layers one by one; the regulariser is added last).
GANINV_HOST_DEVICE inline float row_block_grad(const RowBlock& b, Index r, Index j) {
    float a = 0.0f;
    for (Index l = 0; l < b.repeat; ++l) a += b.grad[(r * b.repeat + l) * b.len + j];
    if (b.grad2) a += b.grad2_scale * b.grad2[r * b.len + j];
    return a;
}

}  // namespace ganinv::nn
