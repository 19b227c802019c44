"""Embedding and EmbeddingBag."""

import torch.nn as nn

from ..registry import converter


@converter(nn.Embedding)
def embedding(m):
    return {"num_embeddings": m.num_embeddings, "embedding_dim": m.embedding_dim,
            "padding_idx": m.padding_idx,
            "max_norm": None if m.max_norm is None else float(m.max_norm),
            "norm_type": float(m.norm_type), "scale_grad_by_freq": m.scale_grad_by_freq,
            "sparse": m.sparse}


@converter(nn.EmbeddingBag)
def embedding_bag(m):
    return {"num_embeddings": m.num_embeddings, "embedding_dim": m.embedding_dim,
            "max_norm": None if m.max_norm is None else float(m.max_norm),
            "norm_type": float(m.norm_type), "scale_grad_by_freq": m.scale_grad_by_freq,
            "mode": m.mode, "sparse": m.sparse,
            "include_last_offset": m.include_last_offset, "padding_idx": m.padding_idx}
