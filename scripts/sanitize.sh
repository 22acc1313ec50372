#!/usr/bin/env bash
# Builds the unit tests (and the fuzz corpus replays) with AddressSanitizer + UndefinedBehaviorSanitizer
# in build-sanitize/ and runs them, the [slow] cases excluded. Any sanitizer report fails the run.
# Usage: scripts/sanitize.sh [extra Catch2 filter, e.g. "[safetensors]"]      (docs/validation.md)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${GANINV_SANITIZE_BUILD_DIR:-$root/build-sanitize}"
jobs="${GANINV_JOBS:-2}"
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
mkdir -p "$build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGANINV_SANITIZE=ON -DGANINV_ENABLE_CUDA=OFF \
      -DGANINV_BUILD_BENCHMARKS=OFF -DGANINV_BUILD_EXAMPLES=OFF "${launcher[@]}" > "$build/configure.log"
units=(test_core test_nn test_io test_stylegan2 test_optim test_encoder test_indomain test_edit test_metrics test_loss test_invert)
replays=(fuzz_replay_safetensors fuzz_replay_json fuzz_replay_image)
cmake --build "$build" -j"$jobs" --target "${units[@]}" "${replays[@]}"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
filter="~[slow]${1:+ $1}"
status=0
for t in "${units[@]}"; do
  echo "== $t $filter"
  "$build/tests/$t" "$filter" || status=1
done
for t in "${replays[@]}"; do
  echo "== $t"
  "$build/tests/fuzz/$t" "$root/tests/fuzz/corpus/${t#fuzz_replay_}" || status=1
done
[ "$status" -eq 0 ] && echo "sanitize: all unit tests and corpus replays passed under ASan+UBSan" || echo "sanitize: FAILED"
exit "$status"
