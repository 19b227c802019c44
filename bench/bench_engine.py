#!/usr/bin/python3
"""Engine benchmark: nnkit against PyTorch, both pinned to the same cores.

    bench/bench_engine.py [--bench BUILD/bench/nn-bench] [--nnctl BUILD/tools/nnctl/nnctl]
                          [--models resnet18,resnet50,mobilenet_v2,vgg11_bn,efficientnet_b0,vit_b_16]
                          [--batches 1,8] [--threads 1,2] [--repeat 9] [--warmup 3] [--rounds 1]
                          [--reference] [--smoke] [--keep-openblas-coretype]

For each model, batch and thread count, PyTorch (a child process, eval,
no_grad, torch.set_num_threads) and nnkit (nn-bench forward) each run
under `taskset -c` on the same first N allowed CPUs: torch.set_num_threads
alone still lets oneDNN's OpenMP use another core.  Each figure is the
median of --repeat (>= 9) timed runs after --warmup (with --rounds N,
the sides alternate N times and each takes the median of its rounds'
medians); the ratio is
nnkit / PyTorch.  The header names the CPU, the OpenBLAS kernel and the
provider nnkit chose per layer type.  Then: no-op hooks on every module
(resnet18) as a percentage of the forward, the per-step cost of a
Sequential of 1,000 Identity modules, and `nnctl run resnet18` as a whole
process against its forward alone.  --reference adds nnkit with the oneDNN
provider excluded (NN_PROVIDERS=-dnnl).  Both sides run without an
OPENBLAS_CORETYPE from the environment, so each OpenBLAS picks its own
kernel (PyTorch's Linear runs on it), unless --keep-openblas-coretype.
--smoke runs resnet18 batch 1 with 3 repeats to check the script works:
its figures are not measurements.  No timing is asserted anywhere.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "tools", "torch2nn"))
from bench_util import cores, cpu_model, keyed, run  # noqa: E402


def build_model(name, seed=0):
    import torch
    import torchvision
    import nnexport
    torch.manual_seed(seed)
    import inspect
    builder = torchvision.models.get_model_builder(name)
    # Segmentation models would fetch their backbone's ImageNet weights.
    extra = ({"weights_backbone": None}
             if "weights_backbone" in inspect.signature(builder).parameters else {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = builder(weights=None, **extra)
    nnexport.randomize_batchnorm(model, torch.Generator().manual_seed(seed + 1))
    return model.eval()


def torch_child(args):
    """Runs in the pinned child: prints the median forward milliseconds."""
    import torch
    torch.set_num_threads(args.threads)
    model = build_model(args.torch_child)
    x = torch.randn(args.batch, 3, 224, 224, generator=torch.Generator().manual_seed(7))
    times = []
    with torch.no_grad():
        for i in range(args.warmup + args.repeat):
            t0 = time.perf_counter()
            model(x)
            if i >= args.warmup:
                times.append((time.perf_counter() - t0) * 1000.0)
    print(f"median_ms {statistics.median(times):.4f}")
    return 0






def nn_env(weights_cache=False):
    env = dict(os.environ)
    env.pop("NN_NUM_THREADS", None)   # --threads alone sets the count
    env.pop("NN_PROVIDERS", None)
    # Forward timings without the on-disk weights cache: with all six
    # models it churns at its 1 GB cap (vgg11_bn's classifier alone is
    # 411 MB reordered), so a row may write hundreds of MB that the kernel
    # writes back during later timed runs; the forward time does not
    # depend on it.  The nnctl run line keeps it, as a user's start-up
    # would.
    if not weights_cache:
        env["NN_DNNL_WEIGHTS_CACHE"] = "off"
    return env


def nnkit_forward(a, path, batch, threads, extra=(), env=None):
    out = run(["taskset", "-c", cores(threads, "bench_engine"), a.bench, "forward", path,
               "--shape", f"{batch},3,224,224", "--threads", str(threads),
               "--repeat", str(a.repeat), "--warmup", str(a.warmup), *extra],
              env=env or nn_env())
    return keyed(out)


def pytorch_forward(a, name, batch, threads):
    out = run(["taskset", "-c", cores(threads, "bench_engine"), sys.executable, os.path.abspath(__file__),
               "--torch-child", name, "--batch", str(batch), "--threads", str(threads),
               "--repeat", str(a.repeat), "--warmup", str(a.warmup)])
    return float(keyed(out)[0]["median_ms"])




def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", default=os.path.join(ROOT, "build", "bench", "nn-bench"))
    ap.add_argument("--nnctl", default=os.path.join(ROOT, "build", "tools", "nnctl", "nnctl"))
    ap.add_argument("--models", default=None,
                    help="default: resnet18,resnet50,mobilenet_v2,vgg11_bn,efficientnet_b0,"
                         "vit_b_16 (resnet18 with --smoke)")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1,
                    help="alternate PyTorch and nnkit this many times per row; each "
                         "side's figure is the median of its rounds' medians")
    ap.add_argument("--reference", action="store_true",
                    help="also time nnkit with the oneDNN provider excluded")
    ap.add_argument("--smoke", action="store_true",
                    help="resnet18, batch 1, 3 repeats: checks the script, measures nothing")
    ap.add_argument("--keep-openblas-coretype", action="store_true",
                    help="keep an OPENBLAS_CORETYPE from the environment (by default "
                         "both sides run without it: each OpenBLAS picks its kernel)")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--torch-child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.torch_child:
        a.threads = int(a.threads)
        return torch_child(a)
    if a.smoke:
        a.models = a.models or "resnet18"
        a.batches, a.repeat, a.warmup = "1", 3, 1
    a.models = a.models or ("resnet18,resnet50,mobilenet_v2,vgg11_bn,"
                            "efficientnet_b0,vit_b_16")
    if not a.smoke and a.repeat < 9:
        ap.error("--repeat must be at least 9 (or use --smoke)")
    if a.rounds < 1:
        ap.error(f"--rounds: expected N >= 1, found {a.rounds}")
    for exe in (a.bench, a.nnctl):
        if not os.path.exists(exe):
            ap.error(f"{exe}: not found; build it (ninja -C BUILD)")

    # PyTorch's Linear runs on the same OpenBLAS: a machine-wide
    # OPENBLAS_CORETYPE (one here sets Haswell) would slow that side only.
    dropped = None
    if not a.keep_openblas_coretype:
        dropped = os.environ.pop("OPENBLAS_CORETYPE", None)

    import torch
    import nnexport
    tmp = tempfile.TemporaryDirectory(prefix="nnkit-engine-bench-")
    workdir = a.workdir or tmp.name
    os.makedirs(workdir, exist_ok=True)
    threads = [int(t) for t in a.threads.split(",")]
    batches = [int(b) for b in a.batches.split(",")]

    print(f"# CPU {cpu_model()}, {len(os.sched_getaffinity(0))} CPUs allowed, "
          f"load average {os.getloadavg()[0]:.1f}, torch {torch.__version__}, "
          f"median of {a.repeat} after {a.warmup} warm-up"
          + (f", median of {a.rounds} alternating rounds" if a.rounds > 1 else "")
          + ", both sides pinned with taskset"
          + (f", OPENBLAS_CORETYPE={dropped} dropped from the environment"
             if dropped is not None else "")
          + (" -- SMOKE RUN, NOT A MEASUREMENT" if a.smoke else ""))
    header_done = False
    rows = []
    paths = {}
    for name in a.models.split(","):
        model = build_model(name)
        path = os.path.join(workdir, name + ".json")
        nnexport.export(model, path, input_shape=(1, 3, 224, 224))
        paths[name] = path
        del model
        for b in batches:
            for t in threads:
                # Rounds alternate the sides, so that a slow spell of the
                # VM (the same process repeated minutes apart varies by 10%
                # here) falls on both rather than on one.
                refs, gots = [], []
                for _ in range(a.rounds):
                    refs.append(pytorch_forward(a, name, b, t))
                    vals, prov = nnkit_forward(a, path, b, t)
                    gots.append(float(vals["median_ms"]))
                ref, got = statistics.median(refs), statistics.median(gots)
                if not header_done:
                    print(f"# {vals.get('blas', 'OpenBLAS kernel: ?')}\n")
                    head = "| model | batch | threads | PyTorch ms | nnkit ms | nnkit / PyTorch |"
                    sep = "|---|---:|---:|---:|---:|---:|"
                    if a.reference:
                        head += " OpenBLAS-only ms |"
                        sep += "---:|"
                    print(head + " providers |\n" + sep + "---|")
                    header_done = True
                row = f"| {name} | {b} | {t} | {ref:.1f} | {got:.1f} | {got / ref:.2f} |"
                if a.reference:
                    rv, _ = nnkit_forward(a, path, b, t, ("--providers", "-dnnl"))
                    row += f" {float(rv['median_ms']):.1f} |"
                shown = ", ".join(f"{k}={v}" for k, v in sorted(prov.items())
                                  if v not in ("containers", "misc", "activations"))
                print(row + f" {shown} |", flush=True)
                rows.append((name, b, t, got))

    r18 = paths.get("resnet18") or next(iter(paths.values()), None)
    if r18:
        # A hook un-fuses its module's group (ENGINE.md, "Fusion") and sees
        # plain values, so the results of hooked oneDNN steps are not left
        # in their blocked layout ("Memory"): the hooks' own cost is against
        # the plan with neither; the fused, laid-out one is shown too.
        # Three interleaved rounds, the best median of each: one process's
        # median still swings by several per cent on this kind of VM.
        unfused = dict(nn_env(), NN_FUSE="off", NN_DNNL_LAYOUT="off")
        meds = {"plain": [], "hooked": [], "fused": []}
        for _ in range(3):
            for key, extra, env in (("plain", (), unfused), ("hooked", ("--hooks",), None),
                                    ("fused", (), None)):
                out, _ = nnkit_forward(a, r18, 1, 1, extra, env=env)
                meds[key].append(float(out["median_ms"]))
        p, h, f = (min(meds[k]) for k in ("plain", "hooked", "fused"))
        print(f"\nHooks (no-op pre + forward hook on every module), {os.path.basename(r18)} batch 1, "
              f"1 thread, best of 3 interleaved medians: unfused plain plan {p:.2f} ms -> hooked {h:.2f} ms, overhead {100 * (h - p) / p:+.1f}% "
              f"(against the fused laid-out plan, {f:.2f} ms: {100 * (h - f) / f:+.1f}%)")
        walls = []
        for i in range(a.warmup + a.repeat):
            t0 = time.perf_counter()
            run(["taskset", "-c", cores(1, "bench_engine"), a.nnctl, "--threads", "1", "run", r18,
                 "--random", "1,3,224,224"], env=nn_env(weights_cache=True))
            if i >= a.warmup:
                walls.append((time.perf_counter() - t0) * 1000.0)
        w = statistics.median(walls)
        print(f"nnctl run {os.path.basename(r18)} (whole process, 1 thread): {w:.1f} ms; forward alone "
              f"{p:.1f} ms; start-up and load {w - p:.1f} ms")
    steps, _ = keyed(run(["taskset", "-c", cores(1, "bench_engine"), a.bench, "steps", "--n", "1000",
                          "--threads", "1", "--repeat", str(a.repeat),
                          "--warmup", str(a.warmup)], env=nn_env()))
    print(f"Per-step overhead (Sequential of 1,000 Identity): "
          f"{float(steps['per_step_ns']):.0f} ns per module call")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
