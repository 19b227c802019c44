#!/usr/bin/python3
"""Forward-pass benchmark: nnkit against PyTorch, in the same run.

    bench/bench_forward.py [--checker BUILD/tests/conformance/nn-conform]
                           [--models resnet18,alexnet,vgg11_bn,mobilenet_v2]
                           [--threads 1,2] [--repeat 9] [--warmup 3]

For each model: seeded random weights with randomised BatchNorm statistics
are exported with tools/torch2nn; one input (batch 1, 3x224x224) is timed
in PyTorch (torch.set_num_threads) and in nnkit (nn-conform --threads,
i.e. nn_set_num_threads), each the median of --repeat runs after --warmup
untimed ones, one process at a time; wall-clock and process CPU time
(all threads summed: the fair measure on a busy machine).  Then the peak RSS of nn-conform
loading resnet18, with and without one forward, next to the sum of its
weight bytes.  Prints a Markdown table (see BENCHMARKS.md).
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools", "torch2nn"))

import torch  # noqa: E402
import torchvision  # noqa: E402

import nnexport  # noqa: E402
from nnexport import safetensors_io  # noqa: E402


def build_model(name, seed=0):
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torchvision.models.get_model(name, weights=None)
    nnexport.randomize_batchnorm(model, torch.Generator().manual_seed(seed + 1))
    return model.eval()


def time_pytorch(model, x, threads, warmup, repeat):
    """Median wall-clock and process CPU milliseconds per forward."""
    torch.set_num_threads(threads)
    times, cpu = [], []
    with torch.no_grad():
        for i in range(warmup + repeat):
            c0, t0 = time.process_time(), time.perf_counter()
            model(x)
            t1, c1 = time.perf_counter(), time.process_time()
            if i >= warmup:
                times.append((t1 - t0) * 1000.0)
                cpu.append((c1 - c0) * 1000.0)
    return statistics.median(times), statistics.median(cpu)


def profile_pytorch(model, x, threads, runs):
    """Milliseconds per forward spent in each leaf module class."""
    torch.set_num_threads(threads)
    totals, starts, handles = {}, [], []

    def pre(mod, args):
        starts.append(time.perf_counter())

    def post(mod, args, out):
        name = type(mod).__name__
        totals[name] = totals.get(name, 0.0) + (time.perf_counter() - starts.pop()) * 1000.0

    for mod in model.modules():
        if not list(mod.children()):
            handles += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
    with torch.no_grad():
        for _ in range(runs):
            model(x)
    for h in handles:
        h.remove()
    return {k: v / runs for k, v in totals.items()}


def time_nnkit(checker, model_path, in_path, threads, warmup, repeat, profile=False):
    env = dict(os.environ)
    env.pop("NN_NUM_THREADS", None)  # the API call alone must set it
    proc = subprocess.run([checker, model_path, "--input", in_path, "--threads", str(threads),
                           "--warmup", str(warmup), "--repeat", str(repeat)]
                          + (["--profile"] if profile else []),
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"nn-conform failed: {proc.stderr.strip()}")
    values, prof = {}, {}
    for line in proc.stdout.splitlines():
        key, _, rest = line.partition(" ")
        if key == "profile":
            cls, ms, _ = rest.split()
            prof[cls] = float(ms)
        else:
            values[key] = rest
    if profile:
        return prof
    return float(values["median_times_ms"]), float(values["median_cpu_ms"])


def peak_rss_kib(cmd):
    """Runs nn-conform @cmd --print-rss and returns its peak resident set
    size in KiB.  It reads its own VmHWM: the child's ru_maxrss would
    include this Python process's pages, inherited up to exec."""
    proc = subprocess.run(cmd + ["--print-rss"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {proc.stderr.strip()}")
    for line in proc.stdout.splitlines():
        if line.startswith("peak_rss_kib "):
            return int(line.split()[1])
    raise RuntimeError(f"{cmd[0]} printed no peak_rss_kib (no /proc?)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checker", default=os.path.join(HERE, "..", "build", "tests",
                                                      "conformance", "nn-conform"))
    ap.add_argument("--models", default="resnet18,alexnet,vgg11_bn,mobilenet_v2")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--profile", action="store_true",
                    help="also print the time per leaf layer class, both sides")
    args = ap.parse_args()
    if args.repeat < 7:
        ap.error("--repeat must be at least 7")
    if not os.path.exists(args.checker):
        ap.error(f"{args.checker}: not found; build it (ninja -C BUILD) or pass --checker")
    threads = [int(t) for t in args.threads.split(",")]
    tmp = None
    workdir = args.workdir
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="nnkit-bench-")
        workdir = tmp.name
    os.makedirs(workdir, exist_ok=True)

    x = torch.randn(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(7))
    in_path = os.path.join(workdir, "input.safetensors")
    safetensors_io.write(in_path, {"x": x})

    print(f"# {platform.node()}: {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"input {list(x.shape)}, median of {args.repeat} after {args.warmup} warm-up, "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| model | threads | PyTorch ms | nnkit ms | nnkit / PyTorch | PyTorch CPU ms | nnkit CPU ms | CPU ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    weights = {}
    profiles = []
    for name in args.models.split(","):
        model = build_model(name)
        path = os.path.join(workdir, name + ".json")
        nnexport.export(model, path, input_shape=tuple(x.shape))
        weights[name] = (path, sum(t.numel() * t.element_size()
                                   for t in model.state_dict().values()))
        for t in threads:
            ref, ref_cpu = time_pytorch(model, x, t, args.warmup, args.repeat)
            got, got_cpu = time_nnkit(args.checker, path, in_path, t, args.warmup, args.repeat)
            print(f"| {name} | {t} | {ref:.1f} | {got:.1f} | {got / ref:.2f} | "
                  f"{ref_cpu:.1f} | {got_cpu:.1f} | {got_cpu / ref_cpu:.2f} |", flush=True)
            if args.profile:
                profiles.append((name, t, profile_pytorch(model, x, t, args.repeat),
                                 time_nnkit(args.checker, path, in_path, t, 1,
                                            args.repeat, profile=True)))
        del model

    for name, t, ref, got in profiles:
        print(f"\n| {name}, {t} thread(s): ms per forward in | PyTorch | nnkit | ratio |")
        print("|---|---:|---:|---:|")
        for cls in sorted(set(ref) | set(got), key=lambda c: -got.get(c, 0.0)):
            r, g = ref.get(cls, 0.0), got.get(cls, 0.0)
            print(f"| {cls} | {r:.2f} | {g:.2f} | {g / r if r else float('nan'):.2f} |")

    if "resnet18" in weights:
        path, nbytes = weights["resnet18"]
        load = peak_rss_kib([args.checker, path, "--threads", "1"])
        fwd = peak_rss_kib([args.checker, path, "--threads", "1", "--input", in_path])
        print("\n| resnet18, 1 thread | MiB |")
        print("|---|---:|")
        print(f"| sum of weight bytes (state_dict) | {nbytes / 2**20:.1f} |")
        print(f"| peak RSS, load only | {load / 1024:.1f} |")
        print(f"| peak RSS, load + one forward {list(x.shape)} | {fwd / 1024:.1f} |")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
