/// @file cuda_catch.hpp
/// @brief Catch2 for the CUDA tests: the v2 single header when present, else v3. (The shared
///        tests/catch.hpp prefers v3, which breaks on machines that have a v3 header but only the
///        packed v2 of scripts/gpu_deps.sh to link against; these tests use no matcher either way.)
#pragma once

#if __has_include(<catch2/catch.hpp>)
#include <catch2/catch.hpp>
#else
#include <catch2/catch_test_macros.hpp>
#endif
