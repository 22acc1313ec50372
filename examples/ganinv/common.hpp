/// @file common.hpp
/// @brief Helpers shared by the ganinv subcommands: "FILE[:TENSOR]" arguments, numbered output
///        names, and the shape checks that turn user files into generator inputs.
#pragma once

#include "cli.hpp"

#include <ganinv/io/image.hpp>
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

/// --batch: images per generator call or per inversion; 0 or less is a usage error, not "1".
inline Index batch_option(const Args& a, long long fallback = 8) {
    const long long b = a.integer("batch", fallback);
    if (b < 1) throw UsageError("--batch must be >= 1, got " + std::to_string(b));
    return b;
}

/// --space of the inverting commands, checked before anything is loaded or written.
inline std::string space_option(const Args& a, const std::string& fallback) {
    std::string s = a.get("space").value_or(fallback);
    if (s != "z" && s != "w" && s != "wplus" && s != "s") throw UsageError("unknown space '" + s + "' (z, w, wplus or s)");
    return s;
}

/// --optimizer: adam | lbfgs, and with `gradient_free` also cmaes | basincma.
inline std::string optimizer_option(const Args& a, bool gradient_free, const std::string& command) {
    std::string o = a.get("optimizer").value_or("adam");
    const bool known = o == "adam" || o == "lbfgs" || (gradient_free && (o == "cmaes" || o == "basincma"));
    if (!known)
        throw UsageError("unknown optimizer '" + o + "' for " + command +
                         (gradient_free ? " (adam, lbfgs, cmaes or basincma)" : " (adam or lbfgs: the losses have gradients)"));
    return o;
}

/// An output image path whose extension names a format the writers know (.png, .jpg, .bmp, or
/// .gif where `gif_ok`); checked before any work, so a typo never costs a run.
inline std::filesystem::path image_output_option(const Args& a, const std::string& name, bool gif_ok = false) {
    const std::filesystem::path p(a.require(name));
    if (gif_ok && p.extension() == ".gif") return p;
    try {
        (void)image_format_for(p);
    } catch (const ValueError& e) {
        throw UsageError("--" + name + ": " + e.what() + (gif_ok ? " (or .gif for an animation)" : ""));
    }
    return p;
}

/// --out DIR of the commands that fill a folder: refused up front when it names a file.
inline std::string output_dir_option(const Args& a) {
    std::string d = a.require("out");
    std::error_code ec;
    if (std::filesystem::exists(d, ec) && !std::filesystem::is_directory(d, ec))
        throw UsageError("--out '" + d + "' exists and is not a directory");
    return d;
}

}  // namespace ganinv::cli
