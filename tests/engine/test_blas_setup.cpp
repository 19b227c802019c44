// Tests for core/blas_setup.c.  Each case runs engine-check in a fresh
// process (the decision is once per process) and then loads the real
// OpenBLAS there, so the kernel it reports shows the override took.
// NN_BLAS_PROBE_CORENAME plays a CPU that OpenBLAS does not know.
#include "engine-test.h"

#include <glib/gstdio.h>

extern "C" {
#include <nnkit/blas.h>
}

using namespace nnengine;

static std::string
lower (const std::string &s)
{
  char *l = g_ascii_strdown (s.c_str (), -1);
  std::string r (l);
  g_free (l);
  return r;
}

// OpenBLAS kernels by instruction level, from OpenBLAS's dynamic.c; the
// reference the core's table is checked against.
static int
level_of (const std::string &k)
{
  static const std::map<std::string, int> levels = {
    { "prescott", 1 }, { "core2", 1 }, { "penryn", 1 }, { "nehalem", 2 },
    { "sandybridge", 3 }, { "haswell", 4 }, { "zen", 4 }, { "skylakex", 5 },
    { "cooperlake", 6 },
  };
  auto it = levels.find (lower (k));
  return it == levels.end () ? -1 : it->second;
}

// The best kernel for this CPU as Linux describes it.
static std::string
expected_best (const std::set<std::string> &f)
{
  bool avx512 = f.count ("avx512f") && f.count ("avx512cd") && f.count ("avx512dq")
                && f.count ("avx512bw") && f.count ("avx512vl");
  if (avx512 && f.count ("avx512_bf16")) return "Cooperlake";
  if (avx512) return "SkylakeX";
  if (f.count ("avx2") && f.count ("fma")) return "Haswell";
  if (f.count ("avx")) return "Sandybridge";
  if (f.count ("sse4_2")) return "Nehalem";
  if (f.count ("pni")) return "Prescott";
  return "generic";
}

static int
count (const std::string &hay, const std::string &needle)
{
  int n = 0;
  for (auto p = hay.find (needle); p != std::string::npos; p = hay.find (needle, p + 1))
    n++;
  return n;
}

TEST (BlasSetup, BestKernelFollowsTheCpu)
{
  CheckRun r = run_check ("blas", { "OPENBLAS_CORETYPE=Haswell" });
  ASSERT_EQ (0, r.status) << r.err;
  EXPECT_EQ (expected_best (linux_cpu_flags ()), r.kv["best"]);
}

TEST (BlasSetup, RealProbeEndsOnTheCpusLevel)
{
  CheckRun r = run_check ("blas", {}, { "OPENBLAS_CORETYPE", "NN_BLAS_PROBE_CORENAME" });
  ASSERT_EQ (0, r.status) << r.err;
  int setup = std::stoi (r.kv["setup"]);
  EXPECT_TRUE (setup == NN_BLAS_DEFAULT_OK || setup == NN_BLAS_OVERRIDDEN) << r.kv["describe"];
  EXPECT_EQ (level_of (expected_best (linux_cpu_flags ())), level_of (r.kv["loaded"]))
    << "loaded " << r.kv["loaded"];
  EXPECT_EQ ("", r.err);
}

TEST (BlasSetup, WeakDefaultIsOverriddenBeforeLoading)
{
  std::string best = expected_best (linux_cpu_flags ());
  if (level_of (best) <= 1)
    GTEST_SKIP () << "nothing beats Prescott on this CPU";
  CheckRun r = run_check ("blas", { "NN_BLAS_PROBE_CORENAME=Prescott" }, { "OPENBLAS_CORETYPE" });
  ASSERT_EQ (0, r.status) << r.err;
  EXPECT_EQ (NN_BLAS_OVERRIDDEN, std::stoi (r.kv["setup"]));
  EXPECT_EQ (best, r.kv["coretype"]);
  EXPECT_EQ (lower (best), lower (r.kv["loaded"]));
  EXPECT_NE (std::string::npos, r.kv["describe"].find ("OPENBLAS_CORETYPE=" + best + " set by nnkit"))
    << r.kv["describe"];
  EXPECT_NE (std::string::npos, r.kv["describe"].find ("'Prescott'")) << r.kv["describe"];
}

TEST (BlasSetup, DisabledCpuFeatureLowersTheOverride)
{
  auto f = linux_cpu_flags ();
  if (!f.count ("avx512f") || !f.count ("avx2") || !f.count ("fma"))
    GTEST_SKIP () << "needs AVX-512 and AVX2";
  CheckRun r = run_check ("blas", { "NN_BLAS_PROBE_CORENAME=Prescott", "NN_CPU_DISABLE=avx512f" },
                     { "OPENBLAS_CORETYPE" });
  ASSERT_EQ (0, r.status) << r.err;
  EXPECT_EQ ("Haswell", r.kv["coretype"]);
  EXPECT_EQ ("haswell", lower (r.kv["loaded"]));
}

TEST (BlasSetup, UserCoretypeIsRespected)
{
  CheckRun r = run_check ("blas", { "OPENBLAS_CORETYPE=Sandybridge", "NN_BLAS_PROBE_CORENAME=Prescott" });
  ASSERT_EQ (0, r.status) << r.err;
  EXPECT_EQ (NN_BLAS_USER_SET, std::stoi (r.kv["setup"]));
  EXPECT_EQ ("Sandybridge", r.kv["coretype"]);
  EXPECT_EQ ("sandybridge", lower (r.kv["loaded"]));
  EXPECT_NE (std::string::npos, r.kv["describe"].find ("set by the user")) << r.kv["describe"];
}

TEST (BlasSetup, EmptyUserCoretypeIsRespected)
{
  CheckRun r = run_check ("blas", { "OPENBLAS_CORETYPE=", "NN_BLAS_PROBE_CORENAME=Prescott" });
  ASSERT_EQ (0, r.status) << r.err;
  EXPECT_EQ (NN_BLAS_USER_SET, std::stoi (r.kv["setup"]));
  EXPECT_EQ ("", r.kv["coretype"]);
}

TEST (BlasSetup, UnknownKernelNameIsLeftAlone)
{
  CheckRun r = run_check ("blas", { "NN_BLAS_PROBE_CORENAME=Quantum9000" }, { "OPENBLAS_CORETYPE" });
  ASSERT_EQ (0, r.status) << r.err;
  EXPECT_EQ (NN_BLAS_DEFAULT_OK, std::stoi (r.kv["setup"]));
  EXPECT_EQ ("(unset)", r.kv["coretype"]);
}

TEST (BlasSetup, MissingProbeWarnsOnce)
{
  CheckRun r = run_check ("blas", { "NN_BLAS_PROBE=/nonexistent/nnkit-blas-probe" },
                     { "OPENBLAS_CORETYPE", "NN_BLAS_PROBE_CORENAME" });
  ASSERT_EQ (0, r.status) << r.err;
  EXPECT_EQ (NN_BLAS_UNKNOWN, std::stoi (r.kv["setup"]));
  EXPECT_EQ ("(unset)", r.kv["coretype"]);
  EXPECT_EQ (1, count (r.err, "nnkit: warning:")) << r.err;
  EXPECT_NE (std::string::npos, r.err.find ("/nonexistent/nnkit-blas-probe")) << r.err;
  EXPECT_NE (std::string::npos, r.kv["describe"].find ("warning")) << r.kv["describe"];
}

TEST (BlasSetup, OverrideThatDoesNotTakeIsReported)
{
  if (level_of (expected_best (linux_cpu_flags ())) <= 1)
    GTEST_SKIP () << "nothing beats Prescott on this CPU";
  // A probe that always answers Prescott: OpenBLAS "ignores" every override.
  char *dir = g_dir_make_tmp ("nnkit-blas-XXXXXX", nullptr);
  std::string script = std::string (dir) + "/probe.sh";
  ASSERT_TRUE (g_file_set_contents (script.c_str (), "#!/bin/sh\necho Prescott\n", -1, nullptr));
  g_chmod (script.c_str (), 0755);
  CheckRun r = run_check ("blas", { "NN_BLAS_PROBE=" + script }, { "OPENBLAS_CORETYPE", "NN_BLAS_PROBE_CORENAME" });
  g_unlink (script.c_str ());
  g_rmdir (dir);
  g_free (dir);
  ASSERT_EQ (0, r.status) << r.err;
  EXPECT_EQ (NN_BLAS_UNKNOWN, std::stoi (r.kv["setup"]));
  EXPECT_EQ ("(unset)", r.kv["coretype"]);
  EXPECT_EQ (1, count (r.err, "accepts no stronger")) << r.err;
}

TEST (BlasSetup, AlreadyLoadedWeakKernelWarnsOnce)
{
  std::string best = expected_best (linux_cpu_flags ());
  if (level_of (best) <= 1)
    GTEST_SKIP () << "nothing beats Prescott on this CPU";
  CheckRun r = run_check ("preloaded", {}, { "OPENBLAS_CORETYPE", "NN_BLAS_PROBE_CORENAME" });
  ASSERT_EQ (0, r.status) << r.err;
  EXPECT_EQ ("prescott", lower (r.kv["loaded"]));
  EXPECT_EQ (NN_BLAS_TOO_LATE, std::stoi (r.kv["setup"]));
  EXPECT_EQ (1, count (r.err, "nnkit: warning:")) << r.err;
  EXPECT_NE (std::string::npos, r.err.find ("OPENBLAS_CORETYPE=" + best)) << r.err;
}

// The probe's answer is remembered (core/blas_cache.c): a second process
// spawns no probe, and a change of the OpenBLAS file it named brings the
// probe back.  A probe that names no file is never remembered.
TEST (BlasSetup, ProbeAnswerIsCachedWhileOpenBlasIsUnchanged)
{
  std::string best = expected_best (linux_cpu_flags ());
  if (level_of (best) < 0)
    GTEST_SKIP () << "no OpenBLAS kernel for this CPU";
  char *d = g_dir_make_tmp ("nnkit-blas-cache-XXXXXX", nullptr);
  std::string dir = d;
  g_free (d);
  std::string runs = dir + "/runs", lib = dir + "/libfake-openblas.so";
  std::string probe = dir + "/probe.sh", bare = dir + "/bare.sh";
  ASSERT_TRUE (g_file_set_contents (lib.c_str (), "one", -1, nullptr));
  std::string text = "#!/bin/sh\necho run >> " + runs + "\necho " + best + "\necho " + lib + "\n";
  ASSERT_TRUE (g_file_set_contents (probe.c_str (), text.c_str (), -1, nullptr));
  text = "#!/bin/sh\necho run >> " + runs + "\necho " + best + "\n";
  ASSERT_TRUE (g_file_set_contents (bare.c_str (), text.c_str (), -1, nullptr));
  g_chmod (probe.c_str (), 0755);
  g_chmod (bare.c_str (), 0755);
  auto probe_runs = [&] () {
    char *t = nullptr;
    int n = g_file_get_contents (runs.c_str (), &t, nullptr, nullptr) ? count (t, "run") : 0;
    g_free (t);
    return n;
  };
  auto check = [&] (const std::string &script) {
    CheckRun r = run_check ("blas", { "NN_BLAS_PROBE=" + script, "XDG_CACHE_HOME=" + dir + "/cache" },
                            { "OPENBLAS_CORETYPE", "NN_BLAS_PROBE_CORENAME" });
    EXPECT_EQ (0, r.status) << r.err;
    EXPECT_EQ (NN_BLAS_DEFAULT_OK, std::stoi (r.kv["setup"])) << r.err;
    EXPECT_NE (std::string::npos, r.kv["describe"].find (best)) << r.kv["describe"];
  };

  check (probe);
  EXPECT_EQ (1, probe_runs ());
  check (probe);
  EXPECT_EQ (1, probe_runs ()) << "the second process should use the cached answer";
  ASSERT_TRUE (g_file_set_contents (lib.c_str (), "changed", -1, nullptr));
  check (probe);
  EXPECT_EQ (2, probe_runs ()) << "a changed OpenBLAS file must be probed again";
  check (probe);
  EXPECT_EQ (2, probe_runs ());
  check (bare);
  check (bare);
  EXPECT_EQ (4, probe_runs ()) << "an answer naming no OpenBLAS file is not remembered";

  char *argv[] = { (char *) "rm", (char *) "-rf", (char *) dir.c_str (), nullptr };
  g_spawn_sync (nullptr, argv, nullptr, G_SPAWN_SEARCH_PATH, nullptr, nullptr,
                nullptr, nullptr, nullptr, nullptr);
}

// OpenBLAS loads with one thread (no worker spinning at start-up); the
// BLAS plugins raise the count before their first product.
TEST (BlasSetup, OpenBlasLoadsWithOneThread)
{
  CheckRun r = run_check ("blas-threads", { "NN_NUM_THREADS=2" },
                          { "OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS" });
  ASSERT_EQ (0, r.status) << r.err;
  EXPECT_EQ ("1", r.kv["env"]);
  EXPECT_EQ ("1", r.kv["openblas_threads"]);
}

TEST (BlasSetup, UserOpenBlasThreadCountIsRespected)
{
  CheckRun r = run_check ("blas-threads", { "OPENBLAS_NUM_THREADS=2" }, { "GOTO_NUM_THREADS" });
  ASSERT_EQ (0, r.status) << r.err;
  EXPECT_EQ ("2", r.kv["env"]);
  EXPECT_EQ ("2", r.kv["openblas_threads"]);
  r = run_check ("blas-threads", { "GOTO_NUM_THREADS=2" }, { "OPENBLAS_NUM_THREADS" });
  ASSERT_EQ (0, r.status) << r.err;
  EXPECT_EQ ("(unset)", r.kv["env"]);
  EXPECT_EQ ("2", r.kv["openblas_threads"]);
}
