"""Dropout, Flatten, Unflatten, StochasticDepth, padding, up-sampling,
pixel shuffling, distances."""

import math

import torch.nn as nn

from ..registry import converter

try:
    from torchvision.ops import StochasticDepth
except ImportError:  # torchvision is optional for the Python API
    StochasticDepth = None


@converter(nn.Dropout)
@converter(nn.Dropout1d)
@converter(nn.Dropout2d)
@converter(nn.Dropout3d)
@converter(nn.AlphaDropout)
@converter(nn.FeatureAlphaDropout)
def dropout(m):
    return {"p": float(m.p), "inplace": m.inplace}


@converter(nn.Flatten)
def flatten(m):
    return {"start_dim": m.start_dim, "end_dim": m.end_dim}


@converter(nn.Unflatten)
def unflatten(m):
    if isinstance(m.dim, str):
        raise ValueError("named-tensor Unflatten (a dimension name) is not supported")
    return {"dim": m.dim, "unflattened_size": list(m.unflattened_size)}


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


@converter(nn.ConstantPad1d)
def constant_pad1d(m):
    return {"padding": list(m.padding), "value": m.value}


@converter(nn.ReflectionPad1d)
@converter(nn.ReplicationPad1d)
def pad1d(m):
    return {"padding": list(m.padding)}


@converter(nn.PixelShuffle)
def pixel_shuffle(m):
    return {"upscale_factor": m.upscale_factor}


@converter(nn.PixelUnshuffle)
def pixel_unshuffle(m):
    return {"downscale_factor": m.downscale_factor}


@converter(nn.ChannelShuffle)
def channel_shuffle(m):
    return {"groups": m.groups}


@converter(nn.UpsamplingNearest2d)
@converter(nn.UpsamplingBilinear2d)
def upsampling2d(m):
    def listed(v):
        return list(v) if isinstance(v, tuple) else v
    return {"size": listed(m.size), "scale_factor": listed(m.scale_factor)}


@converter(nn.Upsample)
def upsample(m):
    def listed(v):
        return list(v) if isinstance(v, tuple) else v
    return {"size": listed(m.size), "scale_factor": listed(m.scale_factor),
            "mode": m.mode, "align_corners": m.align_corners,
            "recompute_scale_factor": m.recompute_scale_factor}


@converter(nn.CosineSimilarity)
def cosine_similarity(m):
    return {"dim": m.dim, "eps": float(m.eps)}


@converter(nn.PairwiseDistance)
def pairwise_distance(m):
    if not math.isfinite(m.norm):
        raise ValueError(f"p={m.norm} is not supported (a descriptor holds finite numbers)")
    # Constructor argument p, which the module keeps as .norm.
    return {"p": float(m.norm), "eps": float(m.eps), "keepdim": m.keepdim}
