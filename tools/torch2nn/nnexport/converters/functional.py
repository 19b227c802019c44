"""torch.nn.functional and the activations' torch./Tensor. forms."""

import torch
import torch.nn.functional as F

from ..registry import op_converter, ops
from .embedding import refuse_max_norm

try:
    from torchvision.ops import stochastic_depth as tv_stochastic_depth
except ImportError:  # torchvision is optional for the Python API
    tv_stochastic_depth = None

ops(F.relu, torch.relu, "relu", name="relu")
ops(torch.relu_, F.relu_, "relu_", name="relu", mutates=0)
ops(F.relu6, name="relu6")
ops(F.gelu, name="gelu")
ops(F.silu, name="silu")
ops(F.mish, name="mish")
ops(F.hardsigmoid, name="hardsigmoid")
ops(F.hardswish, name="hardswish")
ops(F.hardtanh, name="hardtanh")
ops(F.leaky_relu, name="leaky_relu")
ops(F.elu, name="elu")
ops(F.softplus, name="softplus")
ops(F.selu, torch.selu, name="selu")
ops(F.celu, torch.celu, name="celu")
ops(F.glu, name="glu")
ops(F.logsigmoid, name="logsigmoid")
ops(F.prelu, torch.prelu, name="prelu")
ops(F.softsign, name="softsign")
ops(F.tanhshrink, name="tanhshrink")
ops(F.threshold, name="threshold")
ops(F.hardshrink, torch.hardshrink, "hardshrink", name="hardshrink")
ops(F.softshrink, name="softshrink")
ops(F.rrelu, name="rrelu")
ops(torch.sigmoid, F.sigmoid, "sigmoid", name="sigmoid")
ops("sigmoid_", name="sigmoid", mutates=0)
ops(torch.tanh, F.tanh, "tanh", name="tanh")
ops(F.softmax, torch.softmax, "softmax", name="softmax")
ops(F.log_softmax, torch.log_softmax, "log_softmax", name="log_softmax")


@op_converter(F.softmin, name="softmax")
def softmin(call):
    # softmin(x) is softmax(-x), with the same dim rules.
    neg = call.emit(["neg", "torch.neg"], args=[call.args[0]], kwargs={})
    return call.emit(["softmax", "torch.softmax"], args=[neg] + list(call.args[1:]),
                     kwargs=call.kwargs)
ops(F.layer_norm, torch.layer_norm, name="layer_norm")
ops(F.group_norm, name="group_norm")
ops(F.linear, name="linear")
ops(F.conv1d, name="conv1d")
ops(F.conv2d, name="conv2d")
ops(F.conv3d, name="conv3d")


@op_converter(F.embedding, name="embedding")
def embedding(call):
    params = dict(zip(["weight", "padding_idx", "max_norm"], call.args[1:]))
    params.update(call.kwargs)
    try:
        refuse_max_norm(params.get("max_norm"), "F.embedding")
    except ValueError as e:
        call.fail(str(e))
    return call.emit()
ops(F.normalize, name="normalize")
ops(F.pad, name="pad")
ops(F.interpolate, F.upsample, name="interpolate")
ops(F.pixel_shuffle, name="pixel_shuffle")
ops(F.affine_grid, name="affine_grid")
ops(F.grid_sample, name="grid_sample")
ops(F.cosine_similarity, name="cosine_similarity")
ops(F.pairwise_distance, name="pairwise_distance")
ops(F.pixel_unshuffle, name="pixel_unshuffle")
ops(F.channel_shuffle, name="channel_shuffle")
# Losses computed in forward (`return logits, F.cross_entropy(logits, y)`).
ops(F.cross_entropy, name="cross_entropy")
ops(F.mse_loss, name="mse_loss")
ops(F.binary_cross_entropy_with_logits, name="binary_cross_entropy_with_logits")


def _bind(call, params, defaults):
    """The call's arguments after the input, by PyTorch's parameter names."""
    bound = dict(zip(params, call.args[1:]))
    bound.update({k: v for k, v in call.kwargs.items() if k in params})
    extra = [k for k in call.kwargs if k not in params]
    if len(call.args) - 1 > len(params) or extra:
        call.fail(f"unexpected arguments for {call.node.target.__name__}")
    return {k: bound.get(k, d) for k, d in zip(params, defaults)}


def _config_call(call, params, defaults, layer=None):
    # The pooling layer types take their window from the config only
    # (docs/PLUGINS.md): the function's arguments become the config.
    # @layer, the layer type's own name, is the last spelling tried: a
    # higher-ranked provider (oneDNN's MaxPool2d) lists no aliases.
    config = _bind(call, params, defaults)
    for k, v in config.items():
        if _is_ref(v):
            call.fail(f"argument '{k}' of {call.node.target.__name__} is computed in "
                      "forward; nnkit's pooling takes it as a constant")
    config = {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}
    names = call.conv.names + [layer] if layer else None
    return call.emit(names, args=[call.args[0]], kwargs={}, config=config)


def _is_ref(v):
    from ..values import Ref
    if isinstance(v, (list, tuple)):
        return any(_is_ref(x) for x in v)
    return isinstance(v, Ref)


@op_converter(F.adaptive_avg_pool2d, name="adaptive_avg_pool2d")
def adaptive_avg_pool2d(call):
    return _config_call(call, ["output_size"], [None])


@op_converter(F.adaptive_max_pool2d, name="adaptive_max_pool2d")
def adaptive_max_pool2d(call):
    if _bind(call, ["output_size", "return_indices"], [None, False])["return_indices"]:
        call.fail("return_indices=True is not supported for adaptive_max_pool2d")
    return _config_call(call, ["output_size", "return_indices"], [None, False])


@op_converter(F.max_pool2d, torch.max_pool2d, F.max_pool2d_with_indices, name="max_pool2d")
def max_pool2d(call):
    if call.node.target is F.max_pool2d_with_indices:
        call.kwargs["return_indices"] = True  # what F.max_pool2d dispatched on
    config = _bind(call, ["kernel_size", "stride", "padding", "dilation", "ceil_mode",
                          "return_indices"], [None, None, 0, 1, False, False])
    if config["stride"] is None or config["stride"] == []:
        call.kwargs["stride"] = config["kernel_size"]  # PyTorch: stride = kernel_size
    return _config_call(call, ["kernel_size", "stride", "padding", "dilation", "ceil_mode",
                               "return_indices"], [None, None, 0, 1, False, False],
                        layer="MaxPool2d")


@op_converter(F.max_unpool2d, name="max_unpool2d")
def max_unpool2d(call):
    # The window is MaxUnpool2d's config; indices and output_size its arguments.
    params = ["indices", "kernel_size", "stride", "padding", "output_size"]
    bound = _bind(call, params, [None, None, None, 0, None])
    config = {k: bound[k] for k in ("kernel_size", "stride", "padding")}
    if _is_ref(list(config.values())):
        call.fail("the window of max_unpool2d is computed in forward; nnkit "
                  "takes it as a constant")
    config = {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}
    return call.emit(call.conv.names + ["MaxUnpool2d"],
                     args=[call.args[0], bound["indices"], bound["output_size"]],
                     kwargs={}, config=config)


_UNFOLD = (["kernel_size", "dilation", "padding", "stride"], [None, 1, 0, 1])


@op_converter(F.unfold, name="torch.nn.functional.unfold")
def unfold(call):
    # Fold and Unfold take their window from the config, as the pools.
    return _config_call(call, *_UNFOLD, layer="Unfold")


@op_converter(F.fold, name="fold")
def fold(call):
    return _config_call(call, ["output_size"] + _UNFOLD[0], [None] + _UNFOLD[1], layer="Fold")


@op_converter(F.avg_pool2d, name="avg_pool2d")
def avg_pool2d(call):
    config = _bind(call, ["kernel_size", "stride", "padding", "ceil_mode",
                          "count_include_pad", "divisor_override"],
                   [None, None, 0, False, True, None])
    if config["stride"] is None or config["stride"] == []:
        call.kwargs["stride"] = config["kernel_size"]
    return _config_call(call, ["kernel_size", "stride", "padding", "ceil_mode",
                               "count_include_pad", "divisor_override"],
                        [None, None, 0, False, True, None], layer="AvgPool2d")
def _pool1d_stride(call, config):
    if config["stride"] is None or config["stride"] == []:
        call.kwargs["stride"] = config["kernel_size"]  # PyTorch: stride = kernel_size


_MAX_POOL1D = (["kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"],
               [None, None, 0, 1, False, False])
_AVG_POOL1D = (["kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"],
               [None, None, 0, False, True])


@op_converter(F.max_pool1d, torch.max_pool1d, F.max_pool1d_with_indices, name="max_pool1d")
def max_pool1d(call):
    if call.node.target is F.max_pool1d_with_indices:
        call.kwargs["return_indices"] = True
    _pool1d_stride(call, _bind(call, *_MAX_POOL1D))
    return _config_call(call, *_MAX_POOL1D, layer="MaxPool1d")


@op_converter(F.avg_pool1d, name="avg_pool1d")
def avg_pool1d(call):
    _pool1d_stride(call, _bind(call, *_AVG_POOL1D))
    return _config_call(call, *_AVG_POOL1D, layer="AvgPool1d")


@op_converter(F.adaptive_avg_pool1d, name="adaptive_avg_pool1d")
def adaptive_avg_pool1d(call):
    return _config_call(call, ["output_size"], [None], layer="AdaptiveAvgPool1d")


@op_converter(F.adaptive_max_pool1d, name="adaptive_max_pool1d")
def adaptive_max_pool1d(call):
    return _config_call(call, ["output_size", "return_indices"], [None, False],
                        layer="AdaptiveMaxPool1d")


ops(F.multi_head_attention_forward, name="multi_head_attention_forward")


def _training(call, index):
    v = call.kwargs.get("training", call.args[index] if len(call.args) > index else None)
    return v


@op_converter(F.dropout, F.dropout2d, torch.dropout, name="dropout")
def dropout(call):
    # Exported in eval mode: dropout with training=False is the identity.
    training = _training(call, 2)
    p = call.kwargs.get("p", call.args[1] if len(call.args) > 1 else 0.5)
    if training is False or p == 0 or (call.node.target is torch.dropout and training is None):
        return call.args[0]
    return call.emit()


@op_converter(tv_stochastic_depth, name="stochastic_depth")
def stochastic_depth(call):
    if _training(call, 3) is False:
        return call.args[0]
    return call.emit()
