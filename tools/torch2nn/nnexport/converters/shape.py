"""Reading shapes: x.size(), x.shape, x.dim(), len(x)."""

import builtins

import torch

from ..registry import op_converter, ops

ops("size")
ops(torch.numel, "numel", "nelement", name="numel")


@op_converter("dim", "ndimension", name="dim")
def rank(call):
    # A model's ranks are fixed by its code, not by the input's extents.
    return call.arg_concrete(0).dim()


@op_converter(builtins.len, name="len")
def length(call):
    v = call.arg_concrete(0)
    if isinstance(v, torch.Tensor):
        return call.emit("size", args=[call.args[0], 0], kwargs={})
    return call.emit()
