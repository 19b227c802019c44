"""Helpers shared by the bench scripts: pinning, running a child, the CPU's name."""

import os
import statistics
import subprocess
import sys
import time


def cores(n, who="bench"):
    """The first @n CPUs this process may use, as taskset -c wants them."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < n:
        raise SystemExit(f"{who}: {n} threads asked, {len(allowed)} CPUs allowed")
    return ",".join(str(c) for c in allowed[:n])


def run(cmd, env=None):
    """@cmd's stdout; a non-zero exit raises with its stderr."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip()}")
    return proc.stdout


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def keyed(out):
    """nn-bench's 'key value...' lines as a dict, and its 'provider TYPE
    PLUGIN' lines gathered into a second dict."""
    vals, prov = {}, {}
    for line in out.splitlines():
        key, _, rest = line.partition(" ")
        if key == "provider":
            t, _, p = rest.partition(" ")
            prov[t] = p
        else:
            vals[key] = rest
    return vals, prov


def process_medians(argv, runs, env, who="bench"):
    """Medians over @runs fresh processes of @argv, after one untimed run
    (which warms the page cache): wall time in ms, from time.monotonic()
    around the child, and peak RSS in MB, that child's own ru_maxrss from
    os.wait4().  A failing run ends the script with @who's message."""
    walls, rss = [], []
    for i in range(runs + 1):
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        proc.stderr.close()
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit("%s: %s failed: %s" % (who, " ".join(argv), err.decode(errors="replace").strip()))
        if i:
            walls.append(wall * 1000.0)
            rss.append(usage.ru_maxrss / 1024.0)
    return statistics.median(walls), statistics.median(rss)
