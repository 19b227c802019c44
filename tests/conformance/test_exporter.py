#!/usr/bin/python3
"""Unit tests of tools/torch2nn: the converter registry, the tracer (size
unpacking, ModuleList loops, ModuleDict keys, own tensors, tuple and dict
results, in-place ops, argument expressions), the checks against nnkit's
plugins, the one-line failures of the CLI, and the safetensors reader and
writer.  Forward results are checked by running the exported descriptor
with graph_interp (PyTorch ops), against the model itself.  Exit 77 (skip)
without torch."""

import copy
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL_DIR = os.path.join(HERE, "..", "..", "tools", "torch2nn")
sys.path.insert(0, TOOL_DIR)
sys.path.insert(0, HERE)

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:
    print(f"SKIP: {e}")
    sys.exit(77)

import graph_interp  # noqa: E402
import handwritten  # noqa: E402
import nnexport  # noqa: E402
from nnexport import registry, safetensors_io  # noqa: E402


def nodes_of(node):
    return node["config"]["nodes"]


def by_name(nodes, name):
    return next(n for n in nodes if n["name"] == name)


def tensors_of(v):
    if isinstance(v, torch.Tensor):
        return [v]
    if isinstance(v, (int, float)):
        return [torch.tensor(v)]  # sizes in a result (a torch.Size)
    if isinstance(v, dict):
        return [t for x in v.values() for t in tensors_of(x)]
    return [t for x in v for t in tensors_of(x)]


def max_error(model, descriptor, inputs):
    with torch.no_grad():
        ref = model(**inputs)
    got = graph_interp.run(model, descriptor, inputs)
    ref_t, got_t = tensors_of(ref), tensors_of(got)
    assert len(ref_t) == len(got_t), (len(ref_t), len(got_t))
    return max((a.double() - b.double()).abs().max().item() for a, b in zip(ref_t, got_t))


class InPlace(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.conv(x)
        out += x
        y = self.relu(out)
        return y + out  # reads the relu's result: out was mutated


class Expressions(nn.Module):
    def forward(self, x):
        a = x[..., 1:3, ::2]
        b = x.masked_fill(x > 0, float("-inf")).softmax(-1)
        c = x.to(torch.float64).sum(dim=(1, 2))
        d = F.gelu(x, approximate="tanh")
        return a, b, c, d


from broken_models import DataDependent, UnknownOp  # noqa: E402


class SliceWrites(nn.Module):
    def forward(self, x):
        y = x.clone()
        y[:, 0:2].zero_()
        y[:, 3] = 5.0
        return y * 2


class Twice(nn.Module):
    """A layer type an out-of-tree converter provides."""

    def __init__(self, k=2):
        super().__init__()
        self.k = k

    def forward(self, x):
        return x * self.k


@registry.converter(Twice)
def _twice(m):
    return {"k": m.k}


def my_scale(x, s):
    return x * s


torch.fx.wrap("my_scale")


@registry.op_converter(my_scale, name="scale")
def _scale(call):
    return call.emit(args=[call.args[0]], kwargs={"factor": call.args[1]})


class UsesExtensions(nn.Module):
    def __init__(self):
        super().__init__()
        self.twice = Twice(3)

    def forward(self, x):
        return my_scale(self.twice(x), 0.5)


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = self.a

    def forward(self, x):
        return self.b(self.a(x))


FAKE_LISTING = {"plugins": [{"name": "core", "types": [
    {"name": "Linear", "schema": ["in_features", "out_features", "bias"]},
    {"name": "ReLU", "schema": ["inplace"]},
    {"name": "Graph"}, {"name": "Sequential"},
    {"name": "add", "aliases": ["operator.add", "torch.add"], "signature": "(input, other, alpha=1)"},
]}]}
class TestSafetensors(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "t.safetensors")

    def tearDown(self):
        self.dir.cleanup()

    def test_round_trip_keeps_order_dtypes_and_metadata(self):
        tensors = {"z.weight": torch.randn(3, 2), "a.count": torch.tensor(7),
                   "m.double": torch.randn(4, dtype=torch.float64),
                   "mask": torch.tensor([True, False]), "i32": torch.arange(3, dtype=torch.int32),
                   "u8": torch.tensor([0, 255], dtype=torch.uint8),
                   "i8": torch.tensor([-7], dtype=torch.int8),
                   "bf16": torch.randn(2).bfloat16(), "f16": torch.randn(2).half()}
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




class TestRegistry(unittest.TestCase):
    def test_converters_registered_beside_their_code(self):
        d, _, _ = nnexport.convert(UsesExtensions(), (2, 4))
        child = d["model"]["children"][0]
        self.assertEqual((child["type"], child["config"]), ("Twice", {"k": 3}))
        scale = by_name(nodes_of(d["model"]), "my_scale")
        self.assertEqual(scale["op"], "scale")
        self.assertEqual(scale["args"], ["twice"])
        self.assertEqual(scale["kwargs"], {"factor": 0.5})

    def test_two_converters_for_one_class_is_an_error(self):
        with self.assertRaisesRegex(RuntimeError, "two converters"):
            registry.converter(Twice)(_twice)
        with self.assertRaisesRegex(RuntimeError, "two converters"):
            registry.ops(torch.add)

    def test_names_of_targets(self):
        self.assertEqual(registry.qualified_name(torch.add), "torch.add")
        self.assertEqual(registry.qualified_name(F.relu), "torch.nn.functional.relu")
        self.assertEqual(registry.display_target("call_method", "foo"), "torch.Tensor.foo")


class TestGraphs(unittest.TestCase):
    def export(self, model, inputs):
        d, state, _ = nnexport.convert(model, inputs=inputs)
        json.dumps(d, allow_nan=False)  # every value is JSON data
        return d, state

    def check_handwritten(self, name):
        model, make, sizes = handwritten.build(name)
        d, state = self.export(model, make(1, sizes[0]))
        self.assertEqual(list(state), list(model.state_dict()))
        for batch, size in ((1, sizes[0]), (2, sizes[0]), (1, sizes[1])):
            self.assertLessEqual(max_error(model, d, make(batch, size)), 1e-6,
                                 f"{name} batch {batch} size {size}")
        return d

    def test_modulelist_loop_is_unrolled_into_descendant_paths(self):
        d = self.check_handwritten("looped_mlp")
        calls = [n["module"] for n in nodes_of(d["model"]) if "module" in n]
        self.assertEqual(calls, ["inp", "act", "layers.0", "act", "layers.1", "act",
                                 "layers.2", "act", "out"])
        view = by_name(nodes_of(d["model"]), "view")
        self.assertEqual(view["args"], ["x", [-1, 48]])
        layers = d["model"]["children"][1]
        self.assertEqual((layers["name"], layers["type"]), ("layers", "ModuleList"))

    def test_moduledict_indexed_by_key(self):
        d = self.check_handwritten("module_dict_heads")
        self.assertIn("heads.cls", [n.get("module") for n in nodes_of(d["model"])])

    def test_own_parameter_and_buffer_are_declared(self):
        d = self.check_handwritten("own_parameter")
        scale = d["model"]["children"][1]
        self.assertEqual(scale["type"], "Graph")
        self.assertEqual(scale["parameters"], {"gamma": {"shape": [1, 8, 1, 1], "dtype": "F32"}})
        self.assertEqual(scale["buffers"], {"shift": {"shape": [1, 8, 1, 1], "dtype": "F32",
                                                      "persistent": True}})
        attrs = [n["attr"] for n in nodes_of(scale) if "attr" in n]
        self.assertEqual(attrs, ["gamma", "shift"])

    def test_non_persistent_buffer_travels_in_the_weights_file(self):
        class Masked(nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("mask", torch.tril(torch.ones(3, 3)), persistent=False)

            def forward(self, x):
                return x * self.mask

        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "m.json")
            d = nnexport.export(Masked(), out, inputs={"x": torch.randn(3, 3)})
            self.assertEqual(d["model"]["buffers"], {"mask": {
                "shape": [3, 3], "dtype": "F32", "persistent": False}})
            tensors, _ = safetensors_io.read(os.path.join(tmp, "m.safetensors"))
            self.assertTrue(torch.equal(tensors["mask"], torch.tril(torch.ones(3, 3))))

    def test_tuple_and_dict_results(self):
        d = self.check_handwritten("tuple_and_dict")
        self.assertEqual(d["model"]["config"]["output"],
                         {"dict": {"a": "flatten", "both": "mul"}})
        split = d["model"]["children"][0]
        self.assertEqual(split["config"]["output"], {"tuple": ["relu", "sigmoid"]})

    def test_two_inputs_one_int64(self):
        d = self.check_handwritten("two_inputs")
        self.assertEqual(d["inputs"], [{"name": "x", "shape": [1, 16], "dtype": "F32"},
                                       {"name": "ids", "shape": [1, 16], "dtype": "I64"}])
        self.assertEqual(d["model"]["config"]["inputs"], ["x", "ids"])

    def test_sequence_plus_split_keyword_and_pool_indices(self):
        class M(nn.Module):
            def forward(self, x):
                shape = x.size()[:-1] + (2, 3)
                a, b = x.split(split_size=[2, 4], dim=-1)
                y, idx = F.max_pool2d(x.unsqueeze(1), 2, return_indices=True)
                return b.reshape(shape[0], shape[1], 2, 2), a, y, idx
        d, _ = self.export(M(), {"x": torch.randn(2, 4, 6)})
        nodes = nodes_of(d["model"])
        concat = next(n for n in nodes if n["op"] == "concat")
        self.assertEqual(concat["args"][1], {"tuple": [2, 3]})
        split = next(n for n in nodes if n["op"] == "split")
        self.assertEqual(split["kwargs"], {"split_size_or_sections": [2, 4], "dim": -1})
        pool = next(n for n in nodes if n["op"] in ("max_pool2d", "MaxPool2d"))
        self.assertTrue(pool["config"]["return_indices"])

    def test_size_unpacking_and_integer_arithmetic(self):
        d = self.check_handwritten("size_unpacking")
        ops = [n["op"] for n in nodes_of(d["model"]) if "op" in n]
        self.assertEqual(ops, ["size", "getitem", "getitem", "getitem", "getitem", "floordiv",
                               "view", "transpose", "mul", "view"])

    def test_gpt_block(self):
        d = self.check_handwritten("tiny_gpt")
        ops = [n.get("op") for n in nodes_of(d["model"])]
        # b of `b, t = idx.size()` is never read: its getitem is dropped.
        self.assertEqual(ops[:3], ["size", "getitem", "arange"])
        self.assertEqual(d["inputs"], [{"name": "idx", "shape": [1, 8], "dtype": "I64"}])

    def test_list_arguments(self):
        d = self.check_handwritten("list_input")
        nodes = nodes_of(d["model"])
        self.assertEqual(by_name(nodes, "layers_1")["args"], [["x", "layers_0"]])
        layer1 = d["model"]["children"][0]["children"][1]
        self.assertEqual(layer1["config"]["inputs"], ["inputs"])
        self.assertEqual(layer1["config"]["output"], "relu")

    def test_inplace_ops_become_dataflow(self):
        model = InPlace().eval()
        x = {"x": torch.randn(1, 3, 4, 4)}
        d, _ = self.export(model, x)
        nodes = nodes_of(d["model"])
        self.assertEqual(by_name(nodes, "add")["args"], ["conv", "x"])
        self.assertEqual(by_name(nodes, "relu")["args"], ["add"])
        self.assertEqual(by_name(nodes, "add_1")["args"], ["relu", "relu"])
        self.assertLessEqual(max_error(model, d, {"x": torch.randn(2, 3, 4, 4)}), 1e-6)

    def test_writes_through_slices(self):
        model = SliceWrites()
        d, _ = self.export(model, {"x": torch.randn(2, 5)})
        ops = [n["op"] for n in nodes_of(d["model"])]
        self.assertEqual(ops, ["getitem", "zeros_like", "setitem", "setitem", "mul"])
        self.assertLessEqual(max_error(model, d, {"x": torch.randn(3, 5)}), 0)

    def test_argument_expressions(self):
        model = Expressions()
        d, _ = self.export(model, {"x": torch.randn(2, 4, 6)})
        nodes = nodes_of(d["model"])
        self.assertEqual(by_name(nodes, "getitem")["args"][1], {"tuple": [
            {"ellipsis": True}, {"slice": [1, 3, None]}, {"slice": [None, None, 2]}]})
        self.assertEqual(by_name(nodes, "masked_fill")["args"][2], {"float": "-inf"})
        self.assertEqual(by_name(nodes, "to")["args"][1], {"dtype": "float64"})
        self.assertEqual(by_name(nodes, "sum_1")["kwargs"], {"dim": {"tuple": [1, 2]}})
        self.assertEqual(by_name(nodes, "gelu")["kwargs"], {"approximate": {"str": "tanh"}})
        self.assertLessEqual(max_error(model, d, {"x": torch.randn(3, 4, 6)}), 1e-6)

    def test_torchvision_size_unpacking_and_inplace(self):
        import torchvision
        for name, size in (("shufflenet_v2_x0_5", 64), ("resnet18", 64)):
            torch.manual_seed(0)
            model = torchvision.models.get_model(name).eval()
            nnexport.randomize_batchnorm(model, torch.Generator().manual_seed(1))
            d, state = self.export(model, {"x": torch.randn(1, 3, size, size)})
            self.assertEqual(list(state), list(model.state_dict()))
            err = max_error(model, d, {"x": torch.randn(2, 3, size - 16, size - 16)})
            self.assertLessEqual(err, 1e-5, name)

    def test_fpn_dict_argument_names_and_list_length_are_structure(self):
        # An OrderedDict argument, level names appended by a child and
        # `range(len(x) - 2, -1, -1)` over a Python list: fixed by the
        # code, so one export serves every input size, without warnings.
        from collections import OrderedDict
        from torchvision.ops.feature_pyramid_network import (FeaturePyramidNetwork,
                                                             LastLevelMaxPool)

        class Levels(nn.Module):
            def __init__(self):
                super().__init__()
                self.fpn = FeaturePyramidNetwork([3, 5, 6], 4, LastLevelMaxPool())

            def forward(self, x):
                feats = OrderedDict([("a", x[:, :3]),
                                     ("b", F.avg_pool2d(x[:, :5], 2)),
                                     ("c", F.avg_pool2d(x, 4))])
                return self.fpn(feats)

        torch.manual_seed(0)
        model = Levels().eval()
        notes = []
        d, _, _ = nnexport.convert(model, inputs={"x": torch.randn(1, 6, 16, 16)},
                                   warnings_out=notes)
        self.assertEqual(notes, [])
        for shape in ((1, 6, 16, 16), (2, 6, 24, 24)):
            x = {"x": torch.randn(*shape)}
            self.assertEqual(list(graph_interp.run(model, d, x)), ["a", "b", "c", "pool"])
            self.assertLessEqual(max_error(model, d, x), 1e-5)

    def test_slice_of_a_traced_tuple_is_a_sequence(self):
        # RAFT's coordinate grid: torch.stack of a slice of meshgrid's tuple.
        class Grid(nn.Module):
            def forward(self, x):
                b, _, h, w = x.shape
                coords = torch.meshgrid(torch.arange(h // 2), torch.arange(w // 2),
                                        indexing="ij")
                return torch.stack(coords[::-1], dim=0).float()[None].repeat(b, 1, 1, 1)

        model = Grid().eval()
        d, _ = self.export(model, {"x": torch.randn(1, 2, 4, 6)})
        stacked = [n for n in nodes_of(d["model"]) if n.get("op") == "stack"]
        self.assertEqual(len(stacked), 1)
        self.assertEqual(len(stacked[0]["args"][0]["tuple"]), 2)
        self.assertEqual(max_error(model, d, {"x": torch.randn(2, 2, 6, 10)}), 0)

    def test_tensor_split_keywords_are_one_name(self):
        # MViT's torch.tensor_split(x, indices=(1,), dim=2), and sections=.
        class Split(nn.Module):
            def forward(self, x):
                token, rest = torch.tensor_split(x, indices=(1,), dim=2)
                return rest * token, x.tensor_split(sections=3, dim=1)

        model = Split().eval()
        d, _ = self.export(model, {"x": torch.randn(1, 4, 5)})
        splits = [n for n in nodes_of(d["model"]) if n.get("op") == "tensor_split"]
        self.assertEqual([(n["args"][1:], n.get("kwargs")) for n in splits],
                         [([{"tuple": [1]}], {"dim": 2}), ([3], {"dim": 1})])
        self.assertLessEqual(max_error(model, d, {"x": torch.randn(2, 7, 9)}), 1e-6)

    def test_numbers_a_child_returns_are_shapes(self):
        # MViT: a pool returns (x, (T, H, W)) and its parent branches on
        # max(h, k_h): shape-dependent, fixed for the example with a warning.
        class Pool(nn.Module):
            def forward(self, x):
                x = F.max_pool2d(x, 2)
                return x, tuple(x.shape[2:])

        class Parent(nn.Module):
            def __init__(self):
                super().__init__()
                self.pool = Pool()

            def forward(self, x):
                y, (h, w) = self.pool(x)
                return y * max(h, w) + max(w / h, 1.0)

        model = Parent().eval()
        notes = []
        d, _, _ = nnexport.convert(model, inputs={"x": torch.randn(1, 2, 8, 12)},
                                   warnings_out=notes)
        self.assertTrue(notes and all("fixed at its value" in n for n in notes), notes)
        self.assertLessEqual(max_error(model, d, {"x": torch.randn(2, 2, 8, 12)}), 1e-6)

    def test_a_number_from_tensor_data_in_a_child_is_refused(self):
        class Count(nn.Module):
            def forward(self, x):
                return x, int(x.sum())

        class Parent(nn.Module):
            def __init__(self):
                super().__init__()
                self.count = Count()

            def forward(self, x):
                y, n = self.count(x)
                return y * n

        with self.assertRaisesRegex(nnexport.ExportError, "data-dependent control flow"):
            nnexport.convert(Parent().eval(), inputs={"x": torch.ones(3)})

    def test_overridden_repr_becomes_extra_repr(self):
        from torchvision.ops.misc import FrozenBatchNorm2d

        class ConvBN(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 4, 1)
                self.bn = FrozenBatchNorm2d(4, eps=1e-3)

            def forward(self, x):
                return self.bn(self.conv(x))

        model = ConvBN().eval()
        with torch.no_grad():
            model.bn.running_var.uniform_(0.5, 1.5)
            model.bn.bias.normal_()
        d, state = self.export(model, {"x": torch.randn(1, 3, 5, 5)})
        bn = d["model"]["children"][1]
        self.assertEqual((bn["type"], bn["class"], bn["extra_repr"]),
                         ("Graph", "FrozenBatchNorm2d", "4, eps=0.001"))
        self.assertEqual(list(state), list(model.state_dict()))
        self.assertLessEqual(max_error(model, d, {"x": torch.randn(2, 3, 7, 7)}), 1e-6)

    def test_config_held_as_a_list_is_named_in_repr_lists(self):
        # PyTorch keeps what the user passed to a pool (a list prints as a
        # list) but turns a convolution's sizes into tuples.
        model = nn.Sequential(nn.Conv2d(3, 4, [3, 3], padding=[1, 1]),
                              nn.MaxPool2d([3, 3], stride=[2, 2], padding=1),
                              nn.MaxPool2d((3, 3), stride=2)).eval()
        d, _ = self.export(model, {"input": torch.randn(1, 3, 9, 9)})
        conv, listed, tupled = d["model"]["children"]
        self.assertNotIn("repr_lists", conv)
        self.assertEqual(listed["repr_lists"], ["kernel_size", "stride"])
        self.assertNotIn("repr_lists", tupled)

    def test_shared_module_is_a_ref_to_its_first_path(self):
        d, _ = self.export(Shared(), {"x": torch.randn(1, 4)})
        self.assertEqual(d["model"]["children"][1], {"name": "b", "ref": "a"})
        # fx names a module by its first path, as named_modules() does.
        self.assertEqual([n["module"] for n in nodes_of(d["model"])], ["a", "a"])

    def test_training_flags_restored(self):
        model = InPlace().train()
        nnexport.convert(model, inputs={"x": torch.randn(1, 3, 4, 4)})
        self.assertTrue(all(m.training for m in model.modules()))


class TestFailures(unittest.TestCase):
    def fails(self, model, inputs, pattern):
        with self.assertRaises(nnexport.ExportError) as cm:
            nnexport.convert(model, inputs=inputs)
        msg = str(cm.exception)
        self.assertNotIn("\n", msg)
        self.assertRegex(msg, pattern)
        return msg

    def test_unsupported_op_names_path_op_and_line(self):
        model = nn.Sequential(nn.ReLU(), UnknownOp())
        self.fails(model, {"input": torch.randn(2, 3)},
                   r"^1 \(UnknownOp\): unsupported op torch\.special\.erfcx "
                   r"at broken_models\.py:\d+$")

    def test_data_dependent_control_flow(self):
        self.fails(DataDependent(), {"x": torch.randn(2)},
                   r"^<root> \(DataDependent\): data-dependent control flow: .* "
                   r"at broken_models\.py:\d+$")

    def test_refused_function_names_caller_and_reason(self):
        import torchvision

        class Boxes(nn.Module):
            def forward(self, boxes, scores):
                return torchvision.ops.nms(boxes, scores, 0.5)

        class Detector(nn.Module):
            def __init__(self):
                super().__init__()
                self.head = nn.Linear(4, 4)
                self.post = Boxes()

            def forward(self, x):
                b = self.head(x).abs().cumsum(1)
                return self.post(b, x[:, 0])

        msg = self.fails(Detector(), {"x": torch.randn(5, 4)},
                         r"^<root> \(Detector\): out of scope: post \(Boxes\) calls "
                         r"torchvision\.ops\.boxes\.nms: non-maximum suppression keeps a "
                         r"data-dependent number of boxes.* at test_exporter\.py:\d+$")
        self.assertIn("resnet_fpn_backbone", msg)
        # The refused functions are restored afterwards.
        self.assertIs(torchvision.ops.nms, torchvision.ops.boxes.nms)
        self.assertEqual(torchvision.ops.nms.__name__, "nms")
        self.assertEqual(len(torchvision.ops.nms(torch.tensor([[0., 0, 1, 1]]),
                                                 torch.tensor([1.]), 0.5)), 1)

    def test_pooling_function_falls_back_to_the_layer_name(self):
        # oneDNN's MaxPool2d outranks the reference and lists no aliases.
        class Pool(nn.Module):
            def forward(self, x):
                return F.max_pool2d(x, 1, 2, 0) + F.avg_pool2d(x, 2)

        listing = {"plugins": [{"name": "p", "types": [
            {"name": "Graph"}, {"name": "MaxPool2d", "aliases": []},
            {"name": "AvgPool2d", "aliases": ["avg_pool2d"]},
            {"name": "add", "aliases": ["operator.add"]}]}]}
        d, _, _ = nnexport.convert(Pool(), inputs={"x": torch.randn(1, 2, 4, 4)},
                                   plugins=nnexport.Plugins(listing))
        self.assertEqual([(n["op"], n.get("config")) for n in nodes_of(d["model"])[:2]],
                         [("MaxPool2d", {"kernel_size": 1, "stride": 2, "padding": 0,
                                         "dilation": 1, "ceil_mode": False,
                                         "return_indices": False}),
                          ("avg_pool2d", {"kernel_size": 2, "stride": 2, "padding": 0,
                                          "ceil_mode": False, "count_include_pad": True,
                                          "divisor_override": None})])

    def test_recomputed_weights_are_refused_with_the_fix(self):
        x = {"input": torch.randn(2, 3)}
        self.fails(nn.Sequential(nn.utils.weight_norm(nn.Linear(3, 2))), x,
                   r"^0 \(Linear\): its 'weight' is recomputed by a WeightNorm hook "
                   r".*torch\.nn\.utils\.remove_weight_norm\(module\)$")
        self.fails(nn.Sequential(nn.utils.spectral_norm(nn.Linear(3, 2))), x,
                   r"remove_spectral_norm\(module\)$")
        self.fails(nn.Sequential(nn.utils.parametrizations.orthogonal(nn.Linear(3, 3))), x,
                   r"^0 \(ParametrizedLinear\): its 'weight' is parametrized .*"
                   r"remove_parametrizations\(module, name\)$")
        plain = nn.Sequential(nn.Linear(3, 2))
        plain[0].register_forward_hook(lambda mod, args, out: None)
        notes = []
        nnexport.convert(plain, inputs=x, warnings_out=notes)
        self.assertIn("0 (Linear): its forward hooks are not exported", "\n".join(notes))

    def test_embedding_max_norm_is_refused_with_a_fix_that_keeps_forward(self):
        torch.manual_seed(0)
        ids = {"input": torch.randint(0, 10, (2, 5))}
        msg = (r"nn\.Embedding with max_norm=1\.0 is refused: PyTorch rewrites the looked-up "
               r"rows .* m\.max_norm = None$")
        self.fails(nn.Sequential(nn.Embedding(10, 4, max_norm=1.0)), ids, r"^0 \(Embedding\): " + msg)
        self.fails(nn.Sequential(nn.EmbeddingBag(10, 4, max_norm=2.0)), ids,
                   r"^0 \(EmbeddingBag\): nn\.EmbeddingBag with max_norm=2\.0 is refused")

        class Functional(nn.Module):
            def __init__(self):
                super().__init__()
                self.w = nn.Parameter(torch.randn(10, 4) * 3)

            def forward(self, input):
                return F.embedding(input, self.w, max_norm=1.5)
        self.fails(Functional(), ids, r"^<root> \(Functional\): F\.embedding with max_norm=1\.5")
        # The fix the message gives: every row renormalised once, max_norm
        # dropped, gives PyTorch's forward of the original and exports.
        m = nn.Embedding(10, 4, max_norm=1.0)
        with torch.no_grad():
            m.weight.mul_(3)
        fixed = copy.deepcopy(m)
        with torch.no_grad():
            torch.embedding_renorm_(fixed.weight, torch.arange(fixed.num_embeddings),
                                    fixed.max_norm, fixed.norm_type)
        fixed.max_norm = None
        torch.testing.assert_close(fixed(ids["input"]), m(ids["input"]))
        nnexport.convert(nn.Sequential(fixed), inputs=ids)

    def test_packed_sequences_and_random_numbers_are_refused(self):
        class Packed(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = nn.GRU(2, 3, batch_first=True)

            def forward(self, x, lengths):
                packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True)
                return self.rnn(packed)[1]

        class Noisy(nn.Module):
            def forward(self, mu):
                return mu + torch.randn_like(mu)

        self.fails(Packed(), {"x": torch.randn(2, 4, 2), "lengths": torch.tensor([4, 3])},
                   r"^<root> \(Packed\): out of scope: its forward calls "
                   r"torch\.nn\.utils\.rnn\.pack_padded_sequence: a packed sequence's layout")
        self.fails(Noisy(), {"mu": torch.randn(3)},
                   r"^<root> \(Noisy\): out of scope: its forward calls torch\.randn_like: "
                   r"draws random numbers")

    def test_torch_layer_without_converter(self):
        self.fails(nn.Sequential(nn.LPPool2d(2, 2)), {"input": torch.randn(1, 2, 4, 4)},
                   r"^0 \(LPPool2d\): layer type torch\.nn\.LPPool2d has no converter")

    def test_pytorch_failure_on_example_input(self):
        self.fails(nn.Linear(3, 2), {"input": torch.randn(2, 5)},
                   r"^<root> \(Linear\): forward on the example input failed in PyTorch: ")

    def test_checked_against_the_plugins_listing(self):
        plugins = nnexport.Plugins(FAKE_LISTING)
        model = nn.Sequential(nn.Linear(4, 4), nn.ReLU())

        class Add(nn.Module):
            def forward(self, x):
                return torch.add(x, x)

        class Sub(nn.Module):
            def forward(self, x):
                return x - 1

        d, _, _ = nnexport.convert(Add(), inputs={"x": torch.randn(2)}, plugins=plugins)
        self.assertEqual(nodes_of(d["model"])[0]["op"], "add")
        with self.assertRaisesRegex(nnexport.ExportError,
                                    r"^<root> \(Sub\): unsupported op operator\.sub: nnkit's "
                                    "plugins have no op sub"):
            nnexport.convert(Sub(), inputs={"x": torch.randn(2)}, plugins=plugins)
        nnexport.convert(model, inputs={"input": torch.randn(1, 4)}, plugins=plugins)
        with self.assertRaisesRegex(nnexport.ExportError,
                                    r"^0 \(Conv2d\): layer type Conv2d is not provided"):
            nnexport.convert(nn.Sequential(nn.Conv2d(1, 1, 1)),
                             inputs={"input": torch.randn(1, 1, 2, 2)}, plugins=plugins)
        listing = json.loads(json.dumps(FAKE_LISTING))
        listing["plugins"][0]["types"][0]["schema"] = ["in_features", "out_features"]
        with self.assertRaisesRegex(nnexport.ExportError, r"config key 'bias' is unknown"):
            nnexport.convert(model, inputs={"input": torch.randn(1, 4)},
                             plugins=nnexport.Plugins(listing))

    def test_bare_type_listing_checks_types_only(self):
        plugins = nnexport.Plugins({"plugins": [{"types": ["Graph", "Linear"]}]})
        model = nn.Sequential(nn.Linear(2, 2))
        nnexport.convert(DataDependentFree(), inputs={"x": torch.randn(2)}, plugins=plugins)
        with self.assertRaisesRegex(nnexport.ExportError, "ReLU is not provided"):
            nnexport.convert(nn.Sequential(nn.ReLU()), inputs={"input": torch.randn(2)},
                             plugins=nnexport.Plugins({"plugins": [{"types": ["Sequential"]}]}))
        del model


class DataDependentFree(nn.Module):
    def forward(self, x):
        return torch.sigmoid(x) * 2


class TestCli(unittest.TestCase):
    def run_tool(self, *args):
        # The saved models' classes must import in the tool's process.
        env = dict(os.environ, PYTHONPATH=HERE)
        return subprocess.run([sys.executable, os.path.join(TOOL_DIR, "torch2nn.py")] +
                              list(args) + ["--no-check"], capture_output=True, text=True,
                              env=env)

    def assert_one_line_error(self, proc, pattern):
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertEqual(len(proc.stderr.splitlines()), 1, proc.stderr)
        self.assertRegex(proc.stderr, "^torch2nn: error: " + pattern)
        self.assertNotIn("Traceback", proc.stderr)

    def test_single_file_carries_descriptor_and_state_dict(self):
        with tempfile.TemporaryDirectory() as d:
            model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(),
                                  nn.Linear(144, 2))
            src = os.path.join(d, "m.pt")
            torch.save(model, src)
            out = os.path.join(d, "m.safetensors")
            proc = self.run_tool(src, "-o", out, "--input-shape", "1,3,8,8")
            self.assertEqual(proc.returncode, 0, proc.stderr)
            tensors, meta = safetensors_io.read(out)
            desc = json.loads(meta["nnkit.descriptor"])
            self.assertEqual(desc["version"], 2)
            self.assertEqual(desc["inputs"], [{"name": "input", "shape": [1, 3, 8, 8],
                                               "dtype": "F32"}])
            self.assertEqual([c["type"] for c in desc["model"]["children"]],
                             ["Conv2d", "BatchNorm2d", "Flatten", "Linear"])
            self.assertEqual(list(tensors), list(model.state_dict()))
            self.assertEqual(tensors["1.num_batches_tracked"].dtype, torch.int64)

    def test_example_inputs_by_argument_name(self):
        with tempfile.TemporaryDirectory() as d:
            model, make, sizes = handwritten.build("two_inputs")
            src, ex = os.path.join(d, "m.pt"), os.path.join(d, "in.safetensors")
            torch.save(model, src)
            safetensors_io.write(ex, make(2, sizes[0]))
            out = os.path.join(d, "m.json")
            proc = self.run_tool(src, "-o", out, "--example-input", ex)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            with open(out) as f:
                desc = json.load(f)
            self.assertEqual([i["dtype"] for i in desc["inputs"]], ["F32", "I64"])
            safetensors_io.write(ex, {"y": torch.randn(2)})
            self.assert_one_line_error(self.run_tool(src, "-o", out, "--example-input", ex),
                                       r".*tensor 'y' is not an argument of TwoInputs\.forward")

    def test_bad_sources_fail_with_one_line(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "o.json")
            garbage = os.path.join(d, "g.pt")
            with open(garbage, "wb") as f:
                f.write(b"\x80\x02garbage" * 10)
            sd = os.path.join(d, "sd.pt")
            torch.save(nn.Linear(2, 2).state_dict(), sd)
            ts = os.path.join(d, "ts.pt")
            torch.jit.save(torch.jit.script(nn.Linear(2, 2)), ts)
            cases = [(garbage, "not a file torch.load can read"),
                     (sd, "holds a state_dict, not a model"),
                     (ts, "a TorchScript archive"),
                     (os.path.join(d, "missing.pt"), "no such file or torchvision model name"),
                     (d, "is a directory")]
            for src, msg in cases:
                self.assert_one_line_error(self.run_tool(src, "-o", out), ".*" + msg)
            self.assertFalse(os.path.exists(out))

    def test_unsupported_model_writes_nothing(self):
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "m.pt")
            torch.save(nn.Sequential(nn.ReLU(), DataDependent()), src)
            out = os.path.join(d, "o.json")
            proc = self.run_tool(src, "-o", out, "--input-shape", "2,3")
            self.assert_one_line_error(proc, r"1 \(DataDependent\): data-dependent control flow")
            self.assertEqual(sorted(os.listdir(d)), ["m.pt"])


    def test_detectors_are_refused_naming_model_and_reason(self):
        # Built by name without backbone weights (no download); they run
        # once on the example input and fail at their first NMS call.
        # Mask and Keypoint R-CNN stop in Faster R-CNN's rpn the same way.
        cases = [("fasterrcnn_resnet50_fpn", "FasterRCNN", "rpn", "RegionProposalNetwork"),
                 ("retinanet_resnet50_fpn", "RetinaNet", "its forward", None)]
        for name, cls, caller, caller_cls in cases:
            if caller_cls:
                caller += f" \\({caller_cls}\\)"
            with tempfile.TemporaryDirectory() as d:
                out = os.path.join(d, "o.json")
                proc = self.run_tool(name, "-o", out, "--input-shape", "1,3,64,64")
                self.assert_one_line_error(
                    proc, f"{name} \\({cls}\\): out of scope: {caller} "
                    r"calls torchvision\.ops\.boxes\.batched_nms: non-maximum suppression "
                    r"keeps a data-dependent number of boxes and the post-processing branches "
                    r"on tensor values \(data-dependent control flow\).* at \w+\.py:\d+$")
                self.assertEqual(os.listdir(d), [], name)


class TestSequenceAndVisionModels(unittest.TestCase):
    """The hand-written sequence and vision models: their converters
    (TransformerEncoder and its layers, the 1-d pools, the recurrent
    cells, ...) and dataflow."""

    export = TestGraphs.export
    check_handwritten = TestGraphs.check_handwritten

    def test_text_classifier(self):
        d = self.check_handwritten("text_classifier")
        enc = next(c for c in d["model"]["children"] if c["name"] == "encoder")
        self.assertEqual(enc["type"], "TransformerEncoder")
        self.assertEqual(enc["config"], {"num_layers": 2, "enable_nested_tensor": True,
                                         "mask_check": True})
        layer = enc["children"][0]["children"][0]
        self.assertEqual(layer["config"]["activation"], "relu")
        self.assertTrue(layer["config"]["batch_first"])
        self.assertEqual([c["name"] for c in layer["children"]],
                         [n for n, _ in handwritten.build("text_classifier")[0]
                          .encoder.layers[0].named_children()])
        self.assertEqual(d["inputs"][1], {"name": "padding_mask", "shape": [1, 12],
                                          "dtype": "BOOL"})

    def test_recurrent_unet_and_audio(self):
        for name in ("lstm_tagger", "gru_classifier", "small_unet", "audio_cnn"):
            self.check_handwritten(name)

    def test_gelu_string_and_decoder_layer(self):
        layer = nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, activation="gelu")
        cfg = registry.module_converter(layer).config(layer, "dec")
        self.assertEqual(cfg["activation"], "gelu")
        self.assertFalse(cfg["batch_first"])

    def test_models_nobody_had_tried(self):
        # Each needed a converter, an op or a tracing rule nnkit lacked
        # (docs/TORCH2NN.md, "Conformance"); their dataflow, run with
        # PyTorch's ops, is the model's.  (crf_score loops over
        # range(em.size(1)): its export holds for the example's length only,
        # and conformance.py re-exports it per length.)
        for name in ("seq2seq_transformer", "vit_unfold", "cell_loop", "seq2seq_gru", "espcn",
                     "norm_zoo", "bag_model", "op_soup", "op_soup2", "act_zoo", "shapes",
                     "tied_rnn_lm", "ae1d", "functional1d", "nested", "subclasses",
                     "splits_sizes", "pixel_eca", "video3d", "math_ops", "siamese",
                     "llama_block", "moe", "tensor_idioms", "stn"):
            with self.subTest(name=name):
                self.check_handwritten(name)

    def test_parameter_holders_are_empty_graphs(self):
        d = self.check_handwritten("bag_model")
        kids = {c["name"]: c for c in d["model"]["children"]}
        scales, biases = kids["scales"], kids["biases"]
        self.assertEqual((scales["type"], scales["class"]), ("Graph", "ParameterList"))
        self.assertEqual(scales["config"], {"inputs": [], "nodes": [], "output": None})
        self.assertEqual(list(scales["parameters"]), ["0", "1"])
        self.assertEqual(biases["class"], "ParameterDict")
        model = handwritten.build("bag_model")[0]
        self.assertEqual(biases["extra_repr"], model.biases.extra_repr())
        attrs = [n["attr"] for n in nodes_of(d["model"]) if "attr" in n]
        self.assertEqual(attrs, ["scales.0", "biases.a", "scales.1", "biases.b"])

    def test_pieces_and_named_fields_of_results(self):
        class Pieces(nn.Module):
            def forward(self, x):
                first, *rest = list(x.unbind(1))
                return first + rest[-1], x.max(dim=1).values, x.topk(2).indices

        d, _ = self.export(Pieces(), {"x": torch.randn(2, 3)})
        ops = [n["op"] for n in nodes_of(d["model"])]
        # Pieces 0 and 2 (piece 1 is read by nobody, so dropped), .values, .indices.
        self.assertEqual(ops.count("getitem"), 4)
        self.assertLessEqual(max_error(Pieces(), d, {"x": torch.randn(4, 3)}), 1e-6)

    def test_tensor_where_puts_the_condition_first(self):
        class Where(nn.Module):
            def forward(self, x):
                return x.where(x > 0, -x)

        d, _ = self.export(Where(), {"x": torch.randn(5)})
        node = nodes_of(d["model"])[-1]
        self.assertEqual((node["op"], node["args"][1]), ("where", "x"))
        self.assertLessEqual(max_error(Where(), d, {"x": torch.randn(5)}), 0.0)

    def test_dtypes_a_layer_does_not_take_are_refused(self):
        listing = {"plugins": [{"name": "p", "types": [
            {"name": "Linear", "schema": ["in_features", "out_features", "bias"],
             "signature": [{"name": "input", "kinds": ["Tensor"], "dtypes": ["F32"]}]},
            {"name": "Sequential"}]}]}
        model = nn.Sequential(nn.Linear(3, 2)).double()
        with self.assertRaises(nnexport.ExportError) as cm:
            nnexport.convert(model, inputs={"input": torch.randn(1, 3, dtype=torch.float64)},
                             plugins=nnexport.Plugins(listing))
        self.assertEqual(str(cm.exception),
                         "0 (Linear): nnkit's Linear takes 'input' as F32, the example run "
                         "passes F64 (export the model in float32: model.float())")
        nnexport.convert(model.float(), inputs={"input": torch.randn(1, 3)},
                         plugins=nnexport.Plugins(listing))

    def test_activation_module_is_refused(self):
        layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, activation=nn.GELU(),
                                           batch_first=True)
        model = nn.TransformerEncoder(layer, 1)
        with self.assertRaises(nnexport.ExportError) as cm:
            nnexport.convert(model, inputs={"src": torch.randn(1, 3, 8)})
        self.assertRegex(str(cm.exception),
                         r"^layers\.0 \(TransformerEncoderLayer\): an activation module")


if __name__ == "__main__":
    unittest.main(verbosity=2)
