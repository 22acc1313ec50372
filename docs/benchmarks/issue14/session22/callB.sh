#!/usr/bin/env bash
# Session 22 call B: the fused backward prologue (cuda/modconv_grad_prologue.cuh) against the CPU,
# every CUDA test, the step table with the prologue on and off in one run, its profile, the main
# job and a 1000-step run.
set -uo pipefail
O=$OUT; t0=$(date +%s)
say() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a $O/summary.txt; }
need() { [ $(( $(date +%s) - t0 + $1 )) -lt ${DEADLINE:-585} ] || { say "skipped (no time left): $2"; return 1; }; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv,noheader | tee -a $O/summary.txt
git log --oneline -1 | tee -a $O/summary.txt; git status --short | head -20 >> $O/summary.txt
[ -d .gpudeps ] || tar xJf .devrun/gpudeps.tar.xz
root=$PWD; source scripts/gpu_cmake_deps.sh
export PATH=/usr/local/cuda/bin:$PATH GANINV_TEST_DATA_DIR=$root/tests/data
cmake -S . -B build-dev -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DGANINV_ENABLE_CUDA=ON \
  -DGANINV_BUILD_TESTS=ON -DGANINV_BUILD_EXAMPLES=ON -DGANINV_BUILD_BENCHMARKS=ON "${deps[@]}" > $O/cfg.log 2>&1
say "configure rc=$?"
ninja -C build-dev -k 0 -j16 test_cuda test_cuda_device_loop bench_device_step_gpu > $O/build.log 2>&1
say "build rc=$?"; grep -E "error" $O/build.log | head -20 | tee -a $O/summary.txt
ninja -C build-dev -k 0 -j12 ganinv_cli write_random_generator > $O/build2.log 2>&1 &
timeout 120 build-dev/tests/test_cuda "[fused_backward]" > $O/fb.log 2>&1; say "test_cuda [fused_backward] rc=$? $(tail -2 $O/fb.log | tr '\n' ' ')"
grep -B3 -A25 "FAILED" $O/fb.log | head -60 >> $O/summary.txt
grep "ERRBOUND" $O/fb.log | grep -E "modconv_bwd_fused" | sort -k2 | head -80 > $O/fb_errors.txt; rm -f $O/fb.log
B=$(find build-dev -name bench_device_step_gpu -type f | head -1)
timeout 200 $B --res 1024,256 --precisions tf32 --batches 1 --prologues fused,unfused --json $O/step_fused_unfused.json > $O/step.txt 2>&1
say "bench fused/unfused rc=$?"; cat $O/step.txt >> $O/summary.txt; rm -f $O/step.txt
timeout 120 build-dev/tests/test_cuda > $O/test_cuda.log 2>&1; say "test_cuda (all) rc=$? $(tail -2 $O/test_cuda.log | tr '\n' ' ')"
grep -B3 -A25 "FAILED" $O/test_cuda.log | head -60 >> $O/summary.txt; gzip -f $O/test_cuda.log
if need 120 loop_all; then
  timeout 150 build-dev/tests/test_cuda_device_loop > $O/test_loop.log 2>&1; say "test_cuda_device_loop (all) rc=$? $(tail -2 $O/test_loop.log | tr '\n' ' ')"
  grep -B3 -A25 "FAILED" $O/test_loop.log | head -60 >> $O/summary.txt; gzip -f $O/test_loop.log
fi
wait; say "build ganinv $(tail -1 $O/build2.log)"
G=build-dev/examples/ganinv
if need 40 mainjob; then
  rm -rf /tmp/job_cuda; ts=$(date +%s.%N)
  timeout 40 $G invert --model models/fmnist32.safetensors --dir examples/images --space wplus --optimizer adam --steps 500 --out /tmp/job_cuda --device cuda > $O/job_cuda.log 2>&1
  say "main job --device cuda rc=$? $(python3 -c "print(round($(date +%s.%N)-$ts,2))") s: $(grep -E '^ *mean' $O/job_cuda.log | tail -1)"
fi
if need 80 prof; then
  timeout 100 ncu --clock-control none --profile-from-start off --metrics gpu__time_duration.sum --csv --log-file $O/ncu_official_1024.csv \
     $B --res 1024 --precisions tf32 --batches 1 --profile official > $O/prof.txt 2>&1
  say "ncu official 1024 rc=$?"; tail -2 $O/prof.txt >> $O/summary.txt
  python3 scripts/kernel_time_summary.py $O/ncu_official_1024.csv --top 40 --json $O/k_official_1024.json > $O/k.md 2>&1
  cat $O/k.md >> $O/summary.txt; gzip -f $O/ncu_official_1024.csv; rm -f $O/k.md $O/prof.txt
fi
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
rm -f $O/job_*.log $O/i1000*.log
grep -q "build rc=0" $O/summary.txt && rm -f $O/cfg.log $O/build.log $O/build2.log
say done
