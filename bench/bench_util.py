"""Helpers shared by the bench scripts: pinning, running a child, the CPU's name."""

import os
import subprocess


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
