#!/usr/bin/env bash
# Session 22 call C: the fixed fused prologue (strength reduction; 32-channel tile; noise sums in
# registers) against the CPU, every CUDA test, the step table (fused vs unfused, in-run timing)
# next to the official project() in the same lease, and the profile.
set -uo pipefail
O=$OUT; t0=$(date +%s)
say() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a $O/summary.txt; }
need() { [ $(( $(date +%s) - t0 + $1 )) -lt ${DEADLINE:-585} ] || { say "skipped (no time left): $2"; return 1; }; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv,noheader | tee -a $O/summary.txt
git status --short | head -20 >> $O/summary.txt
[ -d .gpudeps ] || tar xJf .devrun/gpudeps.tar.xz
root=$PWD; source scripts/gpu_cmake_deps.sh
export PATH=/usr/local/cuda/bin:$PATH GANINV_TEST_DATA_DIR=$root/tests/data
cmake -S . -B build-dev -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DGANINV_ENABLE_CUDA=ON \
  -DGANINV_BUILD_TESTS=ON -DGANINV_BUILD_EXAMPLES=ON -DGANINV_BUILD_BENCHMARKS=ON "${deps[@]}" > $O/cfg.log 2>&1
say "configure rc=$?"
ninja -C build-dev -k 0 -j16 test_cuda bench_device_step_gpu > $O/build.log 2>&1
say "build rc=$?"; grep -E "error" $O/build.log | head -20 | tee -a $O/summary.txt
timeout 120 build-dev/tests/test_cuda "[fused_backward]" > $O/fb.log 2>&1; say "test_cuda [fused_backward] rc=$? $(tail -2 $O/fb.log | tr '\n' ' ')"
grep -B3 -A25 "FAILED" $O/fb.log | head -60 >> $O/summary.txt
grep "ERRBOUND" $O/fb.log | grep -E "_fused|fused_vs" | sort -t= -k5 -g | tail -30 > $O/fb_errors.txt; gzip -f $O/fb.log
B=$(find build-dev -name bench_device_step_gpu -type f | head -1)
timeout 200 $B --res 1024,256 --precisions tf32 --batches 1 --prologues fused,unfused --json $O/step_tf32_b1.json > $O/step.txt 2>&1
say "bench tf32 b1 fused/unfused rc=$?"; cat $O/step.txt >> $O/summary.txt; rm -f $O/step.txt
timeout 120 build-dev/tests/test_cuda > $O/test_cuda.log 2>&1; say "test_cuda (all) rc=$? $(tail -2 $O/test_cuda.log | tr '\n' ' ')"
grep -B3 -A25 "FAILED" $O/test_cuda.log | head -60 >> $O/summary.txt; gzip -f $O/test_cuda.log
od=$root/.official
official() {  # res, timeout
  ( cd $O && PYTHONPATH=$od/stylegan2-ada-pytorch timeout $2 python3 $od/official_projector_timing.py \
      --res $1 --short 10 --long 60 > $O/official_$1.json 2> $O/official_$1.err )
  say "official projector $1 rc=$? $(tail -1 $O/official_$1.json)"; tail -3 $O/official_$1.err >> $O/summary.txt
  rm -f $O/official_$1.err $O/*.pkl
}
need 100 official1024 && official 1024 90
if need 80 prof; then
  timeout 90 ncu --clock-control none --profile-from-start off --metrics gpu__time_duration.sum --csv --log-file $O/ncu_official_1024.csv \
     $B --res 1024 --precisions tf32 --batches 1 --profile official > $O/prof.txt 2>&1
  say "ncu official 1024 rc=$?"; tail -2 $O/prof.txt >> $O/summary.txt
  python3 scripts/kernel_time_summary.py $O/ncu_official_1024.csv --top 30 --json $O/k_official_1024.json > $O/k.md 2>&1
  cat $O/k.md >> $O/summary.txt; rm -f $O/ncu_official_1024.csv $O/k.md $O/prof.txt
fi
if need 70 bf16; then
  timeout 80 $B --res 1024 --precisions bf16 --batches 1 --prologues fused,unfused --json $O/step_bf16_b1.json > $O/step.txt 2>&1
  say "bench bf16 b1 rc=$?"; cat $O/step.txt >> $O/summary.txt; rm -f $O/step.txt
fi
if need 60 official256; then official 256 50; fi
grep -q "build rc=0" $O/summary.txt && rm -f $O/cfg.log $O/build.log
say done
