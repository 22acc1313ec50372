/// @file gif.hpp
/// @brief A small animated-GIF (GIF89a) writer for interpolation and edit previews, with its own
///        LZW coder, so the library needs no image-writing dependency beyond stb's PNG.
///
/// Colours: when every frame is gray (1 channel, or RGB with r = g = b) the global palette is
/// the 256 gray levels and the output is lossless. Otherwise a fixed palette is used: the 6x6x6
/// colour cube (levels 0, 51, ..., 255) plus 40 extra grays, each pixel mapped to its nearest
/// entry; no per-image palette search, no dithering (previews, not archival copies).
#pragma once

#include "ganinv/core/error.hpp"
#include "ganinv/io/file_write.hpp"
#include "ganinv/io/image.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ganinv {

struct GifOptions {
    int delay_cs = 8;  ///< frame delay in 1/100 s
    int loops = 0;     ///< 0 = repeat forever
};

namespace detail {

using GifPalette = std::array<std::array<std::uint8_t, 3>, 256>;

inline GifPalette gif_gray_palette() {
    GifPalette p{};
    for (int i = 0; i < 256; ++i) p[static_cast<std::size_t>(i)] = {static_cast<std::uint8_t>(i), static_cast<std::uint8_t>(i), static_cast<std::uint8_t>(i)};
    return p;
}

/// Entries 0..215: the colour cube (index 36 r + 6 g + b); 216..255: grays at levels
/// round(255 (k + 1) / 41), k = 0..39, filling the gaps between the cube's 6 grays.
inline GifPalette gif_colour_palette() {
    GifPalette p{};
    for (int i = 0; i < 216; ++i)
        p[static_cast<std::size_t>(i)] = {static_cast<std::uint8_t>(51 * (i / 36)), static_cast<std::uint8_t>(51 * ((i / 6) % 6)),
                                          static_cast<std::uint8_t>(51 * (i % 6))};
    for (int k = 0; k < 40; ++k) {
        const auto v = static_cast<std::uint8_t>((255 * (k + 1) + 20) / 41);
        p[static_cast<std::size_t>(216 + k)] = {v, v, v};
    }
    return p;
}

inline std::uint8_t gif_nearest_colour(const GifPalette& pal, int r, int g, int b) {
    const auto q = [](int v) { return (v + 25) / 51; };  // nearest cube level
    int best = 36 * q(r) + 6 * q(g) + q(b);
    auto dist = [&](int i) {
        const auto& c = pal[static_cast<std::size_t>(i)];
        return (c[0] - r) * (c[0] - r) + (c[1] - g) * (c[1] - g) + (c[2] - b) * (c[2] - b);
    };
    int best_d = dist(best);
    for (int i = 216; i < 256; ++i)  // a near-gray pixel may sit closer to one of the extra grays
        if (const int d = dist(i); d < best_d) {
            best_d = d;
            best = i;
        }
    return static_cast<std::uint8_t>(best);
}

/// Packs variable-width codes LSB first, as GIF requires.
class GifBitWriter {
public:
    void put(int code, int width) {
        acc_ |= static_cast<std::uint32_t>(code) << bits_;
        bits_ += width;
        while (bits_ >= 8) {
            bytes.push_back(static_cast<std::uint8_t>(acc_ & 0xFF));
            acc_ >>= 8;
            bits_ -= 8;
        }
    }
    void flush() {
        if (bits_ > 0) bytes.push_back(static_cast<std::uint8_t>(acc_ & 0xFF));
        acc_ = 0;
        bits_ = 0;
    }
    std::vector<std::uint8_t> bytes;

private:
    std::uint32_t acc_ = 0;
    int bits_ = 0;
};

/// LZW-compresses 8-bit palette indices (minimum code size 8). The dictionary maps
/// (prefix code, next index) -> code in a flat 4096 x 256 table; when all 4096 codes are used a
/// clear code restarts it (only the slots used are wiped, not the 2 MB table). The code width
/// grows as soon as the next free code no longer fits, one step ahead of the decoder, which
/// adds its entries one code later.
inline std::vector<std::uint8_t> gif_lzw(const std::vector<std::uint8_t>& indices) {
    constexpr int kClear = 256, kEnd = 257, kMaxCodes = 4096;
    std::vector<std::int16_t> table(static_cast<std::size_t>(kMaxCodes) * 256, -1);
    std::vector<std::size_t> used;
    used.reserve(kMaxCodes);
    GifBitWriter out;
    int width = 9, next = kEnd + 1;
    auto reset = [&] {
        for (const std::size_t slot : used) table[slot] = -1;
        used.clear();
        width = 9;
        next = kEnd + 1;
    };
    out.put(kClear, width);
    int prefix = indices.empty() ? -1 : indices[0];
    for (std::size_t i = 1; i < indices.size(); ++i) {
        const int k = indices[i];
        const std::int16_t found = table[static_cast<std::size_t>(prefix) * 256 + static_cast<std::size_t>(k)];
        if (found >= 0) {
            prefix = found;
            continue;
        }
        out.put(prefix, width);
        if (next < kMaxCodes) {
            const std::size_t slot = static_cast<std::size_t>(prefix) * 256 + static_cast<std::size_t>(k);
            table[slot] = static_cast<std::int16_t>(next++);
            used.push_back(slot);
            if (next > (1 << width) && width < 12) ++width;
        } else {
            out.put(kClear, width);
            reset();
        }
        prefix = k;
    }
    if (prefix >= 0) out.put(prefix, width);
    // The decoder adds one more (lagging) entry on reading that last code and widens its codes
    // if the table just reached a power of two: the end code must follow suit.
    if (next == (1 << width) && width < 12) ++width;
    out.put(kEnd, width);
    out.flush();
    return std::move(out.bytes);
}

inline void put_u16(std::vector<std::uint8_t>& b, int v) {
    b.push_back(static_cast<std::uint8_t>(v & 0xFF));
    b.push_back(static_cast<std::uint8_t>((v >> 8) & 0xFF));
}

inline bool is_gray(const Image& img) {
    if (img.channels == 1) return true;
    for (std::size_t i = 0; i < img.pixel_count(); ++i) {
        const std::uint8_t* p = &img.pixels[i * static_cast<std::size_t>(img.channels)];
        if (p[0] != p[1] || p[1] != p[2]) return false;
    }
    return true;
}

}  // namespace detail

/// The bytes of an animated GIF of `frames` (equal sizes; 1, 3 or 4 channels, alpha ignored).
inline std::vector<std::uint8_t> encode_gif(const std::vector<Image>& frames, const GifOptions& opts = {}) {
    GANINV_CHECK(!frames.empty(), ValueError, "encode_gif: no frames");
    GANINV_CHECK(opts.delay_cs >= 0 && opts.delay_cs <= 65535 && opts.loops >= 0 && opts.loops <= 65535, ValueError,
                 "encode_gif: delay and loop count must be in [0, 65535]");
    const int w = frames[0].width, h = frames[0].height;
    bool gray = true;
    for (std::size_t f = 0; f < frames.size(); ++f) {
        expect_valid_image(frames[f], concat("encode_gif: frame ", f));
        GANINV_CHECK(frames[f].width == w && frames[f].height == h, ShapeError, "encode_gif: frame ", f, " is ",
                     frames[f].width, "x", frames[f].height, ", frame 0 is ", w, "x", h);
        GANINV_CHECK(w <= 65535 && h <= 65535, ShapeError, "encode_gif: frames larger than 65535 pixels");
        gray = gray && detail::is_gray(frames[f]);
    }
    const detail::GifPalette pal = gray ? detail::gif_gray_palette() : detail::gif_colour_palette();
    std::vector<std::uint8_t> b{'G', 'I', 'F', '8', '9', 'a'};
    detail::put_u16(b, w);
    detail::put_u16(b, h);
    b.push_back(0xF7);  // global colour table of 2^(7+1) entries, 8-bit colour resolution
    b.push_back(0);     // background colour index
    b.push_back(0);     // square pixels
    for (const auto& c : pal) b.insert(b.end(), c.begin(), c.end());
    if (frames.size() > 1) {  // NETSCAPE2.0 application extension: the loop count
        const char* app = "NETSCAPE2.0";
        b.insert(b.end(), {0x21, 0xFF, 0x0B});
        b.insert(b.end(), app, app + 11);
        b.insert(b.end(), {0x03, 0x01});
        detail::put_u16(b, opts.loops);
        b.push_back(0);
    }
    std::vector<std::uint8_t> idx(static_cast<std::size_t>(w) * static_cast<std::size_t>(h));
    for (const Image& img : frames) {
        b.insert(b.end(), {0x21, 0xF9, 0x04, 0x04});  // graphic control: dispose = leave in place
        detail::put_u16(b, opts.delay_cs);
        b.insert(b.end(), {0x00, 0x00});
        b.push_back(0x2C);  // image descriptor: full frame, no local palette, not interlaced
        detail::put_u16(b, 0);
        detail::put_u16(b, 0);
        detail::put_u16(b, w);
        detail::put_u16(b, h);
        b.push_back(0);
        const auto ch = static_cast<std::size_t>(img.channels);
        for (std::size_t i = 0; i < idx.size(); ++i) {
            const std::uint8_t* p = &img.pixels[i * ch];
            idx[i] = gray ? p[0] : (ch == 1 ? detail::gif_nearest_colour(pal, p[0], p[0], p[0])
                                            : detail::gif_nearest_colour(pal, p[0], p[1], p[2]));
        }
        const std::vector<std::uint8_t> data = detail::gif_lzw(idx);
        b.push_back(8);  // LZW minimum code size
        for (std::size_t off = 0; off < data.size(); off += 255) {
            const std::size_t len = std::min<std::size_t>(255, data.size() - off);
            b.push_back(static_cast<std::uint8_t>(len));
            b.insert(b.end(), data.begin() + static_cast<std::ptrdiff_t>(off), data.begin() + static_cast<std::ptrdiff_t>(off + len));
        }
        b.push_back(0);  // end of the image data
    }
    b.push_back(0x3B);  // trailer
    return b;
}

inline void save_gif(const std::filesystem::path& path, const std::vector<Image>& frames, const GifOptions& opts = {}) {
    const std::vector<std::uint8_t> bytes = encode_gif(frames, opts);
    try {
        write_file_atomically(path, bytes);
    } catch (const IoError& e) {
        throw IoError(concat("save_gif: ", e.what()));
    }
}

}  // namespace ganinv
