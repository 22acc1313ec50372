#!/usr/bin/env bash
# Installs the Debian 12 packages ganinv needs to build, test and run its demo.
# Runs apt-get only when something is missing (uses sudo when not root).
set -euo pipefail
packages=(cmake g++ make pkg-config libeigen3-dev xtensor-dev xtl-dev libstb-dev catch2
          python3 python3-numpy python3-torch dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install_deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
