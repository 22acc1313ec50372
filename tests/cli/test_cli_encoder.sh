#!/usr/bin/env bash
# Behaviour of the encoder commands (issue 16): train-encoder writes a resumable encoder file with
# a progress line, encode writes the files invert writes, invert --init encoder:E starts from the
# encoder's codes, an iterative (ReStyle) encoder trains, encodes and starts invert after its
# refinement iterations, and an encoder made for another generator (or a file that is no encoder) is
# refused with the mismatch named before any output exists. Runs are a few steps: this checks the
# plumbing; quality is measured in docs/encoders.md.
# Usage: test_cli_encoder.sh GANINV_BINARY MODEL DATA_DIR WORK_DIR
set -u
bin="$1"; model="$2"; data="$3"; work="$4"
rm -rf "$work"; mkdir -p "$work"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
source "$(dirname "$0")/cli_check.sh"
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
absent() { [ ! -e "$1" ] && ok || fail "$1 exists"; }

tiny="$data/stylegan2_tiny/generator.safetensors"
a="$data/fmnist/test_0000.png"; b="$data/fmnist/test_0001.png"
enc="$work/e.safetensors"

# ---------------------------------------------------------------- training, resuming
check "train-encoder" 0 "wrote .*e.safetensors \(step 4;" -- "$bin" train-encoder --model "$model" --out "$enc" --steps 4 --batch 2 --seed 3
exists "$enc"
exists "$work/e_loss.png"  # the loss curve, beside --out by default
check "train-encoder progress line" 0 "step 4/4  loss [0-9.]+ \(code [0-9.]+, pixel [0-9.]+\)" -- "$bin" train-encoder --model "$model" --out "$work/e2.safetensors" --steps 4 --batch 2 --seed 3
# Same seed, same file: training is reproducible.
cmp -s "$enc" "$work/e2.safetensors" && ok || fail "two runs with one seed wrote different encoders"
check "train-encoder --resume" 0 "step 6/6" -- "$bin" train-encoder --model "$model" --out "$work/e3.safetensors" --resume "$enc" --steps 2
check "train-encoder with real images" 0 "real images: 64 from" -- "$bin" train-encoder --model "$model" --out "$work/e4.safetensors" --steps 1 --batch 2 --real-dir "$data/fmnist" --ratio 0.5

# ---------------------------------------------------------------- real images from an IDX file, --export
# A 3-image IDX images file (written by python3): the images are read, resized as --real-dir's.
python3 - "$work/three-idx3-ubyte" "$work/labels-idx1-ubyte" <<'PY'
import struct, sys
open(sys.argv[1], "wb").write(struct.pack(">4B3I", 0, 0, 8, 3, 3, 28, 28) + bytes((i * 7 + j) % 256 for i in range(3) for j in range(784)))
open(sys.argv[2], "wb").write(struct.pack(">4BI", 0, 0, 8, 1, 3) + bytes([1, 2, 3]))
PY
check "train-encoder --real-idx" 0 "real images: 3 from .*three-idx3-ubyte" -- "$bin" train-encoder --model "$model" --out "$work/x0.safetensors" --steps 1 --batch 2 --real-idx "$work/three-idx3-ubyte"
check "--real-idx resizes with one warning" 0 "warning: 3 real images of 28x28 resized to 32x32" -- "$bin" train-encoder --model "$model" --out "$work/x0.safetensors" --steps 1 --batch 2 --real-idx "$work/three-idx3-ubyte"
check "--real-count" 0 "real images: 2 from" -- "$bin" train-encoder --model "$model" --out "$work/x0.safetensors" --steps 1 --batch 2 --real-idx "$work/three-idx3-ubyte" --real-count 2
# The same pictures from an IDX file and from PNG files give the same training, bit for bit: the
# bundled test images are Fashion-MNIST's t10k images 0-63 (tests/data/fmnist/README.md).
t10k=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
if [ -f "$t10k" ]; then
  gunzip -c "$t10k" > "$work/t10k-images-idx3-ubyte"
  "$bin" train-encoder --model "$model" --out "$work/x1.safetensors" --steps 2 --batch 4 --seed 5 --real-idx "$work/t10k-images-idx3-ubyte" --real-count 64 >/dev/null 2>&1
  "$bin" train-encoder --model "$model" --out "$work/x2.safetensors" --steps 2 --batch 4 --seed 5 --real-dir "$data/fmnist" >/dev/null 2>&1
  exists "$work/x1.safetensors"
  cmp -s "$work/x1.safetensors" "$work/x2.safetensors" && ok || fail "--real-idx (t10k 0-63) and --real-dir (the same images as PNGs) trained different encoders"
  check "a gzip-compressed IDX file" 1 "is gzip-compressed; decompress it first" -- "$bin" train-encoder --model "$model" --out "$work/no12.safetensors" --real-idx "$t10k"
else
  echo "note: $t10k is missing (Debian's dataset-fashion-mnist, installed by scripts/install_deps.sh test): --real-idx vs --real-dir on the same images not compared"
  gzip -c "$work/three-idx3-ubyte" > "$work/three.gz"
  check "a gzip-compressed IDX file" 1 "is gzip-compressed; decompress it first" -- "$bin" train-encoder --model "$model" --out "$work/no12.safetensors" --real-idx "$work/three.gz"
fi
check "--real-count beyond the file" 2 "--real-count 4: '.*three-idx3-ubyte' holds 3 images" -- "$bin" train-encoder --model "$model" --out "$work/no13.safetensors" --real-idx "$work/three-idx3-ubyte" --real-count 4
check "--real-count 0" 2 "--real-count must be >= 1, got 0" -- "$bin" train-encoder --model "$model" --out "$work/no13.safetensors" --real-idx "$work/three-idx3-ubyte" --real-count 0
check "--real-count without --real-idx" 2 "--real-count needs --real-idx" -- "$bin" train-encoder --model "$model" --out "$work/no13.safetensors" --real-count 2
check "--real-dir and --real-idx" 2 "--real-dir or --real-idx, not both" -- "$bin" train-encoder --model "$model" --out "$work/no13.safetensors" --real-idx "$work/three-idx3-ubyte" --real-dir "$data/fmnist"
check "a labels file as --real-idx" 1 "is not an unsigned-byte image file" -- "$bin" train-encoder --model "$model" --out "$work/no13.safetensors" --real-idx "$work/labels-idx1-ubyte"
check "a missing --real-idx" 1 "does not exist" -- "$bin" train-encoder --model "$model" --out "$work/no13.safetensors" --real-idx "$work/none-idx3-ubyte"
# --export writes the encoder alone; --steps 0 with --resume only rewrites (here: exports) a checkpoint.
check "--steps 0 --export" 0 "wrote .*e5_only.safetensors \(the encoder alone" -- "$bin" train-encoder --model "$model" --out "$work/e5.safetensors" --resume "$enc" --steps 0 --export "$work/e5_only.safetensors"
cmp -s "$enc" "$work/e5.safetensors" && ok || fail "--steps 0 changed the checkpoint"
[ "$(stat -c %s "$work/e5_only.safetensors")" -lt "$(stat -c %s "$enc")" ] && ok || fail "the exported encoder is not smaller than its checkpoint"
"$bin" encode --model "$model" --encoder "$enc" --image "$a" --out "$work/enc_ck" >/dev/null 2>&1
"$bin" encode --model "$model" --encoder "$work/e5_only.safetensors" --image "$a" --out "$work/enc_ex" >/dev/null 2>&1
exists "$work/enc_ex/test_0000.safetensors"
cmp -s "$work/enc_ck/test_0000.safetensors" "$work/enc_ex/test_0000.safetensors" && ok || fail "the exported encoder encodes differently from its checkpoint"
# A wider, deeper network than the preset: --width K scales every width, --blocks-per-stage N.
params_of() { grep -oE "encoder: [0-9]+ parameters" <<<"$1" | grep -oE '[0-9]+'; }
base_out=$("$bin" train-encoder --model "$model" --out "$work/w1.safetensors" --steps 1 --batch 2 2>&1)
wide_out=$("$bin" train-encoder --model "$model" --out "$work/w2.safetensors" --steps 1 --batch 2 --width 2 --blocks-per-stage 2 2>&1)
check "--width 2 --blocks-per-stage 2: a larger encoder" 0 "^ok$" -- awk -v a="$(params_of "$base_out")" -v b="$(params_of "$wide_out")" \
  'BEGIN { print (a > 0 && b > 3 * a ? "ok" : "parameters " a " -> " b) }'
check "encode with the wider encoder" 0 "mean" -- "$bin" encode --model "$model" --encoder "$work/w2.safetensors" --image "$a" --out "$work/enc_w2"
check "--width 0" 2 "--width must be in \[1, 16\], got 0" -- "$bin" train-encoder --model "$model" --out "$work/no_w.safetensors" --width 0
check "--blocks-per-stage 9" 2 "--blocks-per-stage must be in \[1, 8\], got 9" -- "$bin" train-encoder --model "$model" --out "$work/no_w.safetensors" --blocks-per-stage 9
check "--width with --resume" 2 "a resumed run keeps its checkpoint's network" -- "$bin" train-encoder --model "$model" --out "$work/no_w.safetensors" --resume "$enc" --width 2
absent "$work/no_w.safetensors"
check "--steps 0 without --resume" 2 "--steps must be >= 1, got 0" -- "$bin" train-encoder --model "$model" --out "$work/no14.safetensors" --steps 0
check "--export not safetensors" 2 "--export must name a .safetensors file" -- "$bin" train-encoder --model "$model" --out "$work/no14.safetensors" --export "$work/no15.png"
check "--export onto --out" 2 "--export must differ from --out" -- "$bin" train-encoder --model "$model" --out "$work/no14.safetensors" --export "$work/no14.safetensors"

# ---------------------------------------------------------------- e4e: one w + progressive per-layer offsets
e4e="$work/e4e.safetensors"
check "train-encoder --e4e" 0 "e4e \(one w \+ 7 per-layer offsets; offset weight 0.001, one more offset every 2 steps\)" -- \
  "$bin" train-encoder --model "$model" --out "$e4e" --steps 5 --batch 2 --seed 3 --e4e --offset-weight 1e-3 --progressive-every 2
check "the progress line shows the schedule" 0 "step 5/5 .* offsets 2/7 \(norm [0-9.]+\)" -- \
  "$bin" train-encoder --model "$model" --out "$work/e4e_b.safetensors" --steps 5 --batch 2 --seed 3 --e4e --offset-weight 1e-3 --progressive-every 2
check "resume an e4e checkpoint" 0 "step 7/7 .* offsets 3/7" -- "$bin" train-encoder --model "$model" --out "$work/e4e_c.safetensors" --resume "$e4e" --steps 2
check "encode with an e4e encoder" 0 "mean" -- "$bin" encode --model "$model" --encoder "$e4e" --image "$a" --out "$work/enc_e4e"
exists "$work/enc_e4e/test_0000.safetensors"
check "invert --init encoder: with an e4e encoder" 0 "mean" -- "$bin" invert --model "$model" --image "$a" --out "$work/hyb_e4e" --init "encoder:$e4e" --steps 2
check "--offset-weight without --e4e" 2 "--offset-weight and --progressive-every need --e4e" -- "$bin" train-encoder --model "$model" --out "$work/no16.safetensors" --offset-weight 0.1
check "--e4e on a pSp checkpoint" 2 "is a pSp encoder; a resumed run keeps its architecture" -- "$bin" train-encoder --model "$model" --out "$work/no16.safetensors" --resume "$enc" --e4e
check "--progressive-every on a pSp checkpoint" 2 "is not an e4e encoder" -- "$bin" train-encoder --model "$model" --out "$work/no16.safetensors" --resume "$enc" --progressive-every 3
check "a negative --progressive-every" 2 "must be >= 0" -- "$bin" train-encoder --model "$model" --out "$work/no16.safetensors" --e4e --progressive-every -1

# ---------------------------------------------------------------- --loss: the reconstruction term
check "train-encoder --loss l1" 0 "step 2/2  loss [0-9.]+ \(code [0-9.]+, l1 [0-9.]+\)" -- "$bin" train-encoder --model "$model" --out "$work/l1.safetensors" --steps 2 --batch 2 --loss l1
check "resume an L1 checkpoint without --loss" 1 "was trained with the image loss 'l1' but this run has the pixel MSE" -- \
  "$bin" train-encoder --model "$model" --out "$work/no17.safetensors" --resume "$work/l1.safetensors" --steps 1
check "resume an L1 checkpoint with --loss l1:1" 0 "step 3/3 .* l1 " -- "$bin" train-encoder --model "$model" --out "$work/l1b.safetensors" --resume "$work/l1.safetensors" --steps 1 --loss l1:1
check "--loss lpips without weights" 2 "--loss lpips needs --lpips-weights" -- "$bin" train-encoder --model "$model" --out "$work/no17.safetensors" --loss lpips
check "--loss with an unknown term" 2 "--loss: unknown term 'ssim'" -- "$bin" train-encoder --model "$model" --out "$work/no17.safetensors" --loss mse,ssim

# ---------------------------------------------------------------- the latent discriminator
check "train-encoder --latent-adversarial" 0 "step 3/3 .* adversarial [0-9.]+ \(D [0-9.]+\)" -- \
  "$bin" train-encoder --model "$model" --out "$work/adv.safetensors" --steps 3 --batch 2 --latent-adversarial 0.1 --discriminator-lr 1e-4
check "resume keeps the discriminator" 0 "step 4/4 .* adversarial" -- "$bin" train-encoder --model "$model" --out "$work/adv2.safetensors" --resume "$work/adv.safetensors" --steps 1
check "train-encoder --image-adversarial" 0 "step 2/2 .* image adversarial [0-9.]+ \(D [0-9.]+\)" -- \
  "$bin" train-encoder --model "$model" --out "$work/iadv.safetensors" --steps 2 --batch 2 --image-adversarial 0.05
check "--image-adversarial without the pixel term" 2 "needs the reconstruction term" -- "$bin" train-encoder --model "$model" --out "$work/no18.safetensors" --image-adversarial 0.05 --pixel-weight 0
check "--discriminator-lr alone" 2 "--discriminator-lr needs --latent-adversarial W or --image-adversarial W" -- "$bin" train-encoder --model "$model" --out "$work/no18.safetensors" --discriminator-lr 1e-4
check "a negative --latent-adversarial" 2 "latent adversarial weight must be >= 0" -- "$bin" train-encoder --model "$model" --out "$work/no18.safetensors" --latent-adversarial -1

# ---------------------------------------------------------------- the shipped encoder
# models/fmnist32_encoder.safetensors (docs/encoders.md: 25.37 dB on Fashion-MNIST test images 0-63
# when it was trained on the GPU, the same on the CPU): it still loads, fits the demo model and
# encodes above the issue's one-pass bar of 24 dB (the encoder it replaced gave 21.42).
shipped="$(dirname "$model")/fmnist32_encoder.safetensors"
check "the shipped encoder on test images 0-63" 0 "mean PSNR per refinement iteration \(dB\): (2[4-9]\.)" -- \
  "$bin" encode --model "$model" --encoder "$shipped" --dir "$data/fmnist" --out "$work/shipped"
# models/fmnist32_restyle_encoder.safetensors: ReStyle trained bootstrapped from the shipped
# encoder; 5 refinement passes from its codes reach the issue's ReStyle bar of 26 dB.
check "the shipped ReStyle encoder, 5 passes from the shipped encoder's codes" 0 \
  "mean PSNR per refinement iteration \(dB\): [0-9.]+ [0-9.]+ [0-9.]+ [0-9.]+ (2[6-9]\.[0-9]+)$" -- \
  "$bin" encode --model "$model" --encoder "$(dirname "$model")/fmnist32_restyle_encoder.safetensors" --bootstrap "$shipped" \
  --iterations 5 --dir "$data/fmnist" --out "$work/restyle_shipped"
# models/fmnist32_domain_encoder.safetensors: the domain-guided encoder for in-domain inversion
# (docs/encoders.md); it fits the demo model and regularises an inversion (W-Mahal in the summary).
check "the domain-guided encoder regularises an inversion" 0 "W-Mahal" -- "$bin" invert --model "$model" --image "$a" \
  --out "$work/domain_shipped" --steps 2 --encoder "$(dirname "$model")/fmnist32_domain_encoder.safetensors" --domain-regularization 0.01

# ---------------------------------------------------------------- encode, hybrid invert
check "encode two images" 0 "mean" -- "$bin" encode --model "$model" --encoder "$enc" --image "$a" "$b" --out "$work/enc"
for f in test_0000.safetensors test_0001.safetensors test_0000_recon.png test_0000_compare.png summary.json summary.md overview.png; do
  exists "$work/enc/$f"
done
check "encode's summary names the command" 0 "^# ganinv encode" -- head -1 "$work/enc/summary.md"
# The codes are W+ codes in invert's file format: generate and metrics read them.
check "generate from an encoded code" 0 "wrote" -- "$bin" generate --model "$model" --ws "$work/enc/test_0000.safetensors" --out "$work/g.png"
check "invert --init encoder:E" 0 "mean" -- "$bin" invert --model "$model" --image "$a" --out "$work/hyb" --init "encoder:$enc" --steps 3
exists "$work/hyb/test_0000.safetensors"
check "invert --init encoder:E in W" 0 "mean" -- "$bin" invert --model "$model" --image "$a" --out "$work/hyb_w" --init "encoder:$enc" --steps 2 --space w
# The hybrid's own Adam schedule (a 20% warm-up, no exploration noise) unless the command shapes one.
check "the hybrid records its schedule" 0 '"schedule": "lr 0.1, ramp-up 0.2, ramp-down 0.25, w noise 0"' -- cat "$work/hyb/summary.json"
check "--no-schedule overrides the hybrid's schedule" 0 '"schedule": "constant lr 0.05"' -- sh -c \
  "'$bin' invert --model '$model' --image '$a' --out '$work/hyb_c' --init 'encoder:$enc' --steps 2 --no-schedule --lr 0.05 >/dev/null && cat '$work/hyb_c/summary.json'"
check "a mean start keeps the projector's schedule" 0 '"schedule": "lr 0.1, ramp-up 0.05, ramp-down 0.25, w noise 0.05"' -- sh -c \
  "'$bin' invert --model '$model' --image '$a' --out '$work/mean_s' --steps 2 >/dev/null && cat '$work/mean_s/summary.json'"
check "--lr-rampdown beyond the run" 2 "--lr-rampdown must be a fraction of the run in \[0, 1\]" -- "$bin" invert --model "$model" --image "$a" --out "$work/no_s1" --lr-rampdown 2
check "--no-schedule with --lr-rampup" 2 "--no-schedule switches the schedule off" -- "$bin" invert --model "$model" --image "$a" --out "$work/no_s2" --no-schedule --lr-rampup 0.1
check "a negative --w-noise" 2 "--w-noise must be >= 0" -- "$bin" invert --model "$model" --image "$a" --out "$work/no_s3" --w-noise -1
absent "$work/no_s1"

# The learning-rate decay: the rate on the progress line, recorded in the checkpoint (a resumed run
# continues it); a run past its end, a start after its end and a new schedule on resume are refused.
"$bin" train-encoder --model "$model" --out "$work/it_for_init.safetensors" --steps 1 --batch 2 --iterations 2 >/dev/null 2>&1
check "train-encoder --lr-decay-steps" 0 "step 4/4 .* lr 0\.000853553 " -- "$bin" train-encoder --model "$model" --out "$work/ld.safetensors" --steps 4 --batch 2 --lr-decay-steps 6 --lr-decay-start 2
check "a resumed run continues the decay" 0 "step 5/5 .* lr 0\.0005 " -- "$bin" train-encoder --model "$model" --out "$work/ld2.safetensors" --resume "$work/ld.safetensors" --steps 1
check "a run past the decay's end" 2 "the run would end at step 8, past the learning-rate decay's end \(6 steps.*give --steps <= 2" -- \
  "$bin" train-encoder --model "$model" --out "$work/no_ld1.safetensors" --resume "$work/ld.safetensors" --steps 4
check "--lr-decay-start at the end" 2 "--lr-decay-start must be in \[0, 6\)" -- "$bin" train-encoder --model "$model" --out "$work/no_ld2.safetensors" --lr-decay-steps 6 --lr-decay-start 6
check "--lr-decay-start alone" 2 "--lr-decay-start needs --lr-decay-steps" -- "$bin" train-encoder --model "$model" --out "$work/no_ld2.safetensors" --lr-decay-start 6
check "a new decay on resume" 2 "a resumed run keeps its checkpoint's schedule" -- "$bin" train-encoder --model "$model" --out "$work/no_ld3.safetensors" --resume "$enc" --lr-decay-steps 9
for d in no_ld1.safetensors no_ld2.safetensors no_ld3.safetensors; do absent "$work/$d"; done

# --init: a new run from a trained encoder's weights (its network; step 0, this command's options):
# its first step starts from the trained weights, so its loss is below a fresh network's first one.
check "train-encoder --init" 0 "weights from '.*e.safetensors' \(738736 parameters\); a new run" -- "$bin" train-encoder --model "$model" --out "$work/in1.safetensors" --init "$enc" --steps 1 --batch 2 --seed 9
fresh_loss=$("$bin" train-encoder --model "$model" --out "$work/in2.safetensors" --steps 1 --batch 2 --seed 9 2>&1 | grep -oE "step 1/1  loss [0-9.]+" | grep -oE "[0-9.]+$")
init_loss=$("$bin" train-encoder --model "$model" --out "$work/in3.safetensors" --init "$enc" --steps 1 --batch 2 --seed 9 2>&1 | grep -oE "step 1/1  loss [0-9.]+" | grep -oE "[0-9.]+$")
python3 -c "import sys; sys.exit(0 if float('$init_loss') < float('$fresh_loss') else 1)" 2>/dev/null && ok || fail "--init's first loss ($init_loss) is not below a fresh network's ($fresh_loss)"
check "an --init run starts at step 0" 0 "step 2/2" -- "$bin" train-encoder --model "$model" --out "$work/in4.safetensors" --init "$work/in1.safetensors" --steps 2 --batch 2
check "--init keeps an iterative network" 0 "iterative \(2 refinement iterations per batch\)" -- "$bin" train-encoder --model "$model" --out "$work/in5.safetensors" --init "$work/it_for_init.safetensors" --steps 1 --batch 2
check "--init and --resume" 2 "give one of them" -- "$bin" train-encoder --model "$model" --out "$work/no_in1.safetensors" --init "$enc" --resume "$enc"
check "--init with --width" 2 "--init takes the network from its file" -- "$bin" train-encoder --model "$model" --out "$work/no_in2.safetensors" --init "$enc" --width 2
check "--init of a generator file" 1 "is not a ganinv encoder file" -- "$bin" train-encoder --model "$model" --out "$work/no_in3.safetensors" --init "$model"
check "--init of another generator's encoder" 1 "encoder '.*e.safetensors' \(--init\) was made for another generator: w_dim 128" -- \
  "$bin" train-encoder --model "$tiny" --out "$work/no_in4.safetensors" --init "$enc"
for d in no_in1.safetensors no_in2.safetensors no_in3.safetensors no_in4.safetensors; do absent "$work/$d"; done

# R1 on the discriminators: in the progress line; refused without a discriminator.
check "train-encoder --r1" 0 "step 2/2 .*adversarial [0-9.e-]+ \(D [0-9.e-]+\)  R1 [0-9.e-]+" -- "$bin" train-encoder --model "$model" --out "$work/r1.safetensors" --steps 2 --batch 2 --latent-adversarial 0.1 --r1 10
check "train-encoder --r1 without a discriminator" 2 "--r1 needs --latent-adversarial W or --image-adversarial W" -- "$bin" train-encoder --model "$model" --out "$work/no_r1.safetensors" --steps 2 --r1 10
[ ! -e "$work/no_r1.safetensors" ] && passed=$((passed + 1)) || { echo "FAIL: a refused --r1 run wrote its encoder"; failures=$((failures + 1)); }

# ---------------------------------------------------------------- ReStyle: iterative encoder
it="$work/it.safetensors"
check "train-encoder --iterations 2" 0 "iterative \(2 refinement iterations per batch\)" -- "$bin" train-encoder --model "$model" --out "$it" --steps 3 --batch 2 --seed 3 --iterations 2
check "progress line per iteration" 0 "step 2/2  loss [0-9.]+ \(code [0-9.]+, pixel [0-9.]+\)  pixel per iteration [0-9.]+ -> [0-9.]+" -- \
  "$bin" train-encoder --model "$model" --out "$work/it2.safetensors" --steps 2 --batch 2 --iterations 2
check "resume keeps the refinement setting" 0 "step 4/4 .* pixel per iteration" -- "$bin" train-encoder --model "$model" --out "$work/it3.safetensors" --resume "$it" --steps 1 --loss-curve "$work/curves/it3.png"
exists "$work/curves/it3.png"
# encode runs the trained 2 iterations by default, or as many as asked, and scores each.
check "encode, iterative" 0 "mean PSNR per refinement iteration \(dB\): [0-9.]+ [0-9.]+$" -- "$bin" encode --model "$model" --encoder "$it" --image "$a" --out "$work/enc_it"
check "summary.json: PSNR per iteration" 0 '"iterations": 2, "mean_psnr_per_iteration": \[[0-9.]+, [0-9.]+\]' -- cat "$work/enc_it/summary.json"
check "encode --iterations 3" 0 "mean PSNR per refinement iteration \(dB\): [0-9.]+ [0-9.]+ [0-9.]+$" -- "$bin" encode --model "$model" --encoder "$it" --image "$a" --out "$work/enc_it3" --iterations 3
# --bootstrap E0 (ReStyle's encoder bootstrapping): the refinement starts from the single-pass
# encoder's codes, so its passes differ from those that start at the mean code; the summary says so.
check "encode --bootstrap" 0 "mean PSNR per refinement iteration \(dB\): [0-9.]+ [0-9.]+$" -- "$bin" encode --model "$model" --encoder "$it" --bootstrap "$enc" --image "$a" --out "$work/enc_boot"
check "bootstrap in summary.md" 0 "refinement iterations\) from the codes of .*e.safetensors" -- cat "$work/enc_boot/summary.md"
[ "$(grep -oE '"mean_psnr_per_iteration": \[[0-9.]+' "$work/enc_boot/summary.json")" != "$(grep -oE '"mean_psnr_per_iteration": \[[0-9.]+' "$work/enc_it/summary.json")" ] \
  && passed=$((passed + 1)) || { echo "FAIL: bootstrapped and plain refinement gave the same first pass"; failures=$((failures + 1)); }
check "--bootstrap with a single-pass --encoder" 2 "--bootstrap '.*e.safetensors' with --encoder '.*e.safetensors': encoder bootstrapping starts an iterative" -- \
  "$bin" encode --model "$model" --encoder "$enc" --bootstrap "$enc" --image "$a" --out "$work/no_boot1"
check "--bootstrap with an iterative encoder" 2 "the bootstrapping encoder must be single-pass" -- \
  "$bin" encode --model "$model" --encoder "$it" --bootstrap "$it" --image "$a" --out "$work/no_boot2"
[ ! -e "$work/no_boot1" ] && [ ! -e "$work/no_boot2" ] && passed=$((passed + 1)) || { echo "FAIL: a refused --bootstrap left an output folder"; failures=$((failures + 1)); }
# Bootstrapped training (train-encoder --bootstrap E0): each batch's refinement starts at E0's
# codes; the encoder records E0's fingerprint and refuses to run or resume without it.
bt="$work/bt.safetensors"
check "train-encoder --bootstrap" 0 "step 2/2 .* pixel per iteration" -- "$bin" train-encoder --model "$model" --out "$bt" --steps 2 --batch 2 --iterations 2 --bootstrap "$enc"
check "encode without the training's bootstrap" 2 "was trained to refine the codes of a single-pass encoder \(ReStyle's encoder bootstrapping, fnv1a64:[0-9a-f]{16}\), not the mean code: give that encoder with --bootstrap" -- \
  "$bin" encode --model "$model" --encoder "$bt" --image "$a" --out "$work/no_bt"
absent "$work/no_bt"
check "encode with the training's bootstrap" 0 "mean PSNR per refinement iteration \(dB\): [0-9.]+ [0-9.]+$" -- "$bin" encode --model "$model" --encoder "$bt" --bootstrap "$enc" --image "$a" --out "$work/bt_enc"
check "encode with another bootstrap warns" 0 "warning: '.*bt.safetensors' was trained to refine the codes of another single-pass encoder" -- \
  "$bin" encode --model "$model" --encoder "$bt" --bootstrap "$work/e3.safetensors" --image "$a" --out "$work/bt_enc_other"
check "resume without the bootstrap" 2 "refines the codes of a bootstrapping encoder \(fnv1a64:[0-9a-f]{16}\): give it with --bootstrap" -- \
  "$bin" train-encoder --model "$model" --out "$work/bt2.safetensors" --resume "$bt" --steps 1
check "resume with another bootstrap" 1 "the encoder was trained to refine the codes of another bootstrapping encoder" -- \
  "$bin" train-encoder --model "$model" --out "$work/bt2.safetensors" --resume "$bt" --steps 1 --bootstrap "$work/e3.safetensors"
absent "$work/bt2.safetensors"
check "resume with the bootstrap" 0 "step 3/3" -- "$bin" train-encoder --model "$model" --out "$work/bt2.safetensors" --resume "$bt" --steps 1 --bootstrap "$enc"
check "--bootstrap needs an iterative encoder" 2 "--bootstrap starts an iterative \(ReStyle\) encoder's refinement: give --iterations K" -- \
  "$bin" train-encoder --model "$model" --out "$work/bt3.safetensors" --steps 1 --bootstrap "$enc"
check "invert --init with a bootstrapped encoder" 2 "the encoder refines the codes of a bootstrapping encoder .*ganinv encode --bootstrap E0" -- \
  "$bin" invert --model "$model" --image "$a" --out "$work/no_bt_inv" --init "encoder:$bt" --steps 1
absent "$work/no_bt_inv"
# --init E --iterations K grows a single-pass encoder into a ReStyle one whose first pass is E's.
check "train-encoder --init single-pass --iterations 2" 0 "--iterations 2 from a single-pass encoder: its weights, the stem's reconstruction inputs zero" -- \
  "$bin" train-encoder --model "$model" --out "$work/grown.safetensors" --init "$enc" --iterations 2 --steps 1 --batch 2 --lr 1e-12
check "grown encoder: the first pass is the single-pass encoder's" 0 "^ok$" -- awk \
  -v a="$("$bin" encode --model "$model" --encoder "$work/grown.safetensors" --image "$a" --out "$work/grown_enc" 2>/dev/null | grep -oE 'refinement iteration \(dB\): [0-9.]+' | grep -oE '[0-9.]+$')" \
  -v b="$("$bin" encode --model "$model" --encoder "$enc" --image "$a" --out "$work/single_enc" 2>/dev/null | grep -oE 'refinement iteration \(dB\): [0-9.]+' | grep -oE '[0-9.]+$')" \
  'BEGIN { d = a - b; if (d < 0) d = -d; print (a != "" && d < 0.02 ? "ok" : "differs: " a " vs " b) }'
# invert --init encoder:E starts from the codes after the encoder's 2 iterations (with lr 0 the
# codes stay there): its PSNR is encode's, not that of the first iterate.
check "invert --init with an iterative encoder" 0 "mean" -- "$bin" invert --model "$model" --image "$a" --out "$work/hyb_it" --init "encoder:$it" --steps 1 --lr 0
psnr_of() { grep -oE '"psnr": [0-9.]+' "$1" | head -1 | cut -d' ' -f2; }
last=$(grep -oE '"mean_psnr_per_iteration": \[[0-9.]+, [0-9.]+' "$work/enc_it/summary.json" | grep -oE '[0-9.]+$')
check "invert starts from the refined code" 0 "^ok$" -- awk -v a="$(psnr_of "$work/hyb_it/summary.json")" -v b="$last" \
  'BEGIN { d = a - b; if (d < 0) d = -d; print (d < 1e-3 ? "ok" : "differs: " a " vs " b) }'
# ---------------------------------------------------------------- in-domain inversion, W Mahalanobis distance
# Every inversion reports its codes' distance from the W distribution; --domain-regularization L
# adds L * mean((w - E(G(w)))^2) with --encoder E (or the --init encoder:E one).
grep -qE '"w_mahalanobis": ?[0-9]' "$work/hyb/summary.json" && ok || fail "plain invert's summary.json has no w_mahalanobis"
check "invert --domain-regularization" 0 "W-Mahal" -- "$bin" invert --model "$model" --image "$a" "$b" --out "$work/ind" --encoder "$enc" --domain-regularization 2 --steps 3
grep -qE '"mean_w_mahalanobis": ?[0-9]' "$work/ind/summary.json" && ok || fail "summary.json has no mean_w_mahalanobis"
check "--domain-regularization with the --init encoder, W" 0 "W-Mahal" -- "$bin" invert --model "$model" --image "$a" --out "$work/ind_w" --init "encoder:$enc" --domain-regularization 1 --steps 2 --space w
check "--domain-regularization without an encoder" 2 "needs an encoder: give --encoder" -- "$bin" invert --model "$model" --image "$a" --out "$work/ind_no1" --domain-regularization 1
check "--domain-regularization, encoder of another generator" 1 "was made for another generator: w_dim 128" -- "$bin" invert --model "$tiny" --image "$a" --out "$work/ind_no3" --encoder "$enc" --domain-regularization 1
check "--encoder without --domain-regularization" 2 "give that flag too" -- "$bin" invert --model "$model" --image "$a" --out "$work/ind_no4" --encoder "$enc"
check "--domain-regularization in Z" 2 "works on W and W\+ codes" -- "$bin" invert --model "$model" --image "$a" --out "$work/ind_no5" --encoder "$enc" --domain-regularization 1 --space z
check "--domain-regularization negative" 2 "finite number >= 0" -- "$bin" invert --model "$model" --image "$a" --out "$work/ind_no6" --encoder "$enc" --domain-regularization -1
check "--domain-regularization with an iterative encoder" 2 "needs a single-pass encoder" -- "$bin" invert --model "$model" --image "$a" --out "$work/ind_no7" --encoder "$it" --domain-regularization 1
for d in ind_no1 ind_no3 ind_no4 ind_no5 ind_no6 ind_no7; do absent "$work/$d"; done

# ---------------------------------------------------------------- refused input, nothing written
check "encoder of another generator (encode)" 1 "was made for another generator: w_dim 128 \(the generator has 64\), channels 1 \(the generator has 3\)" -- \
  "$bin" encode --model "$tiny" --encoder "$enc" --image "$a" --out "$work/no1"
check "encoder of another generator (invert)" 1 "was made for another generator: w_dim 128" -- \
  "$bin" invert --model "$tiny" --image "$a" --init "encoder:$enc" --out "$work/no2"
check "a generator file is no encoder" 1 "is not a ganinv encoder file" -- "$bin" encode --model "$model" --encoder "$model" --image "$a" --out "$work/no3"
check "--init encoder: with --space z" 2 "use --space wplus" -- "$bin" invert --model "$model" --image "$a" --init "encoder:$enc" --space z --out "$work/no4"
check "--ratio without --real-dir" 2 "--ratio needs real images" -- "$bin" train-encoder --model "$model" --out "$work/no5.safetensors" --ratio 0.5
check "--out not safetensors" 2 "--out must name a .safetensors file" -- "$bin" train-encoder --model "$model" --out "$work/no6.png"
check "resume from a generator file" 1 "is not a ganinv encoder file" -- "$bin" train-encoder --model "$model" --out "$work/no7.safetensors" --resume "$model"
check "encode --iterations 2, single-pass encoder" 2 "--iterations 2: encoder '.*e.safetensors': the encoder is not iterative" -- \
  "$bin" encode --model "$model" --encoder "$enc" --image "$a" --out "$work/no8" --iterations 2
check "train-encoder --iterations 0" 2 "--iterations must be >= 1, got 0" -- "$bin" train-encoder --model "$model" --out "$work/no9.safetensors" --iterations 0
check "--loss-curve not a PNG" 2 "--loss-curve must name a .png file" -- "$bin" train-encoder --model "$model" --out "$work/no11.safetensors" --loss-curve "$work/no11.jpg"
check "resume with another --iterations" 2 "was trained with --iterations 2; a resumed run keeps its setting" -- \
  "$bin" train-encoder --model "$model" --out "$work/no10.safetensors" --resume "$it" --iterations 3
for d in no1 no2 no3 no4 no5.safetensors no6.png no7.safetensors no8 no9.safetensors no10.safetensors no11.safetensors no11.jpg no11_loss.png no12.safetensors no13.safetensors no14.safetensors no15.png no16.safetensors no17.safetensors no18.safetensors; do absent "$work/$d"; done

# ---------------------------------------------------------------- --device cuda
# Refused before anything is loaded, with or without a GPU: the options the GPU trainer lacks (exit 2,
# naming the flag and --device cpu), bf16, --cuda-precision without --device cuda, a bad --device. A
# build without CUDA or cuDNN refuses every --device cuda first (exit 2, "built without").
check "train-encoder --device cuda with a latent adversary" 2 "latent adversary \(--latent-adversarial\) is not available on the GPU; use --device cpu|built without" -- \
  "$bin" train-encoder --model "$model" --out "$work/gpu_no1.safetensors" --steps 1 --device cuda --latent-adversarial 0.1
check "train-encoder --device cuda with --loss l1" 2 "custom image loss \(--loss\) is not available on the GPU|built without" -- \
  "$bin" train-encoder --model "$model" --out "$work/gpu_no2.safetensors" --steps 1 --device cuda --loss l1
check "train-encoder --cuda-precision bf16" 2 "train-encoder on the GPU takes fp32 \(default\) or tf32|built without" -- \
  "$bin" train-encoder --model "$model" --out "$work/gpu_no3.safetensors" --steps 1 --device cuda --cuda-precision bf16
check "train-encoder --cuda-precision needs --device cuda" 2 "applies to --device cuda only" -- \
  "$bin" train-encoder --model "$model" --out "$work/gpu_no4.safetensors" --steps 1 --cuda-precision tf32
check "encode --device tpu" 2 "--device must be cpu or cuda, got 'tpu'" -- "$bin" encode --model "$model" --encoder "$enc" --image "$a" --out "$work/gpu_no5" --device tpu
for d in gpu_no1.safetensors gpu_no2.safetensors gpu_no3.safetensors gpu_no4.safetensors gpu_no5; do absent "$work/$d"; done
if nvidia-smi -L > /dev/null 2>&1; then
  # On a GPU: a few steps there, resumed on the CPU (one checkpoint format), and encode on the GPU.
  check "train-encoder --device cuda" 0 "wrote .*gpu_e.safetensors \(step 4;" -- \
    "$bin" train-encoder --model "$model" --out "$work/gpu_e.safetensors" --steps 4 --batch 2 --seed 3 --device cuda
  check "a GPU checkpoint resumes on the CPU" 0 "step 6/6" -- \
    "$bin" train-encoder --model "$model" --out "$work/gpu_e2.safetensors" --resume "$work/gpu_e.safetensors" --steps 2
  check "a CPU checkpoint resumes on the GPU" 0 "step 6/6" -- \
    "$bin" train-encoder --model "$model" --out "$work/gpu_e3.safetensors" --resume "$enc" --steps 2 --device cuda
  check "encode --device cuda" 0 "mean" -- "$bin" encode --model "$model" --encoder "$work/gpu_e.safetensors" --image "$a" "$b" --out "$work/gpu_enc" --device cuda
  exists "$work/gpu_enc/summary.json"
  # In-domain inversion with the encoder on the GPU: the CPU run's numbers (same seed and steps).
  check "invert --domain-regularization --device cuda" 0 "W-Mahal" -- "$bin" invert --model "$model" --image "$a" "$b" \
    --out "$work/gpu_ind" --encoder "$enc" --domain-regularization 2 --steps 3 --device cuda
  mean_of() { grep -oE "\"$2\": ?[0-9.]+" "$1" | head -1 | grep -oE '[0-9.]+$'; }
  check "GPU in-domain inversion equals the CPU's" 0 "^ok$" -- awk \
    -v p1="$(psnr_of "$work/ind/summary.json")" -v p2="$(psnr_of "$work/gpu_ind/summary.json")" \
    -v m1="$(mean_of "$work/ind/summary.json" mean_w_mahalanobis)" -v m2="$(mean_of "$work/gpu_ind/summary.json" mean_w_mahalanobis)" \
    'BEGIN { dp = p1 - p2; dm = (m1 - m2) / m1; if (dp < 0) dp = -dp; if (dm < 0) dm = -dm;
             print (p1 != "" && dp < 0.01 && dm < 0.005 ? "ok" : "differs: PSNR " p1 " vs " p2 ", W-Mahal " m1 " vs " m2) }'
else
  # Without a GPU: status 1 "no usable CUDA device" in a CUDA + cuDNN build, 2 "built without" otherwise.
  check "train-encoder --device cuda refuses without a GPU" 0 "no usable CUDA device|built without" -- bash -c \
    "'$bin' train-encoder --model '$model' --out '$work/gpu_no6.safetensors' --steps 1 --device cuda; s=\$?; [ \$s -eq 1 ] || [ \$s -eq 2 ]"
  check "encode --device cuda refuses without a GPU" 0 "no usable CUDA device|built without" -- bash -c \
    "'$bin' encode --model '$model' --encoder '$enc' --image '$a' --out '$work/gpu_no7' --device cuda; s=\$?; [ \$s -eq 1 ] || [ \$s -eq 2 ]"
  check "invert --domain-regularization --device cuda refuses without a GPU" 0 "no usable CUDA device|built without" -- bash -c \
    "'$bin' invert --model '$model' --image '$a' --out '$work/gpu_no8' --encoder '$enc' --domain-regularization 1 --device cuda; s=\$?; [ \$s -eq 1 ] || [ \$s -eq 2 ]"
  for d in gpu_no6.safetensors gpu_no7 gpu_no8; do absent "$work/$d"; done
fi

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
