/// @file encoder_support.hpp
/// @brief What the encoder commands share: loading an encoder file for a generator (refused,
///        with the mismatch named, when it was made for another one) and encoding a batch.
#pragma once

#include "invert_support.hpp"

#include <ganinv/invert/encoder_refine.hpp>
#include <ganinv/models/encoder_file.hpp>

#include <cmath>
#include <optional>
#include <string>

namespace ganinv::cli {

/// The encoder in `path`, checked against the generator's num_ws, w_dim, channels and resolution.
inline PspEncoder load_encoder_for(const std::string& path, Index num_ws, Index w_dim, Index channels, Index resolution) {
    PspEncoder e = load_encoder(path);
    check_encoder_fits(e.config(), num_ws, w_dim, channels, resolution, "'" + path + "'");
    return e;
}

/// `--device` of train-encoder and encode: "cpu" (default) or "cuda", refused with a usage error
/// (before anything is loaded) when this build has no GPU encoder: it needs CUDA and cuDNN.
inline std::string encoder_device_option(const Args& a) {
    const std::string device = a.get("device").value_or("cpu");
    if (device != "cpu" && device != "cuda") throw UsageError("--device must be cpu or cuda, got '" + device + "'");
#if !GANINV_CLI_HAS_CUDA
    if (device == "cuda")
        throw UsageError("--device cuda: this ganinv was built without CUDA (CMake found no nvcc); rebuild on a "
                         "machine with the CUDA toolkit, or use --device cpu");
#elif !GANINV_CLI_HAS_CUDNN
    if (device == "cuda")
        throw UsageError("--device cuda: this ganinv was built without cuDNN, which the encoder's convolutions on the GPU "
                         "need; rebuild with cuDNN (CMake: -DCUDNN_INCLUDE_DIR, -DCUDNN_LIBRARY), or use --device cpu");
#endif
    return device;
}

/// The generator config in the model file `model` (its metadata, without loading the weights).
inline StyleGAN2Config generator_config_of(const std::string& model) {
    const SafetensorsFile f(model);
    const auto meta = f.metadata("config");
    GANINV_CHECK(meta.has_value(), FormatError, "'", model, "' has no 'config' metadata");
    return StyleGAN2Config::from_json(Json::parse(*meta));
}

/// `--iterations K` of `encode`: by default what the encoder was trained with; refused (before
/// anything is written) when the encoder cannot run K passes.
inline Index iterations_option(const Args& a, const PspEncoder& e, const std::string& path) {
    const long long k = a.integer("iterations", e.config().iterations);
    try {
        check_refinement_iterations(e, static_cast<Index>(k));
    } catch (const ValueError& err) {
        throw UsageError(concat("--iterations ", k, ": encoder '", path, "': ", err.what()));
    }
    return static_cast<Index>(k);
}

/// `invert --init encoder:E` (hybrid inversion): the encoder, and for an iterative one the CPU
/// generator its refinement needs (invert's own when it runs on the CPU, else loaded once here).
struct EncoderInit {
    PspEncoder encoder;
    std::string model;
    std::optional<StyleGAN2<Cpu>> own_generator;
};

/// The encoder in `path`, checked against the config in the generator file `model` (read
/// without loading its weights, so that a mismatch is refused before any work).
inline PspEncoder load_encoder_for_model(const std::string& path, const std::string& model) {
    const StyleGAN2Config c = generator_config_of(model);
    return load_encoder_for(path, c.num_ws(), c.w_dim, c.img_channels, c.img_resolution);
}

/// `invert --init encoder:E.safetensors`: the encoder, checked against the generator file's
/// config before anything runs; nullopt for the other --init kinds.
inline std::optional<EncoderInit> encoder_init_option(const Args& a, const std::string& space, const std::string& model) {
    const std::string init = a.get("init").value_or("mean");
    if (init.rfind("encoder:", 0) != 0) return std::nullopt;
    if (space != "wplus" && space != "w")
        throw UsageError("--init encoder: gives W+ codes; use --space wplus (or w: the layers' mean), not " + space);
    PspEncoder e = load_encoder_for_model(init.substr(8), model);
    if (!e.config().bootstrap.empty())
        throw UsageError(concat("--init ", init, ": the encoder refines the codes of a bootstrapping encoder (", e.config().bootstrap,
                                "), which invert cannot run; write its codes with `ganinv encode --bootstrap E0` and "
                                "give them to --init"));
    return EncoderInit{std::move(e), model, {}};
}

/// `invert --domain-regularization L`: L (finite, >= 0), or nullopt without the flag. Refused with
/// a usage error, before anything is loaded: no encoder (--encoder or --init encoder:), a space
/// other than W/W+, the CUDA device (the encoder runs on the CPU only), --encoder without the flag.
inline std::optional<double> domain_regularization_option(const Args& a, const std::string& space, const std::string& device) {
    if (!a.has("domain-regularization")) {
        if (a.has("encoder"))
            throw UsageError("--encoder names the encoder of --domain-regularization L; give that flag too (or use "
                             "--init encoder:E.safetensors to start from the encoder's codes)");
        return std::nullopt;
    }
    const double weight = a.number("domain-regularization", 0.0);
    if (!std::isfinite(weight) || weight < 0)
        throw UsageError(concat("--domain-regularization must be a finite number >= 0, got ", *a.get("domain-regularization")));
    if (!a.has("encoder") && a.get("init").value_or("mean").rfind("encoder:", 0) != 0)
        throw UsageError("--domain-regularization needs an encoder: give --encoder E.safetensors (or --init encoder:E.safetensors)");
    if (space != "wplus" && space != "w")
        throw UsageError("--domain-regularization works on W and W+ codes; use --space wplus or w, not " + space);
#if GANINV_CLI_HAS_CUDA && !GANINV_CLI_HAS_CUDNN
    if (device == "cuda")
        throw UsageError("--domain-regularization --device cuda: this ganinv was built without cuDNN, which the encoder's "
                         "convolutions on the GPU need; rebuild with cuDNN, or use --device cpu");
#else
    (void)device;
#endif
    return weight;
}

/// The encoder's codes for one batch as initial codes, after the refinement iterations it was
/// trained with: [N, num_ws, w_dim], or their mean over the layers [N, w_dim] for the W space.
/// `g` is invert's CPU generator (null when it runs on the GPU).
inline Tensor<float> encoder_init_codes(EncoderInit& init, StyleGAN2<Cpu>* g, const Tensor<float>& images,
                                        const std::string& space) {
    const PspEncoder& e = init.encoder;
    Tensor<float> ws;
    if (e.iterative()) {
        if (!g) g = &(init.own_generator ? *init.own_generator : init.own_generator.emplace(StyleGAN2<Cpu>::load(init.model)));
        ws = encode_images(*g, e, images, e.config().iterations).codes;
    } else {
        ws = e.forward(images);
    }
    if (space != "w") return ws;
    const Index N = ws.dim(0), L = ws.dim(1), D = ws.dim(2);
    Tensor<float> w({N, D}, 0.0f);
    for (Index n = 0; n < N; ++n)
        for (Index l = 0; l < L; ++l)
            for (Index d = 0; d < D; ++d) w[n * D + d] += ws[(n * L + l) * D + d] / static_cast<float>(L);
    return w;
}

}  // namespace ganinv::cli
