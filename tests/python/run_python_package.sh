#!/usr/bin/env bash
# The python_package ctest: builds the Python package from the source tree the way a user does
# (`pip install .` into a venv) and runs its pytest suite (python/tests) against the ganinv tool.
# Usage: run_python_package.sh SOURCE_DIR WORK_DIR GANINV_CLI
# The venv and the extension's build folder live in WORK_DIR and are reused by later runs: only
# the first run fetches the build requirements (nanobind, scikit-build-core) with pip, and the
# extension is rebuilt only where its sources or the headers changed. NumPy, PyTorch and pytest
# come from the system (python3-numpy, python3-torch, python3-pytest; scripts/install_deps.sh).
# Env: GANINV_TEST_PYTHON (default /usr/bin/python3), CMAKE_CXX_COMPILER_LAUNCHER and
# CMAKE_CUDA_COMPILER_LAUNCHER (e.g. ccache), GANINV_PYTHON_CUDA (ON/OFF: build the CUDA path;
# unset: where nvcc is found, as a user's `pip install .`), GANINV_PYTHON_CUDA_ARCHITECTURES.
set -euo pipefail
src="$1" work="$2" cli="$3"
python="${GANINV_TEST_PYTHON:-/usr/bin/python3}"
venv="$work/venv"
mkdir -p "$work"

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv --system-site-packages "$venv" || {
    echo "python_package: '$python -m venv' failed (Debian: apt-get install python3-venv)" >&2
    exit 1
  }
fi
if ! "$venv/bin/python" -c "import nanobind, scikit_build_core" 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "nanobind>=2.0,<4" "scikit-build-core>=0.10,<2"
fi
"$venv/bin/python" -c "import pytest, numpy" 2>/dev/null ||
  "$venv/bin/pip" install --quiet --disable-pip-version-check pytest numpy

export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
start=$(date +%s)
settings=(--config-settings=build-dir="$work/build")
[ -n "${GANINV_PYTHON_CUDA:-}" ] && settings+=(--config-settings=cmake.define.GANINV_ENABLE_CUDA="$GANINV_PYTHON_CUDA")
[ -n "${GANINV_PYTHON_CUDA_ARCHITECTURES:-}" ] &&
  settings+=(--config-settings=cmake.define.CMAKE_CUDA_ARCHITECTURES="$GANINV_PYTHON_CUDA_ARCHITECTURES")
# --no-build-isolation: the build requirements above, so the build folder's CMake cache stays valid.
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-build-isolation --no-deps --force-reinstall \
  "${settings[@]}" "$src"
echo "python_package: pip install took $(( $(date +%s) - start )) s"

# Outside the source tree, so that `import ganinv` is the installed package.
cd "$work"
GANINV_CLI="$cli" GANINV_SOURCE_DIR="$src" "$venv/bin/python" -m pytest -q -p no:cacheprovider -rs "$src/python/tests"
