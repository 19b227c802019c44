"""A small safetensors reader and writer (the format, not the package).

Layout: an 8-byte little-endian header length N, N bytes of JSON
({"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets"}}),
then the tensor bytes.  Debian 12 ships no python safetensors package, and
the format is simple enough to own.
"""

import json
import os
import struct
import tempfile

import numpy as np
import torch

_TORCH_TO_ST = {
    torch.float32: "F32",
    torch.float64: "F64",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
_ST_TO_TORCH = {v: k for k, v in _TORCH_TO_ST.items()}
_ST_SIZE = {"F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I8": 1,
            "U8": 1, "BOOL": 1}
# numpy's little-endian spelling of each dtype but BF16 (numpy has none).
_ST_NUMPY = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8", "I32": "<i4",
             "I8": "i1", "U8": "u1", "BOOL": "?"}
# Same cap as the reference implementation and nnkit's reader.
MAX_HEADER = 100 * 1024 * 1024


class SafetensorsError(Exception):
    """A safetensors file that cannot be written or read; names the file."""


def _tensor_bytes(t):
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        # numpy has no bfloat16: move the raw 16-bit words instead.
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    return t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()


def atomic_write_bytes(path, chunks):
    """Writes @chunks to @path through a temp file in the same directory and
    a rename, so a failure never leaves a truncated @path behind."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        # mkstemp creates 0600; give the file the mode open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write(path, tensors, metadata=None):
    """Writes @tensors (an ordered mapping name -> torch.Tensor) to @path,
    in the mapping's order, with optional string @metadata."""
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise SafetensorsError(
                    f"{path}: __metadata__ must map str to str, got {k!r}")
        header["__metadata__"] = dict(metadata)
    blobs = []
    offset = 0
    for name, t in tensors.items():
        if name == "__metadata__":
            raise SafetensorsError(f"{path}: tensor name '__metadata__' is reserved")
        dtype = _TORCH_TO_ST.get(t.dtype)
        if dtype is None:
            raise SafetensorsError(
                f"{path}: tensor '{name}' has dtype {t.dtype}; supported: "
                + ", ".join(str(d) for d in _TORCH_TO_ST))
        data = _tensor_bytes(t)
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # Pad with spaces so the data starts 8-byte aligned (zero-copy mmap).
    text += b" " * ((8 - len(text) % 8) % 8)
    atomic_write_bytes(path, [struct.pack("<Q", len(text)), text] + blobs)


def read(path):
    """Reads @path.  Returns (tensors, metadata): an ordered dict name ->
    torch.Tensor in data-offset order, and the __metadata__ dict.  Every
    header field is validated; a bad file raises SafetensorsError."""
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as e:
        raise SafetensorsError(f"{path}: {e.strerror}") from e
    if len(blob) < 8:
        raise SafetensorsError(f"{path}: file is {len(blob)} bytes, shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > MAX_HEADER or 8 + n > len(blob):
        raise SafetensorsError(
            f"{path}: header length {n} does not fit the file size {len(blob)}")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{path}: header is not valid JSON: {e}") from e
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header is not a JSON object")
    metadata = header.pop("__metadata__", {}) or {}
    data = blob[8 + n:]
    entries = []
    for name, info in header.items():
        try:
            dtype = info["dtype"]
            shape = [int(d) for d in info["shape"]]
            begin, end = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError) as e:
            raise SafetensorsError(f"{path}: entry '{name}' is malformed: {e}") from e
        if dtype not in _ST_TO_TORCH:
            raise SafetensorsError(f"{path}: entry '{name}': unsupported dtype '{dtype}'")
        numel = 1
        for d in shape:
            if d < 0:
                raise SafetensorsError(f"{path}: entry '{name}': negative extent in {shape}")
            numel *= d
        if not 0 <= begin <= end <= len(data) or end - begin != numel * _ST_SIZE[dtype]:
            raise SafetensorsError(
                f"{path}: entry '{name}': offsets [{begin}, {end}] do not fit "
                f"shape {shape} x {dtype} in {len(data)} data bytes")
        entries.append((begin, end, name, dtype, shape))
    entries.sort()
    for prev, cur in zip(entries, entries[1:]):
        if cur[0] < prev[1]:
            raise SafetensorsError(f"{path}: entries '{prev[2]}' and '{cur[2]}' overlap")
    tensors = {}
    for begin, end, name, dtype, shape in entries:
        raw = bytearray(data[begin:end])
        if dtype == "BF16":
            t = torch.from_numpy(np.frombuffer(raw, dtype="<i2").copy()).view(torch.bfloat16)
        else:
            np_dtype = np.dtype(_ST_NUMPY[dtype])
            t = torch.from_numpy(np.frombuffer(raw, dtype=np_dtype).astype(np_dtype.newbyteorder("=")))
        tensors[name] = t.reshape(shape)
    return tensors, metadata
