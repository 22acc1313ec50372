// libFuzzer target: the safetensors reader, and the StyleGAN2 loader on files that carry a config.
// The reader works on paths, so each input goes to a per-process file (in /dev/shm when present).
// Any ganinv::Error is a correct rejection; anything else is a finding.
#include <ganinv/io/safetensors.hpp>
#include <ganinv/models/stylegan2_params.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include <unistd.h>

namespace {

std::filesystem::path scratch_file() {
    const std::filesystem::path dir = std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
    return dir / ("ganinv_fuzz_safetensors_" + std::to_string(::getpid()) + ".safetensors");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace ganinv;
    static const std::filesystem::path path = scratch_file();
    {
        std::FILE* f = std::fopen(path.c_str(), "wb");
        if (!f) return 0;
        if (size > 0) std::fwrite(data, 1, size, f);
        std::fclose(f);
    }
    try {
        const SafetensorsFile file(path);
        for (const SafetensorsEntry& e : file.entries()) {
            try {
                const Tensor<float> t = file.load(e.name);
                if (t.numel() != shape_numel(e.shape)) std::abort();
            } catch (const Error&) {
            }
        }
        if (file.metadata("config")) (void)load_stylegan2_params(file);
    } catch (const Error&) {
    }
    return 0;
}
