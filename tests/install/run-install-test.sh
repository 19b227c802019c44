#!/bin/bash
# Installs nnkit into a temporary prefix and checks that a third-party
# plugin and program build and run against the installed copy alone.
#
# usage: run-install-test.sh SOURCE_ROOT CHECK_CPP SANITIZE
#   SANITIZE: meson's b_sanitize value ("none", "address,undefined", ...);
#   the temporary builds use the same, so leaks are caught across plugins.
# Environment: MESON, NINJA, PKG_CONFIG, CC, CXX (set by tests/install/
# meson.build); NN_KEEP_TMP=1 keeps the temporary directory for debugging.
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 SOURCE_ROOT CHECK_CPP SANITIZE" >&2
  exit 2
fi
src=$(cd "$1" && pwd -P)
check_cpp=$2
sanitize=$3
MESON=${MESON:-meson}
NINJA=${NINJA:-ninja}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}
CXX=${CXX:-c++}

fail () { echo "install test: FAILED: $*" >&2; exit 1; }
step () { echo "== $*"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnkit-install.XXXXXX")
tmp=$(cd "$tmp" && pwd -P)
if [ "${NN_KEEP_TMP:-0}" = 1 ]; then
  trap 'echo "install test: kept $tmp"' EXIT
else
  trap 'rm -rf "$tmp"' EXIT
fi
case "$tmp/" in
  "$src"/*) fail "temporary directory $tmp lies inside the source tree $src" ;;
esac

# Runs a command quietly, showing its output only when it fails.
run_logged () {
  local log=$1; shift
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    fail "command failed: $*"
  fi
}

san_opts=()
san_flags=()
if [ "$sanitize" != none ] && [ -n "$sanitize" ]; then
  san_opts=("-Db_sanitize=$sanitize" -Db_lundef=false)
  san_flags=("-fsanitize=$sanitize" -fno-omit-frame-pointer)
fi

prefix=$tmp/prefix

step "meson install of $src into $prefix"
run_logged "$tmp/setup.log" "$MESON" setup "$tmp/nnkit-build" "$src" \
  --prefix "$prefix" --libdir lib -Dtests=false "${san_opts[@]}"
run_logged "$tmp/build.log" "$NINJA" -C "$tmp/nnkit-build"
run_logged "$tmp/install.log" "$MESON" install -C "$tmp/nnkit-build" --no-rebuild

step "installed layout"
plugindir_expected=$prefix/lib/nnkit-2/plugins
for f in include/nnkit/nnkit.h include/nnkit/plugin.h lib/libnnkit.so \
         lib/pkgconfig/nnkit.pc lib/nnkit-2/plugins/nn-conv.so \
         lib/nnkit-2/plugins/nn-norm.so lib/nnkit-2/plugins/nn-containers.so; do
  [ -e "$prefix/$f" ] || fail "meson install did not install $f"
done
# Core internals are never installed.
if find "$prefix/include" -name 'nn-*private*.h' | grep -q .; then
  fail "a private core header was installed under $prefix/include"
fi

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
plugindir=$("$PKG_CONFIG" --variable=plugindir nnkit)
[ "$plugindir" = "$plugindir_expected" ] ||
  fail "pkg-config plugindir is '$plugindir', expected '$plugindir_expected'"
# libzip is dlopen()ed by the core, so a plugin author needs no libzip-dev.
if grep -q zip "$prefix/lib/pkgconfig/nnkit.pc"; then
  fail "nnkit.pc names libzip: $(grep zip "$prefix/lib/pkgconfig/nnkit.pc")"
fi

# The example is copied out of the tree, so no relative path can reach back.
step "building examples/plugin out of tree against $prefix"
mkdir "$tmp/example-src"
find "$src/examples/plugin" -maxdepth 1 -type f -exec cp {} "$tmp/example-src/" \;
run_logged "$tmp/example-setup.log" "$MESON" setup "$tmp/example-build" \
  "$tmp/example-src" --prefix "$prefix" --libdir lib -Dwerror=true "${san_opts[@]}"
run_logged "$tmp/example-build.log" "$NINJA" -C "$tmp/example-build"
[ -f "$tmp/example-build/nn-example.so" ] || fail "the example built no nn-example.so"

# Its compile commands must see the installed headers and nothing of ours.
cc_json=$tmp/example-build/compile_commands.json
grep -q -- "-I$prefix/include" "$cc_json" ||
  fail "the example's compile commands lack -I$prefix/include (from nnkit.pc)"
if grep -F -q "$src" "$cc_json" "$tmp/example-build/build.ninja"; then
  grep -F "$src" "$cc_json" >&2 || true
  fail "the example's build refers to the source tree $src"
fi

step "building the check program with pkg-config nnkit"
cp "$check_cpp" "$tmp/check_installed.cpp"
cflags=$("$PKG_CONFIG" --cflags nnkit gtest_main)
libs=$("$PKG_CONFIG" --libs nnkit gtest_main)
case "$cflags $libs" in
  *"$src"*) fail "pkg-config flags refer to the source tree: $cflags $libs" ;;
esac
# shellcheck disable=SC2086 # the flags are word lists by design
run_logged "$tmp/check-build.log" $CXX -std=c++17 -g -O1 -Wall -Wextra \
  "${san_flags[@]}" "$tmp/check_installed.cpp" -o "$tmp/check_installed" \
  $cflags $libs -pthread "-Wl,-rpath,$prefix/lib"

common_env=(NN_OOT_PLUGINDIR="$plugindir" NN_OOT_WORKDIR="$tmp"
            NN_OOT_MODEL="$tmp/example-src/residual.json")

step "check: example plugin found through NN_PLUGIN_PATH"
env "${common_env[@]}" NN_OOT_MODE=uninstalled \
  NN_OOT_EXAMPLE_DIR="$tmp/example-build" NN_PLUGIN_PATH="$tmp/example-build" \
  "$tmp/check_installed" || fail "check program, uninstalled example"

step "meson install of the example into $plugindir"
run_logged "$tmp/example-install.log" "$MESON" install -C "$tmp/example-build" --no-rebuild
[ -f "$plugindir/nn-example.so" ] || fail "the example was not installed into $plugindir"

step "check: every plugin from the installed directory"
env -u NN_PLUGIN_PATH "${common_env[@]}" NN_OOT_MODE=installed \
  NN_OOT_EXAMPLE_DIR="$plugindir" \
  "$tmp/check_installed" || fail "check program, installed example"

# The installed nnctl finds libnnkit through its install rpath and the
# plugins through libnnkit's installed directory: PATH is all it gets.
step "installed nnctl with no environment beyond PATH"
bare=(env -i PATH="$prefix/bin:/usr/bin:/bin")
[ -x "$prefix/bin/nnctl" ] || fail "meson install did not install bin/nnctl"
"${bare[@]}" nnctl --version >"$tmp/version.txt" 2>&1 ||
  { cat "$tmp/version.txt" >&2; fail "installed nnctl --version failed"; }
grep -q '^nnctl .* (plugin ABI [0-9]*\.[0-9]*)$' "$tmp/version.txt" ||
  fail "nnctl --version printed: $(cat "$tmp/version.txt")"
"${bare[@]}" nnctl doctor --json >"$tmp/doctor.json" 2>"$tmp/doctor.err" ||
  { cat "$tmp/doctor.err" >&2; fail "installed nnctl doctor failed"; }
grep -q "\"dir\" : \"$plugindir\"" "$tmp/doctor.json" ||
  fail "doctor does not search $plugindir: $(cat "$tmp/doctor.json")"
grep -q '"failures" : \[\]' "$tmp/doctor.json" ||
  fail "doctor reports plugin failures: $(cat "$tmp/doctor.json")"
grep -q '"ScaledLeakyReLU" : "example"' "$tmp/doctor.json" ||
  fail "doctor does not show the installed example plugin providing ScaledLeakyReLU"
# Conv2d's provider: oneDNN's when it was built (it outranks the reference).
grep -Eq '"Conv2d" : "(conv|dnnl)"' "$tmp/doctor.json" ||
  fail "doctor does not show a built-in plugin (conv or dnnl) providing Conv2d"

echo "install test: passed"
