"""One traced forward -> a Graph config {"inputs", "nodes", "output"}.

fx nodes map one to one: placeholders to inputs, call_module to module
nodes (dotted descendant paths, as fx writes them for ModuleList loops),
get_attr to attr nodes, calls to whatever their registered op converter
emits.  In-place ops become dataflow: after `x += y` or `x.relu_()` later
reads of x read the op's result, as they do in PyTorch.  Op nodes whose
result nobody reads are dropped (fx records asserts' conditions, shape
reads for them, ...); module nodes always stay, since hooks fire per call.
"""

import operator

import torch
import torch.fx as fx
import torch.utils._pytree as pytree

from . import registry
from .errors import ExportError, node_line
from .values import Ref, dtype_name, expr, refs_in

MAX_CONSTANT = 4096  # values of a tensor constant written into the descriptor


class OpCall:
    """What an op converter sees: the traced call and ways to emit it.

    args / kwargs: the call's arguments with earlier values substituted
    (Ref for graph values, Python constants otherwise); concrete(x): a
    value on the example input; emit(): append an op node."""

    def __init__(self, builder, node, conv):
        self.builder = builder
        self.node = node
        self.conv = conv
        self.args = builder.resolve(node.args)  # a method's args[0] is its tensor
        # PyTorch's private arguments (F.softmax's _stacklevel) are no
        # part of the op's signature.
        self.kwargs = {k: v for k, v in builder.resolve(node.kwargs).items()
                       if not k.startswith("_")}
        self._suffix = 0

    @property
    def target(self):
        return self.node.target

    def concrete(self, x=None):
        """The example-input value of the call's result (x None) or of
        argument value @x (a fx Node, or a constant)."""
        if x is None:
            x = self.node
        return self.builder.concrete_of(x)

    def arg_concrete(self, i):
        return self.concrete(self.node.args[i]) if i < len(self.node.args) else None

    def emit(self, op=None, args=None, kwargs=None, config=None):
        """Appends an op node (default: this converter's op with the call's
        own args and kwargs).  Returns its Ref."""
        name = self.node.name if self._suffix == 0 else f"{self.node.name}_{self._suffix}"
        self._suffix += 1
        op_name = self.builder.resolve_op(op or self.conv.names, self)
        return self.builder.emit_op(name, op_name,
                                    self.args if args is None else args,
                                    self.kwargs if kwargs is None else kwargs,
                                    config, self.node)

    def fail(self, what):
        raise ExportError(what)


class GraphBuilder:
    def __init__(self, m, path, tracer, plugins, warn):
        self.m = m
        self.path = path
        self.cls = type(m).__name__
        self.tracer = tracer
        self.plugins = plugins
        self.warn = warn
        self.env = {}        # fx Node -> Ref or constant
        self.nodes = []      # emitted descriptor nodes
        self.keep = set()    # names of nodes with effects
        self.names = set()

    def located(self, e, node):
        return e.located(self.path, self.cls, node_line(node) if node is not None else None)

    def concrete_of(self, x):
        if isinstance(x, fx.Node):
            return self.tracer.concrete.get(x)
        return x

    def resolve(self, v):
        if isinstance(v, fx.Node):
            if v not in self.env:
                raise ExportError(f"value '{v.name}' used before it is defined")
            return self.env[v]
        if isinstance(v, tuple):
            return tuple(self.resolve(x) for x in v)
        if isinstance(v, list):
            return [self.resolve(x) for x in v]
        if isinstance(v, dict):
            return {k: self.resolve(x) for k, x in v.items()}
        if isinstance(v, slice):
            return slice(self.resolve(v.start), self.resolve(v.stop), self.resolve(v.step))
        return v

    def resolve_op(self, names, call):
        if isinstance(names, str):
            names = [names]
        return self.plugins.resolve_op(names, registry.display_target(call.node.op,
                                                                      call.node.target))

    def _unique(self, name):
        base, i = name, 1
        while name in self.names:
            name = f"{base}_{i}"
            i += 1
        self.names.add(name)
        return name

    def _encode(self, v, what):
        try:
            return expr(v, what)
        except ValueError as e:
            raise ExportError(str(e)) from e

    def emit_op(self, name, op, args, kwargs, config, node):
        name = self._unique(name)
        entry = {"name": name, "op": op, "args": self._encode(list(args), f"op {op}")}
        if kwargs:
            entry["kwargs"] = {k: self._encode(v, f"op {op} argument '{k}'")
                               for k, v in kwargs.items()}
        if config is not None:
            entry["config"] = config
        self.plugins.check_call(op, entry, config)
        self.nodes.append(entry)
        return Ref(name)

    # --- the fx nodes ---------------------------------------------------

    def build(self):
        inputs = []
        output = None
        for node in self.tracer.graph.nodes:
            try:
                if node.op == "placeholder":
                    inputs.append(self._placeholder(node))
                elif node.op == "output":
                    output = self._encode(self._result(node), "the forward's result")
                elif node.op == "get_attr":
                    self._get_attr(node)
                elif node.op == "call_module":
                    self._call_module(node)
                else:
                    self._call(node)
            except ExportError as e:
                raise self.located(e, node) from None
        self._drop_unused(output)
        return {"inputs": inputs, "nodes": self.nodes, "output": output}

    def _result(self, node):
        value = self.resolve(node.args[0])
        info = getattr(self.tracer.graph._codegen, "pytree_info", None)
        if info is not None and info.out_spec is not None:
            # A list argument makes fx flatten the result too: rebuild it.
            value = pytree.tree_unflatten(list(value), info.out_spec)
        return value

    def _placeholder(self, node):
        name = node.target
        if name.startswith("*"):
            raise ExportError(f"forward takes *args/**kwargs ('{name}'), which a Graph "
                              "cannot declare")
        self.names.add(name)
        self.env[node] = Ref(name)
        if node.args:
            return {"name": name, "default": self._encode(node.args[0],
                                                          f"default of '{name}'")}
        return name

    def _get_attr(self, node):
        owner, _, leaf = node.target.rpartition(".")
        try:
            mod = self.m.get_submodule(owner) if owner else self.m
        except AttributeError:
            mod = None
        if mod is None or (leaf not in mod._parameters and leaf not in mod._buffers):
            return self._tensor_constant(node)
        name = self._unique(node.name)
        self.nodes.append({"name": name, "attr": node.target})
        self.env[node] = Ref(name)

    def _tensor_constant(self, node):
        """A small tensor made while tracing (torch.as_tensor(self.mean))
        becomes a `tensor` op holding its values."""
        value = self.tracer.concrete.get(node)
        if value is None:
            value = getattr(self.m, node.target, None)
        if not isinstance(value, torch.Tensor):
            raise ExportError(f"forward reads '{node.target}', which is not a parameter, "
                              "buffer or tensor")
        if value.numel() > MAX_CONSTANT:
            raise ExportError(f"a tensor constant of shape {list(value.shape)} made in "
                              f"forward (more than {MAX_CONSTANT} values); register it as a "
                              "buffer instead")
        op = self.plugins.resolve_op(["tensor", "torch.tensor"], "torch.tensor")
        data = value.tolist()
        name = self._unique(node.name)
        entry = {"name": name, "op": op, "args": [self._encode(data, "tensor constant")],
                 "kwargs": {"dtype": {"dtype": dtype_name(value.dtype)}}}
        self.nodes.append(entry)
        self.env[node] = Ref(name)

    def _call_module(self, node):
        try:
            child = self.m.get_submodule(node.target)
        except AttributeError:
            raise ExportError(f"calls '{node.target}', which is not a descendant") from None
        name = self._unique(node.name)
        entry = {"name": name, "module": node.target,
                 "args": self._encode(list(self.resolve(node.args)), f"call of {node.target}")}
        if node.kwargs:
            entry["kwargs"] = {k: self._encode(v, f"call of {node.target}")
                               for k, v in self.resolve(node.kwargs).items()}
        self.nodes.append(entry)
        self.keep.add(name)
        self.env[node] = Ref(name)
        if getattr(child, "inplace", False) is True and node.args and \
                isinstance(node.args[0], fx.Node):
            self.env[node.args[0]] = Ref(name)

    def _call(self, node):
        conv = registry.op_for(node.op, node.target)
        what = registry.display_target(node.op, node.target)
        if conv is None:
            raise ExportError(f"unsupported op {what}")
        call = OpCall(self, node, conv)
        before = len(self.nodes)
        result = conv.fn(call)
        self.env[node] = result
        mutated = conv.mutates
        if mutated is None and node.kwargs.get("inplace") is True:
            mutated = 0
        if mutated is not None and len(node.args) > mutated and \
                isinstance(node.args[mutated], fx.Node):
            target = node.args[mutated]
            self.env[target] = result
            self.keep.update(n["name"] for n in self.nodes[before:])
            if target.op == "call_function" and target.target is operator.getitem and \
                    isinstance(target.args[0], fx.Node):
                # Mutating a slice (t[a:b].zero_()) writes through to the
                # tensor it views: t = setitem(t, index, new slice).
                base = target.args[0]
                ref = self.emit_op(f"{node.name}_write", self.plugins.resolve_op(
                    ["setitem", "operator.setitem"], "operator.setitem"),
                    [self.env[base], self.resolve(target.args[1]), result], {}, None, node)
                self.env[base] = ref
                self.keep.add(ref.name)

    def _drop_unused(self, output):
        used = set(refs_in(output))
        kept = []
        for entry in reversed(self.nodes):
            if "op" in entry and entry["name"] not in used and entry["name"] not in self.keep:
                continue
            kept.append(entry)
            used.update(refs_in(entry.get("args", [])))
            for v in entry.get("kwargs", {}).values():
                used.update(refs_in(v))
        self.nodes = kept[::-1]
