#!/usr/bin/env bash
# Issue 18 on a GPU machine: the dataset job (`ganinv invert --dir`, one process, --device cuda)
# in images per second at batch 1, 8 and 32, at 256^2 and 1024^2, on random-weight official
# generators (write_random_generator) and 32 reachable targets made by `ganinv generate` from seeds.
# Two rates per run: the job's wall clock (the whole command: model load, decoding, inversion,
# every output file and the summary: what a user waits for) and the inversion alone (the sum of
# the batches' inversion times from summary.json). Scaling efficiency = rate / (batch-1 rate).
# Usage: benchmarks/gpu/bench_dataset_gpu.sh BUILD_DIR OUT_DIR [STEPS] [PRECISION]
# Env: BENCH_DATASET_RES (default "256 1024"), BENCH_DATASET_BATCHES (default "1 8 32"),
#      BENCH_DATASET_DEVICE (default cuda; "cpu" for a smoke test of the script at a small
#      resolution, without --cuda-precision). A resolution run without batch 1 has no scaling column.
# Writes OUT_DIR/dataset_gpu.json (a list of rows) and OUT_DIR/dataset_gpu.md (the table).
set -euo pipefail
build=${1:?build directory with examples/ganinv and benchmarks/write_random_generator}
out=${2:?output directory}
steps=${3:-100}
precision=${4:-tf32}
tool="$build/examples/ganinv"
writer="$build/benchmarks/write_random_generator"
for f in "$tool" "$writer"; do [ -x "$f" ] || { echo "bench_dataset_gpu: $f is not built" >&2; exit 2; }; done
mkdir -p "$out"
rows="$out/dataset_gpu.rows"
: > "$rows"
device=${BENCH_DATASET_DEVICE:-cuda}
device_args=(--device "$device")
[ "$device" = cuda ] && device_args+=(--cuda-precision "$precision")
[ "$device" = cuda ] || precision=fp32
for res in ${BENCH_DATASET_RES:-256 1024}; do
  model="$out/random_$res.safetensors"
  "$writer" --res "$res" --seed 1 --out "$model" > /dev/null
  rm -rf "$out/targets_$res"
  mkdir -p "$out/targets_$res"
  "$tool" generate --model "$model" --seed 100 --count 32 --out "$out/targets_$res/t.png" > /dev/null
  for batch in ${BENCH_DATASET_BATCHES:-1 8 32}; do
    run="$out/run_${res}_b$batch"
    rm -rf "$run"
    t0=$(date +%s.%N)
    "$tool" invert --model "$model" --dir "$out/targets_$res" --out "$run" "${device_args[@]}" \
      --batch "$batch" --steps "$steps" > "$run.log" 2>&1 || { echo "bench_dataset_gpu: invert failed, see $run.log" >&2; tail -5 "$run.log" >&2; exit 1; }
    t1=$(date +%s.%N)
    python3 - "$run/summary.json" "$res" "$batch" "$steps" "$precision" "$t0" "$t1" >> "$rows" <<'PY'
import json, sys
summary, res, batch, steps, precision, t0, t1 = sys.argv[1:]
s = json.load(open(summary))
images = s["images"]
wall = float(t1) - float(t0)
# each image's "seconds" is its batch's inversion time divided by the batch size
inversion = sum(i["seconds"] for i in images)
psnr = sum(i["psnr"] for i in images) / len(images)
print(json.dumps({"resolution": int(res), "batch": int(batch), "steps": int(steps), "precision": precision,
                  "images": len(images), "job_seconds": round(wall, 3), "inversion_seconds": round(inversion, 3),
                  "job_images_per_second": round(len(images) / wall, 4),
                  "inversion_images_per_second": round(len(images) / inversion, 4), "mean_psnr": round(psnr, 3)}))
PY
    echo "[bench_dataset_gpu] $(tail -1 "$rows")"
  done
done
python3 - "$rows" "$out/dataset_gpu.json" "$out/dataset_gpu.md" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
base = {(r["resolution"]): r for r in rows if r["batch"] == 1}
for r in rows:
    b = base.get(r["resolution"])
    r["job_scaling_vs_batch1"] = round(r["job_images_per_second"] / b["job_images_per_second"], 3) if b else None
    r["inversion_scaling_vs_batch1"] = round(r["inversion_images_per_second"] / b["inversion_images_per_second"], 3) if b else None
json.dump(rows, open(sys.argv[2], "w"), indent=1)
lines = ["| resolution | batch | steps | precision | images | job s | job images/s | inversion images/s | x batch 1 (job / inversion) | mean PSNR |",
         "|---|---|---|---|---|---|---|---|---|---|"]
for r in rows:
    lines.append(f"| {r['resolution']} | {r['batch']} | {r['steps']} | {r['precision']} | {r['images']} | {r['job_seconds']:.1f} | "
                 f"{r['job_images_per_second']:.3f} | {r['inversion_images_per_second']:.3f} | "
                 + (f"{r['job_scaling_vs_batch1']:.2f} / {r['inversion_scaling_vs_batch1']:.2f}" if base.get(r["resolution"]) else "-")
                 + f" | {r['mean_psnr']:.2f} |")
open(sys.argv[3], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
