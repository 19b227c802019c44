#!/usr/bin/python3
"""Sequence-model benchmark: nnkit against PyTorch, both pinned to the same cores.

    bench/bench_seq.py [--nnctl BUILD/tools/nnctl/nnctl]
                       [--models text_classifier,tiny_gpt,lstm_tagger]
                       [--batches 1,8] [--seq 128] [--threads 1,2]
                       [--repeat 9] [--warmup 3] [--smoke]

The models are the hand-written ones of tests/conformance/handwritten.py
(the conformance tests check they agree with PyTorch), built here at
benchmark sizes (BENCH_SIZES below) from a fixed seed and exported with
tools/torch2nn in the same run:
  text_classifier  int64 ids and a bool padding mask (about a quarter of
                   each row padded), Embedding, 2-layer TransformerEncoder
                   (batch_first; PyTorch takes its nested-tensor path),
                   mean over tokens, Linear;
  tiny_gpt         GPT-style causal decoder: q, k, v split from one
                   Linear, tril mask buffer, GELU MLP, tied lm_head;
  lstm_tagger      Embedding, bidirectional 2-layer LSTM, Linear.
For each model, batch and thread count, PyTorch (a child process: eval,
no_grad, torch.set_num_threads) and nnkit (`nnctl --threads N run MODEL
--input X --repeat R`: one untimed call, then R timed ones) run one after
the other under `taskset -c` on the same first N allowed CPUs, on the same
inputs; the last column is nnkit's max|difference| from PyTorch's output
over max|PyTorch's output| (both sides did the same work).  Each figure is the median of --repeat (>= 9) timed runs; the
ratio is nnkit / PyTorch.  --smoke runs batch 1, 1 thread, 3 repeats at
small sizes to check the script works: its figures are not measurements.
No timing is asserted anywhere.
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
sys.path.insert(0, os.path.join(ROOT, "tests", "conformance"))

# Constructor keyword arguments per model, at benchmark and at smoke size.
BENCH_SIZES = {
    "text_classifier": dict(vocab=1000, d=256, heads=4, ff=1024, classes=4),
    "tiny_gpt": dict(vocab=1000, c=256, t=256, heads=4),
    "lstm_tagger": dict(vocab=1000, d=128, hidden=256, tags=17),
}
SMOKE_SIZES = {
    "text_classifier": dict(vocab=100, d=32, heads=4, ff=64, classes=4),
    "tiny_gpt": dict(vocab=100, c=32, t=32, heads=4),
    "lstm_tagger": dict(vocab=100, d=16, hidden=24, tags=7),
}
from bench_util import cores, cpu_model, run  # noqa: E402


def build(name, smoke, seed=0):
    """The model (eval) and its inputs(batch, seq) maker."""
    import torch
    import handwritten
    ctor, make, _ = handwritten.MODELS[name]
    torch.manual_seed(seed)
    kw = (SMOKE_SIZES if smoke else BENCH_SIZES)[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ctor(**kw).eval()
    vocab = kw["vocab"]
    return model, lambda batch, seq: handwritten.bench_inputs(name, batch, seq, vocab)


def torch_child(a):
    """Runs in the pinned child: prints the median forward milliseconds."""
    import torch
    torch.set_num_threads(a.threads)
    model, make = build(a.torch_child, a.smoke)
    x = make(a.batch, a.seq)
    times = []
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")   # the nested-tensor prototype warning
        for i in range(a.warmup + a.repeat):
            t0 = time.perf_counter()
            model(**x)
            if i >= a.warmup:
                times.append((time.perf_counter() - t0) * 1000.0)
    print(f"median_ms {statistics.median(times):.4f}")
    return 0






def nnkit_forward(a, path, in_path, out_path, threads):
    """Median milliseconds; the first (untimed) call's output goes to
    @out_path."""
    env = dict(os.environ)
    env.pop("NN_NUM_THREADS", None)   # --threads alone sets the count
    env.pop("NN_PROVIDERS", None)
    out = run(["taskset", "-c", cores(threads, "bench_seq"), a.nnctl, "--threads", str(threads),
               "run", path, "--input", in_path, "--output", out_path,
               "--repeat", str(a.repeat), "--json"], env=env)
    return float(json.loads(out)["median_ms"])


def pytorch_forward(a, name, batch, threads):
    out = run(["taskset", "-c", cores(threads, "bench_seq"), sys.executable, os.path.abspath(__file__),
               "--torch-child", name, "--batch", str(batch), "--seq", str(a.seq),
               "--threads", str(threads), "--repeat", str(a.repeat),
               "--warmup", str(a.warmup)] + (["--smoke"] if a.smoke else []))
    key, _, value = out.strip().partition(" ")
    if key != "median_ms":
        raise RuntimeError(f"PyTorch child printed {out!r}")
    return float(value)




def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nnctl", default=os.path.join(ROOT, "build", "tools", "nnctl", "nnctl"))
    ap.add_argument("--models", default="text_classifier,tiny_gpt,lstm_tagger")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--seq", type=int, default=128, help="tokens per row")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--warmup", type=int, default=3, help="untimed PyTorch runs first")
    ap.add_argument("--smoke", action="store_true",
                    help="small sizes, batch 1, 1 thread, 3 repeats: checks the script only")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--torch-child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    a = ap.parse_args()

    unknown = set(a.models.split(",")) - set(BENCH_SIZES)
    if unknown:
        ap.error(f"unknown model(s) {', '.join(sorted(unknown))}; "
                 f"known: {', '.join(BENCH_SIZES)}")
    if a.torch_child:
        a.threads = int(a.threads)
        return torch_child(a)
    if a.smoke:
        a.batches, a.threads, a.repeat, a.warmup, a.seq = "1", "1", 3, 1, 16
    if not a.smoke and a.repeat < 9:
        ap.error("--repeat must be at least 9 (or use --smoke)")
    if a.seq < 2:
        ap.error("--seq must be at least 2")
    if not os.path.exists(a.nnctl):
        ap.error(f"{a.nnctl}: not found; build it (ninja -C BUILD) or pass --nnctl")

    import torch
    import nnexport
    from nnexport import safetensors_io
    tmp = tempfile.TemporaryDirectory(prefix="nnkit-seq-bench-")
    workdir = a.workdir or tmp.name
    os.makedirs(workdir, exist_ok=True)
    threads = [int(t) for t in a.threads.split(",")]
    batches = [int(b) for b in a.batches.split(",")]

    print(f"# CPU {cpu_model()}, {len(os.sched_getaffinity(0))} CPUs allowed, "
          f"load average {os.getloadavg()[0]:.1f}, torch {torch.__version__}, "
          f"{a.seq} tokens per row, median of {a.repeat} (PyTorch after {a.warmup} "
          f"warm-up, nnkit after 1), both sides pinned with taskset"
          + (" -- SMOKE RUN, NOT A MEASUREMENT" if a.smoke else "") + "\n")
    print("| model | batch | threads | PyTorch ms | nnkit ms | nnkit / PyTorch | max rel. diff |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in a.models.split(","):
        model, make = build(name, a.smoke)
        path = os.path.join(workdir, name + ".json")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nnexport.export(model, path, inputs=make(1, a.seq))
        for b in batches:
            x = make(b, a.seq)
            in_path = os.path.join(workdir, f"{name}_b{b}.inputs.safetensors")
            out_path = os.path.join(workdir, f"{name}_b{b}.output.safetensors")
            safetensors_io.write(in_path, x)
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                want = model(**x)
            for t in threads:
                ref = pytorch_forward(a, name, b, t)
                got = nnkit_forward(a, path, in_path, out_path, t)
                # Same work on both sides: the outputs agree (to float noise).
                y = safetensors_io.read(out_path)[0]["output"]
                diff = ((y - want).abs().max() / want.abs().max().clamp(min=1e-12)).item()
                print(f"| {name} | {b} | {t} | {ref:.2f} | {got:.2f} | {got / ref:.2f} | "
                      f"{diff:.1e} |", flush=True)
        del model
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
