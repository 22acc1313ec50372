#!/usr/bin/env bash
# The HTML reports render in a real browser: writes an edit report and an inversion report, renders
# both with headless Chromium (scripts/check_report.sh) and checks that the screenshots are
# non-trivial PNGs. Exits 77 (CTest: skipped) when Chromium is not installed; scripts/test.sh
# installs it (scripts/install_deps.sh test), so there the test runs.
# Usage: test_report_render.sh GANINV_BINARY MODEL WORK_DIR
set -u
bin="$1"; model="$2"; work="$3"
here="$(cd "$(dirname "$0")" && pwd)"
render="$here/../../scripts/check_report.sh"
data="$here/../data"
if ! command -v chromium > /dev/null 2>&1 && ! command -v chromium-browser > /dev/null 2>&1 && ! command -v google-chrome > /dev/null 2>&1; then
  echo "SKIPPED: chromium not installed, the HTML reports were not rendered (Debian: apt-get install chromium, or scripts/install_deps.sh test)"
  exit 77
fi
rm -rf "$work"; mkdir -p "$work"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
fail() { echo "FAIL: $*"; exit 1; }

"$bin" invert --model "$model" --image "$data/fmnist/test_0000.png" "$data/fmnist/test_0001.png" --out "$work/inv" \
  --steps 5 --report > "$work/invert.log" 2>&1 || fail "invert --report (see $work/invert.log)"
"$bin" edit --model "$model" --code "$work/inv/test_0000.safetensors" --target "$data/fmnist/test_0000.png" \
  --direction sefa:0-2 --stylespace b8.conv1:3 --mix seed:5 --samples 300 --report --out "$work/edit" \
  > "$work/edit.log" 2>&1 || fail "edit --report (see $work/edit.log)"

for name in inv edit; do
  "$render" "$work/$name/report.html" "$work/$name.png" 1200x1600 || fail "rendering $name/report.html"
  size=$(stat -c %s "$work/$name.png")
  # A blank white 1200x1600 page compresses to a few kB; a page with pictures and tables does not.
  [ "$size" -gt 20000 ] || fail "$work/$name.png is only $size bytes: the page looks empty"
  head -c 8 "$work/$name.png" | od -An -tx1 | grep -q "89 50 4e 47" || fail "$work/$name.png is not a PNG"
done
echo "reports rendered: $work/inv.png, $work/edit.png"
