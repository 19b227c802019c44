"""MultiheadAttention (its out_proj child exports as a Linear)."""

import torch.nn as nn

from ..registry import converter


@converter(nn.MultiheadAttention)
def multihead_attention(m):
    return {"embed_dim": m.embed_dim, "num_heads": m.num_heads, "dropout": float(m.dropout),
            "bias": m.in_proj_bias is not None, "add_bias_kv": m.bias_k is not None,
            "add_zero_attn": m.add_zero_attn, "kdim": m.kdim, "vdim": m.vdim,
            "batch_first": m.batch_first}
