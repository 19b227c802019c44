#!/usr/bin/env python3
"""Reference results for the ops plugin, computed by PyTorch at test time.

Writes a JSON list of cases to argv[1].  Each case names an op (by its
canonical name or an alias, as the exporter writes it), its arguments in
the Graph descriptor's expression syntax (docs/DESCRIPTORS.md) with tensors
inline, and either PyTorch's result or PyTorch's error message.
test_ops_reference.cpp runs every case through the registry and compares.
Exit status 77 (skip) when torch is missing.
"""
import json
import math
import operator
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit(77)

torch.manual_seed(0)
DTYPES = {
    torch.float32: "F32", torch.int64: "I64", torch.float16: "F16",
    torch.bfloat16: "BF16", torch.float64: "F64", torch.int32: "I32",
    torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
}
cases = []


def num(x):
    if isinstance(x, float) and not math.isfinite(x):
        return {"float": "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")}
    return x


def enc(v):
    if isinstance(v, torch.Tensor):
        data = v.detach().reshape(-1)
        if v.dtype in (torch.float16, torch.bfloat16):
            data = data.float()
        vals = [num(x) for x in data.tolist()]
        if v.dtype == torch.bool:
            vals = [1 if x else 0 for x in vals]
        return {"tensor": {"dtype": DTYPES[v.dtype], "shape": list(v.shape),
                           "data": vals}}
    if isinstance(v, torch.dtype):
        return {"dtype": str(v).replace("torch.", "")}
    if isinstance(v, torch.Size):
        return {"tuple": list(v)}
    if v is None or isinstance(v, bool) or isinstance(v, int):
        return v
    if isinstance(v, float):
        return num(v) if not math.isfinite(v) else {"float": repr(v)}
    if isinstance(v, str):
        return {"str": v}
    if isinstance(v, slice):
        return {"slice": [enc(v.start), enc(v.stop), enc(v.step)]}
    if v is Ellipsis:
        return {"ellipsis": True}
    if isinstance(v, list):
        return [enc(x) for x in v]
    if isinstance(v, tuple):  # namedtuples (torch.return_types) included
        return {"tuple": [enc(x) for x in v]}
    if isinstance(v, dict):
        return {"dict": {k: enc(x) for k, x in v.items()}}
    raise TypeError(type(v))


def case(name, op, fn, args, kwargs=None, tol=1e-5):
    kwargs = kwargs or {}
    out = fn(*args, **kwargs)
    cases.append({"name": name, "op": op, "args": [enc(a) for a in args],
                  "kwargs": {k: enc(v) for k, v in kwargs.items()},
                  "expect": enc(out), "tol": tol})


def err(name, op, fn, args, kwargs=None, match=None):
    """An error case: nnkit's message must contain @match, by default
    PyTorch's own message (its first line)."""
    kwargs = kwargs or {}
    try:
        fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - any torch error is the reference
        msg = str(e).split("\n")[0]
        cases.append({"name": name, "op": op, "args": [enc(a) for a in args],
                      "kwargs": {k: enc(v) for k, v in kwargs.items()},
                      "error": match if match is not None else msg})
        return
    raise AssertionError(f"{name}: PyTorch raised no error")


def r(*shape):
    return torch.randn(*shape)


def ri(*shape, lo=-5, hi=6):
    return torch.randint(lo, hi, shape)


# --- arithmetic -----------------------------------------------------------
a, b = r(2, 3, 4), r(3, 1)
case("add_broadcast", "add", torch.add, [a, b])
case("add_alpha", "torch.add", torch.add, [a, b], {"alpha": 2.5})
case("add_scalar_right", "operator.add", operator.add, [a, 1.5])
case("add_scalar_left", "Tensor.__radd__", lambda x, y: x.__radd__(y), [a, 2])
case("add_inplace_spelling", "Tensor.add_", torch.add, [a, b])
case("iadd", "operator.iadd", operator.add, [a, a])
case("add_int_float_scalar", "add", torch.add, [ri(4), 0.5])
case("add_int_int", "add", torch.add, [ri(4), ri(2, 4)])
case("add_int_alpha", "add", torch.add, [ri(4), ri(4)], {"alpha": 3})
case("add_bool_bool", "add", torch.add, [ri(5) > 0, ri(5) > 0])
case("add_bool_int_scalar", "add", torch.add, [ri(5) > 0, 3])
case("add_0d_tensor_keeps_dim_dtype", "add", torch.add,
     [ri(4).to(torch.int32), torch.tensor(7)])
case("add_0d_float_promotes_int", "add", torch.add, [ri(4), torch.tensor(0.5)])
case("add_f64_f32", "add", torch.add, [r(3).double(), r(3)])
case("add_u8_wraps", "add", torch.add,
     [torch.tensor([250, 3], dtype=torch.uint8), torch.tensor([10, 4], dtype=torch.uint8)])
case("add_ints_python", "operator.add", operator.add, [3, 4])
case("mul_ints_python", "operator.mul", operator.mul, [3, 4])
case("sub_ints_python", "operator.sub", operator.sub, [3, 10])
case("floordiv_ints_python", "operator.floordiv", operator.floordiv, [7, 2])
case("floordiv_neg_ints_python", "operator.floordiv", operator.floordiv, [-7, 2])
case("truediv_ints_python", "operator.truediv", operator.truediv, [7, 2])
case("add_float_int_python", "operator.add", operator.add, [1.5, 2])
case("sub_broadcast", "sub", torch.sub, [a, b], {"alpha": 0.5})
case("sub_scalar", "operator.sub", operator.sub, [a, 1])
case("rsub", "torch.rsub", torch.rsub, [a, b], {"alpha": 2})
case("rsub_dunder", "Tensor.__rsub__", lambda x, y: x.__rsub__(y), [a, 3])
case("sub_int", "sub", torch.sub, [ri(3, 2), ri(2)])
case("mul_broadcast", "mul", torch.mul, [a, b])
# float32 runs (ops_runs.c): lengths no multiple of 8, a broadcast dim in
# the middle, a Python number on the left.
case("add_runs_odd", "add", torch.add, [r(3, 5, 7), r(7)])
case("mul_runs_middle", "mul", torch.mul, [r(2, 1, 9), r(2, 3, 1)])
case("div_scalar_left", "operator.truediv", operator.truediv, [1.5, r(3, 11)])
case("sub_runs_big", "sub", torch.sub, [r(4, 33, 65), r(33, 1)])
case("mul_scalar", "operator.mul", operator.mul, [a, -2.0])
case("mul_int_bool", "Tensor.mul", torch.mul, [ri(4), ri(4) > 0])
case("div_true", "div", torch.div, [a, b])
case("div_int_int_true", "operator.truediv", operator.truediv, [ri(6), ri(6, lo=1)])
case("div_trunc", "torch.div", torch.div, [a * 5, b], {"rounding_mode": "trunc"})
case("div_floor", "torch.div", torch.div, [a * 5, b], {"rounding_mode": "floor"})
case("div_int_floor", "div", torch.div, [ri(8, lo=-20, hi=20), ri(8, lo=1, hi=5)],
     {"rounding_mode": "floor"})
case("div_int_trunc", "div", torch.div, [ri(8, lo=-20, hi=20), -ri(8, lo=1, hi=5)],
     {"rounding_mode": "trunc"})
case("div_scalar_left", "operator.truediv", operator.truediv, [2.0, r(4).abs() + 0.5])
case("floordiv_tensor", "operator.floordiv", operator.floordiv, [a * 4, 1.5])
case("floor_divide_int", "torch.floor_divide", torch.floor_divide,
     [ri(8, lo=-20, hi=20), 3])
case("remainder_float", "torch.remainder", torch.remainder, [a * 4, -1.5])
case("remainder_int", "operator.mod", operator.mod, [ri(8, lo=-20, hi=20), 3])
err("sub_bool", "sub", torch.sub, [ri(3) > 0, ri(3) > 0])
err("sub_bool_one", "sub", torch.sub, [ri(3) > 0, ri(3)])
err("add_bad_broadcast", "add", torch.add, [r(2, 3), r(4)])
err("add_int_float_alpha", "add", torch.add, [ri(3), ri(3)], {"alpha": 0.5})
err("div_bad_mode", "div", torch.div, [r(3), r(3)], {"rounding_mode": "round"},
    match="div expected rounding_mode to be one of None, 'trunc', or 'floor' but found 'round'")
err("div_int_zero", "div", torch.div, [ri(3), torch.zeros(3, dtype=torch.long)],
    {"rounding_mode": "floor"}, match="ZeroDivisionError")

# --- shapes ---------------------------------------------------------------
x = r(2, 3, 4)
case("reshape_varargs", "Tensor.reshape", lambda t, *s: t.reshape(*s), [x, 4, -1])
case("reshape_tuple", "torch.reshape", torch.reshape, [x, (6, 4)])
case("view_infer", "Tensor.view", lambda t, *s: t.view(*s), [x, -1])
case("view_list", "view", lambda t, s: t.view(s), [x, [3, 8]])
case("view_int_dtype", "view", lambda t, *s: t.view(*s), [ri(6), 2, 3])
err("view_bad", "view", lambda t, *s: t.view(*s), [r(12), 2, 5])
err("view_two_infer", "view", lambda t, *s: t.view(*s), [r(12), -1, -1])
case("unflatten", "Tensor.unflatten", lambda t, d, s: t.unflatten(d, s), [x, -1, (2, 2)])
case("unflatten_infer", "torch.unflatten", lambda t, d, s: t.unflatten(d, s), [x, 1, (-1, 1)])
case("permute_varargs", "Tensor.permute", lambda t, *d: t.permute(*d), [x, 2, 0, 1])
case("permute_tuple", "torch.permute", torch.permute, [x, (1, -1, 0)])
err("permute_short", "permute", torch.permute, [x, (1, 0)])
case("transpose", "Tensor.transpose", torch.transpose, [x, 0, -1])
case("transpose_bool", "torch.transpose", torch.transpose, [ri(2, 3) > 0, 0, 1])
case("t", "Tensor.t", torch.t, [r(3, 5)])
# Copies larger than the 16 x 16 tiles of strided_copy.c, ragged at the
# edges, in each element size: NCHW <-> NHWC, heads split and merged.
case("permute_nhwc_tiles", "permute", torch.permute, [r(2, 37, 5, 19), (0, 2, 3, 1)])
case("permute_nchw_tiles", "permute", torch.permute, [r(2, 5, 19, 37), (0, 3, 1, 2)])
case("permute_heads_i64", "permute", torch.permute, [ri(2, 17, 3, 33), (0, 2, 1, 3)])
case("transpose_tiles_i64", "transpose", torch.transpose, [ri(3, 40, 18), 1, 2])
case("transpose_tiles_f16", "transpose", torch.transpose, [r(35, 21).half(), 0, 1])
case("transpose_tiles_bool", "transpose", torch.transpose, [ri(33, 17) > 0, 0, 1])
case("permute_no_contiguous_dim", "permute", torch.permute, [r(4, 1, 6, 1, 5), (4, 1, 2, 3, 0)])
case("expand_rows", "expand", lambda t, *s: t.expand(*s), [r(5, 1, 3), 5, 20, 3])
case("expand_columns", "expand", lambda t, *s: t.expand(*s), [r(5, 3, 1), 5, 3, 20])
case("contiguous", "Tensor.contiguous", lambda t: t.contiguous(), [x])
case("squeeze_all", "torch.squeeze", torch.squeeze, [r(1, 3, 1, 2)])
case("squeeze_dim", "Tensor.squeeze", torch.squeeze, [r(1, 3, 1, 2), -2])
case("squeeze_dim_noop", "squeeze", torch.squeeze, [r(1, 3, 1, 2), 1])
case("unsqueeze", "Tensor.unsqueeze", torch.unsqueeze, [x, -1])
case("unsqueeze_front", "torch.unsqueeze", torch.unsqueeze, [x, 0])
err("unsqueeze_bad", "unsqueeze", torch.unsqueeze, [x, 4])
case("expand", "Tensor.expand", lambda t, *s: t.expand(*s), [r(3, 1), 2, 3, 4])
case("expand_keep", "expand", lambda t, *s: t.expand(*s), [r(3, 1), -1, 5])
err("expand_bad", "expand", lambda t, *s: t.expand(*s), [r(3, 2), 3, 4])
case("expand_as", "Tensor.expand_as", lambda t, o: t.expand_as(o), [r(1, 4), r(3, 4)])
case("repeat", "Tensor.repeat", lambda t, *s: t.repeat(*s), [r(2, 3), 2, 1, 3])
case("repeat_tuple", "repeat", lambda t, s: t.repeat(s), [ri(2, 2), (3, 2)])
err("repeat_short", "repeat", lambda t, *s: t.repeat(*s), [r(2, 3), 2])
case("size", "Tensor.size", lambda t: t.size(), [x])
case("size_dim", "size", lambda t, d: t.size(d), [x, -1])
case("dim", "Tensor.dim", lambda t: t.dim(), [x])
case("numel", "torch.numel", torch.numel, [x])
case("roll_dims", "torch.roll", torch.roll, [x, (1, -2), (0, 2)])
case("roll_flat", "Tensor.roll", torch.roll, [x, 5])
img = r(1, 2, 4, 5)
case("pad_constant", "torch.nn.functional.pad", F.pad, [img, (1, 2, 0, 1)], {"value": 0.5})
case("pad_constant_crop", "pad", F.pad, [img, (-1, 1)])
case("pad_reflect", "pad", F.pad, [img, (2, 1, 3, 0)], {"mode": "reflect"})
case("pad_replicate", "pad", F.pad, [img, (2, 3, 1, 4)], {"mode": "replicate"})
case("pad_circular", "pad", F.pad, [img, (2, 1, 1, 2)], {"mode": "circular"})
case("pad_reflect_1d", "pad", F.pad, [r(2, 3, 5), (3, 4)], {"mode": "reflect"})
err("pad_reflect_too_big", "pad", F.pad, [r(1, 2, 5), (5, 5)], {"mode": "reflect"})
err("pad_circular_too_big", "pad", F.pad, [r(1, 2, 5), (6, 1)], {"mode": "circular"})
err("pad_reflect_wrong_dims", "pad", F.pad, [img, (2, 2)], {"mode": "reflect"})
case("pad_replicate_crop", "pad", F.pad, [r(1, 2, 5), (-1, 2)], {"mode": "replicate"})
case("pad_zero", "pad", F.pad, [r(1, 3, 14, 14), (0, 0, 0, 0)])
case("pad_rows_only", "pad", F.pad, [r(2, 3, 4, 6), (0, 0, 2, 1)], {"value": -1.5})
case("pad_int_crop_both", "pad", F.pad, [ri(2, 3, 9), (-2, -3, 1, 0)], {"value": 7})
case("pad_crop_past_width", "pad", F.pad, [r(2, 3, 4), (-3, 2)])
case("pad_bool", "pad", F.pad, [ri(2, 5) > 0, (1, 2)])
case("pad_circular_rows", "pad", F.pad, [r(1, 2, 3, 4), (0, 0, 2, 1)], {"mode": "circular"})
err("pad_odd", "pad", F.pad, [img, (1, 2, 3)], match="Padding length must be divisible by 2")

# --- joining --------------------------------------------------------------
case("cat", "torch.cat", torch.cat, [[r(2, 3), r(1, 3)]])
case("cat_dim", "cat", torch.cat, [(r(2, 3), r(2, 1), r(2, 2))], {"dim": -1})
case("cat_promote", "cat", torch.cat, [[ri(2), r(3)]])
case("cat_skips_empty_1d", "cat", torch.cat, [[r(2, 3), torch.zeros(0)]])
err("cat_bad", "cat", torch.cat, [[r(2, 3), r(2, 4)]])
case("stack", "torch.stack", torch.stack, [[r(2, 3), r(2, 3)]])
case("stack_last", "stack", torch.stack, [[r(2, 3), r(2, 3), r(2, 3)]], {"dim": -1})
err("stack_bad", "stack", torch.stack, [[r(2, 3), r(3, 2)]])
case("split_int", "torch.split", torch.split, [r(5, 2), 2])
case("split_sizes", "Tensor.split", torch.split, [r(2, 6), [1, 3, 2], 1])
err("split_bad_sizes", "split", torch.split, [r(5, 2), [2, 2]])
case("tensor_split_sections", "torch.tensor_split", torch.tensor_split, [r(7, 2), 3])
case("tensor_split_more_sections", "tensor_split", torch.tensor_split, [r(2, 3), 4])
case("tensor_split_indices_dim", "Tensor.tensor_split", torch.tensor_split,
     [r(2, 3, 5), [1, 4], 2])
case("tensor_split_indices_wrap", "tensor_split", torch.tensor_split, [ri(6, 2), [-2, 10, 3]])
err("tensor_split_zero", "tensor_split", torch.tensor_split, [r(3, 2), 0])
err("tensor_split_scalar", "tensor_split", torch.tensor_split, [torch.tensor(1.0), 2])
err("tensor_split_dim", "tensor_split", torch.tensor_split, [r(3, 2), 2, 2])
case("chunk", "torch.chunk", torch.chunk, [r(5, 2), 3])
case("chunk_fewer", "Tensor.chunk", torch.chunk, [r(6, 2), 4])
case("chunk_dim", "chunk", torch.chunk, [r(2, 7), 2, -1])
case("unbind", "torch.unbind", torch.unbind, [r(3, 2), 1])

# --- indexing -------------------------------------------------------------
x = r(4, 5, 6)
g = operator.getitem
case("getitem_int", "operator.getitem", g, [x, 1])
# Several integer tensor indices side by side (index_multi.c).
x4 = r(3, 4, 5)
rows_i, cols_i = torch.tensor([0, 2, -1]), torch.tensor([[1], [3]])
case("getitem_two_tensors", "getitem", g, [x4, (rows_i, torch.tensor([1, 0, 3]))])
case("getitem_two_tensors_bcast", "getitem", g, [x4, (rows_i, cols_i)])
case("getitem_two_tensors_after_slice", "getitem", g, [x4, (slice(None), cols_i, torch.tensor([4, 0]))])
case("getitem_two_tensors_then_slice", "getitem", g, [x4, (rows_i, torch.tensor(2), slice(1, 4))])
case("getitem_three_tensors", "getitem", g, [x4, (rows_i, cols_i, torch.tensor([0, 4, 2]))])
case("getitem_two_tensors_ellipsis", "getitem", g, [x4, (Ellipsis, cols_i, torch.tensor([4, 0]))])
err("getitem_two_tensors_range", "getitem", g, [x4, (rows_i, torch.tensor([1, 4, 3]))])
err("getitem_two_tensors_bcast_bad", "getitem", g, [x4, (rows_i, torch.tensor([1, 0]))])
case("getitem_neg", "getitem", g, [x, -1])
case("getitem_slice", "getitem", g, [x, slice(1, None, 2)])
case("getitem_slice_neg", "getitem", g, [x, slice(-3, -1, None)])
case("getitem_tuple", "getitem", g, [x, (slice(None), 2, slice(None, 3))])
case("getitem_none_ellipsis", "getitem", g, [x, (None, Ellipsis, 0)])
case("getitem_ellipsis_mid", "getitem", g, [x, (0, Ellipsis, slice(1, 4))])
case("getitem_long_index", "getitem", g, [x, (slice(None), torch.tensor([[0, 4], [2, 2]]))])
case("getitem_long_first", "getitem", g, [x, torch.tensor([3, 0, -1])])
case("getitem_bool_mask", "getitem", g, [x, x[:, :, 0] > 0])
case("getitem_bool_1d", "getitem", g, [x, (slice(None), torch.tensor([True, False, True, False, True]))])
case("getitem_list", "getitem", g, [x, [0, 2]])
case("getitem_tuple_value", "getitem", g, [(1, 2, 3), -1])
case("getitem_tuple_slice", "getitem", g, [(1, 2, 3), slice(None, 2)])
case("getitem_tensor_tuple", "getitem", g, [(r(2), r(3)), 1])
case("getitem_dict", "getitem", g, [{"a": 1, "b": r(2)}, "b"])
case("getitem_size", "getitem", g, [torch.Size([2, 3, 4]), 1])
err("getitem_oob", "getitem", g, [x, 4])
err("getitem_too_many", "getitem", g, [x, (0, 0, 0, 0)])
err("getitem_tuple_oob", "getitem", g, [(1, 2), 5], match="tuple index out of range")
err("getitem_dict_missing", "getitem", g, [{"a": 1}, "b"], match="KeyError: 'b'")
case("select", "Tensor.select", torch.select, [x, 1, -2])
case("narrow", "torch.narrow", torch.narrow, [x, -1, 2, 3])
err("narrow_bad", "narrow", torch.narrow, [x, 0, 2, 3])
case("index_select", "torch.index_select", torch.index_select, [x, 1, torch.tensor([4, 0, 0])])
err("index_select_oob", "index_select", torch.index_select, [x, 1, torch.tensor([5])],
    match="out of bounds")
case("gather", "torch.gather", torch.gather, [r(3, 4), 1, torch.randint(0, 4, (3, 2))])
case("gather_dim0", "Tensor.gather", torch.gather, [r(3, 4), 0, torch.randint(0, 3, (2, 4))])
err("gather_ndim", "gather", torch.gather, [r(3, 4), 1, torch.tensor([0])])

# --- reductions -----------------------------------------------------------
x = r(3, 4, 5)
case("sum_all", "torch.sum", torch.sum, [x], tol=1e-4)
case("sum_dim", "Tensor.sum", torch.sum, [x, 1])
case("sum_dims_keep", "sum", torch.sum, [x, (0, -1)], {"keepdim": True})
case("sum_int", "sum", torch.sum, [ri(3, 4), 0])
case("sum_bool", "sum", torch.sum, [ri(3, 4) > 0])
case("sum_dtype", "sum", torch.sum, [ri(3, 4), 1], {"dtype": torch.float32})
case("mean_all", "torch.mean", torch.mean, [x])
case("mean_dim", "Tensor.mean", torch.mean, [x, -1, True])
case("mean_dims", "mean", torch.mean, [x, [0, 2]])
err("mean_int", "mean", torch.mean, [ri(3)])
case("amax", "torch.amax", torch.amax, [x, (1, 2)])
case("amin_keep", "Tensor.amin", torch.amin, [x, 0, True])
case("amax_all", "amax", torch.amax, [ri(3, 4)])
case("max_all", "torch.max", torch.max, [x])
case("max_dim", "Tensor.max", torch.max, [x, 1])
case("max_dim_keep", "max", torch.max, [x, -1, True])
case("max_int_dim", "max", torch.max, [ri(4, 3), 0])
case("max_other", "max", torch.max, [r(3, 1), r(4)])
case("min_all", "torch.min", torch.min, [x])
case("min_dim", "Tensor.min", torch.min, [x, 2])
case("argmax", "torch.argmax", torch.argmax, [x])
case("argmax_dim", "Tensor.argmax", torch.argmax, [x, 1])
case("argmax_keep", "argmax", torch.argmax, [x, -1, True])
case("argmin_dim", "argmin", torch.argmin, [x, 0])
case("argmax_ties", "argmax", torch.argmax, [torch.tensor([1, 3, 3, 2]), 0])
case("var_all", "torch.var", torch.var, [x])
case("var_dim", "Tensor.var", torch.var, [x, 1])
case("var_unbiased_false", "var", torch.var, [x, (0, 2), False, True])
case("var_correction", "var", torch.var, [x, 1], {"correction": 0})
case("std_dim", "torch.std", torch.std, [x, -1])
case("std_keep", "Tensor.std", torch.std, [x, 0], {"keepdim": True})
case("std_positional_unbiased", "std", torch.std, [x, False])
err("var_int", "var", torch.var, [ri(3)], match="std and var only support floating point")
err("sum_bad_dim", "sum", torch.sum, [x, 3])

# --- matmul ---------------------------------------------------------------
case("matmul_2d", "torch.matmul", torch.matmul, [r(3, 4), r(4, 5)], tol=1e-4)
case("matmul_1d_1d", "matmul", torch.matmul, [r(4), r(4)], tol=1e-4)
case("matmul_1d_2d", "matmul", torch.matmul, [r(4), r(4, 3)], tol=1e-4)
case("matmul_2d_1d", "matmul", torch.matmul, [r(2, 4), r(4)], tol=1e-4)
case("matmul_batched_bcast", "operator.matmul", operator.matmul, [r(2, 1, 3, 4), r(5, 4, 2)], tol=1e-4)
case("matmul_batched_1d", "Tensor.matmul", torch.matmul, [r(2, 3, 4), r(4)], tol=1e-4)
case("matmul_f64", "matmul", torch.matmul, [r(3, 4).double(), r(4, 2).double()], tol=1e-10)
err("matmul_bad", "matmul", torch.matmul, [r(3, 4), r(5, 2)])
case("mm", "torch.mm", torch.mm, [r(3, 4), r(4, 2)], tol=1e-4)
case("bmm", "torch.bmm", torch.bmm, [r(2, 3, 4), r(2, 4, 5)], tol=1e-4)
err("bmm_bad", "bmm", torch.bmm, [r(2, 3, 4), r(2, 3, 5)])
case("linear", "torch.nn.functional.linear", F.linear, [r(2, 3, 4), r(5, 4), r(5)], tol=1e-4)
case("linear_nobias", "linear", F.linear, [r(3, 4), r(2, 4)], tol=1e-4)
err("linear_bad", "linear", F.linear, [r(3, 4), r(2, 5)])

# --- softmax --------------------------------------------------------------
x = r(2, 3, 4)
case("softmax", "torch.nn.functional.softmax", F.softmax, [x], {"dim": -1})
case("softmax_dim0", "Tensor.softmax", torch.softmax, [x, 0])
case("softmax_torch_dtype", "torch.softmax", torch.softmax, [x.half(), 1, torch.float32])
case("softmax_implicit_dim", "softmax", lambda t: F.softmax(t, dim=None), [r(2, 3)])
case("log_softmax", "torch.nn.functional.log_softmax", F.log_softmax, [x], {"dim": 1})
case("log_softmax_dtype", "log_softmax", F.log_softmax, [ri(2, 3)], {"dim": 1, "dtype": torch.float64})
case("softmax_big", "softmax", F.softmax, [x * 100], {"dim": -1})

# --- unary ----------------------------------------------------------------
x = r(3, 4)
pos = x.abs() + 0.1
for op, fn, arg in [("exp", torch.exp, x), ("log", torch.log, pos),
                    ("sqrt", torch.sqrt, pos), ("rsqrt", torch.rsqrt, pos),
                    ("erf", torch.erf, x), ("sin", torch.sin, x),
                    ("cos", torch.cos, x), ("neg", torch.neg, x),
                    ("abs", torch.abs, x), ("floor", torch.floor, x * 3),
                    ("ceil", torch.ceil, x * 3), ("reciprocal", torch.reciprocal, pos),
                    ("sign", torch.sign, x), ("trunc", torch.trunc, x * 3)]:
    case(op, "torch." + op, fn, [arg], tol=1e-5)
case("exp_int", "exp", torch.exp, [ri(4)], tol=1e-5)
case("sqrt_int", "Tensor.sqrt", torch.sqrt, [ri(4, lo=0)])
case("neg_int", "operator.neg", operator.neg, [ri(4)])
case("abs_int", "Tensor.abs", torch.abs, [ri(4)])
case("floor_int", "floor", torch.floor, [ri(4)])
case("log_negative_nan", "log", torch.log, [torch.tensor([-1.0, 0.0, 1.0])])
# PyTorch 1.13 has no CPU half exp; nnkit computes in float and rounds.
case("exp_half", "exp", lambda t: torch.exp(t.float()).half(), [x.half()], tol=1e-2)
case("exp_bf16", "exp", torch.exp, [x.bfloat16()], tol=2e-2)
case("round", "torch.round", torch.round, [torch.tensor([0.5, 1.5, 2.5, -0.5, 1.2345, -2.7])])
case("round_decimals", "round", torch.round, [x * 10], {"decimals": 2}, tol=1e-4)
case("round_neg_decimals", "round", torch.round, [x * 1000], {"decimals": -2})
case("pow_scalar", "torch.pow", torch.pow, [x, 2])
case("pow_tensor", "Tensor.pow", torch.pow, [pos, x])
case("pow_scalar_base", "operator.pow", operator.pow, [2.0, x])
case("pow_int", "pow", torch.pow, [ri(4), 3])
case("pow_int_float", "pow", torch.pow, [ri(4, lo=0), 0.5])
case("pow_python_ints", "operator.pow", operator.pow, [3, 4])
case("clamp", "torch.clamp", torch.clamp, [x, -0.5, 0.5])
case("clamp_min", "Tensor.clamp", torch.clamp, [x], {"min": 0.0})
case("clamp_max_tensor", "clamp", torch.clamp, [x], {"max": r(4)})
case("clip_int", "torch.clip", torch.clip, [ri(6), -2, 3])
case("clamp_int_float", "clamp", torch.clamp, [ri(6)], {"min": 0.5})
err("clamp_none", "clamp", torch.clamp, [x], match="torch.clamp: At least one of 'min' or 'max' must not be None")
err("neg_bool", "neg", torch.neg, [ri(3) > 0])
err("pow_neg_int", "pow", torch.pow, [ri(3), -1])

# --- comparisons ----------------------------------------------------------
a, b = ri(3, 4, lo=-2, hi=3).float(), ri(4, lo=-2, hi=3).float()
for op in ["eq", "ne", "lt", "le", "gt", "ge"]:
    case(op, "torch." + op, getattr(torch, op), [a, b])
    case(op + "_operator", "operator." + op, getattr(operator, op), [a, 1])
case("eq_int_float", "Tensor.eq", torch.eq, [ri(4), 1.0])
case("lt_python_ints", "operator.lt", operator.lt, [2, 3])
m1, m2 = ri(6) > 0, ri(6) > 0
case("logical_and", "torch.logical_and", torch.logical_and, [m1, m2])
case("logical_or", "torch.logical_or", torch.logical_or, [a, b])
case("logical_xor", "logical_xor", torch.logical_xor, [m1, m2])
case("logical_not", "torch.logical_not", torch.logical_not, [a])
case("and_bool", "operator.and_", operator.and_, [m1, m2])
case("or_bool", "operator.or_", operator.or_, [m1, m2])
case("xor_int", "operator.xor", operator.xor, [ri(6), ri(6)])
case("invert_bool", "operator.invert", operator.invert, [m1])
case("invert_int", "Tensor.__invert__", operator.invert, [ri(5)])
err("and_float", "operator.and_", operator.and_, [a, b], match="not implemented for 'Float'")
case("where", "torch.where", torch.where, [a > 0, a, b])
case("where_scalar", "where", torch.where, [a > 0, a, 0.0])
case("where_int_scalars", "where", torch.where, [m1, 1, 0])
err("where_float_cond", "where", torch.where, [a, a, b])
case("masked_fill", "Tensor.masked_fill", torch.masked_fill, [a, b > 0, float("-inf")])
case("masked_fill_heads", "masked_fill", torch.masked_fill,
     [r(2, 3, 5, 5), torch.tril(torch.ones(5, 5)).view(1, 1, 5, 5) == 0, float("-inf")])
case("masked_fill_rows", "masked_fill", torch.masked_fill, [r(4, 6, 9), r(4, 1, 9) > 0, -1.0])
case("masked_fill_tensor_value", "masked_fill", torch.masked_fill, [a, b > 0, torch.tensor(2.5)])
case("masked_fill_int", "Tensor.masked_fill_", torch.masked_fill, [ri(2, 3), ri(2, 3) > 0, 7])
case("masked_fill_long_mask", "masked_fill", torch.masked_fill,
     [a, torch.randint(0, 2, (4,)), 1.0])
err("masked_fill_mask_values", "masked_fill", torch.masked_fill, [a, b.long(), 1.0],
    match="Mask tensor can take 0 and 1 values only")
case("tril", "torch.tril", torch.tril, [r(2, 4, 5)])
case("tril_diag", "Tensor.tril", torch.tril, [r(4, 5), -1])
case("triu", "torch.triu", torch.triu, [r(4, 5), 2])
case("triu_bool", "triu", torch.triu, [torch.ones(3, 3, dtype=torch.bool)])
case("isnan", "torch.isnan", torch.isnan, [torch.tensor([1.0, float("nan"), float("inf")])])
case("isinf", "isinf", torch.isinf, [torch.tensor([1.0, float("nan"), float("-inf")])])
case("isfinite", "isfinite", torch.isfinite, [torch.tensor([1.0, float("nan"), float("inf")])])

# --- creation -------------------------------------------------------------
case("arange_end", "torch.arange", torch.arange, [5])
case("arange_start_end", "arange", torch.arange, [2, 9, 3])
case("arange_float", "arange", torch.arange, [0.0, 1.0, 0.25])
case("arange_neg_step", "arange", torch.arange, [5, -3, -2])
case("arange_dtype", "arange", torch.arange, [4], {"dtype": torch.float32})
err("arange_zero_step", "arange", torch.arange, [0, 4, 0], match="step must be nonzero")
case("zeros", "torch.zeros", torch.zeros, [2, 3])
case("zeros_tuple_dtype", "zeros", torch.zeros, [(2, 3)], {"dtype": torch.int64})
case("ones", "torch.ones", torch.ones, [3], {"dtype": torch.bool})
case("ones_device_ignored", "ones", torch.ones, [2, 2], {"device": "cpu", "requires_grad": False})
case("empty", "torch.empty", lambda *s: torch.zeros(*s), [2, 1])
case("full", "torch.full", torch.full, [(2, 3), 1.5])
case("full_int", "full", torch.full, [(2,), 7])
case("full_bool", "full", torch.full, [(2,), True])
case("zeros_like", "torch.zeros_like", torch.zeros_like, [ri(2, 3)])
case("ones_like_dtype", "torch.ones_like", torch.ones_like, [ri(2, 3)], {"dtype": torch.float32})
case("full_like", "torch.full_like", torch.full_like, [r(2, 3), -2.0])
case("new_zeros", "Tensor.new_zeros", lambda t, s: t.new_zeros(s), [ri(2), (3, 2)])
case("new_ones", "Tensor.new_ones", lambda t, *s: t.new_ones(*s), [r(2), 2, 2])
case("new_full", "Tensor.new_full", lambda t, s, v: t.new_full(s, v), [r(2), (2,), 3.5])
case("tensor_scalar", "torch.tensor", torch.tensor, [3])
case("tensor_float", "tensor", torch.tensor, [2.5])
case("tensor_nested", "tensor", torch.tensor, [[[1, 2], [3, 4]]])
case("tensor_nested_float", "tensor", torch.tensor, [[1, 2.5]], {"dtype": torch.float64})
case("tensor_bool", "tensor", torch.tensor, [[True, False]])

# --- conversion -----------------------------------------------------------
x = r(2, 3) * 4
case("to_dtype", "Tensor.to", lambda t, *a: t.to(*a), [x, torch.int64])
case("to_device_dtype", "Tensor.to", lambda t, *a: t.to(*a), [x, "cpu", torch.float16], tol=1e-2)
case("to_kw_dtype", "to", lambda t, **k: t.to(**k), [x], {"dtype": torch.float64})
case("to_other", "to", lambda t, o: t.to(o), [x, ri(2)])
case("to_device_only", "to", lambda t, d: t.to(d), [x, "cpu"])
case("type_dtype", "Tensor.type", lambda t, d: t.type(d), [x, torch.int32])
case("type_legacy", "Tensor.type", lambda t, d: t.type(d), [x, "torch.LongTensor"])
case("type_name", "Tensor.type", lambda t: t.type(), [ri(2)])
case("type_as", "Tensor.type_as", lambda t, o: t.type_as(o), [ri(3), r(2)])
for name, fn in [("float", lambda t: t.float()), ("double", lambda t: t.double()),
                 ("half", lambda t: t.half()), ("bfloat16", lambda t: t.bfloat16()),
                 ("long", lambda t: t.long()), ("int", lambda t: t.int()),
                 ("bool", lambda t: t.bool())]:
    case("cast_" + name, "Tensor." + name, fn, [x], tol=2e-2)
case("long_to_float", "Tensor.float", lambda t: t.float(), [ri(4)])
case("clone", "torch.clone", torch.clone, [x])
case("detach", "Tensor.detach", lambda t: t.detach(), [x])

# --- layer_norm -----------------------------------------------------------
x = r(2, 3, 4)
case("layer_norm", "torch.nn.functional.layer_norm", F.layer_norm, [x, (4,), r(4), r(4)])
case("layer_norm_2d", "layer_norm", F.layer_norm, [x, [3, 4]], {"eps": 1e-3})
case("layer_norm_weight_only", "layer_norm", F.layer_norm, [x, (4,), r(4)])
case("layer_norm_bias_only", "layer_norm", F.layer_norm, [x, (4,), None, r(4)])
case("layer_norm_f64", "layer_norm", F.layer_norm, [x.double(), (4,), r(4).double(), r(4).double()])
case("layer_norm_long_rows", "layer_norm", F.layer_norm, [r(3, 5, 96), (96,), r(96), r(96)])
err("layer_norm_bad", "layer_norm", F.layer_norm, [x, (3,)])

case("new_tensor", "Tensor.new_tensor", lambda t, d: t.new_tensor(d), [ri(2), [[1.7, -2.2]]])
case("add_half", "add", torch.add, [r(5).half(), r(5).half()], tol=1e-2)
case("mul_bf16_scalar", "mul", torch.mul, [r(5).bfloat16(), 3.3], tol=2e-2)
case("add_int8_int32", "add", torch.add, [ri(5).to(torch.int8), ri(5).to(torch.int32)])
case("where_broadcast", "where", torch.where, [ri(3, 1) > 0, r(4), ri(3, 4)])
case("logical_not_float", "logical_not", torch.logical_not, [torch.tensor([0.0, 2.0, -1.0])])

# --- more ops the exporter writes ---------------------------------------


def setitem(t, k, v):
    t = t.clone()
    t[k] = v
    return t


x = r(3, 4, 5)
case("setitem_int", "setitem", setitem, [x, 1, 0.5])
case("setitem_slice_tensor", "operator.setitem", setitem, [x, (slice(None), slice(1, 3)), r(2, 5)])
case("setitem_broadcast", "setitem", setitem, [x, (Ellipsis, 0), r(4)])
case("setitem_mask", "setitem", setitem, [x, x > 0, 0.0])
case("setitem_mask_dim", "setitem", setitem, [x, (slice(None), torch.tensor([True, False, True, True])), -1.0])
case("setitem_long_index", "setitem", setitem, [x, (slice(None), torch.tensor([0, 3])), r(3, 2, 5)])
case("setitem_int_tensor_float_value", "setitem", setitem, [ri(2, 3), (0, slice(None)), 2.7])
case("setitem_value_leading_one", "setitem", setitem, [x, 0, r(1, 4, 5)])
err("setitem_bad_shape", "setitem", setitem, [x, 0, r(3)])
case("setitem_list", "setitem", lambda l, i, v: l[:i] + [v] + l[i + 1:], [[1, 2, 3], 1, 9])
case("fmod", "torch.fmod", torch.fmod, [r(6) * 5, -1.5])
case("fmod_int", "Tensor.fmod", torch.fmod, [ri(8, lo=-20, hi=20), 3])
case("floordiv_short", "floordiv", operator.floordiv, [ri(6, lo=-9, hi=9), 4])
case("mod_short", "mod", operator.mod, [ri(6, lo=-9, hi=9), 4])
case("maximum", "torch.maximum", torch.maximum, [r(3, 1), r(4)])
case("minimum_int", "minimum", torch.minimum, [ri(5), ri(5)])
case("prod", "torch.prod", torch.prod, [r(3, 4), 1])
case("prod_all_int", "Tensor.prod", torch.prod, [ri(5, lo=1, hi=4)])
case("all", "torch.all", torch.all, [ri(3, 4) > -4])
case("any_dim", "Tensor.any", torch.any, [ri(3, 4) > 3, 1])
case("all_float_keep", "all", torch.all, [r(3, 4), 0, True])
case("flip", "torch.flip", torch.flip, [r(2, 3, 4), (0, 2)])
case("flip_method", "Tensor.flip", lambda t, *d: t.flip(*d), [r(2, 3, 4), -1])
case("tile", "torch.tile", torch.tile, [r(2, 3), (2,)])
case("tile_more", "Tensor.tile", torch.tile, [r(2, 3), (2, 1, 2)])
case("len_tensor", "builtins.len", len, [r(4, 2)])
case("len_tuple", "len", len, [(1, 2, 3)])
case("numel_of_size", "numel", lambda s: s.numel(), [torch.Size([2, 3, 4])])
case("eye", "torch.eye", torch.eye, [3])
case("eye_rect_dtype", "eye", torch.eye, [2, 4], {"dtype": torch.int64})
case("addmm", "torch.addmm", torch.addmm, [r(4), r(3, 2), r(2, 4)], {"beta": 0.5, "alpha": 2.0}, tol=1e-4)
case("baddbmm", "torch.baddbmm", torch.baddbmm, [r(2, 3, 4), r(2, 3, 5), r(2, 5, 4)], {"alpha": 0.5}, tol=1e-4)
case("cumsum", "torch.cumsum", torch.cumsum, [r(3, 4), 1])
case("cumsum_int", "Tensor.cumsum", torch.cumsum, [ri(3, 4), 0])
case("cumsum_bool", "cumsum", torch.cumsum, [ri(6) > 0, 0])
case("cumprod", "torch.cumprod", torch.cumprod, [r(3, 4), -1])
case("sort", "torch.sort", torch.sort, [r(3, 5)])
case("sort_desc_dim0", "Tensor.sort", torch.sort, [r(3, 5), 0, True])
case("sort_nan", "sort", torch.sort, [torch.tensor([2.0, float("nan"), -1.0, 5.0])])
case("argsort", "torch.argsort", torch.argsort, [r(4, 3)], {"dim": 0})
case("topk", "torch.topk", torch.topk, [r(3, 6), 2])
case("topk_smallest", "Tensor.topk", torch.topk, [r(3, 6), 3, 0, False])
err("topk_too_big", "topk", torch.topk, [r(3, 6), 7])
case("norm", "torch.norm", torch.norm, [r(3, 4)])
case("norm_p1_dim", "Tensor.norm", torch.norm, [r(3, 4), 1, 1])
case("norm_inf_keep", "norm", torch.norm, [r(3, 4), float("inf"), 0, True])
case("norm_p3", "norm", torch.norm, [r(3, 4)], {"p": 3, "dim": (0, 1)})
case("vector_norm", "torch.linalg.vector_norm", torch.linalg.vector_norm, [r(3, 4)], {"ord": 2, "dim": -1})
case("normalize", "torch.nn.functional.normalize", F.normalize, [r(3, 4)])
case("normalize_dim", "normalize", F.normalize, [r(3, 4)], {"p": 1.0, "dim": 0})
case("getitem_tuple_reversed", "getitem", operator.getitem, [(1, 2, 3, 4), slice(None, None, -1)])
case("getitem_list_step", "getitem", operator.getitem, [[1, 2, 3, 4, 5], slice(-1, 0, -2)])
case("and_short", "and_", operator.and_, [m1, m2])
case("invert_short", "invert", operator.invert, [m1])
case("einsum_matmul", "torch.einsum", torch.einsum, ["bij,bjk->bik", r(2, 3, 4), r(2, 4, 5)])
case("einsum_list", "einsum", torch.einsum, ["ij,jk", [r(3, 4), r(4, 2)]])
case("einsum_ellipsis", "einsum", torch.einsum, ["...qd,...kd->...qk", r(2, 3, 5, 4), r(3, 6, 4)])
case("einsum_trace_diag", "einsum", torch.einsum, ["ii->i", r(4, 4)])
case("einsum_sum_all", "einsum", torch.einsum, ["ij->", r(3, 4)])
case("einsum_outer", "einsum", torch.einsum, ["i,j->ij", r(3), r(4)])
case("einsum_implicit_transpose", "einsum", torch.einsum, ["ba", r(3, 4)])
case("einsum_three", "einsum", torch.einsum, ["ij,jk,kl->il", r(2, 3), r(3, 4), r(4, 2)])
err("einsum_bad_sizes", "einsum", torch.einsum, ["ij,jk->ik", r(2, 3), r(4, 2)],
    match="einsum(): operands do not broadcast")
case("div_by_zero_float", "div", torch.div, [torch.tensor([1.0, -1.0, 0.0]), 0.0])
case("floordiv_int_by_float", "floordiv", operator.floordiv, [ri(6, lo=-9, hi=9), 2.5])
case("remainder_by_zero_float", "remainder", torch.remainder, [r(3), 0.0])
case("pow_float_int_tensor", "pow", torch.pow, [pos, ri(3, 4, lo=-2, hi=3)])
case("lt_int_float_tensors", "lt", torch.lt, [ri(3, 4), r(4)])
case("sum_float_dtype_f64", "sum", torch.sum, [r(3, 4), 1], {"dtype": torch.float64})
case("mean_dtype_f64", "mean", torch.mean, [r(3, 4)], {"dtype": torch.float64})
case("cat_bool_int", "cat", torch.cat, [[ri(2) > 0, ri(3)]])
case("float_short", "float", lambda t: t.float(), [ri(3)])

# --- ops hand-written models use (patches, grouped-query attention,
# one-hot targets, functional convolutions and pools) --------------------
x = r(2, 3, 8, 6)
case("unfold_patches", "Tensor.unfold", lambda t, *a: t.unfold(*a), [x, 2, 4, 4])
case("unfold_overlap", "unfold", lambda t, *a: t.unfold(*a), [x, -1, 3, 2])
case("unfold_twice", "unfold", lambda t, *a: t.unfold(*a), [x.unfold(2, 2, 2), 3, 3, 3])
case("unfold_int", "unfold", lambda t, *a: t.unfold(*a), [ri(7), 0, 2, 3])
err("unfold_too_big", "unfold", lambda t, *a: t.unfold(*a), [x, 3, 7, 1])
err("unfold_step", "unfold", lambda t, *a: t.unfold(*a), [x, 3, 2, 0])
case("repeat_interleave_dim", "Tensor.repeat_interleave",
     lambda t, *a, **k: t.repeat_interleave(*a, **k), [r(2, 3, 4)], {"repeats": 2, "dim": 1})
case("repeat_interleave_flat", "torch.repeat_interleave", torch.repeat_interleave,
     [ri(2, 3), 3])
case("repeat_interleave_neg_dim", "repeat_interleave", torch.repeat_interleave,
     [r(2, 3), torch.tensor(2), -1])
case("repeat_interleave_zero", "repeat_interleave", torch.repeat_interleave, [r(2, 3), 0, 0])
err("repeat_interleave_negative", "repeat_interleave", torch.repeat_interleave,
    [r(2, 3), -1, 0])
case("one_hot", "torch.nn.functional.one_hot", F.one_hot, [ri(2, 3, lo=0, hi=5), 6])
case("one_hot_inferred", "one_hot", F.one_hot, [torch.tensor([[0, 3], [1, 2]])])
err("one_hot_too_small", "one_hot", F.one_hot, [torch.tensor([0, 4]), 3])
err("one_hot_negative", "one_hot", F.one_hot, [torch.tensor([0, -1]), 3])
w2, w1 = r(4, 3, 3, 2) * 0.3, r(4, 2, 3) * 0.3
case("conv2d_fn", "torch.nn.functional.conv2d", F.conv2d,
     [r(2, 3, 7, 6), w2, r(4)], {"stride": (2, 1), "padding": 1}, tol=1e-4)
case("conv2d_fn_same_dilated", "torch.conv2d", F.conv2d,
     [r(1, 3, 6, 7), w2], {"padding": "same", "dilation": 2}, tol=1e-4)
case("conv2d_fn_groups_unbatched", "conv2d", F.conv2d,
     [r(4, 5, 5), r(6, 2, 1, 3) * 0.3, None, 1, "valid", 1, 2], tol=1e-4)
case("conv1d_fn", "torch.nn.functional.conv1d", F.conv1d,
     [r(2, 2, 9), w1, r(4)], {"padding": "same"}, tol=1e-4)
case("conv1d_fn_strided", "torch.conv1d", F.conv1d, [r(1, 2, 9), w1, None, 2, 1], tol=1e-4)
err("conv2d_fn_channels", "conv2d", F.conv2d, [r(1, 2, 6, 6), w2])
err("conv2d_fn_same_strided", "conv2d", F.conv2d, [r(1, 3, 6, 6), w2], {"stride": 2,
    "padding": "same"})
err("conv1d_fn_rank", "conv1d", F.conv1d, [r(2, 2, 2, 9), w1])
err("conv1d_fn_bias", "conv1d", F.conv1d, [r(1, 2, 9), w1, r(3)],
    match="expected bias to be 1-dimensional with 4 elements")
w3 = r(4, 3, 3, 2, 3) * 0.3
case("conv3d_fn", "torch.nn.functional.conv3d", F.conv3d,
     [r(2, 3, 5, 6, 4), w3, r(4)], {"stride": (1, 2, 1), "padding": 1}, tol=1e-4)
case("conv3d_fn_same_dilated", "torch.conv3d", F.conv3d,
     [r(1, 3, 5, 6, 7), w3], {"padding": "same", "dilation": (1, 2, 2)}, tol=1e-4)
case("conv3d_fn_groups_unbatched", "conv3d", F.conv3d,
     [r(4, 3, 5, 5), r(6, 2, 1, 3, 1) * 0.3, None, 1, "valid", 1, 2], tol=1e-4)
err("conv3d_fn_channels", "conv3d", F.conv3d, [r(1, 2, 5, 5, 5), w3])
err("conv3d_fn_rank", "conv3d", F.conv3d, [r(2, 9, 9), w3])
err("conv3d_fn_same_strided", "conv3d", F.conv3d, [r(1, 3, 6, 6, 6), w3],
    {"stride": 2, "padding": "same"})
err("conv3d_fn_kernel_too_big", "conv3d", F.conv3d, [r(1, 3, 2, 5, 5), w3])
err("conv3d_fn_groups", "conv3d", F.conv3d, [r(1, 4, 5, 5, 5), r(3, 2, 3, 3, 3)],
    {"groups": 2}, match="expected weight to be divisible by 2 at dimension 0")
err("conv3d_fn_weight_rank", "conv3d", F.conv3d, [r(1, 3, 5, 5, 5), r(4, 3, 3, 3)],
    match="Expected 5-dimensional weight")
err("conv3d_fn_bias", "conv3d", F.conv3d, [r(1, 3, 5, 5, 5), w3, r(3)],
    match="expected bias to be 1-dimensional with 4 elements")

case("pixel_shuffle_fn", "torch.nn.functional.pixel_shuffle", F.pixel_shuffle, [r(2, 8, 3, 2), 2])
case("pixel_unshuffle_fn", "torch.pixel_unshuffle", F.pixel_unshuffle, [r(1, 2, 4, 6), 2])
err("pixel_shuffle_fn_zero", "pixel_shuffle", F.pixel_shuffle, [r(1, 4, 2, 2), 0])
err("pixel_unshuffle_fn_channels", "pixel_unshuffle", F.pixel_unshuffle, [r(1, 2, 5, 6), 2])

case("var_mean_dims", "torch.var_mean", torch.var_mean, [r(2, 3, 4)], {"dim": [1, 2], "unbiased": False,
     "keepdim": True})
case("std_mean_all", "std_mean", torch.std_mean, [r(3, 5)])
case("std_mean_correction", "std_mean", torch.std_mean, [r(3, 5), 1], {"correction": 0})

x = r(3, 4)
for fn in (torch.log1p, torch.expm1, torch.log2, torch.log10, torch.tan, torch.atan, torch.sinh,
           torch.cosh, torch.square):
    arg = x.abs() if fn in (torch.log1p, torch.log2, torch.log10) else x
    case(f"{fn.__name__}_float", f"torch.{fn.__name__}", fn, [arg])
case("asin", "Tensor.asin", torch.asin, [x.clamp(-0.9, 0.9)])
case("acos", "torch.arccos", torch.acos, [x.clamp(-0.9, 0.9)])
case("log1p_int", "log1p", torch.log1p, [ri(5, lo=0)])
case("square_int", "square", torch.square, [ri(5)])
case("square_bool", "square", torch.square, [ri(5) > 0])
case("logsumexp", "torch.logsumexp", torch.logsumexp, [r(2, 3, 4) * 30, 1])
case("logsumexp_dims_keep", "Tensor.logsumexp", torch.logsumexp, [r(2, 3, 4), (0, 2), True])
case("logsumexp_inf", "logsumexp", torch.logsumexp,
     [torch.tensor([[float("-inf"), float("-inf")], [1.0, float("inf")]]), 1])
case("logsumexp_int", "logsumexp", torch.logsumexp, [ri(3, 4), 1])
case("cosine_similarity_fn", "torch.nn.functional.cosine_similarity", F.cosine_similarity,
     [r(2, 1, 5), r(3, 5)], {"dim": -1})
case("pairwise_distance_fn", "torch.nn.functional.pairwise_distance", F.pairwise_distance,
     [r(3, 5), r(3, 5)], {"p": 1.5, "keepdim": True})

idx = torch.tensor([[0, 2, 1], [1, 0, 2]])
case("scatter_src", "torch.scatter", torch.scatter, [r(2, 3), 1, idx, r(2, 3)])
case("scatter_value", "Tensor.scatter", torch.scatter, [r(3, 4), 0, idx, 2.5])
case("scatter_int", "scatter", torch.scatter, [ri(3, 3), 1, idx, ri(2, 3)])
case("scatter_add", "torch.scatter_add", torch.scatter_add, [r(3, 3), 0, idx, r(2, 4)])
case("scatter_add_int", "Tensor.scatter_add_", torch.scatter_add, [ri(2, 3), 1, idx, ri(2, 3)])
err("scatter_out_of_range", "scatter", torch.scatter, [r(2, 2), 1, idx, r(2, 3)])
err("scatter_rank", "scatter", torch.scatter, [r(2, 3), 1, torch.tensor([0, 1]), r(2, 3)])
err("scatter_dtype", "scatter", torch.scatter, [r(2, 3), 1, idx, ri(2, 3)],
    match="Expected self.dtype to be equal to src.dtype")

# index_add (graph networks' aggregation), meshgrid, cdist, linspace and
# operator.concat: the second round of hand-written models (TORCH2NN.md).
rows = torch.tensor([0, 3, 0])
case("index_add", "torch.index_add", torch.index_add, [r(4, 3), 0, rows, r(3, 3)])
case("index_add_alpha_dim1", "Tensor.index_add_", torch.index_add, [r(2, 4, 3), 1, rows, r(2, 3, 3)],
     {"alpha": -0.5})
case("index_add_int", "Tensor.index_add", torch.index_add, [ri(4, 2), 0, rows.int(), ri(3, 2)],
     {"alpha": 3})
case("index_add_0d_index", "index_add", torch.index_add, [r(3), 0, torch.tensor(1), torch.tensor(5.0)])
case("index_add_neg_dim", "index_add", torch.index_add, [r(2, 5), -1, rows, r(2, 3)])
err("index_add_2d_index", "index_add", torch.index_add, [r(4, 3), 0, rows.view(3, 1), r(3, 3)])
err("index_add_dtype", "index_add", torch.index_add, [r(4, 3), 0, rows, ri(3, 3)])
err("index_add_count", "index_add", torch.index_add, [r(4, 3), 0, rows, r(2, 3)],
    match="index_add_(): Number of indices (3) should be equal to source.size(dim): (2), for dim: 0")
err("index_add_other_dims", "index_add", torch.index_add, [r(4, 3), 0, rows, r(3, 2)],
    match="index_add_(): source [3, 2] must match self [4, 3] apart from dimension 0")
err("index_add_out_of_range", "index_add", torch.index_add, [r(4, 3), 0, torch.tensor([0, 4]), r(2, 3)])
err("index_add_float_index", "index_add", torch.index_add, [r(4, 3), 0, rows.float(), r(3, 3)],
    match="argument 'index'")
for ix in ("ij", "xy"):
    case(f"meshgrid_{ix}", "torch.meshgrid", torch.meshgrid, [torch.arange(3), torch.arange(4) * 2],
         {"indexing": ix})
    case(f"meshgrid_3_{ix}", "meshgrid", torch.meshgrid, [r(2), r(3), r(4)], {"indexing": ix})
case("meshgrid_list_0d", "meshgrid", lambda ts, **kw: torch.meshgrid(ts, **kw),
     [[torch.tensor(1.5), r(3)]], {"indexing": "ij"})
err("meshgrid_2d", "meshgrid", torch.meshgrid, [r(2, 2), r(3)], {"indexing": "ij"},
    match="torch.meshgrid: Expected 0D or 1D tensor in the tensor list but got: 2-d")
err("meshgrid_dtypes", "meshgrid", torch.meshgrid, [r(2), torch.arange(3)], {"indexing": "ij"},
    match="torch.meshgrid: expects all tensors to have the same dtype")
err("meshgrid_indexing", "meshgrid", torch.meshgrid, [r(2), r(3)], {"indexing": "yx"},
    match='torch.meshgrid: indexing must be one of "xy" or "ij", but received: yx')
case("cdist", "torch.cdist", torch.cdist, [r(2, 3, 4), r(5, 4)], tol=1e-4)
case("cdist_batch_bcast", "cdist", torch.cdist, [r(3, 1, 2, 4), r(2, 5, 4)], tol=1e-4)
for p_ in (0.0, 1.0, 3.0, float("inf")):
    case(f"cdist_p{p_}", "cdist", torch.cdist, [r(4, 3), r(2, 3)], {"p": p_}, tol=1e-4)
err("cdist_columns", "cdist", torch.cdist, [r(2, 4), r(5, 3)])
err("cdist_1d", "cdist", torch.cdist, [r(4), r(5, 4)])
err("cdist_negative_p", "cdist", torch.cdist, [r(2, 4), r(5, 4)], {"p": -1.0})
case("linspace", "torch.linspace", torch.linspace, [0, 1, 5])
case("linspace_float_ends", "linspace", torch.linspace, [1.5, -1.0, 7])
case("linspace_one", "linspace", torch.linspace, [-2, 3, 1])
case("linspace_empty", "linspace", torch.linspace, [0, 1, 0])
err("linspace_negative", "linspace", torch.linspace, [0, 1, -2])
case("concat_tuples", "operator.concat", operator.concat, [(2, 3), (4, 5)])
case("concat_lists", "operator.concat", operator.concat, [[2], [1.5, 4]])
err("concat_mixed", "operator.concat", operator.concat, [(2, 3), [4]])

# cummax/cummin, lerp, addcmul/addcdiv, nan_to_num, diag, diag_embed.
ties = torch.tensor([[1.0, float("nan"), 3.0, float("nan"), 0.5], [5, 4, 4, 6, 1]])
for fn in ("cummax", "cummin"):
    f = getattr(torch, fn)
    case(fn, f"torch.{fn}", f, [ties, 1])
    case(f"{fn}_dim0", f"Tensor.{fn}", f, [r(4, 3), 0])
    case(f"{fn}_int", fn, f, [ri(3, 5), -1])
    case(f"{fn}_bool", fn, f, [torch.tensor([True, False, True, False]), 0])
    err(f"{fn}_bad_dim", fn, f, [r(2, 3), 2])
case("lerp_scalar", "torch.lerp", torch.lerp, [r(2, 3), r(3), 0.25])
case("lerp_tensor_weight", "Tensor.lerp", torch.lerp, [r(2, 3), r(2, 3), torch.rand(2, 1)])
case("lerp_weight_big", "Tensor.lerp_", torch.lerp, [r(4), r(4), 0.75])
err("lerp_dtype", "lerp", torch.lerp, [r(3), r(3).double(), 0.5])
err("lerp_bcast", "lerp", torch.lerp, [r(3), r(4), 0.5])
case("addcmul", "torch.addcmul", torch.addcmul, [r(2, 3), r(3), r(2, 1)], {"value": 0.5})
case("addcmul_int", "Tensor.addcmul", torch.addcmul, [ri(3), ri(3), ri(3)], {"value": 2})
case("addcmul_default", "Tensor.addcmul_", torch.addcmul, [r(3), r(3), r(3)])
case("addcdiv", "torch.addcdiv", torch.addcdiv, [r(2, 3), r(3), r(2, 3) + 3], {"value": -2.0})
err("addcdiv_int", "addcdiv", torch.addcdiv, [ri(3), ri(3), ri(3, lo=1)],
    match="Integer division with addcdiv is no longer supported")
special = torch.tensor([1.0, float("nan"), float("inf"), -float("inf"), -2.0])
case("nan_to_num", "torch.nan_to_num", torch.nan_to_num, [special])
case("nan_to_num_values", "Tensor.nan_to_num", torch.nan_to_num, [special],
     {"nan": 0.5, "posinf": 9.0, "neginf": -9.0})
case("nan_to_num_half", "nan_to_num", torch.nan_to_num, [special.half()])
case("nan_to_num_int", "nan_to_num", torch.nan_to_num, [ri(4)])
for k in (0, 2, -1):
    case(f"diag_vec_{k}", "torch.diag", torch.diag, [r(3), k])
    case(f"diag_mat_{k}", "Tensor.diag", torch.diag, [r(3, 4), k])
case("diag_mat_far", "diag", torch.diag, [r(2, 3), 3])
case("diag_int", "diag", torch.diag, [ri(3)])
err("diag_3d", "diag", torch.diag, [r(2, 2, 2)], match="matrix or a vector expected")
case("diag_embed", "torch.diag_embed", torch.diag_embed, [r(2, 3)])
case("diag_embed_offset", "Tensor.diag_embed", torch.diag_embed, [r(3)], {"offset": 1})
case("diag_embed_dims", "diag_embed", torch.diag_embed, [r(2, 3)],
     {"offset": -1, "dim1": 0, "dim2": 2})
case("diag_embed_dims_swapped", "diag_embed", torch.diag_embed, [r(2, 3)],
     {"offset": 2, "dim1": 2, "dim2": 0})
err("diag_embed_same_dims", "diag_embed", torch.diag_embed, [r(3)], {"dim1": 0, "dim2": 0})

# tril_indices / triu_indices, bucketize, searchsorted.
for args_ in ((3, 4, -1), (3, 3, 1), (3, 3, 5), (2, 3, -5), (4, 2)):
    case(f"tril_indices_{args_}", "torch.tril_indices", torch.tril_indices, list(args_))
    case(f"triu_indices_{args_}", "torch.triu_indices", torch.triu_indices, list(args_))
err("tril_indices_negative", "tril_indices", torch.tril_indices, [-1, 3],
    match="row must be non-negative")
bounds = torch.tensor([-1.0, 0.0, 0.0, 1.0])
vals = torch.tensor([[-2.0, -1.0, 0.0, 0.5, 1.0, 2.0, float("nan")]])
for right in (False, True):
    case(f"bucketize_{right}", "torch.bucketize", torch.bucketize, [vals, bounds], {"right": right})
    case(f"searchsorted_{right}", "torch.searchsorted", torch.searchsorted, [bounds, vals],
         {"right": right})
case("bucketize_int32", "bucketize", torch.bucketize, [ri(2, 3), bounds], {"out_int32": True})
case("bucketize_number", "bucketize", torch.bucketize, [0.25, bounds])
case("searchsorted_rows", "searchsorted", torch.searchsorted,
     [torch.tensor([[0.0, 1, 2], [1, 2, 3]]), torch.tensor([[1.5, 3.0], [0.5, 2.0]])])
case("searchsorted_side", "searchsorted", torch.searchsorted, [bounds, vals], {"side": "right"})
err("bucketize_2d_bounds", "bucketize", torch.bucketize, [vals, torch.ones(2, 2)])
err("searchsorted_rows_mismatch", "searchsorted", torch.searchsorted,
    [torch.ones(2, 3), torch.ones(3, 1)])
err("searchsorted_opposites", "searchsorted", torch.searchsorted, [bounds, vals],
    {"side": "left", "right": True})

theta = torch.tensor([[[0.9, -0.2, 0.1], [0.3, 1.1, -0.2]],
                      [[1.2, 0.1, -0.3], [-0.1, 0.8, 0.25]]])
for align in (False, True):
    case(f"affine_grid_{align}", "torch.nn.functional.affine_grid", F.affine_grid,
         [theta, [2, 3, 4, 5]], {"align_corners": align})
    grid = F.affine_grid(theta, [2, 3, 4, 5], align_corners=align) * 1.3
    for mode in ("bilinear", "nearest"):
        for pad in ("zeros", "border", "reflection"):
            case(f"grid_sample_{mode}_{pad}_{align}", "torch.nn.functional.grid_sample",
                 F.grid_sample, [r(2, 3, 6, 7), grid],
                 {"mode": mode, "padding_mode": pad, "align_corners": align})
err("affine_grid_bad_theta", "affine_grid", F.affine_grid, [r(2, 3, 3), [2, 3, 4, 5]],
    match="Expected a batch of 2D affine matrices of shape Nx2x3")
err("grid_sample_bad_padding", "grid_sample", F.grid_sample,
    [r(1, 1, 2, 2), r(1, 2, 2, 2)], {"padding_mode": "wrap"})

# --- ops inside a Graph -----------------------------------------------------
# Each graph is a Graph descriptor config whose op nodes use the exporter's
# spellings, with the PyTorch function it stands for; sizes flow as ints.
graphs = []


def graph(name, config, fn, inputs):
    out = fn(*inputs)
    graphs.append({"name": name, "config": config,
                   "inputs": [enc(i) for i in inputs], "expect": enc(out)})


def heads(x, mask):
    C = x.size(1)
    y = x.view(x.size(0), C // 4, -1).permute(0, 2, 1)
    s = torch.softmax(y, dim=-1).masked_fill(mask, 0.0)
    m = s.sum(-1, keepdim=True)
    return (m * 2 + 1, s[:, 1:, 0])


graph("heads", {
    "inputs": ["x", "mask"],
    "nodes": [
        {"name": "C", "op": "Tensor.size", "args": ["x", 1]},
        {"name": "n", "op": "Tensor.size", "args": ["x", 0]},
        {"name": "q", "op": "operator.floordiv", "args": ["C", 4]},
        {"name": "y", "op": "Tensor.view", "args": ["x", "n", "q", -1]},
        {"name": "p", "op": "Tensor.permute", "args": ["y", 0, 2, 1]},
        {"name": "s", "op": "torch.softmax", "args": ["p"], "kwargs": {"dim": -1}},
        {"name": "f", "op": "Tensor.masked_fill", "args": ["s", "mask", 0.0]},
        {"name": "m", "op": "Tensor.sum", "args": ["f", -1], "kwargs": {"keepdim": True}},
        {"name": "m2", "op": "operator.mul", "args": ["m", 2]},
        {"name": "m3", "op": "operator.add", "args": ["m2", 1]},
        {"name": "sl", "op": "operator.getitem",
         "args": ["f", {"tuple": [{"slice": [None, None, None]}, {"slice": [1, None, None]}, 0]}]},
    ],
    "output": {"tuple": ["m3", "sl"]},
}, heads, [r(2, 12, 5), ri(20, 3) > 0])


def positions(idx):
    t = idx.size(1)
    pos = torch.arange(0, t, dtype=torch.long).unsqueeze(0)
    return torch.cat([idx, pos.expand(idx.size(0), -1)], dim=0).float().mean(0)


graph("positions", {
    "inputs": ["idx"],
    "nodes": [
        {"name": "t", "op": "Tensor.size", "args": ["idx", 1]},
        {"name": "b", "op": "Tensor.size", "args": ["idx", 0]},
        {"name": "a", "op": "torch.arange", "args": [0, "t"], "kwargs": {"dtype": {"dtype": "int64"}}},
        {"name": "u", "op": "Tensor.unsqueeze", "args": ["a", 0]},
        {"name": "e", "op": "Tensor.expand", "args": ["u", "b", -1]},
        {"name": "c", "op": "torch.cat", "args": [["idx", "e"]], "kwargs": {"dim": 0}},
        {"name": "fl", "op": "Tensor.float", "args": ["c"]},
        {"name": "mn", "op": "Tensor.mean", "args": ["fl", 0]},
    ],
    "output": "mn",
}, positions, [ri(3, 7, lo=0, hi=50)])

with open(sys.argv[1], "w") as f:
    json.dump({"cases": cases, "graphs": graphs}, f)
