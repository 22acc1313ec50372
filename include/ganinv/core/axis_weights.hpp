/// @file axis_weights.hpp
/// @brief `AxisWeights`, the sparse per-axis weights of a separable resampling, and the exact
///        area (box) weights. Shared by the image resizers (io/image_ops.hpp) and the
///        differentiable resampling of the losses (nn/resample.hpp, cuda/input_stage.cuh).
#pragma once

#include "ganinv/core/tensor.hpp"

#include <algorithm>
#include <cstddef>
#include <vector>

namespace ganinv::detail {

/// One axis of a separable resampling: output sample o reads input samples
/// source[begin[o] .. begin[o+1]) with the matching weights (summing to 1).
struct AxisWeights {
    Index in_size = 0, out_size = 0;
    std::vector<Index> begin{0};
    std::vector<Index> source;
    std::vector<double> weight;

    void add_tap(Index index, double w) {
        source.push_back(index);
        weight.push_back(w);
    }
    /// Closes output sample o, normalising its weights so that a constant input stays constant.
    void finish_output() {
        const auto first = static_cast<std::size_t>(begin.back());
        double sum = 0.0;
        for (std::size_t k = first; k < weight.size(); ++k) sum += weight[k];
        if (sum != 0.0 && sum != 1.0)
            for (std::size_t k = first; k < weight.size(); ++k) weight[k] /= sum;
        begin.push_back(static_cast<Index>(source.size()));
    }
};

/// Exact box integration: output o covers the input interval [o*in/out, (o+1)*in/out) and every
/// input pixel is weighted by its overlap. Measured in units of 1/out, all bounds are integers,
/// so the weights are exact (a factor-2 shrink gives exactly 0.5, 0.5).
inline AxisWeights area_weights(Index in, Index out) {
    AxisWeights a{in, out, {0}, {}, {}};
    for (Index o = 0; o < out; ++o) {
        const Index lo = o * in, hi = (o + 1) * in;
        for (Index i = lo / out; i * out < hi; ++i) {
            const Index overlap = std::min((i + 1) * out, hi) - std::max(i * out, lo);
            if (overlap > 0) a.add_tap(i, static_cast<double>(overlap) / static_cast<double>(in));
        }
        a.finish_output();
    }
    return a;
}

}  // namespace ganinv::detail
