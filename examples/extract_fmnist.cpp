/// @file extract_fmnist.cpp
/// @brief Writes images of an (uncompressed) MNIST / Fashion-MNIST IDX images file as PNGs,
///        optionally with a black border (the demo generator was trained on 28x28 images padded
///        to 32x32).
///
/// Usage: extract_fmnist IDX_FILE OUT_DIR FIRST COUNT [--pad P] [--prefix NAME]
///   writes OUT_DIR/NAME0000.png ... with the zero-padded image index (default NAME "image_").
/// Example (Debian's dataset-fashion-mnist):
///   gunzip -c /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz > /tmp/t10k-images-idx3-ubyte
///   extract_fmnist /tmp/t10k-images-idx3-ubyte out 0 8 --pad 2 --prefix fmnist_test_

#include <ganinv/io/idx.hpp>
#include <ganinv/io/image.hpp>
#include <ganinv/io/image_ops.hpp>

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <string_view>

namespace {

constexpr const char* kUsage =
    "usage: extract_fmnist IDX_FILE OUT_DIR FIRST COUNT [--pad P] [--prefix NAME]\n"
    "  IDX_FILE  uncompressed IDX images file (gunzip the .gz first)\n"
    "  OUT_DIR   folder for the PNGs (created if missing)\n"
    "  FIRST     index of the first image, COUNT how many\n"
    "  --pad P   add a black border of P pixels on every side (default 0)\n"
    "  --prefix  file name prefix (default image_): NAME0000.png, NAME0001.png, ...\n";

/// Parses a non-negative decimal integer, naming the argument when it is not one.
std::size_t parse_count(std::string_view text, const char* what) {
    std::size_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size())
        throw ganinv::ValueError(ganinv::concat(what, " must be a non-negative integer, got '", text, "'"));
    return value;
}

std::string numbered_name(const std::string& prefix, std::size_t index) {
    char digits[32];
    std::snprintf(digits, sizeof digits, "%04zu", index);
    return prefix + digits + ".png";
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string_view> positional;
    std::string prefix = "image_";
    std::size_t pad = 0;
    try {
        for (int i = 1; i < argc; ++i) {
            const std::string_view arg = argv[i];
            if (arg == "-h" || arg == "--help") {
                std::cout << kUsage;
                return 0;
            }
            if (arg == "--pad" || arg == "--prefix") {
                if (i + 1 >= argc) throw ganinv::ValueError(ganinv::concat(arg, " needs a value"));
                const std::string_view value = argv[++i];
                if (arg == "--pad") {
                    pad = parse_count(value, "--pad");
                    if (pad > 4096) throw ganinv::ValueError(ganinv::concat("--pad ", pad, " is unreasonably large"));
                } else {
                    prefix = value;
                }
            } else if (arg.starts_with("--")) {
                throw ganinv::ValueError(ganinv::concat("unknown option '", arg, "'"));
            } else {
                positional.push_back(arg);
            }
        }
        if (positional.size() != 4) {
            std::cerr << kUsage;
            return 2;
        }
        const std::filesystem::path idx_file{std::string(positional[0])};
        const std::filesystem::path out_dir{std::string(positional[1])};
        const std::size_t first = parse_count(positional[2], "FIRST");
        const std::size_t count = parse_count(positional[3], "COUNT");

        const std::vector<ganinv::Image> images = ganinv::load_idx_images(idx_file, first, count);
        std::filesystem::create_directories(out_dir);
        for (std::size_t i = 0; i < images.size(); ++i) {
            const ganinv::Image out = pad ? ganinv::pad_image(images[i], static_cast<int>(pad), 0) : images[i];
            ganinv::save_png(out_dir / numbered_name(prefix, first + i), out);
        }
        std::cout << "wrote " << images.size() << " images to " << out_dir.string() << "\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "extract_fmnist: " << e.what() << "\n";
        return 1;
    }
}
