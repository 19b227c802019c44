#!/usr/bin/python3
"""Train nnkit's bundled digits CNN and export it; or check nnctl against PyTorch.

    /usr/bin/python3 examples/digits/train.py            # retrain, write the files
    /usr/bin/python3 examples/digits/train.py --check    # nnctl run == PyTorch?

Needs Debian's python3-torch and python3-sklearn (the 8x8 digits dataset ships
inside sklearn, so no download). Training is deterministic: fixed seeds, a fixed
split and one thread, so a rerun gives the same weights on the same machine.

Writes beside this script:
  digits.json         nnkit descriptor (tools/torch2nn exporter)
  digits.safetensors  weights under PyTorch's state_dict keys
  samples.safetensors held-out test images: "input" F32 [N,1,8,8], "labels" I64 [N]
"""

import argparse
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from torch import nn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools", "torch2nn"))

import nnexport  # noqa: E402  (tools/torch2nn: the exporter and its safetensors I/O)
from nnexport import safetensors_io  # noqa: E402

SEED = 0
EPOCHS = 40
BATCH = 64
N_SAMPLES = 32
INPUT_SHAPE = (1, 1, 8, 8)
# sklearn's digits are integer intensities 0..16; the model sees pixel / 16.
PIXEL_MAX = 16.0
# The module whose output --check captures with a hook on both sides.
HOOKED = "features.6"


class DigitsNet(nn.Module):
    """Two conv blocks and a linear head: small, and every layer nnkit knows."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(32, num_classes))

    def forward(self, x):
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def load_split():
    """Normalised images and labels, split 75/25 stratified with a fixed seed."""
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / PIXEL_MAX
    y = torch.tensor(digits.target, dtype=torch.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(y)), test_size=0.25, random_state=SEED, stratify=digits.target)
    return (x[train_idx], y[train_idx]), (x[test_idx], y[test_idx])


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def train(train_set, test_set):
    torch.manual_seed(SEED)
    model = DigitsNet()
    xs, ys = train_set
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, EPOCHS)
    gen = torch.Generator().manual_seed(SEED)
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(ys), generator=gen)
        # Full batches only: a 3-image tail batch makes BatchNorm's statistics noisy.
        for start in range(0, len(ys) - BATCH + 1, BATCH):
            batch = perm[start:start + BATCH]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(xs[batch]), ys[batch])
            loss.backward()
            opt.step()
        sched.step()
        if (epoch + 1) % 10 == 0:
            print(f"epoch {epoch + 1:2d}: loss {loss.item():.4f}, "
                  f"test accuracy {accuracy(model, *test_set):.4f}")
    model.eval()
    return model


def write_all(out_dir):
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    train_set, test_set = load_split()
    model = train(train_set, test_set)
    acc = accuracy(model, *test_set)
    print(f"test accuracy: {acc:.4f} ({len(test_set[1])} held-out images)")

    nnexport.export(model, os.path.join(out_dir, "digits.json"), input_shape=INPUT_SHAPE)

    xs, ys = test_set
    xs, ys = xs[:N_SAMPLES].clone(), ys[:N_SAMPLES].clone()
    safetensors_io.write(os.path.join(out_dir, "samples.safetensors"),
                         {"input": xs, "labels": ys})
    sample_acc = accuracy(model, xs, ys)
    print(f"sample accuracy: {sample_acc:.4f} ({N_SAMPLES} images in samples.safetensors)")
    for name in ("digits.json", "digits.safetensors", "samples.safetensors"):
        print(f"wrote {os.path.join(out_dir, name)} "
              f"({os.path.getsize(os.path.join(out_dir, name))} bytes)")


def find_nnctl():
    if os.environ.get("NNCTL"):
        return os.environ["NNCTL"]
    found = glob.glob(os.path.join(ROOT, "build*", "tools", "nnctl", "nnctl"))
    if not found:
        sys.exit("train.py: no nnctl found under build*/tools/nnctl/; "
                 "build nnkit or set NNCTL=/path/to/nnctl")
    return max(found, key=os.path.getmtime)


def run_nnctl(nnctl, *args):
    cmd = [nnctl, "--threads", "1", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        sys.exit(f"train.py: cannot run {nnctl}: {e.strerror}")
    if proc.returncode != 0:
        sys.exit(f"train.py: {' '.join(cmd)} failed ({proc.returncode}): "
                 f"{proc.stderr.strip()}")
    return proc.stdout


def compare(what, got, ref):
    """Within 1e-4 x max|ref|, the conformance tolerance of tools/torch2nn."""
    if got is None or tuple(got.shape) != tuple(ref.shape):
        print(f"{what}: nnctl gave {None if got is None else list(got.shape)}, "
              f"PyTorch {list(ref.shape)}")
        return False
    tol = 1e-4 * ref.abs().max().item()
    diff = (got - ref).abs().max().item()
    print(f"{what}: max |nnctl - torch| = {diff:.3g} (tolerance {tol:.3g})")
    return diff <= tol


def check(out_dir, nnctl):
    """Show and run the committed model in nnctl and in PyTorch; compare."""
    descriptor = os.path.join(out_dir, "digits.json")
    shown = run_nnctl(nnctl, "show", descriptor)
    if shown != str(DigitsNet().eval()) + "\n":
        sys.exit(f"train.py: `nnctl show` differs from print(model):\n{shown}")
    print("nnctl show == print(model)")

    model = DigitsNet()
    nnexport.load_state_dict_file(model, os.path.join(out_dir, "digits.safetensors"),
                                  strict=True)
    model.eval()
    samples, _ = safetensors_io.read(os.path.join(out_dir, "samples.safetensors"))
    captured = {}
    model.get_submodule(HOOKED).register_forward_hook(
        lambda mod, args, out: captured.setdefault(HOOKED, out.clone()))
    with torch.no_grad():
        ref = model(samples["input"])

    with tempfile.TemporaryDirectory() as tmp:
        out_path = os.path.join(tmp, "logits.safetensors")
        acts_path = os.path.join(tmp, "acts.safetensors")
        run_nnctl(nnctl, "run", descriptor,
                  "--input", os.path.join(out_dir, "samples.safetensors") + ":input",
                  "--output", out_path, "--hook", HOOKED, "--save-activations", acts_path)
        outputs, _ = safetensors_io.read(out_path)
        acts, _ = safetensors_io.read(acts_path)
    got = outputs.get("output")  # `nnctl run --output` names its tensor "output"
    close = [compare("output", got, ref),
             compare(f"activation {HOOKED}", acts.get(HOOKED), captured[HOOKED])]
    same_pred = close[0] and torch.equal(got.argmax(1), ref.argmax(1))
    if close[0]:
        print(f"predictions identical: {same_pred}; nnctl accuracy on samples: "
              f"{(got.argmax(1) == samples['labels']).float().mean().item():.4f}")
    if not same_pred or not all(close):
        sys.exit("train.py: nnctl and PyTorch disagree")
    print("check passed")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare `nnctl run` with PyTorch on the committed files")
    parser.add_argument("--nnctl", help="nnctl binary for --check "
                        "(default: $NNCTL, else the newest build*/tools/nnctl/nnctl)")
    parser.add_argument("--out-dir", default=HERE,
                        help="where the model files live (default: beside this script)")
    args = parser.parse_args()
    if args.check:
        check(args.out_dir, args.nnctl or find_nnctl())
    else:
        write_all(args.out_dir)


if __name__ == "__main__":
    main()
