/// @file backend_optimizer.hpp
/// @brief Concept `BackendOptimizerOps`: the optimiser operations a backend runs so that the
///        inversion loop's parameters, Adam moments, schedule, exploration noise, stop state and
///        loss history stay in its memory (invert/device_loop.hpp); meant to be folded into
///        `Backend` (concepts/backend.hpp).
///
/// Satisfied by: ganinv::Cpu (backend/cpu.hpp), ganinv::Cuda (backend/cuda.cuh).
#pragma once

#include "ganinv/nn/optimizer_ops.hpp"

#include <concepts>
#include <cstdint>
#include <memory>
#include <span>

namespace ganinv {

template <class B>
concept BackendOptimizerOps = requires(const B& b, const float* cp, float* p, Index n, std::uint64_t seed,
                                       std::span<const nn::ParamSegment> segs, const nn::StepState& s,
                                       const nn::AdamConstants& c, const nn::StopRule& rule, const nn::StopState& st) {
    b.exploration_ws(cp, n, n, n, s, seed, p);
    b.adam_segments(segs, n, c, s);
    b.renormalize_segments(segs, n, s);
    b.stop_and_advance(cp, n, rule, st, p);
    { b.host_buffer(n) } -> std::same_as<std::shared_ptr<float[]>>;
    b.copy_to_host_async(cp, n, p);
    b.wait_host_copies();
};

}  // namespace ganinv
