"""MultiheadAttention (its out_proj child exports as a Linear), the
Transformer, and its encoder / decoder stacks and layers (their children export as
MultiheadAttention, Linear, Dropout and LayerNorm)."""

import torch.nn as nn
import torch.nn.functional as F

from ..registry import converter


@converter(nn.MultiheadAttention)
def multihead_attention(m):
    return {"embed_dim": m.embed_dim, "num_heads": m.num_heads, "dropout": float(m.dropout),
            "bias": m.in_proj_bias is not None, "add_bias_kv": m.bias_k is not None,
            "add_zero_attn": m.add_zero_attn, "kdim": m.kdim, "vdim": m.vdim,
            "batch_first": m.batch_first}


def _activation(layer):
    """'relu' or 'gelu': the function PyTorch's layer applies between
    linear1 and linear2 (a string argument becomes F.relu / F.gelu)."""
    act = layer.activation
    if act is F.relu or type(act) is nn.ReLU:
        return "relu"
    if act is F.gelu or (type(act) is nn.GELU and act.approximate == "none"):
        return "gelu"
    raise ValueError(f"activation {act!r} is not supported (nnkit's Transformer "
                     "layers take 'relu' or 'gelu')")


def _layer(m):
    if isinstance(m.activation, nn.Module):
        # A module activation is a child PyTorch prints; nnkit's layer has none.
        raise ValueError("an activation module (not the 'relu' / 'gelu' string) "
                         "is not supported")
    if m.norm1.eps != m.norm2.eps or not m.norm1.elementwise_affine:
        raise ValueError("norm1 and norm2 must be affine LayerNorms of one eps")
    return {"d_model": m.self_attn.embed_dim, "nhead": m.self_attn.num_heads,
            "dim_feedforward": m.linear1.out_features, "dropout": float(m.dropout.p),
            "activation": _activation(m), "layer_norm_eps": float(m.norm1.eps),
            "batch_first": m.self_attn.batch_first, "norm_first": m.norm_first}


@converter(nn.TransformerEncoderLayer)
def transformer_encoder_layer(m):
    return _layer(m)


@converter(nn.TransformerDecoderLayer)
def transformer_decoder_layer(m):
    return _layer(m)


@converter(nn.TransformerEncoder)
def transformer_encoder(m):
    return {"num_layers": m.num_layers, "enable_nested_tensor": bool(m.enable_nested_tensor),
            "mask_check": bool(getattr(m, "mask_check", True))}


@converter(nn.TransformerDecoder)
def transformer_decoder(m):
    return {"num_layers": m.num_layers}


@converter(nn.Transformer)
def transformer(m):
    # The layers' settings, read from the first encoder and decoder layer;
    # nnkit's Transformer builds the stacks from its exported children.
    enc, dec = m.encoder, m.decoder
    if not isinstance(enc, nn.TransformerEncoder) or not isinstance(dec, nn.TransformerDecoder) \
            or type(enc.layers[0]) is not nn.TransformerEncoderLayer \
            or type(dec.layers[0]) is not nn.TransformerDecoderLayer:
        raise ValueError("a custom_encoder or custom_decoder is not supported (nnkit's "
                         "Transformer holds a TransformerEncoder and a TransformerDecoder)")
    config = _layer(enc.layers[0])
    config.update({"num_encoder_layers": enc.num_layers, "num_decoder_layers": dec.num_layers})
    return config
