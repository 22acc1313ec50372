// Corpus replay: feeds every file under the given paths to the same LLVMFuzzerTestOneInput a
// fuzz target links, with the ordinary compiler and no libFuzzer, so that the crash reproducers
// in tests/fuzz/corpus stay fixed in every build (registered as ctest fuzz_replay_*).
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    std::vector<fs::path> files;
    for (int i = 1; i < argc; ++i) {
        const fs::path p = argv[i];
        if (fs::is_directory(p)) {
            for (const auto& e : fs::recursive_directory_iterator(p))
                if (e.is_regular_file()) files.push_back(e.path());
        } else {
            files.push_back(p);
        }
    }
    if (files.empty()) {
        std::cerr << "usage: " << argv[0] << " CORPUS_DIR_OR_FILE...  (found no input files)\n";
        return 2;
    }
    for (const fs::path& f : files) {
        std::ifstream in(f, std::ios::binary);
        const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        try {
            LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
        } catch (const std::exception& e) {
            std::cerr << "FAIL " << f.string() << ": escaped exception: " << e.what() << "\n";
            return 1;
        }
    }
    std::cout << "replayed " << files.size() << " inputs without a finding\n";
    return 0;
}
