#!/usr/bin/env bash
# Session 24 call A: the row-halo wgmma conv (cuda/hopper_conv_rows.cuh) and its strip variant
# (hopper_conv_strip.cuh) against the CPU (new
# [row_tiles] case, the fused-backward and wgmma cases), every CUDA test, the step table with the
# row tiles on and off in one process, BF16 rows, the ncu profile, test_cuda_device_loop whole.
set -uo pipefail
O=$OUT; t0=$(date +%s)
say() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a $O/summary.txt; }
need() { [ $(( $(date +%s) - t0 + $1 )) -lt ${DEADLINE:-585} ] || { say "skipped (no time left): $2"; return 1; }; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv,noheader | tee -a $O/summary.txt
[ -d .gpudeps ] || tar xJf .devrun/gpudeps.tar.xz
root=$PWD; source scripts/gpu_cmake_deps.sh
export PATH=/usr/local/cuda/bin:$PATH GANINV_TEST_DATA_DIR=$root/tests/data
cmake -S . -B build-dev -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DGANINV_ENABLE_CUDA=ON \
  -DGANINV_BUILD_TESTS=ON -DGANINV_BUILD_EXAMPLES=ON -DGANINV_BUILD_BENCHMARKS=ON "${deps[@]}" > $O/cfg.log 2>&1; say "configure rc=$?"
ninja -C build-dev -k 0 -j16 test_cuda bench_device_step_gpu $( [ "${LOOP:-0}" = 1 ] && echo test_cuda_device_loop) > $O/build.log 2>&1
say "build rc=$?"; grep -E "error" $O/build.log | head -20 | tee -a $O/summary.txt
timeout 70 build-dev/tests/test_cuda "[row_tiles],[fused_backward],[wgmma]" > $O/rows.log 2>&1; say "test_cuda [row_tiles],[fused_backward],[wgmma] rc=$? $(tail -2 $O/rows.log | tr '\n' ' ')"
grep -B3 -A30 "FAILED" $O/rows.log | head -80 >> $O/summary.txt; grep ERRBOUND $O/rows.log | grep -E "strips_|rows_|gather_" | sort | uniq > $O/errbound_rows.txt; rm -f $O/rows.log
B=$(find build-dev -name bench_device_step_gpu -type f | head -1)
for v in strips off; do  # one process each: a hang in one variant leaves the others' rows
  need 40 table_$v || break
  timeout 45 $B --res 1024,256 --precisions tf32 --batches 1 --row-tiles $v --json $O/step_tf32_$v.json > $O/step.txt 2>&1
  say "bench tf32 b1 row tiles $v rc=$?"; grep -E "^\|" $O/step.txt | tail -4 >> $O/summary.txt; rm -f $O/step.txt
done
if need 50 test_cuda; then  # the rest of test_cuda (the three tags above ran already)
  timeout 100 build-dev/tests/test_cuda "~[row_tiles]~[fused_backward]~[wgmma]" > $O/test_cuda.log 2>&1; say "test_cuda (all other cases) rc=$? $(tail -2 $O/test_cuda.log | tr '\n' ' ')"
  grep -B3 -A25 "FAILED" $O/test_cuda.log | head -60 >> $O/summary.txt; rm -f $O/test_cuda.log
fi
prof() {  # res: per-launch CSV kept gzipped, summary in the log
  timeout 70 ncu --clock-control none --profile-from-start off --metrics gpu__time_duration.sum --csv --log-file $O/ncu_$1.csv \
     $B --res $1 --precisions tf32 --batches 1 --profile official > $O/prof.txt 2>&1
  say "ncu official $1 rc=$?"; tail -2 $O/prof.txt >> $O/summary.txt
  python3 scripts/kernel_time_summary.py $O/ncu_$1.csv --top 40 --json $O/k_official_$1.json > $O/k.md 2>&1
  cat $O/k.md >> $O/summary.txt; gzip -f $O/ncu_$1.csv; rm -f $O/k.md $O/prof.txt
}
need 40 prof1024 && prof 1024
if need 40 table_rows; then
  timeout 45 $B --res 1024,256 --precisions tf32 --batches 1 --row-tiles rows --json $O/step_tf32_rows.json > $O/step.txt 2>&1
  say "bench tf32 b1 row tiles rows rc=$?"; grep -E "^\|" $O/step.txt | tail -4 >> $O/summary.txt; rm -f $O/step.txt
fi
if need 60 sol; then  # throughput metrics of the big memory-side kernels (rows on), one replay step
  timeout 60 ncu --clock-control none --profile-from-start off --kernel-name regex:"nhwc_conv|fir4|bias_act_noise_backward|pack_nhwc|grad_prologue|pointwise_modconv" \
     --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,lts__throughput.avg.pct_of_peak_sustained_elapsed,lts__t_bytes.sum,dram__bytes.sum,sm__throughput.avg.pct_of_peak_sustained_elapsed,l1tex__throughput.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active \
     --csv --log-file $O/ncu_sol_1024.csv $B --res 1024 --precisions tf32 --batches 1 --profile official > $O/prof.txt 2>&1
  say "ncu sol 1024 rc=$?"; gzip -f $O/ncu_sol_1024.csv; rm -f $O/prof.txt
fi
if need 60 bf16; then
  timeout 60 $B --res 1024,256 --precisions bf16 --batches 1 --row-tiles strips,off --json $O/step_bf16.json > $O/step.txt 2>&1
  say "bench bf16 b1 row tiles strips,off rc=$?"; cat $O/step.txt >> $O/summary.txt; rm -f $O/step.txt
fi
if [ "${LOOP:-0}" = 1 ] && need 130 loop_all; then
  L=$(( ${DEADLINE:-585} - ($(date +%s) - t0) - 10 ))
  timeout $L build-dev/tests/test_cuda_device_loop > $O/test_loop.log 2>&1; say "test_cuda_device_loop (all, limit $L s) rc=$? $(tail -2 $O/test_loop.log | tr '\n' ' ')"
  grep -B3 -A25 "FAILED" $O/test_loop.log | head -60 >> $O/summary.txt; rm -f $O/test_loop.log
fi
grep -q "build rc=0" $O/summary.txt && rm -f $O/cfg.log $O/build.log
say done
( cd $O && tar czf results.tgz $(ls | grep -v -e summary.txt -e results.tgz) && ls | grep -v -e summary.txt -e results.tgz | xargs rm -rf )
