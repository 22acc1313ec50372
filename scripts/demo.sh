#!/usr/bin/env bash
# Builds the ganinv tool and runs the main job on the bundled demo model: writes pictures to out/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DGANINV_BUILD_TESTS=OFF -DGANINV_BUILD_BENCHMARKS=OFF
cmake --build build --target ganinv_cli -j"$(nproc)"
./build/examples/ganinv generate --model models/fmnist32.safetensors --seed 0 --count 16 --truncation-psi 0.7 \
    --grid --out out/samples.png --out-tensor out/samples.safetensors
echo "demo: open out/samples.png"
