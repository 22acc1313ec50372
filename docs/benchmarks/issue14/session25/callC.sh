#!/usr/bin/env bash
# Session 25 call C (prebuilt binaries of the row-halo / strip wgmma convs, to run from the
# repository root; carry .prebuilt): the new convs against the CPU first, then the device CMA-ES
# cases (never run on a GPU before), the step table with strips on and off, the rest of test_cuda
# and of test_cuda_device_loop, the per-launch profile, the rows-only and BF16 rows, and
# compute-sanitizer memcheck on the new cases where the machine has it. Every step is skipped,
# by name, once the time left is short.
# Usage (device tool): run(command="DEADLINE=540 bash docs/benchmarks/issue14/session25/callC.sh", carry=[".prebuilt"])
set -uo pipefail
O=$OUT; t0=$(date +%s)
say() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a $O/summary.txt; }
need() { [ $(( $(date +%s) - t0 + $1 )) -lt ${DEADLINE:-585} ] || { say "skipped (no time left): $2"; return 1; }; }
failures() { grep -B3 -A30 "FAILED" "$1" | head -${2:-80} >> $O/summary.txt; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv,noheader | tee -a $O/summary.txt
scripts/gpu_prebuilt_unpack.sh .prebuilt/gpu /tmp/bin >> $O/summary.txt 2>&1 || say "unpack check rc=$? (Catch2 --list-tests exits with the count)"
export GANINV_TEST_DATA_DIR=$PWD/tests/data
T=/tmp/bin/test_cuda L=/tmp/bin/test_cuda_device_loop B=/tmp/bin/bench_device_step_gpu
grep -m1 "model name" /proc/cpuinfo | tee -a $O/summary.txt
timeout 90 $T "[row_tiles],[fused_backward],[wgmma]" > $O/rows.log 2>&1; say "test_cuda [row_tiles],[fused_backward],[wgmma] rc=$? $(tail -2 $O/rows.log | tr '\n' ' ')"
failures $O/rows.log; grep ERRBOUND $O/rows.log | grep -E "strips_|rows_|gather_" | sort | uniq > $O/errbound_rows.txt; rm -f $O/rows.log
if need 60 device_cma; then
  timeout 90 $L "[device_cma]" > $O/cma.log 2>&1; say "test_cuda_device_loop [device_cma] rc=$? $(tail -2 $O/cma.log | tr '\n' ' ')"
  failures $O/cma.log; rm -f $O/cma.log
fi
for v in strips off; do  # one process each: a hang in one variant leaves the others' rows
  need 40 table_$v || break
  timeout 45 $B --res 1024,256 --precisions tf32 --batches 1 --row-tiles $v --json $O/step_tf32_$v.json > $O/step.txt 2>&1
  say "bench tf32 b1 row tiles $v rc=$?"; grep -E "^\|" $O/step.txt | tail -4 >> $O/summary.txt; rm -f $O/step.txt
done
if need 60 test_cuda; then  # the rest of test_cuda (the three tags above ran already)
  timeout 120 $T "~[row_tiles]~[fused_backward]~[wgmma]" > $O/test_cuda.log 2>&1; say "test_cuda (all other cases) rc=$? $(tail -2 $O/test_cuda.log | tr '\n' ' ')"
  failures $O/test_cuda.log 60; rm -f $O/test_cuda.log
fi
if need 60 device_loop; then
  timeout 120 $L "~[device_cma]" > $O/loop.log 2>&1; say "test_cuda_device_loop (all other cases) rc=$? $(tail -2 $O/loop.log | tr '\n' ' ')"
  failures $O/loop.log 60; rm -f $O/loop.log
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
S=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
if [ -n "$S" ] && need 60 memcheck; then
  M=$(( ${DEADLINE:-585} - ($(date +%s) - t0) - 10 ))
  timeout $M $S --tool memcheck --error-exitcode 3 $T "[row_tiles]" > $O/memcheck.log 2>&1
  say "memcheck test_cuda [row_tiles] (limit $M s) rc=$? $(grep -E "ERROR SUMMARY|test cases" $O/memcheck.log | tail -2 | tr '\n' ' ')"
  grep -m20 -A8 "Invalid\|out of bounds" $O/memcheck.log >> $O/summary.txt; gzip -f $O/memcheck.log
fi
say done
( cd $O && tar czf results.tgz $(ls | grep -v -e summary.txt -e results.tgz) && ls | grep -v -e summary.txt -e results.tgz | xargs rm -rf )
