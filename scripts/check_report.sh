#!/usr/bin/env bash
# Renders a ganinv HTML report (invert --report, edit --report) to a PNG with headless Chromium,
# offline (no network, no GPU), so that a person or a test can look at what a browser shows.
# Usage: scripts/check_report.sh REPORT.html OUT.png [WIDTHxHEIGHT]
# Exit status: 0 rendered, 1 rendering failed, 2 bad arguments, 77 Chromium is not installed.
set -u
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 REPORT.html OUT.png [WIDTHxHEIGHT (default 1200x1600)]" >&2
  exit 2
fi
report="$1"; out="$2"; size="${3:-1200x1600}"
if [ ! -s "$report" ]; then echo "$0: no such report '$report'" >&2; exit 2; fi
if ! [[ "$size" =~ ^[0-9]+x[0-9]+$ ]]; then echo "$0: size must be WIDTHxHEIGHT, got '$size'" >&2; exit 2; fi

browser=""
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" > /dev/null 2>&1; then browser="$b"; break; fi
done
if [ -z "$browser" ]; then
  echo "SKIPPED: chromium not installed (Debian: apt-get install chromium)"
  exit 77
fi

abs="$(cd "$(dirname "$report")" && pwd)/$(basename "$report")"
mkdir -p "$(dirname "$out")"
out_abs="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
rm -f "$out_abs"
# A throw-away profile: the browser must not read or leave state in the user's home.
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --no-first-run --user-data-dir="$profile" --hide-scrollbars \
  --window-size="${size/x/,}" --screenshot="$out_abs" "file://$abs" > "$profile/log" 2>&1
status=$?
if [ $status -ne 0 ] || [ ! -s "$out_abs" ]; then
  echo "$0: $browser failed (status $status) to render $report:" >&2
  tail -5 "$profile/log" >&2
  exit 1
fi
echo "rendered $report -> $out ($size)"
