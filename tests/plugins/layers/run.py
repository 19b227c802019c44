#!/usr/bin/env python3
"""Runs test_layers for one family: writes torch's reference cases into a
temporary directory, then runs the test binary on them.

Usage: run.py FAMILY TEST_BINARY [gtest args]
Exits 77 (meson's skip) when PyTorch is not installed."""
import os
import subprocess
import sys
import tempfile

try:
    import torch  # noqa: F401
except ImportError:
    print("python3-torch is not installed: skipped")
    sys.exit(77)

here = os.path.dirname(os.path.abspath(__file__))
family, binary = sys.argv[1], sys.argv[2]
with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([sys.executable, os.path.join(here, "reference.py"), family, tmp],
                   check=True)
    env = dict(os.environ, NN_LAYERS_CASES=tmp)
    sys.exit(subprocess.run([binary] + sys.argv[3:], env=env).returncode)
