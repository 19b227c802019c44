#!/usr/bin/python3
"""The floor under `nnctl run`'s whole-process time that nnkit cannot go below.

    /usr/bin/python3 bench/startup_floor.py [--build build] [--model DIR/resnet18.json]
                                            [--workdir DIR] [--runs 21]

`nnctl --threads 1 run MODEL --random 1,3,224,224` is one forward in a fresh
process.  Whatever nnkit does, that process pays for: starting and ending a
process that links libdnnl, bringing the model's weights into its address
space (the weights cache maps them from the page cache), creating oneDNN's
primitives (JIT) and executing them once.  This script measures each of
those without nnkit's code, all pinned to one CPU with taskset, medians of
--runs:

- `/bin/true`, and build/bench/nn-startup-floor alone and mapping the
  weights cache's entries that nnctl maps for the model (spawn, libdnnl's
  linking and engine, the pages' faults and unmapping, exit);
- build/bench/nn-startup-stack, which adds what the project's stack costs
  any nnkit process before nnkit's own code runs: linking GLib and
  json-glib, dlopen() of the plugin files nnctl loads for the model,
  parsing its descriptor, and (a second row) the cache entries' XXH3
  checksum;
- oneDNN's own timings of primitive creation and execution in nnctl's
  first forward (ONEDNN_VERBOSE=2);
- a steady forward (nn-bench forward) and the whole `nnctl run`.

nnctl runs with XDG_CACHE_HOME in the work directory: an untimed run fills
that weights cache, and the floor programs map the same entries.  It prints
both floors (each program's time + creation + execution) against the
engine issue's allowance, a steady forward + 15 ms.  Timing only; nothing
is asserted.  docs/ENGINE.md, "Start-up", has the figures.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_util import cores, cpu_model, keyed, process_medians, run  # noqa: E402


def wall_ms(argv, runs, env):
    """Median wall time of @argv in ms over @runs, after one untimed run."""
    return process_medians(argv, runs, env, "startup_floor")[0]


def onednn_ms(argv, runs, env):
    """Medians over @runs of the summed creation and execution times (ms)
    that oneDNN reports for every primitive of @argv's process."""
    creates, execs = [], []
    for _ in range(runs):
        out = run(argv, env=dict(env, ONEDNN_VERBOSE="2"))
        create = execute = 0.0
        for line in out.splitlines():
            fields = line.split(",")
            if len(fields) < 3 or fields[0] != "onednn_verbose":
                continue
            if fields[1].startswith("create:"):
                create += float(fields[-1])
            elif fields[1] == "exec":
                execute += float(fields[-1])
        creates.append(create)
        execs.append(execute)
    return statistics.median(creates), statistics.median(execs)


def loaded_plugins(argv, env):
    """The plugin files the core dlopen()s in @argv's process, in order,
    from the dynamic linker's own trace (LD_DEBUG=files)."""
    proc = subprocess.run(argv, capture_output=True, text=True, env=dict(env, LD_DEBUG="files"))
    if proc.returncode != 0:
        sys.exit("startup_floor: %s failed: %s" % (" ".join(argv), proc.stderr.strip()[-500:]))
    found = []
    for line in proc.stderr.splitlines():
        fields = line.split()
        # "file=/abs/nn-x.so [0];  dynamically loaded by .../libnnkit.so.2 [0]";
        # only the core's loads of plugin files, not its RTLD_NOLOAD probes
        # of a library by soname.
        if len(fields) >= 6 and fields[1].startswith("file=/") and "dynamically" in fields \
                and "libnnkit" in fields[-2]:
            path = fields[1][len("file="):]
            if path not in found:
                found.append(path)
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--model", default=None, help="a resnet18.json (exported if not given)")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--runs", type=int, default=21)
    a = ap.parse_args()
    if a.runs < 1:
        sys.exit("startup_floor: --runs must be at least 1")
    work = a.workdir or os.path.join(a.build, "bench-startup-floor")
    os.makedirs(work, exist_ok=True)
    model = a.model
    if not model:
        model = os.path.join(work, "resnet18.json")
        if not os.path.exists(model):
            subprocess.check_call([sys.executable, os.path.join(ROOT, "tools/torch2nn/torch2nn.py"),
                                   "resnet18", "-o", model])
    if not os.path.exists(model):
        sys.exit("startup_floor: %s: no such file" % model)
    floor = os.path.join(a.build, "bench", "nn-startup-floor")
    stack = os.path.join(a.build, "bench", "nn-startup-stack")
    bench = os.path.join(a.build, "bench", "nn-bench")
    nnctl = os.path.join(a.build, "tools", "nnctl", "nnctl")
    for exe in (floor, stack, bench, nnctl):
        if not os.access(exe, os.X_OK):
            sys.exit("startup_floor: %s: not built (oneDNN's bench programs need libdnnl-dev "
                     "and libxxhash-dev)" % exe)
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)  # as bench_engine.py: each OpenBLAS picks its own kernel
    env["XDG_CACHE_HOME"] = os.path.join(work, "cache")
    pin = ["taskset", "-c", cores(1, "startup_floor")]
    run_cmd = [nnctl, "--threads", "1", "run", model, "--random", "1,3,224,224", "--topk", "1"]

    # The first run fills the weights cache, emptied here so that it holds
    # this model's entries alone (what a later run maps), and, after a
    # rebuild, the plugin index, which loads every plugin once; the second
    # shows the plugins a run loads.
    cache = os.path.join(env["XDG_CACHE_HOME"], "nnkit", "dnnl-weights")
    shutil.rmtree(cache, ignore_errors=True)
    run(pin + run_cmd, env=env)
    plugins = loaded_plugins(pin + run_cmd, env)
    # Entries are "HASH.w"; "HASH.w.XXXXXX" is one being written.
    entries = sorted(os.path.join(cache, n) for n in os.listdir(cache)
                     if n.endswith(".w") and os.path.isfile(os.path.join(cache, n)))
    if not entries or not plugins:
        sys.exit("startup_floor: nnctl left no weights cache entries in %s or loaded no plugin"
                 % cache)
    stack_argv = [stack, "--descriptor", model] + ["--plugin=" + p for p in plugins]

    true_ms = wall_ms(pin + ["/bin/true"], a.runs, env)
    dnnl_ms = wall_ms(pin + [floor], a.runs, env)
    mapped_ms = wall_ms(pin + [floor] + entries, a.runs, env)
    stack_ms = wall_ms(pin + stack_argv + entries, a.runs, env)
    summed_ms = wall_ms(pin + stack_argv + ["--checksum"] + entries, a.runs, env)
    create_ms, exec_ms = onednn_ms(pin + run_cmd, min(a.runs, 9), env)
    steady = float(keyed(run(pin + [bench, "forward", model, "--shape", "1,3,224,224",
                                    "--threads", "1"], env=env))[0]["median_ms"])
    whole_ms = wall_ms(pin + run_cmd, a.runs, env)
    floor_ms = mapped_ms + create_ms + exec_ms
    stack_floor_ms = summed_ms + create_ms + exec_ms
    allowance = steady + 15

    size = sum(os.path.getsize(e) for e in entries) / 1e6
    print("# CPU %s, pinned to one CPU, medians of %d runs" % (cpu_model(), a.runs))
    print("| part | ms |\n|---|---:|")
    print("| a process (`/bin/true`) | %.1f |" % true_ms)
    print("| a process linking libdnnl, with its CPU engine | %.1f |" % dnnl_ms)
    print("| the same, mapping and reading the %d weights cache entries nnctl maps (%.1f MB) | %.1f |"
          % (len(entries), size, mapped_ms))
    print("| the same, also linking GLib and json-glib, dlopen() of the %d plugin files, "
          "parsing the descriptor | %.1f |" % (len(plugins), stack_ms))
    print("| the same, also the entries' XXH3 checksum | %.1f |" % summed_ms)
    print("| oneDNN's primitive creation in nnctl's first forward | %.1f |" % create_ms)
    print("| oneDNN's execution in nnctl's first forward | %.1f |" % exec_ms)
    print("| **floor**: libdnnl, the weights, creation, execution | **%.1f** |" % floor_ms)
    print("| **floor with the stack**: the same with GLib, json-glib, the plugins, "
          "the checksum | **%.1f** |" % stack_floor_ms)
    print("| steady forward (nn-bench forward) | %.1f |" % steady)
    print("| allowance: steady forward + 15 ms | %.1f |" % allowance)
    print("| `nnctl run`, whole process | %.1f |" % whole_ms)
    print("floor %+.1f ms against the allowance, floor with the stack %+.1f ms; "
          "nnctl run above the floor with the stack by %.1f ms"
          % (floor_ms - allowance, stack_floor_ms - allowance, whole_ms - stack_floor_ms))


if __name__ == "__main__":
    main()
