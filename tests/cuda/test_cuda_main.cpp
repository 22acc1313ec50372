// Entry point of the CUDA test binary: without a usable CUDA device it prints why and returns
// 77, which CTest reports as "skipped" (SKIP_RETURN_CODE), never as passed.
#if __has_include(<catch2/catch.hpp>)  // same choice as cuda_catch.hpp
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#else
#include <catch2/catch_session.hpp>
#endif

#include <ganinv/cuda/check.hpp>

#include <cstdio>

int main(int argc, char** argv) {
    if (!ganinv::cuda_device_available()) {
        std::puts("SKIPPED: no CUDA device");
        return 77;
    }
    return Catch::Session().run(argc, argv);
}
