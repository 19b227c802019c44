"""PyTorch leaf module classes and the nnkit layer types they become.

Each entry reads the constructor arguments back from the module's
attributes, under PyTorch's argument names, which are nnkit's config keys.
Values keep PyTorch's stored form: Conv2d tuples expanded, pooling sizes as
given (int or tuple), floats as floats.  Matching is by exact class: a
subclass may change forward or extra_repr (ReLU6 subclasses Hardtanh).
"""

import torch.nn as nn

from .errors import ExportError

try:
    from torchvision.ops import StochasticDepth as _TvStochasticDepth
except ImportError:  # torchvision is optional for the Python API
    _TvStochasticDepth = None


def jsonable(value):
    """Tuples become lists; everything else must already be JSON data."""
    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{value!r} is not a JSON constant")


def _require(path, m, cond, what):
    if not cond:
        raise ExportError(f"{path}: {type(m).__name__}: {what} is not supported by nnkit")


def _conv2d(m, path):
    return {
        "in_channels": m.in_channels,
        "out_channels": m.out_channels,
        "kernel_size": list(m.kernel_size),
        "stride": list(m.stride),
        "padding": m.padding if isinstance(m.padding, str) else list(m.padding),
        "dilation": list(m.dilation),
        "groups": m.groups,
        "bias": m.bias is not None,
        "padding_mode": m.padding_mode,
    }


def _linear(m, path):
    return {"in_features": m.in_features, "out_features": m.out_features,
            "bias": m.bias is not None}


def _no_none(path, m, key, value):
    _require(path, m, value is not None and not (
        isinstance(value, (tuple, list)) and None in value), f"{key}={value!r}")
    return jsonable(value)


def _maxpool2d(m, path):
    _require(path, m, not m.return_indices, "return_indices=True")
    return {k: _no_none(path, m, k, getattr(m, k))
            for k in ("kernel_size", "stride", "padding", "dilation")} | {
                "return_indices": False, "ceil_mode": m.ceil_mode}


def _avgpool2d(m, path):
    return {k: _no_none(path, m, k, getattr(m, k))
            for k in ("kernel_size", "stride", "padding")} | {
                "ceil_mode": m.ceil_mode, "count_include_pad": m.count_include_pad,
                "divisor_override": m.divisor_override}


def _adaptive_avg(m, path):
    return {"output_size": _no_none(path, m, "output_size", m.output_size)}


def _adaptive_max(m, path):
    _require(path, m, not m.return_indices, "return_indices=True")
    return {"output_size": _no_none(path, m, "output_size", m.output_size),
            "return_indices": False}


def _batchnorm2d(m, path):
    return {"num_features": m.num_features, "eps": float(m.eps),
            "momentum": None if m.momentum is None else float(m.momentum),
            "affine": m.affine, "track_running_stats": m.track_running_stats}


def _inplace(m, path):
    return {"inplace": m.inplace}


def _nothing(m, path):
    return {}


def _hardtanh(m, path):
    return {"min_val": float(m.min_val), "max_val": float(m.max_val),
            "inplace": m.inplace}


def _gelu(m, path):
    return {"approximate": m.approximate}


def _softmax(m, path):
    return {"dim": m.dim}


def _dropout(m, path):
    return {"p": float(m.p), "inplace": m.inplace}


def _flatten(m, path):
    return {"start_dim": m.start_dim, "end_dim": m.end_dim}


def _stochastic_depth(m, path):
    return {"p": float(m.p), "mode": m.mode}


# PyTorch class -> (nnkit type, config reader).
LEAF_TYPES = {
    nn.Conv2d: ("Conv2d", _conv2d),
    nn.Linear: ("Linear", _linear),
    nn.MaxPool2d: ("MaxPool2d", _maxpool2d),
    nn.AvgPool2d: ("AvgPool2d", _avgpool2d),
    nn.AdaptiveAvgPool2d: ("AdaptiveAvgPool2d", _adaptive_avg),
    nn.AdaptiveMaxPool2d: ("AdaptiveMaxPool2d", _adaptive_max),
    nn.BatchNorm2d: ("BatchNorm2d", _batchnorm2d),
    nn.ReLU: ("ReLU", _inplace),
    nn.ReLU6: ("ReLU6", _inplace),
    nn.Hardtanh: ("Hardtanh", _hardtanh),
    nn.SiLU: ("SiLU", _inplace),
    nn.Sigmoid: ("Sigmoid", _nothing),
    nn.Hardsigmoid: ("Hardsigmoid", _inplace),
    nn.Hardswish: ("Hardswish", _inplace),
    nn.GELU: ("GELU", _gelu),
    nn.Tanh: ("Tanh", _nothing),
    nn.Softmax: ("Softmax", _softmax),
    nn.Dropout: ("Dropout", _dropout),
    nn.Flatten: ("Flatten", _flatten),
    nn.Identity: ("Identity", _nothing),
}
if _TvStochasticDepth is not None:
    LEAF_TYPES[_TvStochasticDepth] = ("StochasticDepth", _stochastic_depth)

# Containers whose forward nnkit's container types reproduce.  A subclass
# that keeps the base forward (torchvision's Conv2dNormActivation) stays
# that type, with its class name kept for printing.
CONTAINER_TYPES = {
    nn.Sequential: "Sequential",
    nn.ModuleList: "ModuleList",
    nn.ModuleDict: "ModuleDict",
}


def leaf_type(m):
    """Returns (type name, config reader) for @m's exact class, or None."""
    return LEAF_TYPES.get(type(m))


def container_type(m):
    """Returns the nnkit container type for @m if its forward is that of a
    PyTorch container (possibly inherited by a subclass), else None."""
    for base, name in CONTAINER_TYPES.items():
        if isinstance(m, base) and type(m).forward is base.forward:
            return name
    return None


def leaf_config(m, path):
    """Returns (type name, config) of leaf @m; raises ExportError naming
    @path for an argument nnkit does not support."""
    type_name, reader = LEAF_TYPES[type(m)]
    try:
        return type_name, reader(m, path)
    except TypeError as e:
        raise ExportError(f"{path}: {type(m).__name__}: {e}") from e
