"""One module's forward as an nnkit Graph: trace with torch.fx, treating
every submodule as a leaf, so each level of the hierarchy gets its own
Graph over its direct children.

Values flowing through the traced code are tensors (named graph values),
input lists (a child called with a list of tensors), or shape expressions
(x.size(), x.shape[0]) that only patterns such as x.view(x.size(0), -1)
may consume.  In-place ops are rewritten as dataflow: after `out += y`
every later read of `out` reads the add's result, as it does in PyTorch.
"""

import inspect

import torch
import torch.fx as fx
import torch.fx._symbolic_trace as fx_trace_mod
from torch.fx.passes.shape_prop import ShapeProp

from .errors import ExportError
from .layers import jsonable
from . import ops


class Val:
    """What an fx node evaluates to.  kind: 'tensor' (graph value @name),
    'elem' (element @index of an input list of tensors), 'size' (@name's
    shape) or 'dim' (extent @index of @name's shape)."""

    def __init__(self, kind, name, shape=None, index=None):
        self.kind = kind
        self.name = name
        self.shape = shape
        self.index = index

    def __repr__(self):
        if self.kind == "dim":
            return f"{self.name}.size({self.index})"
        if self.kind == "size":
            return f"{self.name}.size()"
        if self.kind == "elem":
            return f"{self.name}[{self.index}]"
        return self.name


class _LeafTracer(fx.Tracer):
    """Records every submodule call as call_module: children become their
    own Graphs (or leaves) one level down."""

    def is_leaf_module(self, m, module_qualified_name):
        return True


class _OpFailure(Exception):
    pass


class _Context:
    """What an op handler sees of the node being converted."""

    def __init__(self, builder, node, raw, bound, what):
        self.b = builder
        self.node = node
        self.raw = raw
        self.a = bound
        self.what = what

    def fail(self, msg):
        raise _OpFailure(f"{self.what}: {msg}")

    def _val(self, a, key, kinds):
        v = a[key]
        if not isinstance(v, Val) or v.kind not in kinds:
            self.fail(f"argument '{key}' is {self.describe(v)}; expected a tensor")
        return v

    def tensor(self, a, key):
        return self._val(a, key, ("tensor",)).name

    def shape(self, a, key):
        return self._val(a, key, ("tensor",)).shape

    def const(self, a, key, typ=None):
        v = a[key]
        if _contains_val(v):
            self.fail(f"argument '{key}' is computed ({self.describe(v)}); "
                      "only constants are supported")
        if typ is not None and (not isinstance(v, typ) or isinstance(v, bool)):
            self.fail(f"argument '{key}'={v!r}; expected {typ.__name__}")
        try:
            return jsonable(v)
        except TypeError as e:
            self.fail(f"argument '{key}': {e}")

    def size_arg(self, a, key):
        v = self.const(a, key)
        if v is None or (isinstance(v, list) and None in v):
            self.fail(f"argument '{key}'={v!r}: None sizes are not supported")
        return v

    def describe(self, v):
        if isinstance(v, Val):
            return f"'{v!r}'"
        if isinstance(v, (list, tuple)):
            return "(" + ", ".join(self.describe(x) for x in v) + ")"
        return repr(v)

    def emit(self, op, inputs, kwargs=None, suffix=None):
        return self.b.emit_op(self.node, op, inputs, kwargs, suffix)

    def inplace(self, key):
        target = self.raw.get(key)
        if isinstance(target, fx.Node):
            self.b.inplace_targets.append(target)

    def cat(self, tensors, dim):
        if not isinstance(tensors, (list, tuple)) or not tensors:
            self.fail(f"tensors={self.describe(tensors)}; expected a list of tensors")
        if any(isinstance(t, Val) and t.kind == "elem" for t in tensors):
            if [getattr(t, "index", None) for t in tensors] != list(range(self.b.list_len)):
                self.fail("the input list may only be concatenated whole, in order")
            return self.b.take_list_input(dim, self)
        names = [self.tensor({"tensors": t}, "tensors") for t in tensors]
        return self.emit("cat", names, {"dim": dim})

    def is_dim_of(self, v, a, key, index):
        base = self._val(a, key, ("tensor",))
        if not (isinstance(v, Val) and v.kind == "dim" and v.name == base.name):
            return False
        if v.index == index:
            return True
        return base.shape is not None and v.index == index - len(base.shape)

    def size_of(self, a, key, dim):
        base = self._val(a, key, ("tensor",))
        if dim is None:
            return Val("size", base.name, base.shape)
        if not isinstance(dim, int):
            self.fail(f"dim={self.describe(dim)}")
        return Val("dim", base.name, base.shape, dim)

    def index_size(self, a, key, index):
        v = a[key]
        if not isinstance(v, Val) or v.kind != "size":
            self.fail(f"indexing {self.describe(v)}: only x.size()[i] / x.shape[i] "
                      "are supported")
        if not isinstance(index, int):
            self.fail(f"index {self.describe(index)}")
        return Val("dim", v.name, v.shape, index)


def _contains_val(v):
    if isinstance(v, Val):
        return True
    if isinstance(v, (list, tuple)):
        return any(_contains_val(x) for x in v)
    if isinstance(v, dict):
        return any(_contains_val(x) for x in v.values())
    return False


def trace(m, path, list_len=None):
    """Traces @m's own forward; @list_len: its input is a list of that many
    tensors.  Extra forward parameters are fixed at their defaults.
    Returns the fx Graph; raises ExportError naming @path when torch.fx
    cannot trace it (data-dependent control flow, iterating a traced
    value, ...)."""
    cls = type(m).__name__
    try:
        params = list(inspect.signature(m.forward).parameters.values())
    except (TypeError, ValueError) as e:
        raise ExportError(f"{path or '<root>'}: {cls}: cannot inspect forward: {e}") from e
    if not params or params[0].kind not in (inspect.Parameter.POSITIONAL_ONLY,
                                            inspect.Parameter.POSITIONAL_OR_KEYWORD):
        raise ExportError(f"{path or '<root>'}: {cls}: forward must take one tensor argument")
    concrete = {}
    if list_len is not None:
        concrete[params[0].name] = [fx_trace_mod.PH] * list_len
    for p in params[1:]:
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        if p.default is inspect.Parameter.empty:
            raise ExportError(f"{path or '<root>'}: {cls}: forward takes a second "
                              f"required argument '{p.name}'; nnkit modules take one tensor")
        concrete[p.name] = p.default
    try:
        return _LeafTracer().trace(m, concrete_args=concrete or None)
    except Exception as e:  # fx raises TraceError, TypeError, NameError, ...
        raise ExportError(f"{path or '<root>'}: {cls}: torch.fx cannot trace its forward: "
                          f"{type(e).__name__}: {e}") from e


def propagate_shapes(m, graph, example):
    """Annotates @graph's nodes with tensor shapes by running it on
    @example.  Best effort: shapes only refine pattern matching."""
    if example is None:
        return
    try:
        gm = fx.GraphModule(m, graph)
        with torch.no_grad():
            ShapeProp(gm).propagate(*(example if isinstance(example, list) else [example]))
    except Exception:
        for n in graph.nodes:
            n.meta.pop("tensor_meta", None)


def _node_shape(n):
    meta = n.meta.get("tensor_meta")
    shape = getattr(meta, "shape", None)
    return tuple(shape) if shape is not None else None


def _map_args(v, fn):
    if isinstance(v, fx.Node):
        return fn(v)
    if isinstance(v, (list, tuple)):
        return type(v)(_map_args(x, fn) for x in v)
    if isinstance(v, dict):
        return {k: _map_args(x, fn) for k, x in v.items()}
    return v


class GraphBuilder:
    """Turns a traced fx graph of module @m at @path into a Graph config.

    @children: direct child name -> (nnkit type, config or None).
    @list_len: the module is called with a list of that many tensors; the
    list may only feed one torch.cat, which moves into the caller: the
    Graph then takes the concatenated tensor (list_cat_dim tells the
    caller the dim)."""

    def __init__(self, m, path, graph, children, list_len=None):
        self.m = m
        self.path = path or "<root>"
        self.cls = type(m).__name__
        self.graph = graph
        self.children = children
        self.list_len = list_len
        self.list_cat_dim = None
        self.nodes = []
        self.names = set()
        self.inplace_targets = []
        self.values = {}
        self.input_name = None
        self.child_calls = []

    # --- emitting ------------------------------------------------------

    def _unique(self, base):
        name, i = base, 1
        while name in self.names:
            name = f"{base}_{i}"
            i += 1
        self.names.add(name)
        return name

    def emit_op(self, node, op, inputs, kwargs, suffix):
        name = self._unique(node.name if suffix is None else f"{node.name}_{suffix}")
        entry = {"name": name, "op": op, "args": list(inputs)}
        if kwargs:
            entry["kwargs"] = kwargs
        self.nodes.append(entry)
        return Val("tensor", name, _node_shape(node))

    def emit_module(self, node, child, inputs):
        name = self._unique(node.name)
        self.nodes.append({"name": name, "module": child, "args": list(inputs)})
        return Val("tensor", name, _node_shape(node))

    def take_list_input(self, dim, ctx):
        if self.list_cat_dim is not None and self.list_cat_dim != dim:
            ctx.fail(f"the input list is concatenated along dims {self.list_cat_dim} and {dim}")
        self.list_cat_dim = dim
        return Val("tensor", self.input_name)

    # --- conversion ------------------------------------------------------

    def _fail(self, msg):
        raise ExportError(f"{self.path}: {self.cls}: {msg}")

    def _resolve(self, v):
        def one(n):
            if n not in self.values:
                self._fail(f"value '{n.name}' is used before it is defined")
            return self.values[n]
        return _map_args(v, one)

    def build(self):
        """Returns the Graph config {"inputs", "nodes", "output"}."""
        placeholders = [n for n in self.graph.nodes if n.op == "placeholder"]
        n_inputs = self.list_len or 1
        if len(placeholders) < n_inputs:
            self._fail("forward takes no input")
        for n in placeholders:
            self.names.add(n.name)
        if self.list_len is None:
            self.input_name = placeholders[0].name
            self.values[placeholders[0]] = Val("tensor", self.input_name,
                                               _node_shape(placeholders[0]))
        else:
            # fx names the elements input_1, input_2, ...; the Graph's one
            # input is the concatenated list, under the parameter's name.
            self.input_name = self._unique(
                inspect.signature(self.m.forward).parameters and
                next(iter(inspect.signature(self.m.forward).parameters)))
            for i, n in enumerate(placeholders[:n_inputs]):
                self.values[n] = Val("elem", self.input_name, _node_shape(n), i)
        # The other parameters are fixed at their defaults (trace()).
        for n in placeholders[n_inputs:]:
            self.values[n] = n.args[0] if n.args else None
        output = None
        for n in self.graph.nodes:
            if n.op == "placeholder":
                continue
            if n.op == "output":
                output = n
                break
            self.inplace_targets = []
            self.values[n] = self._convert(n)
            # After an in-place op the mutated value *is* the result.
            for target in self.inplace_targets:
                self.values[target] = self.values[n]
        if output is None:
            self._fail("traced graph has no output")
        result = self._resolve(output.args[0])
        if self.list_len is not None and isinstance(result, (list, tuple)) and len(result) == 1:
            # A list input makes fx flatten the output as a pytree too.
            result = result[0]
        if not isinstance(result, Val) or result.kind != "tensor":
            self._fail(f"forward returns {_Context(self, output, {}, {}, '').describe(result)}; "
                       "nnkit modules return one tensor")
        if self.list_len is not None and self.list_cat_dim is None:
            self._fail("is called with a list of tensors but does not "
                       "torch.cat its input")
        return {"inputs": [self.input_name], "nodes": self.nodes,
                "output": result.name}

    def _convert(self, n):
        if n.op == "get_attr":
            self._fail(f"forward reads attribute '{n.target}' directly "
                       "(parameters and buffers must belong to child layers)")
        if n.op == "call_module":
            return self._convert_module(n)
        if n.op in ("call_function", "call_method"):
            return self._convert_call(n)
        self._fail(f"unsupported fx node kind '{n.op}' ({n.name})")

    def _convert_module(self, n):
        target = n.target
        if target not in self.children:
            self._fail(f"forward calls '{target}', which is not a direct child; "
                       "only children can be called from a Graph")
        if n.kwargs or len(n.args) != 1:
            self._fail(f"child '{target}' is called with {len(n.args)} positional and "
                       f"{len(n.kwargs)} keyword arguments; nnkit modules take one tensor")
        arg = self._resolve(n.args[0])
        child_type, child_config, list_dim = self.children[target]
        if isinstance(arg, (list, tuple)):
            if list_dim is None:
                self._fail(f"child '{target}' is called with a list of tensors")
            for v in arg:
                if not isinstance(v, Val) or v.kind != "tensor":
                    self._fail(f"child '{target}' is called with a list holding "
                               f"{_Context(self, n, {}, {}, '').describe(v)}")
            # The child's leading torch.cat moves here (see list_len).
            cat = self.emit_op(n, "cat", [v.name for v in arg], {"dim": list_dim}, "input")
            self.child_calls.append(target)
            return self.emit_module(n, target, [cat.name])
        if not isinstance(arg, Val) or arg.kind != "tensor":
            self._fail(f"child '{target}' is called with "
                       f"{_Context(self, n, {}, {}, '').describe(arg)}; expected a tensor")
        if list_dim is not None:
            self._fail(f"child '{target}' takes a list of tensors here but a tensor elsewhere")
        if child_config and child_config.get("inplace") is True:
            self.inplace_targets.append(n.args[0])
        self.child_calls.append(target)
        return self.emit_module(n, target, [arg.name])

    def _convert_call(self, n):
        table = ops.METHODS if n.op == "call_method" else ops.FUNCTIONS
        try:
            entry = table.get(n.target)
        except TypeError:  # unhashable target
            entry = None
        what = ops.target_name(n.op, n.target)
        if entry is None and n.op == "call_function" and n.target in ops.FOLDABLE:
            args = self._resolve(n.args)
            kwargs = self._resolve(n.kwargs)
            if not _contains_val(args) and not _contains_val(kwargs):
                # Constant expressions, e.g. fx's checks on fixed arguments.
                try:
                    return n.target(*args, **kwargs)
                except Exception as e:
                    self._fail(f"op {what} ({n.name}) on constants failed: {e}")
        if entry is None:
            self._fail(f"op {what} ({n.name}) is not supported by nnkit")
        spec, handler = entry
        try:
            raw = ops.bind(spec, n.args, n.kwargs, what)
            bound = ops.bind(spec, self._resolve(n.args), self._resolve(n.kwargs), what)
            return handler(_Context(self, n, raw, bound, f"op {what} ({n.name})"), bound)
        except (_OpFailure, TypeError) as e:
            self._fail(str(e))
