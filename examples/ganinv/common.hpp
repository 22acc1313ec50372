/// @file common.hpp
/// @brief Helpers shared by the ganinv subcommands: "FILE[:TENSOR]" arguments, numbered output
///        names, and the shape checks that turn user files into generator inputs.
#pragma once

#include "cli.hpp"

#include <ganinv/io/safetensors.hpp>

#include <filesystem>
#include <string>

namespace ganinv::cli {

/// Tensor `name` of a user's file; an empty one (a zero-row batch) is refused here, with the file
/// and tensor named, because every command divides by the batch size or reads the first row.
inline Tensor<float> load_nonempty(const SafetensorsFile& f, const std::string& name) {
    const SafetensorsEntry& e = f.entry(name);
    GANINV_CHECK(shape_numel(e.shape) > 0, ShapeError, "'", f.path().string(), "': tensor '", name, "' is empty (shape ",
                 shape_to_string(e.shape), "); give at least one code");
    return f.load(name);
}

/// Loads "path.safetensors[:name]" (name defaults to `default_name`, or the file's only tensor).
inline Tensor<float> load_tensor_arg(const std::string& arg, const std::string& default_name) {
    std::string path = arg, name;
    if (const auto colon = arg.rfind(':'); colon != std::string::npos && colon + 1 < arg.size() &&
                                           arg.find(".safetensors:") != std::string::npos) {
        path = arg.substr(0, colon);
        name = arg.substr(colon + 1);
    }
    const SafetensorsFile f(path);
    if (name.empty()) name = f.contains(default_name) || f.entries().size() != 1 ? default_name : f.entries()[0].name;
    return load_nonempty(f, name);
}

/// "out.png" for a single image, else "out_0003.png" / "out_seed0042.png".
inline std::filesystem::path numbered_path(const std::filesystem::path& base, const std::string& tag, std::size_t count) {
    if (count == 1) return base;
    return base.parent_path() / (base.stem().string() + "_" + tag + base.extension().string());
}

inline std::string zero_pad(long long v, int width = 4) {
    std::string s = std::to_string(v);
    while (static_cast<int>(s.size()) < width) s = "0" + s;
    return s;
}

inline void ensure_parent_dir(const std::filesystem::path& p) {
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
}

}  // namespace ganinv::cli
