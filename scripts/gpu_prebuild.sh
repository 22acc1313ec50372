#!/usr/bin/env bash
# Builds CUDA binaries here (nvcc, no GPU needed) for a lent GPU machine, so that a device call
# spends its minutes running rather than compiling (the CUDA test suite takes ~150 s of device
# time to build with 16 cores). The binaries are built portable (GANINV_PORTABLE_BUILD: no
# -march=native, since the GPU machine's processor is not this one's), stripped and
# xz-compressed into OUTDIR with a MANIFEST saying which tree they came from, and the size that
# would travel (tracked files + OUTDIR) is checked against the device tool's 64 MiB limit.
#
# Usage: scripts/gpu_prebuild.sh [OUTDIR] [TARGET...]
#   OUTDIR  default .prebuilt/gpu (ignored through .git/info/exclude; name it in the run's carry)
#   TARGET  default: test_cuda test_cuda_device_loop bench_device_step_gpu (ganinv_cli: the `ganinv`
#           tool, packed as ganinv.xz)
# Env:   GANINV_CMAKE_ARGS  extra configure arguments (e.g. the ccache launchers)
#        GANINV_PREBUILD_DIR  the build folder (default build-prebuilt)
# On the GPU machine: scripts/gpu_prebuilt_unpack.sh OUTDIR DEST unpacks them and checks that they
# start there; GANINV_GPU_PREBUILT=DEST scripts/gpu_check.sh test then skips its build.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out="${1:-.prebuilt/gpu}"
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(test_cuda test_cuda_device_loop bench_device_step_gpu)
build="${GANINV_PREBUILD_DIR:-build-prebuilt}"
command -v nvcc > /dev/null || export PATH="/usr/local/cuda/bin:$PATH"
command -v nvcc > /dev/null || { echo "gpu_prebuild: no nvcc (CUDA toolkit) on this machine" >&2; exit 1; }
for tool in xz strip; do
  command -v "$tool" > /dev/null || { echo "gpu_prebuild: '$tool' is missing (apt-get install xz-utils binutils)" >&2; exit 1; }
done

gen=()
command -v ninja > /dev/null && gen=(-G Ninja)  # else CMake's default generator
# The GPU machine has no libstb.so.0 (Debian's libstb-dev here): link stb's static archive where
# it exists (its objects are position-independent), so the `ganinv` tool starts there.
stb=()
for a in /usr/lib/x86_64-linux-gnu/libstb.a /usr/lib/libstb.a; do
  [ -f "$a" ] && { stb=(-DSTB_LIBRARY="$a"); break; }
done
tmp_log="$(mktemp)"
trap 'rm -f "$tmp_log"' EXIT
# shellcheck disable=SC2086  # GANINV_CMAKE_ARGS is a list of arguments
cmake -S . -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DGANINV_ENABLE_CUDA=ON \
  -DGANINV_PORTABLE_BUILD=ON -DGANINV_BUILD_TESTS=ON -DGANINV_BUILD_BENCHMARKS=ON -DGANINV_BUILD_EXAMPLES=ON \
  "${stb[@]}" ${GANINV_CMAKE_ARGS:-} > "$tmp_log" 2>&1 || { tail -20 "$tmp_log" >&2; exit 1; }
cmake --build "$build" --target "${targets[@]}" -j"$(nproc)"

# Write into a fresh folder and swap it in at the end: a failed run never leaves a half-filled
# OUTDIR that a device call would take for a good one.
mkdir -p "$(dirname "$out")"
tmp="$(mktemp -d "${out%/}.tmp.XXXXXX")"
trap 'rm -rf "$tmp" "$tmp_log"' EXIT
{
  echo "tree: $(git rev-parse HEAD)$(git diff --quiet HEAD -- . ':!.prebuilt' || echo " + uncommitted changes (diff sha1 $(git diff HEAD | sha1sum | cut -c1-12))")"
  echo "built: $(date -u +%FT%TZ) on $(uname -m), $(nvcc --version | tail -1)"
  echo "flags: Release, sm_90a, GANINV_PORTABLE_BUILD=ON"
} > "$tmp/MANIFEST"
for t in "${targets[@]}"; do
  name="$t"
  [ "$t" = ganinv_cli ] && name=ganinv  # the tool's OUTPUT_NAME (examples/CMakeLists.txt)
  bin="$(find "$build" -type f -name "$name" -perm -u+x | head -1)"
  [ -n "$bin" ] || { echo "gpu_prebuild: target '$t' built no executable '$name' under $build" >&2; exit 1; }
  if ldd "$bin" 2> /dev/null | grep -q "libstb\.so"; then
    echo "gpu_prebuild: $name needs libstb.so, which the GPU machine lacks (install libstb-dev's static libstb.a)" >&2
    exit 1
  fi
  strip -o "$tmp/$name" "$bin"
  xz -9 -T0 "$tmp/$name"
  echo "$name.xz $(stat -c %s "$tmp/$name.xz") bytes (from $(stat -c %s "$bin"))" >> "$tmp/MANIFEST"
done
rm -rf "$out" && mv "$tmp" "$out"
trap 'rm -f "$tmp_log"' EXIT
if [[ "$out" != /* ]]; then  # inside the repository: keep it out of git (a run's carry names it)
  ex="$(git rev-parse --git-path info/exclude)"; mkdir -p "$(dirname "$ex")"
  top="/${out%%/*}/"
  grep -qxF "$top" "$ex" 2>/dev/null || echo "$top" >> "$ex"
fi

# What a run would send: tracked files, untracked files git does not ignore, and OUTDIR.
tracked=$(git ls-files -z | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
untracked=$(git ls-files -z --others --exclude-standard | xargs -0 -r stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
carried=$(du -sb "$out" | cut -f1)
total=$((tracked + untracked + carried))
limit=$((64 * 1024 * 1024))
cat "$out/MANIFEST"
echo "gpu_prebuild: $out holds $carried bytes; with the working tree a run sends $total of $limit bytes"
if [ "$total" -gt "$limit" ]; then
  echo "gpu_prebuild: over the device tool's 64 MiB: carry fewer targets" >&2
  exit 1
fi
