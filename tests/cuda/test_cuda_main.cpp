// Entry point of the CUDA test binaries: a build whose translation units disagree on Eigen's
// alignment fails at once; without a usable CUDA device it prints why and returns
// 77, which CTest reports as "skipped" (SKIP_RETURN_CODE), never as passed.
#if __has_include(<catch2/catch.hpp>)  // same choice as cuda_catch.hpp
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#else
#include <catch2/catch_session.hpp>
#endif

#include <ganinv/core/eigen.hpp>
#include <ganinv/cuda/check.hpp>

#include <cstdio>

int main(int argc, char** argv) {
    // Checked before the device: the .cu and .cpp files of this binary must agree on Eigen's
    // alignment (CMakeLists.txt, GANINV_CUDA_HOST_ARCH_FLAGS), and that needs no GPU to test.
    if (const std::string mismatch = ganinv::eigen_abi_mismatch(); !mismatch.empty()) {
        std::fprintf(stderr, "FAILED: %s\n", mismatch.c_str());
        return 1;
    }
    if (!ganinv::cuda_device_available()) {
        std::puts("SKIPPED: no CUDA device");
        return 77;
    }
    return Catch::Session().run(argc, argv);
}
