// Half of the eigen_abi_guard test: a translation unit compiled with AVX (CMake adds -mavx), whose
// Eigen distrusts malloc's alignment. Its only job is to record that (ganinv/core/eigen.hpp).
#include <ganinv/core/eigen.hpp>
