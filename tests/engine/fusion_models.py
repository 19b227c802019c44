"""Exports the models of test_fusion.cpp with tools/torch2nn, seeded
random weights and randomised BatchNorm statistics, and writes PyTorch's
own outputs and hook captures beside them as raw float32 (row-major).

usage: fusion_models.py OUTDIR [resnet18]
Exit 77 when torch is missing (the test then skips)."""
import array
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "torch2nn"))

try:
    import torch
    import torch.nn as nn
except ImportError:
    sys.exit(77)

import nnexport  # noqa: E402


def raw(path, t):
    with open(path, "wb") as f:
        f.write(array.array("f", t.detach().contiguous().flatten().tolist()).tobytes())


class Block(nn.Module):
    """torchvision's BasicBlock: the residual add and the shared ReLU are
    in the traced graph."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return self.relu(out)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU6())
        self.block = Block(8)
        self.mix = nn.Sequential(nn.Conv2d(8, 8, 1), nn.SiLU())
        self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),
                                nn.BatchNorm2d(8), nn.Hardswish())
        self.gate = nn.Sequential(nn.Conv2d(8, 8, 1, bias=False), nn.BatchNorm2d(8),
                                  nn.Sigmoid())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 4), nn.Tanh())

    def forward(self, x):
        x = self.dw(self.mix(self.block(self.stem(x))))
        x = x * self.gate(x)
        return self.head(torch.flatten(self.pool(x), 1))


def dump(model, name, x, out, hooks):
    model.eval()
    caps = {}
    handles = [model.get_submodule(h).register_forward_hook(
        lambda m, i, o, h=h: caps.__setitem__(h, o.clone())) for h in hooks]
    with torch.no_grad():
        y = model(x)
    for h in handles:
        h.remove()
    nnexport.export(model, os.path.join(out, name + ".json"), inputs={"x": x})
    raw(os.path.join(out, name + "_in.bin"), x)
    raw(os.path.join(out, name + "_out.bin"), y)
    for h, t in caps.items():
        raw(os.path.join(out, name + "_hook_" + h + ".bin"), t)


def main():
    out = sys.argv[1]
    torch.manual_seed(0)
    net = Net()
    nnexport.randomize_batchnorm(net, torch.Generator().manual_seed(1))
    dump(net, "small", torch.randn(2, 3, 12, 10, generator=torch.Generator().manual_seed(2)),
         out, ["block.bn1", "stem.2"])
    if "resnet18" in sys.argv[2:]:
        import torchvision
        torch.manual_seed(3)
        r = torchvision.models.resnet18()
        nnexport.randomize_batchnorm(r, torch.Generator().manual_seed(4))
        dump(r, "resnet18", torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(5)),
             out, ["layer1.0.bn2"])


if __name__ == "__main__":
    main()
