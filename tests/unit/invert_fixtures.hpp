/// @file invert_fixtures.hpp
/// @brief The small random generator and its reachable targets shared by the inverter tests
///        (test_invert.cpp, test_device_loop.cpp).
#pragma once

#include <ganinv/backend/cpu.hpp>
#include <ganinv/core/rng.hpp>
#include <ganinv/models/stylegan2.hpp>

namespace ganinv::test {

/// 8x8, one channel, a few channels per layer; weights perturbed so that nothing is degenerate.
inline StyleGAN2<Cpu> small_generator() {
    StyleGAN2Config cfg;
    cfg.z_dim = 6;
    cfg.w_dim = 5;
    cfg.img_resolution = 8;
    cfg.img_channels = 1;
    cfg.mapping_layers = 2;
    cfg.channel_base = 32;
    cfg.channel_max = 6;
    NamedTensors p = random_stylegan2_params(cfg, 5);
    Rng rng(13);
    for (auto& [name, t] : p.items())
        if (!name.ends_with("resample_filter"))
            for (float& v : t.values()) v += static_cast<float>(0.2 * rng.normal());
    return StyleGAN2<Cpu>(cfg, p);
}

/// Targets the generator can produce exactly: images of random codes.
inline Tensor<float> reachable_targets(StyleGAN2<Cpu>& g, Index n, std::uint64_t seed) {
    Tensor<float> z({n, g.z_dim()});
    Rng(seed).fill_normal(z.values());
    return g.synthesis(g.mapping(z));
}

}  // namespace ganinv::test
