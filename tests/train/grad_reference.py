#!/usr/bin/python3
"""Reference gradients for tests/train: random configurations of every
type with a backward, run through PyTorch autograd.

    grad_reference.py OUTDIR

Writes OUTDIR/cases.json (a list of {name, type, config, inputs, params,
train}) and per case OUTDIR/<name>.safetensors holding the inputs (in0,
in1, ...), the parameters (param.<name>), the output (out), the upstream
gradient (gout) and the expected gradients (grad.in<i>, grad.param.<name>)."""
import json
import os
import random
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools", "torch2nn"))
from nnexport import safetensors_io  # noqa: E402

rng = random.Random(1234)
torch.manual_seed(1234)
cases = []


def add(name, type_name, config, module, inputs, train=False, grad_inputs=None, extra=()):
    """Runs @module on @inputs, backward from a random upstream gradient."""
    module.train(train)
    buffers = {f"buffer.{n}": b.clone() for n, b in module.named_buffers(recurse=False)}
    if grad_inputs is None:
        grad_inputs = [i for i, t in enumerate(inputs) if t.is_floating_point()]
    ins = []
    for i, t in enumerate(inputs):
        t = t.clone()
        if i in grad_inputs:
            t.requires_grad_(True)
        ins.append(t)
    out = module(*ins, *extra)
    gout = torch.randn_like(out)
    out.backward(gout)
    tensors = {"out": out.detach(), "gout": gout}
    for i, t in enumerate(ins):
        tensors[f"in{i}"] = t.detach()
        if i in grad_inputs:
            tensors[f"grad.in{i}"] = t.grad
    tensors.update(buffers)
    for n, b in module.named_buffers(recurse=False):
        tensors[f"after.{n}"] = b.clone()
    params = []
    for pname, p in module.named_parameters(recurse=False):
        params.append(pname)
        tensors[f"param.{pname}"] = p.detach()
        tensors[f"grad.param.{pname}"] = p.grad
    safetensors_io.write(os.path.join(outdir, name + ".safetensors"),
                         {k: v.contiguous() for k, v in tensors.items()})
    cases.append({"name": name, "type": type_name, "config": config,
                  "inputs": len(inputs), "params": params, "train": train,
                  "extra": list(extra),
                  "buffers": [n for n, _ in module.named_buffers(recurse=False)]})


def nonzero(*shape):
    # Away from ReLU's kink so that finite precision cannot flip a side.
    t = torch.randn(*shape)
    return t + torch.sign(t) * 0.05


outdir = sys.argv[1]
os.makedirs(outdir, exist_ok=True)

for k in range(4):
    fin, fout, bias = rng.randint(1, 9), rng.randint(1, 7), rng.random() < 0.6
    lead = rng.choice([[5], [1], [2, 3]])
    add(f"linear{k}", "Linear", {"in_features": fin, "out_features": fout, "bias": bias},
        torch.nn.Linear(fin, fout, bias=bias), [torch.randn(*lead, fin)])

for k in range(2):
    shape = [rng.randint(1, 4) for _ in range(rng.randint(1, 4))]
    add(f"relu{k}", "ReLU", {}, torch.nn.ReLU(), [nonzero(*shape)])

for name, mod in [("Tanh", torch.nn.Tanh()), ("Sigmoid", torch.nn.Sigmoid()),
                  ("SiLU", torch.nn.SiLU())]:
    add(name.lower(), name, {}, mod, [torch.randn(3, 5) * 2])
for approx in ["none", "tanh"]:
    add(f"gelu_{approx}", "GELU", {"approximate": approx}, torch.nn.GELU(approximate=approx),
        [torch.randn(4, 6) * 2])

conv_configs = [
    dict(in_channels=2, out_channels=3, kernel_size=3, stride=1, padding=1, bias=True),
    dict(in_channels=4, out_channels=4, kernel_size=3, stride=2, padding=1, groups=4,
         bias=False),                                     # depthwise, strided
    dict(in_channels=4, out_channels=6, kernel_size=(2, 3), stride=(1, 2), padding=(1, 0),
         dilation=(2, 1), groups=2, bias=True),           # groups, dilation
    dict(in_channels=3, out_channels=2, kernel_size=1, bias=True),
]
for k, cfg in enumerate(conv_configs):
    conv = torch.nn.Conv2d(**cfg)
    add(f"conv2d_{k}", "Conv2d", cfg, conv,
        [torch.randn(rng.randint(1, 3), cfg["in_channels"], rng.randint(4, 7), rng.randint(4, 7))])

pool_configs = [
    ("MaxPool2d", dict(kernel_size=2), torch.nn.MaxPool2d(2)),
    ("MaxPool2d", dict(kernel_size=3, stride=2, padding=1), torch.nn.MaxPool2d(3, 2, 1)),
    ("MaxPool2d", dict(kernel_size=2, stride=1, dilation=2), torch.nn.MaxPool2d(2, 1, dilation=2)),
    ("AdaptiveAvgPool2d", dict(output_size=1), torch.nn.AdaptiveAvgPool2d(1)),
    ("AdaptiveAvgPool2d", dict(output_size=[2, 3]), torch.nn.AdaptiveAvgPool2d((2, 3))),
]
for k, (t, cfg, mod) in enumerate(pool_configs):
    add(f"pool{k}", t, cfg, mod, [torch.randn(2, 3, rng.randint(4, 7), rng.randint(5, 8))])

class Op(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *a):
        return self.fn(*a)


add("add_same", "add", {}, Op(torch.add), [torch.randn(2, 3), torch.randn(2, 3)])
add("add_bcast", "add", {}, Op(lambda a, b: torch.add(a, b)),
    [torch.randn(2, 3, 4), torch.randn(3, 1)])
add("sub_bcast", "sub", {}, Op(torch.sub), [torch.randn(4, 1), torch.randn(2, 1, 5)])
add("mul_bcast", "mul", {}, Op(torch.mul), [torch.randn(2, 3, 4), torch.randn(4)])
add("mul_same", "mul", {}, Op(torch.mul), [torch.randn(3, 2), torch.randn(3, 2)])

add("reshape", "reshape", {}, Op(torch.reshape), [torch.randn(2, 3, 4)], extra=[[3, 8]])
add("unsqueeze", "unsqueeze", {}, Op(torch.unsqueeze), [torch.randn(2, 3)], extra=[1])

for k, (s, e) in enumerate([(1, -1), (0, 1), (2, 3)]):
    add(f"flatten{k}", "Flatten", {"start_dim": s, "end_dim": e},
        torch.nn.Flatten(s, e), [torch.randn(2, 3, 4, 2)])

add("dropout_eval", "Dropout", {"p": 0.3}, torch.nn.Dropout(0.3), [torch.randn(3, 4)])

for k, (train, momentum, affine) in enumerate([(True, 0.1, True), (True, None, True),
                                               (False, 0.1, True), (True, 0.3, False)]):
    c = rng.randint(1, 4)
    bn = torch.nn.BatchNorm2d(c, momentum=momentum, affine=affine)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.num_batches_tracked.fill_(rng.randint(0, 5))
        if affine:
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    add(f"batch_norm2d_{k}", "BatchNorm2d",
        {"num_features": c, "momentum": momentum, "affine": affine}, bn,
        [torch.randn(rng.randint(2, 4), c, rng.randint(1, 4), rng.randint(2, 4))], train=train)

for k, red in enumerate(["mean", "sum", "none", "mean"]):
    n, c = rng.randint(2, 6), rng.randint(2, 7)
    ls = rng.choice([0.0, 0.1, 0.25])
    target = torch.randint(0, c, (n,))
    ignore = -100
    if k == 3:  # one ignored row, under a custom ignore_index
        ignore = 3 if c <= 3 else c + 1
        target[0] = ignore
    cfg = {"reduction": red, "label_smoothing": ls, "ignore_index": ignore}
    add(f"cross_entropy{k}", "CrossEntropyLoss", cfg,
        torch.nn.CrossEntropyLoss(reduction=red, label_smoothing=ls, ignore_index=ignore),
        [torch.randn(n, c), target])

for k, red in enumerate(["mean", "sum", "none"]):
    shape = [rng.randint(1, 4) for _ in range(rng.randint(1, 3))]
    add(f"mse{k}", "MSELoss", {"reduction": red}, torch.nn.MSELoss(reduction=red),
        [torch.randn(*shape), torch.randn(*shape)])
    add(f"bce{k}", "BCEWithLogitsLoss", {"reduction": red},
        torch.nn.BCEWithLogitsLoss(reduction=red),
        [torch.randn(*shape) * 3, torch.rand(*shape)])

with open(os.path.join(outdir, "cases.json"), "w") as f:
    json.dump(cases, f, indent=1)
