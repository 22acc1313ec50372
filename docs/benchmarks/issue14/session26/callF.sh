#!/usr/bin/env bash
# Session 26 call F (to run from the repository root; carry .prebuilt/f): the whole of test_cuda and
# test_cuda_device_loop, built (scripts/gpu_prebuild.sh) from the tree with the flip-aware spreads:
# test_cuda's [large] case bounds each parameter gradient by twice the CPU's largest move over six
# one-ulp parameter changes; the L-BFGS cases add the generator's weights one ulp away (4 seeds)
# to their spread. Call E (same H200) failed exactly those two on the bounds before.
set -uo pipefail
O=$OUT; t0=$(date +%s)
say() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a $O/summary.txt; }
failures() { grep -B3 -A40 "FAILED" "$1" | head -${2:-80} >> $O/summary.txt; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv,noheader | tee -a $O/summary.txt
mkdir -p /tmp/bin && for f in .prebuilt/f/*.xz; do xz -dc $f > /tmp/bin/$(basename $f .xz); chmod +x /tmp/bin/$(basename $f .xz); done
cat .prebuilt/f/MANIFEST >> $O/summary.txt 2>/dev/null
export GANINV_TEST_DATA_DIR=$PWD/tests/data
T=/tmp/bin/test_cuda L=/tmp/bin/test_cuda_device_loop
timeout 120 $T -d yes > $O/test_cuda.log 2>&1; say "test_cuda (all cases) rc=$? $(tail -2 $O/test_cuda.log | tr '\n' ' ')"
failures $O/test_cuda.log 80
grep "ERRBOUND" $O/test_cuda.log | grep "res1024" | grep -E "grad_param|grad_noise " | sort -t= -k5 -g | tail -6 >> $O/summary.txt
grep -E "^[0-9.]+ s: " $O/test_cuda.log | sort -g | tail -4 >> $O/summary.txt
timeout 150 $L -d yes "~[device_cma]" > $O/loop.log 2>&1; say "test_cuda_device_loop (all but [device_cma]) rc=$? $(tail -2 $O/loop.log | tr '\n' ' ')"
failures $O/loop.log 80
grep -A12 "follows the host L-BFGS" $O/loop.log | grep -E "spread|weights|device vs host" | head -12 >> $O/summary.txt
timeout 240 $L -d yes "[device_cma]" > $O/cma.log 2>&1; say "test_cuda_device_loop [device_cma] rc=$? $(tail -2 $O/cma.log | tr '\n' ' ')"
failures $O/cma.log 60; grep -E "^[0-9.]+ s: " $O/cma.log >> $O/summary.txt
say done
gzip -f $O/*.log
