#!/usr/bin/env bash
# scripts/check_test_list.sh (run by scripts/test.sh before ctest) must fail loudly when a test of
# the suite is not registered and when a registered test is not in the list, and pass only when
# the two agree. Exercises it on made-up `ctest -N` listings and on the repository's own list.
# Usage: test_check_test_list.sh WORK_DIR
set -u
here="$(cd "$(dirname "$0")" && pwd)"
check="$here/../../scripts/check_test_list.sh"
repo_list="$here/../expected_tests.txt"
work="$1"
rm -rf "$work"; mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }

# listing NAME... : a `ctest -N` output registering exactly these tests.
listing() {
  echo "Test project /somewhere/build"
  local i=1
  for n in "$@"; do printf '  Test %3s: %s\n' "#$i" "$n"; i=$((i + 1)); done
  echo
  echo "Total Tests: $#"
}
# expect STATUS PATTERN ARGS... : runs the checker, checks its exit status and that its output
# contains PATTERN.
expect() {
  local want="$1" pattern="$2"; shift 2
  local out status
  out="$("$check" "$@" 2>&1)"; status=$?
  [ "$status" -eq "$want" ] || fail "check_test_list.sh $* exited $status, expected $want; output: $out"
  [[ "$out" == *"$pattern"* ]] || fail "check_test_list.sh $* did not say '$pattern'; output: $out"
}

cat > "$work/expected.txt" <<'EOF'
# a comment line
alpha
beta   # a trailing comment
gpu_only cuda
EOF
listing alpha beta > "$work/cpu.txt"
listing alpha beta gpu_only > "$work/gpu.txt"
listing alpha > "$work/lost_beta.txt"
listing alpha beta gamma > "$work/extra.txt"
listing > "$work/none.txt"

expect 0 "all 2 tests of the suite are registered" "$work/expected.txt" "$work/cpu.txt"
expect 0 "all 3 tests of the suite are registered" "$work/expected.txt" "$work/gpu.txt" cuda
# A conditional test that is built anyway is fine; one that is required and absent is not.
expect 0 "all 2 tests of the suite are registered" "$work/expected.txt" "$work/gpu.txt"
expect 1 "missing: gpu_only" "$work/expected.txt" "$work/cpu.txt" cuda
expect 1 "missing: beta" "$work/expected.txt" "$work/lost_beta.txt"
expect 1 "ctest found 0 tests, but the suite has 2" "$work/expected.txt" "$work/none.txt"
expect 1 "does not list: gamma" "$work/expected.txt" "$work/extra.txt"
expect 2 "unknown condition 'rocm'" "$work/expected.txt" "$work/cpu.txt" rocm
printf 'alpha\nalpha\n' > "$work/twice.txt"
expect 2 "'alpha' is listed twice" "$work/twice.txt" "$work/cpu.txt"
printf 'alpha\nbeta sometimes\n' > "$work/bad_condition.txt"
expect 2 "bad_condition.txt:2" "$work/bad_condition.txt" "$work/cpu.txt"
expect 2 "cannot read" "$work/absent.txt" "$work/cpu.txt"

# The repository's list: well-formed, names each test once, and this test is on it.
mapfile -t names < <(sed 's/#.*//' "$repo_list" | awk 'NF { print $1 }')
[ ${#names[@]} -ge 20 ] || fail "$repo_list lists only ${#names[@]} tests"
listing "${names[@]}" > "$work/repo.txt"
expect 0 "all ${#names[@]} tests of the suite are registered" "$repo_list" "$work/repo.txt" cuda cudnn mpi
printf '%s\n' "${names[@]}" | grep -qx "test_list_check" || fail "$repo_list does not list test_list_check"
echo "check_test_list.sh: every case behaves; $repo_list lists ${#names[@]} tests"
