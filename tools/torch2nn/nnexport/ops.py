"""torch.fx call_function / call_method targets and the Graph ops they become.

Each entry is a PyTorch signature (so positional and keyword calls bind the
same way) and a handler.  A handler reads bound arguments through the
context (tensor values, constants, known shapes) and emits Graph nodes;
constant arguments become the node's kwargs.  Ops without a lower-case
functional spelling in nnkit use the layer type's name and config keys
(F.hardsigmoid -> "Hardsigmoid").
"""

import builtins
import operator

import torch
import torch.fx._symbolic_trace  # noqa: F401 (FOLDABLE)
import torch.nn.functional as F


REQUIRED = object()
VARARGS = object()


def _binary(op, inplace=False, alpha=False):
    def handler(ctx, a):
        if alpha and a["alpha"] != 1:
            ctx.fail(f"alpha={a['alpha']!r} (only 1)")
        out = ctx.emit(op, [ctx.tensor(a, "input"), ctx.tensor(a, "other")])
        if inplace:
            ctx.inplace("input")
        return out
    return handler


def _cat(ctx, a):
    dim = ctx.const(a, "dim", int)
    return ctx.cat(a["tensors"], dim)


def _flatten(ctx, a):
    return ctx.emit("flatten", [ctx.tensor(a, "input")],
                    {"start_dim": ctx.const(a, "start_dim", int),
                     "end_dim": ctx.const(a, "end_dim", int)})


def _relu(inplace=False):
    def handler(ctx, a):
        out = ctx.emit("relu", [ctx.tensor(a, "input")])
        if inplace or a.get("inplace") is True:
            ctx.inplace("input")
        return out
    return handler


def _adaptive_avg(ctx, a):
    return ctx.emit("adaptive_avg_pool2d", [ctx.tensor(a, "input")],
                    {"output_size": ctx.size_arg(a, "output_size")})


def _layer(type_name, keys, inplace_key=None, fixed=None, defaults_from=None):
    """An op applying layer type @type_name with config @keys read from the
    bound arguments.  @fixed: argument -> the only value nnkit supports.
    @defaults_from: key -> key whose value it takes when None (F.max_pool2d's
    stride defaults to kernel_size, as MaxPool2d does)."""
    def handler(ctx, a):
        for k, want in (fixed or {}).items():
            if a[k] != want:
                ctx.fail(f"{k}={a[k]!r} (nnkit supports only {want!r})")
        config = {}
        for k in keys:
            v = a[k]
            if defaults_from and k in defaults_from and v in (None, [], ()):
                v = a[defaults_from[k]]
            config[k] = ctx.const({k: v}, k)
        out = ctx.emit(type_name, [ctx.tensor(a, "input")], config)
        if inplace_key and a.get(inplace_key) is True:
            ctx.inplace("input")
        return out
    return handler


def _eval_only(type_name, keys):
    """F.dropout-like ops: identity in eval only when training=False was
    passed; training=True (the functional default) stays random."""
    def handler(ctx, a):
        if a["training"] is not False:
            ctx.fail(f"training={a['training']!r}: the op is random; nnkit "
                     "exports eval-mode models (pass training=self.training)")
        out = ctx.emit(type_name, [ctx.tensor(a, "input")],
                       {k: ctx.const(a, k) for k in keys})
        if a.get("inplace") is True:
            ctx.inplace("input")
        return out
    return handler


def _softmax(ctx, a):
    if a["dtype"] is not None:
        ctx.fail(f"dtype={a['dtype']!r}")
    if a["dim"] is None:
        ctx.fail("dim=None (PyTorch picks an implicit dim; give it explicitly)")
    return ctx.emit("Softmax", [ctx.tensor(a, "input")],
                    {"dim": ctx.const(a, "dim", int)})


def _mean(ctx, a):
    """x.mean([2, 3]) over the spatial dims of an NCHW tensor is global
    average pooling; anything else has no nnkit op."""
    if a.get("dtype") is not None:
        ctx.fail(f"dtype={a['dtype']!r}")
    dims = a["dim"]
    if isinstance(dims, int):
        dims = [dims]
    shape = ctx.shape(a, "input")
    if dims is None or shape is None or len(shape) != 4:
        ctx.fail(f"dim={dims!r} on shape {shape}: only the spatial mean "
                 "[2, 3] of a known 4-d tensor maps to adaptive_avg_pool2d")
    if sorted(d % 4 for d in dims) != [2, 3]:
        ctx.fail(f"dim={dims!r}: only the spatial mean [2, 3] is supported")
    pooled = ctx.emit("adaptive_avg_pool2d", [ctx.tensor(a, "input")],
                      {"output_size": 1})
    if a["keepdim"]:
        return pooled
    return ctx.emit("flatten", [pooled.name], {"start_dim": 1, "end_dim": -1},
                    suffix="flatten")


def _view(ctx, a):
    """view/reshape: x.view(x.size(0), -1) is flatten(1) and x.view(-1) is
    flatten(0) whatever the input size; other shapes are fixed sizes that
    would not follow the input, so they fail."""
    t = ctx.tensor(a, "input")
    shape = a["shape"]
    if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
        shape = list(shape[0])
    if list(shape) == [-1]:
        return ctx.emit("flatten", [t], {"start_dim": 0, "end_dim": -1})
    if len(shape) == 2 and shape[1] == -1 and ctx.is_dim_of(shape[0], a, "input", 0):
        return ctx.emit("flatten", [t], {"start_dim": 1, "end_dim": -1})
    ctx.fail(f"shape {ctx.describe(shape)}: only x.view(x.size(0), -1) and "
             "x.view(-1) (flatten) are supported")


def _size(ctx, a):
    return ctx.size_of(a, "input", a["dim"])


def _getattr(ctx, a):
    if a["name"] != "shape":
        ctx.fail(f"attribute '{a['name']}' of a traced value")
    return ctx.size_of(a, "input", None)


def _getitem(ctx, a):
    return ctx.index_size(a, "input", a["index"])


def _alias(ctx, a):
    ctx.tensor(a, "input")
    return a["input"]


def _stochastic_depth_fn(ctx, a):
    return _eval_only("StochasticDepth", ["p", "mode"])(ctx, a)


_UNARY = (("input", REQUIRED),)
_INPLACE = (("input", REQUIRED), ("inplace", False))
_BINARY = (("input", REQUIRED), ("other", REQUIRED))
_ADD = _BINARY + (("alpha", 1),)
_MAXPOOL = (("input", REQUIRED), ("kernel_size", REQUIRED), ("stride", None),
            ("padding", 0), ("dilation", 1), ("ceil_mode", False),
            ("return_indices", False))
_AVGPOOL = (("input", REQUIRED), ("kernel_size", REQUIRED), ("stride", None),
            ("padding", 0), ("ceil_mode", False), ("count_include_pad", True),
            ("divisor_override", None))
_FLATTEN = (("input", REQUIRED), ("start_dim", 0), ("end_dim", -1))
_SOFTMAX = (("input", REQUIRED), ("dim", None), ("_stacklevel", 3),
            ("dtype", None))
_MEAN = (("input", REQUIRED), ("dim", None), ("keepdim", False), ("dtype", None))
_VIEW = (("input", REQUIRED), ("shape", VARARGS))

_maxpool = _layer("MaxPool2d", ["kernel_size", "stride", "padding", "dilation",
                                "ceil_mode"],
                  fixed={"return_indices": False},
                  defaults_from={"stride": "kernel_size"})
_avgpool = _layer("AvgPool2d", ["kernel_size", "stride", "padding", "ceil_mode",
                                "count_include_pad", "divisor_override"],
                  defaults_from={"stride": "kernel_size"})
_dropout = _eval_only("Dropout", ["p", "inplace"])

# call_function targets.
FUNCTIONS = {
    operator.add: (_BINARY, _binary("add")),
    operator.iadd: (_BINARY, _binary("add", inplace=True)),
    torch.add: (_ADD, _binary("add", alpha=True)),
    operator.mul: (_BINARY, _binary("mul")),
    operator.imul: (_BINARY, _binary("mul", inplace=True)),
    torch.mul: (_BINARY, _binary("mul")),
    torch.cat: ((("tensors", REQUIRED), ("dim", 0)), _cat),
    torch.concat: ((("tensors", REQUIRED), ("dim", 0)), _cat),
    torch.flatten: (_FLATTEN, _flatten),
    F.relu: (_INPLACE, _relu()),
    torch.relu: (_UNARY, _relu()),
    torch.relu_: (_UNARY, _relu(inplace=True)),
    F.adaptive_avg_pool2d: ((("input", REQUIRED), ("output_size", REQUIRED)),
                            _adaptive_avg),
    F.adaptive_max_pool2d: ((("input", REQUIRED), ("output_size", REQUIRED),
                             ("return_indices", False)),
                            _layer("AdaptiveMaxPool2d", ["output_size"],
                                   fixed={"return_indices": False})),
    F.max_pool2d: (_MAXPOOL, _maxpool),
    torch.max_pool2d: (_MAXPOOL, _maxpool),
    F.avg_pool2d: (_AVGPOOL, _avgpool),
    F.hardsigmoid: (_INPLACE, _layer("Hardsigmoid", ["inplace"], "inplace")),
    F.hardswish: (_INPLACE, _layer("Hardswish", ["inplace"], "inplace")),
    F.silu: (_INPLACE, _layer("SiLU", ["inplace"], "inplace")),
    F.relu6: (_INPLACE, _layer("ReLU6", ["inplace"], "inplace")),
    F.hardtanh: ((("input", REQUIRED), ("min_val", -1.0), ("max_val", 1.0),
                  ("inplace", False)),
                 _layer("Hardtanh", ["min_val", "max_val", "inplace"], "inplace")),
    F.gelu: ((("input", REQUIRED), ("approximate", "none")),
             _layer("GELU", ["approximate"])),
    torch.sigmoid: (_UNARY, _layer("Sigmoid", [])),
    F.sigmoid: (_UNARY, _layer("Sigmoid", [])),
    torch.tanh: (_UNARY, _layer("Tanh", [])),
    F.tanh: (_UNARY, _layer("Tanh", [])),
    F.softmax: (_SOFTMAX, _softmax),
    torch.softmax: ((("input", REQUIRED), ("dim", None), ("dtype", None)), _softmax),
    F.dropout: ((("input", REQUIRED), ("p", 0.5), ("training", True),
                 ("inplace", False)), _dropout),
    torch.mean: (_MEAN, _mean),
    torch.reshape: ((("input", REQUIRED), ("shape", REQUIRED)), _view),
    builtins.getattr: ((("input", REQUIRED), ("name", REQUIRED)), _getattr),
    operator.getitem: ((("input", REQUIRED), ("index", REQUIRED)), _getitem),
}

try:
    from torchvision.ops import stochastic_depth as _tv_stochastic_depth
    FUNCTIONS[_tv_stochastic_depth] = (
        (("input", REQUIRED), ("p", REQUIRED), ("mode", REQUIRED),
         ("training", True)), _stochastic_depth_fn)
except ImportError:
    pass

# Pure functions evaluated at export time when every argument is constant.
FOLDABLE = {operator.eq, operator.ne, operator.not_, operator.lt, operator.le,
            operator.gt, operator.ge, operator.and_, operator.or_,
            torch._assert, getattr(torch.fx._symbolic_trace, "_assert_is_none", None)}
FOLDABLE.discard(None)

# call_method targets (Tensor methods); "input" is the tensor itself.
METHODS = {
    "add": (_ADD, _binary("add", alpha=True)),
    "add_": (_BINARY, _binary("add", inplace=True)),
    "mul": (_BINARY, _binary("mul")),
    "mul_": (_BINARY, _binary("mul", inplace=True)),
    "relu": (_UNARY, _relu()),
    "relu_": (_UNARY, _relu(inplace=True)),
    "sigmoid": (_UNARY, _layer("Sigmoid", [])),
    "tanh": (_UNARY, _layer("Tanh", [])),
    "softmax": ((("input", REQUIRED), ("dim", None), ("dtype", None)), _softmax),
    "flatten": (_FLATTEN, _flatten),
    "view": (_VIEW, _view),
    "reshape": (_VIEW, _view),
    "mean": (_MEAN, _mean),
    "size": ((("input", REQUIRED), ("dim", None)), _size),
    "contiguous": (_UNARY, _alias),
}


def bind(spec, args, kwargs, what):
    """Binds fx call arguments to @spec's names as Python would.  Returns a
    dict, or raises TypeError naming @what."""
    out = {}
    args = list(args)
    for i, (name, default) in enumerate(spec):
        if default is VARARGS:
            out[name] = tuple(args[i:])
            args = args[:i]
            break
        if i < len(args):
            if name in kwargs:
                raise TypeError(f"{what}: got multiple values for '{name}'")
            out[name] = args[i]
        elif name in kwargs:
            out[name] = kwargs[name]
        elif default is REQUIRED:
            raise TypeError(f"{what}: missing argument '{name}'")
        else:
            out[name] = default
    if len(args) > len(spec):
        raise TypeError(f"{what}: {len(args)} positional arguments, at most {len(spec)}")
    extra = set(kwargs) - {n for n, _ in spec}
    if extra:
        raise TypeError(f"{what}: unsupported argument(s) {sorted(extra)}")
    return out


def target_name(kind, target):
    """Readable name of an fx target for error messages."""
    if kind == "call_method":
        return f"Tensor.{target}"
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", repr(target))
    if target is F.max_pool2d or target is F.adaptive_max_pool2d:
        name = "max_pool2d" if target is F.max_pool2d else "adaptive_max_pool2d"
        module = "torch.nn.functional"
    if module.startswith("torch._C"):
        module = "torch"
    return f"{module}.{name}" if module else name


__all__ = ["FUNCTIONS", "METHODS", "FOLDABLE", "bind", "target_name"]
