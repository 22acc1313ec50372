#!/usr/bin/env bash
# Builds ganinv with its tests and runs the whole suite (ctest). Usage: scripts/test.sh [BUILD_DIR]
# BUILD_DIR defaults to build/, the folder scripts/demo.sh builds the tool in: the tool's objects
# are reused, the options the suite needs are switched on here explicitly (whatever the folder's
# cache says), and the run fails unless ctest finds every test in tests/expected_tests.txt.
# Env: GANINV_CUDA=auto|1|0 (scripts/cuda_config.sh), GANINV_CMAKE_ARGS (extra configure
# arguments, e.g. "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache").
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
start=$(date +%s)
scripts/install_deps.sh test
source scripts/cuda_config.sh
echo "test: $cuda_note"
# shellcheck disable=SC2086  # GANINV_CMAKE_ARGS is a list of arguments
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DGANINV_BUILD_TESTS=ON -DGANINV_BUILD_EXAMPLES=ON \
  -DGANINV_BUILD_BENCHMARKS=ON "${cuda_args[@]}" ${GANINV_CMAKE_ARGS:-}
cmake --build "$build" -j"$(nproc)"
built=$(date +%s)

conditions=()
[ "$cuda_on" = 1 ] && conditions+=(cuda)
[ "$cuda_on" = 1 ] && grep -qs '^GANINV_HAS_CUDNN:INTERNAL=ON' "$build/CMakeCache.txt" && conditions+=(cudnn)
grep -qs 'CMAKE_CXX_COMPILER_ID "Clang"' "$build"/CMakeFiles/*/CMakeCXXCompiler.cmake && conditions+=(clang)
grep -qs '^GANINV_HAS_MPI:INTERNAL=ON' "$build/CMakeCache.txt" && conditions+=(mpi)
ctest --test-dir "$build" -N > "$build/ctest_list.txt"
if ! scripts/check_test_list.sh tests/expected_tests.txt "$build/ctest_list.txt" "${conditions[@]}"; then
  echo "test: FAILED: the suite is incomplete in $build (see above); no tests were run" >&2
  exit 1
fi

status=0
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" || status=$?

# ctest prints a skipped test's name but not its output: print the reason each one gave.
log="$build/Testing/Temporary/LastTest.log"
if [ -f "$log" ]; then
  awk '/^[0-9]+\/[0-9]+ Test: / { name = $3; out = 0; next }
       /^Output:$/ { out = 1; next }
       /^<end of output>$/ { out = 0; next }
       out && /SKIPPED/ { print "test: skipped " name ": " $0 }' "$log"
fi
echo "test: build $((built - start)) s (including install_deps), tests $(( $(date +%s) - built )) s"
if [ $status -ne 0 ]; then
  echo "test: FAILED (ctest exit status $status)" >&2
fi
exit $status
