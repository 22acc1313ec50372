/// @file cuda_emulation.hpp
/// @brief Just enough of CUDA's device language for a host compiler to run a kernel that uses
///        threadIdx/blockIdx, static __shared__ arrays, __syncthreads, __ldg, float4 and float
///        atomicAdd: each block's threads are std::threads meeting at a std::barrier, blocks run
///        one after another (so a static array is one block's shared memory). It checks a
///        kernel's index arithmetic, shared-memory layout and split logic on machines without a
///        GPU (CI); it says nothing of races the barrier hides or of speed: the CUDA tests do.
///        Include it before the kernel header, in a test TU of its own (the macros are global).
#pragma once

#include <barrier>
#include <cmath>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ganinv::test::emulation {
struct Dim3 {
    unsigned x = 0, y = 0, z = 0;
};
inline thread_local Dim3 thread_index, block_index;
inline std::barrier<>* block_barrier = nullptr;
inline std::mutex atomic_mutex;
}  // namespace ganinv::test::emulation

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define threadIdx (::ganinv::test::emulation::thread_index)
#define blockIdx (::ganinv::test::emulation::block_index)

inline void __syncthreads() { ::ganinv::test::emulation::block_barrier->arrive_and_wait(); }
inline float __ldg(const float* p) { return *p; }
inline float atomicAdd(float* p, float v) {
    const std::lock_guard lock(::ganinv::test::emulation::atomic_mutex);
    const float old = *p;
    *p = old + v;
    return old;
}
struct alignas(16) float4 {
    float x, y, z, w;
};

namespace ganinv::test::emulation {

/// Runs kernel() for every block of grid (x, y) with `threads` threads each, as a launch would.
inline void launch(Dim3 grid, unsigned threads, const std::function<void()>& kernel) {
    for (unsigned by = 0; by < grid.y; ++by)
        for (unsigned bx = 0; bx < grid.x; ++bx) {
            std::barrier<> barrier(static_cast<std::ptrdiff_t>(threads));
            block_barrier = &barrier;
            std::vector<std::thread> pool;
            pool.reserve(threads);
            for (unsigned t = 0; t < threads; ++t)
                pool.emplace_back([&, t] {
                    thread_index = {t, 0, 0};
                    block_index = {bx, by, 0};
                    kernel();
                });
            for (std::thread& th : pool) th.join();
            block_barrier = nullptr;
        }
}

}  // namespace ganinv::test::emulation
