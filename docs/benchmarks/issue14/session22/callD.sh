#!/usr/bin/env bash
# Session 22 call D: the demodulation sums in the unfused epilogue backward; every CUDA test; the
# README's main job on the GPU; the step table at 1024^2 batch 1 and 8 and 256^2; 1000-step runs.
set -uo pipefail
O=$OUT; t0=$(date +%s)
say() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a $O/summary.txt; }
need() { [ $(( $(date +%s) - t0 + $1 )) -lt ${DEADLINE:-585} ] || { say "skipped (no time left): $2"; return 1; }; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv,noheader | tee -a $O/summary.txt
[ -d .gpudeps ] || tar xJf .devrun/gpudeps.tar.xz
root=$PWD; source scripts/gpu_cmake_deps.sh
export PATH=/usr/local/cuda/bin:$PATH GANINV_TEST_DATA_DIR=$root/tests/data
cmake -S . -B build-dev -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DGANINV_ENABLE_CUDA=ON \
  -DGANINV_BUILD_TESTS=ON -DGANINV_BUILD_EXAMPLES=ON -DGANINV_BUILD_BENCHMARKS=ON "${deps[@]}" > $O/cfg.log 2>&1
say "configure rc=$?"
ninja -C build-dev -k 0 -j16 test_cuda bench_device_step_gpu ganinv_cli write_random_generator test_cuda_device_loop > $O/build.log 2>&1
say "build rc=$?"; grep -E "error" $O/build.log | head -20 | tee -a $O/summary.txt
timeout 120 build-dev/tests/test_cuda "[fused_backward],[modconv]" > $O/fb.log 2>&1; say "test_cuda [fused_backward],[modconv] rc=$? $(tail -2 $O/fb.log | tr '\n' ' ')"
grep -B3 -A25 "FAILED" $O/fb.log | head -60 >> $O/summary.txt; rm -f $O/fb.log
timeout 120 build-dev/tests/test_cuda > $O/test_cuda.log 2>&1; say "test_cuda (all) rc=$? $(tail -2 $O/test_cuda.log | tr '\n' ' ')"
grep -B3 -A25 "FAILED" $O/test_cuda.log | head -60 >> $O/summary.txt; rm -f $O/test_cuda.log
G=build-dev/examples/ganinv
rm -rf /tmp/job_cuda; ts=$(date +%s.%N)
timeout 40 $G invert --model models/fmnist32.safetensors --dir examples/images --space wplus --optimizer adam --steps 500 --out /tmp/job_cuda --device cuda > $O/job_cuda.log 2>&1
say "main job --device cuda rc=$? $(python3 -c "print(round($(date +%s.%N)-$ts,2))") s: $(grep -E '^ *mean' $O/job_cuda.log | tail -1)"
B=$(find build-dev -name bench_device_step_gpu -type f | head -1)
if need 40 bench_b1; then
  timeout 60 $B --res 1024,256 --precisions tf32 --batches 1 --json $O/step_b1.json > $O/step.txt 2>&1
  say "bench tf32 b1 rc=$?"; cat $O/step.txt >> $O/summary.txt; rm -f $O/step.txt
fi
i1000() {  # name, args...
  local name=$1; shift; rm -rf /tmp/o1000; local ts=$(date +%s%N)
  timeout 40 $G invert --model /tmp/r1024.safetensors --image $T --out /tmp/o1000 --steps 1000 --device cuda "$@" > $O/i1000.log 2>&1
  local rc=$?; say "1000-step 1024 $name rc=$rc: process start to outputs $(( ($(date +%s%N) - ts) / 1000000 )) ms; $(ls /tmp/o1000 | wc -l) files"
  grep -E "time|mean|psnr|ms/step" $O/i1000.log | tail -3 >> $O/summary.txt; rm -f $O/i1000.log
}
if need 60 i1000; then
  $(find build-dev -name write_random_generator -type f | head -1) --res 1024 --seed 1 --out /tmp/r1024.safetensors > /dev/null
  $G generate --model /tmp/r1024.safetensors --seed 100 --count 1 --out /tmp/t.png > /dev/null
  python3 -c "
import torch, torchvision
torch.manual_seed(0)
torch.save(torchvision.models.vgg16(weights=None).state_dict(), '/tmp/vgg16.pth')" && python3 tools/convert_torchvision_vgg16.py /tmp/vgg16.pth /tmp/vgg16.safetensors > /dev/null
  T=$(ls /tmp/t*.png | head -1)
  i1000 official_tf32 --space w --optimize-noise --loss vgg --vgg-weights /tmp/vgg16.safetensors --cuda-precision tf32
  need 25 i1000b && i1000 official_bf16 --space w --optimize-noise --loss vgg --vgg-weights /tmp/vgg16.safetensors --cuda-precision bf16
  need 25 i1000c && i1000 wplus_mse_tf32 --space wplus --loss mse --cuda-precision tf32
fi
if need 90 bench_b8; then
  timeout 90 $B --res 1024 --precisions tf32 --batches 8 --json $O/step_b8.json > $O/step.txt 2>&1
  say "bench tf32 1024 b8 rc=$?"; cat $O/step.txt >> $O/summary.txt; rm -f $O/step.txt
fi
if need 60 loop; then
  timeout $(( ${DEADLINE:-585} - ($(date +%s) - t0) )) build-dev/tests/test_cuda_device_loop > $O/test_loop.log 2>&1; say "test_cuda_device_loop (all) rc=$? $(tail -2 $O/test_loop.log | tr '\n' ' ')"
  grep -B3 -A25 "FAILED" $O/test_loop.log | head -60 >> $O/summary.txt; rm -f $O/test_loop.log
fi
rm -f $O/job_*.log
grep -q "build rc=0" $O/summary.txt && rm -f $O/cfg.log $O/build.log
say done
