"""The converter registry: each converter is registered by a decorator
beside its code (nnexport/converters/<family>.py), so adding a layer or an
op touches one place.  Nothing here names a layer or an op.

Module converters turn a leaf nn.Module (matched by exact class: a subclass
may change forward or extra_repr) into an nnkit layer type and its config.
Op converters turn a traced call (call_function target, or call_method
name) into Graph op nodes; see OpCall for what they may do.
"""

import builtins
import math
import operator

import torch

from .errors import ExportError

_MODULES = {}   # class -> ModuleConverter
_REFUSED = {}   # id(callable) -> (callable, why)
_FUNCTIONS = {}  # id(callable) -> (callable, OpConverter)
_METHODS = {}    # Tensor method name -> OpConverter


class ModuleConverter:
    def __init__(self, type_name, fn):
        self.type_name = type_name
        self.fn = fn

    def config(self, m, path):
        """The layer's config: a dict of JSON data under PyTorch's
        constructor argument names."""
        try:
            return self.fn(m)
        except (TypeError, ValueError) as e:
            raise ExportError(str(e), path, type(m).__name__) from e


def converter(*classes, type=None):
    """Registers the decorated fn(module) -> config dict for @classes, as
    nnkit layer type @type (default: the first class's name)."""
    def register(fn):
        for cls in classes:
            if cls is None:  # an optional dependency that is missing
                continue
            if cls in _MODULES:
                raise RuntimeError(f"two converters for {cls.__qualname__}")
            _MODULES[cls] = ModuleConverter(type or classes[0].__name__, fn)
        return fn
    return register


def module_converter(m):
    """The converter for @m's exact class, or None."""
    return _MODULES.get(builtins.type(m))


def module_types():
    return sorted({c.type_name for c in _MODULES.values()})


def qualified_name(target):
    """"torch.add", "operator.mul", "torch.nn.functional.relu", ... for a
    call_function target; "Tensor.view" for a method name."""
    if isinstance(target, str):
        return f"Tensor.{target}"
    short = getattr(target, "__name__", None)
    if short:
        for space, prefix in ((operator, "operator"), (torch, "torch"),
                              (torch.nn.functional, "torch.nn.functional"),
                              (math, "math"), (builtins, "builtins")):
            if getattr(space, short, None) is target:
                return f"{prefix}.{short}"
    mod = getattr(target, "__module__", None) or ""
    name = getattr(target, "__qualname__", None) or short or repr(target)
    # torch.special.erfcx is torch._C._special.special_erfcx, and so on.
    for space in ("special", "linalg", "fft"):
        if mod == f"torch._C._{space}" and name.startswith(space + "_"):
            return f"torch.{space}.{name[len(space) + 1:]}"
    if mod == "torch._C._nn":
        return f"torch.nn.functional.{name}"
    return f"{mod}.{name}" if mod else name


class OpConverter:
    def __init__(self, names, fn, mutates):
        self.names = names     # op names to emit, in order of preference
        self.fn = fn
        self.mutates = mutates  # index of the argument an in-place op mutates


def _default(call):
    return call.emit()


def op_converter(*targets, name=None, mutates=None):
    """Registers the decorated fn(call: OpCall) for @targets: callables
    (call_function targets: torch.add, operator.add, F.relu) and strings
    (Tensor method names: "add").  @name: the op emitted (default: the
    first target's short name); @mutates: the argument an in-place op
    mutates (later reads of it read the op's result)."""
    def register(fn):
        short = name or (targets[0] if isinstance(targets[0], str)
                         else targets[0].__name__)
        names = [short] + [qualified_name(t) for t in targets]
        entry = OpConverter(list(dict.fromkeys(names)), fn, mutates)
        # Some spellings are one object (F.relu_ is torch.relu_).
        unique = {(t if isinstance(t, str) else id(t)): t for t in targets if t is not None}
        for t in unique.values():
            if isinstance(t, str):
                if t in _METHODS:
                    raise RuntimeError(f"two converters for Tensor.{t}")
                _METHODS[t] = entry
            else:
                if id(t) in _FUNCTIONS:
                    raise RuntimeError(f"two converters for {qualified_name(t)}")
                _FUNCTIONS[id(t)] = (t, entry)
        return fn
    return register


def ops(*targets, name=None, mutates=None):
    """Registers @targets as one op passed through as called: the call's
    args and kwargs become the node's, the C op binds them as PyTorch
    does."""
    op_converter(*targets, name=name, mutates=mutates)(_default)


def has_function(fn):
    """Whether a converter handles calls of @fn (a torch.fx.wrap'ed
    function is kept as one call only then)."""
    entry = _FUNCTIONS.get(id(fn))
    return entry is not None and entry[0] is fn


def op_for(kind, target):
    """The OpConverter for an fx call_function / call_method, or None."""
    if kind == "call_method":
        return _METHODS.get(target)
    entry = _FUNCTIONS.get(id(target))
    return entry[1] if entry is not None and entry[0] is target else None


def display_target(kind, target):
    """How an error names a traced call: torch.Tensor.foo, torch.roll."""
    if kind == "call_method":
        return f"torch.Tensor.{target}"
    return qualified_name(target)



def refuse(*functions, why):
    """Declares that a model calling any of @functions cannot be exported,
    for the reason @why (torchvision's NMS: detectors keep a data-dependent
    number of boxes).  The exporter fails at the first such call of the
    example run, naming the function, the calling module and @why."""
    for fn in functions:
        if fn is None:  # an optional dependency that is missing
            continue
        if id(fn) in _REFUSED:
            raise RuntimeError(f"{qualified_name(fn)} refused twice")
        _REFUSED[id(fn)] = (fn, why)


def refused():
    """[(callable, why)] of every refused function."""
    return list(_REFUSED.values())
