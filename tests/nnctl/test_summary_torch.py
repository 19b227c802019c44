#!/usr/bin/python3
"""nnctl summary's Mult-Adds against an independent count from PyTorch.

The hand-written sequence and vision models of tests/conformance/
handwritten.py are exported with tools/torch2nn; `nnctl summary --json
--depth -1` must give, for every module path, the count that this file
computes from PyTorch's own calls (forward hooks, train mode so that every
submodule runs as a module; dropout does not change shapes) by the rule
docs/NNCTL.md states: torchinfo's per-parameter rule for modules with
parameters (Linear per output row), 0 for Embedding, MultiheadAttention's input projections per
projected position, and its out_proj as the Linear it is (PyTorch uses
out_proj's weights without calling it).  Exits 77 (skipped) without torch.
"""

import copy
import os
import sys
import unittest
import warnings

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
sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests", "conformance"))
import handwritten  # noqa: E402
import nnexport  # noqa: E402


def prod(dims):
    n = 1
    for d in dims:
        n *= d
    return n


def first_tensor(v):
    while isinstance(v, (tuple, list)):
        v = v[0]
    return v if isinstance(v, torch.Tensor) else None


def param_rule(module, out_shape):
    """torchinfo's layer_info.calculate_macs over the module's own
    parameters, for the shape of the first tensor of its result; but a
    Linear counts every output row (all leading dimensions), where
    torchinfo takes the first dimension only."""
    if not out_shape:
        return 0
    if isinstance(module, nn.Linear):
        return prod(out_shape[:-1]) * sum(p.numel() for p in module.parameters(recurse=False))
    macs = 0
    for name, p in module.named_parameters(recurse=False):
        if name in ("weight", "bias"):
            if "Conv" in type(module).__name__:
                macs += p.numel() * prod(out_shape[:1] + out_shape[2:])
            else:
                macs += p.numel() * out_shape[0]
        elif "weight" in name or "bias" in name:
            macs += p.numel() * prod(out_shape[:2])
    return macs


def mha_rule(mha, query, key, value):
    e = mha.embed_dim
    pq, pk, pv = (t.numel() // t.shape[-1] for t in (query, key, value))
    macs = e * e * pq + e * mha.kdim * pk + e * mha.vdim * pv
    if mha.in_proj_bias is not None:
        macs += e * (pq + pk + pv)
    return macs


def reference_counts(model, inputs):
    """{module path: Mult-Adds summed over its calls}, from PyTorch."""
    model = copy.deepcopy(model).train()
    names = {id(m): p for p, m in model.named_modules()}
    counts = {}

    def add(path, n):
        if n:
            counts[path] = counts.get(path, 0) + n

    def hook(module, args, out):
        path = names[id(module)]
        if isinstance(module, nn.Embedding):
            return
        if isinstance(module, nn.MultiheadAttention):
            # TransformerEncoderLayer passes query, key, value positionally.
            add(path, mha_rule(module, *args[:3]))
            attn = first_tensor(out)
            add(path + ".out_proj", param_rule(module.out_proj, list(attn.shape)))
            return
        o = first_tensor(out)
        add(path, param_rule(module, list(o.shape) if o is not None else []))

    handles = []
    for m in model.modules():
        handles.append(m.register_forward_hook(hook))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model(**inputs)
    for h in handles:
        h.remove()
    return counts


class TestSummaryMultAdds(NnctlCase):
    def check(self, name):
        model, make, sizes = handwritten.build(name)
        inputs = make(1, sizes[0])
        path = self.path(name + ".json")
        nnexport.export(model, path, inputs=inputs)
        data = self.nnctl_json("summary", path, "--depth", "-1")
        got = {}
        for row in data["rows"]:
            if row["mult_adds"]:
                got[row["path"]] = got.get(row["path"], 0) + row["mult_adds"]
        want = reference_counts(model, inputs)
        self.assertEqual(got, want)
        self.assertEqual(data["total_mult_adds"], sum(want.values()))
        return data, want

    def test_text_classifier_counts_attention_projections(self):
        data, want = self.check("text_classifier")
        # 12 tokens, E = 32: q, k and v projections with bias, per layer.
        self.assertEqual(want["encoder.layers.0.self_attn"], 3 * (32 * 32 + 32) * 12)
        # Folded at depth 1, the encoder's row sums its subtree, the
        # attention composites' own counts included.
        folded = self.nnctl_json("summary", self.path("text_classifier.json"),
                                 "--depth", "1")
        encoder = [r["mult_adds"] for r in folded["rows"] if r["path"] == "encoder"]
        self.assertEqual(encoder, [sum(v for k, v in want.items()
                                       if k.startswith("encoder."))])
        self.assertEqual(folded["total_mult_adds"], sum(want.values()))

    def test_tiny_gpt(self):
        self.check("tiny_gpt")

    def test_lstm_tagger_bidirectional_two_layers(self):
        _, want = self.check("lstm_tagger")
        # Every weight and bias once per (batch, step): 1 x 10 positions.
        lstm = handwritten.build("lstm_tagger")[0].lstm
        self.assertEqual(want["lstm"], 10 * sum(p.numel() for p in lstm.parameters()))
        self.assertNotIn("embed", want)

    def test_gru_classifier(self):
        self.check("gru_classifier")

    def test_small_unet_conv_transpose(self):
        _, want = self.check("small_unet")
        # ConvTranspose2d counted as torchinfo counts any Conv: weight
        # elements x output positions (8 x 8 at 16 x 16 input), + bias.
        self.assertEqual(want["up2"], (32 * 16 * 2 * 2 + 16) * 8 * 8)

    def test_audio_cnn_conv1d(self):
        _, want = self.check("audio_cnn")
        self.assertEqual(want["features.0"], (1 * 8 * 9 + 8) * 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
