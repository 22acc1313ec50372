/// @file philox.hpp
/// @brief Counter-based normal numbers (Philox4x32-10, Salmon et al., SC'11, + Box-Muller) that
///        host code and CUDA kernels compute identically: number `index` of draw `stream` for a
///        seed is a pure function of the three, so the device inversion loop and its CPU twin (and
///        the host reference in the tests) add the same exploration noise without sharing state.
#pragma once

#include "ganinv/core/host_device.hpp"

#include <cmath>
#include <cstdint>

namespace ganinv {

namespace detail {
GANINV_HOST_DEVICE inline void philox_round(std::uint32_t (&c)[4], std::uint32_t k0, std::uint32_t k1) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(0xD2511F53u) * c[0];
    const std::uint64_t p1 = static_cast<std::uint64_t>(0xCD9E8D57u) * c[2];
    const std::uint32_t hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const std::uint32_t hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    const std::uint32_t n0 = hi1 ^ c[1] ^ k0, n2 = hi0 ^ c[3] ^ k1;
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
}
}  // namespace detail

/// The four 32-bit words of Philox4x32-10 for counter (index, stream) and key seed.
GANINV_HOST_DEVICE inline void philox4x32(std::uint64_t seed, std::uint64_t stream, std::uint64_t index,
                                          std::uint32_t (&out)[4]) {
    out[0] = static_cast<std::uint32_t>(index);
    out[1] = static_cast<std::uint32_t>(index >> 32);
    out[2] = static_cast<std::uint32_t>(stream);
    out[3] = static_cast<std::uint32_t>(stream >> 32);
    std::uint32_t k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
    for (int r = 0; r < 10; ++r) {
        detail::philox_round(out, k0, k1);
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
}

/// N(0, 1) from the first two words (Box-Muller in double, rounded once: host and device libm
/// agree to within an ulp of double, so the float result is the same on both).
GANINV_HOST_DEVICE inline float philox_normal(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
    std::uint32_t w[4];
    philox4x32(seed, stream, index, w);
    const double u1 = (static_cast<double>(w[0]) + 1.0) * 2.3283064365386963e-10;  // (0, 1]
    const double u2 = static_cast<double>(w[1]) * 2.3283064365386963e-10;          // [0, 1)
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

}  // namespace ganinv
