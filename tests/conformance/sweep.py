#!/usr/bin/python3
"""Exports every torchvision classifier whose weights are under 600 MB and
writes a table (model, export ok, max forward error, time) between the
markers in docs/TORCH2NN.md.  Not part of CI: it takes tens of minutes.

    sweep.py [--checker build/tests/conformance/nn-conform --nnctl build/tools/nnctl/nnctl]
             [--only a,b] [--no-write]

With --checker the forward error is nnkit's (nn-conform on the exported
model); without it, the descriptor is run by graph_interp (the exported
dataflow over PyTorch's own leaf layers), which checks the exporter alone.
Errors are max|nnkit - PyTorch| / max|PyTorch| at batch 1, 224x224 (or the
model's own size), on an input other than the export's.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "torch2nn"))
sys.path.insert(0, HERE)

import torch  # noqa: E402
import torchvision  # noqa: E402

import graph_interp  # noqa: E402
import nnexport  # noqa: E402
from nnexport import safetensors_io  # noqa: E402

MAX_BYTES = 600 * 1024 * 1024
BEGIN, END = "<!-- sweep:begin -->", "<!-- sweep:end -->"


def classifiers():
    out = []
    for name in torchvision.models.list_models(module=torchvision.models):
        weights = torchvision.models.get_model_weights(name)
        meta = next(iter(weights)).meta
        size = meta.get("min_size", (224, 224))
        if meta["num_params"] * 4 < MAX_BYTES:
            out.append((name, meta["num_params"], max(224, size[0])))
    return out


def forward_error(model, path, size, checker, workdir):
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(1, 3, size, size, generator=gen)
    with torch.no_grad():
        ref = model(x)
    if checker:
        inp, outp = os.path.join(workdir, "in.safetensors"), os.path.join(workdir, "out.safetensors")
        safetensors_io.write(inp, {"c.x": x})
        proc = subprocess.run([checker, path, "--inputs", inp, "--output", outp],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            return None, (proc.stderr.strip().splitlines() or ["failed"])[-1]
        got = safetensors_io.read(outp)[0]["c"]
    else:
        with open(path) as f:
            import json
            got = graph_interp.run(model, json.load(f), {"x": x})
    return (got - ref).abs().max().item() / max(ref.abs().max().item(), 1e-12), ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checker")
    ap.add_argument("--nnctl", help="check exports against this nnctl's plugins")
    ap.add_argument("--only")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("NN_NUM_THREADS", "2")))
    rows = []
    plugins = nnexport.Plugins.from_nnctl(args.nnctl) if args.nnctl else None
    models = classifiers()
    if args.only:
        keep = set(args.only.split(","))
        models = [m for m in models if m[0] in keep]
    for name, params, size in models:
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory() as d:
            torch.manual_seed(0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = torchvision.models.get_model(name, weights=None).eval()
            nnexport.randomize_batchnorm(model, torch.Generator().manual_seed(1))
            nnexport.randomize_zero_parameters(model, torch.Generator().manual_seed(2))
            path = os.path.join(d, "m.json")
            try:
                x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(3))
                nnexport.export(model, path, inputs={"x": x}, plugins=plugins)
                err, why = forward_error(model, path, size, args.checker, d)
                ok = "yes"
            except nnexport.ExportError as e:
                ok, err, why = "no", None, str(e)
            except Exception as e:  # a crash of ours is a result too
                ok, err, why = "no", None, f"internal error: {type(e).__name__}: {e}"
            if ok == "yes" and err is None:
                ok = "yes, nnkit fails"
        secs = time.monotonic() - t0
        cell = "" if err is None else f"{err:.2g}"
        rows.append((name, ok, cell, f"{secs:.0f} s", why.replace("|", "\\|")[:160]))
        print(" | ".join(rows[-1]), flush=True)
        if not args.no_write:
            # After every model, so that an interrupted sweep leaves its rows.
            write_table(rows, len(models), args.checker)
    return 0


def write_table(rows, total, checker):
    how = "nnkit (nn-conform)" if checker else "graph_interp (exported dataflow, PyTorch leaves)"
    done = "" if len(rows) == total else f" (sweep stopped after {len(rows)} of {total})"
    table = [f"Forward error measured by {how}; {sum(r[1] == 'yes' for r in rows)} of "
             f"{len(rows)} models export and run{done}.", "",
             "| model | export ok | max forward error (relative) | time | note |",
             "|---|---|---|---|---|"] + ["| " + " | ".join(r) + " |" for r in rows]
    doc = os.path.join(ROOT, "docs", "TORCH2NN.md")
    with open(doc) as f:
        text = f.read()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(doc, "w") as f:
        f.write(head + BEGIN + "\n" + "\n".join(table) + "\n" + END + tail)


if __name__ == "__main__":
    sys.exit(main())
