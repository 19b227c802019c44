#!/usr/bin/python3
"""Training-step benchmark: nnkit against PyTorch, in the same run.

    bench/bench_train.py [--driver BUILD/bench/nn-bench-train]
                         [--threads 1,2] [--batch 8] [--repeat 9] [--warmup 2]
                         [--configs resnet18-head,resnet18,mobilenet_v2] [--smoke]

One step is opt.zero_grad(); cross_entropy(model(x), y).backward();
opt.step() with plain SGD (lr 0.01), the model in train mode, batch
--batch of 3x224x224 seeded noise and labels in [0, 10):
  resnet18-head  resnet18 with its backbone frozen and a new 10-class fc
  resnet18       resnet18 with a new 10-class fc, all trainable
  mobilenet_v2   mobilenet_v2 with a new 10-class classifier, all trainable
Weights are seeded random (torchvision, weights=None), exported with
tools/torch2nn.  Each side runs in its own process pinned with taskset to
the first N CPUs (PyTorch: torch.set_num_threads(N); nnkit:
nn_set_num_threads(N) in bench/nn-bench-train.c), one after the other;
each reports the median of --repeat steps after --warmup untimed ones,
wall clock and process CPU time.  Prints a Markdown table with the
nnkit / PyTorch ratio (BENCHMARKS.md).  --smoke: one small configuration
(resnet18-head, batch 2, 64x64, 3 steps) as a quick check that both sides
run.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools", "torch2nn"))

import torch  # noqa: E402
import torchvision  # noqa: E402

import nnexport  # noqa: E402

CLASSES = 10

# The PyTorch side: run in a child process so that taskset pins it alone.
TORCH_STEP = r"""
import json, statistics, sys, time, warnings
import torch, torchvision
cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
torch.manual_seed(0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    model = torchvision.models.get_model(cfg["arch"], weights=None)
model.load_state_dict(torch.load(cfg["weights"]))
params = [p for n, p in model.named_parameters()
          if not (cfg["freeze_backbone"] and not n.startswith(cfg["head"] + "."))]
for n, p in model.named_parameters():
    p.requires_grad_(not cfg["freeze_backbone"] or n.startswith(cfg["head"] + "."))
model.train()
opt = torch.optim.SGD(params, lr=0.01)
g = torch.Generator().manual_seed(7)
x = torch.rand(cfg["batch"], 3, cfg["size"], cfg["size"], generator=g) * 2 - 1
y = torch.randint(0, cfg["classes"], (cfg["batch"],), generator=g)
wall, cpu, losses = [], [], []
for i in range(cfg["warmup"] + cfg["repeat"]):
    c0, t0 = time.process_time(), time.perf_counter()
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    t1, c1 = time.perf_counter(), time.process_time()
    losses.append(loss.item())
    if i >= cfg["warmup"]:
        wall.append((t1 - t0) * 1000.0)
        cpu.append((c1 - c0) * 1000.0)
print(json.dumps({"median_ms": statistics.median(wall), "cpu_ms": statistics.median(cpu),
                  "loss_first": losses[0], "loss_last": losses[-1]}))
"""

CONFIGS = {
    # name: (torchvision arch, head module to replace, freeze the backbone)
    "resnet18-head": ("resnet18", "fc", True),
    "resnet18": ("resnet18", "fc", False),
    "mobilenet_v2": ("mobilenet_v2", "classifier", False),
}


def build(arch, head, workdir, size):
    """Seeded model with a new CLASSES-way head: saves the PyTorch weights
    and the nnkit export; returns (weights path, descriptor path)."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torchvision.models.get_model(arch, weights=None)
    if head == "fc":
        model.fc = torch.nn.Linear(model.fc.in_features, CLASSES)
    else:
        model.classifier[-1] = torch.nn.Linear(model.classifier[-1].in_features, CLASSES)
    model.eval()
    pt = os.path.join(workdir, f"{arch}.pt")
    torch.save(model.state_dict(), pt)
    desc = os.path.join(workdir, f"{arch}.json")
    nnexport.export(model, desc, input_shape=(1, 3, size, size))
    return model, pt, desc


def pinned(threads):
    if shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", f"0-{threads - 1}" if threads > 1 else "0"]


def time_torch(arch, head, weights, freeze, threads, args):
    cfg = {"arch": arch, "head": head, "weights": weights, "freeze_backbone": freeze,
           "threads": threads, "batch": args.batch, "size": args.size,
           "classes": CLASSES, "warmup": args.warmup, "repeat": args.repeat}
    # The child rebuilds the architecture with a default head; load the
    # saved weights into the same shape by patching it first.
    code = TORCH_STEP.replace(
        'model.load_state_dict(',
        ('model.fc = torch.nn.Linear(model.fc.in_features, cfg["classes"])\n'
         if head == "fc" else
         'model.classifier[-1] = torch.nn.Linear(model.classifier[-1].in_features, '
         'cfg["classes"])\n') + 'model.load_state_dict(')
    proc = subprocess.run(pinned(threads) + [sys.executable, "-c", code, json.dumps(cfg)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"PyTorch side failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def time_nnkit(driver, desc, head, freeze, threads, args):
    env = dict(os.environ)
    env.pop("NN_NUM_THREADS", None)  # the driver's nn_set_num_threads alone
    cmd = pinned(threads) + [driver, desc, "--batch", str(args.batch), "--size", str(args.size),
                             "--classes", str(CLASSES), "--threads", str(threads),
                             "--repeat", str(args.repeat), "--warmup", str(args.warmup)]
    if freeze:
        # Everything but the head: nnkit's globs cross dots.
        cmd += ["--freeze", "*", "--unfreeze", head]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"nn-bench-train failed: {proc.stderr.strip()}")
    out = {}
    for line in proc.stdout.splitlines():
        k, _, v = line.partition(" ")
        out[k] = float(v)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--driver", default=os.path.join(HERE, "..", "build", "bench",
                                                     "nn-bench-train"))
    ap.add_argument("--configs", default="resnet18-head,resnet18,mobilenet_v2")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--smoke", action="store_true",
                    help="resnet18-head only, batch 2, 64x64, 3 steps after 1")
    args = ap.parse_args()
    if args.smoke:
        args.configs, args.threads = "resnet18-head", "1"
        args.batch, args.size, args.repeat, args.warmup = 2, 64, 3, 1
    elif args.repeat < 9:
        ap.error("--repeat must be at least 9")
    if not os.path.exists(args.driver):
        ap.error(f"{args.driver}: not found; build it (ninja -C BUILD) or pass --driver")
    threads = [int(t) for t in args.threads.split(",")]
    print(f"# {platform.node()}: {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"batch {args.batch}x3x{args.size}x{args.size}, SGD, median of {args.repeat} "
          f"steps after {args.warmup} warm-up, load average {os.getloadavg()[0]:.1f}\n")
    print("| config | threads | PyTorch ms | nnkit ms | nnkit / PyTorch | PyTorch CPU ms "
          "| nnkit CPU ms | CPU ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="nnkit-bench-train-") as workdir:
        built = {}
        for name in args.configs.split(","):
            if name not in CONFIGS:
                ap.error(f"unknown config {name!r} (expected {', '.join(CONFIGS)})")
            arch, head, freeze = CONFIGS[name]
            if arch not in built:
                built[arch] = build(arch, head, workdir, args.size)[1:]
            pt, desc = built[arch]
            for t in threads:
                ref = time_torch(arch, head, pt, freeze, t, args)
                got = time_nnkit(args.driver, desc, head, freeze, t, args)
                print(f"| {name} | {t} | {ref['median_ms']:.1f} | {got['median_ms']:.1f} | "
                      f"{got['median_ms'] / ref['median_ms']:.2f} | {ref['cpu_ms']:.1f} | "
                      f"{got['cpu_ms']:.1f} | {got['cpu_ms'] / ref['cpu_ms']:.2f} |",
                      flush=True)
                if args.smoke:
                    for side, r in (("PyTorch", ref), ("nnkit", got)):
                        if not (r["loss_last"] == r["loss_last"]):  # NaN
                            raise RuntimeError(f"{side}: the loss is NaN")
    return 0


if __name__ == "__main__":
    sys.exit(main())
