#!/usr/bin/python3
"""Unit tests of tools/torch2nn: the safetensors reader/writer, the Graph
patterns (view -> flatten, mean -> pooling, in-place ops, list inputs),
shared modules, and the loud failures.  Exit 77 (skip) without torch."""

import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL_DIR = os.path.join(HERE, "..", "..", "tools", "torch2nn")
sys.path.insert(0, TOOL_DIR)

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:
    print(f"SKIP: {e}")
    sys.exit(77)

import nnexport  # noqa: E402
from nnexport import safetensors_io  # noqa: E402


def nodes_of(node):
    return node["config"]["nodes"]


def by_name(nodes, name):
    return next(n for n in nodes if n["name"] == name)


class Flat(nn.Module):
    def __init__(self, how):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 2)
        self.how = how

    def forward(self, x):
        x = self.conv(x)
        if self.how == "view":
            x = x.view(x.size(0), -1)
        elif self.how == "reshape":
            x = x.reshape(x.shape[0], -1)
        else:
            x = x.view(2, -1)
        return self.fc(x)


class InPlace(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x):
        a = self.conv(x)
        a.relu_()          # later reads of a see the relu
        b = self.bn(a)
        b += a             # iadd: b is the sum afterwards
        return b * x


class Mean(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 1)

    def forward(self, x):
        return self.conv(x).mean([2, 3])


class Layer(nn.Module):
    """Called with a list of tensors, like torchvision's _DenseLayer."""

    def __init__(self, cin):
        super().__init__()
        self.conv = nn.Conv2d(cin, 2, 1)

    def forward(self, inputs):
        return self.conv(torch.cat(inputs, 1))


class Block(nn.ModuleDict):
    def __init__(self):
        super().__init__({"l1": Layer(3), "l2": Layer(5)})

    def forward(self, x):
        feats = [x]
        for _, layer in self.items():
            feats.append(layer(feats))
        return torch.cat(feats, 1)


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Sequential(self.a, nn.ReLU())

    def forward(self, x):
        return self.b(self.a(x))


class OwnParam(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(3))
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return self.conv(x)


class Permute(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = nn.Sequential(nn.Conv2d(3, 3, 1))
        self.head = PermuteHead()

    def forward(self, x):
        return self.head(self.inner(x))


class PermuteHead(nn.Module):
    def forward(self, x):
        return x.permute(0, 2, 3, 1)


class RandomDropout(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return F.dropout(self.conv(x), 0.5)


class TestSafetensors(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "t.safetensors")

    def tearDown(self):
        self.dir.cleanup()

    def test_round_trip_keeps_order_dtypes_and_metadata(self):
        tensors = {"z.weight": torch.randn(3, 2), "a.count": torch.tensor(7),
                   "m.double": torch.randn(4, dtype=torch.float64)}
        safetensors_io.write(self.path, tensors, {"k": "v"})
        back, meta = safetensors_io.read(self.path)
        self.assertEqual(list(back), list(tensors))
        self.assertEqual(meta, {"k": "v"})
        for k, t in tensors.items():
            self.assertEqual(back[k].dtype, t.dtype)
            self.assertEqual(back[k].shape, t.shape)
            self.assertTrue(torch.equal(back[k], t))
        with open(self.path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
        self.assertEqual(n % 8, 0)

    def write_raw(self, header, data=b""):
        text = json.dumps(header).encode()
        with open(self.path, "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + data)

    def test_bad_files_raise_naming_the_file(self):
        cases = [
            ({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, "do not fit"),
            ({"x": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4, "unsupported dtype"),
            ({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
              "y": {"dtype": "F32", "shape": [1], "data_offsets": [2, 6]}}, b"\0" * 8, "overlap"),
        ]
        for header, data, msg in cases:
            self.write_raw(header, data)
            with self.assertRaises(safetensors_io.SafetensorsError) as cm:
                safetensors_io.read(self.path)
            self.assertIn(msg, str(cm.exception))
            self.assertIn(self.path, str(cm.exception))
        with open(self.path, "wb") as f:
            f.write(struct.pack("<Q", 1 << 40))
        with self.assertRaisesRegex(safetensors_io.SafetensorsError, "header length"):
            safetensors_io.read(self.path)


class TestGraphs(unittest.TestCase):
    def convert(self, model, shape=(1, 3, 8, 8)):
        return nnexport.convert(model, shape)[0]["model"]

    def test_view_and_reshape_of_batch_become_flatten(self):
        for how in ("view", "reshape"):
            nodes = nodes_of(self.convert(Flat(how)))
            flat = [n for n in nodes if n.get("op") == "flatten"]
            self.assertEqual(len(flat), 1, how)
            self.assertEqual(flat[0]["kwargs"], {"start_dim": 1, "end_dim": -1})
            self.assertEqual(flat[0]["args"], ["conv"])
            self.assertFalse(any(n.get("op") in ("size", "getattr") for n in nodes))

    def test_fixed_view_fails_naming_op(self):
        with self.assertRaisesRegex(nnexport.ExportError, r"<root>: Flat: op Tensor.view"):
            self.convert(Flat("fixed"), (2, 3, 8, 8))

    def test_inplace_ops_become_dataflow(self):
        nodes = nodes_of(self.convert(InPlace()))
        relu = next(n for n in nodes if n.get("op") == "relu")
        self.assertEqual(relu["args"], ["conv"])
        self.assertEqual(by_name(nodes, "bn")["args"], [relu["name"]])
        add = next(n for n in nodes if n.get("op") == "add")
        self.assertEqual(add["args"], ["bn", relu["name"]])
        mul = next(n for n in nodes if n.get("op") == "mul")
        self.assertEqual(mul["args"], [add["name"], "x"])

    def test_spatial_mean_is_pool_then_flatten(self):
        nodes = nodes_of(self.convert(Mean()))
        self.assertEqual([n.get("op") for n in nodes[1:]], ["adaptive_avg_pool2d", "flatten"])
        self.assertEqual(nodes[1]["kwargs"], {"output_size": 1})

    def test_list_input_child_gets_the_concatenation(self):
        root = self.convert(Block())
        nodes = nodes_of(root)
        self.assertEqual([n.get("op") or n["module"] for n in nodes],
                         ["cat", "l1", "cat", "l2", "cat"])
        self.assertEqual(nodes[2]["args"], ["x", "l1"])
        self.assertEqual(nodes[2]["kwargs"], {"dim": 1})
        l2 = root["children"][1]
        self.assertEqual(nodes_of(l2), [{"name": "conv", "module": "conv", "args": ["inputs"]}])
        self.assertEqual(l2["config"]["inputs"], ["inputs"])

    def test_shared_module_is_a_ref_to_its_first_path(self):
        root = self.convert(Shared(), (2, 4))
        b = root["children"][1]
        self.assertEqual(b["children"][0], {"name": "0", "ref": "a"})
        keys = list(nnexport.convert(Shared(), (2, 4))[1])
        self.assertEqual(keys, ["a.weight", "a.bias", "b.0.weight", "b.0.bias"])

    def test_sequential_subclass_keeps_class(self):
        class Stem(nn.Sequential):
            pass
        root = self.convert(nn.Sequential(Stem(nn.Conv2d(3, 3, 1), nn.ReLU())))
        self.assertEqual(root["children"][0]["type"], "Sequential")
        self.assertEqual(root["children"][0]["class"], "Stem")

    def test_loud_failures_name_path_and_cause(self):
        cases = [
            (OwnParam(), r"<root>: OwnParam has its own parameters or buffers \['scale'\]"),
            (Permute(), r"head: PermuteHead: op Tensor.permute \(permute\) is not supported"),
            (RandomDropout(), r"op torch.nn.functional.dropout .*training=True"),
            (nn.Sequential(nn.LeakyReLU()), r"^0: LeakyReLU: layer type torch.nn.LeakyReLU is not supported"),
        ]
        for model, pattern in cases:
            with self.assertRaisesRegex(nnexport.ExportError, pattern):
                self.convert(model)

    def test_training_flags_restored(self):
        model = Mean().train()
        self.convert(model)
        self.assertTrue(model.training and model.conv.training)


class TestCli(unittest.TestCase):
    def run_tool(self, *args):
        return subprocess.run([sys.executable, os.path.join(TOOL_DIR, "torch2nn.py")] + list(args),
                              capture_output=True, text=True)

    def test_single_file_carries_descriptor_and_state_dict(self):
        with tempfile.TemporaryDirectory() as d:
            model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(144, 2))
            src = os.path.join(d, "m.pt")
            torch.save(model, src)
            out = os.path.join(d, "m.safetensors")
            proc = self.run_tool(src, "-o", out, "--input-shape", "1,3,8,8")
            self.assertEqual(proc.returncode, 0, proc.stderr)
            tensors, meta = safetensors_io.read(out)
            desc = json.loads(meta["nnkit.descriptor"])
            self.assertEqual(desc["input_shape"], [1, 3, 8, 8])
            self.assertEqual([c["type"] for c in desc["model"]["children"]],
                             ["Conv2d", "BatchNorm2d", "Flatten", "Linear"])
            self.assertEqual(list(tensors), list(model.state_dict()))
            self.assertEqual(tensors["1.num_batches_tracked"].dtype, torch.int64)
            self.assertEqual(tensors["1.num_batches_tracked"].shape, torch.Size([]))

    def test_descriptor_with_weights_beside_it(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "r.json")
            proc = self.run_tool("resnet18", "-o", out)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            with open(out) as f:
                desc = json.load(f)
            self.assertEqual(desc["model"]["class"], "ResNet")
            self.assertTrue(os.path.exists(os.path.join(d, "r.safetensors")))

    def test_unsupported_model_fails_with_one_line(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "s.json")
            proc = self.run_tool("shufflenet_v2_x0_5", "-o", out)
            self.assertEqual(proc.returncode, 1)
            self.assertRegex(proc.stderr, r"^torch2nn: stage2\.0: InvertedResidual: ")
            self.assertFalse(os.path.exists(out))
            self.assertEqual(os.listdir(d), [])

    def test_unknown_source(self):
        proc = self.run_tool("no_such_model", "-o", "/tmp/x.json")
        self.assertEqual(proc.returncode, 1)
        self.assertIn("torch2nn: no_such_model: no such file or torchvision model name", proc.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
