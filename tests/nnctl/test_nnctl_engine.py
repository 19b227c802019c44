#!/usr/bin/env python3
"""nnctl plugins: the engine section (CPU, threads, OpenBLAS kernel,
provider rules) and a type's providers.  Expected values come from
/proc/cpuinfo, the environment given and the plugin files, never from
nnctl's own output."""

import json
import re
import os
import subprocess
import sys
import unittest

NNCTL = None
for _a in list(sys.argv[1:]):
    if _a.startswith("--nnctl="):
        NNCTL = _a[len("--nnctl="):]
        sys.argv.remove(_a)


def nnctl(*args, env=None, rc=0):
    e = dict(os.environ)
    e.pop("NN_PROVIDERS", None)
    # A machine may set OPENBLAS_CORETYPE for everyone (one here sets
    # Haswell); the tests that want it set it themselves.
    e.pop("OPENBLAS_CORETYPE", None)
    e.update(env or {})
    p = subprocess.run([NNCTL, *args], capture_output=True, text=True, env=e)
    if p.returncode != rc:
        raise AssertionError(f"nnctl {' '.join(args)}: exit {p.returncode}, want {rc}: {p.stderr}")
    return p.stdout, p.stderr


def cpuinfo(key):
    with open("/proc/cpuinfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k.strip() == key:
                return v.strip()
    return None


def plugin_names():
    out, _ = nnctl("plugins", "--json")
    return [p["name"] for p in json.loads(out)["plugins"]]


class TestEngineSection(unittest.TestCase):
    def test_cpu_and_threads(self):
        out, _ = nnctl("--threads", "3", "plugins", "--json")
        eng = json.loads(out)["engine"]
        self.assertEqual(eng["cpu"], cpuinfo("model name"))
        flags = set(cpuinfo("flags").split())
        for f in eng["cpu_features"].split():
            self.assertIn(f, flags)
        self.assertEqual(eng["threads"], 3)
        text, _ = nnctl("plugins")
        self.assertIn("Engine\n", text)
        self.assertIn("OpenBLAS kernel: ", text)

    def test_blas_kernel_is_reported_by_the_plugins(self):
        out, _ = nnctl("plugins", "--json", env={"OPENBLAS_CORETYPE": "Haswell"})
        eng = json.loads(out)["engine"]
        self.assertEqual(eng["blas_kernel"].lower(), "haswell")
        self.assertIn("OPENBLAS_CORETYPE=Haswell set by the user", eng["blas"])

    def test_weak_default_kernel_is_overridden(self):
        if "avx2" not in cpuinfo("flags").split():
            self.skipTest("no AVX2: nothing better than the fake default")
        out, _ = nnctl("plugins", "--json", env={"NN_BLAS_PROBE_CORENAME": "Prescott"})
        eng = json.loads(out)["engine"]
        self.assertNotEqual(eng["blas_kernel"].lower(), "prescott")
        self.assertIn("set by nnkit: OpenBLAS alone picks 'Prescott'", eng["blas"])

    def test_missing_probe_is_said_once(self):
        out, err = nnctl("plugins", env={"NN_BLAS_PROBE": "/nonexistent/probe"})
        self.assertEqual(err.count("nnkit: warning:"), 1, err)
        self.assertIn("warning: cannot tell which OpenBLAS kernel runs", out)

    def test_provider_rules_are_shown(self):
        out, _ = nnctl("plugins", "--json", env={"NN_PROVIDERS": "Conv2d=conv"})
        self.assertEqual(json.loads(out)["engine"]["provider_rules"], "Conv2d=conv")
        out, err = nnctl("plugins", env={"NN_PROVIDERS": "Conv2d="})
        self.assertIn("NN_PROVIDERS ignored: bad provider rule 'Conv2d='", err)


class TestProviders(unittest.TestCase):
    CFG = '{"in_channels": 3, "out_channels": 8, "kernel_size": 3}'

    def test_reference_is_listed_with_its_rank(self):
        out, _ = nnctl("plugins", "Conv2d", "--json", "--config", self.CFG)
        data = json.loads(out)
        provs = data["providers"]
        self.assertIn("conv", [p["plugin"] for p in provs])
        ranks = [p["rank"] for p in provs if not p["excluded"]]
        self.assertEqual(ranks, sorted(ranks, reverse=True))
        self.assertEqual(data["provider_for_config"], provs[0]["plugin"])
        for p in provs:
            self.assertTrue(os.path.isfile(p["file"]), p["file"])

    def test_exclusion_picks_the_reference(self):
        if "dnnl" not in plugin_names():
            self.skipTest("built without oneDNN")
        out, _ = nnctl("plugins", "Conv2d", "--json", "--config", self.CFG,
                       env={"NN_PROVIDERS": "-dnnl"})
        data = json.loads(out)
        self.assertEqual(data["provider_for_config"], "conv")
        dnnl = [p for p in data["providers"] if p["plugin"] == "dnnl"][0]
        self.assertTrue(dnnl["excluded"])
        text, _ = nnctl("plugins", "Conv2d", "--config", self.CFG,
                        env={"NN_PROVIDERS": "-dnnl"})
        self.assertIn("Provider for this config: conv", text)
        self.assertRegex(text, r"dnnl +rank 320 +\(excluded\)")

    def test_ops_list_their_providers(self):
        # Functional ops have providers too: matmul through its alias,
        # softmax; a per-type rule leaves one op to the reference.
        if "dnnl" not in plugin_names():
            self.skipTest("built without oneDNN")
        for name, ref in (("torch.matmul", "ops"), ("softmax", "ops"),
                          ("MultiheadAttention", "attention"), ("LayerNorm", "norm")):
            out, _ = nnctl("plugins", name, "--json")
            data = json.loads(out)
            provs = [(p["plugin"], p["rank"]) for p in data["providers"]]
            self.assertEqual(provs, [("dnnl", 320), (ref, 256)], name)
        out, _ = nnctl("plugins", "matmul", "--json", env={"NN_PROVIDERS": "matmul=-dnnl"})
        self.assertEqual(json.loads(out)["provider_for_config"], "ops")
        text, _ = nnctl("plugins", "bmm")
        self.assertRegex(text, r"dnnl +rank 320")
        self.assertRegex(text, r"ops +rank 256")

    def test_aliases_survive_a_provider_without_them(self):
        # oneDNN's pools declare no aliases of their own; the listing still
        # gives every spelling the reference registered (the exporter checks
        # its output against this map).
        if "dnnl" not in plugin_names():
            self.skipTest("built without oneDNN")
        out = nnctl("plugins", "--json")[0]
        # No key of the alias map is repeated (two providers, one type).
        json.loads(out, object_pairs_hook=lambda pairs: self.assertEqual(
            len(pairs), len({k for k, _ in pairs}), [k for k, _ in pairs]) or dict(pairs))
        data = json.loads(out)
        for alias, name in (("max_pool2d", "MaxPool2d"), ("avg_pool2d", "AvgPool2d")):
            self.assertEqual(data["aliases"].get(alias), name, alias)
        one = json.loads(nnctl("plugins", "MaxPool2d", "--json")[0])
        self.assertEqual(one["providers"][0]["plugin"], "dnnl")
        self.assertIn("max_pool2d", one["aliases"])
        text = nnctl("plugins", "MaxPool2d")[0]
        self.assertRegex(text, r"Aliases:\n  .*max_pool2d")

    def test_unsupported_config_falls_back(self):
        cfg = '{"in_channels": 3, "out_channels": 8, "kernel_size": 3, "padding": 1, "padding_mode": "reflect"}'
        out, _ = nnctl("plugins", "Conv2d", "--json", "--config", cfg)
        self.assertEqual(json.loads(out)["provider_for_config"], "conv")


class TestDnnlIsa(unittest.TestCase):
    def test_cpu_disable_caps_onednn(self):
        if "dnnl" not in plugin_names():
            self.skipTest("built without oneDNN")
        if "avx512f" not in cpuinfo("flags").split():
            self.skipTest("no AVX-512 to take away")
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "conv.json")
            with open(path, "w") as f:
                json.dump({"format": "nnkit", "version": 1, "model": {
                    "type": "Conv2d",
                    "config": {"in_channels": 3, "out_channels": 4, "kernel_size": 3}}}, f)
            args = ("run", path, "--random", "1,3,8,8", "--init-seed", "1")
            out, _ = nnctl(*args, env={"NN_CPU_DISABLE": "avx512f", "ONEDNN_VERBOSE": "1"})
            self.assertIn("isa:Intel AVX2\n", out)
            self.assertNotRegex(out, r"exec,cpu,convolution,[a-z_]+:avx512")
            out, _ = nnctl(*args, env={"ONEDNN_VERBOSE": "1"})
            self.assertNotIn("isa:Intel AVX2\n", out)

    def test_narrow_blocks_are_not_read_on_narrow_kernels(self):
        """A grouped convolution of 8 channels per group leaves its result
        in 8-channel blocks; the 1x1 convolution after it reorders that to
        a layout of AVX-512 kernels instead of reading it on AVX2 ones
        (dnnl_conv2d.c, conv_impl_vectorised)."""
        if "dnnl" not in plugin_names():
            self.skipTest("built without oneDNN")
        if "avx512f" not in cpuinfo("flags").split():
            self.skipTest("no AVX-512: AVX2 kernels are this CPU's widest")
        import tempfile

        def conv(name, cin, cout, k, groups=1):
            return {"name": name, "type": "Conv2d", "config": {
                "in_channels": cin, "out_channels": cout, "kernel_size": k,
                "padding": k // 2, "groups": groups}}
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "resnext.json")
            with open(path, "w") as f:
                json.dump({"format": "nnkit", "version": 1, "model": {
                    "type": "Sequential", "children": [
                        conv("0", 16, 64, 1), conv("1", 64, 64, 3, 8),
                        conv("2", 64, 128, 1), conv("3", 128, 128, 3, 16),
                        conv("4", 128, 64, 1)]}}, f)
            out, _ = nnctl("run", path, "--random", "1,16,14,14", "--init-seed", "1",
                           env={"ONEDNN_VERBOSE": "1"})
            kernels = re.findall(r"exec,cpu,convolution,([a-z_0-9]+:[a-z_0-9]+)", out)
            self.assertEqual(len(kernels), 5, out)
            self.assertEqual([k for k in kernels if not k.endswith("avx512_core")], [], kernels)


def read_safetensors(path):
    """{name: list of floats} of an F32 safetensors file, read here."""
    import struct
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        raw = data[8 + n + a:8 + n + b]
        out[k] = list(struct.unpack("<%df" % (len(raw) // 4), raw))
    return out


class TestFusion(unittest.TestCase):
    """nnctl run --fusions / --no-fuse (docs/ENGINE.md, "Fusion")."""

    MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "tiny.json")

    def run_tiny(self, tmp, *extra):
        path = os.path.join(tmp, "y.safetensors")
        out, _ = nnctl("run", "--init-seed", "3", self.MODEL, "--random", "2,1,8,8",
                       "--seed", "4", "--output", path, "--json", *extra)
        return json.loads(out), read_safetensors(path)["output"]

    def test_fused_groups_are_listed_and_agree_with_no_fuse(self):
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            fused, y = self.run_tiny(tmp, "--fusions")
            self.assertIn("conv1+bn1+relu", fused["fused"])
            self.assertIn("block.0+block.1", fused["fused"])
            # The residual add (an op step, named by the op) absorbs the ReLU.
            self.assertIn("add+relu", fused["fused"])
            plain, y0 = self.run_tiny(tmp, "--fusions", "--no-fuse")
            self.assertEqual(plain["fused"], [])
            self.assertEqual(len(y), len(y0))
            for a, b in zip(y, y0):
                self.assertLess(abs(a - b), 1e-5 * (1 + abs(b)))
            env_off, _ = nnctl("run", "--init-seed", "3", self.MODEL, "--random", "2,1,8,8",
                               "--fusions", env={"NN_FUSE": "off"})
            self.assertIn("fused: nothing", env_off)

    def test_no_layout_agrees(self):
        """--no-layout and NN_DNNL_LAYOUT=off give the layout run's values."""
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            _, y = self.run_tiny(tmp)
            _, y0 = self.run_tiny(tmp, "--no-layout")
            path = os.path.join(tmp, "y.safetensors")
            nnctl("run", "--init-seed", "3", self.MODEL, "--random", "2,1,8,8",
                  "--seed", "4", "--output", path, env={"NN_DNNL_LAYOUT": "off"})
            y1 = read_safetensors(path)["output"]
            self.assertEqual(len(y), len(y0))
            for a, b, c in zip(y, y0, y1):
                self.assertLess(abs(a - b), 1e-5 * (1 + abs(b)))
                self.assertEqual(b, c)

    def test_fusions_text_lines(self):
        text, _ = nnctl("run", "--init-seed", "3", self.MODEL, "--random", "1,1,8,8",
                        "--fusions", "--repeat", "2")
        self.assertIn("fused: conv1+bn1+relu\n", text)


if __name__ == "__main__":
    if not NNCTL:
        sys.exit("usage: test_nnctl_engine.py --nnctl=PATH")
    unittest.main()
