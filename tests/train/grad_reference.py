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


def add(name, type_name, config, module, inputs, train=False, grad_inputs=None, extra=(),
        args=None, pick=None):
    """Runs @module on @inputs, backward from a random upstream gradient.
    @args (optional): the C call's positional arguments in cases.json's
    form ({"in": i}, {"list": [i, ...]}, {"slice": [a, b, c]}, ints, None,
    lists for tuples); @pick: differentiate item @pick of a tuple result."""
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
    if pick is not None:
        out = out[pick]
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
    case = {"name": name, "type": type_name, "config": config,
            "inputs": len(inputs), "params": params, "train": train,
            "extra": list(extra),
            "buffers": [n for n, _ in module.named_buffers(recurse=False)]}
    if args is not None:
        case["args"] = args
    if pick is not None:
        case["pick"] = pick
    cases.append(case)


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

# Channel counts where oneDNN's provider picks its blocked (jit) layouts,
# so its backward_data / backward_weights paths and their reorders run:
# plain, strided, grouped, depthwise (strided and not), dilated, uneven
# padding, 1x1 strided and not (the latter on NCHW directly), a
# 3-channel stem, and a 3-D (unbatched) input.
wide_conv_configs = [
    (dict(in_channels=16, out_channels=32, kernel_size=3, padding=1, bias=False), (2, 9, 9)),
    (dict(in_channels=32, out_channels=16, kernel_size=3, stride=2, padding=1, bias=True),
     (3, 10, 11)),
    (dict(in_channels=32, out_channels=64, kernel_size=3, padding=1, groups=4, bias=True),
     (2, 8, 8)),
    (dict(in_channels=32, out_channels=32, kernel_size=3, padding=1, groups=32, bias=False),
     (2, 9, 7)),
    (dict(in_channels=48, out_channels=48, kernel_size=5, stride=2, padding=2, groups=48,
          bias=True), (2, 11, 12)),
    (dict(in_channels=16, out_channels=16, kernel_size=3, padding=2, dilation=2, bias=True),
     (2, 9, 9)),
    (dict(in_channels=16, out_channels=24, kernel_size=(3, 2), padding=(2, 0), stride=(2, 1),
          bias=True), (2, 7, 8)),
    (dict(in_channels=32, out_channels=64, kernel_size=1, stride=2, bias=False), (4, 8, 8)),
    (dict(in_channels=32, out_channels=48, kernel_size=1, bias=True), (3, 7, 9)),  # NCHW GEMM
    (dict(in_channels=3, out_channels=16, kernel_size=7, stride=2, padding=3, bias=False),
     (2, 19, 17)),
    (dict(in_channels=16, out_channels=16, kernel_size=3, padding="same", bias=True), (8, 6)),
]
for k, (cfg, dims) in enumerate(wide_conv_configs):
    # (n, h, w): a batch; (h, w): one unbatched [C, H, W] image.
    shape = (dims[0], cfg["in_channels"]) + dims[1:] if len(dims) == 3 \
        else (cfg["in_channels"],) + dims
    x = torch.randn(*shape)
    add(f"conv2d_wide{k}", "Conv2d", cfg, torch.nn.Conv2d(**cfg), [x])

# The same in training mode, where oneDNN's provider runs the forward
# beside its backward (the forward_training primitive, in the backward's
# layouts; 1x1 stride-1 on NCHW): every configuration above at batch 1
# and at a random batch, plus mobilenet_v2's and resnet18's shapes
# (inverted-residual 1x1 expand/project, depthwise stride 1 and 2, a 7x7
# stem, a strided 1x1 shortcut).
train_conv_configs = [cfg for cfg, _ in wide_conv_configs] + [
    dict(in_channels=24, out_channels=144, kernel_size=1, bias=False),
    dict(in_channels=144, out_channels=144, kernel_size=3, stride=2, padding=1, groups=144,
         bias=False),
    dict(in_channels=96, out_channels=96, kernel_size=3, padding=1, groups=96, bias=False),
    dict(in_channels=144, out_channels=32, kernel_size=1, bias=False),
    dict(in_channels=3, out_channels=64, kernel_size=7, stride=2, padding=3, bias=False),
    dict(in_channels=64, out_channels=128, kernel_size=1, stride=2, bias=False),
    dict(in_channels=64, out_channels=64, kernel_size=3, padding=1, bias=True),
]
for k, cfg in enumerate(train_conv_configs):
    for n in (1, rng.randint(2, 4)):
        x = torch.randn(n, cfg["in_channels"], rng.randint(7, 12), rng.randint(7, 12))
        add(f"conv2d_train{k}_n{n}", "Conv2d", cfg, torch.nn.Conv2d(**cfg), [x], train=True)

pool_configs = [
    ("MaxPool2d", dict(kernel_size=2), torch.nn.MaxPool2d(2)),
    ("MaxPool2d", dict(kernel_size=3, stride=2, padding=1), torch.nn.MaxPool2d(3, 2, 1)),
    ("MaxPool2d", dict(kernel_size=2, stride=1, dilation=2), torch.nn.MaxPool2d(2, 1, dilation=2)),
    ("AdaptiveAvgPool2d", dict(output_size=1), torch.nn.AdaptiveAvgPool2d(1)),
    ("AdaptiveAvgPool2d", dict(output_size=[2, 3]), torch.nn.AdaptiveAvgPool2d((2, 3))),
]
for k, (t, cfg, mod) in enumerate(pool_configs):
    add(f"pool{k}", t, cfg, mod, [torch.randn(2, 3, rng.randint(4, 7), rng.randint(5, 8))])
# Large enough (> 2^17 elements) that the max pool's backward splits its
# planes over the thread pool.
add("pool_wide", "MaxPool2d", dict(kernel_size=3, stride=2, padding=1),
    torch.nn.MaxPool2d(3, 2, 1), [torch.randn(2, 64, 32, 35)])

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


def random_batch_norm2d(c, momentum, affine):
    """A BatchNorm2d with random running statistics, counter and affine
    parameters (drawn from torch's and rng's streams, in that order)."""
    bn = torch.nn.BatchNorm2d(c, momentum=momentum, affine=affine)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.num_batches_tracked.fill_(rng.randint(0, 5))
        if affine:
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    return bn


for k, (train, momentum, affine) in enumerate([(True, 0.1, True), (True, None, True),
                                               (False, 0.1, True), (True, 0.3, False)]):
    c = rng.randint(1, 4)
    bn = random_batch_norm2d(c, momentum, affine)
    add(f"batch_norm2d_{k}", "BatchNorm2d",
        {"num_features": c, "momentum": momentum, "affine": affine}, bn,
        [torch.randn(rng.randint(2, 4), c, rng.randint(1, 4), rng.randint(2, 4))], train=train)

# Channel counts and planes as in the torchvision models, where the
# oneDNN provider's training forward and backward run.
for k, (train, momentum, affine, dims) in enumerate([
        (True, 0.1, True, (4, 32, 7, 9)), (True, None, True, (2, 64, 5, 5)),
        (True, 0.2, False, (3, 24, 6, 4)), (False, 0.1, True, (2, 32, 4, 4)),
        (True, 0.1, True, (8, 16, 1, 1))]):
    c = dims[1]
    bn = random_batch_norm2d(c, momentum, affine)
    add(f"batch_norm2d_wide{k}", "BatchNorm2d",
        {"num_features": c, "momentum": momentum, "affine": affine}, bn,
        [torch.randn(*dims) * 2 + 0.5], train=train)

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

# --- activations: every module type of plugins/activations/ -------------
def spread(*shape):
    # Values over the interesting range of the piecewise activations, kept
    # away from their kinks (0, +-lambd, +-3, the clamp bounds) so that
    # float32 rounding cannot flip a side.
    t = torch.rand(*shape) * 10 - 5
    for kink in (-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 6.0, 0.7, -0.4, 1.5, -2.0):
        near = (t - kink).abs() < 0.03
        t = torch.where(near, t + 0.07, t)
    return t


act_cases = [
    ("Hardtanh", {"min_val": -2.0, "max_val": 1.5}, torch.nn.Hardtanh(-2.0, 1.5)),
    ("Hardtanh", {}, torch.nn.Hardtanh()),
    ("ReLU6", {}, torch.nn.ReLU6()),
    ("Hardsigmoid", {}, torch.nn.Hardsigmoid()),
    ("Hardswish", {}, torch.nn.Hardswish()),
    ("ELU", {"alpha": 0.7}, torch.nn.ELU(0.7)),
    ("SELU", {}, torch.nn.SELU()),
    ("CELU", {"alpha": 1.5}, torch.nn.CELU(1.5)),
    ("LeakyReLU", {"negative_slope": 0.2}, torch.nn.LeakyReLU(0.2)),
    ("Softplus", {"beta": 2, "threshold": 3}, torch.nn.Softplus(2, 3)),
    ("Mish", {}, torch.nn.Mish()),
    ("LogSigmoid", {}, torch.nn.LogSigmoid()),
    ("Softsign", {}, torch.nn.Softsign()),
    ("Tanhshrink", {}, torch.nn.Tanhshrink()),
    ("Hardshrink", {"lambd": 0.5}, torch.nn.Hardshrink(0.5)),
    ("Softshrink", {"lambd": 0.7}, torch.nn.Softshrink(0.7)),
    ("Threshold", {"threshold": -0.4, "value": 2.0}, torch.nn.Threshold(-0.4, 2.0)),
]
for k, (t, cfg, mod) in enumerate(act_cases):
    add(f"act{k}_{t.lower()}", t, cfg, mod, [spread(3, 4, 5)])
# Large enough (> 2 x 32768 elements) that the elementwise forward and
# backward split over the thread pool, in training mode; odd sizes so the
# ranges end mid-vector.
for k, (t, cfg, mod) in enumerate([
        ("ReLU", {}, torch.nn.ReLU()), ("ReLU6", {}, torch.nn.ReLU6()),
        ("Hardtanh", {"min_val": -2.0, "max_val": 1.5}, torch.nn.Hardtanh(-2.0, 1.5)),
        ("Sigmoid", {}, torch.nn.Sigmoid()), ("Hardswish", {}, torch.nn.Hardswish())]):
    add(f"act_wide{k}_{t.lower()}", t, cfg, mod, [spread(3, 17, 41, 43)], train=True)
for k, (t, cfg, mod, shape) in enumerate([
        ("Softmax", {"dim": 1}, torch.nn.Softmax(1), (3, 5, 2)),
        ("Softmax", {"dim": -1}, torch.nn.Softmax(-1), (4, 6)),
        ("LogSoftmax", {"dim": 1}, torch.nn.LogSoftmax(1), (3, 5, 2)),
        ("LogSoftmax", {"dim": 0}, torch.nn.LogSoftmax(0), (4, 3)),
        ("Softmin", {"dim": 2}, torch.nn.Softmin(2), (2, 3, 4)),
        ("GLU", {"dim": -1}, torch.nn.GLU(-1), (3, 6)),
        ("GLU", {"dim": 1}, torch.nn.GLU(1), (2, 4, 3))]):
    add(f"act_dim{k}_{t.lower()}", t, cfg, mod, [torch.randn(*shape) * 2])
for k, c in enumerate([1, 3]):
    prelu = torch.nn.PReLU(c)
    with torch.no_grad():
        prelu.weight.uniform_(-0.5, 0.5)
    add(f"prelu{k}", "PReLU", {"num_parameters": c}, prelu, [spread(2, 3, 4)])




import torch.nn.functional as F  # noqa: E402

# Functional spellings: the op types of the same functions.
add("fn_leaky_relu", "leaky_relu", {}, Op(lambda x: F.leaky_relu(x, 0.3)), [spread(4, 5)],
    args=[{"in": 0}, 0.3])
add("fn_elu", "elu", {}, Op(lambda x: F.elu(x, 1.2)), [spread(4, 5)], args=[{"in": 0}, 1.2])
add("fn_softplus", "softplus", {}, Op(lambda x: F.softplus(x)), [spread(4, 5)])
add("fn_prelu", "prelu", {}, Op(F.prelu), [spread(2, 3, 4), torch.rand(3) - 0.5])
add("fn_glu", "glu", {}, Op(lambda x: F.glu(x, 0)), [torch.randn(4, 3)], args=[{"in": 0}, 0])
add("fn_softmax", "softmax", {}, Op(lambda x: F.softmax(x, 1)), [torch.randn(3, 4, 2)],
    args=[{"in": 0}, 1])
add("fn_log_softmax", "log_softmax", {}, Op(lambda x: F.log_softmax(x, -1)),
    [torch.randn(3, 7)], args=[{"in": 0}, -1])

# --- movement ops: one backward through their own forward ---------------
add("permute", "permute", {}, Op(lambda x: x.permute(2, 0, 1)), [torch.randn(2, 3, 4)],
    args=[{"in": 0}, 2, 0, 1])
add("transpose", "transpose", {}, Op(lambda x: x.transpose(0, 2)), [torch.randn(2, 3, 4)],
    args=[{"in": 0}, 0, 2])
add("t", "t", {}, Op(lambda x: x.t()), [torch.randn(3, 5)])
add("view", "view", {}, Op(lambda x: x.view(4, 6)), [torch.randn(2, 3, 4)],
    args=[{"in": 0}, 4, 6])
add("squeeze", "squeeze", {}, Op(lambda x: x.squeeze(1)), [torch.randn(3, 1, 4)],
    args=[{"in": 0}, 1])
add("contiguous", "contiguous", {}, Op(lambda x: x.contiguous()), [torch.randn(3, 4)])
add("getitem_slices", "getitem", {}, Op(lambda x: x[1:, ::2, 1]), [torch.randn(3, 5, 4)],
    args=[{"in": 0}, [{"slice": [1, None, None]}, {"slice": [None, None, 2]}, 1]])
add("getitem_index", "getitem", {}, Op(lambda x, i: x[i]),
    [torch.randn(4, 3), torch.tensor([2, 0, 2, 3])], args=[{"in": 0}, {"in": 1}])
add("select", "select", {}, Op(lambda x: x.select(1, 2)), [torch.randn(2, 4, 3)],
    args=[{"in": 0}, 1, 2])
add("narrow", "narrow", {}, Op(lambda x: x.narrow(2, 1, 2)), [torch.randn(2, 3, 4)],
    args=[{"in": 0}, 2, 1, 2])
add("index_select", "index_select", {}, Op(lambda x, i: x.index_select(0, i)),
    [torch.randn(4, 3), torch.tensor([3, 1, 3])], args=[{"in": 0}, 0, {"in": 1}])
add("expand", "expand", {}, Op(lambda x: x.expand(2, 3, 4)), [torch.randn(3, 1)],
    args=[{"in": 0}, 2, 3, 4])
add("repeat", "repeat", {}, Op(lambda x: x.repeat(2, 1, 3)), [torch.randn(3, 2)],
    args=[{"in": 0}, 2, 1, 3])
add("flip", "flip", {}, Op(lambda x: x.flip(0, 2)), [torch.randn(2, 3, 4)],
    args=[{"in": 0}, [0, 2]])
add("roll", "roll", {}, Op(lambda x: torch.roll(x, (1, -2), (0, 2))), [torch.randn(3, 2, 4)],
    args=[{"in": 0}, [1, -2], [0, 2]])
add("tile", "tile", {}, Op(lambda x: torch.tile(x, (2, 1, 2))), [torch.randn(3, 2)],
    args=[{"in": 0}, [2, 1, 2]])
add("expand_as", "expand_as", {}, Op(lambda x, o: x.expand_as(o)),
    [torch.randn(1, 3), torch.randn(4, 3)], args=[{"in": 0}, {"in": 1}], grad_inputs=[0])
add("gather", "gather", {}, Op(lambda x, i: torch.gather(x, 1, i)),
    [torch.randn(3, 4), torch.tensor([[0, 0, 3], [1, 2, 1], [3, 3, 3]])],
    args=[{"in": 0}, 1, {"in": 1}])
add("unbind", "unbind", {}, Op(lambda x: torch.unbind(x, 1)), [torch.randn(2, 3, 2)],
    args=[{"in": 0}, 1], pick=1)
add("cat", "cat", {}, Op(lambda a, b, c: torch.cat([a, b, c], 1)),
    [torch.randn(2, 3, 2), torch.randn(2, 1, 2), torch.randn(2, 4, 2)],
    args=[{"list": [0, 1, 2]}, 1])
add("stack", "stack", {}, Op(lambda a, b: torch.stack([a, b], 1)),
    [torch.randn(3, 2), torch.randn(3, 2)], args=[{"list": [0, 1]}, 1])
for k in range(3):
    add(f"chunk{k}", "chunk", {}, Op(lambda x: torch.chunk(x, 3, 1)), [torch.randn(2, 7, 3)],
        args=[{"in": 0}, 3, 1], pick=k)
add("split_sizes", "split", {}, Op(lambda x: torch.split(x, [1, 3], 0)), [torch.randn(4, 3)],
    args=[{"in": 0}, [1, 3], 0], pick=1)
add("split_even", "split", {}, Op(lambda x: torch.split(x, 2, -1)), [torch.randn(3, 5)],
    args=[{"in": 0}, 2, -1], pick=2)

# --- matrix products ----------------------------------------------------
for k, (a, b) in enumerate([((3, 4), (4, 5)), ((2, 3, 4), (4, 2)), ((4,), (2, 4, 3)),
                            ((2, 1, 3, 4), (3, 4, 2)), ((5,), (5,)), ((3, 4), (4,))]):
    add(f"matmul{k}", "matmul", {}, Op(torch.matmul), [torch.randn(*a), torch.randn(*b)])
add("mm", "mm", {}, Op(torch.mm), [torch.randn(3, 4), torch.randn(4, 2)])
add("bmm", "bmm", {}, Op(torch.bmm), [torch.randn(2, 3, 4), torch.randn(2, 4, 5)])

# --- LayerNorm, Embedding, AvgPool2d, BatchNorm1d -----------------------
for k, (shape, norm, affine) in enumerate([((3, 5), [5], True), ((2, 3, 4), [3, 4], True),
                                           ((4, 6), [6], False)]):
    ln = torch.nn.LayerNorm(norm, elementwise_affine=affine)
    if affine:
        with torch.no_grad():
            ln.weight.uniform_(0.5, 1.5)
            ln.bias.uniform_(-0.5, 0.5)
    add(f"layer_norm{k}", "LayerNorm", {"normalized_shape": norm,
                                        "elementwise_affine": affine},
        ln, [torch.randn(*shape) * 2 + 0.5])
for k, (pad, freq) in enumerate([(None, False), (2, False), (-1, True)]):
    emb = torch.nn.Embedding(6, 4, padding_idx=pad, scale_grad_by_freq=freq)
    add(f"embedding{k}", "Embedding", {"num_embeddings": 6, "embedding_dim": 4,
                                       "padding_idx": pad, "scale_grad_by_freq": freq},
        emb, [torch.tensor([[0, 2, 5, 2], [5, 1, 2, 3]])])
add("fn_embedding", "embedding", {},
    Op(lambda i, w: F.embedding(i, w, padding_idx=-2, scale_grad_by_freq=True)),
    [torch.tensor([[1, 4, 4], [0, 3, 4]]), torch.randn(5, 3)],
    args=[{"in": 0}, {"in": 1}, -2, None, 2.0, True])
for k, cfg in enumerate([dict(kernel_size=2),
                         dict(kernel_size=3, stride=2, padding=1),
                         dict(kernel_size=3, stride=2, padding=1, count_include_pad=False,
                              ceil_mode=True),
                         dict(kernel_size=[2, 3], stride=1, divisor_override=4)]):
    add(f"avg_pool{k}", "AvgPool2d", cfg, torch.nn.AvgPool2d(**cfg),
        [torch.randn(2, 3, rng.randint(5, 7), rng.randint(5, 8))])
for k, (shape, train, momentum) in enumerate([((5, 3), True, 0.1), ((4, 3, 6), True, None),
                                              ((4, 3, 2), False, 0.1), ((6, 3), True, 0.5)]):
    bn = torch.nn.BatchNorm1d(3, momentum=momentum)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.num_batches_tracked.fill_(rng.randint(0, 5))
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    add(f"batch_norm1d_{k}", "BatchNorm1d", {"num_features": 3, "momentum": momentum}, bn,
        [torch.randn(*shape)], train=train)

# --- Conv2d's other padding modes ---------------------------------------
for k, (mode, cfg) in enumerate([
        ("reflect", dict(in_channels=2, out_channels=3, kernel_size=3, padding=1)),
        ("replicate", dict(in_channels=4, out_channels=4, kernel_size=3, padding=2, stride=2,
                           groups=4)),
        ("circular", dict(in_channels=4, out_channels=2, kernel_size=(3, 2), padding=(1, 2),
                          dilation=(2, 1), groups=2)),
        ("reflect", dict(in_channels=3, out_channels=2, kernel_size=2, padding=(1, 0),
                         bias=False))]):
    cfg = dict(cfg, padding_mode=mode)
    add(f"conv2d_{mode}{k}", "Conv2d", cfg, torch.nn.Conv2d(**cfg),
        [torch.randn(2, cfg["in_channels"], 5, 6)])

with open(os.path.join(outdir, "cases.json"), "w") as f:
    json.dump(cases, f, indent=1)
