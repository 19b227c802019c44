"""Exports the models of test_layout.cpp with tools/torch2nn (seeded weights,
randomised BatchNorm statistics) and writes PyTorch's outputs and hook
captures beside them as raw float32 (row-major).

usage: layout_models.py OUTDIR
Exit 77 when torch or torchvision is missing (the test then skips)."""
import array
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "torch2nn"))

try:
    import torch
    import torch.nn as nn
    import torchvision
except ImportError:
    sys.exit(77)

import nnexport  # noqa: E402


def raw(path, t):
    with open(path, "wb") as f:
        f.write(array.array("f", t.detach().contiguous().flatten().tolist()).tobytes())


class Small(nn.Module):
    """oneDNN steps back to back (conv -> conv -> pool -> conv), channel
    counts that blocked layouts pad (12, 5), a value read by two convs and
    by a plain op between them, an unfused BatchNorm after a pool, and a
    tuple result whose second item comes straight from oneDNN."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 12, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(12)
        self.c2 = nn.Conv2d(12, 5, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.c3 = nn.Conv2d(5, 16, 1)
        self.c4 = nn.Conv2d(16, 8, 3, padding=1)
        self.c5 = nn.Conv2d(16, 8, 1)
        self.apool = nn.AvgPool2d(2)
        self.bn3 = nn.BatchNorm2d(16)

    def forward(self, x):
        y = torch.relu(self.bn1(self.c1(x)))
        z = self.c3(self.pool(self.c2(y)))
        s = torch.sigmoid(z)
        a = self.c4(z)
        b = self.c5(z)
        return a + b + s[:, :8], self.bn3(self.apool(z))


def dump(model, name, x, out, fwd_hooks=(), pre_hooks=()):
    model.eval()
    caps = {}
    handles = [model.get_submodule(h).register_forward_hook(
        lambda m, i, o, h=h: caps.__setitem__("out_" + h, o.clone())) for h in fwd_hooks]
    handles += [model.get_submodule(h).register_forward_pre_hook(
        lambda m, i, h=h: caps.__setitem__("in_" + h, i[0].clone())) for h in pre_hooks]
    with torch.no_grad():
        y = model(x)
    for h in handles:
        h.remove()
    nnexport.export(model, os.path.join(out, name + ".json"), inputs={"x": x})
    raw(os.path.join(out, name + "_in.bin"), x)
    ys = y if isinstance(y, tuple) else (y,)
    for i, t in enumerate(ys):
        raw(os.path.join(out, "%s_out%d.bin" % (name, i)), t)
    for h, t in caps.items():
        raw(os.path.join(out, name + "_hook_" + h + ".bin"), t)


def main():
    out = sys.argv[1]
    torch.manual_seed(0)
    small = Small()
    nnexport.randomize_batchnorm(small, torch.Generator().manual_seed(1))
    dump(small, "small", torch.randn(2, 3, 12, 10, generator=torch.Generator().manual_seed(2)),
         out, fwd_hooks=["c3", "pool"], pre_hooks=["c4"])
    torch.manual_seed(3)
    r = torchvision.models.resnet18()
    nnexport.randomize_batchnorm(r, torch.Generator().manual_seed(4))
    dump(r, "resnet18", torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(5)),
         out, fwd_hooks=["layer2.0.conv1", "maxpool"], pre_hooks=["layer2.0.conv2"])
    torch.manual_seed(6)
    mb = torchvision.models.mobilenet_v2()
    nnexport.randomize_batchnorm(mb, torch.Generator().manual_seed(7))
    dump(mb, "mobilenet_v2", torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(8)),
         out, fwd_hooks=["features.3.conv.0.0"])


if __name__ == "__main__":
    main()
