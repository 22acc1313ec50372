/// @file device_timing.hpp
/// @brief Timing for the GPU benchmarks: the median (and minimum) device time of work enqueued on
///        one stream, measured with CUDA events around each repetition after a warm-up.
#pragma once

#include <ganinv/cuda/check.hpp>
#include <ganinv/cuda/stream.hpp>

#include <algorithm>
#include <functional>
#include <vector>

namespace ganinv::bench {

struct Timing {
    double median_ms = 0, min_ms = 0;
};

/// Median device time of `fn` (enqueued on `stream`) over `reps` runs after `warmup` runs (which
/// build plans, fill memory pools and caches).
inline Timing time_device(cudaStream_t stream, int warmup, int reps, const std::function<void()>& fn) {
    for (int i = 0; i < warmup; ++i) fn();
    GANINV_CUDA_CHECK(cudaStreamSynchronize(stream));
    std::vector<double> t;
    cuda::EventTimer ev;
    for (int i = 0; i < reps; ++i) {
        ev.start(stream);
        fn();
        ev.stop(stream);
        t.push_back(ev.ms());
    }
    std::sort(t.begin(), t.end());
    return {t[t.size() / 2], t.front()};
}

}  // namespace ganinv::bench
