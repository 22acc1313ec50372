#!/usr/bin/env bash
# Session 23 call A: the batched noise regulariser (all maps in one set of launches), the
# demodulation sums from the epilogue backward (unfused layers) and split-K wgmma convs for the
# small planes, against the
# CPU and the per-map kernels' bits, every CUDA test, test_cuda_device_loop, the step table next to
# the tree before the change (built side by side in the same call), batch 8, the profile, a
# 1000-step run and the official project() in the same lease.
set -uo pipefail
O=$OUT; t0=$(date +%s)
say() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a $O/summary.txt; }
need() { [ $(( $(date +%s) - t0 + $1 )) -lt ${DEADLINE:-585} ] || { say "skipped (no time left): $2"; return 1; }; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv,noheader | tee -a $O/summary.txt
[ -d .gpudeps ] || tar xJf .devrun/gpudeps.tar.xz
root=$PWD; source scripts/gpu_cmake_deps.sh
export PATH=/usr/local/cuda/bin:$PATH GANINV_TEST_DATA_DIR=$root/tests/data
# The tree before the change: this tree with the four changed files as they were (.devrun/base).
rm -rf /tmp/base && mkdir -p /tmp/base && tar c --exclude=./build-dev --exclude=./.devrun . | tar x -C /tmp/base && cp -r .devrun/base/. /tmp/base/
cfg() { cmake -S $1 -B $1/build-dev -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DGANINV_ENABLE_CUDA=ON \
  -DGANINV_BUILD_TESTS=ON -DGANINV_BUILD_EXAMPLES=ON -DGANINV_BUILD_BENCHMARKS=ON "${deps[@]}"; }
cfg $root > $O/cfg.log 2>&1; say "configure rc=$?"
( cfg /tmp/base > /tmp/base_cfg.log 2>&1 && ninja -C /tmp/base/build-dev -j6 bench_device_step_gpu > /tmp/base_build.log 2>&1; echo "base build rc=$?" > /tmp/base_rc ) &
ninja -C build-dev -k 0 -j12 test_cuda test_cuda_device_loop bench_device_step_gpu > $O/build.log 2>&1
say "build rc=$?"; grep -E "error" $O/build.log | head -20 | tee -a $O/summary.txt
ninja -C build-dev -k 0 -j8 ganinv_cli write_random_generator > $O/build2.log 2>&1 &
timeout 180 build-dev/tests/test_cuda "[noise],[fused_backward],[split_k]" > $O/noise.log 2>&1; say "test_cuda [noise],[fused_backward],[split_k] rc=$? $(tail -2 $O/noise.log | tr '\n' ' ')"
grep -B3 -A25 "FAILED" $O/noise.log | head -60 >> $O/summary.txt; grep ERRBOUND $O/noise.log | grep noise_reg | sort | uniq | head -20 >> $O/summary.txt; rm -f $O/noise.log
timeout 180 build-dev/tests/test_cuda > $O/test_cuda.log 2>&1; say "test_cuda (all) rc=$? $(tail -2 $O/test_cuda.log | tr '\n' ' ')"
grep -B3 -A25 "FAILED" $O/test_cuda.log | head -60 >> $O/summary.txt; rm -f $O/test_cuda.log
wait; say "$(cat /tmp/base_rc 2>/dev/null) / $(tail -1 $O/build2.log)"
B=$(find build-dev -name bench_device_step_gpu -type f | head -1)
BB=$(find /tmp/base/build-dev -name bench_device_step_gpu -type f | head -1)
bench_pair() {  # k: the new tree (split-K on and off) then the tree before the session (base)
  local k=$1 extra="--split-k on,off"; [ $k = 1 ] && extra="--split-k on,off --vgg-search heuristic,exhaustive"
  timeout 150 $B --res 1024,256 --precisions tf32 --batches 1 $extra --json $O/step_new_$k.json > $O/step.txt 2>&1
  say "bench new tf32 b1 #$k rc=$?"; cat $O/step.txt >> $O/summary.txt
  [ -n "$BB" ] && { timeout 100 $BB --res 1024,256 --precisions tf32 --batches 1 --json $O/step_base_$k.json > $O/step.txt 2>&1
  say "bench base (session 22 tree) tf32 b1 #$k rc=$?"; cat $O/step.txt >> $O/summary.txt; }
  rm -f $O/step.txt
}
need 200 pair1 && bench_pair 1
prof() {  # res: per-launch CSV (grid sizes: which layer is which) kept gzipped, summary in the log
  timeout 70 ncu --clock-control none --profile-from-start off --metrics gpu__time_duration.sum --csv --log-file $O/ncu_$1.csv \
     $B --res $1 --precisions tf32 --batches 1 --profile official > $O/prof.txt 2>&1
  say "ncu official $1 rc=$?"; tail -2 $O/prof.txt >> $O/summary.txt
  python3 scripts/kernel_time_summary.py $O/ncu_$1.csv --top 40 --json $O/k_official_$1.json > $O/k.md 2>&1
  cat $O/k.md >> $O/summary.txt; gzip -f $O/ncu_$1.csv; rm -f $O/k.md $O/prof.txt
}
need 70 prof1024 && prof 1024

if need 150 loop_all; then
  timeout 150 build-dev/tests/test_cuda_device_loop > $O/test_loop.log 2>&1; say "test_cuda_device_loop (all) rc=$? $(tail -2 $O/test_loop.log | tr '\n' ' ')"
  grep -B3 -A25 "FAILED" $O/test_loop.log | head -60 >> $O/summary.txt; rm -f $O/test_loop.log
fi

G=build-dev/examples/ganinv
if need 60 i1000; then
  $(find build-dev -name write_random_generator -type f | head -1) --res 1024 --seed 1 --out /tmp/r1024.safetensors > /dev/null
  $G generate --model /tmp/r1024.safetensors --seed 100 --count 1 --out /tmp/t.png > /dev/null
  python3 -c "
import torch, torchvision
torch.manual_seed(0)
torch.save(torchvision.models.vgg16(weights=None).state_dict(), '/tmp/vgg16.pth')" && python3 tools/convert_torchvision_vgg16.py /tmp/vgg16.pth /tmp/vgg16.safetensors > /dev/null
  T=$(ls /tmp/t*.png | head -1); rm -rf /tmp/o1000; ts=$(date +%s%N)
  timeout 45 $G invert --model /tmp/r1024.safetensors --image $T --out /tmp/o1000 --steps 1000 --device cuda --space w --optimize-noise --loss vgg --vgg-weights /tmp/vgg16.safetensors --cuda-precision tf32 > $O/i1000.log 2>&1
  rc=$?; say "1000-step 1024 official tf32 rc=$rc: process start to outputs $(( ($(date +%s%N) - ts) / 1000000 )) ms; $(ls /tmp/o1000 | tr '\n' ' ')"
  grep -E "time|mean|psnr|ms/step|step" $O/i1000.log | tail -4 >> $O/summary.txt
fi
if need 70 b8; then
  timeout 70 $B --res 1024 --precisions tf32 --batches 8 --json $O/step_b8.json > $O/step.txt 2>&1
  say "bench new tf32 b8 1024 rc=$?"; cat $O/step.txt >> $O/summary.txt; rm -f $O/step.txt
fi
od=$root/.official
if need 75 official1024; then
  ( cd $O && PYTHONPATH=$od/stylegan2-ada-pytorch timeout 70 python3 $od/official_projector_timing.py \
      --res 1024 --short 10 --long 60 > $O/official_1024.json 2> $O/official.err )
  say "official projector 1024 rc=$? $(tail -1 $O/official_1024.json)"; tail -3 $O/official.err >> $O/summary.txt; rm -f $O/official.err $O/*.pkl
fi
need 60 prof256 && prof 256
need 90 pair2 && bench_pair 2
rm -f $O/i1000*.log
grep -q "build rc=0" $O/summary.txt && rm -f $O/cfg.log $O/build.log $O/build2.log
say done
# At most 8 files come back: everything but the summary in one archive.
( cd $O && tar czf results.tgz $(ls | grep -v -e summary.txt -e results.tgz) && ls | grep -v -e summary.txt -e results.tgz | xargs rm -rf )
