#!/usr/bin/python3
"""Runs conformance.py's four checks on every torchvision classifier whose
weights are under 600 MB, and on the segmentation / FPN models of the
layers issue, and writes the results table between the markers in
docs/TORCH2NN.md.  Not part of CI: it takes hours on a shared machine.

    sweep.py --checker build/tests/conformance/nn-conform
             --nnctl build/tools/nnctl/nnctl
             [--only a,b] [--resume] [--stop-at HH:MM] [--results FILE]
             [--workdir DIR] [--timeout SECONDS] [--no-write]

Each model is one run of conformance.py (a subprocess, so that the checks
are exactly the CI's and a crash or a hang stays that model's row):
  1. print(model) text          -> "repr"
  2. state_dict keys and shapes -> "keys/shapes" (named_modules too)
  3. forward within 1e-4 of max|PyTorch| on every output leaf, at batch 1
     and 2 of the first size and batch 1 of the second -> "forward"
  4. nnkit's saved state_dict loaded by PyTorch with strict=True and
     equal to the original -> "round trip"
Its PASS/FAIL lines are parsed into per-check results, the relative error
max|nnkit - PyTorch| / max|PyTorch| of each case (worst leaf), the time and
the first failing detail.  Results are merged by model name into a JSON
file (default docs/sweep-results.json) after every model, so that an
interrupted sweep keeps its rows; --resume skips the models already there.
The table lists every model of the sweep; those without a result are
"not run (time)".
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))

import torch  # noqa: E402
import torchvision  # noqa: E402

MAX_BYTES = 600 * 1024 * 1024
BEGIN, END = "<!-- sweep:begin -->", "<!-- sweep:end -->"
CHECKS = ["export", "repr", "keys", "forward", "roundtrip"]
CHECK_TITLES = {"export": "export", "repr": "repr", "keys": "keys/shapes",
                "forward": "forward", "roundtrip": "round trip"}

# Models outside list_models' classifiers: dict outputs (segmentation),
# an OrderedDict output (FPN backbone), video and optical flow, as
# (row name, conformance.py case, sizes).  The FPN backbone's case is
# resnet_fpn_backbone(backbone_name="resnet18", ...) in conformance.py.
EXTRA_MODELS = [("fcn_resnet50", "fcn_resnet50", "224,160"),
                ("deeplabv3_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large", "224,160"),
                ("lraspp_mobilenet_v3_large", "lraspp_mobilenet_v3_large", "224,160"),
                ("resnet_fpn_backbone", "fpn:resnet18", "224,160"),
                ("deeplabv3_resnet50", "deeplabv3_resnet50", "224,160"),
                ("fcn_resnet101", "fcn_resnet101", "224,160"),
                # Video classifiers on [N, 3, T, H, W] clips (T below); S3D's
                # last pool needs 224 and 16 frames, MViT's position
                # embeddings fix 16x224x224.  RAFT's flow on two images: its
                # correlation pyramid's last level needs H / 64 >= 2.
                ("r3d_18", "r3d_18", "112,96"),
                ("mc3_18", "mc3_18", "112,96"),
                ("r2plus1d_18", "r2plus1d_18", "112,96"),
                ("s3d", "s3d", "224"),
                ("mvit_v1_b", "mvit_v1_b", "224"),
                ("mvit_v2_s", "mvit_v2_s", "224"),
                ("raft_small", "raft_small", "128,136"),
                ("raft_large", "raft_large", "128,136")]
# conformance.py options of a case beyond its sizes.
EXTRA_ARGS = {"r3d_18": ["--frames", "8"], "mc3_18": ["--frames", "8"],
              "r2plus1d_18": ["--frames", "8"], "s3d": ["--frames", "16"],
              "mvit_v1_b": ["--frames", "16"], "mvit_v2_s": ["--frames", "16"]}
# Models whose forward asserts one input size: checked at that size only.
FIXED_SIZE = ("vit_", "maxvit_")


def sweep_models():
    """[(name, params or None, sizes, case)]: EXTRA_MODELS, then the classifiers
    under MAX_BYTES, fewest parameters first (so that a sweep cut short has
    the most rows)."""
    out = []
    for name in torchvision.models.list_models(module=torchvision.models):
        meta = next(iter(torchvision.models.get_model_weights(name))).meta
        if meta["num_params"] * 4 >= MAX_BYTES:
            continue
        size = max(224, meta.get("min_size", (224, 224))[0])
        sizes = f"{size}" if name.startswith(FIXED_SIZE) else f"{size},160"
        out.append((name, meta["num_params"], sizes, name))
    out.sort(key=lambda m: (m[1], m[0]))
    return [(name, None, sizes, case) for name, case, sizes in EXTRA_MODELS] + out


def check_kind(what):
    """The sweep's check a conformance.py PASS/FAIL line belongs to."""
    if what.startswith("torch2nn exports"):
        return "export"
    if what.startswith("nn_module_to_string()"):
        return "repr"
    if what.startswith("named_modules"):
        return "keys"
    if what.startswith(("forward ", "nnkit loads and runs")):
        return "forward"
    if what.startswith(("saved state_dict", "PyTorch load_state_dict", "round-tripped")):
        return "roundtrip"
    return "other"


FORWARD_RE = re.compile(r"forward (b\d+_s\d+)\S*: max\|diff\| (\S+) <= \S+ \* (\S+)")
# The case is one word that may hold a colon itself (fpn:resnet18).
LINE_RE = re.compile(r"^(PASS|FAIL|XFAIL|XPASS[^:]*): \S+: (.*)$")


def parse_output(text):
    """(checks, errors, first_failure) from conformance.py's stdout:
    checks maps a kind to "ok"/"fail", errors a case (b1_s224) to its worst
    relative error, first_failure is the first FAIL line and its detail."""
    checks, errors, first = {}, {}, ""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("exported "):
            # conformance.py prints no PASS line for a successful export.
            checks.setdefault("export", "ok")
        m = LINE_RE.match(line)
        if not m:
            continue
        status, what = m.groups()
        kind = check_kind(what)
        ok = status == "PASS"
        if kind not in checks or not ok:
            checks[kind] = "ok" if ok else "fail"
        f = FORWARD_RE.match(what)
        if f:
            rel = float(f.group(2)) / max(float(f.group(3)), 1e-12)
            errors[f.group(1)] = max(errors.get(f.group(1), 0.0), rel)
        if not ok and not first:
            detail = []
            for nxt in lines[i + 1:]:
                if LINE_RE.match(nxt) or nxt.startswith(("exported ", "nn-conform ran")):
                    break
                detail.append(nxt.strip())
            first = (what + (": " + " ".join(d for d in detail if d) if detail else ""))
    return checks, errors, first


def run_model(name, case, sizes, args):
    """Runs conformance.py on @case; returns the result row of @name (a dict)."""
    workdir = os.path.join(args.workdir, case.replace(":", "_"))
    shutil.rmtree(workdir, ignore_errors=True)
    cmd = [sys.executable, os.path.join(HERE, "conformance.py"), case,
           "--checker", args.checker, "--workdir", workdir,
           "--sizes", sizes, "--batches", "1,2"] + EXTRA_ARGS.get(case, [])
    if args.nnctl:
        cmd += ["--nnctl", args.nnctl]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        stdout, stderr, code = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as e:
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        stderr, code = f"timed out after {args.timeout} s", None
    secs = time.monotonic() - t0
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    checks, errors, first = parse_output(stdout)
    if code == 77:
        status = "skip"
        first = first or (stdout.strip().splitlines() or ["skipped"])[-1]
    elif code == 0 and all(checks.get(k) == "ok" for k in CHECKS):
        status = "pass"
    else:
        status = "fail"
        if not first:
            # No FAIL line: a crash or a timeout; its last stderr line says why.
            tail = [l for l in stderr.strip().splitlines() if l.strip()]
            first = tail[-1].strip() if tail else f"exit status {code}"
            if code is None:
                first = stderr
    # A check conformance.py never got to (it stops at the first failure
    # that makes the rest meaningless) is "not reached", never "ok".
    for kind in CHECKS:
        checks.setdefault(kind, "not reached")
    return {"model": name, "case": case, "sizes": sizes, "status": status, "checks": checks,
            "errors": errors, "seconds": round(secs, 1), "exit": code,
            "detail": first[:600],
            "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")}


def load_results(path):
    if not os.path.exists(path):
        return {"rows": {}}
    with open(path) as f:
        return json.load(f)


def save_results(path, results):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fmt_err(errors, case):
    return "—" if case not in errors else f"{errors[case]:.1e}"


def table_row(name, params, sizes, row):
    pm = "" if params is None else f"{params / 1e6:.1f}"
    if row is None:
        return f"| {name} | {pm} | {sizes} | not run (time) |" + " |" * 7
    size_list = sizes.split(",")
    s0 = size_list[0]
    e_b1 = fmt_err(row["errors"], f"b1_s{s0}")
    e_b2 = fmt_err(row["errors"], f"b2_s{s0}")
    e_s2 = (fmt_err(row["errors"], f"b1_s{size_list[1]}") if len(size_list) > 1
            else "one size only")
    status = {"pass": "**pass**", "fail": "FAIL", "skip": "skipped"}[row["status"]]
    cells = [name, pm, sizes, status] + \
        [row["checks"][k] for k in ("repr", "keys")] + \
        [row["checks"]["forward"], f"{e_b1} / {e_b2} / {e_s2}",
         row["checks"]["roundtrip"], f"{row['seconds']:.0f} s",
         row["detail"].replace("|", "\\|").replace("\n", " ")[:200]]
    if row["checks"]["export"] == "fail":
        cells[4] = "export failed"
    return "| " + " | ".join(cells) + " |"


def write_table(models, results, command):
    rows = results["rows"]
    ran = [m for m in models if m[0] in rows]
    passed = [m for m in ran if rows[m[0]]["status"] == "pass"]
    per_check = {k: sum(rows[m[0]]["checks"].get(k) == "ok" for m in ran) for k in CHECKS}
    meta = results.get("meta", {})
    lines = [
        f"Command: `{command}`  ",
        f"Last run: {meta.get('date', '?')}, {meta.get('cpu', '?')} "
        f"({meta.get('cpus', '?')} CPUs shared with other jobs), "
        f"torch {meta.get('torch', '?')}, torchvision {meta.get('torchvision', '?')}.  ",
        f"**Totals: {len(passed)} of {len(models)} models pass all four checks; "
        f"{len(ran)} ran, {len(models) - len(ran)} not run (time).** "
        f"Per check, of the {len(ran)} run: " +
        ", ".join(f"{CHECK_TITLES[k]} {per_check[k]}" for k in CHECKS) + ".",
        "",
        "Errors are max\\|nnkit − PyTorch\\| / max\\|PyTorch\\| over the output "
        "leaves, for batch 1 / batch 2 at the first size / batch 1 at the second "
        "size (limit 1e-4). \"not reached\": conformance.py stopped before that "
        "check (the export or nnkit's load failed).",
        "",
        "| model | params (M) | sizes | result | repr | keys/shapes | forward | "
        "rel. error b1 / b2 / size 2 | round trip | time | first failure |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ] + [table_row(name, params, sizes, rows.get(name)) for name, params, sizes, _ in models]
    doc = os.path.join(ROOT, "docs", "TORCH2NN.md")
    with open(doc) as f:
        text = f.read()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(doc, "w") as f:
        f.write(head + BEGIN + "\n" + "\n".join(lines) + "\n" + END + tail)


def parse_stop_at(text):
    """--stop-at HH:MM (UTC) -> a datetime today or, if already past, tomorrow."""
    h, m = (int(v) for v in text.split(":"))
    now = datetime.datetime.utcnow()
    at = now.replace(hour=h, minute=m, second=0, microsecond=0)
    return at if at > now else at + datetime.timedelta(days=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checker", required=True, help="nn-conform binary")
    ap.add_argument("--nnctl", help="check exports against this nnctl's plugins")
    ap.add_argument("--only", help="comma-separated model names")
    ap.add_argument("--resume", action="store_true",
                    help="skip the models already in the results file")
    ap.add_argument("--results", default=os.path.join(ROOT, "docs", "sweep-results.json"))
    ap.add_argument("--workdir", default=os.path.join(ROOT, "build", "sweep"))
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per model")
    ap.add_argument("--stop-at", help="start no model after HH:MM UTC")
    ap.add_argument("--keep", action="store_true", help="keep each model's workdir")
    ap.add_argument("--no-write", action="store_true", help="leave docs/TORCH2NN.md alone")
    ap.add_argument("--table-only", action="store_true",
                    help="rewrite the table from the results file, run nothing")
    args = ap.parse_args()
    for path in (args.checker, args.nnctl):
        if path and not os.access(path, os.X_OK):
            ap.error(f"{path}: not an executable (build nnkit first)")
    command = "nice -n 10 /usr/bin/python3 tests/conformance/sweep.py " \
        "--checker build/tests/conformance/nn-conform --nnctl build/tools/nnctl/nnctl --resume"
    models = sweep_models()
    if args.only:
        keep = args.only.split(",")
        known = {m[0] for m in models}
        unknown = [k for k in keep if k not in known]
        if unknown:
            ap.error("not in the sweep: " + ", ".join(unknown))
        todo = [m for m in models if m[0] in keep]
    else:
        todo = models
    results = load_results(args.results)
    stop_at = parse_stop_at(args.stop_at) if args.stop_at else None
    if not args.table_only:
        results["meta"] = {
            "date": datetime.datetime.utcnow().strftime("%Y-%m-%d"),
            "cpu": cpu_name(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "torchvision": torchvision.__version__}
        os.makedirs(args.workdir, exist_ok=True)
        for name, params, sizes, case in todo:
            if args.resume and name in results["rows"]:
                continue
            if stop_at and datetime.datetime.utcnow() >= stop_at:
                print(f"stopping: it is past {args.stop_at} UTC", flush=True)
                break
            row = run_model(name, case, sizes, args)
            row["params"] = params
            results["rows"][name] = row
            save_results(args.results, results)
            print(f"{name}: {row['status']} {row['checks']} {row['errors']} "
                  f"{row['seconds']:.0f} s {row['detail'][:200]}", flush=True)
            if not args.no_write:
                write_table(models, results, command)
    if not args.no_write:
        write_table(models, results, command)
    return 0


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sys.exit(main())
