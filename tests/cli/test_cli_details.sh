#!/usr/bin/env bash
# CLI details (issue 12): output formats follow the extension, every argument is checked before
# any output exists, --version, --help usage lines name every option (and the README's copies
# match them), metrics say their domain and reproduce invert's float scores from a code, and the
# edit report's alpha-0 change is inf.
# Usage: test_cli_details.sh GANINV_BINARY MODEL DATA_DIR WORK_DIR README VERSION
set -u
bin="$1"; model="$2"; data="$3"; work="$4"; readme="$5"; version="$6"
rm -rf "$work"; mkdir -p "$work"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
source "$(dirname "$0")/cli_check.sh"
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
magic() {  # magic FILE HEX: the file starts with these bytes
  [ "$(head -c $((${#2} / 2)) "$1" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = "$2" ] && ok || fail "$1 does not start with $2"
}
absent() { [ ! -e "$1" ] && ok || fail "$1 exists"; }
a="$data/fmnist/test_0000.png"

# ---------------------------------------------------------------- --version
check "--version" 0 "^ganinv $version " -- "$bin" --version

# ---------------------------------------------------------------- formats by extension
check "generate bmp" 0 "wrote" -- "$bin" generate --model "$model" --seed 1 --out "$work/g.bmp"
magic "$work/g.bmp" 424d
check "generate jpg grid" 0 "wrote" -- "$bin" generate --model "$model" --seed 1 --count 2 --grid --out "$work/g.jpg"
magic "$work/g.jpg" ffd8ff
check "generate png" 0 "wrote" -- "$bin" generate --model "$model" --seed 1 --out "$work/g.PNG"
magic "$work/g.PNG" 89504e47
check "generate unknown extension" 2 "cannot tell the image format from the extension '.tiff'" -- "$bin" generate --model "$model" --seed 1 --out "$work/g.tiff"
absent "$work/g.tiff"
check "interpolate jpg" 0 "strip" -- "$bin" interpolate --model "$model" --from seed 1 --to seed 2 --frames 3 --out "$work/i.jpeg"
magic "$work/i.jpeg" ffd8ff
check "interpolate bmp" 0 "strip" -- "$bin" interpolate --model "$model" --from seed 1 --to seed 2 --frames 3 --out "$work/i.bmp"
magic "$work/i.bmp" 424d
check "interpolate unknown extension" 2 "extension '.webp'.*\.gif" -- "$bin" interpolate --model "$model" --from seed 1 --to seed 2 --out "$work/i.webp"
check "interpolate --gif must be a gif" 2 "name it \*\.gif" -- "$bin" interpolate --model "$model" --from seed 1 --to seed 2 --out "$work/i.png" --gif "$work/i.png"
check "directions preview bmp" 0 "wrote" -- "$bin" directions --model "$model" --method sefa --count 2 --samples 50 --out "$work/d.safetensors" --preview "$work/d.bmp" --preview-steps 3
magic "$work/d.bmp" 424d
check "directions preview unknown extension, before any output" 2 "extension '.gifx'" -- "$bin" directions --model "$model" --method sefa --count 2 --out "$work/d2.safetensors" --preview "$work/d.gifx"
absent "$work/d2.safetensors"

# ---------------------------------------------------------------- arguments checked before any output
check "invert unknown space leaves no folder" 2 "unknown space 'foo'" -- "$bin" invert --model "$model" --image "$a" --out "$work/no1" --space foo
absent "$work/no1"
check "invert unknown optimizer leaves no folder" 2 "unknown optimizer 'sgd'" -- "$bin" invert --model "$model" --image "$a" --out "$work/no2" --optimizer sgd
absent "$work/no2"
check "invert bad init file leaves no folder" 1 "nope.safetensors" -- "$bin" invert --model "$model" --image "$a" --out "$work/no3" --init "$work/nope.safetensors"
absent "$work/no3"
check "invert --batch 0" 2 "--batch must be >= 1, got 0" -- "$bin" invert --model "$model" --image "$a" --out "$work/no4" --batch 0
absent "$work/no4"
check "generate --batch 0" 2 "--batch must be >= 1" -- "$bin" generate --model "$model" --seed 1 --out "$work/no5.png" --batch 0
absent "$work/no5.png"
check "restore --batch -1" 2 "--batch must be >= 1" -- "$bin" restore --task inpaint --model "$model" --image "$a" --out "$work/no6" --batch -1
absent "$work/no6"
check "invert --image DIR" 2 "is a directory, not an image file; use --dir" -- "$bin" invert --model "$model" --image "$data/fmnist" --out "$work/no7"
absent "$work/no7"
echo x > "$work/file"
check "invert --out is a file" 2 "exists and is not a directory" -- "$bin" invert --model "$model" --image "$a" --out "$work/file"
check "edit bad --mix-layers leaves no folder" 2 "mix-layers" -- "$bin" edit --model "$model" --seed 1 --out "$work/no8" --direction sefa:0 --samples 50 --mix seed:2 --mix-layers 5:99
absent "$work/no8"
check "edit missing --mix code leaves no folder" 1 "nope.safetensors" -- "$bin" edit --model "$model" --seed 1 --out "$work/no9" --direction sefa:0 --samples 50 --mix "$work/nope.safetensors"
absent "$work/no9"

# ---------------------------------------------------------------- invert summary headers, metrics domains
check "invert summary says float scores and per-batch time" 0 "float \[-1, 1\].*" -- "$bin" invert --model "$model" --image "$a" "$data/fmnist/test_0001.png" --out "$work/inv" --steps 3 --batch 2
grep -q "s (batch / n)" "$work/inv/summary.md" && ok || fail "summary.md has no 's (batch / n)' column"
grep -q '"batch_seconds"' "$work/inv/summary.json" && ok || fail "summary.json has no batch_seconds"
grep -q '"metrics_domain": "float' "$work/inv/summary.json" && ok || fail "summary.json has no metrics_domain"
check "metrics of two PNGs says 8-bit" 0 "scores on 8-bit pixels, data range 255" -- "$bin" metrics "$work/g.PNG" "$work/inv/test_0000_recon.png"
check "metrics --code says float" 0 "scores on float images in \[-1, 1\]" -- "$bin" metrics --model "$model" --code "$work/inv/test_0000.safetensors" "$a"
# The float scores from the code reproduce invert's summary (same image, drawn at batch 1 instead of 2).
json=$("$bin" metrics --model "$model" --code "$work/inv/test_0000.safetensors" "$a" --json 2>/dev/null)
want=$(tr -d '\n ' < "$work/inv/summary.json" | grep -o '"name":"test_0000"[^}]*' | grep -o '"ssim":[-0-9.e+]*' | cut -d: -f2)
got=$(grep -o '"ssim": [-0-9.e+]*' <<<"$json" | cut -d' ' -f2)
awk -v a="$got" -v b="$want" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && b != "" && d < 1e-4) }' && ok || fail "metrics --code SSIM '$got' != invert's '$want'"
grep -q '"domain": "float"' <<<"$json" && ok || fail "metrics --code --json has no domain"
check "metrics --code needs --model" 2 "--code and --model go together" -- "$bin" metrics --code "$work/inv/test_0000.safetensors" "$a"

# ---------------------------------------------------------------- edit report: alpha 0 is inf
check "edit report" 0 "report.html" -- "$bin" edit --model "$model" --seed 3 --out "$work/e" --direction sefa:0 --stylespace b8.conv1:3 --alphas -2,0,2 --samples 100 --report
n_inf=$(grep -o '<td>inf</td>' "$work/e/report.html" | wc -l)
[ "$n_inf" -eq 2 ] && ok || fail "edit report: $n_inf of 2 alpha-0 cells say inf"

# ---------------------------------------------------------------- --help usage lines name every option
for cmd in $("$bin" --help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }'); do
  help=$("$bin" "$cmd" --help)
  usage=$(awk '/^$/ { exit } { print }' <<<"$help")
  for opt in $(awk '/^options:/ { on = 1; next } on && /^  --/ { print $1 }' <<<"$help"); do
    [ "$opt" = "--help" ] && continue
    grep -qE -- "${opt}([^a-z-]|$)" <<<"$usage" && ok || fail "ganinv $cmd --help: usage does not mention $opt"
  done
done
# The README's synopses are the tool's own (whitespace aside).
for cmd in invert generate tune; do
  want=$("$bin" "$cmd" --help | awk '/^$/ { exit } { print }' | sed 's/^usage: //' | tr -s ' \n' ' ' | sed 's/ $//')
  got=$(awk -v c="ganinv $cmd " 'index($0, c) == 1 { on = 1 } on && /^```/ { exit } on { print }' "$readme" | tr -s ' \n' ' ' | sed 's/ $//')
  [ "$got" = "$want" ] && ok || { fail "README's 'ganinv $cmd' synopsis differs from --help"; echo "  README: $got"; echo "  --help: $want"; }
done

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
