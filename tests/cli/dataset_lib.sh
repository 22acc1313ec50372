#!/usr/bin/env bash
# Shared by the dataset-job tests (sourced after cli_check.sh): a 24-image folder with 3 corrupt
# files, and queries on OUT/manifest.jsonl (python3's json module; one JSON object a line).
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

make_dataset() {  # make_dataset DIR: 21 Fashion-MNIST digits and 3 files that are no image
  mkdir -p "$1"
  local i
  for i in $(seq 0 20); do cp "$data/fmnist/test_$(printf %04d "$i").png" "$1/img_$(printf %02d "$i").png"; done
  head -c 60 "$data/fmnist/test_0021.png" > "$1/bad_truncated.png"
  echo "not a picture" > "$1/bad_text.png"
  : > "$1/bad_empty.jpg"
}

# manifest Q DIR [ARG]: lines       the number of lines
#                       names S     the names (sorted) with status S (ok|error), one a line
#                       count NAME  how many lines name image NAME
#                       ranks       the distinct ranks that wrote a line
#                       fields      "complete" when every line has every field of the format
manifest() {
  python3 - "$@" <<'PY'
import json, sys
q, d = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(d + "/manifest.jsonl") if l.strip()]
if q == "lines": print(len(rows))
elif q == "names": print("\n".join(sorted(r["name"] for r in rows if r["status"] == sys.argv[3])))
elif q == "count": print(sum(r["name"] == sys.argv[3] for r in rows))
elif q == "ranks": print(" ".join(str(r) for r in sorted({r["rank"] for r in rows})))
elif q == "fields":
    need = {"image", "status", "error", "psnr", "ssim", "steps", "seconds", "rank", "device"}
    good = all(need <= set(r) and r["status"] in ("ok", "error") and (r["status"] == "ok") == (r["error"] is None)
               and (r["status"] == "error" or (r["psnr"] > 0 and -1 <= r["ssim"] <= 1 and r["steps"] >= 1)) for r in rows)
    print("complete" if good and rows else "incomplete")
PY
}

# complete_sets OUT NAME...: every output of each image is there and non-empty; no temporary
# file and no lock file is left in OUT.
complete_sets() {
  local out="$1" n f; shift
  for n in "$@"; do
    for f in "$n.safetensors" "${n}_recon.png" "${n}_compare.png" "${n}_loss.png"; do
      [ -s "$out/$f" ] || { fail "missing or empty $out/$f"; return; }
    done
  done
  [ -z "$(find "$out" -name '.*.tmp.*')" ] || { fail "temporary files left in $out"; return; }
  [ ! -e "$out/ganinv.lock" ] || { fail "lock file left in $out"; return; }
  ok
}

good_names() { local i; for i in $(seq 0 20); do printf 'img_%02d\n' "$i"; done; }
bad_names() { printf 'bad_empty\nbad_text\nbad_truncated\n'; }

same() {  # same WHAT GOT WANT
  if [ "$2" = "$3" ]; then ok; else fail "$1: got [$(echo $2)] want [$(echo $3)]"; fi
}

wait_for() {  # wait_for SECONDS COMMAND...: polls until the command succeeds
  local t=$(( $1 * 10 )); shift
  while ! "$@"; do t=$((t - 1)); [ $t -le 0 ] && return 1; sleep 0.1; done
}
lines_at_least() { [ -f "$1/manifest.jsonl" ] && [ "$(wc -l < "$1/manifest.jsonl")" -ge "$2" ]; }

# resumed_once OUT N1 FIRST_RUN: after a job was killed having written N1 manifest lines (FIRST_RUN:
# the names it finished) and was resumed, every good image is ok exactly once, the resumed run
# did exactly the images not finished before (the failed ones included), and only the failed
# (corrupt) images ran twice: one in flight at the kill left no line in the first run.
resumed_once() {
  local out="$1" n1="$2" first_run="$3" second_run twice n
  same "after resume: each good image ok once" "$(manifest names "$out" ok)" "$(good_names)"
  second_run=$(tail -n +$((n1 + 1)) "$out/manifest.jsonl" | python3 -c 'import json,sys; print("\n".join(sorted(json.loads(l)["name"] for l in sys.stdin)))')
  same "second run: exactly the unfinished images" "$second_run" \
    "$(sort <(good_names | grep -vxF -f <(echo "$first_run")) <(bad_names))"
  twice=$(for n in $(good_names) $(bad_names); do [ "$(manifest count "$out" "$n")" -ge 2 ] && echo "$n"; done)
  same "ran twice: only the failed (corrupt) images" "$twice" "$(bad_names)"
  complete_sets "$out" $(good_names)
}
