#!/usr/bin/env bash
# The main job: installs what the demo needs, builds the ganinv tool (and nothing else) in build/,
# and inverts the eight bundled Fashion-MNIST test images with the bundled demo generator;
# pictures, codes, a summary and an HTML report go to out/invert/. Then the bundled encoder
# encodes the same images in one forward pass each (learning-based inversion): out/encode/.
# The CUDA part of the tool is built only for a GPU this machine has (scripts/cuda_config.sh:
# GANINV_CUDA=1 forces it, 0 turns it off); with one, the inversion runs on it.
# Env: GANINV_CMAKE_ARGS (extra configure arguments, e.g. "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache").
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
scripts/install_deps.sh demo
t1=$(date +%s)
source scripts/cuda_config.sh
echo "demo: $cuda_note"
# Tests and benchmarks stay off here; scripts/test.sh turns them on in the same folder and reuses
# the tool's objects.
# shellcheck disable=SC2086  # GANINV_CMAKE_ARGS is a list of arguments
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DGANINV_BUILD_TESTS=OFF -DGANINV_BUILD_BENCHMARKS=OFF \
  -DGANINV_BUILD_EXAMPLES=ON "${cuda_args[@]}" ${GANINV_CMAKE_ARGS:-}
cmake --build build --target ganinv_cli -j"$(nproc)"
t2=$(date +%s)
device=cpu
[ "$cuda_on" = 1 ] && [ "$cuda_gpu" = 1 ] && device=cuda
# Invert the eight bundled Fashion-MNIST test images (W+ space, Adam with the official projector
# schedule, MSE): codes, reconstructions, comparisons, loss curves, a summary and an HTML report.
./build/examples/ganinv invert --model models/fmnist32.safetensors --dir examples/images \
    --space wplus --optimizer adam --steps 500 --device "$device" --out out/invert --report
t3=$(date +%s)
# The same images through the bundled encoder (models/fmnist32_encoder.safetensors, docs/encoders.md):
# one forward pass per image instead of 500 optimisation steps, on the CPU.
./build/examples/ganinv encode --model models/fmnist32.safetensors --encoder models/fmnist32_encoder.safetensors \
    --dir examples/images --out out/encode
t4=$(date +%s)
echo "demo: install_deps $((t1 - t0)) s, configure + build $((t2 - t1)) s, inversion ($device) $((t3 - t2)) s," \
     "encoder $((t4 - t3)) s, total $((t4 - t0)) s"
echo "demo: open out/invert/overview.png (target | reconstruction | difference x4) or out/invert/report.html;"
echo "      out/encode/overview.png: the same images from the encoder's single pass"
