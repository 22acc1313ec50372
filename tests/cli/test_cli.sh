#!/usr/bin/env bash
# Behaviour of the ganinv tool: outputs exist, bad arguments give usage + status 2, bad input
# gives a message naming the file + status 1, and a batch with one unreadable image still
# inverts the others. Usage: test_cli.sh GANINV_BINARY MODEL DATA_DIR WORK_DIR
set -u
bin="$1"; model="$2"; data="$3"; work="$4"
rm -rf "$work"; mkdir -p "$work"
source "$(dirname "$0")/cli_check.sh"

check "overview without command" 2 "usage: ganinv COMMAND" -- "$bin"
check "help" 0 "invert" -- "$bin" --help
check "unknown command" 2 "unknown command 'frobnicate'" -- "$bin" frobnicate
check "generate --help" 0 "--truncation-psi" -- "$bin" generate --help
check "invert --help" 0 "--optimizer" -- "$bin" invert --help
check "generate needs a source" 2 "exactly one of --seed, --z, --ws" -- "$bin" generate --model "$model" --out "$work/x.png"
check "unknown option" 2 "unknown option --colour" -- "$bin" generate --model "$model" --seed 1 --colour red --out "$work/x.png"
check "bad number" 2 "expects a number" -- "$bin" generate --model "$model" --seed 1 --truncation-psi abc --out "$work/x.png"
check "missing model" 1 "nope.safetensors" -- "$bin" generate --model "$work/nope.safetensors" --seed 1 --out "$work/x.png"
check "corrupt model" 1 "truncated|runs past|not valid JSON" -- bash -c "head -c 100 '$model' > '$work/corrupt.safetensors' && '$bin' generate --model '$work/corrupt.safetensors' --seed 1 --out '$work/x.png'"
check "generate seeds" 0 "wrote" -- "$bin" generate --model "$model" --seed 3 --count 2 --out "$work/gen/s.png" --out-tensor "$work/gen/s.safetensors"
exists "$work/gen/s_seed0003.png"; exists "$work/gen/s_seed0004.png"; exists "$work/gen/s.safetensors"
check "generate with the official fixture generator (RGB, 3 images)" 0 "wrote" -- "$bin" generate --model "$data/stylegan2_tiny/generator.safetensors" --seed 0 --count 3 --noise-mode random --out "$work/gen/tiny.png"
exists "$work/gen/tiny_seed0002.png"
check "generate from ws file" 0 "wrote" -- "$bin" generate --model "$model" --ws "$work/gen/s.safetensors:ws" --out "$work/gen/from_ws.png" --grid
check "generate ws of wrong shape" 1 "ws tensor has shape" -- "$bin" generate --model "$model" --ws "$work/gen/s.safetensors:img" --out "$work/x.png"

imgs="$data/fmnist"
cp "$imgs/test_0000.png" "$work/a.png"; cp "$imgs/test_0001.png" "$work/b.png"
echo "not a png" > "$work/broken.png"
check "invert --cuda-precision needs --device cuda" 2 "applies to --device cuda only" -- \
  "$bin" invert --model "$model" --image "$work/a.png" --out "$work/inv" --cuda-precision bf16
check "invert --cuda-precision rejects unknown values" 2 "unknown CUDA precision 'fp8'" -- \
  "$bin" invert --model "$model" --image "$work/a.png" --out "$work/inv" --device cuda --cuda-precision fp8
# Without a GPU (CI), --device cuda must refuse clearly: status 1 "no usable CUDA device" in a
# CUDA build, status 2 "built without CUDA" otherwise. (The GPU path is tested by gpu_check.sh.)
if ! nvidia-smi -L > /dev/null 2>&1; then
  check "invert device cuda refuses without a GPU" 0 "no usable CUDA device|built without CUDA" -- bash -c \
    "'$bin' invert --model '$model' --image '$work/a.png' --out '$work/inv' --device cuda; s=\$?; [ \$s -eq 1 ] || [ \$s -eq 2 ]"
fi
check "invert with the LPIPS column (test weights, fixture trunk)" 0 "LPIPS" -- "$bin" invert --model "$model" --image "$work/a.png" --out "$work/inv_lpips" --steps 3 --lpips-weights "$data/lpips/lpips_vgg_weights.safetensors" --loss mse,lpips:0.5
grep -q '"lpips": ' "$work/inv_lpips/summary.json" && passed=$((passed + 1)) || { echo "FAIL: summary.json has no lpips"; failures=$((failures + 1)); }
# The identity term (face-recognition ResNet): refused without its weights before anything is written.
check "invert --loss identity needs its weights" 2 "needs --identity-weights" -- "$bin" invert --model "$model" --image "$work/a.png" --out "$work/inv_noid" --steps 2 --loss mse,identity:0.1
[ ! -e "$work/inv_noid" ] && passed=$((passed + 1)) || { echo "FAIL: a refused identity run left $work/inv_noid"; failures=$((failures + 1)); }
check "invert with the identity term" 0 "mean" -- "$bin" invert --model "$model" --image "$work/a.png" --out "$work/inv_id" --steps 2 --loss mse,identity:0.1 --identity-weights "$data/face_api/face_recognition.safetensors"
exists "$work/inv_id/a.safetensors"
check "invert unknown space" 2 "unknown space" -- "$bin" invert --model "$model" --image "$work/a.png" --out "$work/inv" --space q --steps 1
check "invert no-resize" 1 "28x28 but the generator makes 32x32" -- "$bin" invert --model "$model" --image "$work/a.png" --out "$work/inv" --no-resize --steps 1
mkdir -p "$work/empty"
check "invert empty dir" 1 "holds no image files" -- "$bin" invert --model "$model" --dir "$work/empty" --out "$work/inv"
check "invert with one unreadable image" 1 "broken.png.*|could not be read" -- "$bin" invert --model "$model" --image "$work/a.png" "$work/broken.png" "$work/b.png" --out "$work/inv" --steps 20 --report
exists "$work/inv/a.safetensors"; exists "$work/inv/b_compare.png"; exists "$work/inv/b_loss.png"; exists "$work/inv/a_recon.png"
exists "$work/inv/summary.json"; exists "$work/inv/report.html"
check "invert resize warning" 0 "resized 28x28 to 32x32" -- "$bin" invert --model "$model" --image "$work/a.png" --out "$work/inv2" --steps 5 --space w --optimizer lbfgs
check "invert cmaes" 0 "mean" -- "$bin" invert --model "$model" --image "$work/a.png" --out "$work/inv3" --steps 3 --space w --optimizer cmaes
check "invert from saved code" 0 "mean" -- "$bin" invert --model "$model" --image "$work/a.png" --out "$work/inv4" --steps 3 --init "$work/inv/a.safetensors"

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
