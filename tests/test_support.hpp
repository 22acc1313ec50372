/// @file test_support.hpp
/// @brief Helpers shared by the tests: where the data lives, parity assertions, temp files.
#pragma once

#include "catch.hpp"

#include <ganinv/core/tensor.hpp>

#include <cmath>
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

/// Central differences at five step sizes; the closest to `analytic` is returned. A lrelu kink
/// (or clamp edge) within one step spoils that step's estimate, but not all five.
template <class Loss>
double best_finite_difference(Loss&& loss, float* value, double analytic) {
    const float keep = *value;
    double best = 0, best_err = 1e300;
    for (float eps : {1e-2f, 3e-3f, 1e-3f, 3e-4f, 1e-4f}) {
        *value = keep + eps;
        const double lp = loss();
        *value = keep - eps;
        const double lm = loss();
        *value = keep;
        const double fd = (lp - lm) / (2.0 * static_cast<double>(eps));
        if (std::fabs(fd - analytic) < best_err) {
            best_err = std::fabs(fd - analytic);
            best = fd;
        }
    }
    return best;
}

/// Asserts ||actual - expected|| / ||expected|| <= bound and prints the error on failure.
#define GANINV_REQUIRE_CLOSE(actual, expected, bound, what)                                      \
    do {                                                                                         \
        const double ganinv_err_ = ::ganinv::relative_l2_error((actual), (expected));           \
        INFO(what << ": relative L2 error " << ganinv_err_ << " (bound " << (bound) << ")");    \
        REQUIRE(ganinv_err_ <= (bound));                                                          \
    } while (0)

}  // namespace ganinv::test
