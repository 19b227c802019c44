#!/usr/bin/env python3
"""nnctl: one test per command, and the error paths.  Expected values come
from the descriptor (walked here in Python), from PyTorch's definitions of
the layer types, and from a naive forward written in this test, never from
nnctl's own output."""

import glob
import json
import math
import os
import random
import shutil
import sys
import unittest
from array import array

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# meson passes the binary as --nnctl=PATH (read by nnctl_testlib).
for _a in list(sys.argv[1:]):
    if _a.startswith("--nnctl="):
        os.environ["NNCTL"] = _a[len("--nnctl="):]
        sys.argv.remove(_a)
from nnctl_testlib import (  # noqa: E402
    DATA_DIR, FIXTURE_DIR, NnctlCase, expected_tensors, file_bytes, flatten,
    make_weights, nest, numel, read_safetensors, require_add_op, state_dict_spec,
    tiny_descriptor, tiny_forward, walk_modules, write_safetensors,
    write_tiny)

COMMANDS = ["plugins", "show", "modules", "params", "get", "summary",
            "replace", "insert", "delete", "wrap", "run", "diff", "dot",
            "export"]

LINEAR_8_5 = '{"type": "Linear", "config": {"in_features": 8, "out_features": 5}}'


def random_input(shape, seed):
    rng = random.Random(seed)
    return [rng.uniform(-1, 1) for _ in range(numel(shape))]


class TestHelpAndUsage(NnctlCase):
    def test_global_help_lists_every_command(self):
        out, _ = self.nnctl("--help")
        for c in COMMANDS:
            self.assertRegex(out, rf"\n  {c} ", f"'{c}' missing from --help")
        self.assertIn("Exit codes: 0 success, 1 error, 2 bad usage", out)
        self.assertIn("--plugin-path", out)

    def test_command_help_has_examples(self):
        for c in COMMANDS:
            out, _ = self.nnctl(c, "--help")
            self.assertIn(f"nnctl {c}", out)
            self.assertIn("Examples:", out, f"nnctl {c} --help has no examples")
            out2, _ = self.nnctl("help", c)
            self.assertEqual(out, out2)

    def test_usage_errors_exit_2(self):
        self.assertIn("no command", self.error(rc=2))
        self.assertIn("'bogus' is not a command", self.error("bogus", rc=2))
        self.assertIn("did you mean 'show'", self.error("shwo", "x.json", rc=2))
        self.assertIn("expected MODEL", self.error("show", rc=2))
        self.assertIn("unexpected argument 'b.json'",
                      self.error("show", "a.json", "b.json", rc=2))
        self.assertIn("--depth", self.error("show", "--depth", "x", "a.json", rc=2))
        self.assertIn("--nope", self.error("show", "--nope", "a.json", rc=2))
        self.assertIn("--nope", self.error("--nope", "show", rc=2))
        self.assertIn("-o OUT is required",
                      self.error("delete", "a.json", "fc", rc=2))


class TestInspect(NnctlCase):
    def setUp(self):
        super().setUp()
        self.model, self.weights = write_tiny(self.tmp)
        self.desc = tiny_descriptor()

    def test_show(self):
        out, _ = self.nnctl("show", self.model)
        lines = out.splitlines()
        self.assertEqual(lines[0], "TinyNet(")
        self.assertEqual(lines[-1], ")")
        # Every child appears as "(name): " at its depth, in order.
        expect = [(p.split(".")[-1], d) for p, _, d in walk_modules(self.desc["model"]) if p]
        got = [(l.strip().split(")")[0][1:], (len(l) - len(l.lstrip())) // 2)
               for l in lines[1:-1] if l.strip().startswith("(")]
        self.assertEqual(got, expect)
        self.assertIn("(conv1): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), "
                      "padding=(1, 1), bias=False)", out)
        self.assertIn("(3): Linear(in_features=8, out_features=3, bias=True)", out)
        # --depth 1 folds the containers below the first level.
        short, _ = self.nnctl("show", self.model, "--depth", "1")
        self.assertLess(len(short.splitlines()), len(lines))
        self.assertNotIn("(0): Linear", short)
        # --json gives the descriptor, which loads back to the same text.
        desc_text, _ = self.nnctl("show", self.model, "--json")
        again = self.path("again.json")
        with open(again, "w") as f:
            f.write(desc_text)
        out2, _ = self.nnctl("show", again)
        self.assertEqual(out2, out)

    def test_modules(self):
        rows = self.nnctl_json("modules", self.model)
        walk = list(walk_modules(self.desc["model"]))
        self.assertEqual([r["path"] for r in rows], [p for p, _, _ in walk])
        self.assertEqual([r["index"] for r in rows], list(range(len(walk))))
        # Parameter counts: PyTorch's shapes, summed over the subtree.
        for r, (path, node, _) in zip(rows, walk):
            n = sum(numel(s) for _, nd, _ in walk_modules(node)
                    for _, s, _, b in expected_tensors(nd) if not b)
            self.assertEqual(r["params"], n, path)
            self.assertEqual(r["type"], node["type"])
        sel = self.nnctl_json("modules", self.model, "--glob", "head.*")
        self.assertEqual([r["path"] for r in sel], ["head.0", "head.1", "head.2", "head.3"])
        self.assertEqual([r["index"] for r in sel],
                         [p for p, (path, _, _) in enumerate(walk) if path.startswith("head.")])
        top = self.nnctl_json("modules", self.model, "--depth", "1")
        self.assertEqual([r["path"] for r in top], [p for p, _, d in walk if d <= 1])
        text, _ = self.nnctl("modules", self.model)
        self.assertIn("#12", text)
        self.assertIn("(root)", text)

    def test_params(self):
        spec = state_dict_spec(self.desc)
        data = self.nnctl_json("params", self.model)
        want = [(k, s, d) for k, s, d, b in spec if not b]
        self.assertEqual([(t["name"], t["shape"], t["dtype"]) for t in data["tensors"]], want)
        self.assertEqual(data["numel"], sum(numel(s) for _, s, _ in want))
        full = self.nnctl_json("params", self.model, "--buffers")
        self.assertEqual(sorted(t["name"] for t in full["tensors"]), sorted(k for k, _, _, _ in spec))
        nbt = [t for t in full["tensors"] if t["name"] == "bn1.num_batches_tracked"][0]
        self.assertEqual((nbt["shape"], nbt["dtype"], nbt["kind"]), ([], "I64", "buffer"))
        bias = self.nnctl_json("params", self.model, "--glob", "*.bias")
        self.assertEqual([t["name"] for t in bias["tensors"]],
                         [k for k, _, _, b in spec if k.endswith(".bias") and not b])
        text, _ = self.nnctl("params", self.model)
        self.assertIn(f"{len(want)} tensors", text)

    def test_get_by_path_and_index(self):
        walk = [p for p, _, _ in walk_modules(self.desc["model"])]
        by_path = self.nnctl_json("get", self.model, "block.0")
        idx = walk.index("block.0")
        by_index = self.nnctl_json("get", self.model, f"#{idx}")
        self.assertEqual(by_path, by_index)
        self.assertEqual(by_path["index"], idx)
        self.assertEqual(by_path["path"], "block.0")
        self.assertEqual(by_path["type"], "Conv2d")
        self.assertEqual(by_path["config"]["kernel_size"], [3, 3])
        self.assertEqual([t["name"] for t in by_path["tensors"]], ["block.0.weight", "block.0.bias"])
        # Negative Sequential index, as in Python.
        last = self.nnctl_json("get", self.model, "head.-1")
        self.assertEqual(last["path"], "head.3")
        text, _ = self.nnctl("get", self.model, "head")
        self.assertIn("index:    #8", text)
        self.assertIn("children: 4 (0, 1, 2, 3)", text)

    def test_get_param_writes_tensor(self):
        out = self.path("w.safetensors")
        self.nnctl("get", self.model, "head.0", "--param", "weight", "-o", out)
        tensors, _ = read_safetensors(out)
        self.assertEqual(list(tensors), ["head.0.weight"])
        dtype, shape, vals = tensors["head.0.weight"]
        self.assertEqual((dtype, shape), ("F32", [8, 4]))
        want = self.weights["head.0.weight"][2]
        self.assertEqual(vals, list(array("f", want)))
        # A full name works from the root too.
        out2 = self.path("b.safetensors")
        self.nnctl("get", self.model, "#0", "--param", "bn1.running_var", "-o", out2)
        self.assertEqual(read_safetensors(out2)[0]["bn1.running_var"][1], [4])
        err = self.error("get", self.model, "head.0", "--param", "wieght", "-o", out2)
        self.assertIn("no tensor 'wieght'", err)
        self.assertIn("weight, bias", err)

    def test_summary(self):
        data = self.nnctl_json("summary", self.model)
        self.assertEqual(data["input_shape"], [1, 1, 8, 8])
        rows = {r["path"]: r for r in data["rows"]}
        self.assertEqual(rows["conv1"]["output_shape"], [1, 4, 8, 8])
        self.assertEqual(rows["pool"]["output_shape"], [1, 4, 1, 1])
        self.assertEqual(rows["head.0"]["output_shape"], [1, 8])
        self.assertEqual(rows[""]["output_shape"], [1, 3])
        total = sum(numel(s) for _, s, _, b in state_dict_spec(self.desc) if not b)
        self.assertEqual(data["total_params"], total)
        # The shared relu is called twice and listed twice, as torchinfo does.
        self.assertEqual([r["path"] for r in data["rows"]].count("relu"), 2)
        big = self.nnctl_json("summary", self.model, "--input-shape", "2,1,16,16")
        self.assertEqual({r["path"]: r for r in big["rows"]}["conv1"]["output_shape"], [2, 4, 16, 16])
        text, _ = self.nnctl("summary", self.model)
        for s in ("Layer (type:depth-idx)", "Output Shape", "Param #", "Mult-Adds",
                  "├─Conv2d: 1-1", "│    └─Conv2d: 2-1", "Total params: ", "Trainable params",
                  "Non-trainable params: 0", "Input size (MB)", "Estimated Total Size (MB)"):
            self.assertIn(s, text)
        err = self.error("summary", self.model, "--input-shape", "1,3,8,8")
        self.assertIn("conv1", err)
        self.assertIn("[1, 3, 8, 8]", err)
        self.assertIn("--input-shape", self.error("summary", self.model, "--input-shape", "1,x", rc=2))

    def test_summary_mult_adds(self):
        data = self.nnctl_json("summary", self.model)
        rows = {r["path"]: r for r in data["rows"]}
        # torchinfo's counts: a conv's weight and bias elements times the
        # output positions (N x H x W); other layers' parameters times N.
        self.assertEqual(rows["conv1"]["mult_adds"], (4 * 1 * 9) * 8 * 8)
        self.assertEqual(rows["block.0"]["mult_adds"], (4 * 4 * 9 + 4) * 8 * 8)
        self.assertEqual(rows["head.3"]["mult_adds"], 8 * 3 + 3)

    def test_dot(self):
        out, _ = self.nnctl("dot", self.model)
        self.assertTrue(out.startswith("digraph"))
        for path, node, _ in walk_modules(self.desc["model"]):
            if path and not node.get("children"):
                self.assertIn(f'"{path.split(".")[-1]}: {node["type"]}', out)
        self.assertIn('label="block: Sequential"', out)
        self.assertIn('label="add"', out)  # Graph dataflow op node
        dotfile = self.path("m.dot")
        self.nnctl("--quiet", "dot", self.model, "-o", dotfile)
        self.assertEqual(file_bytes(dotfile).decode(), out)
        if shutil.which("dot"):
            import subprocess
            svg = subprocess.run(["dot", "-Tsvg", dotfile], capture_output=True)
            self.assertEqual(svg.returncode, 0, svg.stderr)
            self.assertIn(b"<svg", svg.stdout)


class TestRun(NnctlCase):
    def setUp(self):
        super().setUp()
        self.model, self.weights = write_tiny(self.tmp, seed=3)

    def check_close(self, got, want, what):
        self.assertEqual(len(got), len(want), what)
        scale = max(1e-6, max(abs(v) for v in want))
        for i, (g, w) in enumerate(zip(got, want)):
            self.assertLessEqual(abs(g - w), 1e-4 * scale, f"{what}[{i}]: {g} vs {w}")

    def test_run_input_output_matches_reference(self):
        shape = [2, 1, 8, 8]
        x = random_input(shape, 5)
        xin = self.path("x.safetensors")
        write_safetensors(xin, {"other": ("F32", [3], [1, 2, 3]), "images": ("F32", shape, x)})
        yout = self.path("y.safetensors")
        out, _ = self.nnctl("run", self.model, "--input", xin + ":images", "--output", yout,
                            "--topk", "2")
        self.assertIn("output: [2, 3]", out)
        want, _ = tiny_forward(nest(x, shape), self.weights)
        dtype, oshape, got = read_safetensors(yout)[0]["output"]
        self.assertEqual(oshape, [2, 3])
        self.check_close(got, flatten(want), "output")
        for r in range(2):
            order = sorted(range(3), key=lambda c: -want[r][c])[:2]
            self.assertIn(f"top-2 [{r}]: {order[0]} ", out)
        # A file with several tensors and none called "input" needs :NAME.
        err = self.error("run", self.model, "--input", xin)
        self.assertIn("images", err)
        self.assertIn(":NAME", err)
        err = self.error("run", self.model, "--input", xin + ":nope")
        self.assertIn("no tensor 'nope'", err)

    def test_run_hooks_capture_activations(self):
        shape = [1, 1, 8, 8]
        x = random_input(shape, 7)
        xin = self.path("x.safetensors")
        write_safetensors(xin, {"input": ("F32", shape, x)})
        acts = self.path("acts.safetensors")
        data = self.nnctl_json("run", self.model, "--input", xin, "--hook", "conv1",
                               "--hook", "block.*", "--save-activations", acts)
        self.assertEqual([a["name"] for a in data["activations"]], ["conv1", "block.0", "block.1"])
        _, ref = tiny_forward(nest(x, shape), self.weights)
        saved, _ = read_safetensors(acts)
        self.check_close(saved["conv1"][2], flatten(ref["conv1"]), "conv1")
        self.check_close(saved["block.0"][2], flatten(ref["block.0"]), "block.0")
        self.check_close(saved["block.1"][2], flatten(ref["block"]), "block.1")
        err = self.error("run", self.model, "--random", "1,1,8,8", "--hook", "nothing.here")
        self.assertIn("nothing.here", err)
        self.assertIn("--hook", self.error("run", self.model, "--random", "1,1,8,8",
                                           "--save-activations", acts, rc=2))

    def test_run_random_seed_and_repeat(self):
        a = self.path("a.safetensors")
        b = self.path("b.safetensors")
        c = self.path("c.safetensors")
        self.nnctl("run", self.model, "--random", "1,1,8,8", "--seed", "4", "--output", a)
        self.nnctl("run", self.model, "--random", "1,1,8,8", "--seed", "4", "--output", b)
        self.nnctl("run", self.model, "--random", "1,1,8,8", "--seed", "5", "--output", c)
        self.assertEqual(file_bytes(a), file_bytes(b))
        self.assertNotEqual(file_bytes(a), file_bytes(c))
        out, _ = self.nnctl("--threads", "1", "run", self.model, "--random", "1,1,8,8",
                            "--repeat", "5")
        self.assertRegex(out, r"median time: [0-9.]+ ms over 5 runs \(1 threads\)")
        data = self.nnctl_json("run", self.model, "--random", "3,1,8,8", "--topk", "1")
        self.assertEqual(data["output_shape"], [3, 3])
        self.assertEqual(len(data["topk"]), 3)

    def test_run_random_inputs_are_standard_normal(self):
        # An odd count: the last value of a pair of normals stands alone.
        model = self.path("identity.json")
        with open(model, "w") as f:
            json.dump({"format": "nnkit", "version": 1, "model": {"type": "Identity"}}, f)
        out = self.path("x.safetensors")
        self.nnctl("run", model, "--init-seed", "0", "--random", "1,20001", "--seed", "7",
                   "--output", out)
        tensors, _ = read_safetensors(out)
        (_, shape, x), = tensors.values()
        self.assertEqual(shape, [1, 20001])
        n = len(x)
        mean = sum(x) / n
        var = sum((v - mean) ** 2 for v in x) / n
        # N(0, 1): the mean within 5 standard errors, the variance within 5%.
        self.assertLess(abs(mean), 5 / n ** 0.5)
        self.assertLess(abs(var - 1), 0.05)
        # The shape too: 4.55% of N(0, 1) lies beyond 2 (binomial standard
        # error 0.15% here), 0.27% beyond 3.
        self.assertLess(abs(sum(abs(v) > 2 for v in x) / n - 0.0455), 0.0075)
        self.assertLess(abs(sum(abs(v) > 3 for v in x) / n - 0.0027), 0.0018)
        # Consecutive values (the two of a pair) are uncorrelated.
        cov = sum(x[i] * x[i + 1] for i in range(0, n - 1, 2)) / (n // 2)
        self.assertLess(abs(cov), 5 / (n // 2) ** 0.5)
        # Float32 draws may repeat by chance, but only rarely.
        self.assertGreater(len(set(x)), 0.99 * n)

    def test_run_bundled_samples(self):
        shape = [4, 1, 8, 8]
        x = random_input(shape, 9)
        want, _ = tiny_forward(nest(x, shape), self.weights)
        pred = [max(range(3), key=lambda c: row[c]) for row in want]
        labels = [pred[0], pred[1], (pred[2] + 1) % 3, pred[3]]
        write_safetensors(self.path("samples.safetensors"),
                          {"input": ("F32", shape, x), "labels": ("I64", [4], labels)})
        out, _ = self.nnctl("run", self.model)
        self.assertIn("accuracy: 3/4 = 75.0%", out)
        data = self.nnctl_json("run", self.model)
        self.assertEqual(data["predictions"], pred)
        self.assertAlmostEqual(data["accuracy"], 0.75)

    def test_run_errors(self):
        self.assertIn("no input", self.error("run", self.model, rc=2))
        err = self.error("run", self.model, "--random", "1,2,8,8")
        self.assertIn("conv1", err)
        self.assertIn("[1, 2, 8, 8]", err)
        self.assertIn("--random", self.error("run", self.model, "--random", "1,,8", rc=2))
        bad = self.path("bad.safetensors")
        with open(bad, "wb") as f:
            f.write(b"\xff" * 16)
        self.assertIn("bad.safetensors", self.error("run", self.model, "--input", bad))


class TestMultiInput(NnctlCase):
    """A Graph with two inputs (x: F32 [2, 4], ids: I64 [2, 3, 2]) returning
    {"logits": relu(lin(x)), "pair": (x, ids.flatten(1))}: inputs by file,
    by name and by random spec, output leaves named by their keys."""

    def setUp(self):
        super().setUp()
        with open(os.path.join(DATA_DIR, "two_inputs.json")) as f:
            self.desc = json.load(f)
        self.model = self.path("two.json")
        with open(self.model, "w") as f:
            json.dump(self.desc, f)
        self.weights = make_weights(self.desc, 11)
        write_safetensors(self.path("two.safetensors"), self.weights)
        rng = random.Random(2)
        self.x = [rng.uniform(-1, 1) for _ in range(8)]
        self.ids = [rng.randrange(0, 50) for _ in range(12)]

    def logits(self, x):
        w = self.weights
        z = [[sum(x[r * 4 + i] * w["lin.weight"][2][o * 4 + i] for i in range(4))
              + w["lin.bias"][2][o] for o in range(3)] for r in range(2)]
        return [max(v, 0.0) for row in z for v in row]

    def check_outputs(self, out_file, x, ids):
        got, _ = read_safetensors(out_file)
        self.assertEqual(sorted(got), ["output.logits", "output.pair.0", "output.pair.1"])
        dtype, shape, vals = got["output.logits"]
        self.assertEqual((dtype, shape), ("F32", [2, 3]))
        for g, w in zip(vals, self.logits(x)):
            self.assertAlmostEqual(g, w, places=5)
        self.assertEqual(got["output.pair.0"][:2], ("F32", [2, 4]))
        self.assertEqual(got["output.pair.0"][2], list(array("f", x)))
        self.assertEqual(got["output.pair.1"], ("I64", [2, 6], ids))

    def test_inputs_by_name_from_one_file(self):
        xin = self.path("in.safetensors")
        # Tensors named after the forward's arguments; others are not read.
        write_safetensors(xin, {"ids": ("I64", [2, 3, 2], self.ids),
                                "labels": ("I64", [2], [0, 1]),
                                "x": ("F32", [2, 4], self.x)})
        out = self.path("out.safetensors")
        text, _ = self.nnctl("run", self.model, "--input", xin, "-o", out)
        self.assertIn("output.logits: [2, 3]\n", text)
        self.assertIn("output.pair.1: [2, 6] I64\n", text)
        self.check_outputs(out, self.x, self.ids)
        data = self.nnctl_json("run", self.model, "--input", xin)
        self.assertEqual([o["name"] for o in data["outputs"]],
                         ["output.logits", "output.pair.0", "output.pair.1"])
        self.assertEqual([(i["name"], i["dtype"]) for i in data["inputs"]],
                         [("x", "F32"), ("ids", "I64")])
        self.assertNotIn("output_shape", data)  # not a single tensor

    def test_inputs_by_file_and_name(self):
        a, b = self.path("a.safetensors"), self.path("b.safetensors")
        write_safetensors(a, {"x": ("F32", [2, 4], self.x), "junk": ("F32", [1], [0])})
        write_safetensors(b, {"tokens": ("I64", [2, 3, 2], self.ids)})
        out = self.path("out.safetensors")
        # x by its name; "tokens" is no argument name, so it goes by position.
        self.nnctl("run", self.model, "--input", a + ":x", "--input", b + ":tokens", "-o", out)
        self.check_outputs(out, self.x, self.ids)
        # Positional in the order given, names ignored.
        write_safetensors(a, {"feat": ("F32", [2, 4], self.x)})
        self.nnctl("run", self.model, "--input", a + ":feat", "--input", b + ":tokens", "-o", out)
        self.check_outputs(out, self.x, self.ids)

    def test_random_specs_with_dtype_and_range(self):
        out = self.path("out.safetensors")
        self.nnctl("run", self.model, "--random", "x:float32:2,4:-3..-2",
                   "--random", "ids:int64:2,3,2:5..9", "--seed", "3", "-o", out)
        got, _ = read_safetensors(out)
        x = got["output.pair.0"][2]
        ids = got["output.pair.1"][2]
        self.assertTrue(all(-3 <= v < -2 for v in x), x)
        self.assertTrue(all(5 <= v < 9 for v in ids), ids)
        self.assertGreater(len(set(ids)), 1)
        for g, w in zip(got["output.logits"][2], self.logits(x)):
            self.assertAlmostEqual(g, w, places=5)
        # The same seed gives the same tensors; another seed others.
        again = self.path("again.safetensors")
        self.nnctl("run", self.model, "--random", "x:float32:2,4:-3..-2",
                   "--random", "ids:int64:2,3,2:5..9", "--seed", "3", "-o", again)
        self.assertEqual(file_bytes(out), file_bytes(again))
        other = self.path("other.safetensors")
        self.nnctl("run", self.model, "--random", "x:float32:2,4:-3..-2",
                   "--random", "ids:int64:2,3,2:5..9", "--seed", "4", "-o", other)
        self.assertNotEqual(file_bytes(out), file_bytes(other))

    def test_random_inputs_follow_the_recorded_spec(self):
        data = self.nnctl_json("run", self.model, "--random-inputs")
        outs = {o["name"]: o for o in data["outputs"]}
        self.assertEqual(outs["output.logits"]["shape"], [2, 3])
        self.assertEqual((outs["output.pair.1"]["shape"], outs["output.pair.1"]["dtype"]),
                         ([2, 6], "I64"))
        self.assertIn("--random-inputs", self.error("run", self.model, "--random-inputs",
                                                    "--random", "x:float32:2,4", rc=2))

    def test_input_errors(self):
        # An argument name the forward does not have.
        err = self.error("run", self.model, "--random", "x:float32:2,4",
                         "--random", "ids:int64:2,3,2", "--random", "z:float32:2")
        self.assertIn("'z'", err)
        # A dtype the layer does not accept names the module and argument.
        err = self.error("run", self.model, "--random", "x:int64:2,4",
                         "--random", "ids:int64:2,3,2")
        self.assertIn("lin", err)
        self.assertIn("expected dtype F32, found I64", err)
        # A missing input is named.
        self.assertIn("'ids'", self.error("run", self.model, "--random", "x:float32:2,4"))
        # Malformed specs are usage errors naming the option.
        for spec, what in (("x:float32", "NAME:DTYPE:SHAPE"),
                           ("x:complex64:2,4", "unknown dtype 'complex64'"),
                           ("x:float32:2,,4", "--random"),
                           ("x:float32:2,4:1..", "expected a range LO..HI"),
                           ("x:float32:2,4:3..1", "is empty"),
                           ("ids:int64:2,3,2:0.5..3", "integer bounds"),
                           ("ids:uint8:2,3,2:-1..3", "does not fit torch.uint8")):
            err = self.error("run", self.model, "--random", spec, rc=2)
            self.assertIn(what, err)
            self.assertIn("--random", err)
        err = self.error("run", self.model, "--random", "x:float32:2,4",
                         "--random", "x:float32:2,4", rc=2)
        self.assertIn("'x' given twice", err)
        # A file none of whose tensors is an argument lists what it has.
        f = self.path("f.safetensors")
        write_safetensors(f, {"a": ("F32", [1], [0]), "b": ("F32", [1], [0])})
        err = self.error("run", self.model, "--input", f)
        self.assertIn("a, b", err)
        self.assertIn("x, ids", err)
        self.assertIn(":NAME", err)

    def test_hooks_capture_every_output_leaf(self):
        # The two-input graph as a child "inner" of an outer Graph: its
        # dict-of-tuple result is captured leaf by leaf under its path.
        inner = dict(self.desc["model"], name="inner")
        inner.pop("class", None)
        outer = {"format": "nnkit", "version": 2, "inputs": self.desc["inputs"],
                 "model": {"type": "Graph", "class": "Outer",
                           "config": {"inputs": ["x", "ids"],
                                      "nodes": [{"name": "inner", "module": "inner",
                                                 "args": ["x", "ids"]}],
                                      "output": "inner"},
                           "children": [inner]}}
        model = self.path("outer.json")
        with open(model, "w") as f:
            json.dump(outer, f)
        weights = {"inner." + k: v for k, v in self.weights.items()}
        write_safetensors(self.path("outer.safetensors"), weights)
        xin = self.path("in.safetensors")
        write_safetensors(xin, {"x": ("F32", [2, 4], self.x), "ids": ("I64", [2, 3, 2], self.ids)})
        acts = self.path("acts.safetensors")
        data = self.nnctl_json("run", model, "--input", xin, "--hook", "inner",
                               "--hook", "inner.lin", "--save-activations", acts)
        self.assertEqual([a["name"] for a in data["activations"]],
                         ["inner.logits", "inner.pair.0", "inner.pair.1", "inner.lin"])
        saved, _ = read_safetensors(acts)
        self.assertEqual(saved["inner.pair.1"], ("I64", [2, 6], self.ids))
        for g, w in zip(saved["inner.logits"][2], self.logits(self.x)):
            self.assertAlmostEqual(g, w, places=5)
        text, _ = self.nnctl("run", model, "--input", xin, "--hook", "inner")
        self.assertIn("activation inner.pair.0: [2, 4]", text)

    def test_other_commands_on_two_inputs(self):
        out, _ = self.nnctl("show", self.model)
        self.assertTrue(out.startswith("TwoInputs("), out)
        self.assertIn("(lin): Linear(in_features=4, out_features=3, bias=True)", out)
        rows = self.nnctl_json("modules", self.model)
        self.assertEqual([r["path"] for r in rows], ["", "lin", "act", "keep"])
        # Surgery checks the change against both recorded inputs.
        wider = self.path("wider.json")
        self.nnctl("replace", self.model, "lin",
                   '{"type": "Linear", "config": {"in_features": 4, "out_features": 5}}',
                   "--seed", "1", "-o", wider)
        data = self.nnctl_json("run", wider, "--random-inputs")
        self.assertEqual(data["outputs"][0]["shape"], [2, 5])
        bad = self.path("bad.json")
        err = self.error("replace", self.model, "lin",
                         '{"type": "Linear", "config": {"in_features": 3, "out_features": 5}}',
                         "--seed", "1", "-o", bad)
        self.assertIn("lin", err)
        self.assertFalse(os.path.exists(bad))
        diff = self.nnctl_json("diff", self.model, wider)
        self.assertFalse(diff["same"])

    def test_result_without_tensors(self):
        self.desc["model"]["config"]["output"] = {"tuple": [3, None]}
        with open(self.model, "w") as f:
            json.dump(self.desc, f)
        out, _ = self.nnctl("run", self.model, "--random-inputs")
        self.assertEqual(out, "output: (3, None)\n")
        data = self.nnctl_json("run", self.model, "--random-inputs")
        self.assertEqual((data["outputs"], data["output_value"]), ([], "(3, None)"))
        err = self.error("run", self.model, "--random-inputs", "-o", self.path("o.safetensors"))
        self.assertIn("holds no tensor", err)
        self.assertFalse(os.path.exists(self.path("o.safetensors")))

    def test_summary_and_dot_with_two_inputs(self):
        data = self.nnctl_json("summary", self.model)
        rows = {r["path"]: r for r in data["rows"]}
        self.assertEqual(rows["lin"]["output_shape"], [2, 3])
        # Each row's input is its call's first tensor argument.
        self.assertEqual(rows["lin"]["input_shape"], [2, 4])
        self.assertEqual(rows["act"]["input_shape"], [2, 3])
        self.assertEqual(rows[""]["input_shape"], [2, 4])
        self.assertEqual(rows[""]["output_shape"], [2, 3])  # first leaf: logits
        self.assertEqual([(i["shape"], i["dtype"]) for i in data["inputs"]],
                         [([2, 4], "F32"), ([2, 3, 2], "I64")])
        # Input size counts each input at its own element size.
        self.assertEqual(data["input_size_bytes"], 2 * 4 * 4 + 12 * 8)
        big = self.nnctl_json("summary", self.model, "--input-spec", "x:float32:5,4",
                              "--input-spec", "ids:int64:5,1,7")
        self.assertEqual({r["path"]: r for r in big["rows"]}["lin"]["output_shape"], [5, 3])
        err = self.error("summary", self.model, "--input-spec", "x:float32", rc=2)
        self.assertIn("--input-spec", err)
        err = self.error("summary", self.model, "--input-spec", "x:float32:5,6",
                         "--input-spec", "ids:int64:5,1,7")
        self.assertIn("lin", err)
        dot, _ = self.nnctl("dot", self.model)
        self.assertIn("x [2, 4]", dot)
        self.assertIn("ids [2, 3, 2] I64", dot)
        self.assertIn('label="flatten"', dot)
        self.assertIn('"lin: Linear', dot)


class TestPlugins(NnctlCase):
    """The listing and one type's schema: no model needed."""

    def test_plugins(self):
        data = self.nnctl_json("plugins")
        names = [p["name"] for p in data["plugins"]]
        for fam in ("containers", "conv", "linear", "pool"):
            self.assertIn(fam, names)
        types = {t["name"] for p in data["plugins"] for t in p["types"]}
        for t in ("Sequential", "Conv2d", "Linear", "MaxPool2d", "BatchNorm2d"):
            self.assertIn(t, types)
        for p in data["plugins"]:
            self.assertTrue(os.path.isfile(p["file"]), p["file"])
        self.assertEqual(data["failures"], [])
        out, _ = self.nnctl("plugins")
        self.assertIn(f"{len(names)} plugins loaded", out)
        for p in data["plugins"]:
            self.assertIn(p["file"], out)

    def test_plugins_type_schema(self):
        conv = self.nnctl_json("plugins", "Conv2d")
        keys = {k["name"]: k for k in conv["keys"]}
        self.assertEqual(keys["kernel_size"]["kind"], "int tuple")
        self.assertEqual(keys["kernel_size"]["tuple_len"], 2)
        self.assertTrue(keys["in_channels"]["required"])
        self.assertFalse(keys["stride"]["required"])
        self.assertFalse(keys["bias"]["required"])
        self.assertEqual(keys["bias"]["default"], True)
        # The top-ranked provider describes the type (dnnl, when built);
        # the OpenBLAS reference is always among the providers.  Rules
        # (NN_PROVIDERS, as the sanitizer stages set) reorder the list only.
        self.assertIn(conv["plugin"], [p["plugin"] for p in conv["providers"]])
        if not os.environ.get("NN_PROVIDERS"):
            self.assertEqual(conv["plugin"], conv["providers"][0]["plugin"])
        self.assertIn({"plugin": "conv", "rank": 256},
                      [{"plugin": p["plugin"], "rank": p["rank"]} for p in conv["providers"]])
        # Tensors depend on the config: without one, it says so.
        self.assertIsInstance(conv["tensors"], str)
        self.assertIn("in_channels", conv["tensors"])
        # With a config, the shapes follow PyTorch's definition.
        cfg = {"in_channels": 6, "out_channels": 10, "kernel_size": [3, 5], "groups": 2}
        got = self.nnctl_json("plugins", "Conv2d", "--config", json.dumps(cfg))
        want = [(n, s) for n, s, _, _ in expected_tensors({"type": "Conv2d", "config": cfg})]
        self.assertEqual([(t["name"], t["shape"]) for t in got["tensors"]], want)
        # A type without required keys is shown with its default tensors.
        relu = self.nnctl_json("plugins", "ReLU")
        self.assertEqual(relu["tensors"], [])
        text, _ = self.nnctl("plugins", "Conv2d")
        for k in keys:
            self.assertIn(k, text)

    def test_plugins_unknown_type(self):
        err = self.error("plugins", "Conv4d")
        self.assertIn("Conv4d", err)
        self.assertIn("Conv2d", err)  # the known types are listed


class TestPluginSignatures(NnctlCase):
    def test_plugins_json_reports_signatures_and_aliases(self):
        data = self.nnctl_json("plugins")
        types = {t["name"]: t for p in data["plugins"] for t in p["types"]}
        relu = types["ReLU"]
        self.assertFalse(relu["op"])
        self.assertIn("torch.relu", relu["aliases"])
        self.assertEqual([a["name"] for a in relu["args"]], ["input", "inplace"])
        self.assertEqual(relu["args"][0]["kinds"], ["Tensor"])
        self.assertEqual(relu["args"][0]["dtypes"], ["F32"])
        self.assertTrue(relu["args"][0]["required"])
        self.assertFalse(relu["args"][1]["required"])
        self.assertIsNone(relu["args"][1]["default"])
        self.assertEqual(data["aliases"]["torch.flatten"], "Flatten")
        self.assertEqual(data["aliases"]["torch.nn.functional.adaptive_avg_pool2d"],
                         "AdaptiveAvgPool2d")
        flat = types["Flatten"]
        self.assertIn("I64", flat["args"][0]["dtypes"])
        self.assertEqual({k["name"] for k in flat["keys"]}, {"start_dim", "end_dim"})
        self.assertEqual(flat["schema"], ["start_dim", "end_dim"])
        self.assertEqual(types["Linear"]["schema"], ["in_features", "out_features", "bias"])
        # A default json-glib alone writes as the invalid number 1e-08.0.
        cos = {k["name"]: k for k in types["CosineSimilarity"]["keys"]}
        self.assertEqual(cos["eps"]["default"], 1e-08)
        # Every plugin lists its ops apart; each op is a type flagged op.
        for p in data["plugins"]:
            for op in p["ops"]:
                self.assertTrue(types[op]["op"], op)
                self.assertIn(op, [t["name"] for t in p["types"]])
        # One type as --json carries the same signature.
        one = self.nnctl_json("plugins", "Hardtanh")
        self.assertEqual([a["name"] for a in one["args"]],
                         ["input", "min_val", "max_val", "inplace"])
        self.assertIn("hardtanh", one["aliases"])
        # An alias resolves to its type.
        self.assertEqual(self.nnctl_json("plugins", "Tensor.relu")["type"], "ReLU")

    def test_plugins_text_shows_signature_and_aliases(self):
        text, _ = self.nnctl("plugins", "ReLU")
        self.assertIn("forward(input: Tensor[F32], inplace: bool | None = None)", text)
        self.assertIn("Aliases:", text)
        self.assertIn("torch.nn.functional.relu", text)
        self.assertIn("layer type", text)
        listing, _ = self.nnctl("plugins")
        self.assertIn("ReLU: relu, torch.relu", listing)


class TestSurgery(NnctlCase):
    def setUp(self):
        super().setUp()
        self.model, self.weights = write_tiny(self.tmp, seed=2)
        self.weights_file = self.path("tiny.safetensors")
        self.before = (file_bytes(self.model), file_bytes(self.weights_file))

    def assert_input_unchanged(self):
        self.assertEqual((file_bytes(self.model), file_bytes(self.weights_file)), self.before,
                         "the input model changed")

    def test_replace_keeps_other_weights(self):
        out = self.path("out.json")
        stdout, _ = self.nnctl("replace", self.model, "head.3", LINEAR_8_5, "--seed", "1", "-o", out)
        self.assertIn("replaced head.3", stdout)
        new, _ = read_safetensors(self.path("out.safetensors"))
        for key, (dtype, shape, vals) in self.weights.items():
            if key.startswith("head.3."):
                continue
            self.assertEqual(new[key][1], shape, key)
            self.assertEqual(new[key][2], read_safetensors(self.weights_file)[0][key][2], key)
        self.assertEqual(new["head.3.weight"][1], [5, 8])
        # PyTorch's Linear init: U(-1/sqrt(in), 1/sqrt(in)).
        bound = 1 / 8 ** 0.5
        self.assertTrue(all(abs(v) <= bound + 1e-7 for v in new["head.3.weight"][2]))
        self.assertGreater(len(set(new["head.3.weight"][2])), 1)
        data = self.nnctl_json("run", out, "--random", "1,1,8,8")
        self.assertEqual(data["output_shape"], [1, 5])
        self.assert_input_unchanged()
        # The same seed gives the same weights; --weights-from loads given ones.
        out2 = self.path("out2.safetensors")
        self.nnctl("replace", self.model, "#12", LINEAR_8_5, "--seed", "1", "-o", out2)
        diff = self.nnctl_json("diff", out, out2)
        self.assertTrue(diff["same"], diff)
        wfile = self.path("lin.safetensors")
        wvals = [0.01 * i for i in range(40)]
        write_safetensors(wfile, {"weight": ("F32", [5, 8], wvals), "bias": ("F32", [5], [1, 2, 3, 4, 5])})
        out3 = self.path("out3.json")
        self.nnctl("replace", self.model, "head.3", LINEAR_8_5, "--weights-from", wfile, "-o", out3)
        got = read_safetensors(self.path("out3.safetensors"))[0]
        self.assertEqual(got["head.3.bias"][2], [1, 2, 3, 4, 5])
        # Shape-preserving swap from a file with an @ reference.
        spec = self.path("conv.json")
        with open(spec, "w") as f:
            json.dump({"type": "Conv2d", "config": {"in_channels": 4, "out_channels": 4,
                                                    "kernel_size": 5, "padding": 2}}, f)
        out4 = self.path("out4.json")
        self.nnctl("--quiet", "replace", self.model, "block.0", "@" + spec, "-o", out4)
        self.assertEqual(self.nnctl_json("get", out4, "block.0")["config"]["kernel_size"], [5, 5])

    def test_insert_delete_wrap(self):
        a = self.path("a.json")
        self.nnctl("insert", self.model, "head", '{"type": "Softmax", "config": {"dim": 1}}', "-o", a)
        paths = [r["path"] for r in self.nnctl_json("modules", a)]
        self.assertEqual(paths[-5:], ["head.0", "head.1", "head.2", "head.3", "head.4"])
        b = self.path("b.json")
        self.nnctl("insert", a, "head", '{"type": "Identity"}', "--index", "-1", "--name", "mid", "-o", b)
        rows = [r for r in self.nnctl_json("modules", b) if r["path"].startswith("head.")]
        self.assertEqual([r["path"] for r in rows], ["head.0", "head.1", "head.2", "head.3", "head.mid", "head.4"])
        c = self.path("c.json")
        self.nnctl("delete", b, "head.2", "-o", c)
        rows = [r["path"] for r in self.nnctl_json("modules", c) if r["path"].startswith("head.")]
        self.assertEqual(rows, ["head.0", "head.1", "head.3", "head.mid", "head.4"])  # not renumbered
        d = self.path("d.safetensors")
        self.nnctl("wrap", c, "conv1", '{"type": "Identity"}', "--before", "-o", d)
        g = self.nnctl_json("get", d, "conv1")
        self.assertEqual((g["type"], g["children"]), ("Sequential", ["0", "1"]))
        self.assertEqual(self.nnctl_json("get", d, "conv1.1")["type"], "Conv2d")
        # Weights moved with the wrapped module; the output is unchanged.
        x = random_input([1, 1, 8, 8], 3)
        xin = self.path("x.safetensors")
        write_safetensors(xin, {"input": ("F32", [1, 1, 8, 8], x)})
        y1, y2 = self.path("y1.safetensors"), self.path("y2.safetensors")
        self.nnctl("run", self.model, "--input", xin, "--output", y1)
        self.nnctl("run", d, "--input", xin, "--output", y2)
        ref, _ = tiny_forward(nest(x, [1, 1, 8, 8]), self.weights)
        ref = flatten(ref)
        # d ends with the inserted Softmax(dim=1); Identity and the deleted
        # Dropout change nothing in eval.
        exps = [math.exp(v - max(ref)) for v in ref]
        soft = [e / sum(exps) for e in exps]
        for f, want in ((y1, ref), (y2, soft)):
            got = read_safetensors(f)[0]["output"][2]
            self.assertEqual(len(got), len(want))
            for g_, w_ in zip(got, want):
                self.assertAlmostEqual(g_, w_, places=4)
        self.assert_input_unchanged()

    def test_diff(self):
        same = self.nnctl_json("diff", self.model, self.model)
        self.assertTrue(same["same"])
        other = self.path("other.json")
        shutil.copy(self.model, other)
        w2 = make_weights(tiny_descriptor(), 2)
        w2["bn1.bias"] = ("F32", [4], [v + 0.25 for v in w2["bn1.bias"][2]])
        write_safetensors(self.path("other.safetensors"), w2)
        d = self.nnctl_json("diff", self.model, other)
        changed = {t["name"]: t for t in d["tensors"]}
        self.assertEqual(list(changed), ["bn1.bias"])
        self.assertAlmostEqual(changed["bn1.bias"]["max_abs_diff"], 0.25, places=5)
        out = self.path("r.json")
        self.nnctl("replace", self.model, "head.3", LINEAR_8_5, "-o", out)
        d = self.nnctl_json("diff", self.model, out)
        self.assertEqual([(m["path"], m["change"]) for m in d["modules"]], [("head.3", "changed")])
        self.assertEqual({t["name"]: t["change"] for t in d["tensors"]},
                         {"head.3.weight": "shape", "head.3.bias": "shape"})
        text, _ = self.nnctl("diff", self.model, out)
        self.assertIn("out_features 3 -> 5", text)

    def failing(self, args, *fragments, rc=1):
        """Runs a surgery that must fail: checks the message, that no
        output was written, and that the input is byte-identical."""
        out = self.path("out.json")
        err = self.error(*args, "-o", out, rc=rc)
        for frag in fragments:
            self.assertIn(frag, err)
        self.assertEqual(glob.glob(self.path("out*")), [], "an output file was written")
        self.assertEqual([f for f in os.listdir(self.tmp) if f.startswith(".")], [],
                         "a temporary file was left behind")
        self.assert_input_unchanged()
        return err

    def test_failing_surgeries_write_nothing(self):
        m = self.model
        conv5 = '{"type": "Conv2d", "config": {"in_channels": 1, "out_channels": 5, "kernel_size": 3, "padding": 1}}'
        # Shape break: the error names the module and both shapes.
        self.failing(["replace", m, "conv1", conv5], "bn1", "[1, 5, 8, 8]")
        self.failing(["insert", m, "head", '{"type": "Linear", "config": {"in_features": 7, "out_features": 2}}'],
                     "head", "[1, 3]")
        self.failing(["delete", m, "head.0"], "head.3", "[1, 4]")
        self.failing(["wrap", m, "head.0", '{"type": "Linear", "config": {"in_features": 7, "out_features": 8}}'],
                     "head.0", "[1, 8]")
        # Bad references.
        self.failing(["replace", m, "block.9", LINEAR_8_5], "block.9", "out of range")
        self.failing(["replace", m, "block.conv", LINEAR_8_5], "block.conv", "0, 1")
        self.failing(["replace", m, "nothere.x", LINEAR_8_5], "nothere", "conv1, bn1")
        self.failing(["replace", m, "#99", LINEAR_8_5], "#99", "#12")
        self.failing(["delete", m, "#-3"], "#-3")
        self.failing(["delete", m, "conv1"], "Sequential")
        # Bad JSON and bad descriptors.
        self.failing(["replace", m, "head.3", '{"type": "Linear",'], "malformed JSON")
        self.failing(["replace", m, "head.3", '{"type": "Linearr"}'], "unknown layer type 'Linearr'", "Linear")
        self.failing(["replace", m, "head.3", '{"type": "Linear", "config": {"in_feature": 8}}'],
                     "in_feature", "in_features")
        self.failing(["replace", m, "head.3", "@" + self.path("missing.json")], "missing.json")
        # Missing model file.
        self.failing(["replace", self.path("nope.json"), "head.3", LINEAR_8_5], "nope.json", "no such file")
        # Weights of the wrong shape for the new module.
        wfile = self.path("w.safetensors")
        write_safetensors(wfile, {"weight": ("F32", [3, 8], [0.0] * 24), "bias": ("F32", [3], [0.0] * 3)})
        self.failing(["replace", m, "head.3", LINEAR_8_5, "--weights-from", wfile], "weight", "[5, 8]")
        os.unlink(wfile)
        # Usage errors write nothing either.
        self.failing(["replace", m, "head.3", LINEAR_8_5, "--seed", "-1"], "--seed", rc=2)

    def test_unwritable_output(self):
        ro = self.path("ro")
        os.mkdir(ro)
        out = os.path.join(ro, "out.json")
        os.chmod(ro, 0o500)
        try:
            # root writes anywhere: then only the cases below apply.
            if not os.access(ro, os.W_OK):
                err = self.error("replace", self.model, "head.3", LINEAR_8_5, "-o", out)
                self.assertIn("ro/out", err)
                self.assertEqual(os.listdir(ro), [])
        finally:
            os.chmod(ro, 0o700)
        err = self.error("replace", self.model, "head.3", LINEAR_8_5, "-o",
                         self.path("no", "such", "dir", "out.json"))
        self.assertIn("no/such/dir", err)
        afile = self.path("plainfile")
        with open(afile, "w") as f:
            f.write("x")
        err = self.error("replace", self.model, "head.3", LINEAR_8_5, "-o",
                         os.path.join(afile, "out.safetensors"))
        self.assertIn("plainfile/out.safetensors", err)
        err = self.error("get", self.model, "conv1", "--param", "weight", "-o",
                         self.path("no", "dir", "w.safetensors"))
        self.assertIn("no/dir", err)
        self.assert_input_unchanged()

    def test_existing_output_survives_failure(self):
        out = self.path("keep.json")
        self.nnctl("replace", self.model, "head.3", LINEAR_8_5, "-o", out)
        kept = (file_bytes(out), file_bytes(self.path("keep.safetensors")))
        conv5 = '{"type": "Conv2d", "config": {"in_channels": 1, "out_channels": 5, "kernel_size": 3}}'
        self.error("replace", self.model, "conv1", conv5, "-o", out)
        self.assertEqual((file_bytes(out), file_bytes(self.path("keep.safetensors"))), kept)


class TestModelFiles(NnctlCase):
    def test_missing_and_malformed_models(self):
        self.assertIn("no such file", self.error("show", self.path("nope.json")))
        bad = self.path("bad.json")
        with open(bad, "w") as f:
            f.write('{"format": "nnkit", "version": 1, "model": {"type": ')
        self.assertIn("bad.json", self.error("show", bad))
        self.assertIn("bad.json", self.error("run", bad, "--random", "1,1,8,8", "--init-seed", "0"))
        unknown = self.path("unknown.json")
        desc = tiny_descriptor()
        desc["model"]["children"][0]["type"] = "Conv9d"
        with open(unknown, "w") as f:
            json.dump(desc, f)
        err = self.error("modules", unknown)
        self.assertIn("Conv9d", err)
        self.assertIn("conv1", err)

    def test_files_that_are_not_descriptors_are_named(self):
        # What a PyTorch user may pass by mistake: a torch.save() zip, a
        # legacy pickle, a plugin, random bytes.  Written here without torch.
        import pickle
        import zipfile
        ckpt = self.path("model.pth")
        with zipfile.ZipFile(ckpt, "w") as z:
            z.writestr("archive/data.pkl", pickle.dumps({"w": [1.0]}, protocol=2))
        legacy = self.path("legacy.pth")
        with open(legacy, "wb") as f:
            f.write(pickle.dumps({"w": [1.0]}, protocol=2))
        for path in (ckpt, legacy):
            err = self.error("show", path)
            self.assertIn(os.path.basename(path), err)
            self.assertIn("not a model descriptor (JSON text) but a PyTorch "
                          "checkpoint (torch.save()): give it as --weights", err)
        elf = self.path("plugin.so")
        with open(elf, "wb") as f:
            f.write(b"\x7fELF\x02\x01\x01" + bytes(64))
        self.assertIn("but an ELF binary", self.error("show", elf))
        blob = self.path("blob.bin")
        with open(blob, "wb") as f:
            f.write(bytes(range(256)))
        self.assertIn("blob.bin: not a model descriptor (JSON text) but binary data",
                      self.error("show", blob))
        # JSON text with a multi-byte character is still parsed as JSON.
        text = self.path("text.json")
        with open(text, "w", encoding="utf-8") as f:
            f.write('{"format": "nnkit", "version": 1, "model": {"type": "Bé"')
        self.assertIn("malformed JSON", self.error("show", text))

    def test_weightless_descriptor_needs_init_seed(self):
        require_add_op()
        model = self.path("tiny.json")
        shutil.copy(os.path.join(DATA_DIR, "tiny.json"), model)
        # Structure-only commands need no weights.
        self.nnctl("show", model)
        self.nnctl("modules", model)
        err = self.error("run", model, "--random", "1,1,8,8")
        self.assertIn("--init-seed", err)
        self.assertIn("tiny.safetensors", err)
        a, b, c = (self.path(n) for n in ("a.safetensors", "b.safetensors", "c.safetensors"))
        self.nnctl("run", model, "--init-seed", "1", "--random", "1,1,8,8", "--output", a)
        self.nnctl("run", model, "--init-seed", "1", "--random", "1,1,8,8", "--output", b)
        self.nnctl("run", model, "--init-seed", "2", "--random", "1,1,8,8", "--output", c)
        self.assertEqual(file_bytes(a), file_bytes(b))
        self.assertNotEqual(file_bytes(a), file_bytes(c))
        # --weights names the file explicitly.
        weights = make_weights(tiny_descriptor(), 4)
        wfile = self.path("elsewhere.safetensors")
        write_safetensors(wfile, weights)
        x = random_input([1, 1, 8, 8], 1)
        xin = self.path("x.safetensors")
        write_safetensors(xin, {"input": ("F32", [1, 1, 8, 8], x)})
        y = self.path("y.safetensors")
        self.nnctl("run", model, "--weights", wfile, "--input", xin, "--output", y)
        ref, _ = tiny_forward(nest(x, [1, 1, 8, 8]), weights)
        for g_, w_ in zip(read_safetensors(y)[0]["output"][2], flatten(ref)):
            self.assertAlmostEqual(g_, w_, places=4)
        # Weights that do not fit are reported with PyTorch's words.
        del weights["head.3.bias"]
        write_safetensors(wfile, weights)
        err = self.error("run", model, "--weights", wfile, "--random", "1,1,8,8")
        self.assertIn("head.3.bias", err)


class TestPluginPath(NnctlCase):
    def setUp(self):
        super().setUp()
        self.plugdir = self.path("plugins")
        os.mkdir(self.plugdir)
        for name in ("fixture-bad-magic.so", "fixture-undefined.so"):
            src = os.path.join(FIXTURE_DIR, name)
            if not os.path.exists(src):
                self.skipTest(f"fixture plugin {src} not built")
            shutil.copy(src, self.plugdir)

    def test_broken_plugin_is_listed_and_others_work(self):
        data = self.nnctl_json("--plugin-path", self.plugdir, "plugins")
        failed = {os.path.basename(f["file"]): f["error"] for f in data["failures"]}
        self.assertIn("fixture-bad-magic.so", failed)
        self.assertIn("magic", failed["fixture-bad-magic.so"])
        self.assertIn("fixture-undefined.so", failed)
        self.assertIn("undefined symbol", failed["fixture-undefined.so"])
        self.assertIn("conv", [p["name"] for p in data["plugins"]])
        text, _ = self.nnctl("-P", self.plugdir, "plugins")
        self.assertIn("2 plugins failed to load", text)
        # Other commands stay silent about it and work.
        model, _ = write_tiny(self.tmp)
        self.nnctl("--plugin-path", self.plugdir, "show", model)
        # An unknown type names the plugins that failed.
        err = self.error("--plugin-path", self.plugdir, "replace", model, "head.3",
                         '{"type": "Fancy"}', "-o", self.path("o.json"))
        self.assertIn("Fancy", err)
        self.assertIn("fixture-bad-magic", err)

    def test_plugin_path_must_be_a_directory(self):
        err = self.error("--plugin-path", self.path("none"), "plugins")
        self.assertIn("--plugin-path", err)
        self.assertIn("none", err)


class TestBundledDigits(NnctlCase):
    """The README's main job on examples/digits, when it is present."""

    def setUp(self):
        super().setUp()
        from nnctl_testlib import SOURCE_ROOT
        self.model = os.path.join(SOURCE_ROOT, "examples", "digits", "digits.json")
        self.samples = os.path.join(os.path.dirname(self.model), "samples.safetensors")
        if not (os.path.exists(self.model) and os.path.exists(self.samples)):
            self.skipTest("examples/digits is not there")

    def test_run_on_bundled_samples(self):
        data = self.nnctl_json("run", self.model)
        tensors, _ = read_safetensors(self.samples)
        labels = tensors["labels"][2]
        self.assertEqual(len(data["predictions"]), len(labels))
        right = sum(p == l for p, l in zip(data["predictions"], labels))
        self.assertAlmostEqual(data["accuracy"], right / len(labels))
        out, _ = self.nnctl("run", self.model)
        self.assertIn(f"accuracy: {right}/{len(labels)} = ", out)
        # The same through --input FILE:NAME and --output.
        y = self.path("y.safetensors")
        self.nnctl("run", self.model, "--input", self.samples + ":input", "--output", y)
        logits = read_safetensors(y)[0]["output"]
        n, c = logits[1]
        preds = [max(range(c), key=lambda k: logits[2][r * c + k]) for r in range(n)]
        self.assertEqual(preds, data["predictions"])


class TestExport(NnctlCase):
    def test_export_without_torch_says_so(self):
        fake = self.path("python3")
        with open(fake, "w") as f:
            f.write("#!/bin/sh\nexit 3\n")
        os.chmod(fake, 0o755)
        err = self.error("export", "resnet18", "-o", self.path("r.json"), env={"NNKIT_PYTHON": fake})
        self.assertEqual(err, "nnctl: export: python3-torch is not installed "
                              "(apt-get install python3-torch python3-torchvision)")
        self.assertFalse(os.path.exists(self.path("r.json")))
        self.assertIn("-o OUT", self.error("export", "resnet18", rc=2))


if __name__ == "__main__":
    unittest.main(verbosity=2)
