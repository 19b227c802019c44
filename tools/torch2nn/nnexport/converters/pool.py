"""Pooling: sizes kept as given (int or tuple), as PyTorch prints them."""

import torch.nn as nn

from ..registry import converter


def _size(m, key):
    v = getattr(m, key)
    if v is None or (isinstance(v, (tuple, list)) and None in v):
        raise ValueError(f"{key}={v!r}: None sizes are not supported")
    return list(v) if isinstance(v, (tuple, list)) else v


@converter(nn.MaxPool2d)
def maxpool2d(m):
    # return_indices gives (output, indices), as MaxUnpool2d takes them.
    return {"kernel_size": _size(m, "kernel_size"), "stride": _size(m, "stride"),
            "padding": _size(m, "padding"), "dilation": _size(m, "dilation"),
            "return_indices": m.return_indices, "ceil_mode": m.ceil_mode}


@converter(nn.MaxUnpool2d)
def maxunpool2d(m):
    return {"kernel_size": _size(m, "kernel_size"), "stride": _size(m, "stride"),
            "padding": _size(m, "padding")}


@converter(nn.AvgPool2d)
def avgpool2d(m):
    return {"kernel_size": _size(m, "kernel_size"), "stride": _size(m, "stride"),
            "padding": _size(m, "padding"), "ceil_mode": m.ceil_mode,
            "count_include_pad": m.count_include_pad,
            "divisor_override": m.divisor_override}


@converter(nn.AdaptiveAvgPool2d)
def adaptive_avgpool2d(m):
    return {"output_size": _size(m, "output_size")}


@converter(nn.AdaptiveMaxPool2d)
def adaptive_maxpool2d(m):
    if m.return_indices:
        raise ValueError("return_indices=True is not supported")
    return {"output_size": _size(m, "output_size"), "return_indices": False}


@converter(nn.MaxPool1d)
def maxpool1d(m):
    # nnkit's 1-d pools return PyTorch's (output, indices) tuple too.
    return {"kernel_size": _size(m, "kernel_size"), "stride": _size(m, "stride"),
            "padding": _size(m, "padding"), "dilation": _size(m, "dilation"),
            "return_indices": m.return_indices, "ceil_mode": m.ceil_mode}


@converter(nn.AvgPool1d)
def avgpool1d(m):
    return {"kernel_size": _size(m, "kernel_size"), "stride": _size(m, "stride"),
            "padding": _size(m, "padding"), "ceil_mode": m.ceil_mode,
            "count_include_pad": m.count_include_pad}


@converter(nn.AdaptiveAvgPool1d)
def adaptive_avgpool1d(m):
    return {"output_size": _size(m, "output_size")}


@converter(nn.AdaptiveMaxPool1d)
def adaptive_maxpool1d(m):
    return {"output_size": _size(m, "output_size"), "return_indices": m.return_indices}


def _size3(v):
    # An int, or a tuple whose None entries keep that input dim.
    return list(v) if isinstance(v, (tuple, list)) else v


@converter(nn.MaxPool3d)
def maxpool3d(m):
    return {"kernel_size": _size(m, "kernel_size"), "stride": _size(m, "stride"),
            "padding": _size(m, "padding"), "dilation": _size(m, "dilation"),
            "return_indices": m.return_indices, "ceil_mode": m.ceil_mode}


@converter(nn.AvgPool3d)
def avgpool3d(m):
    return {"kernel_size": _size(m, "kernel_size"), "stride": _size(m, "stride"),
            "padding": _size(m, "padding"), "ceil_mode": m.ceil_mode,
            "count_include_pad": m.count_include_pad,
            "divisor_override": m.divisor_override}


@converter(nn.AdaptiveAvgPool3d)
def adaptive_avgpool3d(m):
    return {"output_size": _size3(m.output_size)}


@converter(nn.AdaptiveMaxPool3d)
def adaptive_maxpool3d(m):
    return {"output_size": _size3(m.output_size), "return_indices": m.return_indices}
