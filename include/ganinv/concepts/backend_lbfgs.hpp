/// @file backend_lbfgs.hpp
/// @brief Concept `BackendLbfgsOps`: the operations a backend runs so that L-BFGS keeps every
///        vector of its rows (point, gradient, trial point, direction, history pairs) in backend
///        memory and hands the host only per-row scalars (invert/device_lbfgs.hpp). The math is
///        nn/lbfgs_ops.hpp's, shared by both backends; meant to be folded into `Backend`
///        (concepts/backend.hpp) with BackendOptimizerOps.
///
/// Satisfied by: ganinv::Cpu (backend/cpu.hpp), ganinv::Cuda (backend/cuda.cuh).
#pragma once

#include "ganinv/concepts/backend_optimizer.hpp"
#include "ganinv/nn/lbfgs_ops.hpp"

#include <span>

namespace ganinv {

template <class B>
concept BackendLbfgsOps =
    BackendOptimizerOps<B> && requires(const B& b, const nn::LbfgsVectors& v, const nn::LbfgsRows& w, Index n,
                                       const float* cp, float* p, std::span<const nn::RowBlock> blocks) {
        b.lbfgs_direction(v, w, n);  ///< d = -H g for the kLbfgsRun rows (two-loop recursion, <= n pairs)
        b.lbfgs_trial(v, w);         ///< keep / reset / write the trial point, per-row "moved"
        b.lbfgs_slope(v, w);         ///< g_trial'd of the written rows
        b.lbfgs_accept(v, w);        ///< keep, accept the step, store the pair, clear histories
        b.scatter_row_blocks(cp, n, n, blocks);  ///< a [rows, width] point into the generator's inputs
        b.gather_row_blocks(blocks, n, n, p);    ///< the inputs' gradients into a [rows, width] gradient
        b.copy_to_device_async(cp, n, p);        ///< from host_buffer memory; complete in stream order
    };

}  // namespace ganinv
