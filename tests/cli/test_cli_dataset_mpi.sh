#!/usr/bin/env bash
# Dataset jobs under mpirun (issue 18): 3 ranks on 24 images (3 corrupt) give one complete output
# set per good image, 24 manifest lines from more than one rank, one progress line, exit status
# 1; the codes equal those of a one-process run (batches and seed do not depend on the ranks);
# SIGKILL on one worker rank mid-job, then --resume, completes the job and redoes only the
# images that were not finished; rank 0 writes the job's summary from the manifest; encode and
# tune run as ranks the same way (encode's codes equal a one-process run's). Registered when
# ganinv was built with MPI (tests/CMakeLists.txt).
# Usage: test_cli_dataset_mpi.sh GANINV_BINARY MODEL DATA_DIR WORK_DIR
set -u
bin="$1"; model="$2"; data="$3"; work="$4"
rm -rf "$work"; mkdir -p "$work"
export OMP_NUM_THREADS=1
# CI and containers run as root; vader's single-copy needs ptrace rights containers often lack.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
source "$(dirname "$0")/cli_check.sh"
source "$(dirname "$0")/dataset_lib.sh"
make_dataset "$work/images"
mpi=(mpirun --oversubscribe -np 3)
run=("$bin" invert --model "$model" --steps 2 --batch 2)

# ---------------------------------------------------------------- 3 ranks, 3 corrupt files
check "3 ranks on 24 images, 3 corrupt: exit 1" 1 "progress: 24/24 images \(3 failed\)" -- \
  "${mpi[@]}" "${run[@]}" --dir "$work/images" --out "$work/o3"
same "manifest lines" "$(manifest lines "$work/o3")" 24
same "manifest fields" "$(manifest fields "$work/o3")" complete
same "ok images" "$(manifest names "$work/o3" ok)" "$(good_names)"
same "error images" "$(manifest names "$work/o3" error)" "$(bad_names)"
complete_sets "$work/o3" $(good_names)
ranks=$(manifest ranks "$work/o3")
[ "$(wc -w <<< "$ranks")" -ge 2 ] && ok || fail "only rank(s) '$ranks' did work"

# The job's summary, built by rank 0 from the manifest: every image, the scores of the lines.
python3 - "$work/o3" <<'PY' && ok || fail "3-rank summary.json does not match the manifest"
import json, sys
d = sys.argv[1]
s = json.load(open(d + "/summary.json"))
rows = [json.loads(l) for l in open(d + "/manifest.jsonl") if l.strip()]
ok = [r for r in rows if r["status"] == "ok"]
mean = sum(r["psnr"] for r in ok) / len(ok)
byname = {i["name"]: i for i in s["images"]}
assert "manifest.jsonl" in s["summary_source"], s["summary_source"]
assert (s["ranks"], s["images_total"], s["images_ok"], s["images_failed"], s["run_images"]) == (3, 24, 21, 3, 24), s
assert abs(s["mean_psnr"] - mean) < 1e-9 and s["run_images_per_second"] > 0, (s["mean_psnr"], mean)
assert all(byname[r["name"]]["psnr"] == r["psnr"] and byname[r["name"]]["rank"] == r["rank"] for r in rows)
assert len(byname) == 24 and s["steps"] == 2
PY
grep -q "built from manifest.jsonl" "$work/o3/summary.md" && ok || fail "summary.md does not say it is built from the manifest"
[ ! -e "$work/o3/overview.png" ] && ok || fail "a 3-rank job wrote overview.png (rank 0 has not every image)"

# ---------------------------------------------------------------- encode and tune under 2 ranks
"$bin" train-encoder --model "$model" --out "$work/e.safetensors" --steps 1 --batch 2 --seed 3 > "$work/train.log" 2>&1
encode=("$bin" encode --model "$model" --encoder "$work/e.safetensors" --batch 4)
check "encode, 2 ranks: exit 1" 1 "progress: 24/24 images \(3 failed\)" -- \
  mpirun --oversubscribe -np 2 "${encode[@]}" --dir "$work/images" --out "$work/e2"
same "encode, 2 ranks: ok images" "$(manifest names "$work/e2" ok)" "$(good_names)"
same "encode, 2 ranks: summary" "$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["command"], s["ranks"], s["images_ok"])' "$work/e2/summary.json")" "encode 2 21"
"${encode[@]}" --dir "$work/images" --out "$work/e1" > "$work/e1.log" 2>&1
for n in $(good_names); do
  cmp -s "$work/e1/$n.safetensors" "$work/e2/$n.safetensors" || { fail "$n: encode's code differs between 1 and 2 ranks"; break; }
done && ok
mkdir -p "$work/t"; cp "$work/images/img_00.png" "$work/images/img_01.png" "$work/t/"
check "tune, 2 ranks" 0 "progress: 2/2 images \(0 failed\)" -- \
  mpirun --oversubscribe -np 2 "$bin" tune --model "$model" --pivot-steps 2 --tune-steps 1 --dir "$work/t" --out "$work/t2"
same "tune, 2 ranks: ok images" "$(manifest names "$work/t2" ok)" "$(printf 'img_00\nimg_01')"
same "tune, 2 ranks: summary" "$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["command"], s["images_ok"], sorted(i["generator"] for i in s["images"]))' "$work/t2/summary.json")" \
  "tune 2 ['img_00.generator.safetensors', 'img_01.generator.safetensors']"
check "tune --shared under 2 ranks is refused" 2 "runs in one process, not as 2 MPI ranks" -- \
  mpirun --oversubscribe -np 2 "$bin" tune --model "$model" --shared --dir "$work/t" --out "$work/t3"

# ---------------------------------------------------------------- the same codes with 1 rank
"${run[@]}" --dir "$work/images" --out "$work/o1" > "$work/o1.log" 2>&1
for n in $(good_names); do
  cmp -s "$work/o1/$n.safetensors" "$work/o3/$n.safetensors" || { fail "$n: the code differs between 1 and 3 ranks"; break; }
done && ok

# ---------------------------------------------------------------- SIGKILL on a worker rank
"${mpi[@]}" "${run[@]}" --steps 8 --batch 1 --dir "$work/images" --out "$work/k" > "$work/k.log" 2>&1 &
job=$!
wait_for 120 lines_at_least "$work/k" 6 || fail "the job wrote no manifest lines"
victim=""
for p in $(pgrep -P "$job"); do
  tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && victim=$p
done
[ -n "$victim" ] && ok || fail "found no process of rank 1 under mpirun $job"
[ -n "$victim" ] && kill -9 "$victim"
wait "$job"; status=$?
[ "$status" -ne 0 ] && ok || fail "mpirun exited 0 after a rank was killed"
first_run=$(manifest names "$work/k" ok); n1=$(wc -l < "$work/k/manifest.jsonl")
[ "$n1" -lt 24 ] && ok || fail "the killed job finished all 24 images (kill came too late)"
check "resume after a killed rank" 1 "resume: $(echo "$first_run" | grep -c .) of 24 images are done" -- \
  "${mpi[@]}" "${run[@]}" --steps 8 --batch 1 --dir "$work/images" --out "$work/k" --resume
resumed_once "$work/k" "$n1" "$first_run"
# The resumed job's summary covers the whole job (the first run's images from their lines), and
# its throughput is the resumed run's.
same "summary after resume" "$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["images_total"], s["images_ok"], s["images_failed"], s["images_missing"], s["run_images"])' "$work/k/summary.json")" \
  "24 21 3 0 $((24 - $(echo "$first_run" | grep -c .)))"

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
