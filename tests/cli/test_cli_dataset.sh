#!/usr/bin/env bash
# Dataset jobs in one process (issue 18): OUT/manifest.jsonl (a line per image, corrupt inputs
# as "error" lines, exit status 1), --list, --resume (skips only images whose outputs read back
# whole: a truncated file planted in OUT is redone; a job killed with SIGKILL is completed and
# only its unfinished images are redone), and the lock (a second job on OUT is refused, a dead
# job's lock is taken over with a warning). The MPI side: test_cli_dataset_mpi.sh.
# Usage: test_cli_dataset.sh GANINV_BINARY MODEL DATA_DIR WORK_DIR
set -u
bin="$1"; model="$2"; data="$3"; work="$4"
rm -rf "$work"; mkdir -p "$work"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
source "$(dirname "$0")/cli_check.sh"
source "$(dirname "$0")/dataset_lib.sh"
make_dataset "$work/images"
run=("$bin" invert --model "$model" --steps 2 --batch 4)

# ---------------------------------------------------------------- a folder with 3 corrupt files
check "dataset with 3 corrupt files: exit 1, the failures named" 1 "3 of 24 image\(s\) failed" -- \
  "${run[@]}" --dir "$work/images" --out "$work/o"
same "manifest lines" "$(manifest lines "$work/o")" 24
same "manifest fields" "$(manifest fields "$work/o")" complete
same "ok images" "$(manifest names "$work/o" ok)" "$(good_names)"
same "error images" "$(manifest names "$work/o" error)" "$(bad_names)"
complete_sets "$work/o" $(good_names)
for n in $(bad_names); do [ ! -e "$work/o/$n.safetensors" ] && ok || fail "output for corrupt $n"; done

# ---------------------------------------------------------------- --resume trusts only what reads back
touch -d '2001-01-01' "$work/o/img_05.safetensors"
head -c 100 "$work/o/img_03.safetensors" > "$work/o/cut" && mv "$work/o/cut" "$work/o/img_03.safetensors"
head -c 50 "$work/o/img_07_recon.png" > "$work/o/cut" && mv "$work/o/cut" "$work/o/img_07_recon.png"
echo "half a line from a crash {\"image\": " >> "$work/o/manifest.jsonl"
check "resume redoes the truncated outputs and the failures" 1 "resume: 19 of 24 images are done, 5 to invert" -- \
  "${run[@]}" --dir "$work/images" --out "$work/o" --resume
grep -q "half a line" "$work/o/manifest.jsonl" && ok || fail "the unreadable manifest line should stay"
sed -i '/half a line/d' "$work/o/manifest.jsonl"
same "resume: lines" "$(manifest lines "$work/o")" 29
for n in img_03 img_07 bad_text; do same "resume: runs of $n" "$(manifest count "$work/o" $n)" 2; done
for n in img_00 img_05 img_20; do same "resume: runs of $n" "$(manifest count "$work/o" $n)" 1; done
[ "$(stat -c %Y "$work/o/img_05.safetensors")" -lt 1000000000 ] && ok || fail "resume rewrote the complete img_05"
complete_sets "$work/o" $(good_names)

# ---------------------------------------------------------------- --list
mkdir -p "$work/listed"
cp "$work/images/img_01.png" "$work/images/img_02.png" "$work/listed/"
printf '# two images, a missing one, an absolute path\nimg_01.png\n\nimg_02.png\nmissing.png\n%s\n' "$work/images/img_04.png" \
  > "$work/listed/list.txt"
check "--list with a missing file" 1 "missing.png" -- "${run[@]}" --list "$work/listed/list.txt" --out "$work/ol"
same "--list: ok" "$(manifest names "$work/ol" ok)" "$(printf 'img_01\nimg_02\nimg_04')"
same "--list: error" "$(manifest names "$work/ol" error)" missing

# ---------------------------------------------------------------- the lock
# A long job holds OUT; a second one is refused with the lock named; once the first is killed
# (SIGKILL: no clean-up), its lock is stale and the next job takes it over.
"$bin" invert --model "$model" --steps 100000 --batch 1 --image "$work/images/img_00.png" --out "$work/busy" \
  > "$work/busy.log" 2>&1 &
first=$!
if wait_for 60 test -f "$work/busy/ganinv.lock"; then ok; else fail "the first job made no lock"; fi
check "a second job on the same folder is refused" 1 "in use by another ganinv job \(lock file '.*busy/ganinv.lock' held by process $first" -- \
  "${run[@]}" --image "$work/images/img_01.png" --out "$work/busy"
kill -9 "$first"; wait "$first" 2>/dev/null
[ -f "$work/busy/ganinv.lock" ] && ok || fail "SIGKILL should leave the lock file behind"
check "a dead job's lock is taken over" 0 "taking over the stale lock .*ganinv.lock' of process $first" -- \
  "${run[@]}" --image "$work/images/img_01.png" --out "$work/busy"
[ ! -e "$work/busy/ganinv.lock" ] && ok || fail "lock not removed at the end"

# ---------------------------------------------------------------- SIGKILL mid-job, then --resume
"${run[@]}" --steps 8 --batch 1 --dir "$work/images" --out "$work/k" > "$work/k.log" 2>&1 &
job=$!
wait_for 120 lines_at_least "$work/k" 5 || fail "the job wrote no manifest lines"
kill -9 "$job"; wait "$job" 2>/dev/null
first_run=$(manifest names "$work/k" ok); n1=$(wc -l < "$work/k/manifest.jsonl")
[ "$n1" -ge 5 ] && [ "$n1" -lt 24 ] && ok || fail "killed job wrote $n1 lines (want 5..23)"
check "resume after SIGKILL" 1 "resume: $(echo "$first_run" | grep -c .) of 24 images are done" -- \
  "${run[@]}" --steps 8 --batch 1 --dir "$work/images" --out "$work/k" --resume
resumed_once "$work/k" "$n1" "$first_run"

# ---------------------------------------------------------------- outputs from several threads, the time breakdown, the overview
# The files of a batch's images are written by several threads at once (DatasetJob::write_results):
# byte for byte those one thread writes (the CPU inversion itself does not depend on the thread count).
OMP_NUM_THREADS=4 "${run[@]}" --batch 8 --dir "$work/images" --out "$work/p4" > "$work/p4.log" 2>&1
OMP_NUM_THREADS=1 "${run[@]}" --batch 8 --dir "$work/images" --out "$work/p1" > "$work/p1.log" 2>&1
differ=0
for n in $(good_names); do
  for f in "$n.safetensors" "${n}_recon.png" "${n}_compare.png" "${n}_loss.png"; do
    cmp -s "$work/p1/$f" "$work/p4/$f" || { differ=1; fail "4 writer threads: $f differs from one thread's"; }
  done
done
[ "$differ" -eq 0 ] && ok
# summary.json's "timing": the parts of the job's time, which add up to its total; the same line on stderr.
timing=$(python3 - "$work/p4/summary.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["timing"]
parts = ["startup_seconds", "loading_seconds", "inversion_seconds", "outputs_seconds", "summary_seconds"]
good = all(t[p] >= 0 for p in parts) and abs(sum(t[p] for p in parts) - t["total_seconds"]) < 1e-6 and t["inversion_seconds"] > 0
# the files were written on the background thread (one process)
good = good and t["outputs_background_seconds"] > 0
print("adds up" if good else f"bad timing {t}")
PY
)
same "summary.json timing" "$timing" "adds up"
grep -qE "^time: [0-9.]+ s = startup [0-9.]+ \+ loading images [0-9.]+ \+ inversion [0-9.]+ \+ outputs [0-9.]+ \+ summary [0-9.]+; files written in the background [0-9.]+ s, [0-9.]+ s of it hidden behind later batches$" \
  "$work/p4.log" && ok || fail "no time line on stderr: $(tail -2 "$work/p4.log")"
# overview.png shows the first 64 images (two columns of 32 strips): 65 inputs give the same height as 64.
mkdir -p "$work/many"
cp "$data"/fmnist/test_00*.png "$work/many/"
cp "$data/fmnist/test_0000.png" "$work/many/zz_extra.png"
same "65 inputs" "$(ls "$work/many" | wc -l)" 65
"$bin" invert --model "$model" --steps 1 --batch 65 --dir "$work/many" --out "$work/om" > "$work/om.log" 2>&1 && ok || fail "65 images: $(tail -2 "$work/om.log")"
png_size() { python3 -c 'import struct,sys; d=open(sys.argv[1],"rb").read(24); print(*struct.unpack(">II", d[16:24]))' "$1"; }
# a strip is 3 panels of 32x32 enlarged 4x with 4 pixels between them: 392 x 128; the grid pads by 6
same "overview of 65 images" "$(png_size "$work/om/overview.png")" "$((2 * (392 + 6) + 6)) $((32 * (128 + 6) + 6))"
[ -e "$work/om/zz_extra_compare.png" ] && ok || fail "the 65th image has no comparison strip"

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
