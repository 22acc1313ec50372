#!/usr/bin/env bash
# Session 26 call G (to run from the repository root; carry .prebuilt/g and .official): the numbers
# issue 14 asks for, on the H200 it names, in one lease: the step table (batch 1, 1024^2 and 256^2,
# TF32 and BF16) next to the official project() timed by official_projector_timing.py in the same
# call, batch 8 at 1024^2, a 1000-step 1024^2 inversion from process start to written outputs, and
# the README's main job with --device cuda and --device cpu on this machine (mean PSNR within 0.3 dB).
# Binaries: .prebuilt/g (scripts/gpu_prebuild.sh's build of HEAD; see its MANIFEST).
set -uo pipefail
O=$OUT; t0=$(date +%s)
say() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a $O/summary.txt; }
need() { [ $(( $(date +%s) - t0 + $1 )) -lt ${DEADLINE:-585} ] || { say "skipped (no time left): $2"; return 1; }; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv,noheader | tee -a $O/summary.txt
mkdir -p /tmp/bin && for f in .prebuilt/g/*.xz; do xz -dc $f > /tmp/bin/$(basename $f .xz); chmod +x /tmp/bin/$(basename $f .xz); done
cat .prebuilt/g/MANIFEST >> $O/summary.txt 2>/dev/null
B=/tmp/bin/bench_device_step_gpu G=/tmp/bin/ganinv W=/tmp/bin/write_random_generator
od=$PWD/.official; export LD_LIBRARY_PATH=$PWD/.prebuilt/g/lib:${LD_LIBRARY_PATH:-}
[ -z "${SKIP_BENCH:-}" ] && need 80 step_b1 && { timeout 80 $B --res 1024,256 --precisions tf32,bf16 --batches 1 --json $O/step_b1.json > $O/step.txt 2>&1
  say "bench b1 1024,256 tf32,bf16 rc=$?"; grep -E "^\|" $O/step.txt >> $O/summary.txt; rm -f $O/step.txt; }
for r in ${SKIP_BENCH:+none} 1024 256; do [ "$r" = none ] && break
  need 80 official_$r || continue
  ( cd $O && PYTHONPATH=$od/stylegan2-ada-pytorch timeout 75 python3 $od/official_projector_timing.py \
      --res $r --short 10 --long 60 > $O/official_$r.json 2> $O/official.err )
  say "official project() $r rc=$? $(tail -1 $O/official_$r.json)"; tail -3 $O/official.err >> $O/summary.txt; rm -f $O/official.err $O/*.pkl
done
[ -z "${SKIP_BENCH:-}" ] && need 75 step_b8 && { timeout 75 $B --res 1024 --precisions tf32 --batches 8 --json $O/step_b8.json > $O/step.txt 2>&1
  say "bench b8 1024 tf32 rc=$?"; grep -E "^\|" $O/step.txt >> $O/summary.txt; rm -f $O/step.txt; }
if need 60 i1000; then
  $W --res 1024 --seed 1 --out /tmp/r1024.safetensors > /dev/null
  $G generate --model /tmp/r1024.safetensors --seed 100 --count 1 --out /tmp/t.png > /dev/null
  python3 -c "
import torch, torchvision
torch.manual_seed(0)
torch.save(torchvision.models.vgg16(weights=None).state_dict(), '/tmp/vgg16.pth')" && python3 tools/convert_torchvision_vgg16.py /tmp/vgg16.pth /tmp/vgg16.safetensors > /dev/null
  T=$(ls /tmp/t*.png | head -1)
  for p in tf32 bf16; do
    need 45 i1000_$p || break
    rm -rf /tmp/o1000; ts=$(date +%s%N)
    timeout 40 $G invert --model /tmp/r1024.safetensors --image $T --out /tmp/o1000 --steps 1000 --device cuda --space w --optimize-noise --loss vgg --vgg-weights /tmp/vgg16.safetensors --cuda-precision $p > $O/i1000_$p.log 2>&1
    rc=$?; say "1000-step 1024^2 official $p rc=$rc: process start to outputs $(( ($(date +%s%N) - ts) / 1000000 )) ms; $(ls /tmp/o1000 | tr '\n' ' ')"
    grep -E "time|mean|psnr|ms/step|step" $O/i1000_$p.log | tail -4 >> $O/summary.txt
  done
fi
for dev in cuda cpu; do
  need 70 job_$dev || break
  ts=$(date +%s%N)
  timeout 65 $G invert --model models/fmnist32.safetensors --dir examples/images --space wplus --optimizer adam \
      --steps 500 --device $dev --out /tmp/job_$dev > $O/job_$dev.log 2>&1
  say "README main job --device $dev rc=$? $(( ($(date +%s%N) - ts) / 1000000 )) ms; $(grep '^mean' $O/job_$dev.log)"
done
say done
( cd $O && ls | grep -v -e summary.txt | grep -q . && tar czf results.tgz $(ls | grep -v -e summary.txt -e results.tgz) && ls | grep -v -e summary.txt -e results.tgz | xargs rm -rf ) || true
