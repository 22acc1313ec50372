/// @file check.hpp
/// @brief CUDA error handling: `ganinv::CudaError` and the macros that turn every failed CUDA
///        runtime call or kernel launch into an exception naming file:line, the call and the
///        CUDA error string. The library never exits or aborts on a CUDA error.
#pragma once

#include "ganinv/core/error.hpp"

#include <cuda_runtime_api.h>

#include <string>

namespace ganinv {

/// A CUDA runtime call or kernel launch failed. `code()` is the cudaError_t.
class CudaError : public Error {
public:
    CudaError(const std::string& what, cudaError_t code) : Error(what), code_(code) {}
    cudaError_t code() const { return code_; }

private:
    cudaError_t code_;
};

namespace cuda::detail {

[[noreturn]] inline void throw_cuda_error(cudaError_t code, const char* expr, const char* file, int line) {
    throw CudaError(concat(file, ":", line, ": CUDA error in '", expr, "': ", cudaGetErrorName(code), " (",
                           cudaGetErrorString(code), ")"),
                    code);
}

}  // namespace cuda::detail

/// True when the process sees at least one CUDA device (never throws).
inline bool cuda_device_available() {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();  // clear the sticky "no device" status of the runtime
        return false;
    }
    return n > 0;
}

}  // namespace ganinv

/// Evaluates a CUDA runtime call and throws ganinv::CudaError (file:line, call, error string)
/// unless it returned cudaSuccess.
#define GANINV_CUDA_CHECK(expr)                                                             \
    do {                                                                                    \
        const cudaError_t ganinv_cuda_err_ = (expr);                                        \
        if (ganinv_cuda_err_ != cudaSuccess)                                                \
            ::ganinv::cuda::detail::throw_cuda_error(ganinv_cuda_err_, #expr, __FILE__, __LINE__); \
    } while (0)

/// Checks the launch that precedes it (bad configuration, missing kernel image, ...). Put one
/// after every <<<...>>>. It does not synchronize: errors inside the kernel surface at the next
/// synchronizing call, which is checked too.
#define GANINV_CUDA_CHECK_LAUNCH()                                                          \
    do {                                                                                    \
        const cudaError_t ganinv_cuda_err_ = cudaGetLastError();                            \
        if (ganinv_cuda_err_ != cudaSuccess)                                                \
            ::ganinv::cuda::detail::throw_cuda_error(ganinv_cuda_err_, "kernel launch", __FILE__, __LINE__); \
    } while (0)
