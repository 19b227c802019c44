#!/usr/bin/python3
"""nnctl finetune's schedule and regularisation flags against a PyTorch
run of the same loop: --scheduler step|cosine (StepLR, CosineAnnealingLR
stepped once per epoch), --clip-grad-norm (clip_grad_norm_ before each
step), --label-smoothing (CrossEntropyLoss(label_smoothing=...)); the
learning rate printed per epoch and the final weights within 1e-4, and
--resume continuing the schedule.  Bad values print one "nnctl:" line and
write nothing.  Exits 77 (skipped) without torch.

    test_finetune_flags.py --nnctl=PATH"""
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import unittest

try:
    import torch
except ImportError:
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "torch2nn"))
import nnexport  # noqa: E402
from nnexport import safetensors_io  # noqa: E402

NNCTL = None


def nnctl(*args):
    return subprocess.run([NNCTL, *args], capture_output=True, text=True)


def make_model():
    torch.manual_seed(11)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 8), torch.nn.ReLU(),
                               torch.nn.Linear(8, 4))


class FinetuneFlags(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = cls.tmp.name
        cls.model = os.path.join(cls.dir, "model.json")
        m = make_model().eval()
        nnexport.export(m, cls.model, None, {"input": torch.randn(1, 3, 2, 2)},
                        nnexport.Plugins.unchecked(), [])
        with open(cls.model) as f:
            desc = json.load(f)
        desc.pop("input_shape", None)  # the loader wants "inputs" alone
        with open(cls.model, "w") as f:
            json.dump(desc, f)
        torch.manual_seed(5)
        cls.x = torch.randn(10, 3, 2, 2)
        cls.y = torch.randint(0, 4, (10,))
        cls.data = os.path.join(cls.dir, "data.safetensors")
        safetensors_io.write(cls.data, {"input": cls.x, "labels": cls.y})

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def torch_run(self, epochs, lr, sched, clip=None, smoothing=0.0, momentum=0.9):
        """The loop nnctl runs: batches of 4 in file order, SGD, the
        scheduler stepped after each epoch.  Returns (lrs, state_dict)."""
        m = make_model()
        m.load_state_dict(safetensors_io.read(os.path.join(self.dir, "model.safetensors"))[0])
        m.train()
        opt = torch.optim.SGD(m.parameters(), lr=lr, momentum=momentum)
        if sched[0] == "step":
            s = torch.optim.lr_scheduler.StepLR(opt, step_size=sched[1], gamma=sched[2])
        elif sched[0] == "cosine":
            s = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=sched[1])
        else:
            s = None
        loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=smoothing)
        lrs = []
        for _ in range(epochs):
            lrs.append(opt.param_groups[0]["lr"])
            for b in range(0, 10, 4):
                opt.zero_grad()
                loss_fn(m(self.x[b:b + 4]), self.y[b:b + 4]).backward()
                if clip is not None:
                    torch.nn.utils.clip_grad_norm_(m.parameters(), clip)
                opt.step()
            if s is not None:
                s.step()
        return lrs, m.state_dict()

    def run_nnctl(self, out, *flags, model=None):
        r = nnctl("finetune", model or self.model, "--data", self.data, "--batch-size", "4",
                  "--no-shuffle", "--momentum", "0.9", *flags, "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        return [float(v) for v in re.findall(r"lr ([0-9.e+-]+)", r.stdout)]

    def check(self, got_lrs, want_lrs, out, want_sd):
        self.assertEqual(len(got_lrs), len(want_lrs))
        for g, w in zip(got_lrs, want_lrs):
            self.assertTrue(math.isclose(g, w, rel_tol=1e-6, abs_tol=1e-12), (got_lrs, want_lrs))
        got = safetensors_io.read(out.replace(".json", ".safetensors"))[0]
        for k, v in want_sd.items():
            self.assertTrue(torch.allclose(got[k], v, rtol=1e-4, atol=1e-5),
                            (k, (got[k] - v).abs().max()))

    def test_step_scheduler_with_clip(self):
        out = os.path.join(self.dir, "step.json")
        lrs = self.run_nnctl(out, "--epochs", "5", "--lr", "0.2", "--scheduler", "step",
                             "--step-size", "2", "--gamma", "0.5", "--clip-grad-norm", "0.3")
        want_lrs, sd = self.torch_run(5, 0.2, ("step", 2, 0.5), clip=0.3)
        self.check(lrs, want_lrs, out, sd)

    def test_cosine_with_label_smoothing_and_resume(self):
        out = os.path.join(self.dir, "cos.json")
        lrs = self.run_nnctl(out, "--epochs", "3", "--lr", "0.1", "--scheduler", "cosine",
                             "--t-max", "4", "--label-smoothing", "0.2")
        self.assertTrue(os.path.exists(os.path.join(self.dir, "cos.sched.json")))
        # --resume continues the schedule (no --scheduler given again),
        # across T_max, where the cosine turns back up.
        lrs += self.run_nnctl(out, "--epochs", "3", "--label-smoothing", "0.2",
                              "--resume", out)
        want_lrs, sd = self.torch_run(6, 0.1, ("cosine", 4), smoothing=0.2)
        self.check(lrs, want_lrs, out, sd)

    def test_constant_lr_is_printed(self):
        out = os.path.join(self.dir, "flat.json")
        lrs = self.run_nnctl(out, "--epochs", "2", "--lr", "0.05")
        want_lrs, sd = self.torch_run(2, 0.05, ("none",))
        self.check(lrs, want_lrs, out, sd)

    def test_bad_values(self):
        out = os.path.join(self.dir, "never.json")
        for flags, needle in [
                (["--scheduler", "linear"], "unknown --scheduler 'linear'"),
                (["--scheduler", "step"], "--step-size"),
                (["--scheduler", "step", "--step-size", "0"], "--step-size"),
                (["--scheduler", "step", "--step-size", "2", "--gamma", "-1"], "--gamma"),
                (["--step-size", "2"], "need --scheduler step"),
                (["--t-max", "3"], "needs --scheduler cosine"),
                (["--scheduler", "cosine", "--t-max", "-2"], "--t-max"),
                (["--clip-grad-norm", "0"], "--clip-grad-norm must be > 0"),
                (["--clip-grad-norm", "-1"], "--clip-grad-norm must be > 0"),
                (["--label-smoothing", "1"], "--label-smoothing must be in [0, 1)"),
                (["--label-smoothing", "-0.1"], "--label-smoothing must be in [0, 1)"),
                (["--gamma", "x"], "gamma")]:
            r = nnctl("finetune", self.model, "--data", self.data, *flags, "-o", out)
            self.assertNotEqual(r.returncode, 0, flags)
            lines = r.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, (flags, r.stderr))
            self.assertTrue(lines[0].startswith("nnctl:"), (flags, r.stderr))
            self.assertIn(needle, lines[0], flags)
            self.assertFalse(os.path.exists(out), flags)
            self.assertFalse(os.path.exists(os.path.join(self.dir, "never.sched.json")))
        # A broken saved schedule is refused when resuming.
        good = os.path.join(self.dir, "good.json")
        self.run_nnctl(good, "--epochs", "1", "--lr", "0.1")
        with open(os.path.join(self.dir, "good.sched.json"), "w") as f:
            f.write('{"scheduler": "warmup"}')
        r = nnctl("finetune", self.model, "--data", self.data, "--resume", good, "-o", out)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIn("good.sched.json: expected an object with 'scheduler'", r.stderr)
        self.assertFalse(os.path.exists(out))

    def test_help_lists_the_flags(self):
        r = nnctl("finetune", "--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        for flag in ["--scheduler", "--step-size", "--gamma", "--t-max", "--clip-grad-norm",
                     "--label-smoothing"]:
            self.assertIn(flag, r.stdout)


if __name__ == "__main__":
    for a in list(sys.argv[1:]):
        if a.startswith("--nnctl="):
            NNCTL = a.split("=", 1)[1]
            sys.argv.remove(a)
    unittest.main()
