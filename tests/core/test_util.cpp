// Tests for core/util.c: Python float text, edit distance, atomic writes.
#include "nn-test.h"

#include <glib/gstdio.h>
#include <sys/stat.h>

using namespace nntest;

// util.c's private helpers are reached through the public functions that
// use them: atomic writes through nn_descriptor_save_file().
static Module
tiny (NnRegistry *reg)
{
  return Module (nn_descriptor_load_module_data (reg, R"({"type": "ReLU"})", -1, "t", nullptr));
}

TEST (Util, FloatTextMatchesPythonRepr)
{
  // Pairs of (value, Python's repr(value)) as printed by CPython 3.11.
  struct { double v; const char *py; } cases[] = {
    { 1e-05, "1e-05" }, { 0.1, "0.1" }, { 1.0, "1.0" }, { 1e16, "1e+16" },
    { 123456789012345.0, "123456789012345.0" }, { 0.0001, "0.0001" },
    { 1e-07, "1e-07" }, { -2.5, "-2.5" }, { 0.001, "0.001" }, { 3.0, "3.0" },
    { 1e22, "1e+22" }, { 1.0 / 3.0, "0.3333333333333333" }, { 100.0, "100.0" },
    { -0.0, "-0.0" },
  };
  for (auto &c : cases)
    EXPECT_EQ (take (nn_format_py_float (c.v)), c.py);
}

TEST (Util, AtomicWriteReplacesWholeFile)
{
  g_autofree char *dir = g_dir_make_tmp ("nnkit-util-XXXXXX", nullptr);
  g_autofree char *path = g_build_filename (dir, "out.txt", nullptr);
  Error e;
  Registry reg = default_registry ();
  Module m = tiny (reg.get ());
  ASSERT_TRUE (g_file_set_contents (path, "a much longer previous content than the new one", -1, nullptr));
  ASSERT_TRUE (nn_descriptor_save_file (m.get (), path, e.out ())) << e.message ();
  g_autofree char *got = nullptr;
  ASSERT_TRUE (g_file_get_contents (path, &got, nullptr, nullptr));
  EXPECT_EQ (std::string (got), take (nn_descriptor_to_data (m.get (), nullptr)));
  g_unlink (path);
  g_rmdir (dir);
}

TEST (Util, AtomicWriteFailureLeavesNoTrace)
{
  g_autofree char *dir = g_dir_make_tmp ("nnkit-util-XXXXXX", nullptr);
  g_autofree char *missing = g_build_filename (dir, "no-such-dir", "out.txt", nullptr);
  Error e;
  Registry reg = default_registry ();
  Module m = tiny (reg.get ());
  EXPECT_FALSE (nn_descriptor_save_file (m.get (), missing, e.out ()));
  EXPECT_TRUE (e.matches (NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_IO));
  EXPECT_NE (e.message ().find (missing), std::string::npos) << e.message ();

  // A destination that is a directory is refused; no temp file stays.
  g_autofree char *target = g_build_filename (dir, "target", nullptr);
  g_mkdir (target, 0755);
  EXPECT_FALSE (nn_descriptor_save_file (m.get (), target, e.out ()));
  EXPECT_NE (e.message ().find ("it is a directory"), std::string::npos) << e.message ();
  GDir *d = g_dir_open (dir, 0, nullptr);
  int entries = 0;
  while (g_dir_read_name (d))
    entries++;
  g_dir_close (d);
  EXPECT_EQ (entries, 1) << "temporary file left behind";
  g_rmdir (target);
  g_rmdir (dir);
}
