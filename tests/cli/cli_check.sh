#!/usr/bin/env bash
# Shared by the CLI test scripts (sourced): pass/fail counters and the assertions they use.
failures=0; passed=0
check() {  # check NAME EXPECTED_STATUS PATTERN -- command...
  local name="$1" want="$2" pattern="$3"; shift 4
  local out status
  out=$("$@" 2>&1); status=$?
  if [ "$status" -ne "$want" ] || ! grep -qE -- "$pattern" <<<"$out"; then
    echo "FAIL: $name (status $status, want $want; pattern '$pattern')"; echo "$out" | tail -5
    failures=$((failures + 1))
  else
    passed=$((passed + 1))
  fi
}
exists() {
  if [ -s "$1" ]; then passed=$((passed + 1)); else echo "FAIL: missing $1"; failures=$((failures + 1)); fi
}
