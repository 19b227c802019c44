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
@converter(nn.LogSigmoid)
@converter(nn.Softmax2d)
def no_config(m):
    return {}


@converter(nn.SELU)
def selu(m):
    return {"inplace": m.inplace}


# Numbers go as the module holds them: PyTorch prints CELU(alpha=1) for an
# int and CELU(alpha=1.0) for a float, and nnkit's types keep that type.
@converter(nn.CELU)
def celu(m):
    return {"alpha": m.alpha, "inplace": m.inplace}


@converter(nn.Threshold)
def threshold(m):
    return {"threshold": m.threshold, "value": m.value, "inplace": m.inplace}


@converter(nn.Hardshrink)
@converter(nn.Softshrink)
def shrink(m):
    return {"lambd": m.lambd}


@converter(nn.RReLU)
def rrelu(m):
    return {"lower": m.lower, "upper": m.upper, "inplace": m.inplace}


@converter(nn.GLU)
def glu(m):
    return {"dim": m.dim}


@converter(nn.PReLU)
def prelu(m):
    # PyTorch keeps no `init` (it only seeds the weight): the weight carries it.
    return {"num_parameters": m.num_parameters}


@converter(nn.Hardtanh)
def hardtanh(m):
    # As the module holds them: Hardtanh(-2, 2) prints min_val=-2.
    return {"min_val": m.min_val, "max_val": m.max_val, "inplace": m.inplace}


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
@converter(nn.Softmin)
def softmax(m):
    return {"dim": m.dim}
