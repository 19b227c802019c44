#!/usr/bin/python3
"""Whole-process time and peak RSS of nnctl next to Python's equivalent.

Each command runs as a fresh process --runs times (after one untimed
warm-up); per run, wall time comes from time.monotonic() around the child
and peak RSS from os.wait4()'s rusage of that child alone.  Prints a
Markdown table of medians, then nnctl's times with plugins loaded on
demand next to NN_PLUGIN_LAZY=0 (every plugin at start-up), and `run`
with the oneDNN weights cache next to NN_DNNL_WEIGHTS_CACHE=off.

  /usr/bin/python3 bench/bench_startup.py --nnctl build/tools/nnctl/nnctl
"""
import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_util import process_medians  # noqa: E402


def measure(argv, runs, env):
    return process_medians(argv, runs, env, "bench_startup")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nnctl", default=os.path.join(ROOT, "build/tools/nnctl/nnctl"))
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    work = args.workdir or tempfile.mkdtemp(prefix="nnkit-bench-")
    model = os.path.join(work, "resnet18.json")
    if not os.path.exists(model):
        subprocess.check_call([sys.executable, os.path.join(ROOT, "tools/torch2nn/torch2nn.py"),
                               "resnet18", "-o", model])
    env = dict(os.environ, NN_NUM_THREADS="1", OMP_NUM_THREADS="1")
    py_show = ("import torch, torchvision; torch.set_num_threads(1); "
               "print(torchvision.models.resnet18())")
    py_run = ("import torch, torchvision; torch.set_num_threads(1); torch.manual_seed(1); "
              "m = torchvision.models.resnet18().eval()\n"
              "with torch.no_grad(): print(m(torch.randn(1, 3, 224, 224)).argmax())")
    cases = [
        ("show resnet18", [args.nnctl, "show", model], [sys.executable, "-c", py_show]),
        ("run resnet18, 1x3x224x224, 1 thread",
         [args.nnctl, "--threads", "1", "run", model, "--random", "1,3,224,224", "--topk", "1"],
         [sys.executable, "-c", py_run]),
    ]
    load = os.getloadavg()[0]
    print("runs: %d per command after 1 warm-up, medians; load average %.1f; %d CPUs"
          % (args.runs, load, os.cpu_count()))
    print()
    print("| command | nnctl ms | nnctl peak RSS MB | Python ms | Python peak RSS MB | time ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, ours, theirs in cases:
        t1, r1 = measure(ours, args.runs, env)
        t2, r2 = measure(theirs, args.runs, env)
        print("| %s | %.0f | %.1f | %.0f | %.1f | %.2f |" % (name, t1, r1, t2, r2, t1 / t2))

    # What loading plugins on demand saves: the same commands with every
    # plugin loaded at start-up (docs/PLUGIN_LOADING.md).
    eager = dict(env, NN_PLUGIN_LAZY="0")
    print()
    print("| command | nnctl ms, plugins on demand | nnctl ms, NN_PLUGIN_LAZY=0 |")
    print("|---|---:|---:|")
    for name, ours, _ in cases:
        t1, _ = measure(ours, args.runs, env)
        t0, _ = measure(ours, args.runs, eager)
        print("| %s | %.0f | %.0f |" % (name, t1, t0))

    # What the on-disk cache of reordered weights saves (ENGINE.md,
    # "Start-up"): the run with it (warm, after measure()'s warm-up) and
    # with NN_DNNL_WEIGHTS_CACHE=off (every weight reordered again).
    nocache = dict(env, NN_DNNL_WEIGHTS_CACHE="off")
    print()
    print("| command | nnctl ms, weights cache | nnctl ms, NN_DNNL_WEIGHTS_CACHE=off |")
    print("|---|---:|---:|")
    for name, ours, _ in cases[1:]:
        t1, _ = measure(ours, args.runs, env)
        t0, _ = measure(ours, args.runs, nocache)
        print("| %s | %.0f | %.0f |" % (name, t1, t0))


if __name__ == "__main__":
    main()
