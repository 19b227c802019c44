"""Python's own operations as fx records them: getattr on a tensor,
indexing, asserts."""

import builtins
import operator

import torch
import torch.fx._symbolic_trace as fx_trace

from ..registry import op_converter, ops

ops(operator.getitem, name="getitem")
ops(operator.setitem, name="setitem", mutates=0)


@op_converter(builtins.getattr, name="getattr")
def attribute(call):
    obj, attr = call.args[0], call.args[1]
    if attr == "shape":
        return call.emit("size", args=[obj], kwargs={})
    if attr in ("ndim", "dtype", "is_cuda", "requires_grad", "layout"):
        # Fixed by the model's code, not by the input's extents.
        return getattr(call.arg_concrete(0), attr)
    if attr == "device":
        return None  # nnkit runs on the CPU: device=None means that
    if attr == "T":
        return call.emit("t", args=[obj], kwargs={})
    value = call.arg_concrete(0)
    fields = _field_names(value)
    if attr in fields:
        # x.max(dim=1).values, topk(...).indices: PyTorch's named result
        # tuples are tuples, and a field is the item at its position.
        return call.emit("getitem", args=[obj, fields.index(attr)], kwargs={})
    call.fail(f"unsupported attribute torch.Tensor.{attr}")


def _field_names(value):
    """The field names of a named tuple (torch.return_types.max and the
    other structseqs, or a collections.namedtuple), else ()."""
    if not isinstance(value, tuple):
        return ()
    names = getattr(type(value), "_fields", None) or getattr(type(value), "__match_args__", ())
    return tuple(names)


@op_converter(torch._assert, fx_trace._assert_is_none, name="assert")
def assertion(call):
    # Checks of the input PyTorch made while tracing; nnkit's own shape
    # checks report a bad input.
    return None
