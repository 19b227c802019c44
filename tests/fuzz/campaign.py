#!/usr/bin/env python3
"""Runs a fuzzing campaign measured in CPU time, not wall time.

    tests/fuzz/campaign.py --build build-fuzz --corpora /var/tmp/nnkit-corpus \
        --lanes 2 descriptor=40 pth=35 safetensors=30

Each TARGET=MINUTES runs fuzz-TARGET until its process has used MINUTES of
CPU time (user + system, read from /proc), then stops it with SIGINT so
libFuzzer prints its final statistics.  libFuzzer's -max_total_time counts
wall time, which on a shared machine says little about how much fuzzing
was done; this script is how docs/FUZZING.md's campaign figures are taken.
A target paused with SIGSTOP (e.g. during a benchmark window) simply uses
no CPU while paused.

--lanes N runs N targets at a time, in the order given.  Corpora grow in
CORPORA/TARGET (kept between campaigns); the committed seeds in
tests/fuzz/corpus/TARGET are read but never written.  Findings land in
CORPORA/art-TARGET-*.  The summary table (Markdown) is printed at the end
and written to CORPORA/campaign-<start time>.md.  The exit status is 1 if
any target found something (a crash, leak, timeout or OOM), else 0.
"""
import argparse
import datetime
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """CPU time of a running process (user + system), with that of its
    children it has waited for, or None once gone.  LeakSanitizer's leak
    checks run in a forked tracer: most of fuzz-descriptor's CPU time."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # Fields after the command: utime, stime, cutime, cstime are the 12th
    # to the 15th, as wait4's rusage counts them at the end.
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


def parse_budget(text):
    name, sep, minutes = text.partition("=")
    if not sep or not re.fullmatch(r"[a-z_]+", name):
        raise argparse.ArgumentTypeError(
            f"expected TARGET=MINUTES, found '{text}'")
    try:
        value = float(minutes)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{name}: expected a number of CPU minutes, found '{minutes}'")
    if not value > 0:
        raise argparse.ArgumentTypeError(
            f"{name}: expected a positive number of CPU minutes, found {value}")
    return name, value


class Run:
    def __init__(self, args, name, minutes):
        self.name, self.budget = name, minutes * 60
        exe = os.path.join(args.build, "tests", "fuzz", "fuzz-" + name)
        if not os.access(exe, os.X_OK):
            sys.exit(f"campaign.py: {exe}: no such fuzz target "
                     f"(build with -Dfuzzing=true first)")
        seeds = os.path.join(HERE, "corpus", name)
        if not os.path.isdir(seeds):
            sys.exit(f"campaign.py: {seeds}: no seed corpus for '{name}'")
        self.corpus = os.path.join(args.corpora, name)
        os.makedirs(self.corpus, exist_ok=True)
        self.log = os.path.join(args.corpora, f"log-{name}-{args.stamp}.txt")
        cmd = [exe, "-timeout=60", "-rss_limit_mb=2048", "-max_len=65536",
               "-print_final_stats=1",
               "-artifact_prefix=" + os.path.join(args.corpora,
                                                  f"art-{name}-"),
               self.corpus, seeds]
        env = dict(os.environ)
        # Impossible sizes must reach nnkit's own error path, not ASan's
        # abort; NN_PLUGIN_PATH= keeps the build's plugins only.
        env.setdefault("ASAN_OPTIONS", "allocator_may_return_null=1")
        env["NN_PLUGIN_PATH"] = ""
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen(
            ["nice", "-n", str(args.nice)] + cmd, stdout=self.logf,
            stderr=subprocess.STDOUT, cwd=args.corpora, env=env)
        self.cpu = 0.0
        self.started = time.time()

    def poll(self):
        """True once the process has ended (on its own or stopped by us)."""
        used = cpu_seconds(self.proc.pid)
        if used is not None:
            self.cpu = used
        # wait4 rather than Popen.poll: its rusage is the exact CPU total.
        pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
        if pid:
            self.proc.returncode = os.waitstatus_to_exitcode(status)
            self.cpu = usage.ru_utime + usage.ru_stime
            return True
        if self.cpu >= self.budget:
            self.proc.send_signal(signal.SIGINT)
            # A paused (SIGSTOP) process must run to act on the SIGINT.
            self.proc.send_signal(signal.SIGCONT)
        return False

    def finish(self):
        if self.proc.returncode is None:
            _, status, usage = os.wait4(self.proc.pid, 0)
            self.proc.returncode = os.waitstatus_to_exitcode(status)
            self.cpu = usage.ru_utime + usage.ru_stime
        self.logf.close()
        with open(self.log, errors="replace") as f:
            text = f.read()
        stats = dict(re.findall(r"stat::(\w+):\s+(\d+)", text))
        cov = re.findall(r"cov: (\d+)", text)
        findings = sorted(f for f in os.listdir(os.path.dirname(self.log))
                          if f.startswith(f"art-{self.name}-")
                          and os.path.getmtime(os.path.join(
                              os.path.dirname(self.log), f)) >= self.started)
        crashed = re.search(r"ERROR: (AddressSanitizer|LeakSanitizer|"
                            r"UndefinedBehaviorSanitizer|libFuzzer)", text)
        return {
            "target": self.name,
            "cpu": self.cpu,
            "execs": int(stats.get("number_of_executed_units", 0)),
            "cov": int(cov[-1]) if cov else 0,
            "corpus": len(os.listdir(self.corpus)),
            "findings": findings,
            "failed": bool(crashed) or bool(findings),
        }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build-fuzz",
                    help="meson build directory with -Dfuzzing=true")
    ap.add_argument("--corpora", default="/var/tmp/nnkit-corpus",
                    help="where corpora, logs and findings are kept")
    ap.add_argument("--lanes", type=int, default=1,
                    help="targets run at a time (default 1)")
    ap.add_argument("--nice", type=int, default=10,
                    help="nice level of the fuzzers (default 10)")
    ap.add_argument("budgets", nargs="+", type=parse_budget,
                    metavar="TARGET=MINUTES")
    args = ap.parse_args()
    if args.lanes < 1:
        ap.error(f"--lanes: expected at least 1, found {args.lanes}")
    args.build = os.path.abspath(args.build)
    args.corpora = os.path.abspath(args.corpora)
    os.makedirs(args.corpora, exist_ok=True)
    args.stamp = datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%S")

    pending, running, done = list(args.budgets), [], []
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    # A shell starts background jobs with SIGINT ignored; Ctrl-C or kill
    # -INT must still end the campaign with its table.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        while pending or running:
            while pending and len(running) < args.lanes and not stop:
                running.append(Run(args, *pending.pop(0)))
            if stop:
                for r in running:
                    r.budget = 0
                pending = []
            for r in list(running):
                if r.poll():
                    done.append(r.finish())
                    running.remove(r)
                    print(f"{r.name}: {done[-1]['cpu'] / 60:.1f} CPU-min, "
                          f"{done[-1]['execs']:,} executions", flush=True)
            time.sleep(1)
    except KeyboardInterrupt:
        for r in running:
            r.proc.send_signal(signal.SIGINT)
            r.proc.send_signal(signal.SIGCONT)
        for r in running:
            done.append(r.finish())

    lines = ["| target | CPU time | executions | coverage (edges) | "
             "corpus | findings |", "|---|---:|---:|---:|---:|---|"]
    for d in done:
        lines.append(f"| `fuzz-{d['target']}` | {d['cpu'] / 60:.1f} min | "
                     f"{d['execs']:,} | {d['cov']:,} | {d['corpus']:,} | "
                     f"{', '.join(d['findings']) or 'none'} |")
    table = "\n".join(lines) + "\n"
    with open(os.path.join(args.corpora,
                           f"campaign-{args.stamp}.md"), "w") as f:
        f.write(table)
    print(table, end="")
    return 1 if any(d["failed"] for d in done) else 0


if __name__ == "__main__":
    sys.exit(main())
