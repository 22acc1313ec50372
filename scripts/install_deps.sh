#!/usr/bin/env bash
# Installs the Debian 12 packages that one of the README's commands needs, and nothing more.
#   scripts/install_deps.sh demo   build the ganinv tool and run the main job (scripts/demo.sh):
#                                  cmake, g++, make, Eigen 3.4, stb
#   scripts/install_deps.sh test   everything the test suite uses (scripts/test.sh): the demo's
#                                  packages, Catch2, python3 + numpy + torch (converter tests),
#                                  python3-venv + python3-dev + pytest (the Python package test),
#                                  dataset-fashion-mnist (the bundled images are checked against
#                                  it) and chromium (cli_report_renders renders the HTML reports)
#                                  and Open MPI (cli_dataset_mpi runs ganinv invert under mpirun)
# Without an argument: test (everything). Runs apt-get only when something is missing (sudo when
# not root), so a machine where another session left packages behind gets only what it lacks.
set -euo pipefail
what="${1:-test}"
demo=(cmake g++ make libeigen3-dev libstb-dev)
case "$what" in
  demo) packages=("${demo[@]}") ;;
  test) packages=("${demo[@]}" catch2 python3 python3-numpy python3-torch python3-venv python3-dev python3-pytest dataset-fashion-mnist chromium
        libopenmpi-dev openmpi-bin) ;;
  *) echo "usage: $0 [demo|test]" >&2; exit 2 ;;
esac
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps ($what): all ${#packages[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install_deps ($what): installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
