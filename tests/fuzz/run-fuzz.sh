#!/bin/sh
# run-fuzz.sh TARGET CORPUS SECONDS: runs a libFuzzer target for SECONDS
# over a scratch copy of CORPUS (new inputs never land in the source tree).
# A crash, leak or sanitizer report fails the test; libFuzzer saves the
# input as crash-* in the scratch directory and this script prints it.
set -u
target=$1 corpus=$2 seconds=$3
# meson passes the target relative to the build directory; we cd away.
case $target in /*) ;; *) target=$PWD/$target ;; esac
case $corpus in /*) ;; *) corpus=$PWD/$corpus ;; esac
work=$(mktemp -d "${TMPDIR:-/tmp}/nnkit-fuzz-XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
cd "$work" || exit 1
"$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -max_len=65536 -print_final_stats=1 "$work/corpus" "$corpus"
rc=$?
for f in crash-* leak-* timeout-* oom-*; do
  [ -e "$f" ] || continue
  echo "reproducer $f (base64):"
  base64 "$f"
done
exit $rc
