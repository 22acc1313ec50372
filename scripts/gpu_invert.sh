#!/usr/bin/env bash
# GPU inversion check (issue 5), run by scripts/gpu_check.sh's "invert" step or on its own on a
# machine with an NVIDIA GPU:
#   1. builds the ganinv tool (with --device cuda), bench_invert_step_gpu and invert_table_gpu;
#   2. the inversion step benchmark next to the official projector's step in PyTorch
#      (benchmarks/gpu/projector_step_torch.py) on the same GPU, joined with the speed-up;
#   3. the README's main job with --device cuda and with --device cpu on the same machine: both
#      must reach the same quality (mean PSNR within 0.5 dB; float rounding differs);
#   4. the inversion quality table on Fashion-MNIST test images 0-63 on the GPU: the rows in
#      GPU_INVERT_TABLE_ROWS (default "all"), and a weakly regularised noise run.
# Outputs (logs, JSON, tables) go to $OUT/invert (or ./gpu_check_out/invert).
# Env: GPU_CHECK_QUICK=1 (short), GPU_INVERT_STEPS=a,b (which of: build,step,job,table; default all)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out="${OUT:-$root/gpu_check_out}/invert"
mkdir -p "$out"
steps="${GPU_INVERT_STEPS:-build,step,job,table}"
has() { [[ ",$steps," == *",$1,"* ]]; }
say() { echo "[gpu_invert] $*" | tee -a "$out/gpu_invert.log"; }
status=0
build=build-gpu-inv
export PATH="$PATH:/usr/local/cuda/bin"
quick=()
[ -n "${GPU_CHECK_QUICK:-}" ] && quick=(--quick)

if has build; then
  t0=$(date +%s)
  source scripts/gpu_cmake_deps.sh
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DGANINV_BUILD_TESTS=OFF \
    -DGANINV_BUILD_EXAMPLES=ON -DGANINV_BUILD_BENCHMARKS=ON "${deps[@]}" > "$out/build.log" 2>&1 &&
  cmake --build "$build" --target ganinv_cli bench_invert_step_gpu invert_table_gpu -j"$(nproc)" >> "$out/build.log" 2>&1
  rc=$?
  say "build rc=$rc in $(( $(date +%s) - t0 )) s"
  [ $rc -ne 0 ] && { grep -E "error" "$out/build.log" | head -20; exit 1; }
fi
cli="$root/$build/examples/ganinv"
step_bin="$root/$build/benchmarks/gpu/bench_invert_step_gpu"
table_bin="$root/$build/benchmarks/gpu/invert_table_gpu"

if has step; then
  "$step_bin" "${quick[@]}" --json "$out/invert_step_gpu.json" > "$out/step.log" 2>&1; rc1=$?
  PYTHONUNBUFFERED=1 python3 benchmarks/gpu/projector_step_torch.py "${quick[@]}" --out "$out/projector_step_torch.json" \
    >> "$out/step.log" 2>&1; rc2=$?
  if [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]; then
    python3 benchmarks/gpu/join_invert_step.py "$out/invert_step_gpu.json" "$out/projector_step_torch.json" \
      --out "$out/invert_step_joined.json" > "$out/invert_step_table.md"
    say "inversion step, ganinv CUDA vs the official projector step in PyTorch:"
    tee -a "$out/gpu_invert.log" < "$out/invert_step_table.md"
  else
    say "step benchmark FAILED (bench rc=$rc1, torch rc=$rc2; step.log)"; tail -5 "$out/step.log"; status=1
  fi
fi

if has job; then
  for dev in cuda cpu; do
    t0=$(date +%s)
    "$cli" invert --model models/fmnist32.safetensors --dir examples/images --space wplus --optimizer adam \
      --steps 500 --device "$dev" --out "$out/job_$dev" > "$out/job_$dev.log" 2>&1
    rc=$?
    say "ganinv invert --device $dev: rc=$rc, $(( $(date +%s) - t0 )) s wall; $(grep '^mean' "$out/job_$dev.log")"
    [ $rc -ne 0 ] && { tail -5 "$out/job_$dev.log"; status=1; }
  done
  python3 - "$out/job_cuda/summary.json" "$out/job_cpu/summary.json" <<'PY' | tee -a "$out/gpu_invert.log" || status=1
import json, sys
def mean_psnr(p):
    d = json.load(open(p))
    v = [r["psnr"] for r in d["images"]]
    return sum(v) / len(v)
g, c = mean_psnr(sys.argv[1]), mean_psnr(sys.argv[2])
print(f"[gpu_invert] main job mean PSNR: cuda {g:.3f} dB, cpu {c:.3f} dB, difference {g - c:+.3f} dB")
sys.exit(0 if abs(g - c) <= 0.5 else 1)
PY
fi

if has table; then
  rows="${GPU_INVERT_TABLE_ROWS:-all}"
  images=64
  [ -n "${GPU_CHECK_QUICK:-}" ] && images=8
  t0=$(date +%s)
  "$table_bin" --images "$images" --steps 500 --rows "$rows" --json "$out/invert_table_gpu.json" \
    --data "$root/tests/data" > "$out/table.md" 2> "$out/table.log"
  rc1=$?
  # Weakly regularised noise (1e1 instead of 1e5): the noise maps absorb the image.
  "$table_bin" --images "$images" --steps 500 --rows "w:adam+noise,wplus:adam+noise" --noise-reg 10 \
    --json "$out/invert_table_gpu_weak_noise.json" --data "$root/tests/data" > "$out/table_weak_noise.md" 2>> "$out/table.log"
  rc2=$?
  say "inversion table (images 0-$((images - 1)), rc=$rc1/$rc2, $(( $(date +%s) - t0 )) s):"
  cat "$out/table.md" "$out/table_weak_noise.md" | tee -a "$out/gpu_invert.log"
  [ $rc1 -ne 0 ] || [ $rc2 -ne 0 ] && { tail -5 "$out/table.log"; status=1; }
fi
exit $status
