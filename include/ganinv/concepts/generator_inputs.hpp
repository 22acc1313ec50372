/// @file generator_inputs.hpp
/// @brief The vocabulary the generator concepts speak besides tensors: truncation and the noise
///        inputs of a synthesis pass. Models, latent spaces, the inverter and the editors share
///        these types without including any model.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ganinv {

/// Truncation towards w_avg: ws[:, :cutoff] = lerp(w_avg, ws, psi); cutoff empty = all layers.
struct Truncation {
    float psi = 1.0f;
    std::optional<Index> cutoff;
};

enum class NoiseMode {
    constant,  ///< the generator's noise_const buffers (official noise_mode='const')
    none,      ///< no noise
    random,    ///< fresh N(0,1) maps per sample, from `seed`
    explicit_maps  ///< the caller's maps, one per conv layer: [N, R, R] or [R, R] (broadcast)
};

inline NoiseMode parse_noise_mode(const std::string& s) {
    if (s == "const" || s == "constant") return NoiseMode::constant;
    if (s == "none") return NoiseMode::none;
    if (s == "random") return NoiseMode::random;
    throw ValueError(concat("unknown noise mode '", s, "' (const, none or random)"));
}

template <class Backend>
struct NoiseInput {
    NoiseMode mode = NoiseMode::constant;
    std::uint64_t seed = 0;
    const std::vector<typename Backend::Buffer>* maps = nullptr;  ///< for explicit_maps
};

}  // namespace ganinv
