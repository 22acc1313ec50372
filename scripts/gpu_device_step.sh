#!/usr/bin/env bash
# Issue 14 on a GPU machine: the device-resident Adam loop's tests and its benchmark next to the
# official projector, in one call:
#   build   configure build-gpu (Release, sm_90a, .gpudeps/ when present), build test_cuda,
#           test_cuda_device_loop and bench_device_step_gpu
#   test    test_cuda_device_loop, then the whole test_cuda
#   bench   bench_device_step_gpu (256 and 1024, batch 1 and 8, fp32/tf32/bf16), gemm_peak.py, the
#           official projector's project() (official_projector_timing.py, $GANINV_OFFICIAL_DIR =
#           a checkout of stylegan2-ada-pytorch next to the script; skipped when absent), joined
#   tune    (not in the default list; issue 15) builds the ganinv tool and bench_tune_gpu, runs the
#           cli_tune test script with this GPU (tune --device cuda vs --device cpu) and the PTI
#           benchmark (450 pivot + 350 tuning steps at 256 and 1024)
#   steps1000 (not in the default list) builds the ganinv tool and write_random_generator, then times
#           `ganinv invert --steps 1000` on a random-weight 1024^2 official config from process start
#           to exit with its outputs written (issue 14's "<= 12 s"): the official objective (W + noise
#           maps + VGG16 feature distance; a random VGG16 from torchvision, when torch is there) and W+
#           MSE, TF32 and BF16; steps1000.jsonl and one summary line per run
# Logs, JSON and tables go to $OUT (or ./gpu_check_out/device_step).
# Usage: scripts/gpu_device_step.sh [build,test,bench,tune,steps1000]
# Env: GPU_CHECK_QUICK=1, GANINV_OFFICIAL_DIR, GPU_DEVICE_STEP_TEST_FILTER (a Catch2 filter for test_cuda),
#      GPU_TUNE_BENCH_ARGS (extra bench_tune_gpu arguments, e.g. "--precisions tf32"),
#      GPU_STEPS1000_RES / _STEPS / _DEVICE (default 1024 / 1000 / cuda; a CPU run with a small
#      resolution and few steps checks the step's plumbing)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out="${OUT:-$root/gpu_check_out}/device_step"
mkdir -p "$out"
steps="${1:-build,test,bench}"
has() { [[ ",$steps," == *",$1,"* ]]; }
say() { echo "[gpu_device_step] $*" | tee -a "$out/summary.log"; }
export PATH="$PATH:/usr/local/cuda/bin"
export GANINV_TEST_DATA_DIR="$root/tests/data"
build=build-gpu
status=0
quick=()
[ -n "${GPU_CHECK_QUICK:-}" ] && quick=(--quick)

if has build; then
  t0=$(date +%s)
  source scripts/gpu_cmake_deps.sh
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DGANINV_BUILD_EXAMPLES=OFF \
    -DGANINV_BUILD_BENCHMARKS=ON "${deps[@]}" > "$out/build.log" 2>&1 &&
  cmake --build "$build" --target test_cuda test_cuda_device_loop bench_device_step_gpu -j"$(nproc)" >> "$out/build.log" 2>&1
  rc=$?
  say "build rc=$rc in $(( $(date +%s) - t0 )) s"
  [ $rc -ne 0 ] && { grep -E "error" "$out/build.log" | head -20; exit 1; }
fi

if has test; then
  t0=$(date +%s)
  "$build/tests/test_cuda_device_loop" --durations yes > "$out/test_device_loop.log" 2>&1; rc=$?
  say "test_cuda_device_loop: rc=$rc $(grep -E "All tests passed|test cases" "$out/test_device_loop.log" | tail -1) ($(( $(date +%s) - t0 )) s)"
  [ $rc -ne 0 ] && { grep -B3 -A12 "FAILED" "$out/test_device_loop.log" | head -60; status=1; }
  t0=$(date +%s)
  filter=(${GPU_DEVICE_STEP_TEST_FILTER:+"$GPU_DEVICE_STEP_TEST_FILTER"})
  "$build/tests/test_cuda" "${filter[@]}" > "$out/test_cuda.log" 2>&1; rc=$?
  say "test_cuda ${GPU_DEVICE_STEP_TEST_FILTER:-(all)}: rc=$rc $(grep -E "All tests passed|test cases" "$out/test_cuda.log" | tail -1) ($(( $(date +%s) - t0 )) s)"
  [ $rc -ne 0 ] && { grep -B3 -A12 "FAILED" "$out/test_cuda.log" | head -60; status=1; }
fi

if has bench; then
  t0=$(date +%s)
  python3 benchmarks/gpu/gemm_peak.py --out "$out/gemm_peak.json" > "$out/bench.log" 2>&1
  "$build/benchmarks/gpu/bench_device_step_gpu" "${quick[@]}" --json "$out/device_step_gpu.json" >> "$out/bench.log" 2>&1
  rc=$?
  say "bench_device_step_gpu rc=$rc ($(( $(date +%s) - t0 )) s)"
  [ $rc -ne 0 ] && { tail -5 "$out/bench.log"; status=1; }
  official=()
  od="${GANINV_OFFICIAL_DIR:-}"
  if [ -n "$od" ] && [ -d "$od/stylegan2-ada-pytorch" ]; then
    for res in 256 1024; do
      t0=$(date +%s)
      ( cd "$out" && PYTHONPATH="$od/stylegan2-ada-pytorch" timeout 300 python3 "$od/official_projector_timing.py" \
          --res "$res" --short 10 --long 60 > "$out/official_$res.json" 2> "$out/official_$res.err" )
      say "official projector $res: rc=$? $(tail -1 "$out/official_$res.json") ($(( $(date +%s) - t0 )) s)"
      official+=("$out/official_$res.json")
    done
  fi
  python3 benchmarks/gpu/join_device_step.py "$out/device_step_gpu.json" --official "${official[@]}" \
    --peak "$out/gemm_peak.json" --out "$out/device_step_joined.json" > "$out/device_step_table.md" 2>> "$out/bench.log"
  cat "$out/device_step_table.md" | tee -a "$out/summary.log"
fi
if has tune; then
  t0=$(date +%s)
  [ -f "$build/CMakeCache.txt" ] || { source scripts/gpu_cmake_deps.sh; cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES=90a -DGANINV_BUILD_EXAMPLES=OFF -DGANINV_BUILD_BENCHMARKS=ON "${deps[@]}" > "$out/build.log" 2>&1; }
  cmake -S . -B "$build" -DGANINV_BUILD_EXAMPLES=ON >> "$out/build.log" 2>&1 &&
  cmake --build "$build" --target ganinv_cli bench_tune_gpu -j"$(nproc)" >> "$out/build.log" 2>&1
  rc=$?
  say "tune build rc=$rc in $(( $(date +%s) - t0 )) s"
  if [ $rc -ne 0 ]; then grep -E "error" "$out/build.log" | head -20; status=1; else
    t0=$(date +%s)
    OMP_NUM_THREADS=8 tests/cli/test_cli_tune.sh "$build/examples/ganinv" models/fmnist32.safetensors tests/data \
      "$out/cli_tune_work" > "$out/cli_tune.log" 2>&1; rc=$?
    say "cli_tune (with the GPU): rc=$rc $(tail -1 "$out/cli_tune.log") ($(( $(date +%s) - t0 )) s)"
    [ $rc -ne 0 ] && { grep -A5 FAIL "$out/cli_tune.log" | head -30; status=1; }
    t0=$(date +%s)
    # shellcheck disable=SC2086  # a list of arguments
    "$build/benchmarks/gpu/bench_tune_gpu" "${quick[@]}" ${GPU_TUNE_BENCH_ARGS:-} --json "$out/tune_gpu.json" > "$out/tune_bench.log" 2>&1; rc=$?
    say "bench_tune_gpu rc=$rc ($(( $(date +%s) - t0 )) s)"
    tee -a "$out/summary.log" < "$out/tune_bench.log" | tail -12
    [ $rc -ne 0 ] && status=1
  fi
fi
if has steps1000; then
  t0=$(date +%s)
  [ -f "$build/CMakeCache.txt" ] || { source scripts/gpu_cmake_deps.sh; cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES=90a -DGANINV_BUILD_BENCHMARKS=ON "${deps[@]}" > "$out/build.log" 2>&1; }
  cmake -S . -B "$build" -DGANINV_BUILD_EXAMPLES=ON -DGANINV_BUILD_BENCHMARKS=ON >> "$out/build.log" 2>&1 &&
  cmake --build "$build" --target ganinv_cli write_random_generator -j"$(nproc)" >> "$out/build.log" 2>&1
  rc=$?
  say "steps1000 build rc=$rc in $(( $(date +%s) - t0 )) s"
  if [ $rc -ne 0 ]; then grep -E "error" "$out/build.log" | head -20; status=1; else
    res="${GPU_STEPS1000_RES:-1024}" steps="${GPU_STEPS1000_STEPS:-1000}" dev="${GPU_STEPS1000_DEVICE:-cuda}"
    work="$out/steps1000_work"; rm -rf "$work"; mkdir -p "$work"
    cli="$build/examples/ganinv"
    "$build/benchmarks/write_random_generator" --res "$res" --seed 1 --out "$work/g.safetensors" > /dev/null &&
    "$cli" generate --model "$work/g.safetensors" --seed 100 --out "$work/target.png" > /dev/null ||
      { say "steps1000: could not write the generator or the target"; status=1; }
    objectives=("wplus_mse|--space wplus --loss mse")
    if python3 - "$work/vgg16.pth" > /dev/null 2>&1 <<'PY2'
import sys, torch, torchvision
torch.manual_seed(0)
torch.save(torchvision.models.vgg16(weights=None).state_dict(), sys.argv[1])
PY2
    then
      python3 tools/convert_torchvision_vgg16.py "$work/vgg16.pth" "$work/vgg16.safetensors" > /dev/null &&
        objectives=("official|--space w --optimize-noise --loss vgg --vgg-weights $work/vgg16.safetensors" "${objectives[@]}")
    else
      say "steps1000: no torch/torchvision here: the official objective (it needs a VGG16) is skipped"
    fi
    precisions=(tf32 bf16)
    [ "$dev" = cuda ] || precisions=(default)
    : > "$out/steps1000.jsonl"
    for entry in "${objectives[@]}"; do
      name="${entry%%|*}"; read -r -a args <<< "${entry#*|}"
      for prec in "${precisions[@]}"; do
        pargs=(); [ "$prec" = default ] || pargs=(--cuda-precision "$prec")
        rm -rf "$work/run"; ts=$(date +%s%N)
        timeout 300 "$cli" invert --model "$work/g.safetensors" --image "$work/target.png" --out "$work/run" \
          --steps "$steps" --device "$dev" "${pargs[@]}" "${args[@]}" > "$work/run.log" 2>&1
        rc=$?; ms=$(( ($(date +%s%N) - ts) / 1000000 ))
        # the outputs a person looks at: the reconstruction and the codes
        outputs=$(find "$work/run" -name "*.png" 2>/dev/null | wc -l)
        codes=$(find "$work/run" -name "*.safetensors" 2>/dev/null | wc -l)
        ok=false; [ $rc -eq 0 ] && [ "$outputs" -gt 0 ] && [ "$codes" -gt 0 ] && ok=true
        [ "$ok" = true ] || { status=1; tail -5 "$work/run.log"; }
        printf '{"what": "ganinv invert, process start to exit", "objective": "%s", "precision": "%s", "res": %s, "steps": %s, "device": "%s", "seconds": %s, "rc": %s, "outputs_written": %s}\n' \
          "$name" "$prec" "$res" "$steps" "$dev" "$(awk "BEGIN{printf \"%.2f\", $ms/1000}")" "$rc" "$ok" >> "$out/steps1000.jsonl"
        say "steps1000 $name $prec: ${ms} ms, rc=$rc, outputs written: $ok"
      done
    done
    rm -rf "$work"
  fi
fi
exit $status
