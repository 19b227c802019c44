"""nn.Module -> nnkit descriptor + state_dict.

The tree mirrors PyTorch's: children in registration order under their own
names, a module registered twice becomes a "ref" to its first path (as
named_modules() lists it once while state_dict() lists it under every
path).  Each module is one of:
  - a known leaf class (layers.LEAF_TYPES), with its constructor args;
  - a container whose forward is PyTorch's (Sequential and subclasses that
    keep its forward, ModuleList, ModuleDict), "class" kept for printing;
  - anything with its own forward: a Graph over its children (graph.py).
"""

import json
import os
import warnings

import torch
import torch.nn as nn

from .errors import ExportError
from .graph import GraphBuilder, propagate_shapes, trace
from .layers import LEAF_TYPES, container_type, leaf_config, leaf_type
from . import safetensors_io

FORMAT_VERSION = 1


def _display(path):
    return path or "<root>"


def _record_inputs(model, input_shape):
    """Runs @model once on a random input of @input_shape and records, per
    module, the shapes its first call received (a tensor shape or a list of
    shapes): each level's own trace is shape-annotated from them."""
    shapes = {}
    handles = []

    def hook(mod, args):
        if id(mod) in shapes or not args:
            return
        x = args[0]
        if isinstance(x, torch.Tensor):
            shapes[id(mod)] = tuple(x.shape)
        elif isinstance(x, (list, tuple)) and all(isinstance(t, torch.Tensor) for t in x):
            shapes[id(mod)] = [tuple(t.shape) for t in x]

    for mod in model.modules():
        handles.append(mod.register_forward_pre_hook(hook))
    try:
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            model(torch.randn(*input_shape, generator=gen))
    except Exception as e:
        raise ExportError(f"<root>: {type(model).__name__}: forward on input shape "
                          f"{list(input_shape)} failed in PyTorch: {type(e).__name__}: {e}") from e
    finally:
        for h in handles:
            h.remove()
    return shapes


def _example(shape):
    if shape is None:
        return None
    gen = torch.Generator().manual_seed(0)
    if isinstance(shape, list):
        return [torch.randn(*s, generator=gen) for s in shape]
    return torch.randn(*shape, generator=gen)


def _own_tensors(m):
    return [n for n, _ in m.named_parameters(recurse=False)] + \
           [n for n, _ in m.named_buffers(recurse=False)]


class _Converter:
    def __init__(self, shapes):
        self.shapes = shapes
        self.first_path = {}   # id(module) -> first dotted path
        self.nodes = {}        # id(module) -> its descriptor node

    def children(self, m, path, list_called=None):
        """Descriptor nodes of @m's children, in registration order."""
        list_called = list_called or {}
        out = []
        for name, child in m._modules.items():
            if child is None:  # PyTorch skips None entries everywhere
                continue
            child_path = f"{path}.{name}" if path else name
            if id(child) in self.first_path:
                if name in list_called:
                    raise ExportError(f"{child_path}: a shared module called with a "
                                      "list of tensors is not supported")
                out.append({"name": name, "ref": self.first_path[id(child)]})
                continue
            self.first_path[id(child)] = child_path
            node, list_dim = self.module(child, child_path, list_called.get(name))
            self.nodes[id(child)] = (node, list_dim)
            out.append({"name": name, **node})
        return out

    def module(self, m, path, list_len=None):
        """Returns (descriptor node, list_dim) for @m.  @list_len: @m is
        called with a list of that many tensors; list_dim is then the dim
        the Graph concatenates them along (see graph.py)."""
        cls = type(m).__name__
        if leaf_type(m) is not None:
            if list_len is not None:
                raise ExportError(f"{path}: {cls} is called with a list of tensors")
            if len(m._modules):
                raise ExportError(f"{path}: {cls} unexpectedly has children")
            type_name, config = leaf_config(m, path)
            return self._node(type_name, cls, config, None), None
        ctype = container_type(m)
        no_forward = type(m).forward is nn.Module.forward
        if ctype is None and no_forward and not isinstance(m, (nn.Sequential,)):
            # A module that only groups children (it cannot be called, like
            # ModuleDict): PyTorch prints it the same way.
            ctype = "ModuleDict"
        if ctype is not None:
            if list_len is not None:
                raise ExportError(f"{_display(path)}: {cls} ({ctype}) is called with "
                                  "a list of tensors")
            own = _own_tensors(m)
            if own:
                raise ExportError(f"{_display(path)}: {cls}: a {ctype} holding its own "
                                  f"tensors {own} is not supported")
            return self._node(ctype, cls, None, self.children(m, path)), None
        if type(m).__module__.startswith("torch.nn.modules"):
            # A PyTorch layer nnkit has no type for: say so, not which of
            # its functional ops failed.
            raise ExportError(f"{_display(path)}: {cls}: layer type torch.nn.{cls} is not "
                              "supported by nnkit (supported: "
                              + ", ".join(sorted({t for t, _ in LEAF_TYPES.values()})) + ")")
        return self._graph(m, path, list_len)

    def _graph(self, m, path, list_len):
        cls = type(m).__name__
        own = _own_tensors(m)
        if own:
            raise ExportError(f"{_display(path)}: {cls} has its own parameters or buffers "
                              f"{own}; nnkit holds tensors only in layers (unsupported module type)")
        graph = trace(m, path, list_len)
        propagate_shapes(m, graph, _example(self.shapes.get(id(m))))
        list_called = {}
        for n in graph.nodes:
            if n.op == "call_module" and n.args and isinstance(n.args[0], (list, tuple)):
                if list_called.get(n.target, len(n.args[0])) != len(n.args[0]):
                    raise ExportError(f"{_display(path)}: {cls}: child '{n.target}' is called "
                                      "with lists of different lengths")
                list_called[n.target] = len(n.args[0])
        children = self.children(m, path, list_called)
        child_info = {}
        for name, child in m._modules.items():
            if child is None:
                continue
            node, list_dim = self.nodes[id(child)]
            if self.first_path[id(child)] != (f"{path}.{name}" if path else name):
                list_dim = None
            child_info[name] = (node.get("type"), node.get("config"), list_dim)
        builder = GraphBuilder(m, path, graph, child_info, list_len)
        config = builder.build()
        if m.extra_repr():
            # The dataflow is exact; only print(model) will differ.
            warnings.warn(f"{_display(path)}: {cls} has an extra_repr "
                          f"({m.extra_repr()!r}) that a Graph does not print")
        return self._node("Graph", cls, config, children), builder.list_cat_dim

    @staticmethod
    def _node(type_name, cls, config, children):
        node = {"type": type_name}
        if cls != type_name:
            node["class"] = cls
        if config is not None:
            node["config"] = config
        if children:
            node["children"] = children
        return node


def _check_state_dict(model, state):
    for key, t in state.items():
        if t.dtype not in (torch.float32, torch.int64):
            raise ExportError(f"{key}: dtype {t.dtype}; nnkit holds float32 and int64 tensors "
                              "(convert the model with model.float())")
        if t.is_quantized or t.layout != torch.strided:
            raise ExportError(f"{key}: quantized or sparse tensors are not supported")


def convert(model, input_shape=(1, 3, 224, 224)):
    """Returns (descriptor dict, state_dict) for @model in eval mode.  The
    model's training flags are restored afterwards."""
    if not isinstance(model, nn.Module):
        raise ExportError(f"expected a torch.nn.Module, got {type(model).__name__}")
    input_shape = tuple(int(d) for d in input_shape)
    if not input_shape or any(d < 1 for d in input_shape):
        raise ExportError(f"input shape {list(input_shape)}: every extent must be >= 1")
    modes = {mod: mod.training for mod in model.modules()}
    model.eval()
    try:
        shapes = _record_inputs(model, input_shape)
        conv = _Converter(shapes)
        conv.first_path[id(model)] = ""
        root, list_dim = conv.module(model, "")
        if list_dim is not None:
            raise ExportError("<root>: the model takes a list of tensors")
        state = model.state_dict()
    finally:
        for mod, training in modes.items():
            mod.training = training
    _check_state_dict(model, state)
    descriptor = {"format": "nnkit", "version": FORMAT_VERSION,
                  "input_shape": list(input_shape), "model": root}
    return descriptor, state


def _pretty(value, indent, lead=0, width=100):
    """JSON with small values kept on one line, so a descriptor reads like
    the tree it describes.  @lead: characters before the value on its line
    beyond @indent (a key)."""
    flat = json.dumps(value, separators=(", ", ": "), allow_nan=False)
    if len(flat) + indent + lead <= width or not isinstance(value, (dict, list)) or not value:
        return flat
    pad = " " * (indent + 2)
    if isinstance(value, list):
        items = [pad + _pretty(v, indent + 2, 0, width) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    items = [pad + json.dumps(k) + ": " + _pretty(v, indent + 2, len(json.dumps(k)) + 2, width)
             for k, v in value.items()]
    return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"


def descriptor_text(descriptor):
    return _pretty(descriptor, 0) + "\n"


def weights_path_for(path):
    """"model.json" -> "model.safetensors", as nn_model_weights_path_for()."""
    stem, _ = os.path.splitext(path)
    return stem + ".safetensors"


def export(model, out_path, input_shape=(1, 3, 224, 224)):
    """Exports @model to @out_path: a .safetensors path gets one file with
    the descriptor in __metadata__["nnkit.descriptor"]; any other path gets
    the descriptor, with the weights beside it (stem + .safetensors).  Both
    writes are atomic, weights first.  Returns the descriptor dict."""
    descriptor, state = convert(model, input_shape)
    text = descriptor_text(descriptor)
    out_path = os.fspath(out_path)
    if out_path.endswith(".safetensors"):
        safetensors_io.write(out_path, state, {"nnkit.descriptor": text})
    else:
        weights = weights_path_for(out_path)
        if os.path.abspath(weights) == os.path.abspath(out_path):
            raise ExportError(f"{out_path}: descriptor and weights paths coincide")
        safetensors_io.write(weights, state)
        safetensors_io.atomic_write_bytes(out_path, [text.encode("utf-8")])
    return descriptor
