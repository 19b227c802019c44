#!/usr/bin/python3
"""Half-precision storage against PyTorch: a small Conv2d/BatchNorm2d/Linear
model's weights are written as BF16 and as F16; `nnctl run --keep-dtype`
keeps them as stored (converted per use) and must match PyTorch run with
the same weights upcast to F32 within 1e-4, and the F32 original within
1e-3 for F16; without --keep-dtype they are converted at load, with the
same result.  Exits 77 (skipped) without torch."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
for _a in list(sys.argv[1:]):
    if _a.startswith("--nnctl="):
        os.environ["NNCTL"] = _a[len("--nnctl="):]
        sys.argv.remove(_a)

try:
    import torch
    import torch.nn as nn
except ImportError:
    print(f"SKIP: python3-torch not installed for {sys.executable}", file=sys.stderr)
    sys.exit(77)

from nnctl_testlib import NnctlCase, SOURCE_ROOT  # noqa: E402

sys.path.insert(0, os.path.join(SOURCE_ROOT, "tools", "torch2nn"))
import nnexport  # noqa: E402
from nnexport import safetensors_io  # noqa: E402


def make_model():
    torch.manual_seed(5)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.Conv2d(8, 4, 3, groups=4, bias=False), nn.Flatten(),
                      nn.Linear(4 * 6 * 6, 10))
    nnexport.randomize_batchnorm(m, torch.Generator().manual_seed(1))
    return m.eval()


# oneDNN reads F32 weights itself, so its modules convert at load; the
# native providers keep F16/BF16 as stored.
NATIVE = dict(os.environ, NN_PROVIDERS="-dnnl")


class TestHalfStorage(NnctlCase):
    def setUp(self):
        super().setUp()
        self.model = make_model()
        self.x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
        self.model_path = self.path("m.json")
        nnexport.export(self.model, self.model_path, inputs={"input": self.x})

    def half_file(self, dtype, name):
        state = {k: (v.to(dtype) if v.is_floating_point() else v)
                 for k, v in self.model.state_dict().items()}
        path = self.path(name)
        safetensors_io.write(path, state)
        upcast = make_model()
        upcast.load_state_dict({k: v.to(torch.float32) if v.is_floating_point() else v
                                for k, v in state.items()})
        return path, upcast.eval()

    def run_nnctl(self, weights, *extra):
        xin, yout = self.path("x.safetensors"), self.path("y.safetensors")
        safetensors_io.write(xin, {"input": self.x})
        self.nnctl("run", self.model_path, "--weights", weights, "--input",
                   xin + ":input", "--output", yout, *extra, env=NATIVE)
        return safetensors_io.read(yout)[0]["output"]

    def check(self, dtype, name, tol_f32):
        path, upcast = self.half_file(dtype, name)
        with torch.no_grad():
            want = upcast(self.x)
            orig = self.model(self.x)
        scale = max(1.0, want.abs().max().item())
        for extra in (("--keep-dtype",), ()):
            got = self.run_nnctl(path, *extra)
            self.assertLessEqual((got - want).abs().max().item(), 1e-4 * scale, extra)
            if tol_f32 is not None:
                self.assertLessEqual((got - orig).abs().max().item(), tol_f32 * scale, extra)

    def test_bf16(self):
        self.check(torch.bfloat16, "bf16.safetensors", None)

    def test_f16(self):
        self.check(torch.float16, "f16.safetensors", 1e-3)

    def test_model_save_keeps_pytorch_loadable(self):
        path, upcast = self.half_file(torch.bfloat16, "bf16.safetensors")
        out = self.path("saved.json")
        self.nnctl("--quiet", "replace", self.model_path, "2", '{"type": "ReLU"}',
                   "--weights", path, "--keep-dtype", "-o", out, env=NATIVE)
        # --keep-dtype leaves the weights as stored, and a save writes them so.
        saved, _ = safetensors_io.read(self.path("saved.safetensors"))
        self.assertEqual(saved["0.weight"].dtype, torch.bfloat16)
        self.assertEqual(saved["5.weight"].dtype, torch.bfloat16)
        self.assertEqual(saved["1.running_var"].dtype, torch.bfloat16)
        ref = make_model()
        nnexport.load_state_dict_file(ref, self.path("saved.safetensors"), strict=True)
        for k, v in upcast.state_dict().items():
            self.assertTrue(torch.equal(ref.state_dict()[k], v), k)
        # The default converts to the declared F32 at load.
        self.nnctl("--quiet", "replace", self.model_path, "2", '{"type": "ReLU"}',
                   "--weights", path, "-o", out)
        saved, _ = safetensors_io.read(self.path("saved.safetensors"))
        self.assertEqual(saved["0.weight"].dtype, torch.float32)


if __name__ == "__main__":
    unittest.main(verbosity=2)
