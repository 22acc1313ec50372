// libFuzzer target: the image loader (stb_image behind ganinv's header and JPEG-table checks).
// In the fuzzing build (GANINV_FUZZ_INSTRUMENT_STB) stb_image's implementation is compiled into
// this binary, so the sanitizers see inside the decoder too (Debian's libstb is not instrumented);
// the replay build uses the library as the tool does. Any ganinv::Error is a correct rejection.
#if defined(GANINV_FUZZ_INSTRUMENT_STB)
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
#undef STB_IMAGE_IMPLEMENTATION
#endif
#include <ganinv/io/image.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace ganinv;
    // A small limit keeps every run fast; the limit logic is the same at any value.
    constexpr std::uint64_t kMaxPixels = 1 << 20;
    try {
        const Image img = decode_image(std::span<const unsigned char>(data, size), "fuzz input", kMaxPixels);
        expect_valid_image(img, "decoded fuzz input");
        if (img.pixel_count() > kMaxPixels) std::abort();
    } catch (const Error&) {
    }
    return 0;
}
