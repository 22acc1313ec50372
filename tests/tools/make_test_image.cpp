// Writes a deterministic test picture of any size, for the CLI tests that need inputs larger than
// the bundled fixtures (ganinv metrics on 64 Mpx): gradients with texture, and a variant with a
// perturbation of +-AMPLITUDE grey levels, so that a pair has non-trivial PSNR and SSIM. The
// perturbation is periodic (not random) so that the PNGs stay small and quick to write.
// Usage: make_test_image OUT.png WIDTH HEIGHT CHANNELS [AMPLITUDE]
#include <ganinv/io/image.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

int main(int argc, char** argv) {
    if (argc < 5 || argc > 6) {
        std::fprintf(stderr, "usage: %s OUT.png WIDTH HEIGHT CHANNELS [AMPLITUDE]\n", argv[0]);
        return 2;
    }
    try {
        const int w = std::stoi(argv[2]), h = std::stoi(argv[3]), c = std::stoi(argv[4]);
        const int amplitude = argc > 5 ? std::stoi(argv[5]) : 0;
        ganinv::Image img = ganinv::make_image(w, h, c);
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x)
                for (int k = 0; k < c; ++k) {
                    // Gradients of different periods per channel plus a fine texture, so that every
                    // SSIM window sees both structure and contrast.
                    int v = (x * (k + 1) / 16 + y / 24 + ((x ^ y) & 15) * 3) & 255;
                    if (amplitude > 0) v += (x * 7 + y * 13 + (x / 5) * (y / 3) + k) % (2 * amplitude + 1) - amplitude;
                    img.at(x, y, k) = static_cast<std::uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
                }
        stbi_write_png_compression_level = 1;  // large test inputs: fast to write, size is secondary
        ganinv::save_png(argv[1], img);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "make_test_image: %s\n", e.what());
        return 1;
    }
}
