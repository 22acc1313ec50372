/// @file lpips_metric.hpp
/// @brief Loading LPIPS for the tools' reports and losses (`ganinv metrics --lpips`, `ganinv invert
///        --lpips-weights`): the linear v0.1 weights, and the VGG16 trunk from its own file, from
///        the same file, or (test weights) the fixtures' deterministic trunk, verified.
#pragma once

#include "cli.hpp"

#include <ganinv/backend/cpu.hpp>
#include <ganinv/io/safetensors.hpp>
#include <ganinv/loss/lpips.hpp>

#include <cmath>
#include <optional>
#include <string>

namespace ganinv::cli {

/// LPIPS from the linear-weights file; the VGG16 trunk from --vgg-weights, from the same file when
/// it carries one, or (for the test weights, which record the first values of their trunk) the
/// deterministic trunk of the fixtures, verified against that record.
inline Lpips<Cpu> load_lpips(const std::string& lin_file, const std::optional<std::string>& vgg_file) {
    if (vgg_file) return Lpips<Cpu>::load(*vgg_file, lin_file);
    const SafetensorsFile f(lin_file);
    if (f.contains("features.0.weight")) return Lpips<Cpu>::load(lin_file, lin_file);
    const std::string check = "trunk_check.slice1.0.weight.first8";
    if (!f.contains(check))
        throw UsageError("LPIPS weights '" + lin_file + "' holds only the linear LPIPS weights; give the VGG16 trunk with "
                         "--vgg-weights F (tools/convert_torchvision_vgg16.py)");
    Vgg16 trunk = Vgg16::hash_rule();
    const Tensor<float> first8 = f.load(check);
    for (Index i = 0; i < first8.numel(); ++i)
        if (std::fabs(first8[i] - trunk.weight(0)[i]) > 1e-6f)
            throw FormatError("LPIPS weights '" + lin_file + "': its trunk_check values do not match the fixtures' deterministic "
                              "VGG16 trunk; give the trunk with --vgg-weights F");
    return Lpips<Cpu>(std::move(trunk), Lpips<Cpu>::load_lin(lin_file));
}

}  // namespace ganinv::cli
