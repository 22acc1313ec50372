#!/usr/bin/env bash
# `encode` and `tune` as dataset jobs (issue 18), as `invert` is in test_cli_dataset.sh: a line per
# image in OUT/manifest.jsonl, a corrupt input is an "error" line and the others complete (exit
# status 1), --resume redoes exactly the images whose outputs were planted truncated (and the
# failures) and leaves complete ones untouched, a busy folder (its lock held) is refused.
# Usage: test_cli_dataset_jobs.sh GANINV_BINARY MODEL DATA_DIR WORK_DIR
set -u
bin="$1"; model="$2"; data="$3"; work="$4"
rm -rf "$work"; mkdir -p "$work"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
source "$(dirname "$0")/cli_check.sh"
source "$(dirname "$0")/dataset_lib.sh"
make_dataset "$work/images"
truncate_file() { head -c "$2" "$1" > "$1.cut" && mv "$1.cut" "$1"; }
field() {  # field OUT NAME KEY: KEY of the last manifest line of image NAME
  python3 -c 'import json,sys
rows=[json.loads(l) for l in open(sys.argv[1] + "/manifest.jsonl") if l.strip()]
print([r for r in rows if r["name"] == sys.argv[2]][-1].get(sys.argv[3]))' "$@"
}
busy_refused() {  # busy_refused NAME OUT COMMAND...: with OUT's lock held, the job is refused
  local out="$2" name="$1" holder; shift 2
  mkdir -p "$out"
  local before; before=$(cat "$out/manifest.jsonl" 2>/dev/null | md5sum)
  ( exec 9> "$out/ganinv.lock"; flock -x 9; sleep 60 ) & holder=$!
  wait_for 10 bash -c "! flock -n '$out/ganinv.lock' true" || fail "$name: could not hold the lock"
  check "$name" 1 "the output folder '.*' is in use by another ganinv job \(lock file '.*ganinv.lock'" -- "$@" --out "$out"
  kill "$holder"; wait "$holder" 2>/dev/null
  [ "$(cat "$out/manifest.jsonl" 2>/dev/null | md5sum)" = "$before" ] && ok || fail "$name: the refused job changed the manifest"
}

# ---------------------------------------------------------------- encode --dir: 24 images, 3 corrupt
enc="$work/e.safetensors"
"$bin" train-encoder --model "$model" --out "$enc" --steps 1 --batch 2 --seed 3 > "$work/train.log" 2>&1 ||
  fail "train-encoder: $(tail -2 "$work/train.log")"
encode=("$bin" encode --model "$model" --encoder "$enc" --batch 8)
check "encode --dir with 3 corrupt files: exit 1" 1 "3 of 24 image\(s\) failed.*the others were encoded" -- \
  "${encode[@]}" --dir "$work/images" --out "$work/eo"
same "encode: manifest lines" "$(manifest lines "$work/eo")" 24
same "encode: ok images" "$(manifest names "$work/eo" ok)" "$(good_names)"
same "encode: error images" "$(manifest names "$work/eo" error)" "$(bad_names)"
field "$work/eo" bad_text error | grep -q "bad_text.png" && ok || fail "encode: bad_text's error line does not name the file"
complete_sets "$work/eo" $(good_names)
exists "$work/eo/summary.json"
for n in $(bad_names); do [ ! -e "$work/eo/$n.safetensors" ] && ok || fail "encode: output for corrupt $n"; done

# --resume: a truncated code and a truncated picture are redone, the failures too; nothing else.
cp "$work/eo/img_03.safetensors" "$work/img_03.first"
touch -d '2001-01-01' "$work/eo/img_05.safetensors"
truncate_file "$work/eo/img_03.safetensors" 100
truncate_file "$work/eo/img_07_compare.png" 40
check "encode --resume redoes the truncated outputs and the failures" 1 "resume: 19 of 24 images are done, 5 to encode" -- \
  "${encode[@]}" --dir "$work/images" --out "$work/eo" --resume
same "encode resume: lines" "$(manifest lines "$work/eo")" 29
for n in img_03 img_07 bad_empty; do same "encode resume: runs of $n" "$(manifest count "$work/eo" $n)" 2; done
for n in img_00 img_05 img_20; do same "encode resume: runs of $n" "$(manifest count "$work/eo" $n)" 1; done
[ "$(stat -c %Y "$work/eo/img_05.safetensors")" -lt 1000000000 ] && ok || fail "encode resume rewrote the complete img_05"
# The redone code is the first run's but for float rounding (a batch of other images: other GEMM blocking).
python3 - "$work/img_03.first" "$work/eo/img_03.safetensors" <<'PY' && ok || fail "encode resume: img_03's code is not the first run's"
import array, json, struct, sys
def ws(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; e = json.loads(b[8:8 + n])["ws"]
    return array.array("f", b[8 + n + e["data_offsets"][0]:8 + n + e["data_offsets"][1]])
a, b = ws(sys.argv[1]), ws(sys.argv[2])
assert len(a) == len(b) > 0 and max(abs(x - y) for x, y in zip(a, b)) < 1e-4
PY
complete_sets "$work/eo" $(good_names)
busy_refused "encode on a busy folder is refused" "$work/eo" "${encode[@]}" --dir "$work/images" --resume

# ---------------------------------------------------------------- tune --list: 2 images and a corrupt one
mkdir -p "$work/t"
cp "$work/images/img_00.png" "$work/images/img_01.png" "$work/images/bad_text.png" "$work/t/"
printf 'img_00.png\nimg_01.png\nbad_text.png\n' > "$work/t/list.txt"
tune=("$bin" tune --model "$model" --pivot-steps 3 --tune-steps 2 --list "$work/t/list.txt")
check "tune --list with a corrupt file: exit 1" 1 "1 of 3 image\(s\) failed.*the others were tuned" -- "${tune[@]}" --out "$work/to"
same "tune: ok images" "$(manifest names "$work/to" ok)" "$(printf 'img_00\nimg_01')"
same "tune: error images" "$(manifest names "$work/to" error)" bad_text
same "tune: the line names the tuned generator" "$(field "$work/to" img_01 generator)" img_01.generator.safetensors
for n in img_00 img_01; do
  for f in "$n.safetensors" "$n.generator.safetensors" "${n}_recon.png" "${n}_pivot.png" "${n}_compare.png"; do exists "$work/to/$f"; done
done
[ -z "$(find "$work/to" -name '.*.tmp.*' -o -name ganinv.lock)" ] && ok || fail "tune left a temporary or lock file"
check "the tuned generator of a dataset job loads" 0 "wrote" -- \
  "$bin" generate --model "$work/to/img_01.generator.safetensors" --ws "$work/to/img_01.safetensors" --out "$work/tg.png"
touch -d '2001-01-01' "$work/to/img_00.generator.safetensors"
truncate_file "$work/to/img_01.generator.safetensors" 200
check "tune --resume redoes the truncated generator" 1 "resume: 1 of 3 images are done, 2 to tune" -- \
  "${tune[@]}" --out "$work/to" --resume
same "tune resume: runs of img_01" "$(manifest count "$work/to" img_01)" 2
same "tune resume: runs of img_00" "$(manifest count "$work/to" img_00)" 1
[ "$(stat -c %Y "$work/to/img_00.generator.safetensors")" -lt 1000000000 ] && ok || fail "tune resume rewrote img_00's generator"
check "tune resume: the generator reads back whole" 0 "wrote" -- \
  "$bin" generate --model "$work/to/img_01.generator.safetensors" --ws "$work/to/img_01.safetensors" --out "$work/tg2.png"
# An image whose files cannot all be written (a folder in the way of one) leaves none of them,
# nor its tuned generator: only the error line.
mkdir -p "$work/tblock/img_00_pivot.png"
check "tune: an image whose outputs cannot be written" 1 "img_00_pivot.png" -- \
  "$bin" tune --model "$model" --pivot-steps 2 --tune-steps 1 --image "$work/t/img_00.png" --out "$work/tblock"
same "tune: the unwritable image's line" "$(manifest names "$work/tblock" error)" img_00
same "tune: nothing of the unwritable image is left" "$(cd "$work/tblock" && ls -A | grep -v -e manifest.jsonl -e img_00_pivot.png)" ""
[ -d "$work/tblock/img_00_pivot.png" ] && ok || fail "tune removed the folder that was in the way"
check "tune --shared --resume is refused" 2 "--shared tunes one generator on all the images at once" -- \
  "${tune[@]}" --shared --resume --out "$work/to"
busy_refused "tune on a busy folder is refused" "$work/tbusy" "${tune[@]}"

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
