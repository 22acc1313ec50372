/// @file stopper.hpp
/// @brief `ImageStopper`: the per-image stop rule of the inversion loops (InverterOptions::
///        target_loss, patience, min_relative_improvement) on the host, shared by the Inverter's
///        host loops and the device L-BFGS loop (whose per-row values come back every step anyway).
///        The device Adam loop runs the same rule as data (nn::StopRule).
#pragma once

#include "ganinv/invert/options.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace ganinv {

/// Per-image stopping on a loss threshold or on stagnation.
class ImageStopper {
public:
    ImageStopper(const InverterOptions& o, Index n)
        : o_(o), best_(static_cast<std::size_t>(n), std::numeric_limits<double>::infinity()),
          since_(static_cast<std::size_t>(n), 0), stopped_(static_cast<std::size_t>(n), -1) {}
    bool running() const {
        for (Index s : stopped_) if (s < 0) return true;
        return false;
    }
    bool stopped(Index i) const { return stopped_[static_cast<std::size_t>(i)] >= 0; }
    Index count_running() const {
        Index c = 0;
        for (Index s : stopped_) c += s < 0;
        return c;
    }
    void update(const std::vector<double>& v, Index step) {
        for (std::size_t i = 0; i < v.size() && i < best_.size(); ++i) {
            if (stopped_[i] >= 0) continue;
            if (v[i] < best_[i] * (1.0 - o_.min_relative_improvement) || !std::isfinite(best_[i])) {
                best_[i] = v[i];
                since_[i] = 0;
            } else {
                ++since_[i];
            }
            if ((o_.target_loss && v[i] <= *o_.target_loss) || (o_.patience > 0 && since_[i] >= o_.patience))
                stopped_[i] = step + 1;
        }
    }
    /// Rows that stopped keep their parameters (the batch still runs as one).
    void freeze_stopped(Tensor<float>& params, const Tensor<float>& before) const {
        const Index dim = params.dim(1);
        for (std::size_t i = 0; i < stopped_.size(); ++i)
            if (stopped_[i] >= 0)
                std::copy(before.data() + static_cast<Index>(i) * dim, before.data() + static_cast<Index>(i + 1) * dim,
                          params.data() + static_cast<Index>(i) * dim);
    }
    std::vector<Index> stopped_at(Index steps_run) const {
        std::vector<Index> out;
        for (Index s : stopped_) out.push_back(s < 0 ? steps_run : s);
        return out;
    }

private:
    const InverterOptions& o_;
    std::vector<double> best_;
    std::vector<Index> since_, stopped_;
};

}  // namespace ganinv
