#!/usr/bin/env bash
# Compares the tests CTest registered with the list the suite is meant to have, so that a test
# cannot silently disappear (an option left OFF in a reused build folder, a dependency CMake did
# not find, a typo in tests/CMakeLists.txt). scripts/test.sh runs it before ctest.
# Usage: scripts/check_test_list.sh EXPECTED CTEST_N_OUTPUT [CONDITION ...]
#   EXPECTED        tests/expected_tests.txt: one test name a line, optionally followed by the
#                   condition under which it exists (cuda, cudnn, clang, mpi); '#' starts a comment
#   CTEST_N_OUTPUT  what `ctest --test-dir BUILD -N` printed
#   CONDITION       the conditions that hold in this build (e.g. cuda when the CUDA targets are on)
# Exit status: 0 the lists agree, 1 a test is missing or unlisted, 2 bad arguments or list.
set -uo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 EXPECTED CTEST_N_OUTPUT [CONDITION ...]" >&2
  exit 2
fi
expected_file="$1"; listing="$2"; shift 2
known_conditions=" cuda cudnn clang mpi "
active=" $* "
for c in "$@"; do
  [[ "$known_conditions" == *" $c "* ]] || { echo "check_test_list: unknown condition '$c' (known:$known_conditions)" >&2; exit 2; }
done
[ -r "$expected_file" ] || { echo "check_test_list: cannot read '$expected_file'" >&2; exit 2; }
[ -r "$listing" ] || { echo "check_test_list: cannot read '$listing'" >&2; exit 2; }

declare -A listed=()     # name -> its condition ("" = always)
required=()
lineno=0
while IFS= read -r line || [ -n "$line" ]; do
  lineno=$((lineno + 1))
  line="${line%%#*}"
  read -r name cond extra <<< "$line"
  [ -z "${name:-}" ] && continue
  if [ -n "${extra:-}" ] || { [ -n "${cond:-}" ] && [[ "$known_conditions" != *" $cond "* ]]; }; then
    echo "check_test_list: $expected_file:$lineno: expected 'NAME [CONDITION]' with CONDITION one of:$known_conditions, got '$line'" >&2
    exit 2
  fi
  if [ -n "${listed[$name]+x}" ]; then
    echo "check_test_list: $expected_file:$lineno: '$name' is listed twice" >&2
    exit 2
  fi
  listed[$name]="${cond:-}"
  if [ -z "${cond:-}" ] || [[ "$active" == *" $cond "* ]]; then required+=("$name"); fi
done < "$expected_file"

declare -A registered=()
while IFS= read -r line; do
  if [[ "$line" =~ ^[[:space:]]*Test[[:space:]]+#[0-9]+:[[:space:]]+([^[:space:]]+) ]]; then
    registered[${BASH_REMATCH[1]}]=1
  fi
done < "$listing"

missing=()
for name in "${required[@]}"; do
  [ -n "${registered[$name]+x}" ] || missing+=("$name")
done
unlisted=()
for name in "${!registered[@]}"; do
  [ -n "${listed[$name]+x}" ] || unlisted+=("$name")
done

status=0
if [ ${#missing[@]} -gt 0 ]; then
  echo "ERROR: ctest found ${#registered[@]} tests, but the suite has ${#required[@]} in this configuration;" \
       "missing: ${missing[*]}" >&2
  echo "       (a test that is not built is a test that does not run: check the configure output above)" >&2
  status=1
fi
if [ ${#unlisted[@]} -gt 0 ]; then
  mapfile -t unlisted < <(printf '%s\n' "${unlisted[@]}" | sort)
  echo "ERROR: ctest registered tests that $expected_file does not list: ${unlisted[*]}" >&2
  echo "       add each new test there (with its condition, if it only exists in some builds)" >&2
  status=1
fi
if [ $status -eq 0 ]; then
  conds="$*"
  echo "check_test_list: all ${#required[@]} tests of the suite are registered (conditions: ${conds:-none})"
fi
exit $status
