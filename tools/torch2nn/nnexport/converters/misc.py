"""Dropout, Flatten, StochasticDepth, padding, up-sampling."""

import torch.nn as nn

from ..registry import converter

try:
    from torchvision.ops import StochasticDepth
except ImportError:  # torchvision is optional for the Python API
    StochasticDepth = None


@converter(nn.Dropout)
def dropout(m):
    return {"p": float(m.p), "inplace": m.inplace}


@converter(nn.Flatten)
def flatten(m):
    return {"start_dim": m.start_dim, "end_dim": m.end_dim}


@converter(StochasticDepth, type="StochasticDepth")
def stochastic_depth(m):
    return {"p": float(m.p), "mode": m.mode}


@converter(nn.ZeroPad2d)
@converter(nn.ConstantPad2d)
@converter(nn.ReflectionPad2d)
@converter(nn.ReplicationPad2d)
def pad2d(m):
    config = {"padding": list(m.padding)}
    if isinstance(m, nn.ConstantPad2d) and type(m) is not nn.ZeroPad2d:
        config["value"] = float(m.value)
    return config


@converter(nn.Upsample)
def upsample(m):
    def listed(v):
        return list(v) if isinstance(v, tuple) else v
    return {"size": listed(m.size), "scale_factor": listed(m.scale_factor),
            "mode": m.mode, "align_corners": m.align_corners}
