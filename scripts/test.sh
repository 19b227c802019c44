#!/bin/sh
# Sets up, builds and runs every test: once in build/ (all suites), then
# under ASan+UBSan in build-asan/ (all but the PyTorch conformance suites,
# which run minutes there).  Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
scripts/deps.sh test || exit 1

status=0
scripts/build.sh || exit 1
meson test -C build --print-errorlogs --num-processes 2 || status=1

NN_BUILD_DIR=build-asan scripts/build.sh -Db_sanitize=address,undefined \
  -Db_lundef=false -Dbuildtype=debug >/dev/null || exit 1
ASAN_OPTIONS=detect_leaks=1 meson test -C build-asan --print-errorlogs \
  --num-processes 2 --no-suite conformance --no-suite scenarios --no-suite install \
  --timeout-multiplier 3 || status=1

/usr/bin/python3 scripts/count_tests.py build/meson-logs/testlog.json \
  build-asan/meson-logs/testlog.json
exit $status
