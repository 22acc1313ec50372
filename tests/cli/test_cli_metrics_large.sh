#!/usr/bin/env bash
# `ganinv metrics` on a 64-Mpx pair (8000x8000 gray, just under the 64*2^20 pixel limit) in
# bounded memory, with progress on stderr. The address space is capped at 1.5 GiB: the previous
# implementation (five full-size double planes per channel) needed ~4.6 GB for this pair.
# Usage: test_cli_metrics_large.sh GANINV_BINARY MAKE_TEST_IMAGE WORK_DIR
set -u
bin="$1"; gen="$2"; work="$3"
rm -rf "$work"; mkdir -p "$work"
source "$(dirname "$0")/cli_check.sh"

"$gen" "$work/a.png" 8000 8000 1 || { echo "FAIL: make_test_image"; exit 1; }
"$gen" "$work/b.png" 8000 8000 1 6 || { echo "FAIL: make_test_image"; exit 1; }
check "metrics on 8000x8000 in 1.5 GiB of address space" 0 "SSIM  0\.[0-9]+" -- \
  bash -c "ulimit -v 1572864; '$bin' metrics '$work/a.png' '$work/b.png'"
check "metrics reports progress on stderr for large images" 0 "metrics: SSIM 100%" -- \
  bash -c "ulimit -v 1572864; '$bin' metrics '$work/a.png' '$work/b.png' 2>&1 >/dev/null"
check "identical 64-Mpx images: PSNR inf, SSIM 1" 0 '"psnr": inf, "ssim": 1[,}]' -- \
  bash -c "ulimit -v 1572864; '$bin' metrics '$work/a.png' '$work/a.png' --json 2>/dev/null"

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
