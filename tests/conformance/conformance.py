#!/usr/bin/python3
"""PyTorch conformance of one model, checked through nnkit.

    conformance.py MODEL --checker nn-conform --workdir DIR
                   [--sizes 224,160] [--batches 1,2] [--frames 8] [--single-file]
                   [--nnctl NNCTL]

MODEL is a torchvision classification, segmentation, video or optical
flow model name, fpn:RESNET (torchvision's resnet_fpn_backbone over that ResNet) or
hw:NAME, a model of handwritten.py.  The model is built with seeded random weights (and
randomised BatchNorm statistics), exported with tools/torch2nn, loaded by
nn-conform (nnkit's public API) and compared with PyTorch on:
  1. named_modules paths (and classes), state_dict keys, shapes, dtypes;
  2. nn_module_to_string() against print(model), byte for byte;
  3. forward within 1e-4 * max|reference| on every output leaf, at each
     batch of the first size and at batch 1 of the other sizes;
  4. nnkit's saved state_dict, loaded by PyTorch with strict=True, equal
     to the original tensors.
Inputs go to nn-conform as tensors named CASE.ARG (ARG a forward argument);
it writes each case's output leaves as CASE, CASE.0, CASE.key, ... (as
nn_value_foreach_tensor names them).  The export is redone at another
size only when the exporter fixed shape-dependent control flow.  Exit
status: 0 all passed, 1 a check failed, 77 (meson's skip) when PyTorch is
missing or the nnkit build cannot load descriptor version 2 yet.
"""

import argparse
import difflib
import inspect
import os
import subprocess
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "torch2nn"))
sys.path.insert(0, HERE)

try:
    import torch
    import torchvision
except ImportError as e:
    print(f"SKIP: {e} (install python3-torch and python3-torchvision)")
    sys.exit(77)

import handwritten  # noqa: E402
import nnexport  # noqa: E402
from nnexport import safetensors_io  # noqa: E402

TOLERANCE = 1e-4
DTYPE_NAMES = {torch.float32: "F32", torch.int64: "I64", torch.bool: "BOOL",
               torch.float64: "F64", torch.int32: "I32", torch.uint8: "U8"}


def build_model(name, seed):
    """torchvision @name with seeded random init, randomised BatchNorm
    statistics and no all-zero parameters, in eval mode (also used by
    tests/scenarios).  fpn:BACKBONE is torchvision's resnet_fpn_backbone
    over that ResNet, every layer trainable (so FrozenBatchNorm2d
    throughout), returning an OrderedDict of five feature maps."""
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name.startswith("fpn:"):
            from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
            model = resnet_fpn_backbone(backbone_name=name[4:], weights=None,
                                        trainable_layers=5)
        else:
            builder = torchvision.models.get_model_builder(name)
            extra = {}
            params = inspect.signature(builder).parameters
            if "weights_backbone" in params:
                # Segmentation models would fetch ImageNet backbone weights.
                extra["weights_backbone"] = None
            if "aux_loss" in params:
                # FCN and DeepLabV3 then return {"out", "aux"}: two leaves,
                # two layers out of the IntermediateLayerGetter.
                extra["aux_loss"] = True
            model = builder(weights=None, **extra)
    nnexport.randomize_batchnorm(model, torch.Generator().manual_seed(seed + 1))
    randomize_frozen_batchnorm(model, torch.Generator().manual_seed(seed + 3))
    nnexport.randomize_zero_parameters(model, torch.Generator().manual_seed(seed + 2))
    return model.eval()


def randomize_frozen_batchnorm(model, generator):
    """torchvision's FrozenBatchNorm2d (not a _BatchNorm) holds its four
    tensors as buffers, initialised to the identity: random values, as
    nnexport.randomize_batchnorm gives BatchNorm."""
    from torchvision.ops.misc import FrozenBatchNorm2d
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, FrozenBatchNorm2d):
                n = mod.weight.shape[0]
                mod.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                mod.running_var.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
                mod.weight.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
                mod.bias.copy_(torch.randn(n, generator=generator) * 0.1)


def build_case(name, seed, frames=8):
    """(model, inputs(batch, size)) for torchvision @name, fpn:RESNET or
    hw:NAME.  Every forward argument without a default gets its own random
    image (RAFT's image1 and image2), [batch, 3, size, size], or a clip
    [batch, 3, @frames, size, size] for torchvision's video models."""
    if name.startswith("hw:"):
        model, make, _ = handwritten.build(name[3:], seed)
        return model, make

    model = build_model(name, seed)
    # Under the forward's own parameter names (LRASPP's is "input").
    params = inspect.signature(model.forward).parameters.values()
    args = [p.name for p in params if p.default is inspect.Parameter.empty]
    video = type(model).__module__.startswith("torchvision.models.video")
    lead = (3, frames) if video else (3,)

    def make(batch, size):
        gen = torch.Generator().manual_seed(batch * 1000 + size)
        return {arg: torch.randn(batch, *lead, size, size, generator=gen) for arg in args}
    return model, make


def leaves(value, prefix):
    """(name, tensor) of every tensor leaf, named as nn_value_foreach_tensor."""
    if isinstance(value, torch.Tensor):
        yield prefix, value
    elif isinstance(value, (tuple, list)):
        for i, v in enumerate(value):
            yield from leaves(v, f"{prefix}.{i}")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, f"{prefix}.{k}")


class Report:
    """Counts failed checks.  A check of a kind listed in @xfail (a known
    gap of nnkit's C side, named in meson.build) is expected to fail: its
    failure is reported as XFAIL, and its passing as a failure (XPASS), so
    that the mark is removed once the gap is closed."""

    def __init__(self, model, xfail=()):
        self.model = model
        self.xfail = set(xfail)
        self.failed = []

    def check(self, what, ok, detail="", kind=None):
        if kind in self.xfail:
            label = "XPASS (remove --xfail " + kind + ")" if ok else "XFAIL"
            print(f"{label}: {self.model}: {what}" + (f"\n{detail}" if detail else ""))
            if ok:
                self.failed.append(what)
            return ok
        print(f"{'PASS' if ok else 'FAIL'}: {self.model}: {what}" +
              (f"\n{detail}" if detail and not ok else ""))
        if not ok:
            self.failed.append(what)
        return ok


def first_difference(expected, found, what):
    diff = list(difflib.unified_diff(expected, found, f"pytorch {what}",
                                     f"nnkit {what}", lineterm="", n=1))
    return "\n".join(diff[:30]) + ("\n..." if len(diff) > 30 else "")


def pytorch_listing(model):
    lines = [f"module\t{path}\t{type(m).__name__}" for path, m in model.named_modules()]
    for key, t in model.state_dict().items():
        shape = "[" + ", ".join(str(d) for d in t.shape) + "]"
        lines.append(f"tensor\t{key}\t{DTYPE_NAMES.get(t.dtype, str(t.dtype))}\t{shape}")
    return lines


def export(model, path, inputs, nnctl):
    plugins = nnexport.Plugins.from_nnctl(nnctl) if nnctl else None
    notes = []
    nnexport.export(model, path, inputs=inputs, plugins=plugins, warnings_out=notes)
    return [n for n in notes if "fixed at its value" in n]


def run_checker(checker, model_path, args):
    proc = subprocess.run([checker, model_path] + args, capture_output=True, text=True)
    return proc


def unsupported_version(proc):
    text = proc.stderr.lower()
    return "version" in text and ("unsupported" in text or "must be" in text) or \
        "unknown argument" in text and "--inputs" in text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--checker", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--sizes", default="224,160")
    ap.add_argument("--batches", default="1,2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--frames", type=int, default=8,
                    help="frames of a video model's input clip")
    ap.add_argument("--nnctl", help="check the export against this nnctl's plugins")
    ap.add_argument("--single-file", action="store_true",
                    help="export one .safetensors carrying the descriptor")
    ap.add_argument("--keep", action="store_true", help="keep the weight files")
    ap.add_argument("--xfail", action="append", default=[], choices=["export", "repr"],
                    help="a check known to fail (a gap of nnkit's C side)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    os.makedirs(args.workdir, exist_ok=True)
    torch.set_num_threads(int(os.environ.get("NN_NUM_THREADS", "2")))
    rep = Report(args.model, args.xfail)
    model, make = build_case(args.model, args.seed, args.frames)
    stem = args.model.replace(":", "_")
    base = os.path.join(args.workdir, stem)
    ext = ".safetensors" if args.single_file else ".json"

    # Cases: every batch at the first size, batch 1 at the other sizes.
    cases = [(b, sizes[0]) for b in batches] + [(batches[0], s) for s in sizes[1:]]
    t0 = time.monotonic()
    try:
        fixed = export(model, base + ext, make(1, sizes[0]), args.nnctl)
    except nnexport.ExportError as e:
        rep.check("torch2nn exports the model", False, str(e), kind="export")
        return 0 if "export" in rep.xfail else 1
    if "export" in rep.xfail:
        rep.check("torch2nn exports the model", True, kind="export")
        return 1
    print(f"exported {base + ext} in {time.monotonic() - t0:.1f}s")
    groups = {sizes[0]: base + ext}
    if fixed:
        # Control flow fixed for the export's shapes: one export per size.
        for s in sizes[1:]:
            groups[s] = f"{base}_{s}{ext}"
            export(model, groups[s], make(1, s), args.nnctl)

    paths = []
    for gi, (size, model_path) in enumerate(groups.items()):
        mine = [(b, s) for b, s in cases if s == size or (s not in groups and gi == 0)]
        inputs, refs = {}, {}
        for b, s in mine:
            case = f"b{b}_s{s}"
            x = make(b, s)
            for arg, t in x.items():
                inputs[f"{case}.{arg}"] = t
            with torch.no_grad():
                refs.update(leaves(model(**x), case))
        in_path = f"{base}_{gi}.inputs.safetensors"
        out_path = f"{base}_{gi}.outputs.safetensors"
        sd_path = f"{base}_{gi}.nnkit_state_dict.safetensors"
        safetensors_io.write(in_path, inputs)
        paths += [model_path, nnexport.weights_path_for(model_path), in_path, out_path, sd_path]
        t0 = time.monotonic()
        proc = run_checker(args.checker, model_path, [
            "--repr", base + ".repr.txt", "--listing", base + ".listing.txt",
            "--inputs", in_path, "--output", out_path, "--save-state-dict", sd_path])
        print(f"nn-conform ran in {time.monotonic() - t0:.1f}s")
        if proc.returncode != 0 and unsupported_version(proc):
            print(f"SKIP: {args.checker} cannot run descriptor version 2 yet: "
                  f"{proc.stderr.strip()}")
            return 77
        if not rep.check(f"nnkit loads and runs {os.path.basename(model_path)}",
                         proc.returncode == 0, proc.stderr.strip()):
            return 1
        if gi == 0:
            check_structure(rep, model, base)
            check_state_dict(rep, model, sd_path, args)
        outputs, _ = safetensors_io.read(out_path)
        for name, ref in refs.items():
            got = outputs.get(name)
            if got is None or got.shape != ref.shape:
                rep.check(f"forward {name}: shape", False,
                          f"expected {list(ref.shape)}, found "
                          f"{None if got is None else list(got.shape)}")
                continue
            if ref.dtype.is_floating_point:
                err = (got.double() - ref.double()).abs().max().item()
                scale = max(ref.abs().max().item(), 1e-12)
                rep.check(f"forward {name}: max|diff| {err:.3g} <= {TOLERANCE:g} * {scale:.3g}",
                          err <= TOLERANCE * scale,
                          f"max|diff| {err:.6g}, allowed {TOLERANCE * scale:.6g}")
            else:
                rep.check(f"forward {name}: exactly equal", torch.equal(got, ref))

    if not rep.failed and not args.keep:
        for p in set(paths):
            if p.endswith(".safetensors") and os.path.exists(p):
                os.unlink(p)
    print(f"{args.model}: {len(rep.failed)} check(s) failed" if rep.failed
          else f"{args.model}: all checks passed")
    return 1 if rep.failed else 0


def check_structure(rep, model, base):
    with open(base + ".listing.txt") as f:
        found = f.read().splitlines()
    expected = pytorch_listing(model)
    rep.check("named_modules paths/classes and state_dict keys/shapes/dtypes",
              found == expected, first_difference(expected, found, "listing"))
    with open(base + ".repr.txt") as f:
        text = f.read()
    ref_text = repr(model)
    rep.check("nn_module_to_string() == print(model)", text.rstrip("\n") == ref_text,
              first_difference(ref_text.splitlines(), text.rstrip("\n").splitlines(), "repr"),
              kind="repr")


def check_state_dict(rep, model, sd_path, args):
    saved, _ = safetensors_io.read(sd_path)
    state = model.state_dict()
    rep.check("saved state_dict keys in PyTorch's order", list(saved) == list(state),
              first_difference(list(state), list(saved), "keys"))
    fresh, _ = build_case(args.model, args.seed + 100)
    try:
        nnexport.load_state_dict_file(fresh, sd_path, strict=True)
        loaded, detail = True, ""
    except (RuntimeError, ValueError) as e:
        loaded, detail = False, str(e)
    if rep.check("PyTorch load_state_dict(strict=True) of nnkit's file", loaded, detail):
        bad = [k for k, t in fresh.state_dict().items()
               if t.dtype != state[k].dtype or not torch.equal(t, state[k])]
        rep.check("round-tripped tensors identical (values and dtypes)", not bad,
                  "differ: " + ", ".join(bad[:10]))


if __name__ == "__main__":
    sys.exit(main())
