/// @file loss_spec.hpp
/// @brief A loss chosen at run time from a text spec ("mse,lpips:0.5"), built for any backend:
///        `parse_loss_terms` reads the spec, `build_loss<B>` turns the terms into a
///        `WeightedLossSum<B>`. The `ganinv` tool and library users share it, so every backend
///        accepts the same terms and the same weight files.
///
/// The network losses over Cuda are declared by loss/network_losses_cuda.cuh (cuDNN); a CUDA
/// translation unit that builds "lpips" or "vgg" terms includes it, otherwise those terms throw
/// ValueError naming the missing header.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/io/safetensors.hpp"
#include "ganinv/loss/any_loss.hpp"
#include "ganinv/loss/identity.hpp"
#include "ganinv/loss/lpips.hpp"
#include "ganinv/loss/pixel.hpp"
#include "ganinv/loss/vgg_perceptual.hpp"
#include "ganinv/models/vgg16.hpp"

#include <array>
#include <cmath>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace ganinv {

/// One term of a spec: a loss name and its weight.
struct LossTermSpec {
    std::string name;  ///< mse, l1, charbonnier, lpips, vgg, identity
    double weight = 1.0;
};

/// The weight files the network terms read (command line: --vgg-weights, --lpips-weights,
/// --identity-weights).
struct LossWeightFiles {
    std::optional<std::filesystem::path> vgg;       ///< torchvision VGG16 features (lpips trunk, vgg term)
    std::optional<std::filesystem::path> lpips;     ///< LPIPS v0.1 linear weights (lpips term)
    std::optional<std::filesystem::path> identity;  ///< face-recognition ResNet (identity term; FaceResNet::load)
};

/// "mse,lpips:0.5" -> {{"mse", 1}, {"lpips", 0.5}}. Empty terms, bad weights and unknown names
/// throw ValueError; `what` starts the message (the tool passes "--loss").
inline std::vector<LossTermSpec> parse_loss_terms(const std::string& spec, const std::string& what = "loss spec") {
    std::vector<LossTermSpec> terms;
    std::size_t start = 0;
    while (start <= spec.size()) {
        const std::size_t comma = spec.find(',', start);
        const std::string item = spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        start = comma == std::string::npos ? spec.size() + 1 : comma + 1;
        if (item.empty()) throw ValueError(what + ": empty term in '" + spec + "'");
        const auto colon = item.find(':');
        LossTermSpec t{item.substr(0, colon), 1.0};
        if (colon != std::string::npos) {
            try {
                std::size_t used = 0;
                t.weight = std::stod(item.substr(colon + 1), &used);
                if (used != item.size() - colon - 1) throw std::invalid_argument("trailing");
            } catch (const std::exception&) {
                throw ValueError(what + ": bad weight in '" + item + "'");
            }
        }
        if (t.name != "mse" && t.name != "l1" && t.name != "charbonnier" && t.name != "lpips" && t.name != "vgg" &&
            t.name != "identity")
            throw ValueError(what + ": unknown term '" + t.name + "' (mse, l1, charbonnier, lpips, vgg, identity)");
        terms.push_back(std::move(t));
    }
    return terms;
}

/// The VGG16 trunk of LPIPS: from `vgg_file` when given, else from the linear-weights file when it
/// carries one, else (the test weights, which record the first values of their trunk) the
/// fixtures' deterministic trunk, verified against that record. ValueError when there is none,
/// FormatError when the record does not match.
inline Vgg16 lpips_trunk(const std::filesystem::path& lin_file, const std::optional<std::filesystem::path>& vgg_file) {
    if (vgg_file) return Vgg16::load(*vgg_file);
    const SafetensorsFile f(lin_file);
    if (f.contains("features.0.weight")) return Vgg16::load(lin_file);
    const std::string check = "trunk_check.slice1.0.weight.first8";
    if (!f.contains(check))
        throw ValueError("LPIPS weights '" + lin_file.string() + "' holds only the linear LPIPS weights; give the VGG16 "
                         "trunk with --vgg-weights F (LossWeightFiles::vgg; tools/convert_torchvision_vgg16.py)");
    Vgg16 trunk = Vgg16::hash_rule();
    const Tensor<float> first8 = f.load(check);
    for (Index i = 0; i < first8.numel(); ++i)
        if (std::fabs(first8[i] - trunk.weight(0)[i]) > 1e-6f)
            throw FormatError("LPIPS weights '" + lin_file.string() + "': its trunk_check values do not match the "
                              "fixtures' deterministic VGG16 trunk; give the trunk with --vgg-weights F");
    return trunk;
}

namespace detail {

/// L built on `backend` when L takes one (the device losses), without it otherwise (the Cpu ones).
template <class L, class B, class... A>
L make_loss_on(const B& backend, A&&... args) {
    if constexpr (std::is_constructible_v<L, const B&, A...>) return L(backend, std::forward<A>(args)...);
    else return L(std::forward<A>(args)...);
}

template <class B>
void require_network_losses(const std::string& term) {
    if constexpr (!network_losses_defined<B>)
        throw ValueError(concat("loss term '", term, "' on backend ", B::name,
                                ": this translation unit does not have the network losses of that backend (for Cuda "
                                "include <ganinv/loss/network_losses_cuda.cuh>, which needs cuDNN)"));
}

}  // namespace detail

/// The weighted sum of `terms` on `backend`. Network terms need their weight files (ValueError
/// naming the missing one); every backend accepts exactly the same terms and files. `identity`
/// is 1 - cos of the face-recognition descriptors of the whole image resized to 150x150 (the
/// Identity loss without a face box: give aligned face crops, as pSp/e4e/PTI's ID loss assumes).
template <class B>
WeightedLossSum<B> build_loss(const std::vector<LossTermSpec>& terms, const LossWeightFiles& files, const B& backend = {}) {
    WeightedLossSum<B> sum;
    for (const LossTermSpec& t : terms) {
        if (t.name == "mse") sum.add(AnyLoss<B>(Mse<B>{}), t.weight);
        else if (t.name == "l1") sum.add(AnyLoss<B>(L1<B>{}), t.weight);
        else if (t.name == "charbonnier") sum.add(AnyLoss<B>(Charbonnier<B>{}), t.weight);
        else if (t.name == "lpips") {
            detail::require_network_losses<B>(t.name);
            if constexpr (detail::network_losses_defined<B>) {
                if (!files.lpips)
                    throw ValueError("--loss lpips needs --lpips-weights F (and the VGG16 trunk, --vgg-weights F; see "
                                     "tools/README.md)");
                Vgg16 trunk = lpips_trunk(*files.lpips, files.vgg);  // first: its error names the missing trunk
                std::array<Tensor<float>, 5> lin = Lpips<Cpu>::load_lin(*files.lpips);
                sum.add(AnyLoss<B>(detail::make_loss_on<Lpips<B>>(backend, std::move(trunk), std::move(lin))), t.weight);
            }
        } else if (t.name == "vgg") {
            detail::require_network_losses<B>(t.name);
            if constexpr (detail::network_losses_defined<B>) {
                if (!files.vgg) throw ValueError("--loss vgg needs --vgg-weights F (see tools/README.md)");
                sum.add(AnyLoss<B>(detail::make_loss_on<VggPerceptual<B>>(backend, Vgg16::load(*files.vgg))), t.weight);
            }
        } else if (t.name == "identity") {
            detail::require_network_losses<B>(t.name);
            if constexpr (detail::network_losses_defined<B>) {
                if (!files.identity)
                    throw ValueError("--loss identity needs --identity-weights F (a face-recognition ResNet as "
                                     "safetensors; see tools/README_face_api.md)");
                sum.add(AnyLoss<B>(detail::make_loss_on<Identity<B>>(backend, FaceResNet::load(*files.identity))), t.weight);
            }
        } else {
            throw ValueError("unknown loss term '" + t.name + "' (mse, l1, charbonnier, lpips, vgg, identity)");
        }
    }
    return sum;
}

/// parse_loss_terms + build_loss.
template <class B>
WeightedLossSum<B> build_loss(const std::string& spec, const LossWeightFiles& files, const B& backend = {}) {
    return build_loss<B>(parse_loss_terms(spec), files, backend);
}

}  // namespace ganinv
