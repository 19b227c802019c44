"""Helpers for the nnctl tests: running nnctl, safetensors I/O, and a naive
reference forward of the tiny test model, all independent of nnkit."""

import atexit
import json
import math
import os
import random
import shutil
import struct
import subprocess
import tempfile
import unittest
from array import array

def nnctl_binary():
    return os.environ.get("NNCTL", "nnctl")


def valgrind_or_skip(case):
    """The valgrind to run nnctl under (scripts/deps.sh installs it); skips
    @case without one, and in a sanitizer build, whose own checks run."""
    valgrind = shutil.which("valgrind")
    if not valgrind:
        case.skipTest("valgrind is not installed")
    with open(shutil.which(nnctl_binary()) or nnctl_binary(), "rb") as f:
        exe = f.read()
    if b"__asan_init" in exe or b"__tsan_init" in exe:
        case.skipTest("a sanitizer build: its own checks run instead")
    return valgrind

SOURCE_ROOT = os.environ.get("NN_TEST_SOURCE_ROOT", ".")
BUILD_ROOT = os.environ.get("NN_TEST_BUILD_ROOT", ".")
FIXTURE_DIR = os.environ.get("NN_TEST_FIXTURE_DIR",
                             os.path.join(BUILD_ROOT, "tests", "fixtures"))
DATA_DIR = os.path.join(SOURCE_ROOT, "tests", "nnctl", "data")


# --- safetensors (format: 8-byte LE header length, JSON header, data) -----

def write_safetensors(path, tensors, metadata=None):
    """tensors: name -> (dtype 'F32'|'I64', shape list, flat list)."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, values) in tensors.items():
        blob = array("f" if dtype == "F32" else "q", values).tobytes()
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Returns name -> (dtype, shape, flat list), and the metadata dict."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        code = {"F32": "f", "I64": "q", "F64": "d"}[info["dtype"]]
        arr = array(code)
        arr.frombytes(data[base + a:base + b])
        out[name] = (info["dtype"], info["shape"], list(arr))
    return out, header.get("__metadata__", {})


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


# --- running nnctl ---------------------------------------------------------

class NnctlCase(unittest.TestCase):
    """Base class: a scratch directory and nnctl runners that check the
    exit code and the one-line error contract."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="nnctl-test-")
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def nnctl(self, *args, rc=0, env=None):
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        p = subprocess.run([nnctl_binary()] + [str(a) for a in args],
                           capture_output=True, text=True, env=full_env,
                           timeout=600)
        where = "nnctl " + " ".join(str(a) for a in args)
        self.assertEqual(p.returncode, rc,
                         f"{where}: exit {p.returncode}, expected {rc}\n"
                         f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        if rc == 0:
            self.assertEqual(p.stderr, "", f"{where}: unexpected stderr")
        else:
            lines = p.stderr.splitlines()
            self.assertEqual(len(lines), 1,
                             f"{where}: expected one error line, got:\n"
                             f"{p.stderr}")
            self.assertRegex(lines[0], r"^nnctl: [^:]+: .+",
                             f"{where}: error line format")
        return p.stdout, p.stderr.strip()

    def nnctl_json(self, *args, env=None):
        out, _ = self.nnctl(*args, "--json", env=env)
        return json.loads(out)

    def error(self, *args, rc=1, env=None):
        return self.nnctl(*args, rc=rc, env=env)[1]


# --- the tiny test model -------------------------------------------------

def tiny_descriptor():
    require_add_op()
    with open(os.path.join(DATA_DIR, "tiny.json")) as f:
        return json.load(f)


def walk_modules(node, path="", depth=0):
    """Pre-order (path, node, depth), as PyTorch's named_modules()."""
    yield path, node, depth
    for child in node.get("children", []):
        sub = child["name"] if not path else path + "." + child["name"]
        yield from walk_modules(child, sub, depth + 1)


def pair(v):
    return list(v) if isinstance(v, list) else [v, v]


def expected_tensors(node):
    """Own (name, shape, dtype, is_buffer) of a module node, from PyTorch's
    definitions of the layer types the tiny model uses."""
    t, c = node["type"], node.get("config", {})
    if t == "Conv2d":
        k = pair(c["kernel_size"])
        out = [("weight", [c["out_channels"], c["in_channels"] // c.get("groups", 1)] + k, "F32", False)]
        if c.get("bias", True):
            out.append(("bias", [c["out_channels"]], "F32", False))
        return out
    if t == "Linear":
        out = [("weight", [c["out_features"], c["in_features"]], "F32", False)]
        if c.get("bias", True):
            out.append(("bias", [c["out_features"]], "F32", False))
        return out
    if t == "BatchNorm2d":
        n = c["num_features"]
        return [("weight", [n], "F32", False), ("bias", [n], "F32", False),
                ("running_mean", [n], "F32", True), ("running_var", [n], "F32", True),
                ("num_batches_tracked", [], "I64", True)]
    return []


def state_dict_spec(desc):
    """[(key, shape, dtype, is_buffer)] in state_dict order."""
    out = []
    for path, node, _ in walk_modules(desc["model"]):
        for name, shape, dtype, buf in expected_tensors(node):
            out.append((path + "." + name if path else name, shape, dtype, buf))
    return out


def make_weights(desc, seed):
    """Deterministic random weights for every state_dict key."""
    rng = random.Random(seed)
    tensors = {}
    for key, shape, dtype, _ in state_dict_spec(desc):
        n = numel(shape)
        if dtype == "I64":
            vals = [0] * n
        elif key.endswith("running_var"):
            vals = [rng.uniform(0.5, 1.5) for _ in range(n)]
        else:
            vals = [rng.gauss(0, 0.5) for _ in range(n)]
        tensors[key] = (dtype, shape, vals)
    return tensors


_HAVE_ADD = None


def _plugins_have_add():
    p = subprocess.run([nnctl_binary(), "plugins", "add", "--json"],
                       capture_output=True, text=True, timeout=120)
    return p.returncode == 0


def require_add_op():
    """tiny.json's residual connection is a Graph op node "add", which the
    ops plugin provides (plugins/ops, a separate family).  Without it, the
    core tests' shim (tests/fixtures/fixture-add-shim.so) is put on
    NN_PLUGIN_PATH for every later nnctl run; without that either, the
    tiny tests are skipped, saying why."""
    global _HAVE_ADD
    if _HAVE_ADD is None:
        _HAVE_ADD = _plugins_have_add()
        shim = os.path.join(FIXTURE_DIR, "fixture-add-shim.so")
        if not _HAVE_ADD and os.path.exists(shim):
            shim_dir = tempfile.mkdtemp(prefix="nnctl-add-shim-")
            atexit.register(shutil.rmtree, shim_dir, True)
            shutil.copy(shim, shim_dir)
            os.environ["NN_PLUGIN_PATH"] = shim_dir
            _HAVE_ADD = _plugins_have_add()
    if not _HAVE_ADD:
        raise unittest.SkipTest("tiny.json needs an 'add' op: neither the ops "
                                "plugin nor the test shim is available")


def write_tiny(dirpath, seed=1, name="tiny"):
    """Copies tiny.json into @dirpath with seeded weights beside it.
    Returns (model path, weights dict)."""
    desc = tiny_descriptor()
    model = os.path.join(dirpath, name + ".json")
    with open(model, "w") as f:
        json.dump(desc, f, indent=1)
    weights = make_weights(desc, seed)
    write_safetensors(os.path.join(dirpath, name + ".safetensors"), weights)
    return model, weights


# --- naive reference forward (NCHW, nested lists) ------------------------

def _get(w, key):
    return w[key][2]


def conv2d(x, weight, bias, cin, cout, k, pad):
    n, h, wd = len(x), len(x[0][0]), len(x[0][0][0])
    out = []
    for b in range(n):
        planes = []
        for o in range(cout):
            plane = []
            for i in range(h):
                row = []
                for j in range(wd):
                    s = bias[o] if bias else 0.0
                    for c in range(cin):
                        for u in range(k):
                            for v in range(k):
                                ii, jj = i + u - pad, j + v - pad
                                if 0 <= ii < h and 0 <= jj < wd:
                                    s += x[b][c][ii][jj] * weight[((o * cin + c) * k + u) * k + v]
                    row.append(s)
                plane.append(row)
            planes.append(plane)
        out.append(planes)
    return out


def batchnorm(x, w, b, mean, var, eps=1e-5):
    return [[[[(v - mean[c]) / math.sqrt(var[c] + eps) * w[c] + b[c] for v in row]
              for row in plane] for c, plane in enumerate(img)] for img in x]


def relu4(x):
    return [[[[max(v, 0.0) for v in row] for row in plane] for plane in img] for img in x]


def add4(a, b):
    return [[[[p + q for p, q in zip(r1, r2)] for r1, r2 in zip(p1, p2)]
             for p1, p2 in zip(i1, i2)] for i1, i2 in zip(a, b)]


def linear(x, weight, bias, fin, fout):
    return [[sum(row[i] * weight[o * fin + i] for i in range(fin)) + bias[o]
             for o in range(fout)] for row in x]


def tiny_forward(x, w, out_features=3):
    """The tiny model's forward; returns (output, {path: activation})."""
    acts = {}
    h = conv2d(x, _get(w, "conv1.weight"), None, 1, 4, 3, 1)
    acts["conv1"] = h
    h = batchnorm(h, _get(w, "bn1.weight"), _get(w, "bn1.bias"),
                  _get(w, "bn1.running_mean"), _get(w, "bn1.running_var"))
    r = relu4(h)
    b = conv2d(r, _get(w, "block.0.weight"), _get(w, "block.0.bias"), 4, 4, 3, 1)
    acts["block.0"] = b
    b = relu4(b)
    acts["block"] = b
    h = relu4(add4(b, r))
    pooled = [[sum(sum(row) for row in plane) / (len(plane) * len(plane[0]))
               for plane in img] for img in h]
    z = linear(pooled, _get(w, "head.0.weight"), _get(w, "head.0.bias"), 4, 8)
    z = [[max(v, 0.0) for v in row] for row in z]
    z = linear(z, _get(w, "head.3.weight"), _get(w, "head.3.bias"), 8, out_features)
    return z, acts


def flatten(x):
    if isinstance(x, list):
        out = []
        for v in x:
            out.extend(flatten(v))
        return out
    return [x]


def nest(flat, shape):
    if len(shape) == 1:
        return list(flat[:shape[0]])
    step = numel(shape[1:])
    return [nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def file_bytes(path):
    with open(path, "rb") as f:
        return f.read()
