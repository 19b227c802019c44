"""nn.Module -> nnkit descriptor (version 2) + state_dict.

The tree is PyTorch's own: children in registration order under their own
names; a module registered twice becomes {"ref": first path} (named_modules
lists it once, state_dict under every path).  Each module is
  - a leaf layer, when a converter is registered for its exact class;
  - a container, when its forward is Sequential's (or it is a ModuleList,
    ModuleDict, or has no forward at all), "class" kept for printing;
  - otherwise a Graph: its own forward traced (tracer.py, graph.py), its
    own parameters and buffers declared.
"""

import copy
import inspect
import json
import os
import sys
import traceback
import warnings

import torch
import torch.nn as nn

from . import converters  # noqa: F401  (registers every converter)
from . import registry, safetensors_io, tracer
from .errors import ExportError, user_line
from .graph import GraphBuilder
from .plugins import Plugins
from .values import dtype_name

FORMAT_VERSION = 2

_CONTAINERS = ((nn.Sequential, "Sequential"), (nn.ModuleList, "ModuleList"),
               (nn.ModuleDict, "ModuleDict"))

ST_DTYPE = {torch.float32: "F32", torch.int64: "I64", torch.float16: "F16",
            torch.bfloat16: "BF16", torch.float64: "F64", torch.int32: "I32",
            torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


def _clone(v):
    if isinstance(v, torch.Tensor):
        return v.detach().clone()
    if isinstance(v, (list, tuple)):
        return type(v)(_clone(x) for x in v) if not hasattr(v, "_fields") else v
    if isinstance(v, dict):
        return type(v)((k, _clone(x)) for k, x in v.items())
    return v


def record_calls(model, inputs):
    """Runs @model on @inputs (name -> value) once; returns id(module) ->
    the (args, kwargs, result) of its first call, cloned (the arguments
    before it ran).  A call of a refused function (registry.refuse) fails
    the export there, naming the module that made it."""
    calls = {}
    patched = []
    running = []  # (path, module) of the modules inside whose forward we are
    paths = {id(mod): path for path, mod in model.named_modules()}

    def wrap(mod):
        inner = mod.forward

        def forward(*args, **kwargs):
            first = id(mod) not in calls
            if first:
                calls[id(mod)] = (_clone(args), _clone(kwargs), None)
            running.append((paths.get(id(mod), "?"), mod))
            try:
                out = inner(*args, **kwargs)
            finally:
                running.pop()
            if first:
                calls[id(mod)] = calls[id(mod)][:2] + (_clone(out),)
            return out
        return forward

    for mod in model.modules():
        if "forward" not in mod.__dict__:
            object.__setattr__(mod, "forward", wrap(mod))
            patched.append(mod)
    unpatch = _patch_refused(model, running)
    try:
        with torch.no_grad():
            model(**_clone(inputs))
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(f"forward on the example input failed in PyTorch: "
                          f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                          "", type(model).__name__, user_line(e.__traceback__)) from None
    finally:
        unpatch()
        for mod in patched:
            del mod.__dict__["forward"]
    return calls


def _patch_refused(model, running):
    """Replaces every refused function, in every loaded module that holds
    it under its name, by one that fails the export; returns the undo."""
    undo = []
    modules = list(sys.modules.values())
    for fn, why in registry.refused():
        name = getattr(fn, "__name__", None)
        # Named before patching: torch.randn_like is found by its name in
        # the torch namespace, which the patch replaces.
        qualified = registry.qualified_name(fn)

        def refusal(*args, _qualified=qualified, _why=why, **kwargs):
            path, mod = running[-1] if running else ("", model)
            caller = f"{path} ({type(mod).__name__})" if path else "its forward"
            raise ExportError(f"out of scope: {caller} calls {_qualified}: {_why}", "",
                              type(model).__name__, user_line(stack=traceback.extract_stack()))
        for space in modules:
            d = getattr(space, "__dict__", None)
            if name and isinstance(d, dict) and d.get(name) is fn:
                d[name] = refusal
                undo.append((d, name, fn))

    def restore():
        for d, name, fn in undo:
            d[name] = fn
    return restore


def _declared(m, path):
    """The Graph's own tensors: {"parameters": ..., "buffers": ...}."""
    out = {}
    params = {}
    for name, p in m._parameters.items():
        if p is None:
            continue
        params[name] = {"shape": list(p.shape), "dtype": _dtype(p, path, name)}
    buffers = {}
    for name, b in m._buffers.items():
        if b is None:
            continue
        buffers[name] = {"shape": list(b.shape), "dtype": _dtype(b, path, name),
                         "persistent": name not in m._non_persistent_buffers_set}
    if params:
        out["parameters"] = params
    if buffers:
        out["buffers"] = buffers
    return out


def _dtype(t, path, name):
    d = ST_DTYPE.get(t.dtype)
    if d is None:
        raise ExportError(f"tensor '{name}' has dtype {t.dtype}, which nnkit does not hold",
                          path)
    return d


class Converter:
    def __init__(self, model, calls, plugins):
        self.model = model
        self.calls = calls
        self.plugins = plugins
        self.first_path = {}
        self.warnings = []
        self.non_persistent = {}  # state key -> tensor, for the weights file

    def warn(self, text):
        self.warnings.append(text)

    def children(self, m, path):
        out = []
        for name, child in m._modules.items():
            if child is None:  # PyTorch skips None entries everywhere
                continue
            child_path = f"{path}.{name}" if path else name
            if id(child) in self.first_path:
                out.append({"name": name, "ref": self.first_path[id(child)]})
                continue
            self.first_path[id(child)] = child_path
            out.append({"name": name, **self.module(child, child_path)})
        return out

    def module(self, m, path):
        cls = type(m).__name__
        self._check_reparametrized(m, path)
        conv = registry.module_converter(m)
        if conv is not None:
            config = conv.config(m, path)
            try:
                self.plugins.check_type(conv.type_name, config)
                call = self.calls.get(id(m))
                if call is not None:
                    self.plugins.check_tensor_dtypes(conv.type_name, call[0], call[1],
                                                     lambda d: ST_DTYPE.get(d, str(d)))
            except ExportError as e:
                raise e.located(path, cls) from None
            node = self._node(conv.type_name, cls, config, self.children(m, path))
            # PyTorch prints what the module holds: a list the user passed
            # (MViT's MaxPool3d(kernel_size=[1, 3, 3])) shows as a list.
            lists = [k for k, v in (config or {}).items()
                     if isinstance(v, list) and isinstance(getattr(m, k, None), list)]
            if lists:
                node["repr_lists"] = lists
            return node
        ctype = self._container(m)
        if ctype is not None and not (m._parameters or m._buffers):
            try:
                self.plugins.check_type(ctype, None)
            except ExportError as e:
                raise e.located(path, cls) from None
            return self._node(ctype, cls, None, self.children(m, path))
        if type(m).__module__.startswith("torch.nn.modules") and \
                type(m).forward is not nn.Module.forward:
            raise ExportError(f"layer type torch.nn.{cls} has no converter (supported: "
                              + ", ".join(registry.module_types()) + ")", path, cls)
        if type(m).forward is nn.Module.forward:
            return self._holder(m, path)
        return self._graph(m, path)

    def _holder(self, m, path):
        """A module without forward that holds tensors (ParameterList,
        ParameterDict, a user's bag of parameters): a Graph that computes
        nothing and declares them, so that state_dict, named_modules and
        print(model) (its extra_repr lists the parameters) are PyTorch's.
        Its parent reads the tensors as attributes (`self.scales[0]` is the
        attr `scales.0`)."""
        cls = type(m).__name__
        try:
            self.plugins.check_type("Graph", None)
        except ExportError as e:
            raise e.located(path, cls) from None
        children = self.children(m, path)
        node = self._node("Graph", cls, {"inputs": [], "nodes": [], "output": None},
                          children)
        node.update(_declared(m, path))
        for name, b in m._buffers.items():
            if b is not None and name in m._non_persistent_buffers_set:
                self.non_persistent[f"{path}.{name}" if path else name] = b
        extra = self._extra_repr(m, path)
        if extra:
            node["extra_repr"] = extra
        return node

    def _check_reparametrized(self, m, path):
        """Refuses a module whose weights PyTorch recomputes on every call
        (torch.nn.utils.weight_norm / spectral_norm hooks, parametrize):
        its state_dict holds the parts (weight_g, weight_v, ...), nnkit's
        layer a plain weight.  Other hooks are not exported: a warning."""
        cls = type(m).__name__
        undo = {"WeightNorm": "torch.nn.utils.remove_weight_norm(module)",
                "SpectralNorm": "torch.nn.utils.remove_spectral_norm(module)"}
        for hook in m._forward_pre_hooks.values():
            kind = type(hook).__name__
            if kind in undo and type(hook).__module__.startswith("torch.nn.utils"):
                raise ExportError(f"its '{hook.name}' is recomputed by a {kind} hook "
                                  "(torch.nn.utils) on every call, which nnkit does not "
                                  f"run; bake it before exporting: {undo[kind]}", path, cls)
        if torch.nn.utils.parametrize.is_parametrized(m):
            keys = list(m.parametrizations.keys())
            names = ", ".join(f"'{n}'" for n in keys)
            raise ExportError(f"its {names} {'is' if len(keys) == 1 else 'are'} parametrized (torch.nn.utils.parametrize), "
                              "which nnkit does not run; bake it before exporting: "
                              "torch.nn.utils.parametrize.remove_parametrizations(module, "
                              "name)", path, cls)
        if m._forward_pre_hooks or m._forward_hooks:
            self.warn(f"{path or '<root>'} ({cls}): its forward hooks are not exported "
                      "(register them on the nnkit model)")

    @staticmethod
    def _container(m):
        for base, name in _CONTAINERS:
            if isinstance(m, base) and type(m).forward is base.forward:
                return name
        if type(m).forward is nn.Module.forward:
            # Only groups children (cannot be called), as a ModuleDict.
            return "ModuleDict"
        return None

    def _graph(self, m, path):
        cls = type(m).__name__
        try:
            self.plugins.check_type("Graph", None)
        except ExportError as e:
            raise e.located(path, cls) from None
        # Children first: a problem deep inside is reported where it is.
        children = self.children(m, path)
        inputs, concrete_args = self._trace_inputs(m, path)
        consts_before = set(m.__dict__)
        try:
            tr = tracer.trace(m, inputs, concrete_args, self.calls)
        except ExportError as e:
            raise e.located(path, cls, user_line(e.__traceback__)) from None
        except Exception as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            if isinstance(e, NotImplementedError) and msg.startswith("argument of type"):
                msg = (f"a value of type {msg.split(':', 1)[1].strip()} flows through the "
                       "forward; a Graph carries tensors, numbers, strings, tuples, lists "
                       "and dicts")
            elif "symbolically traced variables cannot be used as inputs to control flow" in msg:
                msg = ("data-dependent control flow: the forward branches on a traced "
                       "value, which a fixed graph cannot express")
            else:
                msg = f"torch.fx cannot trace the forward: {type(e).__name__}: {msg}"
            raise ExportError(msg, path, cls, user_line(e.__traceback__)) from None
        finally:
            for k in set(m.__dict__) - consts_before:
                if k.startswith("_tensor_constant"):
                    del m.__dict__[k]
        for node in tr.fixed:
            self.warn(f"{path or '<root>'} ({cls}): control flow on '{node.name}' fixed "
                      "at its value for the example input's shapes")
        builder = GraphBuilder(m, path, tr, self.plugins, self.warn)
        config = builder.build()
        node = self._node("Graph", cls, config, children)
        declared = _declared(m, path)
        for name, b in m._buffers.items():
            if b is not None and name in m._non_persistent_buffers_set:
                self.non_persistent[f"{path}.{name}" if path else name] = b
        node.update(declared)
        extra = self._extra_repr(m, path)
        if extra:
            # A Graph has no extra_repr of its own: print(model) shows this.
            node["extra_repr"] = extra
        return node

    def _extra_repr(self, m, path):
        """The text print(model) shows between the parentheses of @m's
        line: extra_repr(), or for a childless module whose class
        overrides __repr__ (torchvision's FrozenBatchNorm2d prints
        "FrozenBatchNorm2d(64, eps=1e-05)") what that __repr__ puts there."""
        if type(m).__repr__ is nn.Module.__repr__:
            return m.extra_repr()
        cls = type(m).__name__
        text = repr(m)
        if not any(True for _ in m.children()) and text.startswith(cls + "(") and \
                text.endswith(")") and "\n" not in text:
            return text[len(cls) + 1:-1]
        self.warn(f"{path or '<root>'} ({cls}): its class overrides __repr__; "
                  "nnkit prints it as a module with its extra_repr()")
        return m.extra_repr()

    def _trace_inputs(self, m, path):
        """Concrete inputs for tracing @m (from its first call, or none if
        it never ran) and the parameters fixed at their constant values."""
        try:
            sig = inspect.signature(m.forward)
        except (TypeError, ValueError) as e:
            raise ExportError(f"cannot inspect forward: {e}", path, type(m).__name__)
        call = self.calls.get(id(m))
        if call is None:
            self.warn(f"{path or '<root>'} ({type(m).__name__}): never called on the "
                      "example input; traced without shapes")
            return {}, None
        args, kwargs, _ = call
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as e:
            raise ExportError(f"its recorded call does not fit forward: {e}", path,
                              type(m).__name__)
        bound.apply_defaults()
        inputs, fixed = {}, {}
        for name, value in bound.arguments.items():
            kind = sig.parameters[name].kind
            if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                inputs[name] = _clone(value)
            elif value is None or isinstance(value, (bool, str)):
                # `if mask is not None:` must see the None the call passed;
                # such arguments are fixed, as fx's concrete_args.
                fixed[name] = value
            else:
                inputs[name] = _clone(value)
        return inputs, fixed or None

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


def _check_state_dict(state):
    for key, t in state.items():
        if t.is_quantized or t.layout != torch.strided:
            raise ExportError(f"state_dict entry '{key}': quantized or sparse tensors "
                              "are not supported")
        if t.dtype not in ST_DTYPE:
            raise ExportError(f"state_dict entry '{key}': dtype {t.dtype} is not supported")


def tied_keys(model):
    """{alias key: first key} for every tensor held by two slots (as
    `m.lm_head.weight = m.wte.weight`), keys as state_dict shows them.  A
    module reachable by two paths is one slot, not a tie."""
    first = {}
    ties = {}
    for path, mod in model.named_modules(remove_duplicate=False):
        slots = list(mod._parameters.items())
        slots += [(n, b) for n, b in mod._buffers.items()
                  if n not in mod._non_persistent_buffers_set]
        for name, t in slots:
            if t is None:
                continue
            key = f"{path}.{name}" if path else name
            seen = first.get(id(t))
            if seen is None:
                first[id(t)] = (key, mod, name)
            elif not (seen[1] is mod and seen[2] == name):
                ties[key] = seen[0]
    return ties


def default_inputs(model, input_shape=None):
    """Example inputs when none are given: one float32 tensor of
    @input_shape (default [1, 3, 224, 224], torchvision's classifiers)
    for the forward's first parameter."""
    sig = inspect.signature(model.forward)
    params = [p for p in sig.parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in params if p.default is p.empty]
    if not params:
        raise ExportError("forward takes no tensor argument", "", type(model).__name__)
    if len(required) > 1:
        raise ExportError("forward takes " + ", ".join(p.name for p in required) +
                          "; give one example tensor per argument (--example-input)",
                          "", type(model).__name__)
    shape = tuple(input_shape or (1, 3, 224, 224))
    gen = torch.Generator().manual_seed(0)
    return {params[0].name: torch.randn(*shape, generator=gen)}


def inputs_spec(inputs):
    spec = []
    for name, t in inputs.items():
        if not isinstance(t, torch.Tensor):
            raise ExportError(f"example input '{name}' is not a tensor")
        spec.append({"name": name, "shape": list(t.shape), "dtype": _dtype(t, "", name)})
    return spec


def convert(model, input_shape=None, inputs=None, plugins=None, warnings_out=None):
    """Returns (descriptor dict, state_dict, extra tensors) for @model in
    eval mode.  @inputs: example inputs by forward argument name (default:
    default_inputs(@input_shape)); @plugins: a Plugins to check against
    (default: none).  The model's training flags are restored."""
    if not isinstance(model, nn.Module):
        raise ExportError(f"expected a torch.nn.Module, got {type(model).__name__}")
    plugins = plugins or Plugins.unchecked()
    modes = {mod: mod.training for mod in model.modules()}
    model.eval()
    try:
        if inputs is None:
            inputs = default_inputs(model, input_shape)
        calls = record_calls(model, inputs)
        conv = Converter(model, calls, plugins)
        conv.first_path[id(model)] = ""
        root = conv.module(model, "")
        state = model.state_dict()
    finally:
        for mod, training in modes.items():
            mod.training = training
    _check_state_dict(state)
    if warnings_out is not None:
        warnings_out.extend(conv.warnings)
    spec = inputs_spec(inputs)
    # "inputs" supersedes version 1's "input_shape" (a loader takes one).
    descriptor = {"format": "nnkit", "version": FORMAT_VERSION, "inputs": spec}
    descriptor["model"] = root
    ties = tied_keys(model)
    if ties:
        descriptor["tied"] = ties
    return descriptor, state, conv.non_persistent


def _pretty(value, indent, lead=0, width=100):
    """JSON with small values kept on one line, so a descriptor reads like
    the tree it describes."""
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


def export(model, out_path, input_shape=None, inputs=None, plugins=None,
           warnings_out=None):
    """Exports @model to @out_path: a .safetensors path gets one file with
    the descriptor in __metadata__["nnkit.descriptor"]; any other path gets
    the descriptor, with the weights beside it (stem + .safetensors).  Both
    writes are atomic, weights first.  Returns the descriptor dict."""
    descriptor, state, extra = convert(model, input_shape, inputs, plugins, warnings_out)
    tensors = dict(state)
    # Non-persistent buffers are not in state_dict but nnkit needs their
    # values; they travel in the weights file under their dotted names.
    for key, t in extra.items():
        tensors.setdefault(key, t)
    text = descriptor_text(descriptor)
    out_path = os.fspath(out_path)
    if out_path.endswith(".safetensors"):
        safetensors_io.write(out_path, tensors, {"nnkit.descriptor": text})
    else:
        weights = weights_path_for(out_path)
        if os.path.abspath(weights) == os.path.abspath(out_path):
            raise ExportError(f"{out_path}: descriptor and weights paths coincide")
        safetensors_io.write(weights, tensors)
        safetensors_io.atomic_write_bytes(out_path, [text.encode("utf-8")])
    return descriptor
