"""A reference interpreter of exported descriptors, in PyTorch.

It runs a descriptor's Graphs node by node: module nodes call the
PyTorch module at that path (leaves) or interpret its Graph (modules with
their own forward); op nodes call the PyTorch function of that name,
looked up by name in torch, torch.nn.functional, operator and the Tensor
methods.  Comparing its output with model(...) checks the exporter's
dataflow (in-place ops, argument expressions, ModuleList unrolling,
get_attr) independently of nnkit's C side."""

import builtins
import operator

import torch
import torch.nn.functional as F

# Ops whose PyTorch spelling differs from the op name the exporter writes.
_RENAMED = {"floordiv": operator.floordiv, "mod": operator.mod, "and_": operator.and_,
            "or_": operator.or_, "invert": operator.invert, "len": builtins.len,
            "getitem": operator.getitem, "neg": operator.neg, "xor": operator.xor,
            # Tensor.unfold (windows), not F.unfold (im2col).
            "unfold": lambda obj, *a, **k: obj.unfold(*a, **k),
            # A tensor's or a torch.Size's (x.shape[1:].numel()).
            "numel": lambda obj: obj.numel()}


def _op(name):
    if name == "view":
        # nnkit tensors are always contiguous (contiguous() is dropped), so
        # its view is PyTorch's reshape.
        return lambda obj, shape: obj.reshape(shape)
    if name in _RENAMED:
        return _RENAMED[name]
    short = name.split(".")[-1]
    for space in (operator, F, torch):
        fn = getattr(space, short, None)
        if callable(fn):
            return fn
    return lambda obj, *a, **k: getattr(obj, short)(*a, **k)


def decode(e, env):
    if isinstance(e, str):
        return env[e]
    if isinstance(e, list):
        return [decode(x, env) for x in e]
    if isinstance(e, dict):
        if "str" in e:
            return e["str"]
        if "float" in e:
            return float(e["float"])
        if "dtype" in e:
            return getattr(torch, e["dtype"])
        if "ellipsis" in e:
            return Ellipsis
        if "tuple" in e:
            return tuple(decode(x, env) for x in e["tuple"])
        if "dict" in e:
            return {k: decode(x, env) for k, x in e["dict"].items()}
        if "slice" in e:
            return slice(*(decode(x, env) for x in e["slice"]))
        raise ValueError(f"unknown expression {e}")
    return e


class Interpreter:
    def __init__(self, model, descriptor):
        self.model = model
        self.nodes = {}
        self._index(descriptor["model"], "")

    def _index(self, node, path):
        self.nodes[path] = node
        for child in node.get("children", []):
            self._index(child, f"{path}.{child['name']}" if path else child["name"])

    def call(self, path, *args, **kwargs):
        node = self.nodes[path]
        if "ref" in node:
            return self.call(node["ref"], *args, **kwargs)
        mod = self.model.get_submodule(path) if path else self.model
        if node["type"] != "Graph":
            if node["type"] == "Sequential":
                x = args[0]
                for child in node.get("children", []):
                    x = self.call(f"{path}.{child['name']}" if path else child["name"], x)
                return x
            return mod(*args, **kwargs)
        return self.graph(mod, path, node["config"], args, kwargs)

    def graph(self, mod, path, config, args, kwargs):
        env = {}
        for i, inp in enumerate(config["inputs"]):
            name = inp if isinstance(inp, str) else inp["name"]
            if i < len(args):
                env[name] = args[i]
            elif name in kwargs:
                env[name] = kwargs[name]
            else:
                env[name] = decode(inp["default"], env)
        for n in config["nodes"]:
            a = decode(n.get("args", []), env)
            k = {key: decode(v, env) for key, v in n.get("kwargs", {}).items()}
            # A layer type called as a function: its config holds the
            # function's arguments (pooling windows), under PyTorch's names.
            k.update(n.get("config", {}))
            if "module" in n:
                full = f"{path}.{n['module']}" if path else n["module"]
                env[n["name"]] = self.call(full, *a, **k)
            elif "attr" in n:
                obj = mod
                for part in n["attr"].split("."):
                    obj = getattr(obj, part)
                env[n["name"]] = obj
            elif n["op"] in ("setitem", "operator.setitem"):
                # The op's result is the updated tensor (dataflow).
                t = a[0].clone()
                t[a[1]] = a[2]
                env[n["name"]] = t
            elif n["op"] == "size":
                env[n["name"]] = a[0].size(*a[1:])
            else:
                env[n["name"]] = _op(n["op"])(*a, **k)
        return decode(config["output"], env)


def run(model, descriptor, inputs):
    """The descriptor's output for @inputs (name -> tensor)."""
    with torch.no_grad():
        return Interpreter(model, descriptor).call("", **inputs)
