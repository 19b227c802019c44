#!/usr/bin/python3
"""torch2nn: export a PyTorch model to an nnkit model.

    torch2nn.py SOURCE -o OUT [--input-shape 1,3,224,224] [--seed N]

SOURCE is a torchvision model name (resnet18, mobilenet_v2, ...) or a file
written by torch.save(model).  OUT is a descriptor (model.json, with
model.safetensors written beside it) or a single model.safetensors carrying
the descriptor in its metadata.  Errors are one line on stderr, exit 1.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import torch
except ImportError:
    sys.stderr.write("torch2nn: python3-torch is not installed for "
                     f"{sys.executable} (try /usr/bin/python3)\n")
    sys.exit(1)

import nnexport  # noqa: E402


def parse_shape(text):
    try:
        dims = [int(d) for d in text.strip("[]() ").split(",") if d.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad shape '{text}': expected e.g. 1,3,224,224")
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"bad shape '{text}': extents must be >= 1")
    return dims


def load_source(source, weights=None, seed=0):
    """A torch.save(model) file, or a torchvision model built with seeded
    random init (or @weights, a torchvision weights name, if available)."""
    if os.path.exists(source):
        try:
            obj = torch.load(source, map_location="cpu")
        except Exception as e:
            raise nnexport.ExportError(f"{source}: cannot load with torch.load: {e}") from e
        if isinstance(obj, dict):
            raise nnexport.ExportError(
                f"{source}: holds a state_dict, not a model; build the model in Python "
                "and call nnexport.export(model, OUT)")
        if not isinstance(obj, torch.nn.Module):
            raise nnexport.ExportError(f"{source}: holds a {type(obj).__name__}, not an nn.Module")
        return obj
    try:
        import torchvision
    except ImportError:
        raise nnexport.ExportError(f"{source}: no such file, and python3-torchvision "
                                   "is not installed to build it by name")
    names = torchvision.models.list_models() if hasattr(torchvision.models, "list_models") else []
    if source not in names:
        raise nnexport.ExportError(f"{source}: no such file or torchvision model name")
    torch.manual_seed(seed)
    return torchvision.models.get_model(source, weights=weights)


def load_weights_file(model, path):
    """Loads a state_dict file (torch.save, weights_only) into @model: the
    state_dict itself or the one dict of tensors in a checkpoint dict,
    with a DataParallel "module." prefix stripped."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise nnexport.ExportError(f"{path}: not a state_dict file torch.load "
                                   f"accepts with weights_only=True: {e}") from e
    if not isinstance(obj, dict):
        raise nnexport.ExportError(f"{path}: holds a {type(obj).__name__}, not a state_dict")
    if not all(isinstance(v, torch.Tensor) for v in obj.values()):
        sds = [k for k, v in obj.items() if isinstance(v, dict) and v
               and all(isinstance(t, torch.Tensor) for t in v.values())]
        if len(sds) != 1:
            raise nnexport.ExportError(
                f"{path}: a checkpoint dict whose entries {sorted(map(str, obj))} "
                f"hold {len(sds)} state_dicts; expected exactly one")
        obj = obj[sds[0]]
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    try:
        model.load_state_dict(obj)
    except RuntimeError as e:
        raise nnexport.ExportError(f"{path}: {e}") from e


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="torch2nn", description="Export a PyTorch model to nnkit.",
        epilog="examples:\n  torch2nn.py resnet18 -o resnet18.json\n"
               "  torch2nn.py model.pt -o model.safetensors --input-shape 1,1,28,28",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", metavar="SOURCE",
                    help="torchvision model name or torch.save(model) file")
    ap.add_argument("-o", "--output", required=True, metavar="OUT",
                    help="model.json (+ model.safetensors) or model.safetensors")
    ap.add_argument("--input-shape", type=parse_shape, default=[1, 3, 224, 224],
                    metavar="N,C,H,W", help="input shape recorded in the model "
                    "and used to trace it (default 1,3,224,224)")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed for random init of torchvision models (default 0)")
    ap.add_argument("--weights", default=None,
                    help="torchvision weights name (e.g. DEFAULT; needs them cached), "
                    "or a state_dict file (.pth/.pt) to load into the architecture")
    ap.add_argument("--randomize-bn", action="store_true",
                    help="fill BatchNorm statistics with random values (tests)")
    args = ap.parse_args(argv)
    try:
        weights_file = args.weights if args.weights and os.path.isfile(args.weights) else None
        model = load_source(args.source, None if weights_file else args.weights, args.seed)
        if weights_file:
            load_weights_file(model, weights_file)
        if args.randomize_bn:
            nnexport.randomize_batchnorm(model, torch.Generator().manual_seed(args.seed))
        nnexport.export(model, args.output, tuple(args.input_shape))
    except (nnexport.ExportError, nnexport.safetensors_io.SafetensorsError) as e:
        sys.stderr.write(f"torch2nn: {e}\n")
        return 1
    except OSError as e:
        sys.stderr.write(f"torch2nn: {e.filename or args.output}: {e.strerror}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
