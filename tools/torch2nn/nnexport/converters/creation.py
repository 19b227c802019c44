"""Tensors made inside forward: ranges, constant fills, masks."""

import torch

from ..registry import op_converter, ops, refuse

ops(torch.arange, name="arange")


@op_converter(torch.zeros, torch.ones, torch.empty, "new_zeros", "new_ones", "new_empty",
              name="zeros")
def filled(call):
    # torch.zeros(2, 3) and torch.zeros((2, 3)) are one call: the sizes go
    # as one list.  Uninitialised (empty) tensors are zero-filled.
    method = call.node.op == "call_method"
    first = 1 if method else 0
    rest = list(call.args[first:])
    if len(rest) == 1 and isinstance(call.arg_concrete(first), (tuple, list, torch.Size)):
        rest = rest[0]
    kind = "ones" if "ones" in getattr(call.node.target, "__name__", call.node.target) else "zeros"
    if method:
        return call.emit("new_" + kind, args=[call.args[0], rest], kwargs=call.kwargs)
    return call.emit(kind, args=[rest], kwargs=call.kwargs)

ops(torch.full, name="full")
ops(torch.eye, name="eye")
ops(torch.linspace, name="linspace")
ops(torch.tril_indices, name="tril_indices")
ops(torch.triu_indices, name="triu_indices")
ops(torch.zeros_like, torch.empty_like, name="zeros_like")
ops(torch.ones_like, name="ones_like")
ops(torch.full_like, name="full_like")
ops("new_full")
ops("new_tensor")
ops(torch.tril, "tril")
ops(torch.triu, "triu")
ops(torch.tensor, torch.as_tensor, name="tensor")


@op_converter("zero_", name="zeros_like", mutates=0)
def zero_(call):
    return call.emit("zeros_like", args=[call.args[0]], kwargs={})


@op_converter("fill_", name="full_like", mutates=0)
def fill_(call):
    return call.emit("full_like", args=[call.args[0], call.args[1]], kwargs={})


# Random numbers in the eval-mode forward (a VAE's reparameterisation, noise
# injection): PyTorch's result differs on every call.
refuse(torch.rand, torch.rand_like, torch.randn, torch.randn_like, torch.randint,
       torch.randint_like, torch.randperm, torch.normal, torch.bernoulli, torch.multinomial,
       torch.poisson,
       why="draws random numbers in the eval-mode forward, so its result differs on every "
           "call and there is no fixed function to export; return the deterministic part "
           "(a VAE's mean) or take the noise as an input")
