"""Linear layers: Linear and Bilinear."""

import torch.nn as nn
from torch.nn.modules.linear import NonDynamicallyQuantizableLinear

from ..registry import converter


# MultiheadAttention's out_proj is a Linear subclass kept for quantization.
@converter(nn.Linear, NonDynamicallyQuantizableLinear, type="Linear")
def linear(m):
    return {"in_features": m.in_features, "out_features": m.out_features,
            "bias": m.bias is not None}


@converter(nn.Bilinear)
def bilinear(m):
    return {"in1_features": m.in1_features, "in2_features": m.in2_features,
            "out_features": m.out_features, "bias": m.bias is not None}
