"""Tensors made inside forward: ranges, constant fills, masks."""

import torch

from ..registry import ops

ops(torch.arange, name="arange")
ops(torch.zeros, name="zeros")
ops(torch.ones, name="ones")
ops(torch.full, name="full")
ops(torch.empty, name="zeros")  # uninitialised in PyTorch; zeros are as good
ops(torch.eye, name="eye")
ops(torch.zeros_like, name="zeros_like")
ops(torch.ones_like, name="ones_like")
ops(torch.full_like, name="full_like")
ops("new_zeros")
ops("new_ones")
ops("new_full")
ops("new_empty", name="new_zeros")
ops(torch.tril, "tril")
ops(torch.triu, "triu")
