#!/usr/bin/env bash
# Packs the header-only build dependencies of ganinv (Eigen, xtensor/xtl/xsimd, Catch2, stb, and the
# cuDNN headers) from
# this Debian machine into .gpudeps/, a CMake prefix that travels to a GPU machine that lacks them
# (the lent GPU machines have CUDA, CMake and PyTorch but none of these and no package registry).
# scripts/gpu_check.sh uses .gpudeps/ when present. About 17 MB; .gpudeps/ is kept out of git
# through .git/info/exclude. Usage: scripts/gpu_deps.sh
set -euo pipefail
cd "$(dirname "$0")/.."
d=.gpudeps
rm -rf "$d"
mkdir -p "$d/include" "$d/lib/cmake"
for h in eigen3 xtensor xtl xsimd catch2 stb xtensor.hpp; do
  [ -e "/usr/include/$h" ] && cp -r "/usr/include/$h" "$d/include/"
done
# cuDNN headers (the GPU machines have the cuDNN libraries but not the headers): the CUDA losses.
cudnn_h=""
for dir in /usr/local/cuda/include /usr/include /usr/include/x86_64-linux-gnu; do
  if [ -e "$dir/cudnn.h" ]; then cudnn_h="$dir"; break; fi
done
if [ -n "$cudnn_h" ]; then
  cp "$cudnn_h"/cudnn*.h "$d/include/"
else
  echo "gpu_deps: no cudnn.h found; the CUDA losses will not be built on the GPU machine" >&2
fi
cp /usr/lib/x86_64-linux-gnu/libstb.a "$d/lib/"
cp /usr/lib/libCatch2WithMain.a "$d/lib/" 2>/dev/null || true
ex="$(git rev-parse --git-path info/exclude)"; mkdir -p "$(dirname "$ex")"
grep -qx "/.gpudeps/" "$ex" 2>/dev/null || echo "/.gpudeps/" >> "$ex"

# Minimal package configs: imported targets with the names the project's CMake expects.
cfg() {  # cfg NAME VERSION BODY
  mkdir -p "$d/lib/cmake/$1"
  printf '%s\n' "$3" > "$d/lib/cmake/$1/$1Config.cmake"
  cat > "$d/lib/cmake/$1/$1ConfigVersion.cmake" <<EOV
set(PACKAGE_VERSION "$2")
if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
endif()
EOV
}
root='get_filename_component(_p "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)'
cfg Eigen3 3.4.0 "$root
if(NOT TARGET Eigen3::Eigen)
  add_library(Eigen3::Eigen INTERFACE IMPORTED)
  set_target_properties(Eigen3::Eigen PROPERTIES INTERFACE_INCLUDE_DIRECTORIES \"\${_p}/include/eigen3\")
endif()"
cfg xtensor 0.24.0 "$root
if(NOT TARGET xtensor)
  add_library(xtensor INTERFACE IMPORTED)
  set_target_properties(xtensor PROPERTIES INTERFACE_INCLUDE_DIRECTORIES \"\${_p}/include\")
endif()"
cfg Catch2 2.13.10 "$root
if(NOT TARGET Catch2::Catch2)
  add_library(Catch2::Catch2 INTERFACE IMPORTED)
  set_target_properties(Catch2::Catch2 PROPERTIES INTERFACE_INCLUDE_DIRECTORIES \"\${_p}/include\")
  add_library(Catch2::Catch2WithMain STATIC IMPORTED)
  set_target_properties(Catch2::Catch2WithMain PROPERTIES IMPORTED_LOCATION \"\${_p}/lib/libCatch2WithMain.a\"
                        INTERFACE_LINK_LIBRARIES Catch2::Catch2)
endif()"
du -sh "$d"
