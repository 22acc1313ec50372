/// @file cudnn_check.hpp
/// @brief cuDNN error handling, next to check.hpp's CUDA runtime checks: `ganinv::CudnnError`
///        and `GANINV_CUDNN_CHECK(call)`, which turns a failed cuDNN call into an exception
///        naming file:line, the call, the status name and cuDNN's own description of the last
///        error. Only the CUDA losses (loss/network_losses_cuda.cuh) use cuDNN; the generator does not.
#pragma once

#include "ganinv/core/error.hpp"

#include <cudnn.h>

#include <string>

namespace ganinv {

/// A cuDNN call failed. `status()` is the cudnnStatus_t.
class CudnnError : public Error {
public:
    CudnnError(const std::string& what, cudnnStatus_t status) : Error(what), status_(status) {}
    cudnnStatus_t status() const { return status_; }

private:
    cudnnStatus_t status_;
};

namespace cuda::detail {

[[noreturn]] inline void throw_cudnn_error(cudnnStatus_t status, const char* expr, const char* file, int line) {
    // cudnnGetLastErrorString holds the library's explanation (which descriptor, which limit);
    // the status string alone is often just "CUDNN_STATUS_BAD_PARAM".
    char detail[512] = {0};
    cudnnGetLastErrorString(detail, sizeof(detail));
    throw CudnnError(concat(file, ":", line, ": cuDNN error in '", expr, "': ", cudnnGetErrorString(status),
                            detail[0] ? concat(" (", detail, ")") : std::string()),
                     status);
}

}  // namespace cuda::detail
}  // namespace ganinv

/// Evaluates a cuDNN call and throws ganinv::CudnnError (file:line, call, status, detail)
/// unless it returned CUDNN_STATUS_SUCCESS.
#define GANINV_CUDNN_CHECK(expr)                                                                 \
    do {                                                                                         \
        const cudnnStatus_t ganinv_cudnn_status_ = (expr);                                       \
        if (ganinv_cudnn_status_ != CUDNN_STATUS_SUCCESS)                                        \
            ::ganinv::cuda::detail::throw_cudnn_error(ganinv_cudnn_status_, #expr, __FILE__, __LINE__); \
    } while (0)
