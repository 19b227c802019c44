#!/usr/bin/python3
"""Two nnkit builds against each other: `nn-bench forward` on the same
exported models, alternated in rounds, pinned to one core.

    bench/bench_ab.py --base OLD/build/bench/nn-bench --new NEW/build/bench/nn-bench
                      --models densenet121,convnext_tiny --workdir DIR
                      [--rounds 3] [--threads 1] [--shape 1,3,224,224]

DIR holds MODEL.json (and its weights), as bench_engine.py --workdir
leaves them.  Each round runs every model on the base build, then on the
new one (9 timed forwards after 3 warm-up each, `taskset -c` on the first
--threads allowed CPUs), so a slow spell of the machine falls on both;
each side's figure is the median of its rounds' medians.  Prints a
Markdown table with after / before.  A model a build cannot run shows
"failed" with the first line of its error.  No timing is asserted.
"""
import argparse
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_util import cores  # noqa: E402


def median_ms(exe, path, shape, threads):
    proc = subprocess.run(["taskset", "-c", cores(threads, "bench_ab"), exe, "forward", path,
                           "--shape", shape, "--threads", str(threads),
                           "--repeat", "9", "--warmup", "3"],
                          capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("median_ms "):
            return float(line.split()[1]), None
    return None, (proc.stderr.strip().splitlines() or ["no output"])[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="the old build's nn-bench")
    ap.add_argument("--new", required=True, help="the new build's nn-bench")
    ap.add_argument("--models", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--shape", default="1,3,224,224")
    a = ap.parse_args()
    if a.rounds < 1:
        ap.error(f"--rounds: expected N >= 1, found {a.rounds}")
    for exe in (a.base, a.new):
        if not os.access(exe, os.X_OK):
            ap.error(f"{exe}: not an executable nn-bench")
    models = a.models.split(",")
    for m in models:
        if not os.path.exists(os.path.join(a.workdir, m + ".json")):
            ap.error(f"{os.path.join(a.workdir, m + '.json')}: not found (export it first, "
                     "e.g. with bench_engine.py --workdir)")
    times = {(m, side): [] for m in models for side in ("base", "new")}
    errors = {}
    for _ in range(a.rounds):
        for m in models:
            path = os.path.join(a.workdir, m + ".json")
            for side, exe in (("base", a.base), ("new", a.new)):
                ms, err = median_ms(exe, path, a.shape, a.threads)
                if ms is None:
                    errors[(m, side)] = err
                else:
                    times[(m, side)].append(ms)
    print(f"| model | before ms | after ms | after / before |  ({a.threads} thread(s), "
          f"{a.shape}, median of {a.rounds} alternating rounds)")
    print("|---|---:|---:|---:|")
    for m in models:
        cells = []
        for side in ("base", "new"):
            t = times[(m, side)]
            cells.append(statistics.median(t) if t else None)
        shown = [f"{c:.1f}" if c is not None else "failed: " + errors.get((m, s), "")
                 for c, s in zip(cells, ("base", "new"))]
        ratio = f"{cells[1] / cells[0]:.2f}" if None not in cells else "-"
        print(f"| {m} | {shown[0]} | {shown[1]} | {ratio} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
