#!/usr/bin/python3
"""Writes PyTorch's own answers for torchvision's resnet18 as test data:
named_modules paths in order (their flattened indices), named_parameters,
named_buffers and state_dict keys with shapes and dtypes, and print(model).
Run once with Debian's python3-torch; the outputs are committed so the core
tests need no PyTorch."""
import os
import torchvision

here = os.path.dirname(os.path.abspath(__file__))
model = torchvision.models.resnet18()


def write(name, lines):
    with open(os.path.join(here, name), "w") as f:
        f.write("\n".join(lines) + "\n")


write("resnet18.modules.txt",
      ["%d\t%s\t%s" % (i, n, type(m).__name__) for i, (n, m) in enumerate(model.named_modules())])
write("resnet18.parameters.txt",
      ["%s\t%s" % (n, list(p.shape)) for n, p in model.named_parameters()])
write("resnet18.buffers.txt",
      ["%s\t%s" % (n, list(b.shape)) for n, b in model.named_buffers()])
write("resnet18.state_dict.txt",
      ["%s\t%s\t%s" % (k, list(v.shape), str(v.dtype).replace("torch.", ""))
       for k, v in model.state_dict().items()])
with open(os.path.join(here, "resnet18.repr.txt"), "w") as f:
    f.write(repr(model) + "\n")
