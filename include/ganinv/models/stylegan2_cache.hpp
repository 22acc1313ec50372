/// @file stylegan2_cache.hpp
/// @brief What flows in and out of the StyleGAN2 generator besides the codes: the activations a
///        forward pass keeps for its backward and the synthesis gradients (its inputs besides the
///        codes, Truncation and NoiseInput, are in concepts/generator_inputs.hpp).
#pragma once

#include "ganinv/concepts/generator_inputs.hpp"
#include "ganinv/core/tensor.hpp"

#include <cstdint>
#include <vector>

namespace ganinv {

/// Activations of one synthesis pass, kept for the backward. Owned buffers; move-only in spirit.
template <class Backend>
struct SynthesisCache {
    using Buffer = typename Backend::Buffer;
    struct Layer {
        Buffer styles;      ///< [N, C] the styles the conv used (ToRGB: after its weight gain)
        Buffer dcoefs;      ///< [N, O]
        Buffer modconv_out; ///< [N, O, R, R] demodulated conv output, before noise and bias
        Buffer out;         ///< [N, O, R, R] layer output after bias_act
        Buffer noise;       ///< the noise map that was added ([N or 1, R, R]); empty when none
        bool noise_per_sample = false;
    };
    Index batch = 0;
    Buffer ws;                      ///< set by synthesis(ws): the codes the styles came from
    Buffer styles;                  ///< [N, style_dim]
    Buffer const_x;                 ///< [N, C4, 4, 4]
    std::vector<Layer> layers;      ///< in plan order
    std::vector<Buffer> block_img;  ///< image after each block ([N, img_channels, R, R])
    std::vector<Buffer> block_x;    ///< features after each block
    NoiseMode noise_mode = NoiseMode::constant;
};

template <class Backend>
struct MappingCache {
    using Buffer = typename Backend::Buffer;
    Buffer z, x0;
    std::vector<Buffer> acts;
    float trunc_psi = 1.0f;
    Index trunc_cutoff = 0;
};

template <class Backend>
struct SynthesisGradients {
    using Buffer = typename Backend::Buffer;
    Buffer styles;             ///< [N, style_dim]
    std::vector<Buffer> noise; ///< per conv layer [N, R, R]; empty when noise mode is none
};

}  // namespace ganinv
