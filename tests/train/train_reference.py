#!/usr/bin/python3
"""Reference optimiser runs for tests/train: a small model exported with
nnexport, trained a few steps by torch.optim on fixed batches.

    train_reference.py OUTDIR

Writes OUTDIR/model.json (+ model.safetensors, the initial weights),
OUTDIR/batches.safetensors (x0, y0, x1, y1, ...) and, per run, the final
state_dict: OUTDIR/<run>.safetensors, for the runs
  sgd     SGD(lr=0.1, momentum=0.9, weight_decay=1e-3), parameters of
          module "1" frozen
  nesterov SGD(lr=0.05, momentum=0.8, nesterov=True), all trainable
  adamw   AdamW(lr=0.01, weight_decay=0.05), all trainable
  adam    Adam(lr=0.02, weight_decay=0.01), all trainable, clip_grad_norm 0.5
each with CrossEntropyLoss(label_smoothing=0.1) in train mode (the
Dropout has p=0, so runs are deterministic)."""
import copy
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools", "torch2nn"))
import nnexport  # noqa: E402
from nnexport import safetensors_io  # noqa: E402

STEPS = 3
outdir = sys.argv[1]
os.makedirs(outdir, exist_ok=True)
torch.manual_seed(7)
model = torch.nn.Sequential(
    torch.nn.Flatten(),
    torch.nn.Linear(12, 10),
    torch.nn.ReLU(),
    torch.nn.Dropout(0.0),
    torch.nn.Linear(10, 7),
    torch.nn.ReLU(),
    torch.nn.Linear(7, 4),
)
model.eval()
x = torch.randn(1, 3, 2, 2)
nnexport.export(model, os.path.join(outdir, "model.json"), None, {"input": x},
                nnexport.Plugins.unchecked(), [])
# This integration's loader refuses the exporter's legacy "input_shape"
# beside "inputs"; keep the newer key only.
desc_path = os.path.join(outdir, "model.json")
with open(desc_path) as f:
    desc = json.load(f)
desc.pop("input_shape", None)
with open(desc_path, "w") as f:
    json.dump(desc, f)
batches = {}
for i in range(STEPS):
    batches[f"x{i}"] = torch.randn(6, 3, 2, 2)
    batches[f"y{i}"] = torch.randint(0, 4, (6,))
safetensors_io.write(os.path.join(outdir, "batches.safetensors"), batches)


def run(name, make_opt, frozen=(), clip=None):
    m = copy.deepcopy(model)
    for n, p in m.named_parameters():
        if any(n.startswith(f + ".") for f in frozen):
            p.requires_grad_(False)
    m.train()
    opt = make_opt([p for p in m.parameters() if p.requires_grad])
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    for i in range(STEPS):
        opt.zero_grad()
        loss = loss_fn(m(batches[f"x{i}"]), batches[f"y{i}"])
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_([p for p in m.parameters() if p.requires_grad], clip)
        opt.step()
    safetensors_io.write(os.path.join(outdir, name + ".safetensors"),
                         {k: v.contiguous() for k, v in m.state_dict().items()})


# A small CNN: conv, BatchNorm (batch statistics in training), pools.  The
# first conv has no bias: BatchNorm cancels it, so its gradient is rounding
# noise that Adam's normalisation would amplify into arbitrary steps.
torch.manual_seed(11)
cnn = torch.nn.Sequential(
    torch.nn.Conv2d(1, 4, 3, padding=1, bias=False), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
    torch.nn.MaxPool2d(2), torch.nn.Conv2d(4, 6, 3, padding=1, groups=2), torch.nn.ReLU(),
    torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(6, 3))
cnn.eval()
nnexport.export(cnn, os.path.join(outdir, "cnn.json"), None, {"input": torch.randn(1, 1, 6, 6)},
                nnexport.Plugins.unchecked(), [])
with open(os.path.join(outdir, "cnn.json")) as f:
    desc = json.load(f)
desc.pop("input_shape", None)
with open(os.path.join(outdir, "cnn.json"), "w") as f:
    json.dump(desc, f)
cnn_batches = {}
for i in range(STEPS):
    cnn_batches[f"x{i}"] = torch.randn(5, 1, 6, 6)
    cnn_batches[f"y{i}"] = torch.randint(0, 3, (5,))
safetensors_io.write(os.path.join(outdir, "cnn_batches.safetensors"), cnn_batches)


def run_cnn(name, make_opt):
    m = copy.deepcopy(cnn)
    m.train()
    opt = make_opt(m.parameters())
    for i in range(STEPS):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(m(cnn_batches[f"x{i}"]), cnn_batches[f"y{i}"]).backward()
        opt.step()
    safetensors_io.write(os.path.join(outdir, name + ".safetensors"),
                         {k: v.contiguous() for k, v in m.state_dict().items()})


run_cnn("cnn_sgd", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9))
run_cnn("cnn_adamw", lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.05))

run("sgd", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-3),
    frozen=("1",))
run("nesterov", lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True))
run("adamw", lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.05))
run("adam", lambda ps: torch.optim.Adam(ps, lr=0.02, weight_decay=0.01), clip=0.5)
