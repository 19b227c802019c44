"""nnctl's saves under failure: killed at random moments, onto devices,
symlinks, empty names and read-only modes, a save leaves the old pair, the
new pair, or a pair that fails to load naming the mismatch; never a silent
mix.  Independent of nnkit: files are compared byte for byte."""

import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
for a in list(sys.argv[1:]):
    if a.startswith("--nnctl="):
        os.environ["NNCTL"] = a.split("=", 1)[1]
        sys.argv.remove(a)

from nnctl_testlib import FIXTURE_DIR, NnctlCase, nnctl_binary, write_safetensors  # noqa: E402

DESC = {"format": "nnkit", "version": 1, "input_shape": [1, 64],
        "model": {"type": "Sequential", "children": [
            {"name": "fc0", "type": "Linear",
             "config": {"in_features": 64, "out_features": 256}},
            {"name": "act", "type": "ReLU"},
            {"name": "fc", "type": "Linear",
             "config": {"in_features": 256, "out_features": 256}}]}}


def head(seed):
    return json.dumps({"type": "Linear", "config": {"in_features": 256, "out_features": 256}})


def write_source(dirpath):
    rng = random.Random(5)
    with open(os.path.join(dirpath, "src.json"), "w") as f:
        json.dump(DESC, f)
    t = {}
    for name, (o, i) in (("fc0", (256, 64)), ("fc", (256, 256))):
        t[name + ".weight"] = ("F32", [o, i], [rng.uniform(-1, 1) for _ in range(o * i)])
        t[name + ".bias"] = ("F32", [o], [rng.uniform(-1, 1) for _ in range(o)])
    write_safetensors(os.path.join(dirpath, "src.safetensors"), t)


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


class TestKilledSaves(NnctlCase):
    RUNS = 200

    def replace_args(self, src, seed, out):
        return [nnctl_binary(), "-q", "replace", src, "fc", head(seed),
                "--seed", str(seed), "-o", out]

    def test_kill_at_random_moments_never_mixes_silently(self):
        write_source(self.tmp)
        src = self.path("src.json")
        # The two states a save alternates between, made without kills.
        states = {}
        for seed in (1, 2):
            ref = self.path(f"ref{seed}.json")
            self.nnctl("-q", "replace", src, "fc", head(seed), "--seed", seed, "-o", ref)
            states[seed] = (read(ref), read(self.path(f"ref{seed}.safetensors")))
        self.assertNotEqual(states[1][1], states[2][1])
        out, wout = self.path("out.json"), self.path("out.safetensors")
        self.nnctl("-q", "replace", src, "fc", head(1), "--seed", 1, "-o", out)
        t0 = time.monotonic()
        subprocess.run(self.replace_args(out, 2, out), check=True)
        span = max(time.monotonic() - t0, 0.005)
        self.nnctl("-q", "replace", src, "fc", head(1), "--seed", 1, "-o", out)

        rng = random.Random(2026)
        counts = {"old": 0, "new": 0, "mismatch named": 0}
        cur = 1
        for run in range(self.RUNS):
            new = 3 - cur
            p = subprocess.Popen(self.replace_args(out, new, out),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0, span * 1.1))
            p.send_signal(signal.SIGKILL)
            p.wait()
            pair = (read(out), read(wout))
            if pair == states[cur]:
                counts["old"] += 1
            elif pair == states[new]:
                counts["new"] += 1
                cur = new
            else:
                # Any other combination must be refused, naming the pair.
                which = [[k for k, v in states.items() if v[i] == pair[i]] for i in (0, 1)]
                print(f"run {run}: descriptor of state {which[0]}, weights of state {which[1]}",
                      file=sys.stderr)
                _, err = self.nnctl("get", out, "fc", rc=1)
                self.assertIn("is not the one saved with it", err)
                self.assertIn("out.safetensors", err)
                counts["mismatch named"] += 1
                if which[1] == [new]:
                    # Killed between the renames: the previous weights are
                    # still linked beside, and named.
                    prev = err.split("the weights saved with it are in ")[1].split(" (")[0]
                    self.assertEqual(read(prev), states[cur][1])
                    self.nnctl("get", out, "fc", "--weights", prev)
                self.nnctl("-q", "replace", src, "fc", head(1), "--seed", 1, "-o", out)
                cur = 1
            leftovers = [n for n in os.listdir(self.tmp)
                         if n.startswith("out.") and n not in ("out.json", "out.safetensors")]
            for n in leftovers:
                self.assertIn(".nnkit-tmp-", n)
        # The next complete save removes what killed saves left behind.
        self.nnctl("-q", "replace", src, "fc", head(1), "--seed", 1, "-o", out)
        self.assertEqual(sorted(n for n in os.listdir(self.tmp) if n.startswith("out")),
                         ["out.json", "out.safetensors"])
        self.assertEqual(sum(counts.values()), self.RUNS)
        print(f"\n{self.RUNS} kills: {counts}", file=sys.stderr)


class TestOutputs(NnctlCase):
    def setUp(self):
        super().setUp()
        write_source(self.tmp)
        self.src = self.path("src.json")

    def replace(self, out, rc=0):
        return self.nnctl("-q", "replace", self.src, "fc", head(1), "--seed", 1, "-o", out, rc=rc)

    def test_empty_output_is_refused_and_writes_nothing(self):
        before = sorted(os.listdir(self.tmp))
        cwd = os.getcwd()
        os.chdir(self.tmp)
        try:
            _, err = self.replace("", rc=1)
        finally:
            os.chdir(cwd)
        self.assertIn("not a file name", err)
        self.assertEqual(sorted(os.listdir(self.tmp)), before)

    def test_device_output_is_refused(self):
        _, err = self.replace("/dev/null", rc=1)
        self.assertIn("/dev/null: cannot replace: it is a character device", err)
        self.assertTrue(stat.S_ISCHR(os.stat("/dev/null").st_mode))
        self.assertFalse(os.path.exists("/dev/null.safetensors"))

    def test_symlinked_output_writes_the_target(self):
        os.mkdir(self.path("real"))
        os.symlink("real/m.json", self.path("m.json"))
        self.replace(self.path("m.json"))
        self.assertTrue(os.path.islink(self.path("m.json")))
        self.assertTrue(os.path.isfile(self.path("real", "m.json")))
        self.nnctl("get", self.path("m.json"), "fc")

    def test_in_place_save_keeps_the_mode(self):
        out = self.path("m.json")
        self.replace(out)
        os.chmod(out, 0o600)
        os.chmod(self.path("m.safetensors"), 0o600)
        self.nnctl("-q", "replace", out, "fc", head(2), "--seed", 2, "-o", out)
        self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(self.path("m.safetensors")).st_mode), 0o600)

    def test_out_of_range_float_is_refused_with_its_path(self):
        bad = '{"type": "LeakyReLU", "config": {"negative_slope": 1e999}}'
        _, err = self.nnctl("-q", "replace", self.src, "act",
                            '{"type": "Dropout", "config": {"p": 1e999}}',
                            "-o", self.path("x.json"), rc=1)
        self.assertIn("config.p: number 1e999 is out of range", err)
        self.assertFalse(os.path.exists(self.path("x.json")))

    def test_summary_of_an_uncountable_input_shape_is_an_error(self):
        desc = dict(DESC, input_shape=[2147483647, 2147483647, 2147483647])
        with open(self.path("huge.json"), "w") as f:
            json.dump(desc, f)
        err = self.error("summary", self.path("huge.json"))
        self.assertIn("input_shape [2147483647, 2147483647, 2147483647] has more elements "
                      "than 64-bit sizes can count", err)


class TestBrokenPlugins(NnctlCase):
    def test_crashing_plugins_are_listed_as_broken_and_the_rest_load(self):
        crash = os.path.join(FIXTURE_DIR, "crash")
        env = {"XDG_CACHE_HOME": self.path("cache"), "NN_PLUGIN_PROBE_TIMEOUT": "5"}
        out, _ = self.nnctl("-P", crash, "plugins", env=env)
        self.assertIn("4 plugins failed to load", out)
        for name in ("segv-ctor", "abort-init", "exit-init", "hang-init"):
            line = [l for l in out.splitlines() if f"fixture-crash-{name}.so" in l]
            self.assertEqual(len(line), 1, out)
            self.assertIn("broken plugin, not loaded", line[0])
        self.assertIn("fixture-crash-none", out)
        # Other commands go on working with the good plugins.
        write_source(self.tmp)
        self.nnctl("-P", crash, "show", self.path("src.json"), env=env)


if __name__ == "__main__":
    unittest.main(verbosity=2)
