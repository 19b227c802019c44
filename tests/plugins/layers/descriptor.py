"""nnkit module nodes for the torch modules the attention tests build:
type, class, config and children, as docs/DESCRIPTORS.md describes them."""
import torch.nn as nn
import torch.nn.functional as F


def _activation(layer):
    act = layer.activation
    if act is F.relu or isinstance(act, nn.ReLU):
        return "relu"
    if act is F.gelu or isinstance(act, nn.GELU):
        return "gelu"
    raise ValueError(f"unsupported activation {act}")


def _layer_config(m):
    return {"d_model": m.self_attn.embed_dim, "nhead": m.self_attn.num_heads,
            "dim_feedforward": m.linear1.out_features, "dropout": m.dropout.p,
            "activation": _activation(m), "layer_norm_eps": m.norm1.eps,
            "batch_first": m.self_attn.batch_first, "norm_first": m.norm_first}


def config(m):
    if isinstance(m, nn.Linear):
        return "Linear", {"in_features": m.in_features, "out_features": m.out_features,
                          "bias": m.bias is not None}
    if isinstance(m, nn.LayerNorm):
        return "LayerNorm", {"normalized_shape": list(m.normalized_shape), "eps": m.eps,
                             "elementwise_affine": m.elementwise_affine}
    if isinstance(m, nn.Dropout):
        return "Dropout", {"p": m.p, "inplace": m.inplace}
    if isinstance(m, nn.ModuleList):
        return "ModuleList", {}
    if isinstance(m, nn.MultiheadAttention):
        # None for kdim/vdim equal to embed_dim, unless a case asks for the
        # numbers (torch2nn's spelling).
        same = m._qkv_same_embed_dim and not getattr(m, "nnkit_explicit_dims", False)
        return "MultiheadAttention", {
            "embed_dim": m.embed_dim, "num_heads": m.num_heads, "dropout": m.dropout,
            "bias": m.in_proj_bias is not None, "add_bias_kv": m.bias_k is not None,
            "add_zero_attn": m.add_zero_attn,
            "kdim": None if same else m.kdim,
            "vdim": None if same else m.vdim, "batch_first": m.batch_first}
    if isinstance(m, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
        return type(m).__name__, _layer_config(m)
    if isinstance(m, nn.TransformerEncoder):
        return "TransformerEncoder", {"num_layers": m.num_layers,
                                      "enable_nested_tensor": m.enable_nested_tensor,
                                      "mask_check": getattr(m, "mask_check", True)}
    if isinstance(m, nn.TransformerDecoder):
        return "TransformerDecoder", {"num_layers": m.num_layers}
    if isinstance(m, nn.Transformer):
        enc = m.encoder.layers[0]
        return "Transformer", dict(_layer_config(enc), num_encoder_layers=m.encoder.num_layers,
                                   num_decoder_layers=m.decoder.num_layers,
                                   batch_first=m.batch_first)
    raise ValueError(f"no nnkit node for {type(m).__name__}")


def node(m, name=None):
    typ, cfg = config(m)
    out = {"type": typ, "config": cfg}
    if type(m).__name__ != typ:
        out["class"] = type(m).__name__
    if name is not None:
        out["name"] = name
    kids = [node(c, n) for n, c in m.named_children()]
    if kids:
        out["children"] = kids
    return out
