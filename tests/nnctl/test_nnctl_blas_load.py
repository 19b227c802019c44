#!/usr/bin/env python3
"""OpenBLAS on first use (plugins/blas/nn-blas.c, docs/ENGINE.md): no
plugin lists OpenBLAS as a needed library, a model run on oneDNN never
loads it, and a layer that needs it when it cannot be loaded fails with
one error line naming the module and the library.  "Cannot be loaded" is
an empty libopenblas.so.0 first on LD_LIBRARY_PATH.  Expected outputs
come from the naive forward of nnctl_testlib, never from nnctl."""

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
    NnctlCase, flatten, nest, nnctl_binary, numel, read_safetensors,
    tiny_forward, valgrind_or_skip, write_safetensors, write_tiny)

SONAME = "libopenblas.so.0"


def needed(path):
    """The DT_NEEDED entries of an ELF file, as readelf prints them."""
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True,
                         check=True).stdout
    return [line.split("[", 1)[1].split("]", 1)[0]
            for line in out.splitlines() if "(NEEDED)" in line]


class TestOpenBlasOnFirstUse(NnctlCase):
    def setUp(self):
        super().setUp()
        broken = self.path("broken")
        os.makedirs(broken)
        open(os.path.join(broken, SONAME), "w").close()
        # OPENBLAS_CORETYPE set (even empty) skips the kernel probe, which
        # links OpenBLAS and would warn that it cannot start.
        self.no_blas = {"LD_LIBRARY_PATH": broken, "OPENBLAS_CORETYPE": "",
                        "XDG_CACHE_HOME": self.path("cache")}
        self.model, self.weights = write_tiny(self.tmp, seed=5)
        self.shape = [2, 1, 8, 8]
        rng = random.Random(7)
        self.x = [rng.uniform(-1, 1) for _ in range(numel(self.shape))]
        self.xin = self.path("x.safetensors")
        write_safetensors(self.xin, {"input": ("F32", self.shape, self.x)})

    def run_tiny(self, env):
        y = self.path("y.safetensors")
        self.nnctl("run", self.model, "--input", self.xin, "--output", y, env=env)
        got = read_safetensors(y)[0]["output"][2]
        want = flatten(tiny_forward(nest(self.x, self.shape), self.weights)[0])
        scale = max(1e-6, max(abs(v) for v in want))
        for i, (g, w) in enumerate(zip(got, want)):
            self.assertLessEqual(abs(g - w), 1e-4 * scale, f"output[{i}]: {g} vs {w}")

    def plugin_files(self):
        out, _ = self.nnctl("plugins", "--json")
        return {p["name"]: p["file"] for p in json.loads(out)["plugins"]}

    def test_no_plugin_links_openblas(self):
        files = self.plugin_files()
        self.assertIn("conv", files)
        for name, f in files.items():
            self.assertNotIn(SONAME, needed(f), f"plugin {name} ({f})")

    def test_a_model_on_onednn_runs_without_openblas(self):
        if "dnnl" not in self.plugin_files():
            self.skipTest("built without oneDNN")
        self.run_tiny(dict(self.no_blas, NN_PROVIDERS=""))

    def test_the_reference_providers_load_it_when_they_compute(self):
        self.run_tiny({"NN_PROVIDERS": "-dnnl"})

    def test_a_layer_that_needs_it_says_it_cannot_be_loaded(self):
        err = self.error("run", self.model, "--input", self.xin,
                         env=dict(self.no_blas, NN_PROVIDERS="-dnnl"))
        # The first layer computing with BLAS is conv1 (Conv2d).
        self.assertIn("conv1", err)
        self.assertIn(f"cannot load OpenBLAS ({SONAME})", err)
        self.assertIn("file too short", err)  # dlopen()'s own reason

    def test_the_failure_leaks_nothing_under_valgrind(self):
        # The reason is kept until the plugin unloads, and must go then.
        valgrind = valgrind_or_skip(self)
        p = subprocess.run(
            [valgrind, "-q", "--leak-check=full",
             "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=9",
             nnctl_binary(), "run", self.model, "--input", self.xin],
            capture_output=True, text=True, timeout=600,
            env=dict(os.environ, **self.no_blas, NN_PROVIDERS="-dnnl"))
        self.assertEqual(p.returncode, 1, p.stderr[-4000:])
        self.assertIn(f"cannot load OpenBLAS ({SONAME})", p.stderr)

    def test_plugins_says_the_kernel_is_unknown(self):
        out, _ = self.nnctl("plugins", env=self.no_blas)
        self.assertIn("OpenBLAS kernel: unknown (OpenBLAS cannot be loaded)", out)


if __name__ == "__main__":
    unittest.main()
