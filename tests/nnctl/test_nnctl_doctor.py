#!/usr/bin/python3
"""nnctl --version and nnctl doctor: version and ABI from the sources,
the plugin search path and where each plugin came from, CPU features
against /proc/cpuinfo, the OpenBLAS kernel, and each type's provider."""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
for _a in list(sys.argv[1:]):
    if _a.startswith("--nnctl="):
        os.environ["NNCTL"] = _a[len("--nnctl="):]
        sys.argv.remove(_a)

from nnctl_testlib import NnctlCase, SOURCE_ROOT, FIXTURE_DIR  # noqa: E402


def project_version():
    with open(os.path.join(SOURCE_ROOT, "meson.build")) as f:
        return re.search(r"version\s*:\s*'([^']+)'", f.read()).group(1)


def abi_version():
    with open(os.path.join(SOURCE_ROOT, "include", "nnkit", "export.h")) as f:
        text = f.read()
    major = re.search(r"#define NN_ABI_MAJOR (\d+)", text).group(1)
    minor = re.search(r"#define NN_ABI_MINOR (\d+)", text).group(1)
    return f"{major}.{minor}"


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


class Doctor(NnctlCase):

    def test_version(self):
        out, _ = self.nnctl("--version")
        self.assertEqual(out.strip(),
                         f"nnctl {project_version()} (plugin ABI {abi_version()})")

    def test_doctor_json(self):
        d = self.nnctl_json("doctor")
        self.assertEqual(d["version"], project_version())
        self.assertEqual(d["abi"], abi_version())
        dirs = [s["dir"] for s in d["search_path"]]
        self.assertTrue(dirs, "no plugin directory searched")
        # Every loaded plugin's file lies in a searched directory (or one
        # level below, the build tree's plugins/<family>/).
        for p in d["plugins"]:
            self.assertTrue(any(p["path"].startswith(x + os.sep) for x in dirs), p)
        names = {p["name"] for p in d["plugins"]}
        for t, prov in d["providers"].items():
            self.assertIn(prov, names, t)
        # CPU features as the kernel reports them.
        flags = cpu_flags()
        linux = {"SSE4.2": "sse4_2", "AVX": "avx", "AVX2": "avx2", "FMA": "fma",
                 "AVX-512F": "avx512f", "AVX-512BW": "avx512bw",
                 "AVX-512VNNI": "avx512_vnni", "AMX-TILE": "amx_tile",
                 "AMX-BF16": "amx_bf16", "AMX-INT8": "amx_int8"}
        for name, flag in linux.items():
            self.assertEqual(d["cpu_features"][name], flag in flags, name)
        self.assertTrue(d["blas"]["corename"], "OpenBLAS not found")
        self.assertIn("OpenBLAS", d["blas"]["config"])

    def test_doctor_plugin_path_first(self):
        fixtures = os.path.join(FIXTURE_DIR, "mix")
        if not os.path.isdir(fixtures):
            self.skipTest("fixture plugins not built")
        d = self.nnctl_json("--plugin-path", fixtures, "doctor")
        self.assertEqual(d["search_path"][0]["dir"], fixtures)
        self.assertFalse(d["search_path"][0]["missing"])

    def test_doctor_text(self):
        out, _ = self.nnctl("doctor")
        self.assertIn(f"nnctl {project_version()}, plugin ABI {abi_version()}", out)
        self.assertIn("plugin search path (in order):", out)
        self.assertRegex(out, r"CPU features: [+-]SSE4\.2")
        self.assertRegex(out, r"BLAS: OpenBLAS, kernel \S+")
        self.assertIn("type providers:", out)

    def test_doctor_takes_no_arguments(self):
        err = self.error("doctor", "extra", rc=2)
        self.assertIn("doctor", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
