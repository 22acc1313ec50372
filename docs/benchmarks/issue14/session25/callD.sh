#!/usr/bin/env bash
# Session 25 call D (to run from the repository root; carry .prebuilt): the questions call C left.
#  - the device CMA-ES cases (call C's 90 s limit stopped them): each case alone, with durations;
#  - the FP32 [large] generator case that call C saw 1.1-1.5e-3 against its 1e-3 bound on
#    b1024.conv0's parameter gradients, on the binary of the tree before the row tiles (HEAD
#    ff52c05: FP32 never takes the wgmma kernels): pre-existing?
#  - the L-BFGS device-vs-host case call C failed (W + noise maps, FP32, 64^2), once more;
#  - the step table with the row tiles alone against the gather kernels in BF16 (call C: TF32);
#  - why the row-halo kernels are no faster: ncu's speed-of-light, occupancy and warp-stall
#    sections on the 1024^2 convs (gather, rows, strips) of the official objective's step.
# Binaries: .prebuilt/d/{test_cuda_device_loop,bench_device_step_gpu} (this session's tree, as in
# call C) and .prebuilt/d/test_cuda_head (scripts/gpu_prebuild.sh in a worktree of ff52c05).
set -uo pipefail
O=$OUT; t0=$(date +%s)
say() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a $O/summary.txt; }
need() { [ $(( $(date +%s) - t0 + $1 )) -lt ${DEADLINE:-585} ] || { say "skipped (no time left): $2"; return 1; }; }
failures() { grep -B3 -A30 "FAILED" "$1" | head -${2:-60} >> $O/summary.txt; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv,noheader | tee -a $O/summary.txt
mkdir -p /tmp/bin && for f in .prebuilt/d/*.xz; do xz -dc $f > /tmp/bin/$(basename $f .xz); chmod +x /tmp/bin/$(basename $f .xz); done
cat .prebuilt/d/MANIFEST* >> $O/summary.txt 2>/dev/null
export GANINV_TEST_DATA_DIR=$PWD/tests/data
L=/tmp/bin/test_cuda_device_loop B=/tmp/bin/bench_device_step_gpu H=/tmp/bin/test_cuda_head
for k in 1; do
  need 30 large_$k || break
  timeout 60 $H "[large]" > $O/large.log 2>&1; say "HEAD test_cuda [large] run $k rc=$? $(tail -2 $O/large.log | tr '\n' ' ')"
  grep "ERRBOUND" $O/large.log | grep -E "grad_param|grad_noise " | sort -t= -k5 -g | tail -8 >> $O/summary.txt; rm -f $O/large.log
done
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
