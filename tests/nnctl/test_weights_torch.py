#!/usr/bin/python3
"""Weights from PyTorch's own files: .pth written by torch.save at test
time load into nnkit bit-identically (compared with the same tensors
written as safetensors by this script), checkpoint dicts, DataParallel
prefixes, views and dtypes, shards, and the refusal of pickles that would
run code (with proof that nothing ran).  Exits 77 (meson: skipped) when
this python has no torch."""

import json
import os
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
for _a in list(sys.argv[1:]):
    if _a.startswith("--nnctl="):
        os.environ["NNCTL"] = _a[len("--nnctl="):]
        sys.argv.remove(_a)

try:
    import torch
    import torchvision
except ImportError:
    print("SKIP: python3-torch / python3-torchvision not installed for "
          f"{sys.executable}", file=sys.stderr)
    sys.exit(77)

import subprocess  # noqa: E402

from nnctl_testlib import NnctlCase, write_safetensors, SOURCE_ROOT  # noqa: E402

ST_DTYPES = {torch.float32: "F32", torch.int64: "I64", torch.float16: "F16",
             torch.bfloat16: "BF16", torch.float64: "F64", torch.int32: "I32",
             torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


def raw_bytes(t):
    """The tensor's elements, contiguous, little-endian, as PyTorch holds them."""
    t = t.contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def save_safetensors(path, sd):
    """The reference file: the tensors' own bytes, written here."""
    header, blobs, off = {}, [], 0
    for name, t in sd.items():
        blob = raw_bytes(t)
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_raw(path):
    """name -> (dtype, shape, bytes), in file offset order."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    items = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    return {k: (v["dtype"], v["shape"],
                data[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in items}


def resnet18_state_dict(seed=0):
    torch.manual_seed(seed)
    m = torchvision.models.resnet18(weights=None)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-1, 1)
            mod.running_var.uniform_(0.5, 2)
            mod.num_batches_tracked.fill_(seed + 3)
    return m, m.state_dict()


class PthFromTorch(NnctlCase):

    def assert_same_as(self, out_path, sd):
        got = read_raw(out_path)
        self.assertEqual(list(got), list(sd))
        for name, t in sd.items():
            dtype, shape, blob = got[name]
            self.assertEqual(dtype, ST_DTYPES[t.dtype], name)
            self.assertEqual(shape, list(t.shape), name)
            self.assertEqual(blob, raw_bytes(t), name)

    def test_resnet18_state_dict_is_bit_identical(self):
        _, sd = resnet18_state_dict()
        pth, ref, out = self.path("r.pth"), self.path("ref.safetensors"), \
            self.path("out.safetensors")
        torch.save(sd, pth)
        save_safetensors(ref, sd)
        self.nnctl("convert", pth, "-o", out)
        self.assert_same_as(out, sd)
        d = self.nnctl_json("diff", pth, ref)
        self.assertTrue(d["same"])
        self.assertEqual(d["identical_tensors"], len(sd))
        p = self.nnctl_json("params", pth)
        self.assertEqual([t["name"] for t in p["tensors"]], list(sd))
        self.assertEqual([t["shape"] for t in p["tensors"]],
                         [list(t.shape) for t in sd.values()])
        self.assertEqual(p["numel"], sum(t.numel() for t in sd.values()))

    def test_diff_sees_a_changed_tensor(self):
        _, sd = resnet18_state_dict()
        torch.save(sd, self.path("a.pth"))
        sd2 = {k: v.clone() for k, v in sd.items()}
        sd2["fc.bias"][3] += 0.5
        del sd2["layer4.1.bn2.running_var"]
        save_safetensors(self.path("b.safetensors"), sd2)
        d = self.nnctl_json("diff", self.path("a.pth"), self.path("b.safetensors"))
        self.assertFalse(d["same"])
        changes = {t["name"]: t["change"] for t in d["tensors"]}
        self.assertEqual(changes, {"fc.bias": "changed",
                                   "layer4.1.bn2.running_var": "removed"})
        fc = [t for t in d["tensors"] if t["name"] == "fc.bias"][0]
        self.assertAlmostEqual(fc["max_abs_diff"], 0.5, places=5)

    def test_checkpoint_dict(self):
        model, sd = resnet18_state_dict()
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        model(torch.randn(2, 3, 32, 32)).sum().backward()
        opt.step()
        ck = self.path("ck.pth")
        torch.save({"state_dict": sd, "epoch": 3, "best_acc": 0.71,
                    "optimizer": opt.state_dict(), "note": None}, ck)
        out = self.path("o.safetensors")
        stdout, _ = self.nnctl("convert", ck, "-o", out)
        self.assertIn("using checkpoint entry 'state_dict'", stdout)
        self.assert_same_as(out, sd)
        self.nnctl("convert", ck, "--key", "state_dict", "-o", out)
        self.assert_same_as(out, sd)
        err = self.error("convert", ck, "--key", "epoch", "-o", out)
        self.assertIn("entry 'epoch' is a int, expected a state_dict", err)
        err = self.error("convert", ck, "--key", "model", "-o", out)
        self.assertIn("no entry 'model'", err)

    def test_two_state_dicts_need_a_key(self):
        _, sd = resnet18_state_dict(0)
        _, ema = resnet18_state_dict(1)
        ck = self.path("ck.pth")
        torch.save({"model": sd, "ema": ema}, ck)
        err = self.error("params", ck)
        self.assertIn("--key", err)
        self.assertIn("'model' (dict), 'ema' (dict)", err)
        p = self.nnctl_json("params", ck, "--key", "ema")
        self.assertEqual(len(p["tensors"]), len(ema))
        out = self.path("ema.safetensors")
        self.nnctl("convert", ck, "--key", "ema", "-o", out)
        self.assert_same_as(out, ema)

    def test_dataparallel_prefix(self):
        model, sd = resnet18_state_dict()
        dp = torch.nn.DataParallel(model).state_dict()
        self.assertTrue(all(k.startswith("module.") for k in dp))
        pth = self.path("dp.pth")
        torch.save(dp, pth)
        out = self.path("o.safetensors")
        stdout, _ = self.nnctl("convert", pth, "-o", out)
        self.assertIn("every key started with 'module.'; stripped it", stdout)
        self.assert_same_as(out, sd)
        self.nnctl("convert", pth, "--no-auto-strip", "-o", out)
        self.assertEqual(list(read_raw(out)), list(dp))
        self.nnctl("convert", pth, "--strip-prefix", "module.layer1.",
                   "--add-prefix", "net.", "-o", out)
        keys = list(read_raw(out))
        self.assertIn("net.0.conv1.weight", keys)
        self.assertIn("net.module.fc.weight", keys)

    def test_views_and_dtypes(self):
        torch.manual_seed(3)
        base = torch.randn(10)
        sd = {"t": torch.randn(4, 5).t(), "slice": base[3:7], "same_storage": base,
              "h": torch.randn(3).half(), "bf": torch.randn(3).bfloat16(),
              "d": torch.randn(3).double(),
              "i32": torch.tensor([-5, 7, 2 ** 31 - 1], dtype=torch.int32),
              "i8": torch.tensor([-128, 127], dtype=torch.int8),
              "u8": torch.tensor([255, 0], dtype=torch.uint8),
              "b": torch.tensor([True, False, True]),
              "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 3)}
        pth = self.path("v.pth")
        torch.save(sd, pth)
        out = self.path("v.safetensors")
        self.nnctl("convert", pth, "-o", out)
        # Every dtype kept, bytes as PyTorch holds them, views contiguous.
        self.assert_same_as(out, sd)
        p = self.nnctl_json("params", pth)
        dt = {t["name"]: t["dtype"] for t in p["tensors"]}
        self.assertEqual(dt, {k: ST_DTYPES[v.dtype] for k, v in sd.items()})
        # int16 has no nnkit dtype: widened to I32, exactly.
        torch.save({"s": torch.tensor([-32768, 5, 32767], dtype=torch.int16)}, pth)
        self.nnctl("convert", pth, "-o", out)
        got = read_raw(out)["s"]
        self.assertEqual(got[0], "I32")
        self.assertEqual(got[2], torch.tensor([-32768, 5, 32767], dtype=torch.int32)
                         .numpy().tobytes())

    def test_shards_round_trip(self):
        _, sd = resnet18_state_dict()
        pth = self.path("r.pth")
        torch.save(sd, pth)
        index = self.path("m.safetensors.index.json")
        self.nnctl("convert", pth, "--max-shard-size", "10MB", "-o", self.path("m.safetensors"))
        with open(index) as f:
            idx = json.load(f)
        shards = sorted(set(idx["weight_map"].values()))
        # The documented rule: tensors in order, a new shard whenever the
        # next one would take the current shard past the limit.
        want, size = [], 0
        for name, t in sd.items():
            nb = t.numel() * t.element_size()
            if not want or size + nb > 10_000_000:
                want.append([])
                size = 0
            want[-1].append(name)
            size += nb
        n = len(want)
        self.assertEqual(len(shards), n)
        for i, names in enumerate(want):
            for name in names:
                self.assertEqual(idx["weight_map"][name],
                                 f"m-{i + 1:05d}-of-{n:05d}.safetensors")
        self.assertEqual(list(idx["weight_map"]), list(sd))
        self.assertEqual(idx["metadata"]["total_size"],
                         sum(t.numel() * t.element_size() for t in sd.values()))
        for s in shards:
            self.assertLessEqual(os.path.getsize(self.path(s)), 10_000_000 + 100_000)
        back = self.path("back.safetensors")
        self.nnctl("convert", index, "-o", back)
        self.assert_same_as(back, sd)
        self.assertTrue(self.nnctl_json("diff", pth, index)["same"])
        err = self.error("convert", pth, "--max-shard-size", "lots", "-o", back, rc=2)
        self.assertIn("expected a size such as 500MB", err)

    def test_malicious_pickle_refused_and_nothing_runs(self):
        marker = self.path("pwned")

        class Evil:
            def __reduce__(self):
                return (os.system, (f"touch {marker}",))

        pth = self.path("evil.pth")
        torch.save({"w": torch.ones(2), "x": Evil()}, pth)
        for cmd in (["params", pth], ["convert", pth, "-o", self.path("o.safetensors")]):
            err = self.error(*cmd)
            self.assertIn("opcode GLOBAL", err)
            self.assertIn(f"'{os.system.__module__}.system' is not allowed", err)
            self.assertFalse(os.path.exists(marker))
        self.assertFalse(os.path.exists(self.path("o.safetensors")))
        # Sanity: the same file run through Python's unpickler does run it.
        torch.load(pth)
        self.assertTrue(os.path.exists(marker))

    def test_whole_model_pickle_is_refused(self):
        model, _ = resnet18_state_dict()
        pth = self.path("model.pth")
        torch.save(model, pth)
        err = self.error("params", pth)
        self.assertIn("'torchvision.models.resnet.ResNet' is not allowed", err)
        self.assertIn("save model.state_dict() instead", err)

    def test_legacy_format_is_named(self):
        _, sd = resnet18_state_dict()
        pth = self.path("old.pth")
        torch.save(sd, pth, _use_new_zipfile_serialization=False)
        err = self.error("convert", pth, "-o", self.path("o.safetensors"))
        self.assertIn("legacy PyTorch format", err)

    def test_corrupt_files(self):
        _, sd = resnet18_state_dict()
        pth = self.path("r.pth")
        torch.save(sd, pth)
        with open(pth, "rb") as f:
            data = f.read()
        cut = self.path("cut.pth")
        with open(cut, "wb") as f:
            f.write(data[:len(data) // 3])
        self.assertIn("broken zip archive", self.error("params", cut))
        junk = self.path("junk.pt")
        with open(junk, "wb") as f:
            f.write(b"\x07" * 64)
        self.assertIn("not a weights file",
                      self.error("convert", junk, "-o", self.path("o.safetensors")))

    def test_torch2nn_builds_architecture_from_state_dict_file(self):
        _, sd = resnet18_state_dict(7)
        pth = self.path("sd.pth")
        torch.save({"model": sd, "epoch": 2}, pth)
        out = self.path("r.json")
        p = subprocess.run([sys.executable, os.path.join(SOURCE_ROOT, "tools", "torch2nn",
                                                          "torch2nn.py"),
                            "resnet18", "--weights", pth, "-o", out],
                           capture_output=True, text=True, timeout=600)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assert_same_as(self.path("r.safetensors"), sd)

    def mlp(self):
        """A Sequential MLP as a descriptor and as PyTorch's module."""
        torch.manual_seed(11)
        net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
                                  torch.nn.Linear(8, 3))
        desc = {"format": "nnkit", "version": 1, "input_shape": [2, 4],
                "model": {"type": "Sequential", "children": [
                    {"name": "0", "type": "Linear",
                     "config": {"in_features": 4, "out_features": 8}},
                    {"name": "1", "type": "ReLU"},
                    {"name": "2", "type": "Linear",
                     "config": {"in_features": 8, "out_features": 3}}]}}
        model = self.path("mlp.json")
        with open(model, "w") as f:
            json.dump(desc, f)
        return model, net

    def test_run_and_replace_with_pth_weights(self):
        model, net = self.mlp()
        sd = net.state_dict()
        save_safetensors(self.path("mlp.safetensors"), sd)
        pth = self.path("ck.pth")
        torch.save({"model": torch.nn.DataParallel(net).state_dict(), "epoch": 1}, pth)
        x = torch.randn(2, 4)
        xin = self.path("x.safetensors")
        write_safetensors(xin, {"input": ("F32", [2, 4], x.flatten().tolist())})
        y_st, y_pth = self.path("y1.safetensors"), self.path("y2.safetensors")
        self.nnctl("run", model, "--input", xin, "--output", y_st)
        # A checkpoint entry found alone, "module." stripped: same output.
        self.nnctl("run", model, "--weights", pth, "--input", xin, "--output", y_pth)
        self.assertEqual(read_raw(y_st), read_raw(y_pth))
        self.nnctl("run", model, "--weights", pth, "--weights-key", "model",
                   "--input", xin, "--output", y_pth)
        self.assertEqual(read_raw(y_st), read_raw(y_pth))
        (name, (dtype, shape, blob)), = read_raw(y_pth).items()
        y = torch.frombuffer(bytearray(blob), dtype=torch.float32).reshape(shape)
        self.assertTrue(torch.allclose(y, net(x).detach(), atol=1e-5))
        err = self.error("run", model, "--weights", pth, "--weights-key", "epoch",
                         "--input", xin)
        self.assertIn("entry 'epoch' is a int", err)
        # A state_dict that does not fit: PyTorch's wording, from the .pth.
        torch.save({"0.weight": torch.zeros(8, 5)}, self.path("bad.pth"))
        err = self.error("run", model, "--weights", self.path("bad.pth"), "--input", xin)
        self.assertIn("size mismatch for 0.weight", err)

        # replace --weights-from a .pth holding the new module's state_dict.
        torch.manual_seed(5)
        lin = torch.nn.Linear(8, 3)
        torch.save(lin.state_dict(), self.path("lin.pth"))
        out = self.path("r.safetensors")
        self.nnctl("replace", model, "2",
                   json.dumps({"type": "Linear", "config": {"in_features": 8,
                                                            "out_features": 3}}),
                   "--weights-from", self.path("lin.pth"), "-o", out)
        got = read_raw(out)
        self.assertEqual(got["2.weight"][2], raw_bytes(lin.weight.detach()))
        self.assertEqual(got["2.bias"][2], raw_bytes(lin.bias.detach()))

if __name__ == "__main__":
    unittest.main(verbosity=2)
