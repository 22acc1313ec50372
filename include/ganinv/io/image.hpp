/// @file image.hpp
/// @brief 8-bit images: loading (PNG/JPEG/BMP/TGA/GIF/PSD/HDR/PNM through stb_image), writing
///        PNG, JPEG or BMP as the file name's extension says, and the conversions between an `Image` and the library's float NCHW layout in
///        [-1, 1], using exactly the pixel formula of the official StyleGAN2 code.
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/core/tensor.hpp"
#include "ganinv/io/file_write.hpp"

#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace ganinv {

/// An 8-bit image with interleaved channels (row-major HWC): 1 = gray, 3 = RGB, 4 = RGBA.
struct Image {
    int width = 0, height = 0, channels = 0;
    std::vector<std::uint8_t> pixels;

    bool empty() const { return width == 0 || height == 0; }
    std::size_t pixel_count() const { return static_cast<std::size_t>(width) * static_cast<std::size_t>(height); }
    std::size_t row_bytes() const { return static_cast<std::size_t>(width) * static_cast<std::size_t>(channels); }
    std::size_t offset(int x, int y, int c = 0) const {
        return (static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)) *
                   static_cast<std::size_t>(channels) +
               static_cast<std::size_t>(c);
    }
    /// Unchecked access: callers iterate inside the bounds they just read from width/height.
    std::uint8_t& at(int x, int y, int c = 0) { return pixels[offset(x, y, c)]; }
    std::uint8_t at(int x, int y, int c = 0) const { return pixels[offset(x, y, c)]; }
};

/// A width x height image with every byte set to `fill`.
inline Image make_image(int width, int height, int channels, std::uint8_t fill = 0) {
    GANINV_CHECK(width > 0 && height > 0, ShapeError, "make_image: width and height must be positive, got ", width,
                 "x", height);
    GANINV_CHECK(channels == 1 || channels == 3 || channels == 4, ShapeError,
                 "make_image: channels must be 1, 3 or 4, got ", channels);
    Image img{width, height, channels, {}};
    img.pixels.assign(img.pixel_count() * static_cast<std::size_t>(channels), fill);
    return img;
}

/// Throws ShapeError naming `what` unless the image's fields agree with its pixel buffer.
inline void expect_valid_image(const Image& img, const std::string& what) {
    GANINV_CHECK(img.width > 0 && img.height > 0, ShapeError, what, ": image size must be positive, got ",
                 img.width, "x", img.height);
    GANINV_CHECK(img.channels == 1 || img.channels == 3 || img.channels == 4, ShapeError, what,
                 ": image channels must be 1, 3 or 4, got ", img.channels);
    GANINV_CHECK(img.pixels.size() == img.pixel_count() * static_cast<std::size_t>(img.channels), ShapeError, what,
                 ": ", img.width, "x", img.height, "x", img.channels, " image needs ",
                 img.pixel_count() * static_cast<std::size_t>(img.channels), " bytes, has ", img.pixels.size());
}

namespace detail {

/// ITU-R BT.601 luma, the weights PIL's convert("L") and most grayscale datasets use.
inline constexpr double kLumaR = 0.299, kLumaG = 0.587, kLumaB = 0.114;

inline std::vector<unsigned char> read_file_bytes(const std::filesystem::path& path, const std::string& what) {
    std::error_code ec;
    GANINV_CHECK(std::filesystem::is_regular_file(path, ec), IoError, what, ": no such file '", path.string(), "'");
    std::ifstream in(path, std::ios::binary);
    GANINV_CHECK(in.good(), IoError, what, ": cannot open '", path.string(), "'");
    std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    GANINV_CHECK(!in.bad(), IoError, what, ": error while reading '", path.string(), "'");
    return bytes;
}

}  // namespace detail

/// Converts between 1 (gray), 3 (RGB) and 4 (RGBA) channels. RGB->gray rounds the BT.601 luma,
/// gray->RGB replicates, alpha is dropped (or added as opaque).
inline Image convert_channels(const Image& img, int channels) {
    expect_valid_image(img, "convert_channels");
    GANINV_CHECK(channels == 1 || channels == 3 || channels == 4, ValueError,
                 "convert_channels: target channels must be 1, 3 or 4, got ", channels);
    if (channels == img.channels) return img;
    Image out = make_image(img.width, img.height, channels);
    const std::size_t n = img.pixel_count();
    const auto in_c = static_cast<std::size_t>(img.channels), out_c = static_cast<std::size_t>(channels);
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint8_t* src = &img.pixels[i * in_c];
        std::uint8_t* dst = &out.pixels[i * out_c];
        if (channels == 1) {
            // Source is RGB or RGBA here (a gray source returned above).
            dst[0] = static_cast<std::uint8_t>(
                std::lround(detail::kLumaR * src[0] + detail::kLumaG * src[1] + detail::kLumaB * src[2]));
        } else {
            for (std::size_t c = 0; c < 3; ++c) dst[c] = img.channels == 1 ? src[0] : src[c];
            if (channels == 4) dst[3] = 255;
        }
    }
    return out;
}

/// The default pixel limit of the image loaders: 64 Mpx (8192 x 8192). The decoded 8-bit image
/// and its float tensor cost ~16 bytes a pixel, so a few hundred bytes of compressed input must
/// not be able to ask for gigabytes; callers that do want larger inputs pass a higher limit.
inline constexpr std::uint64_t kDefaultMaxImagePixels = std::uint64_t{8192} * 8192;

namespace detail {

/// stb_image 2.27 fills a 257-entry array from a JPEG DHT table's 16 code counts without checking
/// that they sum to at most 256 (9 bytes, ffd8ffc401a20048d9, write past it). The segments are
/// walked as stb walks them (lengths for headers, byte scan through entropy-coded data) and a
/// truncated DHT segment or a table with more than 256 codes is refused before stb sees the file.
inline void check_jpeg_huffman_tables(std::span<const unsigned char> b, const std::string& name) {
    // stb takes any run of 0xFF before the SOI code as the marker (ff ff d8 is a JPEG to it), so
    // the same run is skipped here (the fuzzer found this way past a check of b[0..1] == ff d8).
    std::size_t i = 0;
    while (i < b.size() && b[i] == 0xFF) ++i;
    if (i == 0 || i >= b.size() || b[i] != 0xD8) return;  // not a JPEG
    ++i;
    while (i < b.size()) {
        if (b[i] != 0xFF) {  // entropy-coded data between markers
            ++i;
            continue;
        }
        while (i < b.size() && b[i] == 0xFF) ++i;  // fill bytes
        if (i >= b.size()) return;
        const unsigned marker = b[i++];
        // Byte stuffing (FF00), TEM, SOI and the restart markers carry no length; EOI ends the image.
        if (marker == 0x00 || marker == 0x01 || marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7)) continue;
        if (marker == 0xD9 || i + 2 > b.size()) return;
        const std::size_t len = (std::size_t{b[i]} << 8) | b[i + 1];
        if (marker == 0xC4) {
            GANINV_CHECK(len >= 2 && i + len <= b.size(), FormatError, "load_image: '", name,
                         "': corrupt JPEG: Huffman table segment (DHT) is truncated");
            std::size_t p = i + 2;
            const std::size_t end = i + len;
            while (p < end) {
                GANINV_CHECK(p + 17 <= end, FormatError, "load_image: '", name,
                             "': corrupt JPEG: Huffman table header runs past its segment");
                std::size_t codes = 0;
                for (std::size_t k = 1; k <= 16; ++k) codes += b[p + k];
                GANINV_CHECK(codes <= 256, FormatError, "load_image: '", name, "': corrupt JPEG: Huffman table declares ",
                             codes, " codes (at most 256)");
                p += 17 + codes;
            }
            GANINV_CHECK(p == end, FormatError, "load_image: '", name,
                         "': corrupt JPEG: Huffman table runs past its segment");
        }
        i += len;
    }
}

/// stb_image 2.27 reads the width, height and maximum value of a binary PNM (P5/P6) into an int
/// with no overflow check (signed overflow, UB, on "P5 2222222222..."; found by fuzz_image).
/// The same fields are read here the way stb reads them (white space and # comments between
/// them) and any value above stb's own dimension limit of 2^24 is refused before stb sees it.
inline void check_pnm_header(std::span<const unsigned char> b, const std::string& name) {
    if (b.size() < 2 || b[0] != 'P' || (b[1] != '5' && b[1] != '6')) return;
    std::size_t i = 2;
    const auto space = [](unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
    for (int field = 0; field < 3; ++field) {
        for (;;) {  // white space, then a comment to the end of its line, repeatedly
            while (i < b.size() && space(b[i])) ++i;
            if (i >= b.size() || b[i] != '#') break;
            while (i < b.size() && b[i] != '\n' && b[i] != '\r') ++i;
        }
        std::uint64_t value = 0;
        for (; i < b.size() && b[i] >= '0' && b[i] <= '9'; ++i) {
            value = value * 10 + (b[i] - '0');
            GANINV_CHECK(value <= (std::uint64_t{1} << 24), FormatError, "load_image: '", name,
                         "': corrupt PNM header: ", field == 0 ? "width" : field == 1 ? "height" : "maximum value",
                         " is too large");
        }
    }
}

/// A PNG chunk type for a message: the four letters, or their hex codes when not letters.
inline std::string printable_chunk_type(const std::string& type) {
    bool letters = true;
    for (char c : type) letters = letters && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'));
    if (letters) return concat("'", type, "'");
    std::string hex = "0x";
    static constexpr char kDigits[] = "0123456789abcdef";
    for (char c : type) {
        const auto u = static_cast<unsigned char>(c);
        hex += kDigits[u >> 4];
        hex += kDigits[u & 15];
    }
    return hex;
}

/// stb_image 2.27 grows its buffer for a PNG's compressed data to the length an IDAT chunk
/// declares (doubling up to 2^31 bytes) before it reads the chunk, so 110 bytes of PNG asked for
/// 2 GiB (found by fuzz_image, corpus `crash_png_idat_length_past_end.png`). The chunks are
/// walked here first: every chunk must lie inside the file (length, type, data and CRC), which
/// bounds what stb allocates by the file's size.
inline void check_png_chunks(std::span<const unsigned char> b, const std::string& name) {
    static constexpr unsigned char kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (b.size() < 8 || !std::equal(kSignature, kSignature + 8, b.begin())) return;  // not a PNG
    std::size_t i = 8;
    while (i + 8 <= b.size()) {
        const std::uint64_t len = (std::uint64_t{b[i]} << 24) | (std::uint64_t{b[i + 1]} << 16) |
                                  (std::uint64_t{b[i + 2]} << 8) | b[i + 3];
        const std::string type(reinterpret_cast<const char*>(b.data() + i + 4), 4);
        const std::uint64_t left = b.size() - i - 8;  // bytes after this chunk's length and type
        GANINV_CHECK(len + 4 <= left, FormatError, "load_image: '", name, "': corrupt PNG: chunk ",
                     printable_chunk_type(type), " at byte ", i, " declares ", len, " bytes of data but the file has ",
                     left < 4 ? 0 : left - 4, " left (truncated or corrupt file)");
        if (type == "IEND") return;
        i += 12 + static_cast<std::size_t>(len);
    }
}

}  // namespace detail

/// Decodes an encoded image held in memory; `name` only labels the messages. The size the header
/// declares is checked against `max_pixels` before any pixel is decoded. Gray+alpha becomes gray
/// (alpha dropped); 16-bit images are reduced to 8 bits by stb. Undecodable content, or an image
/// above the limit -> FormatError.
inline Image decode_image(std::span<const unsigned char> bytes, const std::string& name,
                          std::uint64_t max_pixels = kDefaultMaxImagePixels) {
    GANINV_CHECK(!bytes.empty(), FormatError, "load_image: '", name, "' is empty");
    GANINV_CHECK(bytes.size() <= static_cast<std::size_t>(std::numeric_limits<int>::max()), FormatError,
                 "load_image: '", name, "' is too large for the decoder");
    const int size = static_cast<int>(bytes.size());
    const auto fail = [&] {
        const char* reason = stbi_failure_reason();
        throw FormatError(concat("load_image: cannot decode '", name, "': ", reason ? reason : "unknown"));
    };
    // stb parses the JPEG tables and PNM fields while reading the header too: the guards go first.
    detail::check_jpeg_huffman_tables(bytes, name);
    detail::check_pnm_header(bytes, name);
    detail::check_png_chunks(bytes, name);
    int w = 0, h = 0, c = 0;
    if (stbi_info_from_memory(bytes.data(), size, &w, &h, &c) == 0) fail();
    const std::uint64_t pixels = static_cast<std::uint64_t>(w) * static_cast<std::uint64_t>(h);
    GANINV_CHECK(w > 0 && h > 0 && pixels <= max_pixels, FormatError, "load_image: '", name, "' declares ", w, "x",
                 h, " pixels (", pixels, "), above the limit of ", max_pixels,
                 " pixels (raise it with --max-pixels, or the max_pixels argument)");
    std::unique_ptr<stbi_uc, void (*)(void*)> data(stbi_load_from_memory(bytes.data(), size, &w, &h, &c, 0),
                                                   stbi_image_free);
    if (!data) fail();
    // The decoder may disagree with its own header parser (a GIF frame larger than the screen):
    // the limit holds for what was decoded as well.
    GANINV_CHECK(w > 0 && h > 0 && static_cast<std::uint64_t>(w) * static_cast<std::uint64_t>(h) <= max_pixels &&
                     c >= 1 && c <= 4,
                 FormatError, "load_image: '", name, "' decoded to an unusable ", w, "x", h, "x", c, " image");
    Image img{w, h, c, {}};
    img.pixels.assign(data.get(), data.get() + img.pixel_count() * static_cast<std::size_t>(c));
    if (c == 2) {  // gray + alpha: keep the gray plane so that channels stay in {1, 3, 4}
        Image gray = make_image(w, h, 1);
        for (std::size_t i = 0; i < gray.pixels.size(); ++i) gray.pixels[i] = img.pixels[2 * i];
        return gray;
    }
    return img;
}

/// Decodes an image file (see decode_image). Missing/unreadable file -> IoError, undecodable
/// content or more than `max_pixels` pixels -> FormatError.
inline Image load_image(const std::filesystem::path& path, std::uint64_t max_pixels = kDefaultMaxImagePixels) {
    // Reading the bytes ourselves (instead of stbi_load) keeps non-ASCII paths working and lets
    // "missing" and "corrupt" be told apart.
    const std::vector<unsigned char> bytes = detail::read_file_bytes(path, "load_image");
    return decode_image(bytes, path.string(), max_pixels);
}

/// The formats the writers produce. The file name's extension picks one (image_format_for).
enum class ImageFormat { png, jpeg, bmp };

inline const char* to_string(ImageFormat f) {
    switch (f) {
        case ImageFormat::png: return "PNG";
        case ImageFormat::jpeg: return "JPEG";
        case ImageFormat::bmp: return "BMP";
    }
    return "?";
}

/// .png, .jpg/.jpeg or .bmp (any case) -> the format; anything else is a ValueError naming the
/// file, so that no writer ever puts one format's bytes under another format's name.
inline ImageFormat image_format_for(const std::filesystem::path& path) {
    std::string ext = path.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (ext == ".png") return ImageFormat::png;
    if (ext == ".jpg" || ext == ".jpeg") return ImageFormat::jpeg;
    if (ext == ".bmp") return ImageFormat::bmp;
    throw ValueError(concat("'", path.string(), "': cannot tell the image format from the extension '", ext,
                            "'; use .png, .jpg/.jpeg or .bmp"));
}

/// Quality of the JPEG writer (stb's scale, 1-100): high enough that reconstructions keep their
/// detail; PNG remains the lossless choice.
inline constexpr int kDefaultJpegQuality = 95;

/// `img` encoded in memory as PNG, JPEG (alpha dropped: JPEG has none) or BMP.
inline std::vector<unsigned char> encode_image(const Image& img, ImageFormat format,
                                               int jpeg_quality = kDefaultJpegQuality) {
    expect_valid_image(img, concat("encode_image (", to_string(format), ")"));
    GANINV_CHECK(jpeg_quality >= 1 && jpeg_quality <= 100, ValueError, "encode_image: JPEG quality must be in [1, 100], got ",
                 jpeg_quality);
    std::vector<unsigned char> encoded;
    const auto append = [](void* context, void* data, int size) {
        auto* buffer = static_cast<std::vector<unsigned char>*>(context);
        const auto* bytes = static_cast<const unsigned char*>(data);
        buffer->insert(buffer->end(), bytes, bytes + size);
    };
    int ok = 0;
    if (format == ImageFormat::png)
        ok = stbi_write_png_to_func(append, &encoded, img.width, img.height, img.channels, img.pixels.data(),
                                    static_cast<int>(img.row_bytes()));
    else if (format == ImageFormat::jpeg)
        ok = stbi_write_jpg_to_func(append, &encoded, img.width, img.height, img.channels, img.pixels.data(), jpeg_quality);
    else
        ok = stbi_write_bmp_to_func(append, &encoded, img.width, img.height, img.channels, img.pixels.data());
    GANINV_CHECK(ok != 0 && !encoded.empty(), IoError, "encode_image: ", to_string(format), " encoding of a ",
                 img.width, "x", img.height, "x", img.channels, " image failed");
    return encoded;
}

namespace detail {

/// Writes encoded bytes all-or-nothing (file_write.hpp); `what` names the caller in the messages,
/// which also name the file and the system's reason.
inline void write_encoded(const std::filesystem::path& path, const std::vector<unsigned char>& encoded, const char* what) {
    try {
        write_file_atomically(path, encoded);
    } catch (const IoError& e) {
        throw IoError(concat(what, ": ", e.what()));
    }
}

}  // namespace detail

/// Writes `img` as PNG, whatever the extension. Invalid image -> ShapeError; unwritable path -> IoError.
inline void save_png(const std::filesystem::path& path, const Image& img) {
    expect_valid_image(img, concat("save_png('", path.string(), "')"));
    detail::write_encoded(path, encode_image(img, ImageFormat::png), "save_png");
}

/// Writes `img` in the format its extension names (image_format_for): an unknown extension is a
/// ValueError before anything is written. Invalid image -> ShapeError; unwritable path -> IoError.
inline void save_image(const std::filesystem::path& path, const Image& img, int jpeg_quality = kDefaultJpegQuality) {
    const ImageFormat format = image_format_for(path);
    expect_valid_image(img, concat("save_image('", path.string(), "')"));
    detail::write_encoded(path, encode_image(img, format, jpeg_quality), "save_image");
}

/// [1, channels, H, W] float tensor with values pixel/127.5 - 1 in [-1, 1]. `channels` is 1 or 3:
/// RGB->gray uses the (unrounded) BT.601 luma, gray->RGB replicates, alpha is dropped.
inline Tensor<float> image_to_tensor(const Image& img, int channels) {
    expect_valid_image(img, "image_to_tensor");
    GANINV_CHECK(channels == 1 || channels == 3, ValueError, "image_to_tensor: channels must be 1 or 3, got ",
                 channels);
    const Index h = img.height, w = img.width, plane = h * w;
    Tensor<float> t({1, channels, h, w});
    const auto in_c = static_cast<std::size_t>(img.channels);
    for (Index i = 0; i < plane; ++i) {
        const std::uint8_t* px = &img.pixels[static_cast<std::size_t>(i) * in_c];
        if (channels == 3) {
            for (Index c = 0; c < 3; ++c)
                t[c * plane + i] = static_cast<float>(img.channels == 1 ? px[0] : px[c]) / 127.5f - 1.0f;
        } else {
            // Keeping the luma unrounded loses no information to the 8-bit grid; the weights sum to
            // 1, so this equals to_channels() of the RGB tensor.
            const double luma = img.channels == 1
                                    ? px[0]
                                    : detail::kLumaR * px[0] + detail::kLumaG * px[1] + detail::kLumaB * px[2];
            t[i] = static_cast<float>(luma / 127.5 - 1.0);
        }
    }
    return t;
}

/// Stacks same-sized images into one [N, channels, H, W] tensor (see image_to_tensor).
inline Tensor<float> images_to_tensor(const std::vector<Image>& images, int channels) {
    GANINV_CHECK(!images.empty(), ValueError, "images_to_tensor: no images given");
    const Tensor<float> first = image_to_tensor(images[0], channels);
    const Index n = static_cast<Index>(images.size()), per_image = first.numel();
    Tensor<float> batch({n, channels, first.dim(2), first.dim(3)});
    std::copy(first.values().begin(), first.values().end(), batch.data());
    for (Index i = 1; i < n; ++i) {
        const Image& img = images[static_cast<std::size_t>(i)];
        GANINV_CHECK(img.width == images[0].width && img.height == images[0].height, ShapeError,
                     "images_to_tensor: image ", i, " is ", img.width, "x", img.height, ", image 0 is ",
                     images[0].width, "x", images[0].height);
        const Tensor<float> t = image_to_tensor(img, channels);
        std::copy(t.values().begin(), t.values().end(), batch.data() + i * per_image);
    }
    return batch;
}

/// The official StyleGAN2 float->uint8 step, `(x * 127.5 + 128).clamp(0, 255).to(uint8)`, bit for
/// bit: two float32 roundings (as two separate PyTorch kernels do), then truncation toward zero.
inline std::uint8_t float_to_pixel(float x) {
    // Going through double and back keeps the compiler from fusing the two float operations into
    // one FMA (GCC does so under the default -ffp-contract=fast), which could move a value across
    // an integer boundary: the double product of two floats is exact, so each cast rounds once.
    const float scaled = static_cast<float>(static_cast<double>(x) * 127.5);
    const float shifted = static_cast<float>(static_cast<double>(scaled) + 128.0);
    const float clamped = std::clamp(shifted, 0.0f, 255.0f);
    return static_cast<std::uint8_t>(clamped);  // conversion truncates toward zero
}

/// Batch entry `n` of a [N, C, H, W] tensor (C = 1 or 3) as an 8-bit image, via float_to_pixel.
/// NaN -> ValueError naming the index; +-inf clamp like any out-of-range value.
inline Image tensor_to_image(const Tensor<float>& t, Index n = 0) {
    GANINV_CHECK(t.rank() == 4, ShapeError, "tensor_to_image: expected a [N, C, H, W] tensor, got shape ",
                 shape_to_string(t.shape()));
    const Index batch = t.dim(0), channels = t.dim(1), h = t.dim(2), w = t.dim(3);
    GANINV_CHECK(channels == 1 || channels == 3, ShapeError, "tensor_to_image: channels must be 1 or 3, got shape ",
                 shape_to_string(t.shape()));
    GANINV_CHECK(h > 0 && w > 0, ShapeError, "tensor_to_image: empty image in shape ", shape_to_string(t.shape()));
    GANINV_CHECK(h <= std::numeric_limits<int>::max() && w <= std::numeric_limits<int>::max(), ShapeError,
                 "tensor_to_image: image too large, shape ", shape_to_string(t.shape()));
    GANINV_CHECK(n >= 0 && n < batch, ValueError, "tensor_to_image: batch index n = ", n, " outside [0, ", batch,
                 ")");
    Image img = make_image(static_cast<int>(w), static_cast<int>(h), static_cast<int>(channels));
    const Index plane = h * w;
    const float* src = t.data() + n * channels * plane;
    for (Index c = 0; c < channels; ++c) {
        for (Index i = 0; i < plane; ++i) {
            const float x = src[c * plane + i];
            GANINV_CHECK(!std::isnan(x), ValueError, "tensor_to_image: NaN at index [", n, ", ", c, ", ", i / w,
                         ", ", i % w, "] of tensor shape ", shape_to_string(t.shape()));
            img.pixels[static_cast<std::size_t>(i * channels + c)] = float_to_pixel(x);
        }
    }
    return img;
}

/// Every batch entry of a [N, C, H, W] tensor as an image.
inline std::vector<Image> tensor_to_images(const Tensor<float>& t) {
    GANINV_CHECK(t.rank() == 4, ShapeError, "tensor_to_images: expected a [N, C, H, W] tensor, got shape ",
                 shape_to_string(t.shape()));
    std::vector<Image> images;
    images.reserve(static_cast<std::size_t>(t.dim(0)));
    for (Index n = 0; n < t.dim(0); ++n) images.push_back(tensor_to_image(t, n));
    return images;
}

}  // namespace ganinv
