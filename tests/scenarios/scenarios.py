#!/usr/bin/python3
"""The seeds' surgery scenarios (issue 4) on resnet18 exported from PyTorch.

    scenarios.py N --driver nn-scenario --workdir DIR

N is the scenario (1-8).  resnet18 is exported at test time with the
exporter's command line (seeded random weights, randomised BatchNorm
statistics); nn-scenario edits and runs it through nnkit's public API, and
every result is compared with PyTorch doing the same thing to the same
weights.  Exit status: 0 passed, 1 a check failed, 77 (meson's skip) when
python3-torch or torchvision is missing.

Scenario 3 ("replace the last layer with Sequential(AdaptiveAvgPool2d(1),
Flatten(), Linear(512, 10))"): resnet18's last layer, fc, receives the
already pooled and flattened [N, 512], so putting that head in place of fc
fails in PyTorch itself (adaptive_avg_pool2d needs a 3-D or 4-D input).
The scenario checks that nnkit refuses exactly that edit, and then applies
the faithful variant a PyTorch user writes: the head replaces `avgpool`
(the first layer of resnet's classifier tail) and `fc` becomes Identity;
the Graph's flatten between them is then a no-op on [N, 10].
"""

import argparse
import fnmatch
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "conformance"))

try:
    import torch
    import torchvision  # noqa: F401
except ImportError as e:
    print(f"SKIP: {e} (install python3-torch and python3-torchvision)")
    sys.exit(77)

# The conformance helpers: seeded torchvision models, the tolerance and
# PASS/FAIL reporting.  conformance also puts tools/torch2nn on sys.path.
import conformance  # noqa: E402
import nnexport  # noqa: E402
from nnexport import safetensors_io  # noqa: E402

from torch import nn  # noqa: E402

EXPORTER = os.path.join(ROOT, "tools", "torch2nn", "torch2nn.py")
SEED = 0

# New modules as nnkit descriptors and as PyTorch builds them.
LINEAR_10 = ('{"type": "Linear", "config": {"in_features": 512, "out_features": 10}}',
             lambda: nn.Linear(512, 10))
CONV_5X5 = ('{"type": "Conv2d", "config": {"in_channels": 128, "out_channels": 128, '
            '"kernel_size": 5, "padding": 2}}',
            lambda: nn.Conv2d(128, 128, kernel_size=5, padding=2))
NARROW_CONV = ('{"type": "Conv2d", "config": {"in_channels": 64, "out_channels": 32, '
               '"kernel_size": 3, "padding": 1}}',
               lambda: nn.Conv2d(64, 32, 3, padding=1))
HEAD = ('{"type": "Sequential", "children": ['
        '{"name": "0", "type": "AdaptiveAvgPool2d", "config": {"output_size": 1}}, '
        '{"name": "1", "type": "Flatten"}, '
        '{"name": "2", "type": "Linear", "config": {"in_features": 512, "out_features": 10}}]}',
        lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 10)))
IDENTITY = ('{"type": "Identity"}', lambda: nn.Identity())
AVGPOOL = ('{"type": "AvgPool2d", "config": {"kernel_size": 3, "stride": 2, "padding": 1}}',
           lambda: nn.AvgPool2d(kernel_size=3, stride=2, padding=1))


class Scenario:
    def __init__(self, args):
        self.driver = args.driver
        self.wd = os.path.abspath(args.workdir)
        os.makedirs(self.wd, exist_ok=True)
        self.rep = conformance.Report(f"scenario {args.scenario}")
        self.model_path = os.path.join(self.wd, "resnet18.json")
        self.weights_path = nnexport.weights_path_for(self.model_path)
        self.export()
        self.ref = self.reference()
        gen = torch.Generator().manual_seed(SEED + 5)
        self.inputs = {"b1": torch.randn(1, 3, 224, 224, generator=gen),
                       "b2": torch.randn(2, 3, 160, 160, generator=gen)}
        self.in_path = self.path("inputs.safetensors")
        safetensors_io.write(self.in_path, self.inputs)

    def path(self, name):
        return os.path.join(self.wd, name)

    def export(self):
        cmd = [sys.executable, EXPORTER, "resnet18", "-o", self.model_path,
               "--seed", str(SEED), "--randomize-bn"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"FAIL: export: {' '.join(cmd)}\n{proc.stderr}")

    def reference(self):
        """A fresh torchvision resnet18 holding exactly the exported weights."""
        model = conformance.build_model("resnet18", SEED + 100)
        nnexport.load_state_dict_file(model, self.weights_path, strict=True)
        return model.eval()

    def nnkit(self, *args, model=None, expect_ok=True):
        """Runs nn-scenario; returns its stdout lines (None on failure)."""
        cmd = [self.driver, model or self.model_path] + [str(a) for a in args]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        ok = proc.returncode == 0
        if expect_ok:
            self.rep.check(f"nn-scenario {' '.join(str(a) for a in args)[:120]}", ok,
                           proc.stderr.strip())
        return proc.stdout.splitlines() if ok else None

    # --- comparisons -------------------------------------------------------

    def close(self, what, got, ref):
        if got is None or tuple(got.shape) != tuple(ref.shape):
            return self.rep.check(f"{what}: shape {list(ref.shape)}", False,
                                  f"found {None if got is None else list(got.shape)}")
        err = (got - ref).abs().max().item()
        scale = ref.abs().max().item()
        return self.rep.check(
            f"{what}: max|diff| {err:.3g} <= {conformance.TOLERANCE:g} * {scale:.3g}",
            err <= conformance.TOLERANCE * scale)

    def pytorch_outputs(self, model):
        with torch.no_grad():
            return {k: model(x) for k, x in self.inputs.items()}

    def unchanged_except(self, saved_weights, prefixes):
        """Every exported tensor outside @prefixes is bit-identical in
        @saved_weights (nnkit's saved file)."""
        exported, _ = safetensors_io.read(self.weights_path)
        saved, _ = safetensors_io.read(saved_weights)
        kept = [k for k in exported if not any(k.startswith(p) for p in prefixes)]
        bad = [k for k in kept if k not in saved or saved[k].dtype != exported[k].dtype
               or saved[k].shape != exported[k].shape
               or saved[k].numpy().tobytes() != exported[k].numpy().tobytes()]
        self.rep.check(f"{len(kept)} untouched tensors bit-identical", not bad,
                       "differ: " + ", ".join(bad[:10]))
        return saved

    def apply_in_pytorch(self, model, edits):
        """PyTorch's set_submodule by dotted path."""
        for path, factory in edits:
            parent_path, _, name = path.rpartition(".")
            parent = model.get_submodule(parent_path)
            setattr(parent, name, factory())
        return model

    def pytorch_side(self, edits, saved_weights, outputs):
        """Scenario 8's check: the same edits in PyTorch, with nnkit's
        initialised weights copied over (strict), give the same outputs."""
        model = self.apply_in_pytorch(self.reference(), edits)
        try:
            nnexport.load_state_dict_file(model, saved_weights, strict=True)
            loaded, detail = True, ""
        except RuntimeError as e:
            loaded, detail = False, str(e)
        if not self.rep.check("PyTorch load_state_dict(strict=True) of nnkit's edited "
                              "model", loaded, detail):
            return None
        model.eval()
        ref = self.pytorch_outputs(model)
        for k in self.inputs:
            self.close(f"edited forward {k} vs PyTorch", outputs.get(k), ref[k])
        return model

    def listing(self, path):
        with open(path) as f:
            return [tuple(line.split("\t")) for line in f.read().splitlines()]

    def pytorch_listing(self, model):
        return [(str(i), p, type(m).__name__) for i, (p, m) in enumerate(model.named_modules())]

    def replace_and_run(self, name, edits):
        """Replaces with nnkit (seeded), saves, runs; returns (saved
        weights, outputs, driver lines)."""
        out_model = self.path(f"{name}.json")
        args = ["--seed", "11"]
        for ref, (desc, _) in edits:
            args += ["--replace", f"{ref}={desc}"]
        outputs_path = self.path(f"{name}.outputs.safetensors")
        lines = self.nnkit(*args, "--save", out_model, "--input", self.in_path,
                           "--output", outputs_path, "--text", self.path(f"{name}.txt"),
                           "--modules", self.path(f"{name}.modules.txt"))
        if lines is None:
            return None, {}, []
        outputs, _ = safetensors_io.read(outputs_path)
        return nnexport.weights_path_for(out_model), outputs, lines

    def replaced_paths(self, lines):
        return {ln.split()[1]: ln.split()[2] for ln in lines if ln.startswith("replaced ")}

    # --- the scenarios ------------------------------------------------------

    def s1(self):
        """Replace fc with Linear(512, 10): [1, 10], other weights unchanged."""
        saved, outputs, lines = self.replace_and_run("s1", [("fc", LINEAR_10)])
        if saved is None:
            return
        self.rep.check("driver reports fc replaced", "replaced fc fc Linear Linear" in lines,
                       "\n".join(lines))
        self.rep.check("output [1, 10]", list(outputs["b1"].shape) == [1, 10],
                       str(list(outputs["b1"].shape)))
        weights = self.unchanged_except(saved, ["fc."])
        w = weights["fc.weight"]
        bound = 1 / 512 ** 0.5
        self.rep.check("new fc.weight [10, 512] initialised as PyTorch (|w| <= 1/sqrt(512))",
                       list(w.shape) == [10, 512] and w.abs().max().item() <= bound
                       and w.abs().max().item() > bound / 2)
        self.pytorch_side([("fc", LINEAR_10[1])], saved, outputs)

    def s2(self):
        """Replace layer2.0.conv2 with a 5x5 conv: shapes kept, forward runs."""
        saved, outputs, lines = self.replace_and_run("s2", [("layer2.0.conv2", CONV_5X5)])
        if saved is None:
            return
        ref = self.pytorch_outputs(self.ref)
        for k in self.inputs:
            self.rep.check(f"output {k} keeps shape {list(ref[k].shape)}",
                           list(outputs[k].shape) == list(ref[k].shape))
        weights = self.unchanged_except(saved, ["layer2.0.conv2."])
        self.rep.check("layer2.0.conv2.weight [128, 128, 5, 5]",
                       list(weights["layer2.0.conv2.weight"].shape) == [128, 128, 5, 5])
        self.pytorch_side([("layer2.0.conv2", CONV_5X5[1])], saved, outputs)

    def s3(self):
        """The classifier head as Sequential(AdaptiveAvgPool2d(1), Flatten(),
        Linear(512, 10)); see the module doc for the variant."""
        # In place of fc, the head gets [N, 512]: PyTorch fails at run time...
        broken = self.apply_in_pytorch(self.reference(), [("fc", HEAD[1])])
        try:
            with torch.no_grad():
                broken(self.inputs["b1"])
            torch_fails = False
        except (RuntimeError, ValueError):
            torch_fails = True
        self.rep.check("PyTorch cannot run the head in place of fc", torch_fails)
        # ...and nnkit refuses the edit up front, leaving the model as it was.
        lines = self.nnkit("--replace", f"fc={HEAD[0]}", "--expect-refused")
        if lines is not None:
            msg = " ".join(lines)
            self.rep.check("nnkit refuses the head in place of fc, naming fc.0 and [1, 512]",
                           "refused fc:" in msg and "fc.0" in msg and "[1, 512]" in msg, msg)
        # The faithful variant.
        # fc first: each edit is shape-checked on its own, and the head in
        # avgpool's place only fits once fc no longer expects 512 features.
        edits = [("fc", IDENTITY), ("avgpool", HEAD)]
        saved, outputs, lines = self.replace_and_run("s3", edits)
        if saved is None:
            return
        self.rep.check("output [1, 10]", list(outputs["b1"].shape) == [1, 10],
                       str(list(outputs["b1"].shape)))
        self.unchanged_except(saved, ["fc.", "avgpool."])
        model = self.pytorch_side([(p, f) for p, (_, f) in edits], saved, outputs)
        if model is not None:
            with open(self.path("s3.txt")) as f:
                text = f.read().rstrip("\n")
            self.rep.check("edited text == print(model) of PyTorch's edited model",
                           text == repr(model),
                           conformance.first_difference(repr(model).splitlines(),
                                                        text.splitlines(), "repr"))

    def s4(self):
        """Replace the module at flattened index 4; its path is PyTorch's."""
        torch_path, torch_mod = list(self.ref.named_modules())[4]
        saved, outputs, lines = self.replace_and_run("s4", [("#4", AVGPOOL)])
        if saved is None:
            return
        paths = self.replaced_paths(lines)
        self.rep.check(f"#4 is '{torch_path}' ({type(torch_mod).__name__}) as in PyTorch's "
                       "named_modules", paths.get("#4") == torch_path
                       and f"replaced #4 {torch_path} {type(torch_mod).__name__} AvgPool2d" in lines,
                       "\n".join(lines))
        self.unchanged_except(saved, [])
        model = self.pytorch_side([(torch_path, AVGPOOL[1])], saved, outputs)
        if model is not None:
            expected = self.pytorch_listing(model)
            found = self.listing(self.path("s4.modules.txt"))
            self.rep.check("named_modules after the edit == PyTorch's", found == expected,
                           conformance.first_difference([str(x) for x in expected],
                                                        [str(x) for x in found], "modules"))

    def s5(self):
        """A shape-breaking replace is refused; the model is bit-identical."""
        before = self.path("before.json")
        after = self.path("after.json")
        base = self.nnkit("--save", before, "--text", self.path("before.txt"),
                          "--modules", self.path("before.modules.txt"))
        lines = self.nnkit("--replace", f"layer1.0.conv1={NARROW_CONV[0]}", "--expect-refused",
                           "--save", after, "--text", self.path("after.txt"),
                           "--modules", self.path("after.modules.txt"))
        if base is None or lines is None:
            return
        msg = " ".join(lines)
        self.rep.check("clear error: path, refusal, expected vs found shapes",
                       msg.startswith("refused layer1.0.conv1: replace 'layer1.0.conv1' refused, "
                                      "model unchanged")
                       and "layer1.0.bn1" in msg and "64" in msg and "[1, 32, 56, 56]" in msg,
                       msg)
        for suffix in (".json", ".safetensors", ".txt", ".modules.txt"):
            a = before[:-5] + suffix
            b = after[:-5] + suffix
            with open(a, "rb") as fa, open(b, "rb") as fb:
                self.rep.check(f"before{suffix} and after{suffix} byte-identical",
                               fa.read() == fb.read())
        self.unchanged_except(nnexport.weights_path_for(after), [])
        with open(self.path("after.txt")) as f:
            text = f.read().rstrip("\n")
        self.rep.check("text after == print(model)", text == repr(self.ref))
        self.rep.check("indices after == PyTorch's named_modules",
                       self.listing(self.path("after.modules.txt")) ==
                       self.pytorch_listing(self.ref))
        # PyTorch agrees that this edit breaks the model.
        broken = self.apply_in_pytorch(self.reference(), [("layer1.0.conv1", NARROW_CONV[1])])
        try:
            with torch.no_grad():
                broken(self.inputs["b1"])
            torch_fails = False
        except RuntimeError:
            torch_fails = True
        self.rep.check("PyTorch also fails to run the edited model", torch_fails)

    def s6(self):
        """Forward hooks on conv1 and layer4 against PyTorch's hooks."""
        acts_path = self.path("acts.safetensors")
        cap_path = self.path("capture.safetensors")
        out_path = self.path("s6.outputs.safetensors")
        lines = self.nnkit("--input", self.in_path, "--output", out_path,
                           "--hook", "conv1", "--hook", "layer4", "--activations", acts_path,
                           "--capture", "conv1", "--capture", "layer4",
                           "--capture-file", cap_path)
        if lines is None:
            return
        got, _ = safetensors_io.read(acts_path)
        captured, _ = safetensors_io.read(cap_path)
        outputs, _ = safetensors_io.read(out_path)
        seen = {}
        handles = [getattr(self.ref, p).register_forward_hook(
                       lambda m, i, o, p=p: seen.__setitem__(p, o.detach().clone()))
                   for p in ("conv1", "layer4")]
        with torch.no_grad():
            for k, x in self.inputs.items():
                seen.clear()
                y = self.ref(x)
                self.close(f"output {k}", outputs.get(k), y)
                for p in ("conv1", "layer4"):
                    self.close(f"hook {p} on {k}", got.get(f"{k}:{p}"), seen[p])
        for h in handles:
            h.remove()
        self.rep.check("hooks fired once per module per forward",
                       sorted(got) == sorted(f"{k}:{p}" for k in self.inputs
                                             for p in ("conv1", "layer4")), str(sorted(got)))
        # nn_capture keeps the last run's outputs, saved under their paths.
        self.rep.check("capture file holds conv1 and layer4", sorted(captured) == ["conv1", "layer4"],
                       str(sorted(captured)))
        for p in ("conv1", "layer4"):
            if p in captured:
                self.close(f"capture {p} (last input)", captured[p], seen[p])

    def s7(self):
        """A tensor by full name, and *.bias by glob, as PyTorch names them."""
        t_path = self.path("conv1.weight.safetensors")
        lines = self.nnkit("--tensor", f"layer1.0.conv1.weight={t_path}", "--glob", "*.bias")
        if lines is None:
            return
        tensors, _ = safetensors_io.read(t_path)
        ref = self.ref.state_dict()["layer1.0.conv1.weight"]
        got = tensors.get("layer1.0.conv1.weight")
        self.rep.check("layer1.0.conv1.weight equals PyTorch's", got is not None
                       and got.dtype == ref.dtype and torch.equal(got, ref))
        found = [ln.split()[2] for ln in lines if ln.startswith("glob *.bias ")]
        expected = [n for n, _ in self.ref.named_parameters() if fnmatch.fnmatchcase(n, "*.bias")]
        self.rep.check(f"*.bias selects PyTorch's {len(expected)} names in order",
                       found == expected and len(expected) > 0,
                       conformance.first_difference(expected, found, "names"))

    def s8(self):
        """Several edits at once, checked by PyTorch with nnkit's weights,
        and by reloading nnkit's saved model."""
        edits = [("#4", AVGPOOL), ("layer2.0.conv2", CONV_5X5), ("layer3.1", IDENTITY),
                 ("fc", LINEAR_10)]
        saved, outputs, lines = self.replace_and_run("s8", edits)
        if saved is None:
            return
        paths = self.replaced_paths(lines)
        torch_edits = [(paths.get(ref, ref), f) for ref, (_, f) in edits]
        self.unchanged_except(saved, ["fc.", "layer2.0.conv2.", "layer3.1."])
        model = self.pytorch_side(torch_edits, saved, outputs)
        if model is None:
            return
        with open(self.path("s8.txt")) as f:
            text = f.read().rstrip("\n")
        self.rep.check("edited text == print(model) of PyTorch's edited model",
                       text == repr(model),
                       conformance.first_difference(repr(model).splitlines(),
                                                    text.splitlines(), "repr"))
        self.rep.check("named_modules after the edits == PyTorch's",
                       self.listing(self.path("s8.modules.txt")) == self.pytorch_listing(model))
        # The saved model reloads and gives the same outputs, bit for bit.
        re_out = self.path("s8.reload.outputs.safetensors")
        if self.nnkit("--input", self.in_path, "--output", re_out,
                      model=self.path("s8.json")) is not None:
            again, _ = safetensors_io.read(re_out)
            self.rep.check("reloaded model gives the same outputs",
                           all(torch.equal(again[k], outputs[k]) for k in self.inputs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scenario", type=int, choices=range(1, 9))
    ap.add_argument("--driver", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the weight files")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("NN_NUM_THREADS", "2")))
    sc = Scenario(args)
    getattr(sc, f"s{args.scenario}")()
    if not sc.rep.failed and not args.keep:
        for name in os.listdir(sc.wd):
            if name.endswith(".safetensors"):
                os.unlink(os.path.join(sc.wd, name))
    print(f"scenario {args.scenario}: " + (f"{len(sc.rep.failed)} check(s) failed"
                                           if sc.rep.failed else "all checks passed"))
    return 1 if sc.rep.failed else 0


if __name__ == "__main__":
    sys.exit(main())
