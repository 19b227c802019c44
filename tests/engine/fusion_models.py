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
    import torch.nn.functional as F
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


def conv_bn(c_in, c_out, stride=1):
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out)


class Residuals(nn.Module):
    """The residual adds fusion must and must not take (test_fusion.cpp's
    ResidualNet): each block's comment says what the plan may fuse."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(*conv_bn(3, 8), nn.ReLU())
        self.b1 = Block(8)                          # out += x; relu: fused
        self.b2_conv, self.b2_bn = conv_bn(8, 8)    # x + out, F.relu: fused
        self.b3_conv, self.b3_bn = conv_bn(8, 16, 2)   # downsample branch
        self.b3_down = nn.Sequential(nn.Conv2d(8, 16, 1, stride=2, bias=False),
                                     nn.BatchNorm2d(16))
        self.b3_relu = nn.ReLU()
        self.b4_conv, self.b4_bn = conv_bn(16, 16)  # add, no activation
        self.b5_conv, self.b5_bn = conv_bn(16, 16)  # add, then SiLU
        self.b5_act = nn.SiLU()
        self.b6_conv, self.b6_bn = conv_bn(16, 16)  # broadcasting add: not fused
        self.register_buffer("b6_shift", torch.randn(16, 1, 1, generator=torch.Generator().manual_seed(9)))
        self.b6_relu = nn.ReLU()
        self.b7_conv, self.b7_bn = conv_bn(16, 16)  # the sum read twice
        self.b7_relu = nn.ReLU()
        self.b8_conv, self.b8_bn = conv_bn(16, 16)  # bn's result read twice
        self.b8_relu = nn.ReLU()

    def forward(self, x):
        x = self.b1(self.stem(x))
        x = F.relu(x + self.b2_bn(self.b2_conv(x)))
        out = self.b3_bn(self.b3_conv(x))
        x = self.b3_relu(out + self.b3_down(x))
        x = self.b4_bn(self.b4_conv(x)) + x
        x = self.b5_act(self.b5_bn(self.b5_conv(x)) + x)
        x = self.b6_relu(self.b6_bn(self.b6_conv(x)) + self.b6_shift)
        s = self.b7_bn(self.b7_conv(x)) + x
        x = self.b7_relu(s) + s
        t = self.b8_bn(self.b8_conv(x))
        return self.b8_relu(t + x) * t


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
    torch.manual_seed(6)
    res = Residuals()
    nnexport.randomize_batchnorm(res, torch.Generator().manual_seed(7))
    dump(res, "residuals", torch.randn(2, 3, 10, 12, generator=torch.Generator().manual_seed(8)),
         out, ["b1.relu", "b1.bn2", "b1.conv2", "b3_down.1", "b5_act", "b7_bn"])
    if "resnet18" in sys.argv[2:]:
        import torchvision
        torch.manual_seed(3)
        r = torchvision.models.resnet18()
        nnexport.randomize_batchnorm(r, torch.Generator().manual_seed(4))
        dump(r, "resnet18", torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(5)),
             out, ["layer1.0.bn2"])


if __name__ == "__main__":
    main()
