/// @file line_search.hpp
/// @brief A strong-Wolfe line search written as a state machine over one scalar function
///        phi(alpha) = f(x + alpha d), so that many rows can search at once: the caller asks every
///        row for its next trial step, evaluates all rows in one batched objective call, and feeds
///        each row its value and slope. Used by Lbfgs.
///
/// Algorithm: Nocedal & Wright, "Numerical Optimization" (2nd ed.), Algorithm 3.5 (bracketing) and
/// 3.6 (zoom), with trial steps from the cubic interpolant of Eq. (3.59), a quadratic interpolant
/// as fallback, and bisection when both fail or land too close to an end of the bracket.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ganinv {

struct WolfeOptions {
    double c1 = 1e-4;               ///< sufficient decrease (Armijo)
    double c2 = 0.9;                ///< curvature; 0.9 is the quasi-Newton value (N&W Sec. 3.1)
    Index max_evaluations = 20;     ///< trials per search before it settles for the best point found
    double max_step = 1e10;         ///< the bracketing phase never proposes a larger alpha
};

namespace detail {

/// Minimiser of the cubic through (a, fa, ga) and (b, fb, gb) (N&W Eq. 3.59); NaN if it has none.
inline double cubic_minimizer(double a, double fa, double ga, double b, double fb, double gb) {
    if (a == b) return std::numeric_limits<double>::quiet_NaN();
    const double d1 = ga + gb - 3.0 * (fa - fb) / (a - b);
    const double disc = d1 * d1 - ga * gb;
    if (!(disc >= 0.0)) return std::numeric_limits<double>::quiet_NaN();
    const double d2 = std::copysign(std::sqrt(disc), b - a);
    const double denom = gb - ga + 2.0 * d2;
    if (denom == 0.0) return std::numeric_limits<double>::quiet_NaN();
    return b - (b - a) * (gb + d2 - d1) / denom;
}

/// Minimiser of the parabola with value fa and slope ga at a and value fb at b; NaN if concave.
inline double quadratic_minimizer(double a, double fa, double ga, double b, double fb) {
    const double h = b - a;
    const double curvature = fb - fa - ga * h;  // = c h^2 for phi = fa + ga t + c t^2
    if (!(curvature > 0.0) || h == 0.0) return std::numeric_limits<double>::quiet_NaN();
    return a - ga * h * h / (2.0 * curvature);
}

}  // namespace detail

enum class LineSearchStatus {
    Searching,  ///< call trial() and observe() again
    Wolfe,      ///< the last observed trial satisfies the strong Wolfe conditions
    Best,       ///< budget or bracket exhausted; best() has sufficient decrease but not curvature
    Failed,     ///< no point with sufficient decrease was found (best() is alpha = 0)
};

/// Strong-Wolfe search along one direction. `best()` is always the lowest point seen that
/// satisfies sufficient decrease (alpha 0 until one is found), which is what the search returns
/// when it runs out of evaluations.
class StrongWolfeSearch {
public:
    struct Point {
        double alpha = 0.0;
        double value = 0.0;
        double slope = 0.0;
    };

    /// f0 and slope0 (< 0) at alpha = 0; alpha0 is the first trial.
    void start(double f0, double slope0, double alpha0, const WolfeOptions& options) {
        GANINV_CHECK(slope0 < 0.0, ValueError, "StrongWolfeSearch: not a descent direction (slope ", slope0, ")");
        GANINV_CHECK(alpha0 > 0.0 && std::isfinite(alpha0), ValueError, "StrongWolfeSearch: bad first step ", alpha0);
        options_ = options;
        f0_ = f0;
        slope0_ = slope0;
        lo_ = Point{0.0, f0, slope0};
        hi_ = Point{};
        zooming_ = false;
        trial_ = std::min(alpha0, options.max_step);
        evaluations_ = 0;
        status_ = LineSearchStatus::Searching;
    }

    double trial() const { return trial_; }
    LineSearchStatus status() const { return status_; }
    const Point& best() const { return lo_; }
    Index evaluations() const { return evaluations_; }

    /// Ends the search early (the caller saw that trial() would not move the point, e.g. the step
    /// is below float resolution): keep the best point if it moved, otherwise report failure.
    void finish() { settle(); }

    /// Feeds phi(trial()) and phi'(trial()). Returns true when this trial became best(), so the
    /// caller knows to keep its gradient.
    bool observe(double value, double slope) {
        GANINV_CHECK(status_ == LineSearchStatus::Searching, ValueError, "StrongWolfeSearch: observe() after the end");
        ++evaluations_;
        const Point cur{trial_, value, slope};
        const bool finite = std::isfinite(value) && std::isfinite(slope);
        const bool armijo = finite && value <= f0_ + options_.c1 * cur.alpha * slope0_ && value < lo_.value;
        bool became_best = false;

        if (!zooming_) {
            if (!armijo) {
                // Too far (or NaN/inf there): the minimiser lies between best and this point.
                hi_ = cur;
                zooming_ = true;
            } else if (std::abs(slope) <= -options_.c2 * slope0_) {
                lo_ = cur;
                status_ = LineSearchStatus::Wolfe;
                return true;
            } else if (slope >= 0.0) {
                // Went past a minimiser while still decreasing enough: bracket [cur, old best].
                hi_ = lo_;
                lo_ = cur;
                became_best = true;
                zooming_ = true;
            } else {
                // Still going down steeply: extrapolate, at least a little and at most 10x.
                const double lo_bound = cur.alpha + 0.01 * (cur.alpha - lo_.alpha);
                const double hi_bound = std::min(10.0 * cur.alpha, options_.max_step);
                double next = detail::cubic_minimizer(lo_.alpha, lo_.value, lo_.slope, cur.alpha, value, slope);
                if (!std::isfinite(next) || next < lo_bound || next > hi_bound) next = hi_bound;
                lo_ = cur;
                became_best = true;
                if (next <= cur.alpha) {  // pinned at max_step
                    settle();
                    return true;
                }
                trial_ = next;
            }
        } else {
            if (!armijo) {
                hi_ = cur;
            } else {
                if (std::abs(slope) <= -options_.c2 * slope0_) {
                    lo_ = cur;
                    status_ = LineSearchStatus::Wolfe;
                    return true;
                }
                if (slope * (hi_.alpha - lo_.alpha) >= 0.0) hi_ = lo_;
                lo_ = cur;
                became_best = true;
            }
        }

        if (zooming_) {
            if (evaluations_ >= options_.max_evaluations) {
                settle();
                return became_best;
            }
            const double width = std::abs(hi_.alpha - lo_.alpha);
            if (width <= 1e-14 * std::max(1.0, std::abs(lo_.alpha))) {
                settle();
                return became_best;
            }
            trial_ = zoom_trial();
        } else if (evaluations_ >= options_.max_evaluations) {
            settle();
        }
        return became_best;
    }

private:
    // Interpolate inside [lo, hi]; keep 10% away from both ends so a bad model cannot stall the
    // bracket, and shrink hard towards lo when hi is not finite (NaN/overflow): then nothing
    // is known about phi there except that it must be avoided.
    double zoom_trial() const {
        const double a = lo_.alpha, b = hi_.alpha;
        const double left = std::min(a, b), right = std::max(a, b), w = right - left;
        if (!std::isfinite(hi_.value) || !std::isfinite(hi_.slope)) return a + 0.1 * (b - a);
        double t = detail::cubic_minimizer(a, lo_.value, lo_.slope, b, hi_.value, hi_.slope);
        if (!std::isfinite(t) || t < left + 0.1 * w || t > right - 0.1 * w)
            t = detail::quadratic_minimizer(a, lo_.value, lo_.slope, b, hi_.value);
        if (!std::isfinite(t) || t < left + 0.1 * w || t > right - 0.1 * w) t = 0.5 * (a + b);
        return t;
    }

    void settle() { status_ = lo_.alpha > 0.0 ? LineSearchStatus::Best : LineSearchStatus::Failed; }

    WolfeOptions options_{};
    double f0_ = 0.0;
    double slope0_ = -1.0;
    Point lo_{}, hi_{};
    bool zooming_ = false;
    double trial_ = 1.0;
    Index evaluations_ = 0;
    LineSearchStatus status_ = LineSearchStatus::Failed;
};

}  // namespace ganinv
