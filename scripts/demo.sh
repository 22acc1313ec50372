#!/usr/bin/env bash
# Builds the ganinv tool and runs the main job on the bundled demo model: writes pictures to out/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DGANINV_BUILD_TESTS=OFF -DGANINV_BUILD_BENCHMARKS=OFF
cmake --build build --target ganinv_cli -j"$(nproc)"
# Invert the eight bundled Fashion-MNIST test images (W+ space, Adam with the official projector
# schedule, MSE): codes, reconstructions, comparisons, loss curves, a summary and an HTML report.
./build/examples/ganinv invert --model models/fmnist32.safetensors --dir examples/images \
    --space wplus --optimizer adam --steps 500 --out out/invert --report
echo "demo: open out/invert/overview.png (target | reconstruction | difference x4) or out/invert/report.html"
