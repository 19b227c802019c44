"""Activation layers: constructor arguments read back from the module."""

import torch.nn as nn

from ..registry import converter


@converter(nn.ReLU)
@converter(nn.ReLU6)
@converter(nn.SiLU)
@converter(nn.Hardsigmoid)
@converter(nn.Hardswish)
@converter(nn.Mish)
def inplace_only(m):
    return {"inplace": m.inplace}


@converter(nn.Sigmoid)
@converter(nn.Tanh)
@converter(nn.Identity)
@converter(nn.Softsign)
@converter(nn.Tanhshrink)
def no_config(m):
    return {}


@converter(nn.Hardtanh)
def hardtanh(m):
    return {"min_val": float(m.min_val), "max_val": float(m.max_val), "inplace": m.inplace}


@converter(nn.LeakyReLU)
def leaky_relu(m):
    return {"negative_slope": float(m.negative_slope), "inplace": m.inplace}


@converter(nn.ELU)
def elu(m):
    return {"alpha": float(m.alpha), "inplace": m.inplace}


@converter(nn.GELU)
def gelu(m):
    return {"approximate": m.approximate}


@converter(nn.Softplus)
def softplus(m):
    return {"beta": m.beta, "threshold": m.threshold}


@converter(nn.Softmax)
@converter(nn.LogSoftmax)
def softmax(m):
    return {"dim": m.dim}
