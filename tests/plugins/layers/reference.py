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
                 tree=False, shape_from_data=False):
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
    try:
        with torch.no_grad():
            out = module(*args, **case.kwargs)
        entry["structure"] = structure(out)
        outs = leaves(out, "", {})
        entry["outputs"] = [[k, list(v.shape), DTYPES[v.dtype]]
                            for k, v in outs.items()]
        for k, v in outs.items():
            tensors["out." + k] = v
        entry["tol"] = case.tol
    except Exception as e:  # noqa: BLE001
        entry["call_error"] = str(e)
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
