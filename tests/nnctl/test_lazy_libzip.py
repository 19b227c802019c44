#!/usr/bin/python3
"""libzip is loaded on the first .pth read, not linked (core/pth_zip_load.c):
libnnkit and nnctl do not list it as NEEDED; a .pth still reads; with a
broken libzip first on LD_LIBRARY_PATH (an empty file, or a shared object
without libzip's functions) reading a .pth is one clear error naming the
file and libzip, while safetensors models load and run as before.  The
.pth is written here from the format (no torch needed)."""

import os
import random
import shutil
import struct
import sys
import unittest
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
LIBNNKIT = None
ZIP_SONAME = "libzip.so.4"
for _a in list(sys.argv[1:]):
    for _opt in ("--nnctl=", "--libnnkit=", "--zip-soname="):
        if _a.startswith(_opt):
            _v = _a[len(_opt):]
            if _opt == "--nnctl=":
                os.environ["NNCTL"] = _v
            elif _opt == "--libnnkit=":
                LIBNNKIT = _v
            else:
                ZIP_SONAME = _v
            sys.argv.remove(_a)

from nnctl_testlib import NnctlCase, FIXTURE_DIR, nnctl_binary, \
    read_safetensors, write_safetensors, write_tiny  # noqa: E402


# --- ELF: the DT_NEEDED entries of a shared object or executable ----------

SHT_DYNAMIC, DT_NULL, DT_NEEDED = 6, 0, 1


def elf_needed(path):
    """The DT_NEEDED names of @path, read from its section headers."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF":
        raise ValueError(f"{path}: not an ELF file")
    e = "<" if data[5] == 1 else ">"
    if data[4] == 2:  # ELFCLASS64
        (shoff,) = struct.unpack_from(e + "Q", data, 0x28)
        shentsize, shnum = struct.unpack_from(e + "HH", data, 0x3A)
        shdr, dyn = e + "IIQQQQIIQQ", e + "qQ"
    else:
        (shoff,) = struct.unpack_from(e + "I", data, 0x20)
        shentsize, shnum = struct.unpack_from(e + "HH", data, 0x2E)
        shdr, dyn = e + "IIIIIIIIII", e + "iI"
    # (name, type, flags, addr, offset, size, link, info, align, entsize)
    sections = [struct.unpack_from(shdr, data, shoff + i * shentsize)
                for i in range(shnum)]
    needed = []
    for s in sections:
        if s[1] != SHT_DYNAMIC:
            continue
        strtab_off = sections[s[6]][4]
        for off in range(s[4], s[4] + s[5], struct.calcsize(dyn)):
            tag, val = struct.unpack_from(dyn, data, off)
            if tag == DT_NULL:
                break
            if tag == DT_NEEDED:
                start = strtab_off + val
                needed.append(data[start:data.index(b"\0", start)].decode())
    return needed


class NotLinked(unittest.TestCase):

    def check_not_needed(self, path):
        needed = elf_needed(path)
        # The reader works: libnnkit and nnctl both link GLib.
        self.assertTrue(any(n.startswith("libglib-2.0.so") for n in needed),
                        f"{path}: NEEDED {needed}")
        self.assertFalse([n for n in needed if n.startswith("libzip.so")],
                         f"{path} links libzip (NEEDED {needed}); it is "
                         "to be dlopen()ed on the first .pth read")

    def test_libnnkit_does_not_need_libzip(self):
        if LIBNNKIT is None:
            self.skipTest("no --libnnkit=PATH given")
        self.check_not_needed(LIBNNKIT)

    def test_nnctl_does_not_need_libzip(self):
        self.check_not_needed(nnctl_binary())


# --- a torch.save archive, written from the format -------------------------

def _unicode(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _int(v):
    return b"J" + struct.pack("<i", v)


def write_pth(path, tensors):
    """tensors: name -> flat list of floats, saved as 1-D float32 tensors
    the way torch.save does: pickle protocol 2 in archive/data.pkl, one
    storage per tensor in archive/data/<key>, little-endian."""
    rebuild = b"ctorch._utils\n_rebuild_tensor_v2\n"
    ordered_dict = b"ccollections\nOrderedDict\n)R"
    pkl = b"\x80\x02}("
    members = {}
    for key, (name, values) in enumerate(tensors.items()):
        n = len(values)
        storage = (b"(" + _unicode("storage") + b"ctorch\nFloatStorage\n"
                   + _unicode(str(key)) + _unicode("cpu") + _int(n) + b"tQ")
        pkl += (_unicode(name) + rebuild + b"(" + storage + _int(0)
                + b"(" + _int(n) + b"t(" + _int(1) + b"t\x89" + ordered_dict
                + b"tR")
        members[f"archive/data/{key}"] = struct.pack(f"<{n}f", *values)
    pkl += b"u."
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", b"little")
        for member, data in members.items():
            z.writestr(member, data)
        z.writestr("archive/version", b"3\n")


TENSORS = {"fc.weight": [1.5, -2.0, 0.25, 8.0], "fc.bias": [-0.5]}


class LazyLibzip(NnctlCase):

    def setUp(self):
        super().setUp()
        self.pth = self.path("state.pth")
        write_pth(self.pth, TENSORS)

    def broken_libzip(self, kind):
        """LD_LIBRARY_PATH naming a directory whose libzip is @kind: 'empty'
        (dlopen fails) or 'stub' (a shared object with none of libzip's
        functions: a fixture plugin, renamed)."""
        d = self.path("lib-" + kind)
        os.mkdir(d)
        target = os.path.join(d, ZIP_SONAME)
        if kind == "empty":
            open(target, "wb").close()
        else:
            stub = os.path.join(FIXTURE_DIR, "fixture-good.so")
            if not os.path.exists(stub):
                self.skipTest(f"{stub} not built")
            shutil.copy(stub, target)
        old = os.environ.get("LD_LIBRARY_PATH")
        return {"LD_LIBRARY_PATH": d + (":" + old if old else "")}

    def test_pth_reads_with_libzip_loaded_on_first_use(self):
        out = self.path("out.safetensors")
        self.nnctl("convert", self.pth, "-o", out)
        got, _ = read_safetensors(out)
        self.assertEqual({k: v[2] for k, v in got.items()}, TENSORS)
        self.assertEqual({k: v[1] for k, v in got.items()},
                         {k: [len(v)] for k, v in TENSORS.items()})

    def test_broken_libzip_is_an_error_naming_the_file(self):
        whys = {"empty": "file too short", "stub": "undefined symbol: zip_"}
        for kind, why in whys.items():
            with self.subTest(libzip=kind):
                env = self.broken_libzip(kind)
                out = self.path(kind + ".safetensors")
                for args in (("convert", self.pth, "-o", out),
                             ("params", self.pth)):
                    err = self.error(*args, env=env)
                    self.assertIn(f"{self.pth}: cannot load {ZIP_SONAME} to "
                                  "read PyTorch checkpoints: ", err)
                    self.assertIn(why, err)
                self.assertFalse(os.path.exists(out))

    def test_safetensors_model_runs_without_libzip(self):
        model, _ = write_tiny(self.tmp, seed=4)
        shape = [1, 1, 8, 8]
        xin = self.path("x.safetensors")
        rng = random.Random(2)
        x = [rng.uniform(-1, 1) for _ in range(64)]
        write_safetensors(xin, {"x": ("F32", shape, x)})
        want, got = self.path("want.safetensors"), self.path("got.safetensors")
        self.nnctl("run", model, "--input", xin, "--output", want)
        for kind in ("empty", "stub"):
            with self.subTest(libzip=kind):
                env = self.broken_libzip(kind)
                self.nnctl("run", model, "--input", xin, "--output", got,
                           env=env)
                self.assertEqual(read_safetensors(got), read_safetensors(want))
                params = self.nnctl_json("params", model, env=env)
                self.assertTrue(params)


if __name__ == "__main__":
    unittest.main(verbosity=2)
