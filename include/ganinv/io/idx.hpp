/// @file idx.hpp
/// @brief Reader for the IDX format of MNIST / Fashion-MNIST (`*-images-idx3-ubyte`,
///        `*-labels-idx1-ubyte`). Only uncompressed files are read, to keep zlib out of the
///        dependencies: decompress the distributed `.gz` files first (`gunzip -k FILE.gz`).
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/io/image.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace ganinv {

/// The header of an IDX file: element type code (0x08 = unsigned byte) and dimensions.
struct IdxHeader {
    std::uint8_t type_code = 0;
    std::vector<std::uint32_t> dims;
    std::uint64_t data_offset = 0;  ///< bytes before the first element
};

namespace detail {

inline std::uint32_t read_be_u32(const unsigned char* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

/// Opens `path` and parses its header, checking that the file holds every element it declares.
inline IdxHeader read_idx_header(std::ifstream& in, const std::filesystem::path& path) {
    std::error_code ec;
    GANINV_CHECK(std::filesystem::is_regular_file(path, ec), IoError, "IDX file '", path.string(), "' does not exist");
    in.open(path, std::ios::binary);
    GANINV_CHECK(in.good(), IoError, "cannot open IDX file '", path.string(), "'");
    const auto file_size = std::filesystem::file_size(path, ec);
    GANINV_CHECK(!ec, IoError, "cannot read the size of IDX file '", path.string(), "'");

    std::array<unsigned char, 4> magic{};
    in.read(reinterpret_cast<char*>(magic.data()), 4);
    GANINV_CHECK(in.gcount() == 4, FormatError, "IDX file '", path.string(), "' is too short for a header");
    // The files are distributed gzip-compressed; say so instead of reporting a bad magic number.
    GANINV_CHECK(!(magic[0] == 0x1f && magic[1] == 0x8b), FormatError, "IDX file '", path.string(),
                 "' is gzip-compressed; decompress it first (gunzip -k)");
    GANINV_CHECK(magic[0] == 0 && magic[1] == 0, FormatError, "'", path.string(),
                 "' is not an IDX file (the magic number must start with two zero bytes)");
    IdxHeader header;
    header.type_code = magic[2];
    const unsigned rank = magic[3];
    GANINV_CHECK(rank >= 1 && rank <= 8, FormatError, "IDX file '", path.string(), "' declares ", rank,
                 " dimensions");
    std::vector<unsigned char> dim_bytes(4 * rank);
    in.read(reinterpret_cast<char*>(dim_bytes.data()), static_cast<std::streamsize>(dim_bytes.size()));
    GANINV_CHECK(in.gcount() == static_cast<std::streamsize>(dim_bytes.size()), FormatError, "IDX file '",
                 path.string(), "' ends inside its header");
    std::uint64_t elements = 1;
    for (unsigned d = 0; d < rank; ++d) {
        const std::uint32_t dim = read_be_u32(&dim_bytes[4 * d]);
        // Bounding the product by the file size first keeps a garbage header from overflowing it.
        GANINV_CHECK(dim == 0 || elements <= file_size / dim, FormatError, "IDX file '", path.string(),
                     "' declares more elements than its ", file_size, " bytes can hold");
        header.dims.push_back(dim);
        elements *= dim;
    }
    header.data_offset = 4 + 4 * std::uint64_t{rank};
    std::uint64_t element_size = 0;
    switch (header.type_code) {
        case 0x08: case 0x09: element_size = 1; break;  // unsigned / signed byte
        case 0x0B: element_size = 2; break;             // short
        case 0x0C: case 0x0D: element_size = 4; break;  // int / float
        case 0x0E: element_size = 8; break;             // double
        default:
            throw FormatError(concat("IDX file '", path.string(), "' has unknown type code ",
                                     static_cast<int>(header.type_code)));
    }
    GANINV_CHECK(file_size >= header.data_offset + elements * element_size, FormatError, "IDX file '",
                 path.string(), "' is truncated: its header declares ", elements, " elements of ", element_size,
                 " bytes, but the file has ", file_size, " bytes");
    return header;
}

/// Reads `count` bytes at element offset `first_byte` of the data section.
inline std::vector<std::uint8_t> read_idx_bytes(std::ifstream& in, const IdxHeader& header, std::uint64_t first_byte,
                                                std::uint64_t count, const std::filesystem::path& path) {
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(count));
    in.seekg(static_cast<std::streamoff>(header.data_offset + first_byte));
    in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(count));
    GANINV_CHECK(in.gcount() == static_cast<std::streamsize>(count), IoError, "error while reading IDX file '",
                 path.string(), "'");
    return bytes;
}

}  // namespace detail

/// The header of the IDX file at `path` (e.g. dims = {10000, 28, 28} for an images file).
inline IdxHeader read_idx_header(const std::filesystem::path& path) {
    std::ifstream in;
    return detail::read_idx_header(in, path);
}

/// Images first .. first+count-1 of an uncompressed unsigned-byte IDX images file
/// (`*-images-idx3-ubyte`) as 1-channel images. Pixel values are kept as stored (0 = background
/// for MNIST and Fashion-MNIST).
inline std::vector<Image> load_idx_images(const std::filesystem::path& path, std::size_t first, std::size_t count) {
    std::ifstream in;
    const IdxHeader header = detail::read_idx_header(in, path);
    GANINV_CHECK(header.type_code == 0x08 && header.dims.size() == 3, FormatError, "IDX file '", path.string(),
                 "' is not an unsigned-byte image file (type code ", static_cast<int>(header.type_code), ", ",
                 header.dims.size(), " dimensions; expected 0x08 and 3)");
    const std::uint64_t total = header.dims[0], rows = header.dims[1], cols = header.dims[2];
    GANINV_CHECK(rows > 0 && cols > 0 && rows <= 65536 && cols <= 65536, FormatError, "IDX file '", path.string(),
                 "' declares images of ", rows, "x", cols, " pixels");
    GANINV_CHECK(first <= total && count <= total - first, ValueError, "load_idx_images: images [", first, ", ",
                 first + count, ") requested, but '", path.string(), "' holds ", total);
    const std::uint64_t image_bytes = rows * cols;
    const std::vector<std::uint8_t> bytes = detail::read_idx_bytes(in, header, first * image_bytes,
                                                                   count * image_bytes, path);
    std::vector<Image> images(count);
    for (std::size_t i = 0; i < count; ++i) {
        images[i] = Image{static_cast<int>(cols), static_cast<int>(rows), 1, {}};
        const auto begin = bytes.begin() + static_cast<std::ptrdiff_t>(i * image_bytes);
        images[i].pixels.assign(begin, begin + static_cast<std::ptrdiff_t>(image_bytes));
    }
    return images;
}

/// Labels first .. first+count-1 of an uncompressed IDX labels file (`*-labels-idx1-ubyte`).
inline std::vector<std::uint8_t> load_idx_labels(const std::filesystem::path& path, std::size_t first,
                                                 std::size_t count) {
    std::ifstream in;
    const IdxHeader header = detail::read_idx_header(in, path);
    GANINV_CHECK(header.type_code == 0x08 && header.dims.size() == 1, FormatError, "IDX file '", path.string(),
                 "' is not an unsigned-byte label file (type code ", static_cast<int>(header.type_code), ", ",
                 header.dims.size(), " dimensions; expected 0x08 and 1)");
    const std::uint64_t total = header.dims[0];
    GANINV_CHECK(first <= total && count <= total - first, ValueError, "load_idx_labels: labels [", first, ", ",
                 first + count, ") requested, but '", path.string(), "' holds ", total);
    return detail::read_idx_bytes(in, header, first, count, path);
}

}  // namespace ganinv
