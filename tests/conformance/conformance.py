#!/usr/bin/python3
"""PyTorch conformance of one torchvision model, checked through nnkit.

    conformance.py MODEL --checker nn-conform --workdir DIR
                   [--sizes 224,160] [--batches 1,4] [--single-file]

The model is built with seeded random weights and randomised BatchNorm
statistics, exported with tools/torch2nn, loaded by nn-conform (nnkit's
public API) and compared with PyTorch on:
  1. named_modules paths (and classes), state_dict keys, shapes, dtypes;
  2. nn_module_to_string() against print(model), byte for byte;
  3. forward outputs within 1e-4 * max|reference|, per batch and size;
  4. nnkit's saved state_dict, loaded by PyTorch with strict=True, equal
     to the original tensors.
Fixtures are generated in DIR; the big weight files are removed on
success.  Exit status: 0 all passed, 1 a check failed, 77 (meson's skip)
when python3-torch or torchvision is missing.
"""

import argparse
import difflib
import os
import subprocess
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "torch2nn"))

try:
    import torch
    import torchvision
except ImportError as e:
    print(f"SKIP: {e} (install python3-torch and python3-torchvision)")
    sys.exit(77)

import nnexport  # noqa: E402
from nnexport import safetensors_io  # noqa: E402

TOLERANCE = 1e-4
DTYPE_NAMES = {torch.float32: "F32", torch.int64: "I64"}


def build_model(name, seed):
    """torchvision @name with seeded random init and randomised BN stats."""
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torchvision.models.get_model(name, weights=None)
    nnexport.randomize_batchnorm(model, torch.Generator().manual_seed(seed + 1))
    return model.eval()


class Report:
    def __init__(self, model):
        self.model = model
        self.failed = []

    def check(self, what, ok, detail=""):
        print(f"{'PASS' if ok else 'FAIL'}: {self.model}: {what}" +
              (f"\n{detail}" if detail and not ok else ""))
        if not ok:
            self.failed.append(what)
        return ok


def first_difference(expected, found, what):
    """A short unified diff of two line lists."""
    diff = list(difflib.unified_diff(expected, found, f"pytorch {what}",
                                     f"nnkit {what}", lineterm="", n=1))
    return "\n".join(diff[:30]) + ("\n..." if len(diff) > 30 else "")


def pytorch_listing(model):
    lines = [f"module\t{path}\t{type(m).__name__}" for path, m in model.named_modules()]
    for key, t in model.state_dict().items():
        shape = "[" + ", ".join(str(d) for d in t.shape) + "]"
        lines.append(f"tensor\t{key}\t{DTYPE_NAMES.get(t.dtype, str(t.dtype))}\t{shape}")
    return lines


def run_checker(checker, model_path, args):
    cmd = [checker, model_path] + args
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return proc, time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--checker", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--sizes", default="224,160")
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--single-file", action="store_true",
                    help="export one .safetensors carrying the descriptor")
    ap.add_argument("--keep", action="store_true", help="keep the weight files")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    os.makedirs(args.workdir, exist_ok=True)
    torch.set_num_threads(int(os.environ.get("NN_NUM_THREADS", "2")))
    rep = Report(args.model)

    model = build_model(args.model, args.seed)
    base = os.path.join(args.workdir, args.model)
    model_path = base + (".safetensors" if args.single_file else ".json")
    t0 = time.monotonic()
    nnexport.export(model, model_path, input_shape=(1, 3, sizes[0], sizes[0]))
    print(f"exported {model_path} in {time.monotonic() - t0:.1f}s")

    gen = torch.Generator().manual_seed(args.seed + 2)
    inputs = {f"b{b}_s{s}": torch.randn(b, 3, s, s, generator=gen)
              for s in sizes for b in batches}
    in_path, out_path = base + ".inputs.safetensors", base + ".outputs.safetensors"
    sd_path = base + ".nnkit_state_dict.safetensors"
    safetensors_io.write(in_path, inputs)

    proc, secs = run_checker(args.checker, model_path, [
        "--repr", base + ".repr.txt", "--listing", base + ".listing.txt",
        "--input", in_path, "--output", out_path, "--save-state-dict", sd_path])
    print(f"nn-conform ran in {secs:.1f}s")
    if not rep.check("nnkit loads and runs the exported model", proc.returncode == 0,
                     proc.stderr.strip()):
        return 1

    # 1. structure
    with open(base + ".listing.txt") as f:
        found = f.read().splitlines()
    expected = pytorch_listing(model)
    rep.check("named_modules paths/classes and state_dict keys/shapes/dtypes",
              found == expected, first_difference(expected, found, "listing"))

    # 2. text
    with open(base + ".repr.txt") as f:
        text = f.read()
    ref_text = repr(model)
    rep.check("nn_module_to_string() == print(model)",
              text.rstrip("\n") == ref_text,
              first_difference(ref_text.splitlines(), text.rstrip("\n").splitlines(), "repr"))

    # 3. numerics
    outputs, _ = safetensors_io.read(out_path)
    with torch.no_grad():
        for name, x in inputs.items():
            ref = model(x)
            got = outputs.get(name)
            if got is None or got.shape != ref.shape:
                rep.check(f"forward {name}: shape", False,
                          f"expected {list(ref.shape)}, found "
                          f"{None if got is None else list(got.shape)}")
                continue
            err = (got - ref).abs().max().item()
            scale = ref.abs().max().item()
            rep.check(f"forward {name} {list(x.shape)}: max|diff| {err:.3g} <= "
                      f"{TOLERANCE:g} * {scale:.3g}", err <= TOLERANCE * scale,
                      f"max|diff| {err:.6g}, allowed {TOLERANCE * scale:.6g}")

    # 4. state_dict round trip into PyTorch, strictly
    saved, _ = safetensors_io.read(sd_path)
    state = model.state_dict()
    rep.check("saved state_dict keys in PyTorch's order", list(saved) == list(state),
              first_difference(list(state), list(saved), "keys"))
    fresh = build_model(args.model, args.seed + 100)
    try:
        nnexport.load_state_dict_file(fresh, sd_path, strict=True)
        loaded = True
        detail = ""
    except (RuntimeError, ValueError) as e:
        loaded, detail = False, str(e)
    if rep.check("PyTorch load_state_dict(strict=True) of nnkit's file", loaded, detail):
        bad = [k for k, t in fresh.state_dict().items()
               if t.dtype != state[k].dtype or not torch.equal(t, state[k])]
        rep.check("round-tripped tensors identical (values and dtypes)", not bad,
                  "differ: " + ", ".join(bad[:10]))

    if not rep.failed and not args.keep:
        for p in (model_path, nnexport.weights_path_for(model_path), in_path, out_path, sd_path):
            if p.endswith(".safetensors") and os.path.exists(p):
                os.unlink(p)
    print(f"{args.model}: {len(rep.failed)} check(s) failed" if rep.failed
          else f"{args.model}: all checks passed")
    return 1 if rep.failed else 0


if __name__ == "__main__":
    sys.exit(main())
