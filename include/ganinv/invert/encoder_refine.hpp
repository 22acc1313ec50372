/// @file encoder_refine.hpp
/// @brief Encoding images with a trained encoder on the CPU, including ReStyle's iterative
///        refinement (Alaluf et al. 2021): w_0 = w_avg, y_0 = G(w_0), and per iteration
///        w_{t+1} = w_t + E([x, y_t]), y_{t+1} = G(w_{t+1}). A single-pass encoder runs once.
///        ReStyle's encoder bootstrapping starts the refinement from a single-pass encoder's
///        codes instead, w_0 = E_0(x) (encode_images' `bootstrap`).
///
/// The trainer (encoder_trainer.hpp) and the CLI (`encode`, `invert --init encoder:`) share
/// these steps, so what is trained is exactly what runs.
#pragma once

#include "ganinv/backend/cpu.hpp"
#include "ganinv/models/psp_encoder.hpp"
#include "ganinv/models/stylegan2.hpp"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>

namespace ganinv {

/// Where a refinement stands: the current codes [N, num_ws, w_dim] and their image G(codes).
struct RefineState {
    Tensor<float> codes, reconstruction;
};

/// w_0 = w_avg on every layer for `n` images and its image (synthesised once, copied n times).
inline RefineState refinement_start(StyleGAN2<Cpu>& g, const PspEncoder& e, Index n) {
    const Index L = e.num_ws(), D = e.w_dim();
    Tensor<float> one({1, L, D});
    for (Index l = 0; l < L; ++l) std::copy(e.w_avg().data(), e.w_avg().data() + D, one.data() + l * D);
    const Tensor<float> img = g.synthesis(one, NoiseInput<Cpu>{});
    RefineState s{Tensor<float>({n, L, D}), Tensor<float>({n, img.dim(1), img.dim(2), img.dim(3)})};
    for (Index i = 0; i < n; ++i) {
        std::copy(one.data(), one.data() + one.numel(), s.codes.data() + i * one.numel());
        std::copy(img.data(), img.data() + img.numel(), s.reconstruction.data() + i * img.numel());
    }
    return s;
}

/// ReStyle's encoder bootstrapping: w_0 = bootstrap(x) from a single-pass encoder, and its image.
inline RefineState bootstrap_start(StyleGAN2<Cpu>& g, const PspEncoder& bootstrap, const Tensor<float>& images) {
    RefineState s;
    s.codes = bootstrap.forward(images);
    s.reconstruction = g.synthesis(s.codes, NoiseInput<Cpu>{});
    return s;
}

/// The iterative encoder's input: per image the target's channels, then the reconstruction's.
inline Tensor<float> refinement_input(const Tensor<float>& images, const Tensor<float>& reconstruction) {
    expect_shape(reconstruction, images.shape(), "refinement input: reconstruction");
    const Index N = images.dim(0), per = images.numel() / N;
    Tensor<float> in({N, 2 * images.dim(1), images.dim(2), images.dim(3)});
    for (Index n = 0; n < N; ++n) {
        std::copy(images.data() + n * per, images.data() + (n + 1) * per, in.data() + 2 * n * per);
        std::copy(reconstruction.data() + n * per, reconstruction.data() + (n + 1) * per, in.data() + (2 * n + 1) * per);
    }
    return in;
}

/// Throws a ValueError unless `iterations` fits the encoder (PspEncoder, or PspEncoderCuda:
/// encoder_refine_cuda.cuh): >= 1, and 1 for a single-pass one.
template <class Encoder>
void check_refinement_iterations(const Encoder& e, Index iterations) {
    GANINV_CHECK(iterations >= 1, ValueError, "encoder iterations must be >= 1, got ", iterations);
    GANINV_CHECK(e.iterative() || iterations == 1, ValueError, "the encoder is not iterative (it was trained for a single "
                 "pass, without --iterations), so it cannot refine its codes: ", iterations, " iterations asked for");
}

/// A single-pass encoder's identity for EncoderConfig::bootstrap: FNV-1a (64 bits) of its
/// weights' and mean code's bytes, as "fnv1a64:<16 hex digits>".
inline std::string encoder_fingerprint(const PspEncoder& e) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    const auto mix = [&h](const Tensor<float>& t) {
        const auto* bytes = reinterpret_cast<const unsigned char*>(t.data());
        for (std::size_t i = 0; i < sizeof(float) * static_cast<std::size_t>(t.numel()); ++i) {
            h ^= bytes[i];
            h *= 0x100000001b3ULL;
        }
    };
    mix(e.params());
    mix(e.w_avg());
    static const char* digits = "0123456789abcdef";
    std::string out = "fnv1a64:";
    for (int shift = 60; shift >= 0; shift -= 4) out += digits[(h >> shift) & 0xF];
    return out;
}

/// Throws a ValueError when `e` was trained to refine a bootstrapping encoder's codes
/// (EncoderConfig::bootstrap) and none is given: from the mean code its passes are meaningless.
template <class Encoder>
void check_refinement_start(const Encoder& e, bool has_bootstrap) {
    GANINV_CHECK(has_bootstrap || e.config().bootstrap.empty(), ValueError,
                 "the encoder was trained to refine the codes of a single-pass encoder (ReStyle's encoder bootstrapping, ",
                 e.config().bootstrap, "), not the mean code: give that encoder as the bootstrap (encode --bootstrap E0)");
}

/// Throws a ValueError unless `bootstrap` can start `e`'s refinement: `e` iterative, `bootstrap`
/// single-pass, both for the same code shape and image channels (PspEncoder or PspEncoderCuda).
template <class Encoder>
void check_bootstrap(const Encoder& e, const Encoder& bootstrap) {
    GANINV_CHECK(e.iterative(), ValueError, "encoder bootstrapping starts an iterative (ReStyle) encoder's refinement; "
                 "this encoder is single-pass: it has nothing to refine");
    GANINV_CHECK(!bootstrap.iterative(), ValueError, "the bootstrapping encoder must be single-pass (its one pass gives "
                 "w_0); this one is iterative");
    GANINV_CHECK(bootstrap.num_ws() == e.num_ws() && bootstrap.w_dim() == e.w_dim(), ValueError,
                 "the bootstrapping encoder gives codes of ", bootstrap.num_ws(), " x ", bootstrap.w_dim(),
                 ", the refining encoder works on ", e.num_ws(), " x ", e.w_dim(), ": they are for different generators");
    GANINV_CHECK(bootstrap.image_channels() == e.image_channels() && bootstrap.config().resolution == e.config().resolution,
                 ValueError, "the bootstrapping encoder reads ", bootstrap.image_channels(), "-channel ",
                 bootstrap.config().resolution, "^2 images, the refining encoder ", e.image_channels(), "-channel ",
                 e.config().resolution, "^2 ones");
}

/// Encodes images [N, C, R, R] in `iterations` passes (see the file comment); `on_iteration`
/// (may be empty) sees each iterate (t = 1..K). With `bootstrap` (a single-pass encoder of the
/// same generator; `e` iterative) the refinement starts at w_0 = bootstrap(x) instead of w_avg.
/// Returns the last codes and their image.
inline RefineState encode_images(StyleGAN2<Cpu>& g, const PspEncoder& e, const Tensor<float>& images, Index iterations,
                                 const std::function<void(Index, const RefineState&)>& on_iteration = {},
                                 const PspEncoder* bootstrap = nullptr) {
    check_refinement_iterations(e, iterations);
    check_refinement_start(e, bootstrap != nullptr);
    if (bootstrap) check_bootstrap(e, *bootstrap);
    RefineState s;
    if (!e.iterative()) {
        s.codes = e.forward(images);
        s.reconstruction = g.synthesis(s.codes, NoiseInput<Cpu>{});
        if (on_iteration) on_iteration(1, s);
        return s;
    }
    s = bootstrap ? bootstrap_start(g, *bootstrap, images) : refinement_start(g, e, images.dim(0));
    for (Index t = 1; t <= iterations; ++t) {
        s.codes = e.forward(refinement_input(images, s.reconstruction), nullptr, &s.codes);
        s.reconstruction = g.synthesis(s.codes, NoiseInput<Cpu>{});
        if (on_iteration) on_iteration(t, s);
    }
    return s;
}

}  // namespace ganinv
