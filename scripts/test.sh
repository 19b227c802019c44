#!/bin/sh
# Sets up, builds and runs every test: once in build/ (all suites), then
# under ASan+UBSan in build-asan/ (all but the PyTorch conformance suites,
# which run minutes there), the core suites under ThreadSanitizer in
# build-tsan/, and each fuzz target for 20 s in build-fuzz/ (clang).
# Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
scripts/deps.sh test || exit 1

status=0
scripts/build.sh || exit 1
meson test -C build --print-errorlogs --num-processes 2 || status=1

NN_BUILD_DIR=build-asan scripts/build.sh -Db_sanitize=address,undefined \
  -Db_lundef=false -Dbuildtype=debug >/dev/null || exit 1
# LeakSanitizer cannot stop the OpenMP (libgomp) worker threads that oneDNN
# leaves running, and aborts at exit: the suites run on the reference
# providers with leak checks, the oneDNN provider's own test without them.
NN_PROVIDERS=-dnnl ASAN_OPTIONS=detect_leaks=1 meson test -C build-asan --print-errorlogs \
  --num-processes 2 --no-suite conformance --no-suite scenarios --no-suite install \
  --no-suite dnnl --timeout-multiplier 3 || status=1
# (The wrapper, since the tests' own environment sets ASAN_OPTIONS.)
meson test -C build-asan --print-errorlogs --no-rebuild \
  --wrapper 'env ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:allocator_may_return_null=1' \
  --num-processes 2 --suite dnnl --timeout-multiplier 3 \
  --logbase testlog-dnnl || status=1

# ThreadSanitizer: the core suites, the concurrency test among them.
# G_SLICE=always-malloc: GSlice's own magazines are invisible to TSan (GLib's
# locks are made visible by tests/tsan-glib.c).
NN_BUILD_DIR=build-tsan scripts/build.sh -Db_sanitize=thread -Db_lundef=false \
  >/dev/null || exit 1
# On the reference providers with one BLAS thread: libgomp (under oneDNN)
# and OpenBLAS's own workers are not instrumented, so TSan would report
# their internal hand-offs as races; the core's threads are what is checked.
NN_PROVIDERS=-dnnl G_SLICE=always-malloc TSAN_OPTIONS=halt_on_error=1 \
  meson test -C build-tsan --print-errorlogs --wrapper 'env NN_NUM_THREADS=1' \
  --num-processes 2 --suite core --timeout-multiplier 4 --logbase testlog-tsan \
  || status=1

# libFuzzer targets, 20 s each (docs/FUZZING.md); only they and the
# plugins are built there.
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang CXX=clang++ meson setup build-fuzz -Dfuzzing=true \
    -Db_sanitize=address,undefined -Db_lundef=false >/dev/null || exit 1
fi
ninja -C build-fuzz $(ninja -C build-fuzz -t targets all |
  sed -n 's/^\(\(plugins\/[^:]*\.so\)\|\(tests\/fuzz\/fuzz-[a-z]*\)\): .*/\1/p') \
  >/dev/null || exit 1
meson test -C build-fuzz --no-rebuild --print-errorlogs --suite fuzz || status=1

# meson names a wrapped run's log LOGBASE-env.json.
/usr/bin/python3 scripts/count_tests.py build/meson-logs/testlog.json \
  build-asan/meson-logs/testlog.json build-asan/meson-logs/testlog-dnnl-env.json \
  build-tsan/meson-logs/testlog-tsan-env.json \
  build-fuzz/meson-logs/testlog.json
exit $status
