#!/usr/bin/python3
"""Tied weights against PyTorch: a tiny GPT-like model whose lm_head.weight
is wte.weight is exported (tools/torch2nn records the tie), run by nnctl
and compared with PyTorch's forward, loaded from a file holding only one of
the two keys (what safetensors' save_file keeps), saved by nnctl and loaded
back into PyTorch with strict=True.  Exits 77 (skipped) without torch."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
for _a in list(sys.argv[1:]):
    if _a.startswith("--nnctl="):
        os.environ["NNCTL"] = _a[len("--nnctl="):]
        sys.argv.remove(_a)

try:
    import torch
    import torch.nn as nn
except ImportError:
    print(f"SKIP: python3-torch not installed for {sys.executable}", file=sys.stderr)
    sys.exit(77)

from nnctl_testlib import NnctlCase, SOURCE_ROOT  # noqa: E402

sys.path.insert(0, os.path.join(SOURCE_ROOT, "tools", "torch2nn"))
import nnexport  # noqa: E402
from nnexport import safetensors_io  # noqa: E402

VOCAB, DIM, SEQ = 11, 8, 5


class TinyGPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, DIM)
        self.proj = nn.Linear(DIM, DIM)
        self.act = nn.GELU()
        self.drop = nn.Dropout(0.0)
        self.ln_f = nn.LayerNorm(DIM)
        self.lm_head = nn.Linear(DIM, VOCAB, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, idx):
        return self.lm_head(self.ln_f(self.drop(self.act(self.proj(self.wte(idx))))))


class TestTiedAgainstPyTorch(NnctlCase):
    def setUp(self):
        super().setUp()
        torch.manual_seed(3)
        self.model = TinyGPT().eval()
        self.idx = torch.tensor([[1, 4, 0, 10, 7]], dtype=torch.int64)
        self.model_path = self.path("gpt.json")
        nnexport.export(self.model, self.model_path, inputs={"idx": self.idx})

    def run_nnctl(self, model_path, *extra):
        xin, yout = self.path("x.safetensors"), self.path("y.safetensors")
        safetensors_io.write(xin, {"idx": self.idx})
        self.nnctl("run", model_path, "--input", xin + ":idx", "--output", yout, *extra)
        tensors, _ = safetensors_io.read(yout)
        return tensors["output"]

    def check_output(self, got, model):
        with torch.no_grad():
            want = model(self.idx)
        self.assertEqual(list(got.shape), list(want.shape))
        err = (got - want).abs().max().item()
        self.assertLessEqual(err, 1e-4 * max(1.0, want.abs().max().item()))

    def test_export_records_the_tie(self):
        with open(self.model_path) as f:
            desc = json.load(f)
        self.assertEqual(desc.get("tied"), {"lm_head.weight": "wte.weight"})
        tensors, _ = safetensors_io.read(self.path("gpt.safetensors"))
        self.assertIn("lm_head.weight", tensors)
        self.assertIn("wte.weight", tensors)

    def test_params_lists_the_tie_once(self):
        out = self.nnctl_json("params", self.model_path)
        names = [p["name"] for p in out["tensors"]]
        want = [n for n, _ in self.model.named_parameters()]
        self.assertEqual(names, want)
        self.assertNotIn("lm_head.weight", names)

    def test_run_matches_pytorch(self):
        self.check_output(self.run_nnctl(self.model_path), self.model)

    def test_one_key_file_fills_the_other(self):
        # safetensors.torch.save_file refuses shared tensors: users keep one.
        state = {k: v for k, v in self.model.state_dict().items() if k != "lm_head.weight"}
        with torch.no_grad():
            state["wte.weight"] = state["wte.weight"] * 0.5
        one = self.path("one.safetensors")
        safetensors_io.write(one, state)
        got = self.run_nnctl(self.model_path, "--weights", one)
        ref = TinyGPT().eval()
        ref.load_state_dict({**state, "lm_head.weight": state["wte.weight"]})
        self.assertIs(ref.lm_head.weight, ref.wte.weight)
        self.check_output(got, ref)

    def test_different_values_under_both_keys_are_refused(self):
        state = dict(self.model.state_dict())
        state["lm_head.weight"] = state["lm_head.weight"] + 1.0
        bad = self.path("bad.safetensors")
        safetensors_io.write(bad, state)
        _, err = self.nnctl("run", self.model_path, "--weights", bad, "--random-inputs", rc=1)
        self.assertIn("'wte.weight' and 'lm_head.weight'", err)

    def test_nnctl_save_loads_into_pytorch_strict(self):
        out = self.path("saved.json")
        self.nnctl("--quiet", "replace", self.model_path, "drop",
                   '{"type": "Dropout", "config": {"p": 0.0}}', "-o", out)
        ref = TinyGPT().eval()
        result = nnexport.load_state_dict_file(ref, self.path("saved.safetensors"), strict=True)
        self.assertEqual(list(result.missing_keys), [])
        self.assertEqual(list(result.unexpected_keys), [])
        self.assertIs(ref.lm_head.weight, ref.wte.weight)
        for k, v in self.model.state_dict().items():
            self.assertTrue(torch.equal(ref.state_dict()[k], v), k)
        with open(out) as f:
            self.assertEqual(json.load(f).get("tied"), {"lm_head.weight": "wte.weight"})
        self.check_output(self.run_nnctl(out), self.model)


if __name__ == "__main__":
    unittest.main(verbosity=2)
