#!/usr/bin/env bash
# On a GPU machine: unpacks the binaries scripts/gpu_prebuild.sh made (SRC, default
# .prebuilt/gpu) into DEST (default /tmp/ganinv-prebuilt) and checks that each one starts here
# (a binary that this processor or this CUDA runtime cannot run fails now, by name, instead of in
# the middle of a device call's measurements). Prints DEST's MANIFEST.
# Usage: scripts/gpu_prebuilt_unpack.sh [SRC] [DEST]; then e.g. GANINV_GPU_PREBUILT=DEST.
set -euo pipefail
cd "$(dirname "$0")/.."
src="${1:-.prebuilt/gpu}"
dest="${2:-/tmp/ganinv-prebuilt}"
[ -f "$src/MANIFEST" ] || { echo "gpu_prebuilt_unpack: $src has no MANIFEST (run scripts/gpu_prebuild.sh first)" >&2; exit 1; }
mkdir -p "$dest"
cp "$src/MANIFEST" "$dest/"
status=0
for f in "$src"/*.xz; do
  name="$(basename "$f" .xz)"
  xz -dc "$f" > "$dest/$name.part" && chmod +x "$dest/$name.part" && mv "$dest/$name.part" "$dest/$name"
  missing="$(ldd "$dest/$name" 2>&1 | grep "not found" || true)"
  if [ -n "$missing" ]; then
    echo "gpu_prebuilt_unpack: $name lacks libraries here: $missing" >&2
    status=1
    continue
  fi
  # The CUDA test binaries list their tests (Catch2 exits with the number of tests listed: 38 on a
  # GPU machine; 77 without a device); the benchmarks print their usage for an unknown option
  # (exit 2). A binary that does not start exits 126 or 127 (not executable, not found) or is
  # killed by a signal (128 + n: 132 for an instruction this processor lacks).
  rc=0
  "$dest/$name" --list-tests > /dev/null 2>&1 || rc=$?
  if [ "$rc" -ge 126 ]; then
    echo "gpu_prebuilt_unpack: $name does not start here (exit $rc)" >&2
    status=1
  fi
done
cat "$dest/MANIFEST"
exit "$status"
