#!/usr/bin/env bash
# Session 24 call B (prebuilt, to run from the repository root): test_cuda, test_cuda_device_loop
# and bench_device_step_gpu built here by scripts/gpu_prebuild.sh (carry .prebuilt), unpacked and
# checked by scripts/gpu_prebuilt_unpack.sh: the row-halo / strip wgmma convs against the CPU
# ([row_tiles], [fused_backward], [wgmma]), the step table with the row tiles (strips) on and
# off, the rest of test_cuda, the profile, then the rows-only and BF16 rows if time is left.
# Usage (device tool): run(command="DEADLINE=540 bash docs/benchmarks/issue14/session24/callB_prebuilt.sh", carry=[".prebuilt"])
set -uo pipefail
O=$OUT; t0=$(date +%s)
say() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a $O/summary.txt; }
need() { [ $(( $(date +%s) - t0 + $1 )) -lt ${DEADLINE:-585} ] || { say "skipped (no time left): $2"; return 1; }; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv,noheader | tee -a $O/summary.txt
scripts/gpu_prebuilt_unpack.sh .prebuilt/gpu /tmp/bin >> $O/summary.txt 2>&1 || { say "the prebuilt binaries do not run here: stop"; exit 0; }
export GANINV_TEST_DATA_DIR=$PWD/tests/data
T=/tmp/bin/test_cuda B=/tmp/bin/bench_device_step_gpu
grep -m1 "model name" /proc/cpuinfo | tee -a $O/summary.txt
timeout 70 $T "[row_tiles],[fused_backward],[wgmma]" > $O/rows.log 2>&1; say "test_cuda [row_tiles],[fused_backward],[wgmma] rc=$? $(tail -2 $O/rows.log | tr '\n' ' ')"
grep -B3 -A30 "FAILED" $O/rows.log | head -80 >> $O/summary.txt; grep ERRBOUND $O/rows.log | grep -E "strips_|rows_|gather_" | sort | uniq > $O/errbound_rows.txt; rm -f $O/rows.log
for v in strips off; do  # one process each: a hang in one variant leaves the others' rows
  need 40 table_$v || break
  timeout 45 $B --res 1024,256 --precisions tf32 --batches 1 --row-tiles $v --json $O/step_tf32_$v.json > $O/step.txt 2>&1
  say "bench tf32 b1 row tiles $v rc=$?"; grep -E "^\|" $O/step.txt | tail -4 >> $O/summary.txt; rm -f $O/step.txt
done
if need 50 test_cuda; then  # the rest of test_cuda (the three tags above ran already)
  timeout 100 $T "~[row_tiles]~[fused_backward]~[wgmma]" > $O/test_cuda.log 2>&1; say "test_cuda (all other cases) rc=$? $(tail -2 $O/test_cuda.log | tr '\n' ' ')"
  grep -B3 -A25 "FAILED" $O/test_cuda.log | head -60 >> $O/summary.txt; rm -f $O/test_cuda.log
fi
if need 40 prof1024; then
  timeout 40 ncu --clock-control none --profile-from-start off --metrics gpu__time_duration.sum --csv --log-file $O/ncu_1024.csv \
     $B --res 1024 --precisions tf32 --batches 1 --profile official > $O/prof.txt 2>&1
  say "ncu official 1024 rc=$?"; tail -2 $O/prof.txt >> $O/summary.txt
  python3 scripts/kernel_time_summary.py $O/ncu_1024.csv --top 40 --json $O/k_official_1024.json > $O/k.md 2>&1
  cat $O/k.md >> $O/summary.txt; gzip -f $O/ncu_1024.csv; rm -f $O/k.md $O/prof.txt
fi
if need 40 table_rows; then
  timeout 45 $B --res 1024,256 --precisions tf32 --batches 1 --row-tiles rows --json $O/step_tf32_rows.json > $O/step.txt 2>&1
  say "bench tf32 b1 row tiles rows rc=$?"; grep -E "^\|" $O/step.txt | tail -4 >> $O/summary.txt; rm -f $O/step.txt
fi
if need 50 bf16; then
  timeout 50 $B --res 1024 --precisions bf16 --batches 1 --row-tiles strips,off --json $O/step_bf16.json > $O/step.txt 2>&1
  say "bench bf16 b1 1024 row tiles strips,off rc=$?"; grep -E "^\|" $O/step.txt | tail -4 >> $O/summary.txt; rm -f $O/step.txt
fi
if [ "${LOOP:-0}" = 1 ] && need 130 loop_all; then
  L=$(( ${DEADLINE:-585} - ($(date +%s) - t0) - 10 ))
  timeout $L /tmp/bin/test_cuda_device_loop > $O/test_loop.log 2>&1; say "test_cuda_device_loop (all, limit $L s) rc=$? $(tail -2 $O/test_loop.log | tr '\n' ' ')"
  grep -B3 -A25 "FAILED" $O/test_loop.log | head -60 >> $O/summary.txt; rm -f $O/test_loop.log
fi
say done
( cd $O && tar czf results.tgz $(ls | grep -v -e summary.txt -e results.tgz) && ls | grep -v -e summary.txt -e results.tgz | xargs rm -rf )
