/// @file numpy_rng.hpp
/// @brief NumPy's legacy `RandomState(seed).randn(...)` (MT19937 + polar Box-Muller), so that
///        `--seed N` draws the same latent z as the official StyleGAN2 scripts do.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <span>

namespace ganinv {

class NumpyRandomState {
public:
    /// Same as np.random.RandomState(seed) for 0 <= seed < 2^32 (MT19937 init_genrand).
    explicit NumpyRandomState(std::uint32_t seed) : mt_(seed) {}

    /// random_sample(): 53-bit double from two 32-bit draws.
    double random_sample() {
        const std::uint32_t a = static_cast<std::uint32_t>(mt_()) >> 5;
        const std::uint32_t b = static_cast<std::uint32_t>(mt_()) >> 6;
        return (a * 67108864.0 + b) / 9007199254740992.0;
    }

    /// Legacy standard normal (polar method, second value cached).
    double gauss() {
        if (has_gauss_) {
            has_gauss_ = false;
            return gauss_;
        }
        double x1, x2, r2;
        do {
            x1 = 2.0 * random_sample() - 1.0;
            x2 = 2.0 * random_sample() - 1.0;
            r2 = x1 * x1 + x2 * x2;
        } while (r2 >= 1.0 || r2 == 0.0);
        const double f = std::sqrt(-2.0 * std::log(r2) / r2);
        gauss_ = f * x1;
        has_gauss_ = true;
        return f * x2;
    }

    void randn(std::span<float> out) {
        for (float& v : out) v = static_cast<float>(gauss());
    }

private:
    std::mt19937 mt_;
    double gauss_ = 0.0;
    bool has_gauss_ = false;
};

}  // namespace ganinv
