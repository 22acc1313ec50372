/// @file eigen.hpp
/// @brief Eigen for ganinv's headers, with a start-up record of how each translation unit
///        configured it, so a program whose TUs disagree is told so instead of crashing.
///
/// Eigen's heap alignment follows the SIMD level a TU is compiled for: with AVX (-march=native on
/// most x86 hosts) EIGEN_MAX_ALIGN_BYTES is 32 and malloc is not trusted (EIGEN_MALLOC_ALREADY_ALIGNED
/// 0), so Eigen over-allocates and stores an offset; without it (or in the host pass of nvcc when
/// -march is not forwarded with -Xcompiler) malloc is trusted and the pointer is freed as is. A
/// matrix allocated in one kind of TU and freed in the other is a "double free or corruption"
/// far from its cause. Every ganinv header that uses Eigen includes this one; each TU that does
/// records its configuration before main() runs, and `eigen_abi_mismatch()` compares them.
#pragma once

#include <Eigen/Core>

#include <string>
#include <vector>

namespace ganinv {

/// How one translation unit configured Eigen.
struct EigenAbi {
    int max_align_bytes = 0;         ///< EIGEN_MAX_ALIGN_BYTES
    int malloc_already_aligned = 0;  ///< EIGEN_MALLOC_ALREADY_ALIGNED
    const char* translation_unit = "";
};

namespace detail {

/// Every record made so far (function-local static: safe to use from other TUs' initialisers).
inline std::vector<EigenAbi>& eigen_abi_records() {
    static std::vector<EigenAbi> records;
    return records;
}

inline bool record_eigen_abi(int max_align_bytes, int malloc_already_aligned, const char* translation_unit) {
    eigen_abi_records().push_back({max_align_bytes, malloc_already_aligned, translation_unit});
    return true;
}

}  // namespace detail

/// Empty when all `records` agree; otherwise a message naming two TUs that differ and the fix.
inline std::string eigen_abi_mismatch(const std::vector<EigenAbi>& records) {
    for (const EigenAbi& r : records) {
        const EigenAbi& first = records.front();
        if (r.max_align_bytes == first.max_align_bytes && r.malloc_already_aligned == first.malloc_already_aligned)
            continue;
        const auto describe = [](const EigenAbi& e) {
            return std::string(e.translation_unit) + " (EIGEN_MAX_ALIGN_BYTES " + std::to_string(e.max_align_bytes) +
                   ", EIGEN_MALLOC_ALREADY_ALIGNED " + std::to_string(e.malloc_already_aligned) + ")";
        };
        return "the program's translation units configure Eigen differently: " + describe(first) + " vs " +
               describe(r) +
               "; memory one allocates the other frees wrongly. Compile every TU for the same SIMD level (pass "
               "the C++ -march flags to nvcc's host compiler with -Xcompiler) or define EIGEN_MAX_ALIGN_BYTES "
               "for all of them";
    }
    return {};
}

/// The check over this program's own translation units.
inline std::string eigen_abi_mismatch() { return eigen_abi_mismatch(detail::eigen_abi_records()); }

}  // namespace ganinv

namespace {
// One record per translation unit (an unnamed namespace gives each TU its own variable).
#if defined(__GNUC__)
[[maybe_unused]] const bool ganinv_eigen_abi_recorded =
    ::ganinv::detail::record_eigen_abi(EIGEN_MAX_ALIGN_BYTES, EIGEN_MALLOC_ALREADY_ALIGNED, __BASE_FILE__);
#else
[[maybe_unused]] const bool ganinv_eigen_abi_recorded =
    ::ganinv::detail::record_eigen_abi(EIGEN_MAX_ALIGN_BYTES, EIGEN_MALLOC_ALREADY_ALIGNED, __FILE__);
#endif
}  // namespace
