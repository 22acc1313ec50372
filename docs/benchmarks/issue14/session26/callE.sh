#!/usr/bin/env bash
# Session 26 call E (to run from the repository root; carry .prebuilt/e): session 25's call D
# (which got no machine), with the whole of test_cuda first, built with the spread-aware bound of
# the FP32 [large] case (session25/next_large_bound.patch) in place of call D's pre-row-tile binary.
# Binaries: .prebuilt/e/test_cuda (HEAD 63eb9d3 + that patch), .prebuilt/e/{test_cuda_device_loop,
# bench_device_step_gpu} (39494e8, as in call C). See .prebuilt/e/MANIFEST.
set -uo pipefail
O=$OUT; t0=$(date +%s)
say() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a $O/summary.txt; }
need() { [ $(( $(date +%s) - t0 + $1 )) -lt ${DEADLINE:-585} ] || { say "skipped (no time left): $2"; return 1; }; }
failures() { grep -B3 -A30 "FAILED" "$1" | head -${2:-60} >> $O/summary.txt; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv,noheader | tee -a $O/summary.txt
mkdir -p /tmp/bin && for f in .prebuilt/e/*.xz; do xz -dc $f > /tmp/bin/$(basename $f .xz); chmod +x /tmp/bin/$(basename $f .xz); done
cat .prebuilt/e/MANIFEST >> $O/summary.txt 2>/dev/null
export GANINV_TEST_DATA_DIR=$PWD/tests/data
L=/tmp/bin/test_cuda_device_loop B=/tmp/bin/bench_device_step_gpu T=/tmp/bin/test_cuda
need 90 test_cuda && {
  timeout 90 $T > $O/test_cuda.log 2>&1; say "test_cuda (all cases, patched [large] bound) rc=$? $(tail -2 $O/test_cuda.log | tr '\n' ' ')"
  failures $O/test_cuda.log 60
  grep "ERRBOUND" $O/test_cuda.log | grep "res1024" | grep -E "grad_param|grad_noise " | sort -t= -k5 -g | tail -8 >> $O/summary.txt
  gzip -f $O/test_cuda.log; }
for k in 1; do
  need 30 lbfgs_$k || break
  timeout 60 $L -d yes "device L-BFGS loop on CUDA follows the host L-BFGS over 50 steps" > $O/lbfgs.log 2>&1
  say "device L-BFGS vs host run $k rc=$? $(tail -2 $O/lbfgs.log | tr '\n' ' ')"; failures $O/lbfgs.log 30; rm -f $O/lbfgs.log
done
for name in "device CMA-ES loop on CUDA follows the host CmaEs over 50 generations"; do
  need 40 "$name" || break
  M=$(( ${DEADLINE:-585} - ($(date +%s) - t0) - 10 )); [ $M -gt 100 ] && M=100
  timeout $M $L -d yes "$name" > $O/cma.log 2>&1; say "'$name' (limit $M s) rc=$? $(grep -E "s: device" $O/cma.log | tail -1) $(tail -2 $O/cma.log | tr '\n' ' ')"
  failures $O/cma.log 40; rm -f $O/cma.log
done
# The 1024^2 layers' convs: 32 input channels, so the TF32 kernels with 32-column tiles (gather:
# nhwc_conv_wgmma<Tf32Operand, 32, ...>) and the row / strip kernels of the same layers.
for v in off:"nhwc_conv_wgmma<hopper::Tf32Operand, 32," rows:"nhwc_conv_rows_wgmma<hopper::Tf32Operand, 32," strips:"nhwc_conv_strip"; do
  mode=${v%%:*} rx=${v#*:}
  need 60 ncu_$mode || break
  timeout 60 ncu --clock-control none --profile-from-start off --kernel-name-base demangled -k "regex:$rx" --launch-count 6 \
     --section SpeedOfLight --section Occupancy --section WarpStateStats --section LaunchStats --csv --page details \
     $B --res 1024 --precisions tf32 --batches 1 --row-tiles $mode --profile official > $O/ncu_sections_$mode.csv 2> $O/ncu_err.txt
  say "ncu sections, row tiles $mode rc=$? ($(grep -c '"Duration"' $O/ncu_sections_$mode.csv) kernels)"
  grep -E '"(Duration|Compute \(SM\) Throughput|Memory Throughput|L2 Cache Throughput|Achieved Occupancy|Registers Per Thread|Stall Long Scoreboard|Stall Barrier|Stall Wait|Warp Cycles Per Issued Instruction)"' $O/ncu_sections_$mode.csv \
     | awk -F'","' '{print $1" | "$9" | "$(NF-2)" | "$NF}' | head -60 >> $O/summary.txt
  tail -3 $O/ncu_err.txt >> $O/summary.txt; gzip -f $O/ncu_sections_$mode.csv; rm -f $O/ncu_err.txt
done
for name in "device CMA-ES loop: per generation only per-sample values and per-row scalars cross" \
            "device CMA-ES loop: StyleGAN2<Cuda> follows StyleGAN2<Cpu> over 50 generations"; do
  need 40 "$name" || break
  M=$(( ${DEADLINE:-585} - ($(date +%s) - t0) - 10 )); [ $M -gt 150 ] && M=150
  timeout $M $L -d yes "$name" > $O/cma.log 2>&1; say "'$name' (limit $M s) rc=$? $(grep -E "s: device" $O/cma.log | tail -1) $(tail -2 $O/cma.log | tr '\n' ' ')"
  failures $O/cma.log 40; rm -f $O/cma.log
done
need 45 table_bf16 && {
  timeout 45 $B --res 1024 --precisions bf16 --batches 1 --row-tiles rows,off --json $O/step_bf16_rows_off.json > $O/step.txt 2>&1
  say "bench bf16 b1 1024 row tiles rows,off rc=$?"; grep -E "^\|" $O/step.txt | tail -4 >> $O/summary.txt; rm -f $O/step.txt; }
say done
( cd $O && ls | grep -v -e summary.txt | grep -q . && tar czf results.tgz $(ls | grep -v -e summary.txt -e results.tgz) && ls | grep -v -e summary.txt -e results.tgz | xargs rm -rf ) || true
