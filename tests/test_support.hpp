/// @file test_support.hpp
/// @brief Helpers shared by the tests: where the data lives, parity assertions, temp files.
#pragma once

#include "catch.hpp"

#include <ganinv/core/tensor.hpp>

#include <filesystem>
#include <random>
#include <string>

namespace ganinv::test {

/// tests/data in the source tree (set by CMake).
inline std::filesystem::path data_dir() { return GANINV_TEST_DATA_DIR; }
/// The project's models/ folder (bundled demo generator).
inline std::filesystem::path models_dir() { return GANINV_MODELS_DIR; }

/// A fresh directory under the build tree's temp area, removed and recreated.
inline std::filesystem::path temp_dir(const std::string& name) {
    auto p = std::filesystem::temp_directory_path() / ("ganinv_test_" + name);
    std::filesystem::remove_all(p);
    std::filesystem::create_directories(p);
    return p;
}

/// Asserts ||actual - expected|| / ||expected|| <= bound and prints the error on failure.
#define GANINV_REQUIRE_CLOSE(actual, expected, bound, what)                                      \
    do {                                                                                         \
        const double ganinv_err_ = ::ganinv::relative_l2_error((actual), (expected));           \
        INFO(what << ": relative L2 error " << ganinv_err_ << " (bound " << (bound) << ")");    \
        REQUIRE(ganinv_err_ <= (bound));                                                          \
    } while (0)

}  // namespace ganinv::test
