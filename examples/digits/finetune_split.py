#!/usr/bin/python3
"""Write the small digits 0-4 split that scripts/main-job.sh fine-tunes a
new 5-class head on (nnctl finetune, docs/TRAINING.md).

    /usr/bin/python3 examples/digits/finetune_split.py

Uses train.py's fixed split (python3-sklearn's 8x8 digits, no download):
  train5.safetensors  40 training images per class 0-4: "input" [200,1,8,8], "labels" [200]
  val5.safetensors    20 held-out images per class 0-4:  "input" [100,1,8,8], "labels" [100]
Pixels are k/16 for k in 0..16, exact in float16, so the files are stored
as F16 (nnctl reads them as float32) to stay small."""

import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from train import load_split, safetensors_io  # noqa: E402

PER_CLASS = {"train5": 40, "val5": 20}


def pick(xs, ys, per_class):
    """The first @per_class images of each class 0-4, in the split's order."""
    idx = []
    for c in range(5):
        idx += (ys == c).nonzero().flatten()[:per_class].tolist()
    idx.sort()
    return xs[idx].to(torch.float16), ys[idx].clone()


def main():
    train_set, test_set = load_split()
    for name, (xs, ys) in (("train5", train_set), ("val5", test_set)):
        x, y = pick(xs, ys, PER_CLASS[name])
        path = os.path.join(HERE, name + ".safetensors")
        safetensors_io.write(path, {"input": x, "labels": y})
        print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(y)} images)")


if __name__ == "__main__":
    main()
