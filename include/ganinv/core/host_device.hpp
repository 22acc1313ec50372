/// @file host_device.hpp
/// @brief `GANINV_HOST_DEVICE`: marks small functions (a loss's pointwise math) that CUDA kernels
///        call as well as host code; plain inline functions when the compiler is not nvcc.
#pragma once

#if defined(__CUDACC__)
#define GANINV_HOST_DEVICE __host__ __device__
#else
#define GANINV_HOST_DEVICE
#endif
