#!/usr/bin/python3
"""nnctl --version and nnctl doctor (version and ABI from the sources,
the plugin search path and where each plugin came from, CPU features
against /proc/cpuinfo, the OpenBLAS kernel, each type's provider), and
the weights commands on safetensors files written here (no torch needed):
convert, shards, params and diff on weights files, usage errors."""

import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
for _a in list(sys.argv[1:]):
    if _a.startswith("--nnctl="):
        os.environ["NNCTL"] = _a[len("--nnctl="):]
        sys.argv.remove(_a)

from nnctl_testlib import NnctlCase, SOURCE_ROOT, FIXTURE_DIR, \
    write_safetensors, read_safetensors  # noqa: E402


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

    def test_help_lists_the_commands(self):
        out, _ = self.nnctl("--help")
        for c in ("convert", "doctor"):
            self.assertRegex(out, rf"\n  {c} ")
            text, _ = self.nnctl(c, "--help")
            self.assertIn("Examples:", text)
            self.assertEqual(text, self.nnctl("help", c)[0])

    def test_doctor_takes_no_arguments(self):
        err = self.error("doctor", "extra", rc=2)
        self.assertIn("doctor", err)


class WeightsFiles(NnctlCase):

    def setUp(self):
        super().setUp()
        self.src = self.path("w.safetensors")
        self.tensors = {
            "module.a": ("F32", [3, 2], [0.5 * i - 1 for i in range(6)]),
            "module.b": ("I64", [2], [7, -3]),
            "module.c": ("F32", [1000], [i / 7 for i in range(1000)]),
        }
        write_safetensors(self.src, self.tensors)

    def test_convert_strips_and_renames(self):
        out = self.path("o.safetensors")
        stdout, _ = self.nnctl("convert", self.src, "-o", out)
        self.assertIn("every key started with 'module.'; stripped it", stdout)
        got, meta = read_safetensors(out)
        self.assertEqual(list(got), ["a", "b", "c"])
        for k, v in self.tensors.items():
            self.assertEqual(got[k[len("module."):]][2], read_safetensors(self.src)[0][k][2])
        self.nnctl("convert", self.src, "--no-auto-strip", "--add-prefix", "x.", "-o", out)
        self.assertEqual(list(read_safetensors(out)[0]), ["x.module.a", "x.module.b", "x.module.c"])
        out2, _ = self.nnctl("-q", "convert", self.src, "-o", out)
        self.assertEqual(out2, "")

    def test_shards_and_index_errors(self):
        index = self.path("m.safetensors.index.json")
        self.nnctl("convert", self.src, "--max-shard-size", "4KB", "--no-auto-strip",
                   "-o", self.path("m.safetensors"))
        with open(index) as f:
            idx = json.load(f)
        # 24 + 16 bytes, then 4000 bytes: a new shard when the next tensor
        # would pass 4000 bytes.
        self.assertEqual(idx["weight_map"], {
            "module.a": "m-00001-of-00002.safetensors",
            "module.b": "m-00001-of-00002.safetensors",
            "module.c": "m-00002-of-00002.safetensors"})
        self.assertEqual(idx["metadata"]["total_size"], 24 + 16 + 4000)
        d = self.nnctl_json("diff", self.src, index)
        self.assertTrue(d["same"])
        p = self.nnctl_json("params", index)
        self.assertEqual([t["name"] for t in p["tensors"]], ["a", "b", "c"])
        with open(self.path("bad.json"), "w") as f:
            json.dump({"weight_map": {"a": "../w.safetensors"}}, f)
        err = self.error("params", self.path("bad.json"))
        self.assertIn("expected a shard file name in the index's folder", err)
        os.remove(self.path("m-00002-of-00002.safetensors"))
        err = self.error("convert", index, "-o", self.path("x.safetensors"))
        self.assertIn("m-00002-of-00002.safetensors (holding 'module.c') does not exist", err)
        self.assertFalse(os.path.exists(self.path("x.safetensors")))

    def test_params_and_diff_on_weights_files(self):
        p = self.nnctl_json("params", self.src, "--glob", "?")
        self.assertEqual(len(p["tensors"]), 3)
        p = self.nnctl_json("params", self.src, "--glob", "a")
        self.assertEqual(p["tensors"], [{"name": "a", "kind": "tensor", "shape": [3, 2],
                                         "dtype": "F32", "numel": 6}])
        other = dict(self.tensors)
        other["module.a"] = ("F32", [3, 2], [0.5 * i - 1 for i in range(5)] + [9])
        del other["module.b"]
        write_safetensors(self.path("o.safetensors"), other)
        d = self.nnctl_json("diff", self.src, self.path("o.safetensors"))
        ch = {t["name"]: t for t in d["tensors"]}
        self.assertEqual(ch["a"]["change"], "changed")
        self.assertAlmostEqual(ch["a"]["max_abs_diff"], 9 - 1.5)
        self.assertEqual(ch["b"]["change"], "removed")
        out, _ = self.nnctl("diff", self.src, self.path("o.safetensors"))
        self.assertIn("summary: tensors 0 added, 1 removed, 0 reshaped, 1 changed, 1 identical",
                      out)

    def test_usage_errors(self):
        self.assertIn("-o OUT is required", self.error("convert", self.src, rc=2))
        err = self.error("convert", self.src, "-o", self.path("x.pth"), rc=2)
        self.assertIn("nnctl writes safetensors", err)
        err = self.error("convert", self.src, "--max-shard-size", "0", "-o",
                         self.path("x.safetensors"), rc=2)
        self.assertIn("expected a size such as 500MB", err)
        err = self.error("convert", self.src, "--key", "state_dict", "-o",
                         self.path("x.safetensors"))
        self.assertIn("applies to torch.save files", err)
        err = self.error("convert", self.path("nope.pth"), "-o", self.path("x.safetensors"))
        self.assertIn("nope.pth: cannot open", err)
        junk = self.path("junk.bin")
        with open(junk, "wb") as f:
            f.write(b"\xff" * 32)
        err = self.error("convert", junk, "-o", self.path("x.safetensors"))
        self.assertIn("not a weights file", err)
        self.assertFalse(os.path.exists(self.path("x.safetensors")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
