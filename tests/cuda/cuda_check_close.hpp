/// @file cuda_check_close.hpp
/// @brief The CUDA tests' parity assertion: relative L2 error against the CPU reference, printed
///        as an "ERRBOUND" line (scripts/gpu_check.sh collects them into the precision table).
#pragma once

#include "cuda_catch.hpp"

#include <ganinv/core/tensor.hpp>
#include <ganinv/cuda/options.hpp>

#include <cstdio>
#include <string>

namespace ganinv::test {

inline double report(const std::string& op, cuda::Precision p, const std::string& what, const Tensor<float>& a,
                     const Tensor<float>& b) {
    REQUIRE(a.shape() == b.shape());
    const double e = relative_l2_error(a.values(), b.values());
    std::printf("ERRBOUND op=%s prec=%s case=%s rel_l2=%.3e\n", op.c_str(), cuda::to_string(p), what.c_str(), e);
    return e;
}

}  // namespace ganinv::test

#define CHECK_CLOSE(op, prec, what, a, b, bound)                                                          \
    do {                                                                                                  \
        const double err_ = ::ganinv::test::report(op, prec, what, a, b);                                 \
        INFO(op << " [" << ::ganinv::cuda::to_string(prec) << "] " << what << ": rel L2 " << err_         \
                << " (bound " << (bound) << ")");                                                         \
        CHECK(err_ <= (bound));                                                                           \
    } while (0)
