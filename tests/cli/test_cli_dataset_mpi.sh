#!/usr/bin/env bash
# Dataset jobs under mpirun (issue 18): 3 ranks on 24 images (3 corrupt) give one complete output
# set per good image, 24 manifest lines from more than one rank, one progress line, exit status
# 1; the codes equal those of a one-process run (batches and seed do not depend on the ranks);
# SIGKILL on one worker rank mid-job, then --resume, completes the job and redoes only the
# images that were not finished. Registered when ganinv was built with MPI (tests/CMakeLists.txt).
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

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
