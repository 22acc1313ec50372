#!/usr/bin/env bash
# Session 20 call A: the untested gradients case; where an official-objective step's time goes.
set -uo pipefail
O=$OUT; t0=$(date +%s)
say() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a $O/summary.txt; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv,noheader | tee -a $O/summary.txt
[ -d .gpudeps ] || tar xJf .devrun/gpudeps.tar.xz
root=$PWD; source scripts/gpu_cmake_deps.sh
export PATH=/usr/local/cuda/bin:$PATH
cmake -S . -B build-dev -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DGANINV_ENABLE_CUDA=ON \
  -DGANINV_BUILD_TESTS=ON -DGANINV_BUILD_EXAMPLES=OFF -DGANINV_BUILD_BENCHMARKS=ON "${deps[@]}" > $O/cfg.log 2>&1
say "configure rc=$?"
ninja -C build-dev -k 0 -j16 test_cuda_device_loop bench_device_step_gpu > $O/build.log 2>&1
say "build rc=$?"; grep -E "error" $O/build.log | head -20 | tee -a $O/summary.txt
B=$(find build-dev -name bench_device_step_gpu -type f | head -1)
build-dev/tests/test_cuda_device_loop "[gradients]" > $O/test_grad.log 2>&1; say "test [gradients] rc=$? $(tail -2 $O/test_grad.log | tr '\n' ' ')"
grep -B3 -A25 "FAILED" $O/test_grad.log | head -40 >> $O/summary.txt
$B --quick --res 1024,256 --precisions tf32 --batches 1 --json $O/step.json > $O/step.txt 2>&1
say "bench rc=$?"; cat $O/step.txt >> $O/summary.txt
for cfg in "official 1024" "wplus_mse 1024" "official 256"; do
  set -- $cfg
  ncu --clock-control none --profile-from-start off --metrics gpu__time_duration.sum --csv --log-file $O/ncu_$1_$2.csv \
     $B --res $2 --precisions tf32 --batches 1 --profile $1 > $O/prof_$1_$2.txt 2>&1
  say "ncu $1 $2 rc=$?"; tail -3 $O/prof_$1_$2.txt >> $O/summary.txt
  python3 scripts/kernel_time_summary.py $O/ncu_$1_$2.csv --top 40 --json $O/k_$1_$2.json > $O/k_$1_$2.md 2>&1
  cat $O/k_$1_$2.md >> $O/summary.txt
  gzip -f $O/ncu_$1_$2.csv
done
rm -f $O/k_*.md $O/step.txt $O/prof_*.txt $O/ncu_wplus_mse_1024.csv.gz $O/ncu_official_256.csv.gz
[ -s $O/build.log ] && grep -q "build rc=0" $O/summary.txt && rm -f $O/cfg.log
say done
