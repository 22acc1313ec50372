// libFuzzer target: the JSON parser (safetensors headers, model configs). Any ganinv::Error is a
// correct rejection; anything else (another exception, a sanitizer report, a round trip that
// changes the document) is a finding.
#include <ganinv/core/json.hpp>
#include <ganinv/models/stylegan2_config.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace ganinv;
    Json doc;
    try {
        doc = Json::parse(std::string_view(reinterpret_cast<const char*>(data), size));
    } catch (const Error&) {
        return 0;
    }
    // What the writer prints, the parser must read back to the same text.
    const std::string once = doc.dump();
    if (Json::parse(once).dump() != once) std::abort();
    try {
        (void)StyleGAN2Config::from_json(doc);  // configs are validated before anything is built
    } catch (const Error&) {
    }
    return 0;
}
