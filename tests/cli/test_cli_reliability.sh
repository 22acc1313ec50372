#!/usr/bin/env bash
# Reproducers of issue 12's reliability findings, run through the tool: empty (zero-row) codes,
# images whose header declares too many pixels, the JPEG table stb overflows, and writes onto a
# full disk. Each check failed (SIGFPE, a wrong message, exit 0 with empty files) before the fix.
# Usage: test_cli_reliability.sh GANINV_BINARY MODEL CORPUS_DIR WORK_DIR
set -u
bin="$1"; model="$2"; corpus="$3"; work="$4"
rm -rf "$work"; mkdir -p "$work"
source "$(dirname "$0")/cli_check.sh"

# A safetensors file holding only zero-size tensors: mk_empty OUT 'name:[dims]' ...
mk_empty() {
  local out="$1"; shift
  local hdr="{" sep=""
  for t in "$@"; do hdr+="$sep\"${t%%:*}\":{\"dtype\":\"F32\",\"shape\":${t#*:},\"data_offsets\":[0,0]}"; sep=","; done
  hdr+="}"
  local n=${#hdr}
  printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x\\x00\\x00\\x00\\x00' $((n & 255)) $(((n >> 8) & 255)) $(((n >> 16) & 255)) $(((n >> 24) & 255)))" > "$out"
  printf '%s' "$hdr" >> "$out"
}
mk_empty "$work/ws0.safetensors" 'ws:[0,8,128]'
mk_empty "$work/w0.safetensors" 'ws:[0,128]'
mk_empty "$work/z0.safetensors" 'z:[0,128]'
mk_empty "$work/none.safetensors"

# --- empty inputs: a clear error (status 1), never SIGFPE (136) or a message about another file
check "generate --ws [0, num_ws, w_dim]" 1 "tensor 'ws' is empty \(shape \[0, 8, 128\]\)" -- \
  "$bin" generate --model "$model" --ws "$work/ws0.safetensors:ws" --out "$work/g.png"
check "generate --ws [0, w_dim]" 1 "tensor 'ws' is empty" -- "$bin" generate --model "$model" --ws "$work/w0.safetensors" --out "$work/g.png"
check "generate --z [0, z_dim] says z, not 'cannot open z'" 1 "z0.safetensors': tensor 'z' is empty" -- \
  "$bin" generate --model "$model" --z "$work/z0.safetensors:z" --out "$work/g.png"
check "interpolate from an empty code" 1 "tensor 'ws' is empty" -- \
  "$bin" interpolate --model "$model" --from "$work/ws0.safetensors" --to seed 1 --out "$work/i.png"
check "edit an empty code" 1 "tensor 'ws' is empty" -- \
  "$bin" edit --model "$model" --code "$work/ws0.safetensors" --out "$work/e" --direction sefa:0
check "invert --init an empty code" 1 "tensor 'ws' is empty" -- \
  "$bin" invert --model "$model" --image "$corpus/image/valid_gray_4x3.png" --out "$work/inv_e" --steps 1 --init "$work/ws0.safetensors"
check "invert --init a file without tensors" 1 "holds no tensor 'ws' or 'z'" -- \
  "$bin" invert --model "$model" --image "$corpus/image/valid_gray_4x3.png" --out "$work/inv_n" --steps 1 --init "$work/none.safetensors"
[ -e "$work/g.png" ] && { echo "FAIL: g.png written from an empty code"; failures=$((failures + 1)); }

# --- image size limit, checked from the header (no gigabyte decode), and --max-pixels
check "invert a 16000x16000 PNG header" 1 "declares 16000x16000 pixels .*above the limit of 67108864" -- \
  "$bin" invert --model "$model" --image "$corpus/image/crash_png_16000x16000.png" --out "$work/inv_big" --steps 1
check "metrics: a GIF screen of 17921x21071" 1 "17921x21071" -- \
  "$bin" metrics "$corpus/image/crash_gif_17921x21071.gif" "$corpus/image/valid_2x1.gif"
fm="$corpus/../../data/fmnist/test_0000.png"  # 28x28
check "metrics --max-pixels below the image" 1 "declares 28x28 pixels \(784\), above the limit of 783" -- \
  "$bin" metrics --max-pixels 783 "$fm" "$fm"
check "metrics --max-pixels at the image" 0 "PSNR" -- "$bin" metrics --max-pixels 784 "$fm" "$fm"
check "--max-pixels must be positive" 2 "--max-pixels must be >= 1" -- \
  "$bin" metrics --max-pixels 0 "$corpus/image/valid_gray_4x3.png" "$corpus/image/valid_gray_4x3.png"
check "invert --help lists --max-pixels" 0 "--max-pixels N" -- "$bin" invert --help
check "the JPEG that overflows stb's Huffman table" 1 "Huffman table" -- \
  "$bin" invert --model "$model" --image "$corpus/image/crash_jpeg_dht_overflow.jpg" --out "$work/inv_jpg" --steps 1

# --- full disk: the error names the file and the reason; nothing half-written stays behind
# A .png name for the full device: the image format comes from the extension (cli_details).
ln -sf /dev/full "$work/full.png"
check "generate onto /dev/full" 1 "full.png': No space left on device" -- \
  "$bin" generate --model "$model" --seed 1 --out "$work/full.png"
check "generate --out-tensor onto /dev/full" 1 "'/dev/full': No space left on device" -- \
  "$bin" generate --model "$model" --seed 1 --out "$work/ok.png" --out-tensor /dev/full
# RLIMIT_FSIZE (ulimit -f, in 512-byte blocks) makes any write past 2 KB fail with EFBIG, the way
# a disk filling up does; SIGXFSZ is ignored so that the write returns the error.
check "invert with writes failing half-way" 1 "File too large" -- bash -c \
  "trap '' XFSZ; ulimit -f 4; exec '$bin' invert --model '$model' --image '$corpus/image/valid_gray_4x3.png' --out '$work/inv_full' --steps 2 --report"
bad=$(find "$work/inv_full" -type f \( -size 0 -o -name '.*.tmp.*' \) 2>/dev/null)
if [ -n "$bad" ]; then echo "FAIL: empty or temporary files left: $bad"; failures=$((failures + 1)); else passed=$((passed + 1)); fi
# An unwritable summary is an error, not exit 0: a directory in the way of summary.json.
mkdir -p "$work/inv_blocked/summary.json"
check "invert cannot write summary.json" 1 "summary.json" -- \
  "$bin" invert --model "$model" --image "$corpus/image/valid_gray_4x3.png" --out "$work/inv_blocked" --steps 2

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
