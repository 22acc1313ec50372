/// @file backend_cma.hpp
/// @brief Concept `BackendCmaOps`: the operations a backend runs so that CMA-ES keeps every
///        vector of its rows (mean, paths, covariance or its diagonal, eigenvectors, the normal
///        draws and the population) in backend memory and hands the host only per-row and
///        per-sample scalars (invert/device_cma.hpp). The math is nn/cma_ops.hpp's, the code the
///        host CmaEs runs; meant to be folded into `Backend` (concepts/backend.hpp) with
///        BackendOptimizerOps and BackendLbfgsOps.
///
/// Satisfied by: ganinv::Cpu (backend/cpu.hpp), ganinv::Cuda (backend/cuda.cuh).
#pragma once

#include "ganinv/concepts/backend_lbfgs.hpp"
#include "ganinv/nn/cma_ops.hpp"

namespace ganinv {

template <class B>
concept BackendCmaOps =
    BackendLbfgsOps<B> && requires(const B& b, const nn::CmaConstants& k, const nn::CmaVectors& v, const float* cp,
                                   float* p, Index n) {
        b.cma_sample(k, v);  ///< z, Y and the samples of the kCmaSample rows; kCmaFrozen rows repeat their best
        b.cma_update(k, v);  ///< best point, recombination, paths, covariance (nn::cma_update_passes)
        b.cma_stats(k, v);   ///< the stop tests' per-row scalars into v.out
        b.copy_to_host_async(cp, n, p);  ///< into host_buffer memory; complete after wait_host_copies()
        b.wait_host_copies();
    };

}  // namespace ganinv
