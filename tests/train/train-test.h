// Helpers shared by the training tests: running a reference script with
// python3/torch at test time and comparing tensors.
#pragma once

#include "nn-test.h"

#include <cmath>
#include <glib/gstdio.h>

extern "C" {
#include <nnkit/train.h>
}

namespace nntrain {

using namespace nntest;

// Runs /usr/bin/python3 @script with @args; returns "" on success, else
// why it could not run (the test then skips when torch is missing).
inline std::string run_python (const std::string &script,
                               std::vector<std::string> args, bool *no_torch)
{
  std::vector<const char *> argv = { "/usr/bin/python3", script.c_str () };
  for (auto &a : args) argv.push_back (a.c_str ());
  argv.push_back (nullptr);
  char *out = nullptr, *err = nullptr;
  int status = 0;
  GError *e = nullptr;
  *no_torch = false;
  if (!g_spawn_sync (nullptr, (char **) argv.data (), nullptr, G_SPAWN_DEFAULT,
                     nullptr, nullptr, &out, &err, &status, &e)) {
    std::string m = e->message;
    g_error_free (e);
    *no_torch = true;
    return "cannot run python3: " + m;
  }
  std::string errs = err ? err : "";
  g_free (out);
  g_free (err);
  if (g_spawn_check_wait_status (status, nullptr))
    return "";
  if (errs.find ("No module named 'torch'") != std::string::npos)
    *no_torch = true;
  return "python3 " + script + " failed: " + errs;
}

inline std::string tmp_dir ()
{
  char *d = g_dir_make_tmp ("nntrain-XXXXXX", nullptr);
  std::string s = d ? d : "/tmp";
  g_free (d);
  return s;
}

inline void remove_tree (const std::string &dir)
{
  GDir *d = g_dir_open (dir.c_str (), 0, nullptr);
  if (!d) return;
  const char *n;
  while ((n = g_dir_read_name (d)))
    g_remove ((dir + "/" + n).c_str ());
  g_dir_close (d);
  g_rmdir (dir.c_str ());
}

// Loads @name from @st in the file's own dtype (F32 or I64).
inline Tensor load (NnSafetensors *st, const std::string &name)
{
  NnShape s;
  const char *dt = nn_safetensors_get_info (st, name.c_str (), &s);
  if (!dt) return Tensor ();
  NnDType d = std::string (dt) == "I64" ? NN_DTYPE_I64 : NN_DTYPE_F32;
  GError *e = nullptr;
  NnTensor *t = nn_safetensors_get (st, name.c_str (), d, &e);
  EXPECT_TRUE (t) << (e ? e->message : "");
  if (e) g_error_free (e);
  // An owned, writable copy: the mapping is read-only.
  NnTensor *c = t ? nn_tensor_copy (t) : nullptr;
  if (t) nn_tensor_unref (t);
  return Tensor (c);
}

// Within 1e-4 relative; elements smaller than the tensor's root mean
// square (and than 0.1) are held to 1e-4 of that instead: a gradient
// summed over hundreds of positions that nearly cancel carries float32
// rounding of the size of its larger elements, in PyTorch as here.
inline ::testing::AssertionResult close (const NnTensor *got, const NnTensor *want,
                                         double rtol = 1e-4)
{
  if (!got) return ::testing::AssertionFailure () << "no tensor";
  if (!nn_shape_equal (&got->shape, &want->shape))
    return ::testing::AssertionFailure ()
           << "shape " << take (nn_shape_to_string (&got->shape)) << " != "
           << take (nn_shape_to_string (&want->shape));
  const float *a = nn_tensor_f32 (got), *b = nn_tensor_f32 (want);
  gint64 n = nn_tensor_numel (got);
  double sq = 0;
  for (gint64 i = 0; i < n; i++)
    sq += (double) b[i] * b[i];
  double floor = std::max (0.1, n ? std::sqrt (sq / (double) n) : 0.0);
  for (gint64 i = 0; i < n; i++) {
    double tol = rtol * std::max (std::fabs ((double) b[i]), floor);
    if (!(std::fabs ((double) a[i] - b[i]) <= tol) && !(std::isnan (a[i]) && std::isnan (b[i])))
      return ::testing::AssertionFailure () << "element " << i << ": " << a[i]
                                            << " != " << b[i];
  }
  return ::testing::AssertionSuccess ();
}

} // namespace nntrain
