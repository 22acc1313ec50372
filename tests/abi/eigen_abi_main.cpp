// The other half, compiled without AVX (-mno-avx): the mix an nvcc TU without -Xcompiler=-march
// makes next to -march=native C++ TUs. The program must see the disagreement and name both files;
// it prints the message and exits 0 when it does (ctest matches the message), 1 when it does not.
#include <ganinv/core/eigen.hpp>

#include <cstdio>

int main() {
    const std::string mismatch = ganinv::eigen_abi_mismatch();
    if (mismatch.empty()) {
        std::puts("eigen_abi_mismatch() saw no difference between an AVX and a non-AVX translation unit");
        return 1;
    }
    std::printf("%s\n", mismatch.c_str());
    return 0;
}
