"""Shape, layout and dtype ops on tensors."""

import torch
import torch.nn.functional as F

from ..registry import op_converter, ops

ops(torch.reshape, name="reshape")
ops(torch.permute, name="permute")
ops(torch.transpose, torch.swapaxes, torch.swapdims, "transpose", "swapaxes", "swapdims",
    name="transpose")
ops(torch.t, "t")
ops("t_", name="t", mutates=0)
ops("transpose_", name="transpose", mutates=0)
ops(torch.select, "select")
ops(torch.tile, name="tile")


@op_converter(torch.flatten, "flatten")
def flatten(call):
    # One type serves nn.Flatten (start_dim 1) and torch.flatten (0): the
    # function's defaults are written out.
    params = dict(zip(["start_dim", "end_dim"], call.args[1:]))
    params.update(call.kwargs)
    return call.emit(args=[call.args[0]], kwargs={"start_dim": params.get("start_dim", 0),
                                                  "end_dim": params.get("end_dim", -1)})

ops(torch.unflatten, "unflatten", name="unflatten")
ops(torch.unsqueeze, "unsqueeze")
ops("unsqueeze_", name="unsqueeze", mutates=0)
ops(torch.squeeze, "squeeze")
ops("squeeze_", name="squeeze", mutates=0)
ops("expand_as")


@op_converter("view_as", "reshape_as", name="reshape")
def reshape_as(call):
    # x.view_as(y) is x.reshape(y.size()): the sizes are read in the graph.
    sizes = call.emit("size", args=[call.args[1]], kwargs={})
    return call.emit("reshape", args=[call.args[0], sizes], kwargs={})
ops(torch.chunk, "chunk")


@op_converter(torch.split, "split", name="split")
def split(call):
    # Tensor.split names its size `split_size`, torch.split
    # `split_size_or_sections` (nnkit's): one name in the node.
    kwargs = dict(call.kwargs)
    if "split_size" in kwargs:
        kwargs["split_size_or_sections"] = kwargs.pop("split_size")
    return call.emit(args=list(call.args), kwargs=kwargs)
ops(torch.unbind, "unbind")


@op_converter(torch.tensor_split, "tensor_split", name="tensor_split")
def tensor_split(call):
    # PyTorch's overloads take the count as `sections=` and the indices as
    # `indices=` (MViT's), which no one signature names: passed positionally.
    args, kwargs = list(call.args), dict(call.kwargs)
    for key in ("sections", "indices", "tensor_indices_or_sections"):
        if key in kwargs:
            args.insert(1, kwargs.pop(key))
    return call.emit(args=args, kwargs=kwargs)
ops(torch.cat, torch.concat, name="cat")
ops(torch.stack, name="stack")
ops(torch.narrow, "narrow")
ops(torch.roll, "roll")
ops("unfold")
ops(torch.repeat_interleave, "repeat_interleave")
ops(torch.flip, name="flip")
ops(torch.gather, "gather")
ops(torch.index_select, "index_select")
ops(F.one_hot, name="one_hot")
ops(torch.scatter_add, "scatter_add", name="scatter_add")
ops("scatter_add_", name="scatter_add", mutates=0)
ops(torch.index_add, "index_add", name="index_add")
ops("index_add_", name="index_add", mutates=0)
ops(torch.meshgrid, name="meshgrid")
ops(torch.cdist, name="cdist")
ops(torch.diag, "diag")
ops(torch.diag_embed, "diag_embed")
ops(torch.bucketize, name="bucketize")
ops(torch.searchsorted, name="searchsorted")


def _scatter(call):
    # x.scatter(1, idx, value=0.5): nnkit's scatter takes the number where
    # the tensor src goes.
    kwargs = dict(call.kwargs)
    if "value" in kwargs:
        kwargs["src"] = kwargs.pop("value")
    return call.emit("scatter", args=list(call.args), kwargs=kwargs)


@op_converter(torch.scatter, "scatter", name="scatter")
def scatter(call):
    return _scatter(call)


@op_converter("scatter_", name="scatter", mutates=0)
def scatter_(call):
    return _scatter(call)
ops(torch.masked_fill, "masked_fill")
ops("masked_fill_", name="masked_fill", mutates=0)
ops("to")
ops("type_as")
ops("float", name="float")
ops("double", name="double")
ops("long", name="long")
ops("int", name="int")
ops("bool", name="bool")
ops("half", name="half")
ops("bfloat16", name="bfloat16")
ops("byte", name="byte")
ops("char", name="char")
ops("type", name="type")


@op_converter("contiguous", "detach", "clone", torch.clone, torch.detach,
              "requires_grad_", "detach_", name="contiguous")
def same_value(call):
    # nnkit tensors are contiguous and never share a buffer between values
    # (in-place ops are dataflow), so these are the value itself.
    return call.args[0]


@op_converter("view", "reshape", "permute", "expand", "repeat", "flip", "tile")
def packed_sizes(call):
    # x.view(2, -1) and x.view((2, -1)) are one call: the sizes always go
    # as one list, the signature of torch.reshape(input, shape).
    rest = list(call.args[1:])
    if len(rest) == 1 and isinstance(call.arg_concrete(1), (tuple, list, torch.Size)):
        sizes = rest[0]
    else:
        sizes = rest
    name = call.node.target
    return call.emit(name, args=[call.args[0], sizes], kwargs=call.kwargs)
