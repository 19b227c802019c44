"""Arithmetic, comparisons and logic, on tensors and on ints alike (integer
arithmetic on sizes, `C // self.groups`, becomes these ops on int values).
In-place forms become the out-of-place op: the Graph is dataflow, and later
reads of the mutated value read the op's result (graph.py)."""

import math
import operator

import torch

from ..registry import op_converter, ops




@op_converter(torch.add, operator.add, "add", "__add__", "__radd__", name="add")
def add(call):
    # `x.size()[:-1] + (heads, dim)`: Python's + on two sequences is
    # concatenation, operator.concat.
    if isinstance(call.arg_concrete(0), (tuple, list)):
        return call.emit(["concat", "operator.concat"], args=list(call.args[:2]), kwargs={})
    return call.emit()
ops(torch.sub, torch.subtract, operator.sub, "sub", "subtract", "__sub__")
# x.__rsub__(y) is y - x: nnkit's rsub swaps its operands the same way.
ops(torch.rsub, "__rsub__", name="rsub")
ops(torch.mul, torch.multiply, operator.mul, "mul", "multiply", "__mul__", "__rmul__")
ops(torch.div, torch.divide, torch.true_divide, operator.truediv, "div", "divide",
    "true_divide", "__truediv__")
ops(operator.floordiv, torch.floor_divide, "floor_divide", "__floordiv__",
    name="floordiv")
# remainder takes the divisor's sign (Python's %), fmod the dividend's (C's).
ops(operator.mod, torch.remainder, "remainder", "__mod__", name="mod")
ops(torch.fmod, "fmod", name="fmod")
ops(operator.pow, torch.pow, "pow", "__pow__", name="pow")
ops(operator.matmul, torch.matmul, "matmul", "__matmul__", name="matmul")
ops(operator.imatmul, name="matmul", mutates=0)
ops(torch.mm, "mm")


@op_converter(torch.outer, torch.ger, "outer", "ger", name="mul")
def outer(call):
    # outer(a, b) is a[:, None] * b[None, :].
    a = call.emit(["unsqueeze", "torch.unsqueeze"], args=[call.args[0], 1], kwargs={})
    b = call.emit(["unsqueeze", "torch.unsqueeze"], args=[call.args[1], 0], kwargs={})
    return call.emit(["mul", "torch.mul"], args=[a, b], kwargs={})
ops(torch.bmm, "bmm")
ops(torch.baddbmm, "baddbmm")
ops(torch.addmm, "addmm")
ops(torch.einsum, name="einsum")

ops(operator.eq, torch.eq, "eq", "__eq__", name="eq")
ops(operator.ne, torch.ne, torch.not_equal, "ne", "not_equal", "__ne__", name="ne")
ops(operator.lt, torch.lt, torch.less, "lt", "less", "__lt__", name="lt")
ops(operator.le, torch.le, torch.less_equal, "le", "less_equal", "__le__", name="le")
ops(operator.gt, torch.gt, torch.greater, "gt", "greater", "__gt__", name="gt")
ops(operator.ge, torch.ge, torch.greater_equal, "ge", "greater_equal", "__ge__",
    name="ge")
ops(operator.and_, torch.bitwise_and, "bitwise_and", "__and__", name="and_")
ops(operator.or_, torch.bitwise_or, "bitwise_or", "__or__", name="or_")
ops(operator.xor, torch.bitwise_xor, "bitwise_xor", "__xor__", name="xor")
ops(operator.invert, operator.inv, torch.bitwise_not, "bitwise_not", "__invert__",
    name="invert")
# The logical forms take any dtype (nonzero is true) and return bool.
ops(torch.logical_and, "logical_and", name="logical_and")
ops(torch.logical_or, "logical_or", name="logical_or")
ops(torch.logical_xor, "logical_xor", name="logical_xor")
ops(torch.logical_not, "logical_not", name="logical_not")

# In-place forms: the value they mutate is the first argument.
ops(operator.iadd, "add_", "__iadd__", name="add", mutates=0)
ops(operator.isub, "sub_", "subtract_", "__isub__", name="sub", mutates=0)
ops(operator.imul, "mul_", "multiply_", "__imul__", name="mul", mutates=0)
ops(operator.itruediv, "div_", "divide_", "true_divide_", "__itruediv__", name="div",
    mutates=0)
ops(operator.ifloordiv, "floor_divide_", "__ifloordiv__", name="floordiv", mutates=0)
ops(operator.imod, "remainder_", "__imod__", name="mod", mutates=0)
ops("fmod_", name="fmod", mutates=0)
ops(operator.ipow, "pow_", "__ipow__", name="pow", mutates=0)
ops(operator.iand, "bitwise_and_", "__iand__", name="and_", mutates=0)
ops(operator.ior, "bitwise_or_", "__ior__", name="or_", mutates=0)
ops(operator.ixor, "bitwise_xor_", "__ixor__", name="xor", mutates=0)
ops("logical_and_", name="logical_and", mutates=0)
ops("logical_or_", name="logical_or", mutates=0)
ops("logical_xor_", name="logical_xor", mutates=0)
ops("logical_not_", name="logical_not", mutates=0)

# Elementwise math; the in-place forms keep a float input's dtype, so the
# out-of-place op is their value.
ops(torch.abs, torch.absolute, operator.abs, "abs", "absolute", name="abs")
ops(torch.neg, torch.negative, operator.neg, "neg", "negative", "__neg__", name="neg")
ops(torch.exp, "exp")
ops(torch.log, "log")
ops(torch.sqrt, "sqrt")
ops(torch.rsqrt, "rsqrt")
ops(torch.sin, "sin")
ops(torch.cos, "cos")
ops(torch.erf, "erf")
ops(torch.reciprocal, "reciprocal")
ops(torch.sign, "sign")
ops(torch.trunc, torch.fix, "trunc", "fix", name="trunc")
for _name in ("abs", "neg", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "erf", "reciprocal",
              "sign", "trunc", "floor", "ceil", "round"):
    ops(_name + "_", name=_name, mutates=0)
ops(torch.log1p, "log1p")
ops(torch.expm1, "expm1")
ops(torch.log2, "log2")
ops(torch.log10, "log10")
ops(torch.tan, "tan")
ops(torch.atan, torch.arctan, "atan", "arctan", name="atan")
ops(torch.asin, torch.arcsin, "asin", "arcsin", name="asin")
ops(torch.acos, torch.arccos, "acos", "arccos", name="acos")
ops(torch.sinh, "sinh")
ops(torch.cosh, "cosh")
ops(torch.square, "square")
for _name in ("log1p", "expm1", "log2", "log10", "tan", "atan", "asin", "acos", "sinh", "cosh",
              "square"):
    ops(_name + "_", name=_name, mutates=0)
ops(torch.isnan, "isnan")
ops(torch.isinf, "isinf")
ops(torch.isfinite, "isfinite")
ops(torch.clamp, torch.clip, "clamp", "clip", name="clamp")
ops("clamp_", "clip_", name="clamp", mutates=0)


def _one_bound(call, key):
    # x.clamp_min(eps) is clamp(x, min=eps); the bound may be a tensor.
    bound = call.kwargs.get(key, call.args[1] if len(call.args) > 1 else None)
    return call.emit("clamp", args=[call.args[0]], kwargs={key: bound})


@op_converter(torch.clamp_min, "clamp_min", name="clamp")
def clamp_min(call):
    return _one_bound(call, "min")


@op_converter("clamp_min_", name="clamp", mutates=0)
def clamp_min_(call):
    return _one_bound(call, "min")


@op_converter(torch.clamp_max, "clamp_max", name="clamp")
def clamp_max(call):
    return _one_bound(call, "max")


@op_converter("clamp_max_", name="clamp", mutates=0)
def clamp_max_(call):
    return _one_bound(call, "max")
ops(torch.where, name="where")
ops(torch.maximum, "maximum")
ops(torch.minimum, "minimum")
ops(torch.floor, "floor")
ops(torch.ceil, "ceil")
ops(torch.round, "round")

# Reductions.
ops(torch.mean, "mean")
ops(torch.sum, "sum")
ops(torch.amax, "amax")
ops(torch.amin, "amin")
ops(torch.max, "max")
ops(torch.min, "min")
ops(torch.argmax, "argmax")
ops(torch.argmin, "argmin")
ops(torch.var, "var")
ops(torch.std, "std")
ops(torch.var_mean, name="var_mean")
ops(torch.std_mean, name="std_mean")
ops(torch.logsumexp, "logsumexp")
ops(torch.norm, "norm")
ops(torch.cumsum, "cumsum")
ops("cumsum_", name="cumsum", mutates=0)
ops(torch.cumprod, "cumprod")
ops("cumprod_", name="cumprod", mutates=0)
ops(torch.cummax, "cummax")
ops(torch.cummin, "cummin")
ops(torch.lerp, "lerp")
ops("lerp_", name="lerp", mutates=0)
ops(torch.addcmul, "addcmul")
ops("addcmul_", name="addcmul", mutates=0)
ops(torch.addcdiv, "addcdiv")
ops("addcdiv_", name="addcdiv", mutates=0)
ops(torch.nan_to_num, "nan_to_num")
ops("nan_to_num_", name="nan_to_num", mutates=0)
ops(torch.sort, "sort")
ops(torch.argsort, "argsort")
ops(torch.prod, "prod")
ops(torch.all, "all")
ops(torch.any, "any")
ops(torch.topk, "topk")


@op_converter(math.sqrt, name="pow")
def math_sqrt(call):
    # math.sqrt(k.size(-1)) on a traced size: x ** 0.5 on a Python number.
    return call.emit(["pow", "operator.pow"], args=[call.args[0], 0.5], kwargs={})


@op_converter("where", name="where")
def tensor_where(call):
    # x.where(cond, y) is torch.where(cond, x, y): the condition goes first.
    return call.emit("where", args=[call.args[1], call.args[0]] + list(call.args[2:]),
                     kwargs=call.kwargs)
