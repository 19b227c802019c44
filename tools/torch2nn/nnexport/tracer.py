"""torch.fx tracing with concrete values.

Every traced value also carries the value it has on the example input
(computed alongside, by running each call for real), which makes what plain
fx cannot trace work where it is sound:
  - iterating a Proxy (`B, T, C = x.size()`, `for t in x.chunk(3)`,
    `h, w = x.shape[-2:]`) yields one getitem node per element, the length
    taken from the concrete value;
  - branching on a value computed from shapes only (`if W % 2:`) follows
    the branch the example input takes, with a warning;
  - branching on a value computed from tensor data fails: it is
    data-dependent control flow, which a fixed graph cannot express.
Every submodule call is recorded as call_module (each level of the
hierarchy is its own Graph); `len(proxy)` is recorded as a call.
"""

import builtins
import math
import operator

import torch
import torch.fx as fx
import torch.fx._symbolic_trace as fx_trace
from torch.fx.node import map_arg

from . import registry
from .errors import ExportError

UNKNOWN = object()  # no concrete value (the module never ran, or replay failed)

# Calls that read a tensor's shape or kind, not its data.
_SHAPE_METHODS = {"size", "dim", "ndimension", "numel", "nelement", "type", "is_contiguous",
                  "is_floating_point", "is_complex", "element_size",
                  "get_device"}
_FIXED_ATTRS = {"dtype", "device", "ndim", "is_cuda", "layout", "is_sparse", "is_quantized"}
_SHAPE_ATTRS = {"shape", "ndim", "dtype", "device", "is_cuda", "layout", "requires_grad"}


class DataDependent(ExportError):
    pass


def _is_shape_access(node):
    if node.op == "call_method":
        return node.target in _SHAPE_METHODS
    if node.op == "call_function" and node.target is getattr:
        return len(node.args) > 1 and node.args[1] in _SHAPE_ATTRS
    if node.op == "call_function" and node.target is builtins.len:
        return True
    return False


class _Concrete:
    """Proxy behaviour that uses the concrete value (mixed into fx's Proxy
    and its lazily recorded Attribute, `x.shape`)."""

    def __getattr__(self, k):
        if k.startswith("__") and k.endswith("__"):
            # Protocol probes (torch.tensor() asks for __array__ ...).
            raise AttributeError(k)
        if k in _FIXED_ATTRS:
            v = self._concrete()
            if v is not UNKNOWN and hasattr(v, k):
                # Fixed by the model's code and nnkit's CPU, not by the
                # input's extents or values.
                return getattr(v, k)
        return ExportAttribute(self, k)

    def __setitem__(self, key, value):
        # Recorded like any call; the Graph turns it into dataflow.
        self.tracer.create_proxy("call_function", operator.setitem, (self, key, value), {})

    def _concrete(self):
        return self.tracer.concrete.get(self.node, UNKNOWN)

    def __iter__(self):
        v = self._concrete()
        try:
            n = len(v) if v is not UNKNOWN else None
        except TypeError:
            n = None
        if n is None:
            what = "unknown" if v is UNKNOWN else f"a {type(v).__name__}"
            raise ExportError(f"cannot iterate '{self.node.name}': its value on the example "
                              f"input is {what}, so its length is not known")
        return iter([self[i] for i in range(n)])

    def __len__(self):
        v = self._concrete()
        if isinstance(v, (tuple, list)):
            # The count of pieces (`list(x.unbind(1))`, which asks len()
            # first): as iterating it, the number of values the graph holds,
            # fixed by the code and the shapes, whatever the data.
            return len(v)
        if v is UNKNOWN or isinstance(v, torch.Tensor) or self.tracer.tainted.get(self.node):
            raise ExportError("len() of a traced tensor cannot be an int in a traced graph "
                              "(use x.size(0))")
        return len(v)

    def _fixed(self, what):
        if self.tracer.tainted.get(self.node, True):
            raise DataDependent(f"data-dependent control flow: {what} of '{self.node.name}' "
                                "depends on tensor values, which a fixed graph cannot express")
        v = self._concrete()
        if v is UNKNOWN:
            raise DataDependent(f"control flow on '{self.node.name}', whose value is unknown "
                                "(the module did not run on the example input)")
        if self.node not in self.tracer.structural:
            self.tracer.fixed.append(self.node)
        return v

    def __bool__(self):
        return bool(self._fixed("a branch on the truth"))

    def __index__(self):
        return int(self._fixed("a Python int"))

    def __int__(self):
        return int(self._fixed("a Python int"))


class ExportProxy(_Concrete, fx.Proxy):
    pass


class ExportAttribute(_Concrete, fx.proxy.Attribute):
    pass


class ExportTracer(fx.Tracer):
    """Traces one module with @inputs (parameter name -> concrete value)."""

    def __init__(self, inputs, recorded=None):
        super().__init__(autowrap_modules=(math,))
        self.recorded = recorded or {}
        self.record_stack_traces = True
        self.proxy_buffer_attributes = True  # buffers read in forward become attr nodes
        self.inputs = inputs
        self.concrete = {}
        self.tainted = {}
        self.fixed = []       # nodes whose value was fixed by control flow
        self.structural = set()  # nodes fixed by the code, whatever the input
        self.tensor_constants = []
        self._replaying = 0

    def is_leaf_module(self, m, qualified_name):
        return True

    def proxy(self, node):
        return ExportProxy(node, self)

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        if self._replaying:
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def call_module(self, m, forward, args, kwargs):
        if self._replaying:
            return forward(*args, **kwargs)
        return super().call_module(m, forward, args, kwargs)

    def create_arg(self, a):
        if isinstance(a, torch.Tensor) and not isinstance(a, torch.nn.Parameter):
            known = {id(t) for t in self.root.buffers()}
            if id(a) not in known:
                self.tensor_constants.append(a)
        return super().create_arg(a)

    def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None,
                     proxy_factory_fn=None):
        proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr,
                                     proxy_factory_fn)
        node = proxy.node
        value = self._replay(node)
        self.concrete[node] = value
        inputs = node.all_input_nodes
        if kind == "call_function" and target is builtins.len and len(args) == 1 and \
                isinstance(args[0], (list, tuple)) and not isinstance(args[0], fx.Proxy):
            # len() of a Python list of traced values (an FPN's feature
            # maps) is the list's length, fixed by the code that built it;
            # so is arithmetic on it (`range(len(x) - 2, -1, -1)`).
            self.structural.add(node)
        elif inputs and not isinstance(value, torch.Tensor) and \
                all(n in self.structural for n in inputs):
            self.structural.add(node)
        if _is_shape_access(node) or (_is_module_result(node) and _numbers_only(value)):
            # Numbers a child module returns (MViT's pool gives its (T, H, W))
            # come from shapes: a number from tensor data needs int(),
            # .item() or .tolist(), which the child's own trace refuses.
            self.tainted[node] = False
        elif isinstance(value, torch.Tensor) or value is UNKNOWN and kind == "placeholder":
            self.tainted[node] = True
        else:
            self.tainted[node] = any(self.tainted.get(n, True) for n in inputs)
        if kind == "placeholder" and isinstance(value, (list, tuple)) and \
                not hasattr(value, "_fields"):
            # A list argument (DenseNet's list of features) is a list of
            # its elements, so that torch.cat(inputs, 1) sees a sequence.
            return type(value)(proxy[i] for i in range(len(value)))
        if kind == "placeholder" and isinstance(value, dict) and \
                all(isinstance(k, str) for k in value):
            # A dict argument (an FPN's OrderedDict of feature maps) is a
            # dict of its entries: `list(x.keys())` is the example's keys,
            # fixed by the code that built it, and each value one getitem.
            return type(value)((k, proxy[k]) for k in value)
        if kind == "call_function" and target is operator.getitem and _is_structure(value):
            # An element that is None (an optional output not produced) or
            # names (an FPN's list of level names) is structure, not data:
            # `if targets is not None` must see None, a dict key a string.
            return _copy(value)
        if kind == "call_function" and target is operator.getitem and \
                isinstance(args[1], slice) and type(value) in (list, tuple):
            # A slice of a traced sequence (RAFT's `torch.meshgrid(...)[::-1]`)
            # is a sequence of its items, as many as on the example, so that
            # torch.stack and torch.cat see a sequence, not one Proxy.  Not a
            # torch.Size (`x.shape[:3]`): its constructor would fix the sizes.
            return type(value)(proxy[i] for i in range(len(value)))
        return proxy

    def _value_of(self, n):
        if n not in self.concrete and n.op == "get_attr":
            # Tensor constants are added by create_arg, not create_proxy.
            obj = self.root
            for part in n.target.split("."):
                obj = getattr(obj, part, UNKNOWN)
            self.concrete[n] = obj
            self.tainted[n] = True
        return self.concrete.get(n, UNKNOWN)

    def _replay(self, node):
        """The node's value on the example input: the call, run for real."""
        if node.op == "placeholder":
            name = node.target.lstrip("*")
            if name in self.inputs:
                return self.inputs[name]
            return node.args[0] if node.args else UNKNOWN
        args = map_arg(node.args, self._value_of)
        kwargs = map_arg(node.kwargs, self._value_of)
        if any(v is UNKNOWN for v in _flatten((args, kwargs))):
            return UNKNOWN
        self._replaying += 1
        try:
            with torch.no_grad():
                if node.op == "get_attr":
                    obj = self.root
                    for part in node.target.split("."):
                        obj = getattr(obj, part)
                    return obj
                if node.op == "call_function":
                    return node.target(*args, **kwargs)
                if node.op == "call_method":
                    return getattr(args[0], node.target)(*args[1:], **kwargs)
                if node.op == "call_module":
                    mod = self.root.get_submodule(node.target)
                    rec = self.recorded.get(id(mod))
                    if rec is not None and rec[2] is not None and _same(args, rec[0]) \
                            and _same(kwargs, rec[1]):
                        # The model's own run already computed this call.
                        return _copy(rec[2])
                    return mod(*args, **kwargs)
        except Exception:
            return UNKNOWN
        finally:
            self._replaying -= 1
        return UNKNOWN


def _is_module_result(node):
    """A child module's result, or an item of it."""
    while node.op == "call_function" and node.target is operator.getitem and \
            isinstance(node.args[0], fx.Node):
        node = node.args[0]
    return node.op == "call_module"


def _numbers_only(v):
    if isinstance(v, (int, float)):  # bool is an int
        return True
    return type(v) in (tuple, list) and len(v) > 0 and all(_numbers_only(x) for x in v)


def _is_structure(v):
    """None, a string, or a list or tuple of strings: values a model's
    code fixes, never computed from tensor data."""
    if v is None or isinstance(v, str):
        return True
    return isinstance(v, (list, tuple)) and not hasattr(v, "_fields") and \
        len(v) > 0 and all(isinstance(x, str) for x in v)


def _same(a, b):
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and \
            a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


def _copy(v):
    if isinstance(v, torch.Tensor):
        return v.clone()
    if isinstance(v, (list, tuple)) and not hasattr(v, "_fields"):
        return type(v)(_copy(x) for x in v)
    if isinstance(v, dict):
        return type(v)((k, _copy(x)) for k, x in v.items())
    return v


def _flatten(v):
    if isinstance(v, (list, tuple)):
        for x in v:
            yield from _flatten(x)
    elif isinstance(v, dict):
        for x in v.values():
            yield from _flatten(x)
    else:
        yield v


def trace(m, inputs, concrete_args=None, recorded=None):
    """Traces @m's forward.  Returns the tracer (its .graph, .concrete,
    .fixed).  @recorded: id(module) -> (args, kwargs, result) of its first
    call, reused instead of running a call with equal arguments again.
    Functions wrapped with torch.fx.wrap are traced through, so
    their bodies become ops; `len` in the forward's module is recorded."""
    tracer = ExportTracer(inputs, recorded)
    saved = list(fx_trace._wrapped_fns_to_patch)
    fn_globals = getattr(type(m).forward, "__globals__", None)
    # Factories given traced ints (torch.arange(0, t)) do not dispatch to a
    # Proxy by themselves: recorded as calls, as are tensors built from them.
    patch = [(torch.__dict__, name) for name in
             ("tensor", "as_tensor", "arange", "linspace", "zeros", "ones", "full", "empty",
              "eye", "tril_indices", "triu_indices")]
    # Functions wrapped with torch.fx.wrap stay one call only when a
    # converter handles them; the others are traced through.
    patch += [(d, name) for d, name in saved if name in d and registry.has_function(d[name])]
    if fn_globals is not None:
        patch.append((fn_globals, "len"))
    fx_trace._wrapped_fns_to_patch[:] = patch
    try:
        tracer.trace(m, concrete_args=concrete_args)
    finally:
        fx_trace._wrapped_fns_to_patch[:] = saved
    return tracer
