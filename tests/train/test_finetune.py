#!/usr/bin/python3
"""nnctl finetune end to end: one full-batch SGD step without shuffling
equals PyTorch's, frozen parameters stay bit-identical, and the failure
paths print one "nnctl:" line and write nothing.  Exits 77 (skipped)
without torch.

    test_finetune.py --nnctl=PATH"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

try:
    import torch
except ImportError:
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "torch2nn"))
from nnexport import safetensors_io  # noqa: E402

NNCTL = None


def nnctl(*args):
    return subprocess.run([NNCTL, *args], capture_output=True, text=True)


class Finetune(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = cls.tmp.name
        subprocess.run(["/usr/bin/python3", os.path.join(HERE, "train_reference.py"), cls.dir],
                       check=True)
        torch.manual_seed(3)
        cls.x = torch.randn(12, 3, 2, 2)
        cls.y = torch.randint(0, 4, (12,))
        cls.data = os.path.join(cls.dir, "data.safetensors")
        safetensors_io.write(cls.data, {"input": cls.x, "labels": cls.y})
        cls.model = os.path.join(cls.dir, "model.json")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def weights(self, path):
        return safetensors_io.read(path)[0]

    def test_one_step_equals_torch(self):
        out = os.path.join(self.dir, "one.json")
        r = nnctl("finetune", self.model, "--data", self.data, "--epochs", "1",
                  "--batch-size", "12", "--no-shuffle", "--lr", "0.1",
                  "--freeze", "1.*", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("epoch 1: train loss", r.stdout)
        init = self.weights(os.path.join(self.dir, "model.safetensors"))
        got = self.weights(os.path.join(self.dir, "one.safetensors"))
        # PyTorch: the same step from the same weights.
        m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 10), torch.nn.ReLU(),
                                torch.nn.Dropout(0.0), torch.nn.Linear(10, 7), torch.nn.ReLU(),
                                torch.nn.Linear(7, 4))
        m.load_state_dict(init)
        m[1].weight.requires_grad_(False)
        m[1].bias.requires_grad_(False)
        opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1)
        torch.nn.functional.cross_entropy(m(self.x), self.y).backward()
        opt.step()
        for k, v in m.state_dict().items():
            self.assertTrue(torch.allclose(got[k], v, rtol=1e-4, atol=1e-6), k)
        # Frozen: bit-identical.
        self.assertTrue(torch.equal(got["1.weight"], init["1.weight"]))
        self.assertTrue(os.path.exists(os.path.join(self.dir, "one.optim.safetensors")))
        # The frozen set is saved with the checkpoint; summary counts it.
        with open(out) as f:
            self.assertEqual(json.load(f)["frozen"], ["1.weight", "1.bias"])
        r = nnctl("summary", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Trainable params: 109", r.stdout)
        self.assertIn("Non-trainable params: 130", r.stdout)
        # --resume continues from it: the frozen layer stays as it was.
        r = nnctl("finetune", self.model, "--data", self.data, "--epochs", "1",
                  "--batch-size", "12", "--lr", "0.1", "--resume", out, "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("epoch 2:", r.stdout)
        again = self.weights(os.path.join(self.dir, "one.safetensors"))
        self.assertTrue(torch.equal(again["1.weight"], init["1.weight"]))
        self.assertFalse(torch.equal(again["6.weight"], got["6.weight"]))

    def fails(self, args, out, needle):
        r = nnctl("finetune", *args, "-o", out)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith("nnctl:"), r.stderr)
        self.assertIn(needle, lines[0])
        self.assertFalse(os.path.exists(out))

    def test_failure_paths(self):
        out = os.path.join(self.dir, "never.json")
        bad = os.path.join(self.dir, "bad.safetensors")
        safetensors_io.write(bad, {"input": self.x, "labels": self.y[:5]})
        self.fails([self.model, "--data", bad], out, "do not match input")
        empty = os.path.join(self.dir, "empty.safetensors")
        safetensors_io.write(empty, {"input": torch.zeros(0, 3, 2, 2),
                                     "labels": torch.zeros(0, dtype=torch.int64)})
        self.fails([self.model, "--data", empty], out, "empty")
        self.fails([self.model, "--data", self.data, "--freeze", "features.*"], out,
                   "'features.*' matches no parameter")
        chain = os.path.join(self.dir, "chain.json")
        with open(chain, "w") as f:
            json.dump({"format": "nnkit", "version": 2, "model": {
                "type": "Sequential", "children": [
                    {"name": "0", "type": "Flatten", "config": {}},
                    {"name": "1", "type": "Linear",
                     "config": {"in_features": 12, "out_features": 5}},
                    {"name": "2", "type": "Softmin", "config": {"dim": 1}},
                    {"name": "3", "type": "Linear",
                     "config": {"in_features": 5, "out_features": 4}}]}}, f)
        self.fails([chain, "--init-seed", "1", "--data", self.data], out,
                   "'2': layer type Softmin has no backward()")


if __name__ == "__main__":
    for a in list(sys.argv[1:]):
        if a.startswith("--nnctl="):
            NNCTL = a.split("=", 1)[1]
            sys.argv.remove(a)
    unittest.main()
