"""nnexport: PyTorch nn.Module -> nnkit descriptor + safetensors weights.

    import nnexport
    nnexport.export(model, "model.json", input_shape=(1, 3, 224, 224))

See docs/TORCH2NN.md for the mapping rules and the converter registry.
"""

import collections

import torch

from .convert import convert, default_inputs, descriptor_text, export, weights_path_for
from .errors import ExportError
from .plugins import Plugins, find_nnctl
from .registry import converter, op_converter, ops
from . import safetensors_io

__all__ = ["export", "convert", "default_inputs", "descriptor_text", "weights_path_for",
           "ExportError", "Plugins", "find_nnctl", "converter", "op_converter", "ops",
           "safetensors_io", "randomize_batchnorm", "randomize_zero_parameters", "load_state_dict_file"]


def randomize_batchnorm(model, generator):
    """Fills every BatchNorm's running statistics (and affine weight and
    bias) with random values from @generator, so that BN is not the
    identity it is after default init.  Used by tests and benchmarks on
    models without pretrained weights."""
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                n = mod.num_features
                if mod.track_running_stats:
                    mod.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                    mod.running_var.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
                    mod.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=generator)))
                if mod.affine:
                    mod.weight.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
                    mod.bias.copy_(torch.randn(n, generator=generator) * 0.1)
    return model


def randomize_zero_parameters(model, generator):
    """Fills every parameter that is all zeros (ViT's head is initialised
    so) with small random values, so that a forward comparison is not
    vacuous.  Used by tests on models without pretrained weights."""
    with torch.no_grad():
        for p in model.parameters():
            if p.numel() and p.is_floating_point() and not p.any():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.02)
    return model


def load_state_dict_file(model, path, strict=True):
    """Loads a safetensors file (e.g. written by nnkit) into @model with
    PyTorch's own load_state_dict(strict=@strict).  Returns its result."""
    tensors, _ = safetensors_io.read(path)
    state = collections.OrderedDict(tensors)
    # safetensors carries no per-module state_dict versions; take the
    # model's own, as if saved by this PyTorch (torchvision's MNASNet
    # refuses a state_dict without them).
    state._metadata = getattr(model.state_dict(), "_metadata", None)
    return model.load_state_dict(state, strict=strict)
