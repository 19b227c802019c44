#!/usr/bin/python3
"""torch2nn: export a PyTorch model to an nnkit model (descriptor version 2).

    torch2nn.py SOURCE -o OUT [--example-input IN.safetensors | --input-shape 1,3,224,224]

SOURCE is a torchvision model name (resnet18, vit_b_16, ...) or a file
written by torch.save(model).  OUT is a descriptor (model.json, with
model.safetensors written beside it) or a single model.safetensors carrying
the descriptor in its metadata.  Every failure is one line on stderr,
"torch2nn: error: ...", exit status 1; nothing is written then.
"""

import argparse
import inspect
import io
import os
import sys
import warnings
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def fail(msg):
    sys.stderr.write(f"torch2nn: error: {msg}\n")
    return 1


try:
    import torch
except ImportError:
    sys.exit(fail(f"python3-torch is not installed for {sys.executable} "
                  "(try /usr/bin/python3)"))

import nnexport  # noqa: E402
from nnexport import safetensors_io  # noqa: E402


def parse_shape(text):
    try:
        dims = [int(d) for d in text.strip("[]() ").split(",") if d.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad shape '{text}': expected e.g. 1,3,224,224")
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"bad shape '{text}': extents must be >= 1")
    return dims


def _is_torchscript(path):
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load_file(path):
    """The nn.Module a torch.save(model) file holds."""
    if _is_torchscript(path):
        raise nnexport.ExportError(f"{path}: a TorchScript archive; torch2nn needs the "
                                   "Python model (torch.save(model), or "
                                   "nnexport.export(model, OUT) from Python)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu")
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise nnexport.ExportError(f"{path}: not a file torch.load can read "
                                   f"({type(e).__name__}: {first})") from None
    if isinstance(obj, torch.jit.ScriptModule):
        raise nnexport.ExportError(f"{path}: a TorchScript module; torch2nn needs the "
                                   "Python model")
    if isinstance(obj, dict):
        raise nnexport.ExportError(
            f"{path}: holds a state_dict, not a model; build the model in Python "
            "and call nnexport.export(model, OUT)")
    if not isinstance(obj, torch.nn.Module):
        raise nnexport.ExportError(f"{path}: holds a {type(obj).__name__}, not an nn.Module")
    return obj


def load_source(source, weights=None, seed=0):
    """A torch.save(model) file, or a torchvision model built with seeded
    random init (or @weights, a torchvision weights name, if cached)."""
    if os.path.exists(source):
        if os.path.isdir(source):
            raise nnexport.ExportError(f"{source}: is a directory")
        return load_file(source)
    try:
        import torchvision
    except ImportError:
        raise nnexport.ExportError(f"{source}: no such file, and python3-torchvision "
                                   "is not installed to build it by name") from None
    if source not in torchvision.models.list_models():
        raise nnexport.ExportError(f"{source}: no such file or torchvision model name")
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            builder = torchvision.models.get_model_builder(source)
            extra = {}
            if "weights_backbone" in inspect.signature(builder).parameters:
                # Segmentation and detection models would fetch ImageNet
                # backbone weights by default; random init needs none.
                extra["weights_backbone"] = None
            return builder(weights=weights, **extra)
        except Exception as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise nnexport.ExportError(f"{source}: torchvision cannot build it: {first}") from None


def read_example_inputs(model, path):
    """One tensor per forward argument, by name, in the forward's order."""
    tensors, _ = safetensors_io.read(path)
    params = [p for p in inspect.signature(model.forward).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    names = [p.name for p in params]
    unknown = [k for k in tensors if k not in names]
    if unknown:
        raise nnexport.ExportError(f"{path}: tensor '{unknown[0]}' is not an argument of "
                                   f"{type(model).__name__}.forward ({', '.join(names)})")
    missing = [p.name for p in params if p.default is p.empty and p.name not in tensors]
    if missing:
        raise nnexport.ExportError(f"{path}: no tensor for forward argument '{missing[0]}'")
    return {n: tensors[n] for n in names if n in tensors}


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
               "  torch2nn.py model.pt -o model.safetensors --example-input in.safetensors",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", metavar="SOURCE",
                    help="torchvision model name or torch.save(model) file")
    ap.add_argument("-o", "--output", required=True, metavar="OUT",
                    help="model.json (+ model.safetensors) or model.safetensors")
    ap.add_argument("--example-input", metavar="IN.safetensors",
                    help="one tensor per forward argument, by argument name")
    ap.add_argument("--input-shape", type=parse_shape, default=None, metavar="N,C,H,W",
                    help="shape of a random float32 example input for a one-argument "
                    "forward (default 1,3,224,224)")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed for random init of torchvision models (default 0)")
    ap.add_argument("--weights", default=None,
                    help="torchvision weights name (e.g. DEFAULT; needs them cached), "
                    "or a state_dict file (.pth/.pt) to load into the architecture")
    ap.add_argument("--randomize-bn", action="store_true",
                    help="fill BatchNorm statistics with random values (tests)")
    ap.add_argument("--nnctl", metavar="PATH",
                    help="nnctl whose plugins the export is checked against "
                    "(default: $NNCTL, the build tree, PATH)")
    ap.add_argument("--no-check", action="store_true",
                    help="do not check types and ops against nnkit's plugins")
    args = ap.parse_args(argv)
    if args.example_input and args.input_shape:
        return fail("give --example-input or --input-shape, not both")
    try:
        weights_file = args.weights if args.weights and os.path.isfile(args.weights) else None
        model = load_source(args.source, None if weights_file else args.weights, args.seed)
        if weights_file:
            load_weights_file(model, weights_file)
        if args.randomize_bn:
            nnexport.randomize_batchnorm(model, torch.Generator().manual_seed(args.seed))
        inputs = read_example_inputs(model, args.example_input) if args.example_input else None
        plugins = nnexport.Plugins.unchecked()
        nnctl = None if args.no_check else nnexport.find_nnctl(args.nnctl)
        if nnctl:
            plugins = nnexport.Plugins.from_nnctl(nnctl)
        notes = []
        nnexport.export(model, args.output, args.input_shape, inputs, plugins, notes)
        for note in notes:
            sys.stderr.write(f"torch2nn: warning: {note}\n")
    except nnexport.ExportError as e:
        # The model itself is named as the user named it.
        return fail(e.line(root=os.path.basename(args.source.rstrip("/")) or args.source))
    except safetensors_io.SafetensorsError as e:
        return fail(str(e))
    except OSError as e:
        return fail(f"{e.filename or args.output}: {e.strerror}")
    except KeyboardInterrupt:
        return fail("interrupted")
    except Exception as e:  # a bug of ours: still one line, never a traceback
        first = str(e).splitlines()[0] if str(e) else ""
        return fail(f"internal error: {type(e).__name__}: {first}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
