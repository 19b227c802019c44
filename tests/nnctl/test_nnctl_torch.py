#!/usr/bin/python3
"""nnctl against PyTorch on torchvision models: `nnctl show` equals
print(model), and `nnctl run --input/--output` matches PyTorch's forward.
The models are exported at test time with `nnctl export` (tools/torch2nn).
Exits 77 (meson: skipped) when this python has no torch."""

import json
import os
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
for _a in list(sys.argv[1:]):
    if _a.startswith("--nnctl="):
        os.environ["NNCTL"] = _a[len("--nnctl="):]
        sys.argv.remove(_a)

try:
    import torch
    import torchvision
except ImportError:
    print("SKIP: python3-torch / python3-torchvision not installed for "
          f"{sys.executable}", file=sys.stderr)
    sys.exit(77)

from nnctl_testlib import NnctlCase  # noqa: E402

MODELS = ["resnet18", "alexnet", "vgg11_bn", "mobilenet_v2"]


def load_safetensors_torch(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    dtypes = {"F32": torch.float32, "I64": torch.int64}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        buf = bytearray(data[8 + n + a:8 + n + b])
        t = torch.frombuffer(buf, dtype=dtypes[info["dtype"]]) if buf else \
            torch.empty(0, dtype=dtypes[info["dtype"]])
        out[name] = t.reshape(info["shape"]).clone()
    return out


def save_safetensors_torch(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        blob = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


class TestAgainstPyTorch(NnctlCase):
    def check_model(self, name):
        model_path = self.path(name + ".json")
        self.nnctl("--quiet", "export", name, "-o", model_path, "--seed", "0",
                   "--randomize-bn")
        ref = torchvision.models.get_model(name, weights=None)

        # 1. nnctl show == print(model), byte for byte.
        out, _ = self.nnctl("show", model_path)
        self.assertEqual(out, str(ref) + "\n", f"{name}: show differs from print(model)")

        # 2. nnctl run --input/--output == PyTorch's forward with the same
        # weights (read back from the exported file, strictly).
        state = load_safetensors_torch(self.path(name + ".safetensors"))
        ref.load_state_dict(state, strict=True)
        ref.eval()
        g = torch.Generator().manual_seed(11)
        for shape in ([1, 3, 224, 224], [2, 3, 160, 160]):
            x = torch.randn(*shape, generator=g)
            xin, yout = self.path("x.safetensors"), self.path("y.safetensors")
            save_safetensors_torch(xin, {"input": x})
            self.nnctl("run", model_path, "--input", xin + ":input", "--output", yout)
            got = load_safetensors_torch(yout)["output"]
            with torch.no_grad():
                want = ref(x)
            self.assertEqual(list(got.shape), list(want.shape), name)
            tol = 1e-4 * want.abs().max().item()
            err = (got - want).abs().max().item()
            self.assertLessEqual(err, tol, f"{name} {shape}: max abs diff {err} > {tol}")
        for f in os.listdir(self.tmp):
            os.unlink(self.path(f))


for _name in MODELS:
    setattr(TestAgainstPyTorch, f"test_{_name}",
            lambda self, n=_name: self.check_model(n))


if __name__ == "__main__":
    unittest.main(verbosity=2)
