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

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
