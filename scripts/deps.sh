#!/bin/sh
# Installs the Debian 12 packages nnkit needs, only those missing.
#   scripts/deps.sh build   compiler, meson, libraries (enough for the main job;
#                           libdnnl-dev and libxxhash-dev are optional:
#                           -Ddnnl=disabled builds without)
#   scripts/deps.sh test    build set + PyTorch (conformance tests), valgrind,
#                           clang with libFuzzer (fuzz targets)
set -eu

build_pkgs="gcc g++ meson ninja-build pkg-config libglib2.0-dev libjson-glib-dev \
libopenblas-dev libzip-dev libdnnl-dev libxxhash-dev libgtest-dev graphviz"
test_pkgs="$build_pkgs python3 python3-torch python3-torchvision python3-numpy valgrind \
clang libclang-rt-14-dev"

case "${1:-build}" in
  build) want=$build_pkgs ;;
  test) want=$test_pkgs ;;
  *) echo "usage: scripts/deps.sh build|test" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

echo "nnkit: installing missing packages:$missing"
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "nnkit: run as root to install:$missing" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# shellcheck disable=SC2086
$sudo apt-get install -y -q --no-install-recommends $missing
