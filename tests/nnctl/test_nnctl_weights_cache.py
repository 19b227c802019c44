#!/usr/bin/env python3
"""The oneDNN provider's on-disk cache of reordered weights
(plugins/dnnl/dnnl_weights_cache.c), through `nnctl run` in fresh
processes: a miss writes entries, a hit gives the same output, and
changed weights, damaged entries, the size cap and NN_DNNL_WEIGHTS_CACHE=off
behave.  Expected outputs come from the naive forward of nnctl_testlib
(independent of nnkit), never from nnctl itself."""

import json
import os
import random
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
for _a in list(sys.argv[1:]):
    if _a.startswith("--nnctl="):
        os.environ["NNCTL"] = _a[len("--nnctl="):]
        sys.argv.remove(_a)
from nnctl_testlib import (  # noqa: E402
    NnctlCase, conv2d, nnctl_binary, flatten, make_weights, nest, numel, read_safetensors,
    tiny_forward, valgrind_or_skip, write_safetensors, write_tiny)


def dnnl_built(case):
    out, _ = case.nnctl("plugins")
    return "dnnl" in out


class TestWeightsCache(NnctlCase):
    def setUp(self):
        super().setUp()
        if not dnnl_built(self):
            self.skipTest("built without oneDNN")
        self.cache = self.path("cache")
        self.entries_dir = os.path.join(self.cache, "nnkit", "dnnl-weights")
        self.env = {"XDG_CACHE_HOME": self.cache, "NN_PROVIDERS": "",
                    "NN_DNNL_WEIGHTS_CACHE": "on"}
        self.shape = [2, 1, 8, 8]
        rng = random.Random(4)
        self.x = [rng.uniform(-1, 1) for _ in range(numel(self.shape))]
        self.xin = self.path("x.safetensors")
        write_safetensors(self.xin, {"input": ("F32", self.shape, self.x)})

    def entries(self):
        if not os.path.isdir(self.entries_dir):
            return []
        return sorted(n for n in os.listdir(self.entries_dir) if n.endswith(".w"))

    def run_model(self, model, weights, env=None):
        y = self.path("y.safetensors")
        self.nnctl("run", model, "--input", self.xin, "--output", y,
                   env=dict(self.env, **(env or {})))
        got = read_safetensors(y)[0]["output"][2]
        want, _ = tiny_forward(nest(self.x, self.shape), weights)
        want = flatten(want)
        scale = max(1e-6, max(abs(v) for v in want))
        for i, (g, w) in enumerate(zip(got, want)):
            self.assertLessEqual(abs(g - w), 1e-4 * scale, f"output[{i}]: {g} vs {w}")
        return got

    def test_miss_writes_entries_and_hit_gives_the_same_output(self):
        model, weights = write_tiny(self.tmp, seed=3)
        first = self.run_model(model, weights)
        names = self.entries()
        # tiny has two convolutions and two linear layers.
        self.assertGreaterEqual(len(names), 2, names)
        stamps = {n: os.path.getsize(os.path.join(self.entries_dir, n)) for n in names}
        second = self.run_model(model, weights)
        self.assertEqual(first, second)  # the very bytes: same layout, same values
        self.assertEqual(self.entries(), names)  # a hit writes nothing new
        for n in names:
            self.assertEqual(os.path.getsize(os.path.join(self.entries_dir, n)), stamps[n])

    def test_changed_weights_are_not_served_from_the_cache(self):
        model, weights = write_tiny(self.tmp, seed=3)
        self.run_model(model, weights)
        before = set(self.entries())
        model, weights = write_tiny(self.tmp, seed=9)  # same model, new values
        self.run_model(model, weights)
        self.assertTrue(set(self.entries()) - before, "new weights, new entries")

    def test_damaged_entries_are_ignored(self):
        model, weights = write_tiny(self.tmp, seed=3)
        self.run_model(model, weights)
        names = self.entries()
        for i, n in enumerate(names):
            p = os.path.join(self.entries_dir, n)
            with open(p, "r+b") as f:
                if i % 2:
                    f.truncate(os.path.getsize(p) - 4)   # short
                else:
                    f.write(b"not a cache entry")        # foreign header
        self.run_model(model, weights)  # reorders again, right output

    def test_damaged_contents_are_caught_by_the_checksum(self):
        # Header and size intact, one value changed: served as is, it
        # would be wrong weights without an error.
        model, weights = write_tiny(self.tmp, seed=3)
        self.run_model(model, weights)
        names = self.entries()
        originals = {}
        for n in names:
            p = os.path.join(self.entries_dir, n)
            with open(p, "rb") as f:
                originals[n] = f.read()
            with open(p, "r+b") as f:
                f.seek(4096 + 8)          # the first value page
                b = f.read(4)
                f.seek(4096 + 8)
                f.write(bytes([b[0] ^ 0x5A, b[1], b[2], b[3] ^ 0x40]))
        self.run_model(model, weights)  # checked against the naive forward
        # The miss reordered again and rewrote every entry whole.
        for n in names:
            with open(os.path.join(self.entries_dir, n), "rb") as f:
                self.assertEqual(f.read(), originals[n], n)

    def test_a_crashed_writers_temp_file_is_removed(self):
        os.makedirs(self.entries_dir, exist_ok=True)
        stale = os.path.join(self.entries_dir, "1" * 32 + ".w.Ab12Cd")
        fresh = os.path.join(self.entries_dir, "2" * 32 + ".w.Xy34Zw")
        other = os.path.join(self.entries_dir, "notes.txt")
        for p in (stale, fresh, other):
            with open(p, "wb") as f:
                f.write(b"\0" * 4096)
        os.utime(stale, (1, 1))        # a writer that died long ago
        model, weights = write_tiny(self.tmp, seed=3)
        self.run_model(model, weights)  # stores entries, trimming first
        self.assertFalse(os.path.exists(stale))
        self.assertTrue(os.path.exists(fresh))   # may be a live writer's
        self.assertTrue(os.path.exists(other))   # not ours

    def test_a_miss_and_a_hit_leak_nothing(self):
        # Under valgrind (scripts/deps.sh installs it): the miss reorders
        # and writes entries, the hit maps them; the plugin's tables of
        # mapped entries must go when it unloads.
        valgrind = valgrind_or_skip(self)
        model, weights = write_tiny(self.tmp, seed=3)
        for what in ("miss", "hit"):
            p = subprocess.run(
                [valgrind, "-q", "--leak-check=full",
                 "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=9",
                 nnctl_binary(), "run", model, "--input", self.xin],
                capture_output=True, text=True, timeout=600,
                env=dict(os.environ, **self.env))
            self.assertEqual(p.returncode, 0, f"{what}:\n{p.stderr[-4000:]}")
            self.assertTrue(self.entries(), what)

    def test_unwritable_directory_and_off_still_run(self):
        model, weights = write_tiny(self.tmp, seed=3)
        os.makedirs(os.path.dirname(self.entries_dir), exist_ok=True)
        with open(self.entries_dir, "w") as f:   # a file where the directory goes
            f.write("x")
        self.run_model(model, weights)
        os.unlink(self.entries_dir)
        self.run_model(model, weights, env={"NN_DNNL_WEIGHTS_CACHE": "off"})
        self.assertEqual(self.entries(), [])

    def test_cap_keeps_the_directory_small(self):
        model, weights = write_tiny(self.tmp, seed=3)
        self.run_model(model, weights, env={"NN_DNNL_WEIGHTS_CACHE_MB": "0"})
        self.assertEqual(self.entries(), [])  # nothing fits under 0 MB
        os.makedirs(self.entries_dir, exist_ok=True)
        old = os.path.join(self.entries_dir, "0" * 32 + ".w")
        with open(old, "wb") as f:
            f.write(b"\0" * (2 << 20))
        os.utime(old, (1, 1))  # least recently used
        self.run_model(model, weights, env={"NN_DNNL_WEIGHTS_CACHE_MB": "1"})
        self.assertFalse(os.path.exists(old))
        self.assertTrue(self.entries())

    def test_winograd_weights_are_cached_too(self):
        # A 3x3 stride-1 convolution of 16 channels at batch 2 and 8x8
        # (128 output pixels) runs Winograd on AVX-512 (docs/ENGINE.md,
        # "Choosing a convolution"); its transformed weights, 16/9 or more
        # of the plain ones, are an entry like any reorder.
        desc = {"format": "nnkit", "version": 2, "model": {
            "type": "Sequential", "children": [
                {"name": "0", "type": "Conv2d", "config": {
                    "in_channels": 16, "out_channels": 16, "kernel_size": 3,
                    "padding": 1}}]}}
        model = self.path("wino.json")
        with open(model, "w") as f:
            json.dump(desc, f)
        weights = make_weights(desc, 5)
        write_safetensors(self.path("wino.safetensors"), weights)
        shape = [2, 16, 8, 8]
        rng = random.Random(6)
        x = [rng.uniform(-1, 1) for _ in range(numel(shape))]
        xin = self.path("wx.safetensors")
        write_safetensors(xin, {"input": ("F32", shape, x)})
        want = flatten(conv2d(nest(x, shape), weights["0.weight"][2],
                              weights["0.bias"][2], 16, 16, 3, 1))
        scale = max(abs(v) for v in want)

        def run():
            y = self.path("wy.safetensors")
            self.nnctl("run", model, "--input", xin, "--output", y, env=self.env)
            got = read_safetensors(y)[0]["output"][2]
            for i, (g, w) in enumerate(zip(got, want)):
                self.assertLessEqual(abs(g - w), 1e-4 * scale, f"output[{i}]: {g} vs {w}")
            return got

        first = run()
        names = self.entries()
        self.assertEqual(len(names), 1, names)
        second = run()
        self.assertEqual(first, second)
        self.assertEqual(self.entries(), names)  # a hit writes nothing new
        with open("/proc/cpuinfo") as f:
            avx512 = " avx512f" in f.read()
        if avx512:
            size = os.path.getsize(os.path.join(self.entries_dir, names[0]))
            plain = 16 * 16 * 9 * 4
            self.assertGreater(size - 4096, plain * 3 // 2, "Winograd's weights")


if __name__ == "__main__":
    unittest.main()
