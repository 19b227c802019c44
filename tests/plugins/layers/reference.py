#!/usr/bin/env python3
"""Writes PyTorch reference cases for the layer families of plugins/.

Usage: reference.py FAMILY OUTDIR

For each case: a module built by torch.nn with a random configuration
(seeded), random inputs and parameters, and torch's eval-mode result, so
that the C test (test_layers.cpp) can build the same module through the
nnkit registry, load the same tensors and compare.  Writes OUTDIR/cases.json
and one OUTDIR/<case>.safetensors per case holding "state.<key>" (the
module's state_dict), "arg.<i>" (tensor arguments) and "out.<leaf>" (the
result's tensor leaves, named as nn_value_foreach_tensor names them).
Cases whose construction or call raises record the exception text instead,
for the error-path checks.
"""
import json
import os
import random
import struct
import sys

import torch
import torch.nn as nn

DTYPES = {torch.float32: "F32", torch.int64: "I64", torch.int32: "I32",
          torch.bool: "BOOL", torch.float64: "F64", torch.uint8: "U8"}


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        data = t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def leaves(value, prefix, out):
    """Tensor leaves named as nnkit's nn_value_foreach_tensor names them."""
    if isinstance(value, torch.Tensor):
        out[prefix] = value
    elif isinstance(value, (tuple, list)):
        for i, v in enumerate(value):
            leaves(v, f"{prefix}.{i}" if prefix else str(i), out)
    elif isinstance(value, dict):
        for k, v in value.items():
            leaves(v, f"{prefix}.{k}" if prefix else k, out)
    return out


def structure(value):
    """The result's structure: "T" for a tensor, None, or nested lists."""
    if isinstance(value, torch.Tensor):
        return "T"
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return [structure(v) for v in value]
    return repr(value)


class Case:
    def __init__(self, name, type_, config, args, kwargs=None, tol=1e-4,
                 cls=None, init=None, error=None, op=False,
                 tree=False, shape_from_data=False,
                 data_error=False):
        self.name, self.type, self.config = name, type_, config
        self.args, self.kwargs = args, kwargs or {}
        self.tol, self.cls, self.init = tol, cls or getattr(nn, type_), init
        # nnkit's wording where it differs from torch's (torch's own text
        # is checked otherwise).
        self.error = error
        # A functional op: no repr nor state_dict in PyTorch's sense.
        self.op = op
        # A composite: nnkit builds it from a descriptor node with children.
        self.tree = tree
        # The result's shape depends on tensor values (shape inference
        # cannot know it): TransformerEncoder's nested-tensor path.
        self.shape_from_data = shape_from_data
        # The call fails on tensor values (an index out of range): shape
        # inference, which sees no values, succeeds.
        self.data_error = data_error


def randomise(module, gen):
    """Random parameters and buffers, so that no value is a default."""
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.dtype != torch.float32:
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=gen))


def mha_projection_macs(module, args):
    """nnkit's rule for MultiheadAttention's own parameters (docs/NNCTL.md;
    torchinfo counts nothing there): each projection weight element once
    per position of the input it projects, each in_proj_bias element once
    per position; bias_k / bias_v are appended, not multiplied."""
    query, key, value = args[:3]
    e = module.embed_dim
    pq = query.numel() // query.shape[-1]
    pk = key.numel() // key.shape[-1]
    pv = value.numel() // value.shape[-1]
    macs = e * e * pq + e * module.kdim * pk + e * module.vdim * pv
    if module.in_proj_bias is not None:
        macs += e * (pq + pk + pv)
    return macs


def torchinfo_macs(module, out, args=()):
    """Mult-Adds of @module's own parameters as torchinfo counts them
    (layer_info.calculate_macs), for the first tensor of the result; but
    0 for Embedding (a lookup) and MultiheadAttention's projections by
    mha_projection_macs, as nnkit documents."""
    if isinstance(module, torch.nn.Embedding):
        return 0
    if isinstance(module, torch.nn.MultiheadAttention):
        return mha_projection_macs(module, args)
    first = out
    while isinstance(first, (tuple, list)):
        first = first[0]
    size = list(first.shape)
    if not size:
        return 0
    macs = 0
    for name, p in module.named_parameters(recurse=False):
        n = p.numel()
        if name in ("weight", "bias"):
            if "Conv" in type(module).__name__:
                rest = size[:1] + size[2:]
                prod = 1
                for d in rest:
                    prod *= d
                macs += n * prod
            else:
                macs += size[0] * n
        elif "weight" in name or "bias" in name:
            prod = 1
            for d in size[:2]:
                prod *= d
            macs += prod * n
    return macs


def run_case(case, outdir, gen):
    entry = {"name": case.name, "type": case.type, "config": case.config}
    if case.op:
        entry["op"] = True
    if case.error:
        entry["expect_error"] = case.error
    tensors = {}
    try:
        torch.manual_seed(gen.initial_seed() & 0xffff)
        module = case.cls(**case.config)
        randomise(module, gen)
        if case.init:
            case.init(module)
        module.eval()
        entry["repr"] = repr(module)
        if case.tree:
            import descriptor
            entry["descriptor"] = descriptor.node(module)
        if case.shape_from_data:
            entry["shape_from_data"] = True
        if case.data_error:
            entry["data_error"] = True
        entry["state"] = [[k, list(v.shape), DTYPES[v.dtype]]
                          for k, v in module.state_dict().items()]
        for k, v in module.state_dict().items():
            tensors["state." + k] = v
    except Exception as e:  # noqa: BLE001: the text is what is checked
        entry["create_error"] = str(e)
        write_safetensors(os.path.join(outdir, case.name + ".safetensors"), {})
        return entry
    def spec(a, key):
        """An argument as the C test rebuilds it; tensors go to the file."""
        if isinstance(a, torch.Tensor):
            tensors[key] = a
            return {"tensor": key}
        if isinstance(a, tuple) and any(isinstance(v, torch.Tensor) for v in a):
            return {"tuple": [spec(v, f"{key}.{i}") for i, v in enumerate(a)]}
        return {"value": a}

    args = list(case.args)
    specs = [spec(a, f"arg.{i}") for i, a in enumerate(args)]
    kwspecs = {k: spec(a, "kwarg." + k) for k, a in case.kwargs.items()}
    entry["args"], entry["kwargs"] = specs, kwspecs
    # Inplace modules overwrite their input: torch gets copies, the file
    # keeps the originals.
    def fresh(a):
        if isinstance(a, torch.Tensor):
            return a.clone()
        if isinstance(a, tuple):
            return tuple(fresh(v) for v in a)
        return a

    try:
        with torch.no_grad():
            out = module(*[fresh(a) for a in args],
                         **{k: fresh(v) for k, v in case.kwargs.items()})
        entry["structure"] = structure(out)
        outs = leaves(out, "", {})
        entry["outputs"] = [[k, list(v.shape), DTYPES[v.dtype]]
                            for k, v in outs.items()]
        for k, v in outs.items():
            tensors["out." + k] = v
        entry["tol"] = case.tol
    except Exception as e:  # noqa: BLE001
        entry["call_error"] = str(e)
    else:
        if not case.op:
            entry["macs"] = torchinfo_macs(module, out, args)
    write_safetensors(os.path.join(outdir, case.name + ".safetensors"), tensors)
    return entry


def main():
    family, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    mod = __import__("cases_" + family)
    rng = random.Random(1234)
    gen = torch.Generator().manual_seed(1234)
    cases = mod.cases(rng, gen)
    entries = [run_case(c, outdir, gen) for c in cases]
    with open(os.path.join(outdir, "cases.json"), "w") as f:
        json.dump(entries, f, indent=1)


if __name__ == "__main__":
    main()
