/// @file official_config.hpp
/// @brief The official StyleGAN2 configuration of a resolution, for random-weight benchmarks.
#pragma once

#include <ganinv/models/stylegan2.hpp>

namespace ganinv::bench {

/// The random-weight official configuration of a resolution (channel_base 16384 below 512, as
/// the official FFHQ/LSUN networks; 32768 for 512 and 1024).
inline StyleGAN2Config official_config(Index res) {
    StyleGAN2Config c;
    c.img_resolution = res;
    c.channel_base = res >= 512 ? 32768 : 16384;
    c.channel_max = 512;
    c.z_dim = c.w_dim = 512;
    return c;
}

}  // namespace ganinv::bench
