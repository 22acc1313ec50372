/// @file loss_spec.hpp
/// @brief The --loss option ("mse,lpips:0.5") on the command line: the library's parser and
///        builder (ganinv/loss/loss_spec.hpp, the same for every backend) with the weight files
///        taken from --vgg-weights / --lpips-weights / --identity-weights and their ValueErrors
///        reported as usage errors.
#pragma once

#include "cli.hpp"

#include <ganinv/loss/loss_spec.hpp>

#include <string>
#include <vector>

namespace ganinv::cli {

using ganinv::LossTermSpec;

/// "mse,lpips:0.5" -> {{"mse", 1}, {"lpips", 0.5}}; unknown names and bad weights are UsageErrors.
inline std::vector<LossTermSpec> parse_loss_terms(const std::string& spec) {
    try {
        return ganinv::parse_loss_terms(spec, "--loss");
    } catch (const ValueError& e) {
        throw UsageError(e.what());
    }
}

inline LossWeightFiles loss_weight_files(const Args& a) {
    LossWeightFiles f;
    if (const auto v = a.get("vgg-weights")) f.vgg = *v;
    if (const auto l = a.get("lpips-weights")) f.lpips = *l;
    if (const auto i = a.get("identity-weights")) f.identity = *i;
    return f;
}

/// The --loss terms on `backend` (Cpu or Cuda: the same terms and files on both). A missing
/// weight file or a term this build lacks is a UsageError.
template <class B>
WeightedLossSum<B> build_cli_loss(const std::vector<LossTermSpec>& terms, const Args& a, const B& backend = {}) {
    try {
        return build_loss<B>(terms, loss_weight_files(a), backend);
    } catch (const ValueError& e) {
        throw UsageError(e.what());
    }
}

}  // namespace ganinv::cli
