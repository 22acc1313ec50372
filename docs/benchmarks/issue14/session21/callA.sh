#!/usr/bin/env bash
# Session 21 call A: validate session 20's unrun fixes (fir tap rule, weight_prep bound, 3dd36dd) and
# every CUDA test; the step table next to the official project() in the same call; 1000-step 1024^2
# runs through the tool; then, while time is left, the loop tests, the main job, memcheck.
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
ninja -C build-dev -k 0 -j16 test_cuda test_cuda_device_loop bench_device_step_gpu > $O/build.log 2>&1
say "build rc=$?"; grep -E "error" $O/build.log | head -20 | tee -a $O/summary.txt
ninja -C build-dev -k 0 -j12 ganinv_cli write_random_generator > $O/build2.log 2>&1 &
timeout 60 build-dev/tests/test_cuda "[fir]" > $O/fir.log 2>&1; say "test_cuda [fir] rc=$? $(tail -2 $O/fir.log | tr '\n' ' ')"
grep -B3 -A25 "FAILED" $O/fir.log | head -40 >> $O/summary.txt
timeout 60 build-dev/tests/test_cuda_device_loop "[weight_prep]" > $O/wp.log 2>&1; say "test_cuda_device_loop [weight_prep] rc=$? $(tail -2 $O/wp.log | tr '\n' ' ')"
grep -B3 -A25 "FAILED" $O/wp.log | head -40 >> $O/summary.txt; rm -f $O/fir.log $O/wp.log
timeout 90 build-dev/tests/test_cuda > $O/test_cuda.log 2>&1; say "test_cuda (all) rc=$? $(tail -2 $O/test_cuda.log | tr '\n' ' ')"
grep -B3 -A25 "FAILED" $O/test_cuda.log | head -60 >> $O/summary.txt; gzip -f $O/test_cuda.log
B=$(find build-dev -name bench_device_step_gpu -type f | head -1)
timeout 40 python3 benchmarks/gpu/gemm_peak.py --out $O/gemm_peak.json > /dev/null 2>&1; say "gemm_peak rc=$?"
timeout 150 $B --quick --precisions ${BENCH_PREC:-tf32,bf16} --json $O/device_step_gpu.json > $O/step.txt 2>&1
say "bench_device_step_gpu --quick rc=$?"; cat $O/step.txt >> $O/summary.txt; rm -f $O/step.txt
od=$root/.official
official() {  # res
  ( cd $O && PYTHONPATH=$od/stylegan2-ada-pytorch timeout $2 python3 $od/official_projector_timing.py \
      --res $1 --short 10 --long 60 > $O/official_$1.json 2> $O/official_$1.err )
  say "official projector $1 rc=$? $(tail -1 $O/official_$1.json)"; tail -3 $O/official_$1.err >> $O/summary.txt
  rm -f $O/official_$1.err $O/*.pkl
}
need 120 official1024 && official 1024 140
wait; say "build ganinv $(tail -1 $O/build2.log)"
G=build-dev/examples/ganinv
$(find build-dev -name write_random_generator -type f | head -1) --res 1024 --seed 1 --out /tmp/r1024.safetensors > /dev/null
$G generate --model /tmp/r1024.safetensors --seed 100 --count 1 --out /tmp/t.png > /dev/null
python3 - <<'PY' && say "random vgg16 written"
import torch, torchvision
torch.manual_seed(0)
torch.save(torchvision.models.vgg16(weights=None).state_dict(), "/tmp/vgg16.pth")
PY
python3 tools/convert_torchvision_vgg16.py /tmp/vgg16.pth /tmp/vgg16.safetensors > /dev/null
T=$(ls /tmp/t*.png | head -1)
run1000() {  # name, args...
  local name=$1; shift; rm -rf /tmp/o1000; local ts=$(date +%s%N)
  timeout 45 $G invert --model /tmp/r1024.safetensors --image $T --out /tmp/o1000 --steps 1000 --device cuda "$@" > $O/i1000_$name.log 2>&1
  local rc=$?; local ms=$(( ($(date +%s%N) - ts) / 1000000 ))
  say "1000-step 1024 ($name) rc=$rc: process start to outputs $ms ms; $(ls /tmp/o1000 | tr '\n' ' ')"
  grep -E "time|mean|psnr|ms/step|step" $O/i1000_$name.log | tail -4 >> $O/summary.txt
}
need 50 i1000_official && run1000 official_tf32 --space w --optimize-noise --loss vgg --vgg-weights /tmp/vgg16.safetensors --cuda-precision tf32
need 40 i1000_wplus && run1000 wplus_mse_tf32 --space wplus --loss mse --cuda-precision tf32
need 100 official256 && official 256 90
python3 benchmarks/gpu/join_device_step.py $O/device_step_gpu.json --official $O/official_*.json \
    --peak $O/gemm_peak.json --out /tmp/joined.json >> $O/summary.txt 2>&1
need 50 i1000_official_bf16 && run1000 official_bf16 --space w --optimize-noise --loss vgg --vgg-weights /tmp/vgg16.safetensors --cuda-precision bf16
need 40 i1000_wplus_bf16 && run1000 wplus_mse_bf16 --space wplus --loss mse --cuda-precision bf16
if need 40 mainjob; then
  rm -rf /tmp/job_cuda; ts=$(date +%s.%N)
  timeout 40 $G invert --model models/fmnist32.safetensors --dir examples/images --space wplus --optimizer adam --steps 500 --out /tmp/job_cuda --device cuda > $O/job_cuda.log 2>&1
  say "main job --device cuda rc=$? $(python3 -c "print(round($(date +%s.%N)-$ts,2))") s: $(grep -E '^ *mean' $O/job_cuda.log | tail -1)"
fi
if need 60 loop_all; then
  timeout $(( ${DEADLINE:-585} - ($(date +%s) - t0) )) build-dev/tests/test_cuda_device_loop > $O/test_loop.log 2>&1; say "test_cuda_device_loop (all) rc=$? $(tail -2 $O/test_loop.log | tr '\n' ' ')"
  grep -B3 -A25 "FAILED" $O/test_loop.log | head -60 >> $O/summary.txt; gzip -f $O/test_loop.log
fi
rm -f $O/job_*.log $O/i1000_*.log
grep -q "build rc=0" $O/summary.txt && rm -f $O/cfg.log $O/build.log $O/build2.log
say done
