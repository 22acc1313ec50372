/// @file lpips_metric.hpp
/// @brief Loading LPIPS for the tools' reports and losses (`ganinv metrics --lpips`, `ganinv invert
///        --lpips-weights`): the linear v0.1 weights and the VGG16 trunk found by the library's
///        lpips_trunk (loss/loss_spec.hpp), which --loss lpips uses on every backend too.
#pragma once

#include "cli.hpp"

#include <ganinv/backend/cpu.hpp>
#include <ganinv/loss/loss_spec.hpp>
#include <ganinv/loss/lpips.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <utility>

namespace ganinv::cli {

/// LPIPS from the linear-weights file; the VGG16 trunk from --vgg-weights, from the same file when
/// it carries one, or (for the test weights, which record the first values of their trunk) the
/// deterministic trunk of the fixtures, verified against that record.
inline Lpips<Cpu> load_lpips(const std::string& lin_file, const std::optional<std::string>& vgg_file) {
    std::optional<std::filesystem::path> vgg;
    if (vgg_file) vgg = *vgg_file;
    try {
        Vgg16 trunk = lpips_trunk(lin_file, vgg);  // first: a file without a trunk is a usage error
        return Lpips<Cpu>(std::move(trunk), Lpips<Cpu>::load_lin(lin_file));
    } catch (const ValueError& e) {
        throw UsageError(e.what());
    }
}

}  // namespace ganinv::cli
