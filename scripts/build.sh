#!/bin/sh
# Configures (once) and builds nnkit in $NN_BUILD_DIR (default: build/).
set -eu
cd "$(dirname "$0")/.."
dir=${NN_BUILD_DIR:-build}
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" "$@"
elif [ $# -gt 0 ]; then
  meson configure "$dir" "$@"
else
  meson setup --reconfigure "$dir" >/dev/null  # picks up newly added files
fi
ninja -C "$dir"
