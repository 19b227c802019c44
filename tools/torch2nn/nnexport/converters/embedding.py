"""Embedding and EmbeddingBag."""

import torch.nn as nn

from ..registry import converter


def refuse_max_norm(max_norm, what):
    """max_norm has PyTorch renormalise the looked-up rows of the weight in
    place during forward: the weights then depend on the inputs seen, which
    an exported weights file cannot follow (docs/TORCH2NN.md).  Renormalising
    every row once gives the same forward, so that is the fix offered."""
    if max_norm is not None:
        raise ValueError(
            f"{what} with max_norm={max_norm} is refused: PyTorch rewrites the looked-up rows "
            "of the weight in place during forward, so the weights would differ from the "
            "exported ones; renormalise all rows once and drop max_norm before export: "
            "with torch.no_grad(): torch.embedding_renorm_(m.weight, "
            "torch.arange(m.num_embeddings), m.max_norm, m.norm_type); m.max_norm = None")


@converter(nn.Embedding)
def embedding(m):
    refuse_max_norm(m.max_norm, "nn.Embedding")
    return {"num_embeddings": m.num_embeddings, "embedding_dim": m.embedding_dim,
            "padding_idx": m.padding_idx,
            "max_norm": None if m.max_norm is None else float(m.max_norm),
            "norm_type": float(m.norm_type), "scale_grad_by_freq": m.scale_grad_by_freq,
            "sparse": m.sparse}


@converter(nn.EmbeddingBag)
def embedding_bag(m):
    refuse_max_norm(m.max_norm, "nn.EmbeddingBag")
    return {"num_embeddings": m.num_embeddings, "embedding_dim": m.embedding_dim,
            "max_norm": None if m.max_norm is None else float(m.max_norm),
            "norm_type": float(m.norm_type), "scale_grad_by_freq": m.scale_grad_by_freq,
            "mode": m.mode, "sparse": m.sparse,
            "include_last_offset": m.include_last_offset, "padding_idx": m.padding_idx}
