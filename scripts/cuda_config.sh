#!/usr/bin/env bash
# Sourced by scripts/demo.sh and scripts/test.sh: decides whether the CUDA targets are built, and
# for which architecture, the same way for both commands (so test.sh reuses the objects demo.sh
# built in build/ instead of recompiling the tool with other flags).
#   GANINV_CUDA=auto  (default) only when a GPU answers `nvidia-smi` and nvcc is installed, for
#                     that GPU's architecture only (compute capability 9.0 -> 90a, the Hopper
#                     wgmma kernels; 8.6 -> 86, ...)
#   GANINV_CUDA=1     also without a GPU (a compile check, as CI does); architecture of the GPU
#                     if there is one, else 90a
#   GANINV_CUDA=0     never
#   GANINV_CUDA_ARCH  overrides the architecture list (CMake's CMAKE_CUDA_ARCHITECTURES syntax)
# Sets: cuda_args (CMake arguments), cuda_on (1/0), cuda_gpu (1 when a GPU answered), cuda_note.

cuda_args=(-DGANINV_ENABLE_CUDA=OFF)
cuda_on=0
cuda_gpu=0
cuda_note=""

_cuda_nvcc=""
if command -v nvcc > /dev/null 2>&1; then _cuda_nvcc="$(command -v nvcc)"
elif [ -x /usr/local/cuda/bin/nvcc ]; then _cuda_nvcc=/usr/local/cuda/bin/nvcc; fi

# The compute capabilities of the GPUs, e.g. "90a" or "80;86"; empty without a working driver.
_cuda_gpu_arch=""
if command -v nvidia-smi > /dev/null 2>&1; then
  _caps="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | tr -d ' \r' | sort -u)" || _caps=""
  for _c in $_caps; do
    [[ "$_c" =~ ^([0-9]+)\.([0-9])$ ]] || continue
    _a="${BASH_REMATCH[1]}${BASH_REMATCH[2]}"
    [ "$_a" = 90 ] && _a=90a  # the wgmma (tensor-core) kernels need the arch-specific target
    _cuda_gpu_arch="${_cuda_gpu_arch:+$_cuda_gpu_arch;}$_a"
  done
fi
[ -n "$_cuda_gpu_arch" ] && cuda_gpu=1

case "${GANINV_CUDA:-auto}" in
  0) cuda_note="CUDA targets off (GANINV_CUDA=0)" ;;
  1)
    if [ -z "$_cuda_nvcc" ]; then
      echo "GANINV_CUDA=1 but nvcc was not found (PATH, /usr/local/cuda/bin): install the CUDA toolkit or unset GANINV_CUDA" >&2
      return 1 2> /dev/null || exit 1
    fi
    cuda_on=1
    _arch="${GANINV_CUDA_ARCH:-${_cuda_gpu_arch:-90a}}"
    cuda_note="CUDA targets on (GANINV_CUDA=1, sm_$_arch$([ $cuda_gpu = 1 ] || echo ', no GPU here: compile check only'))"
    ;;
  auto)
    if [ $cuda_gpu = 1 ] && [ -n "$_cuda_nvcc" ]; then
      cuda_on=1
      _arch="${GANINV_CUDA_ARCH:-$_cuda_gpu_arch}"
      cuda_note="CUDA targets on for this machine's GPU (sm_$_arch)"
    elif [ $cuda_gpu = 1 ]; then
      cuda_note="CUDA targets off: a GPU is present but nvcc is not installed"
    else
      cuda_note="CUDA targets off: no GPU (nvidia-smi found none); GANINV_CUDA=1 builds them anyway"
    fi
    ;;
  *)
    echo "GANINV_CUDA must be auto, 1 or 0, got '${GANINV_CUDA}'" >&2
    return 2 2> /dev/null || exit 2
    ;;
esac
if [ $cuda_on = 1 ]; then
  cuda_args=(-DGANINV_ENABLE_CUDA=ON "-DCMAKE_CUDA_COMPILER=$_cuda_nvcc" "-DCMAKE_CUDA_ARCHITECTURES=$_arch")
fi
unset _cuda_nvcc _cuda_gpu_arch _caps _c _a _arch
