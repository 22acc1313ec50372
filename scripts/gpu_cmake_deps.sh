#!/usr/bin/env bash
# Sourced by scripts/gpu_check.sh and scripts/gpu_invert.sh (with $root set to the repository):
# fills the array `deps` with the CMake arguments that point at the dependencies packed into
# .gpudeps/ by scripts/gpu_deps.sh, when that folder exists (the GPU machines lack them).
deps=()
if [ -d "$root/.gpudeps" ]; then
  _d="$root/.gpudeps"
  deps=(-DEigen3_DIR="$_d/lib/cmake/Eigen3" -DCatch2_DIR="$_d/lib/cmake/Catch2"
        -DSTB_INCLUDE_DIR="$_d/include/stb" -DSTB_LIBRARY="$_d/lib/libstb.a")
  # cuDNN: the packed headers; the library is the machine's own (/usr/lib/x86_64-linux-gnu).
  [ -e "$_d/include/cudnn.h" ] && deps+=(-DCUDNN_INCLUDE_DIR="$_d/include")
fi
