"""Python values -> Graph argument expressions (docs/DESCRIPTORS.md):
strings are value names, so constant strings are {"str": ...}; tuples,
slices, Ellipsis, dtypes and non-finite floats have their own forms."""

import math

import torch


class Ref:
    """A named value of the Graph: an input or a node's result."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"Ref({self.name})"


def dtype_name(dtype):
    """torch.int64 -> "int64"."""
    return str(dtype).split(".", 1)[1]


def expr(v, where):
    """The argument expression for @v (Refs, constants and their
    containers).  @where names the value in an error."""
    if isinstance(v, Ref):
        return v.name
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        if math.isnan(v):
            return {"float": "nan"}
        if math.isinf(v):
            return {"float": "inf" if v > 0 else "-inf"}
        return float(v)
    if isinstance(v, str):
        return {"str": v}
    if isinstance(v, (tuple, torch.Size)):
        return {"tuple": [expr(x, where) for x in v]}
    if isinstance(v, list):
        return [expr(x, where) for x in v]
    if isinstance(v, dict):
        bad = [k for k in v if not isinstance(k, str)]
        if bad:
            raise ValueError(f"{where}: dict key {bad[0]!r} is not a string")
        return {"dict": {k: expr(x, where) for k, x in v.items()}}
    if isinstance(v, slice):
        return {"slice": [expr(v.start, where), expr(v.stop, where), expr(v.step, where)]}
    if v is Ellipsis:
        return {"ellipsis": True}
    if isinstance(v, torch.dtype):
        return {"dtype": dtype_name(v)}
    if isinstance(v, torch.device):
        if v.type != "cpu":
            raise ValueError(f"{where}: device '{v}': nnkit runs on the CPU")
        return None
    if isinstance(v, (torch.memory_format, torch.layout)):
        return None  # nnkit tensors are dense and contiguous
    if isinstance(v, torch.Tensor):
        raise ValueError(f"{where}: a tensor constant (shape {list(v.shape)}) created "
                         "while tracing; register it as a buffer instead")
    raise ValueError(f"{where}: constant {v!r} of type {type(v).__name__} has no "
                     "nnkit argument form")


def refs_in(e):
    """Names referenced by argument expression @e."""
    if isinstance(e, str):
        yield e
    elif isinstance(e, list):
        for x in e:
            yield from refs_in(x)
    elif isinstance(e, dict):
        if "str" in e or "float" in e or "dtype" in e or "ellipsis" in e:
            return
        for x in e.values():
            yield from refs_in(x)
