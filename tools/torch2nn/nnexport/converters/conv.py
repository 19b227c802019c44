"""Convolutions: Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d; Unfold and Fold."""

import torch.nn as nn

from ..registry import converter


def _conv(m):
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


@converter(nn.Conv2d)
def conv2d(m):
    return _conv(m)


@converter(nn.Conv1d)
def conv1d(m):
    return _conv(m)


@converter(nn.Conv3d)
def conv3d(m):
    return _conv(m)


@converter(nn.ConvTranspose1d)
@converter(nn.ConvTranspose2d)
def conv_transpose(m):
    config = _conv(m)
    config["output_padding"] = list(m.output_padding)
    return config


def _window(v):
    return list(v) if isinstance(v, tuple) else v


@converter(nn.Unfold)
def unfold(m):
    return {k: _window(getattr(m, k)) for k in ("kernel_size", "dilation", "padding", "stride")}


@converter(nn.Fold)
def fold(m):
    return {k: _window(getattr(m, k))
            for k in ("output_size", "kernel_size", "dilation", "padding", "stride")}
