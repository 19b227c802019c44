// core/plugin_probe.c and the file checks of plugin_load.c: plugins that
// segfault, abort, exit or hang while loading are probed in the
// nn-plugin-scanner helper, reported as broken and skipped, the others
// load; verdicts are cached per file; a FIFO named *.so never blocks.
#include "nn-test.h"

#include <csignal>
#include <glib/gstdio.h>
#include <map>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utime.h>

using namespace nntest;

namespace {

// A fresh cache directory for this process, set before GLib reads it.
struct ProbeEnv {
  std::string cache;
  ProbeEnv ()
  {
    g_autofree char *d = g_dir_make_tmp ("nnkit-probe-XXXXXX", nullptr);
    cache = d;
    g_setenv ("XDG_CACHE_HOME", d, TRUE);
    g_setenv ("NN_PLUGIN_PROBE_TIMEOUT", "5", TRUE);
    g_unsetenv ("NN_PLUGIN_PROBE");
  }
} probe_env;

std::string
crash_dir ()
{
  const char *f = g_getenv ("NN_TEST_FIXTURE_DIR");
  return std::string (f ? f : "tests/fixtures") + "/crash";
}

// path basename -> failure message, for one load of @dir.
std::map<std::string, std::string>
load_dir (NnRegistry *reg, const std::string &dir)
{
  nn_registry_add_path (reg, dir.c_str ());
  Error e;
  EXPECT_TRUE (nn_registry_load_default (reg, e.out ())) << e.message ();
  std::map<std::string, std::string> out;
  Array fails (nn_registry_get_failures (reg));
  for (guint i = 0; i < fails->len; i++) {
    auto *f = (NnPluginFailure *) fails->pdata[i];
    EXPECT_EQ (f->domain, NN_PLUGIN_ERROR);
    if (f->code == NN_PLUGIN_ERROR_CRASHED) {
      g_autofree char *base = g_path_get_basename (f->path);
      out[base] = f->message;
    }
  }
  return out;
}

bool
has_plugin (NnRegistry *reg, const char *name)
{
  Array list (nn_registry_list_plugins (reg));
  for (guint i = 0; i < list->len; i++)
    if (g_strcmp0 (((NnPluginInfo *) list->pdata[i])->name, name) == 0)
      return true;
  return false;
}

double
seconds_since (gint64 t0)
{
  return (g_get_monotonic_time () - t0) / 1e6;
}

TEST (PluginIsolation, MisbehavingPluginsAreReportedAndSkipped)
{
  Registry reg (nn_registry_new ());
  gint64 t0 = g_get_monotonic_time ();
  auto broken = load_dir (reg.get (), crash_dir ());
  // The hang costs one timeout; nothing else waits.
  EXPECT_LT (seconds_since (t0), 30.0);
  ASSERT_EQ (broken.size (), 4u);
  for (auto &b : broken)
    EXPECT_TRUE (contains (b.second, crash_dir () + "/" + b.first +
                           ": broken plugin, not loaded: it ")) << b.second;
  // Sanitizer builds report a segfault themselves and exit instead.
  EXPECT_TRUE (contains (broken["fixture-crash-segv-ctor.so"], "killed by signal 11") ||
               contains (broken["fixture-crash-segv-ctor.so"], "exit status"))
      << broken["fixture-crash-segv-ctor.so"];
  EXPECT_TRUE (contains (broken["fixture-crash-abort-init.so"], "killed by signal 6"))
      << broken["fixture-crash-abort-init.so"];
  EXPECT_TRUE (contains (broken["fixture-crash-exit-init.so"],
                         "ended the process while loading (exit status 3)"))
      << broken["fixture-crash-exit-init.so"];
  EXPECT_TRUE (contains (broken["fixture-crash-hang-init.so"],
                         "hung while loading (no answer within 5 s"))
      << broken["fixture-crash-hang-init.so"];
  // The well-behaved ones load, the built-in plugins included.
  EXPECT_TRUE (has_plugin (reg.get (), "fixture-crash-none"));
  Error e;
  EXPECT_NE (nn_registry_lookup_type (reg.get (), "Linear", e.out ()), nullptr) << e.message ();
}

TEST (PluginIsolation, VerdictsAreCachedPerFileAndRedoneWhenItChanges)
{
  {
    Registry warm (nn_registry_new ());
    load_dir (warm.get (), crash_dir ());
  }
  // Cached: no probe runs, so the hanging plugin costs no timeout.
  gint64 t0 = g_get_monotonic_time ();
  Registry again (nn_registry_new ());
  auto broken = load_dir (again.get (), crash_dir ());
  EXPECT_LT (seconds_since (t0), 3.0);
  EXPECT_EQ (broken.size (), 4u);
  std::string cache_dir = probe_env.cache + "/nnkit/plugin-probe";
  EXPECT_TRUE (g_file_test (cache_dir.c_str (), G_FILE_TEST_IS_DIR));

  // A copy of the hanging plugin with a new mtime is probed again.
  g_autofree char *dir = g_dir_make_tmp ("nnkit-probe-copy-XXXXXX", nullptr);
  std::string copy = std::string (dir) + "/fixture-crash-hang-init.so";
  g_autofree char *data = nullptr;
  gsize len = 0;
  ASSERT_TRUE (g_file_get_contents ((crash_dir () + "/fixture-crash-hang-init.so").c_str (),
                                    &data, &len, nullptr));
  ASSERT_TRUE (g_file_set_contents (copy.c_str (), data, len, nullptr));
  for (int round = 0; round < 2; round++) {
    if (round == 1) {
      struct utimbuf times = { 1000000000, 1000000000 };
      ASSERT_EQ (utime (copy.c_str (), &times), 0);
    }
    t0 = g_get_monotonic_time ();
    Registry fresh (nn_registry_new ());
    auto b = load_dir (fresh.get (), dir);
    EXPECT_EQ (b.size (), 1u);
    EXPECT_GE (seconds_since (t0), 4.9) << "round " << round;
    // And right after, from the cache.
    t0 = g_get_monotonic_time ();
    Registry cached (nn_registry_new ());
    EXPECT_EQ (load_dir (cached.get (), dir).size (), 1u);
    EXPECT_LT (seconds_since (t0), 3.0);
  }
  g_unlink (copy.c_str ());
  g_rmdir (dir);
}

TEST (PluginIsolation, ProbeCanBeDisabledForDebugging)
{
  // Without the probe the segfault happens in-process: in a child here.
  pid_t pid = fork ();
  ASSERT_GE (pid, 0);
  if (pid == 0) {
    g_setenv ("NN_PLUGIN_PROBE", "0", TRUE);
    NnRegistry *reg = nn_registry_new ();
    nn_registry_load_file (reg, (crash_dir () + "/fixture-crash-exit-init.so").c_str (),
                           nullptr);
    _exit (0);
  }
  int status = 0;
  ASSERT_EQ (waitpid (pid, &status, 0), pid);
  ASSERT_TRUE (WIFEXITED (status));
  EXPECT_EQ (WEXITSTATUS (status), 3);
}

TEST (PluginIsolation, FifoNamedLikeAPluginDoesNotBlock)
{
  g_autofree char *dir = g_dir_make_tmp ("nnkit-fifo-XXXXXX", nullptr);
  std::string fifo = std::string (dir) + "/x.so";
  ASSERT_EQ (mkfifo (fifo.c_str (), 0644), 0);
  alarm (60); // a blocking open would hang here; the alarm fails the test
  Registry reg (nn_registry_new ());
  Error e;
  EXPECT_FALSE (nn_registry_load_file (reg.get (), fifo.c_str (), e.out ()));
  alarm (0);
  EXPECT_TRUE (e.matches (NN_PLUGIN_ERROR, NN_PLUGIN_ERROR_NOT_A_PLUGIN)) << e.message ();
  EXPECT_TRUE (contains (e.message (), fifo + ": not a plugin: not a regular file"))
      << e.message ();
  // In a searched directory too, next to a good plugin.
  g_setenv ("NN_PLUGIN_PROBE", "0", TRUE);
  Registry reg2 (nn_registry_new ());
  nn_registry_add_path (reg2.get (), dir);
  alarm (60);
  EXPECT_TRUE (nn_registry_load_default (reg2.get (), e.out ())) << e.message ();
  alarm (0);
  g_unsetenv ("NN_PLUGIN_PROBE");
  EXPECT_NE (nn_registry_lookup_type (reg2.get (), "Linear", e.out ()), nullptr);
  g_unlink (fifo.c_str ());
  g_rmdir (dir);
}

}  // namespace
