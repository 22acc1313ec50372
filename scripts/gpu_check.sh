#!/usr/bin/env bash
# GPU check of the Cuda backend, meant for a machine with an NVIDIA GPU (Hopper: sm_90):
#   build     configure (Release, CMAKE_CUDA_ARCHITECTURES=90a) and build test_cuda and bench_gpu
#   test      run every CUDA test (parity with the Cpu backend and the official fixtures)
#   memcheck  compute-sanitizer memcheck on the test suite (without the [large] case), racecheck
#             on the GEMM kernels, when compute-sanitizer is installed
#   bench     bench_gpu, then the PyTorch baseline on the same GPU, then the joined table
#   invert    (not in the default list) scripts/gpu_invert.sh: GPU inversion, its step benchmark
#             against the official projector's step in PyTorch, the main job cuda vs cpu, the table; and
#             bench_losses (also a step of its own): the CUDA losses vs bench_losses_torch.py
# and prints a short summary table. Logs and JSON go to $OUT (or ./gpu_check_out).
#
# Usage: scripts/gpu_check.sh [build,test,memcheck,bench,bench_losses]
# Env:   GANINV_GPU_PREBUILT=DIR  take DIR/test_cuda and DIR/bench_gpu instead of building
#        GPU_CHECK_QUICK=1        short benchmark (fewer repetitions)
#        GPU_CHECK_BENCH_PRECISIONS=fp32,tf32,bf16
# Build dependencies: CUDA toolkit, CMake, a C++20 host compiler, and Eigen / Catch2 /
# stb — from the system, or from .gpudeps/ (scripts/gpu_deps.sh packs them on a Debian machine).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out="${OUT:-$root/gpu_check_out}"
mkdir -p "$out"
steps="${1:-build,test,memcheck,bench}"
log="$out/gpu_check.log"
tmp="$(mktemp -d)"
has() { [[ ",$steps," == *",$1,"* ]]; }
say() { echo "[gpu_check] $*" | tee -a "$log"; }
summary=()
add() { summary+=("$1|$2|$3"); }
export GANINV_TEST_DATA_DIR="$root/tests/data"
export PATH="$PATH:/usr/local/cuda/bin"
jobs="$(nproc)"

say "$(date -u +%FT%TZ) steps=$steps"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1 | tee -a "$log"
nvcc --version 2>&1 | tail -2 | tee -a "$log"

build=build-gpu
bench_build=build-gpu-bench
test_bin="$root/$build/tests/test_cuda"
bench_bin="$root/$bench_build/bench_gpu"
if [ -n "${GANINV_GPU_PREBUILT:-}" ]; then
  test_bin="$(cd "$GANINV_GPU_PREBUILT" && pwd)/test_cuda"
  bench_bin="$(cd "$GANINV_GPU_PREBUILT" && pwd)/bench_gpu"
fi

if has build && [ -z "${GANINV_GPU_PREBUILT:-}" ]; then
  t0=$(date +%s)
  source scripts/gpu_cmake_deps.sh
  [ ${#deps[@]} -gt 0 ] && say "using the packed dependencies in .gpudeps/"
  # bench_losses_gpu (the CUDA losses' benchmark) needs the project's dependencies: built here.
  ( cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DGANINV_BUILD_EXAMPLES=OFF \
        -DGANINV_BUILD_BENCHMARKS=ON "${deps[@]}" > "$tmp/cfg.log" 2>&1 &&
    cmake --build "$build" --target test_cuda test_cuda_device_loop -j"$jobs" > "$tmp/build.log" 2>&1 &&
    { ! grep -q "cuDNN found" "$tmp/cfg.log" ||
      cmake --build "$build" --target bench_losses_gpu -j"$jobs" >> "$tmp/build.log" 2>&1; } ) &
  ( cmake -S benchmarks/gpu -B "$bench_build" -DCMAKE_CUDA_ARCHITECTURES=90a > "$tmp/bcfg.log" 2>&1 &&
    cmake --build "$bench_build" -j"$jobs" > "$tmp/bbuild.log" 2>&1 ) &
  wait
  cat "$tmp"/cfg.log "$tmp"/build.log "$tmp"/bcfg.log "$tmp"/bbuild.log >> "$log" 2>/dev/null
  grep "ganinv: .*cuDNN" "$tmp/cfg.log" | tee -a "$log"
  if [ -x "$test_bin" ] && [ -x "$bench_bin" ]; then
    add build ok "test_cuda + bench_gpu in $(( $(date +%s) - t0 )) s"
  else
    add build FAILED "see gpu_check.log"
    grep -E "error|Error" "$log" | head -20
  fi
fi

if has test && [ -x "$test_bin" ]; then
  t0=$(date +%s)
  "$test_bin" --durations yes > "$out/test_cuda.log" 2>&1
  rc=$?
  res="$(grep -E "All tests passed|test cases:|SKIPPED" "$out/test_cuda.log" | tail -1)"
  case $rc in
    0) add test passed "$res ($(( $(date +%s) - t0 )) s)" ;;
    77) add test SKIPPED "no CUDA device" ;;
    *) add test FAILED "rc=$rc: $res" ;;
  esac
  # The device-resident inversion loop (issue 14) is its own binary (tests/CMakeLists.txt says why).
  loop_bin="$(dirname "$test_bin")/test_cuda_device_loop"
  if [ -x "$loop_bin" ]; then
    t0=$(date +%s)
    "$loop_bin" --durations yes > "$out/test_cuda_device_loop.log" 2>&1
    rc=$?
    res="$(grep -E "All tests passed|test cases:|SKIPPED" "$out/test_cuda_device_loop.log" | tail -1)"
    case $rc in
      0) add test_device_loop passed "$res ($(( $(date +%s) - t0 )) s)" ;;
      77) add test_device_loop SKIPPED "no CUDA device" ;;
      *) add test_device_loop FAILED "rc=$rc: $res" ;;
    esac
  fi
  # Largest measured error per (operation, precision): the numbers behind docs/cuda.md's bounds.
  grep '^ERRBOUND' "$out/test_cuda.log" | awk '{
      split($2,a,"="); split($3,b,"="); split($5,c,"="); k=a[2] " " b[2]; v=c[2]+0;
      if (!(k in m) || v > m[k]) { m[k]=v; w[k]=$4 } }
      END { for (k in m) printf "%-28s %-5s max rel_l2 %.3e  (%s)\n", substr(k,1,index(k," ")-1), substr(k,index(k," ")+1), m[k], w[k] }' \
    | sort > "$out/errbounds.txt"
  say "largest errors per operation and precision:"
  cat "$out/errbounds.txt" | tee -a "$log"
fi

if has memcheck && [ -x "$test_bin" ]; then
  if command -v compute-sanitizer > /dev/null; then
    t0=$(date +%s)
    # Plain cudaMalloc per tensor (GANINV_TEST_NO_POOL) so out-of-bounds accesses hit allocation edges.
    GANINV_TEST_NO_POOL=1 timeout "${GPU_CHECK_MEMCHECK_TIMEOUT:-240}" compute-sanitizer --tool memcheck --leak-check full --error-exitcode 99 \
      "$test_bin" "~[large]~[graph]~[errors]" > "$out/memcheck.log" 2>&1
    rc=$?
    errs="$(grep -c "========= Invalid\|========= Program hit" "$out/memcheck.log")"
    tail="$(grep -E "ERROR SUMMARY" "$out/memcheck.log" | tail -1)"
    case $rc in
      0) add memcheck clean "${tail:-no summary} ($(( $(date +%s) - t0 )) s)" ;;
      124) add memcheck TIMEOUT "$errs errors before the limit; $tail" ;;
      *) add memcheck FAILED "rc=$rc, $errs errors; $tail" ;;
    esac
    # The portable GEMMs (official cases), the wgmma kernels (cp.async ring, mbarriers, epilogue
    # tile; its 1x1 shape also runs the pointwise ToRGB kernels) and the fused bias_act/noise
    # backward (shared-memory channel sums).
    GANINV_TEST_NO_POOL=1 timeout 90 compute-sanitizer --tool racecheck --error-exitcode 99 \
      "$test_bin" "CUDA modulated conv matches all eight official cases" >> "$out/memcheck.log" 2>&1 &&
    GANINV_TEST_NO_POOL=1 timeout 60 compute-sanitizer --tool racecheck --error-exitcode 99 \
      "$test_bin" "CUDA fused bias_act + noise backward matches the CPU backend" >> "$out/memcheck.log" 2>&1 &&
    GANINV_TEST_NO_POOL=1 timeout 360 compute-sanitizer --tool racecheck --error-exitcode 99 \
      "$test_bin" "[wgmma]" >> "$out/memcheck.log" 2>&1
    rc=$?
    tail="$(grep -E "RACECHECK SUMMARY|ERROR SUMMARY" "$out/memcheck.log" | tail -1)"
    [ $rc -eq 0 ] && add racecheck clean "$tail" || add racecheck "FAILED(rc=$rc)" "$tail"
  else
    add memcheck skipped "compute-sanitizer not found"
  fi
fi

if has bench && [ -x "$bench_bin" ]; then
  t0=$(date +%s)
  precs="${GPU_CHECK_BENCH_PRECISIONS:-fp32,tf32,bf16}"
  quick=()
  [ -n "${GPU_CHECK_QUICK:-}" ] && quick=(--quick)
  "$bench_bin" --out "$tmp/bench_ganinv.json" --precisions "$precs" "${quick[@]}" > "$out/bench.log" 2>&1
  rc1=$?
  PYTHONUNBUFFERED=1 python3 benchmarks/gpu/pytorch_baseline.py --out "$tmp/bench_torch.json" --precisions "$precs" \
    "${quick[@]}" >> "$out/bench.log" 2>&1
  rc2=$?
  if [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]; then
    python3 benchmarks/gpu/report.py "$tmp/bench_ganinv.json" "$tmp/bench_torch.json" --out "$out/bench_combined.json" \
      > "$out/bench_table.md" 2>&1
    add bench ok "$(( $(date +%s) - t0 )) s; table in bench_table.md"
  else
    add bench FAILED "bench_gpu rc=$rc1, pytorch_baseline rc=$rc2 (bench.log)"
  fi
fi

# The CUDA losses next to PyTorch (bench_losses_torch.py) on the same GPU, joined with the speed-up.
losses_bin="$root/$build/benchmarks/gpu/bench_losses_gpu"
[ -n "${GANINV_GPU_PREBUILT:-}" ] && losses_bin="$(cd "$GANINV_GPU_PREBUILT" && pwd)/bench_losses_gpu"
if { has bench || has bench_losses; } && [ -x "$losses_bin" ]; then
  t0=$(date +%s)
  quick=()
  [ -n "${GPU_CHECK_QUICK:-}" ] && quick=(--quick)
  PYTHONUNBUFFERED=1 python3 benchmarks/gpu/bench_losses_torch.py --device cuda --json "$out/bench_losses_torch.json" \
    "${quick[@]}" > "$out/bench_losses.log" 2>&1
  rc1=$?
  "$losses_bin" --data "$root/tests/data" --json "$out/bench_losses_gpu.json" --torch "$out/bench_losses_torch.json" \
    "${quick[@]}" >> "$out/bench_losses.log" 2>&1
  rc2=$?
  grep -A20 "^ganinv CUDA losses" "$out/bench_losses.log" | grep "^|" > "$out/bench_losses_table.md"
  if [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]; then
    add bench_losses ok "$(( $(date +%s) - t0 )) s; table in bench_losses_table.md"
  else
    add bench_losses FAILED "bench_losses_torch rc=$rc1, bench_losses_gpu rc=$rc2 (bench_losses.log)"
  fi
fi

# Inversion on the GPU (issue 5): scripts/gpu_invert.sh builds the tool and the inversion
# benchmarks, times the step against the official projector's step in PyTorch, runs the main job
# with --device cuda and --device cpu, and the quality table (GPU_INVERT_STEPS picks parts).
if has invert; then
  t0=$(date +%s)
  OUT="$out" bash scripts/gpu_invert.sh > "$out/gpu_invert_stdout.log" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then add invert ok "$(( $(date +%s) - t0 )) s; invert/gpu_invert.log"
  else add invert FAILED "rc=$rc (invert/gpu_invert.log)"; fi
fi

{
  echo
  [ -f "$out/bench_table.md" ] && cat "$out/bench_table.md"
  [ -f "$out/invert/invert_step_table.md" ] && { echo; cat "$out/invert/invert_step_table.md"; }
  [ -f "$out/bench_losses_table.md" ] && { echo; cat "$out/bench_losses_table.md"; }
  echo
  echo "| step | result | detail |"
  echo "|---|---|---|"
  for s in "${summary[@]}"; do echo "| ${s//|/ | } |"; done
} | tee -a "$log"
rm -rf "$tmp"
for s in "${summary[@]}"; do [[ "$s" == *"|FAILED"* || "$s" == *"|TIMEOUT"* ]] && exit 1; done
exit 0
