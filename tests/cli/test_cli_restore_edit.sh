#!/usr/bin/env bash
# Behaviour of `ganinv restore`, `ganinv edit` and the network scores of `ganinv metrics`: outputs
# exist and hold what they promise, bad input fails with a message naming the problem (usage
# errors: status 2, bad files: status 1). Runs are a few steps long: this checks the plumbing; the
# restoration quality is measured in docs/restoration.md.
# Usage: test_cli_restore_edit.sh GANINV_BINARY MODEL DATA_DIR WORK_DIR
set -u
bin="$1"; model="$2"; data="$3"; work="$4"
rm -rf "$work"; mkdir -p "$work"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
source "$(dirname "$0")/cli_check.sh"
contains() {  # contains FILE PATTERN
  if grep -qE -- "$2" "$1" 2>/dev/null; then passed=$((passed + 1)); else echo "FAIL: $1 lacks '$2'"; failures=$((failures + 1)); fi
}
lacks() {  # lacks FILE PATTERN
  if ! grep -qE -- "$2" "$1" 2>/dev/null; then passed=$((passed + 1)); else echo "FAIL: $1 contains '$2'"; failures=$((failures + 1)); fi
}

tiny="$data/stylegan2_tiny/generator.safetensors"
a="$data/fmnist/test_0000.png"; b="$data/fmnist/test_0001.png"

# ---------------------------------------------------------------- restore
check "restore --help" 0 "--task" -- "$bin" restore --help
check "restore unknown task" 2 "unknown --task 'deblur'" -- "$bin" restore --task deblur --model "$model" --image "$a" --out "$work/r"
check "restore --init encoder: is refused as a usage error" 2 "--init encoder:E is an option of invert" -- "$bin" restore --task superres --model "$model" --image "$a" --init encoder:e.safetensors --out "$work/r"
check "restore factor not dividing" 2 "--factor 3 does not divide the generator's resolution 32" -- "$bin" restore --task superres --factor 3 --model "$model" --image "$a" --out "$work/r"
check "restore factor too large" 2 "--factor 64 does not divide" -- "$bin" restore --task superres --factor 64 --model "$model" --image "$a" --out "$work/r"
check "restore factor for inpaint" 2 "--factor is an option of --task superres" -- "$bin" restore --task inpaint --factor 2 --model "$model" --image "$a" --out "$work/r"
check "restore colorize gray generator" 2 "colorize needs an RGB generator.*1-channel" -- "$bin" restore --task colorize --model "$model" --image "$a" --out "$work/r"
check "restore mask of wrong size" 1 "is 28x28 but the generator makes 32x32" -- "$bin" restore --task inpaint --mask "$a" --model "$model" --image "$a" --out "$work/r" --steps 1
check "restore hole fraction" 2 "fraction must be in \(0, 1\)" -- "$bin" restore --task inpaint --hole center:1.5 --model "$model" --image "$a" --out "$work/r"
check "restore hole kind" 2 "--hole must be center:FRACTION or random:FRACTION" -- "$bin" restore --task inpaint --hole ring:0.2 --model "$model" --image "$a" --out "$work/r"
check "restore mask and hole" 2 "either --mask FILE or --hole" -- "$bin" restore --task inpaint --hole center:0.2 --mask "$a" --model "$model" --image "$a" --out "$work/r"
check "restore gradient-free optimizer" 2 "unknown optimizer 'cmaes' for restore" -- "$bin" restore --task inpaint --optimizer cmaes --model "$model" --image "$a" --out "$work/r"

check "restore inpaint" 0 "hole PSNR.*mean-fill" -- "$bin" restore --task inpaint --hole center:0.25 --model "$model" --image "$a" "$b" --out "$work/inp" --steps 5
for f in test_0000.safetensors test_0000_input.png test_0000_result.png test_0000_compare.png test_0001_compare.png overview.png summary.md; do exists "$work/inp/$f"; done
contains "$work/inp/summary.json" '"hole_psnr_mean_fill"'
contains "$work/inp/summary.json" '"task": ?"inpaint"'
check "restore inpaint random holes" 0 "mean" -- "$bin" restore --task inpaint --hole random:0.3 --model "$model" --image "$a" "$b" --out "$work/inp_rand" --steps 3 --seed 4
# A 32x32 picture as a user mask: its bright pixels are the hole.
check "generate a mask picture" 0 "wrote" -- "$bin" generate --model "$model" --seed 3 --out "$work/mask.png"
check "restore inpaint user mask" 0 "hole PSNR" -- "$bin" restore --task inpaint --mask "$work/mask.png" --model "$model" --image "$a" --out "$work/inp_mask" --steps 3

check "restore superres" 0 "bicubic" -- "$bin" restore --task superres --model "$model" --image "$a" "$b" --out "$work/sr" --steps 5 --space wplus
exists "$work/sr/test_0000_compare.png"; contains "$work/sr/summary.json" '"psnr_bicubic"'
check "restore superres observed wrong size" 1 "low-res input must be 8x8" -- "$bin" restore --task superres --observed --model "$model" --image "$a" --out "$work/sr2" --steps 1
check "restore superres observed" 0 "fit PSNR" -- "$bin" restore --task superres --observed --model "$model" --image "$work/sr/test_0000_input.png" --out "$work/sr3" --steps 3 --optimizer lbfgs
lacks "$work/sr3/summary.json" '"psnr_bicubic"'

check "restore colorize" 0 "chroma" -- "$bin" restore --task colorize --model "$tiny" --image "$a" --out "$work/col" --steps 3
contains "$work/col/summary.json" '"chroma_psnr_gray"'

# ---------------------------------------------------------------- edit
check "edit --help" 0 "--stylespace" -- "$bin" edit --help
check "edit needs a code" 2 "exactly one of --code" -- "$bin" edit --model "$model" --out "$work/e" --direction sefa:0
check "edit nothing to do" 2 "nothing to do" -- "$bin" edit --model "$model" --seed 1 --out "$work/e"
check "edit code without ws" 1 "has no tensor 'ws'" -- "$bin" edit --model "$model" --code "$data/edit/sefa_fmnist32.safetensors" --out "$work/e" --direction sefa:0
check "edit layers out of range" 2 "outside \[0, 8\)" -- "$bin" edit --model "$model" --seed 1 --out "$work/e" --direction sefa:0 --layers 3:20
check "edit bad alphas" 2 "--alphas expects a comma list" -- "$bin" edit --model "$model" --seed 1 --out "$work/e" --direction sefa:0 --alphas 1,x
check "edit unknown style layer" 2 "unknown style layer 'b99.conv0'" -- "$bin" edit --model "$model" --seed 1 --out "$work/e" --stylespace b99.conv0:1
check "tiny directions" 0 "wrote" -- "$bin" directions --model "$tiny" --method sefa --count 3 --samples 200 --out "$work/tiny_dirs.safetensors"
check "edit direction of wrong dimension" 2 "dimension 64 but this generator's w_dim is 128" -- "$bin" edit --model "$model" --seed 1 --out "$work/e" --direction "$work/tiny_dirs.safetensors"
check "edit direction index" 2 "index 5 outside the file's 3 directions" -- "$bin" edit --model "$tiny" --seed 1 --out "$work/e" --direction "$work/tiny_dirs.safetensors:5"

check "edit seed: sefa, stylespace, mixing, report" 0 "report.html" -- "$bin" edit --model "$model" --seed 3 --out "$work/e1" --direction sefa:0-1 --stylespace b8.conv1:3 --mix seed:5 --mix-layers 4: --samples 300 --report
for f in edits.png edits.safetensors base.png mix.png mix.safetensors report.html; do exists "$work/e1/$f"; done
contains "$work/e1/report.html" 'src="data:image/png;base64,'
contains "$work/e1/report.html" 'sefa:1'
lacks "$work/e1/report.html" 'https?://|<script|<link'
check "edit an inverted code with a target" 0 "report.html" -- "$bin" edit --model "$model" --code "$work/inp/test_0000.safetensors" --out "$work/e2" --direction ganspace:0 --alphas -2,0,2 --samples 300 --report --target "$a"
contains "$work/e2/report.html" 'reconstruction vs target'
check "edit with a directions file (RGB generator)" 0 "edits.png" -- "$bin" edit --model "$tiny" --seed 2 --out "$work/e3" --direction "$work/tiny_dirs.safetensors:0-2" --layers 0:4
exists "$work/e3/edits.png"

# ---------------------------------------------------------------- metrics with networks
check "metrics lpips of identical images is 0" 0 "LPIPS 0\.000000" -- "$bin" metrics "$a" "$a" --lpips "$data/lpips/lpips_vgg_weights.safetensors"
check "metrics lpips and identity" 0 "identity cosine" -- "$bin" metrics "$a" "$b" --lpips "$data/lpips/lpips_vgg_weights.safetensors" --face-weights "$data/face_api/face_recognition.safetensors"
check "metrics json with network scores" 0 '"lpips": [0-9.e+-]+, "identity_cosine": [0-9.e+-]+, "identity_distance": [0-9.e+-]+' -- "$bin" metrics "$a" "$b" --json --lpips "$data/lpips/lpips_vgg_weights.safetensors" --face-weights "$data/face_api/face_recognition.safetensors"
check "metrics identity of identical images" 0 "identity cosine 1\.0000" -- "$bin" metrics "$a" "$a" --face-weights "$data/face_api/face_recognition.safetensors"
check "metrics vgg without lpips" 2 "--vgg-weights is the trunk of --lpips" -- "$bin" metrics "$a" "$b" --vgg-weights "$a"
check "metrics lpips file without trunk" 2 "give the VGG16 trunk with --vgg-weights" -- "$bin" metrics "$a" "$b" --lpips "$data/face_api/face_recognition.safetensors"

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
