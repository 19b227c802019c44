"""Normalisation layers."""

import torch.nn as nn

from ..registry import converter


def _batchnorm(m):
    return {"num_features": m.num_features, "eps": float(m.eps),
            "momentum": None if m.momentum is None else float(m.momentum),
            "affine": m.affine, "track_running_stats": m.track_running_stats}


@converter(nn.BatchNorm2d)
def batchnorm2d(m):
    return _batchnorm(m)


@converter(nn.BatchNorm1d)
def batchnorm1d(m):
    return _batchnorm(m)


@converter(nn.BatchNorm3d)
def batchnorm3d(m):
    return _batchnorm(m)


@converter(nn.LayerNorm)
def layernorm(m):
    return {"normalized_shape": list(m.normalized_shape), "eps": float(m.eps),
            "elementwise_affine": m.elementwise_affine}


@converter(nn.GroupNorm)
def groupnorm(m):
    return {"num_groups": m.num_groups, "num_channels": m.num_channels,
            "eps": float(m.eps), "affine": m.affine}


@converter(nn.InstanceNorm1d)
@converter(nn.InstanceNorm2d)
def instancenorm(m):
    return _batchnorm(m)


@converter(nn.LocalResponseNorm)
def local_response_norm(m):
    return {"size": m.size, "alpha": float(m.alpha), "beta": float(m.beta), "k": float(m.k)}
