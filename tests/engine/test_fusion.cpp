// Fusion in the execution plan (core/fuse.c, docs/ENGINE.md "Fusion"):
// a fused plan gives what the unfused one gives (within 1e-5) and what
// PyTorch gives; a hook on a fused module un-fuses its group and sees
// exactly the unfused value; edits after a fused forward rebuild the folded
// weights; a recording tape and training mode are never fused.  The
// torch cases export their models at test time (fusion_models.py, seeded
// weights, randomised BatchNorm statistics) and skip without python3-torch;
// the descriptor cases compare with a reference computed in this file.
#include "nn-test.h"

#include <nnkit/train.h>
#include <nnkit/surgery.h>
#include <nnkit/providers.h>
#include <sys/wait.h>

#include <glib/gstdio.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

using namespace nntest;

namespace {

std::vector<float>
values (NnTensor *t)
{
  const float *d = nn_tensor_f32 (t);
  return std::vector<float> (d, d + nn_tensor_numel (t));
}

// Largest |a - b| / (1 + |b|): absolute near 0, relative for large values.
double
max_diff (const std::vector<float> &a, const std::vector<float> &b)
{
  if (a.size () != b.size ())
    return INFINITY;
  double m = 0;
  for (size_t i = 0; i < a.size (); i++) {
    double d = std::fabs ((double) a[i] - b[i]) / (1.0 + std::fabs ((double) b[i]));
    if (!(d <= m))
      m = std::isnan (d) ? INFINITY : d;
  }
  return m;
}

std::vector<float>
forward (NnModule *m, NnTensor *x)
{
  Error e;
  Tensor y (nn_module_forward (m, x, e.out ()));
  EXPECT_TRUE (y) << e.message ();
  return y ? values (y.get ()) : std::vector<float> ();
}

std::vector<std::string>
fusions (NnModule *m)
{
  g_auto (GStrv) f = nn_module_get_plan_fusions (m);
  std::vector<std::string> r;
  for (int i = 0; f && f[i]; i++)
    r.push_back (f[i]);
  return r;
}

bool
has (const std::vector<std::string> &v, const std::string &s)
{
  for (auto &x : v)
    if (x == s)
      return true;
  return false;
}

// The unfused result (fusion off, planned), then the fused one (the second
// planned forward: the first records).
struct Pair {
  std::vector<float> unfused, fused;
};

Pair
both (NnModule *m, NnTensor *x)
{
  Pair p;
  nn_engine_set_fusion (FALSE);
  nn_module_drop_plan (m);
  forward (m, x);
  p.unfused = forward (m, x);
  nn_engine_set_fusion (TRUE);
  nn_module_drop_plan (m);
  forward (m, x);
  p.fused = forward (m, x);
  return p;
}

// --- descriptor models, checked against code in this file -----------------

// conv (bias) -> bn -> relu6, then a linear -> relu tail in a Sequential.
const char *kConvBn = R"({"type": "Sequential", "children": [
  {"name": "conv", "type": "Conv2d", "config": {"in_channels": 2, "out_channels": 3,
     "kernel_size": 3, "padding": 1}},
  {"name": "bn", "type": "BatchNorm2d", "config": {"num_features": 3}},
  {"name": "act", "type": "ReLU6"},
  {"name": "flat", "type": "Flatten"},
  {"name": "fc", "type": "Linear", "config": {"in_features": 48, "out_features": 5}},
  {"name": "relu", "type": "ReLU"}]})";

Tensor
small_input ()
{
  return tensor_f32 ({ 2, 2, 4, 4 }, [] (gint64 i) {
    return (float) std::sin (0.7 * (double) i) * 2.0f;
  });
}

// Fills the BatchNorm's statistics and affine with values far from the
// identity, so folding it matters.
void
randomise_bn (NnModule *root, const char *bn, double shift)
{
  const char *names[] = { "weight", "bias", "running_mean", "running_var" };
  for (int k = 0; k < 4; k++) {
    std::string full = std::string (bn) + "." + names[k];
    NnTensor *t = nn_module_lookup_tensor (root, full.c_str (), nullptr);
    ASSERT_TRUE (t) << full;
    Tensor n (nn_tensor_copy (t));
    float *d = nn_tensor_f32 (n.get ());
    for (gint64 i = 0; i < nn_tensor_numel (n.get ()); i++)
      d[i] = k == 3 ? (float) (0.5 + 0.3 * i + shift)
                    : (float) (std::cos (1.3 * i + k + shift) * (k + 1) * 0.4);
    Error e;
    NnModule *owner = nn_module_lookup_path (root, bn, nullptr);
    ASSERT_TRUE (nn_module_set_tensor (owner, names[k], n.get (), e.out ())) << e.message ();
  }
}

// The reference: conv, bn (eval), relu6, flatten, linear, relu, computed
// here from the module's own tensors in double.
std::vector<float>
conv_bn_reference (NnModule *root, NnTensor *x)
{
  auto T = [&] (const char *n) {
    return nn_tensor_f32 (nn_module_lookup_tensor (root, n, nullptr));
  };
  const float *in = nn_tensor_f32 (x), *w = T ("conv.weight"), *cb = T ("conv.bias");
  const float *g = T ("bn.weight"), *be = T ("bn.bias"), *rm = T ("bn.running_mean"),
              *rv = T ("bn.running_var"), *fw = T ("fc.weight"), *fb = T ("fc.bias");
  std::vector<float> out;
  for (int n = 0; n < 2; n++) {
    std::vector<double> h (48);
    for (int o = 0; o < 3; o++)
      for (int y = 0; y < 4; y++)
        for (int xx = 0; xx < 4; xx++) {
          double acc = cb[o];
          for (int c = 0; c < 2; c++)
            for (int ky = 0; ky < 3; ky++)
              for (int kx = 0; kx < 3; kx++) {
                int iy = y + ky - 1, ix = xx + kx - 1;
                if (iy < 0 || iy >= 4 || ix < 0 || ix >= 4)
                  continue;
                acc += (double) in[((n * 2 + c) * 4 + iy) * 4 + ix]
                       * w[((o * 2 + c) * 3 + ky) * 3 + kx];
              }
          double v = (acc - rm[o]) / std::sqrt ((double) rv[o] + 1e-5) * g[o] + be[o];
          h[(o * 4 + y) * 4 + xx] = std::min (std::max (v, 0.0), 6.0);
        }
    for (int j = 0; j < 5; j++) {
      double acc = fb[j];
      for (int i = 0; i < 48; i++)
        acc += h[i] * fw[j * 48 + i];
      out.push_back ((float) std::max (acc, 0.0));
    }
  }
  return out;
}

// Each case runs on the default providers (oneDNN where the CPU has it:
// folded while reordering, eltwise post-ops) and on the reference ones
// (NN_PROVIDERS=-dnnl: the core's folded copies, the kernels' own loop).
void
use_providers (NnRegistry *reg, const char *rules)
{
  Error e;
  if (*rules) {
    ASSERT_TRUE (nn_registry_set_providers (reg, rules, e.out ())) << e.message ();
  }
}

struct ConvBn : ::testing::TestWithParam<const char *> {
  Registry reg = default_registry ();
  Module m;
  Tensor x = small_input ();
  void SetUp () override
  {
    use_providers (reg.get (), GetParam ());
    m = load_json (reg.get (), kConvBn);
    ASSERT_TRUE (m);
    nn_module_reset_parameters (m.get (), 7);
    randomise_bn (m.get (), "bn", 0.0);
  }
  void TearDown () override { nn_engine_set_fusion (TRUE); }
};

TEST_P (ConvBn, FusedAgreesWithUnfusedAndReference)
{
  guint64 version = nn_tensor_get_version (nn_module_lookup_tensor (m.get (), "conv.weight", nullptr));
  Pair p = both (m.get (), x.get ());
  auto ref = conv_bn_reference (m.get (), x.get ());
  EXPECT_LT (max_diff (p.unfused, ref), 1e-5);
  EXPECT_LT (max_diff (p.fused, p.unfused), 1e-5);
  auto f = fusions (m.get ());
  EXPECT_TRUE (has (f, "conv+bn+act")) << f.size ();
  EXPECT_TRUE (has (f, "fc+relu"));
  // The absorbed modules are still in the tree, their tensors untouched.
  EXPECT_TRUE (nn_module_lookup_path (m.get (), "bn", nullptr));
  EXPECT_EQ (nn_tensor_get_version (nn_module_lookup_tensor (m.get (), "conv.weight", nullptr)),
             version);
}

TEST_P (ConvBn, OffByApiAndEnvironmentName)
{
  nn_engine_set_fusion (FALSE);
  EXPECT_FALSE (nn_engine_get_fusion ());
  nn_module_drop_plan (m.get ());
  forward (m.get (), x.get ());
  forward (m.get (), x.get ());
  EXPECT_TRUE (fusions (m.get ()).empty ());
  nn_engine_set_fusion (TRUE);
  EXPECT_TRUE (nn_engine_get_fusion ());
}

// Captures the output of the module it is on.
gboolean
capture_hook (NnModule *, const char *, const NnValue *, const NnValue *,
              NnValue **output, gpointer user_data, GError **)
{
  auto *v = static_cast<std::vector<float> *> (user_data);
  *v = values (nn_value_get_tensor (*output));
  return TRUE;
}

TEST_P (ConvBn, HookOnAbsorbedModuleUnfusesItsGroupAndSeesTheUnfusedValue)
{
  for (const char *target : { "bn", "act", "conv" }) {
    SCOPED_TRACE (target);
    std::vector<float> unfused_cap, fused_cap;
    NnModule *t = nn_module_lookup_path (m.get (), target, nullptr);
    Error e;
    nn_engine_set_fusion (FALSE);
    nn_module_drop_plan (m.get ());
    NnHookHandle *h = nn_module_add_forward_hook (t, capture_hook, &unfused_cap, nullptr,
                                                  "cap", 0, e.out ());
    ASSERT_TRUE (h) << e.message ();
    auto y_unfused = forward (m.get (), x.get ());
    nn_hook_handle_remove (h);
    nn_hook_handle_free (h);

    // A fused plan first; the hook registered afterwards un-fuses.
    nn_engine_set_fusion (TRUE);
    nn_module_drop_plan (m.get ());
    forward (m.get (), x.get ());
    forward (m.get (), x.get ());
    ASSERT_TRUE (has (fusions (m.get ()), "conv+bn+act"));
    h = nn_module_add_forward_hook (t, capture_hook, &fused_cap, nullptr, "cap", 0, e.out ());
    ASSERT_TRUE (h) << e.message ();
    auto y = forward (m.get (), x.get ());
    EXPECT_FALSE (has (fusions (m.get ()), "conv+bn+act"));
    EXPECT_TRUE (has (fusions (m.get ()), "fc+relu"));  // other groups stay fused
    ASSERT_FALSE (fused_cap.empty ());
    EXPECT_EQ (fused_cap, unfused_cap);
    EXPECT_LT (max_diff (y, y_unfused), 1e-5);
    nn_hook_handle_remove (h);
    nn_hook_handle_free (h);
    forward (m.get (), x.get ());
    EXPECT_TRUE (has (fusions (m.get ()), "conv+bn+act"));  // fused again
  }
}

gboolean
count_pre (NnModule *, const char *, NnValue **, NnValue **, gpointer user_data, GError **)
{
  ++*static_cast<int *> (user_data);
  return TRUE;
}

TEST_P (ConvBn, GlobalHookUnfusesEverything)
{
  both (m.get (), x.get ());
  int calls = 0;
  NnHookHandle *h = nn_add_global_pre_hook (count_pre, &calls, nullptr, "count", 0);
  ASSERT_TRUE (h);
  forward (m.get (), x.get ());
  EXPECT_TRUE (fusions (m.get ()).empty ());
  EXPECT_EQ (calls, 7);  // the root and its six children, each seen
  nn_hook_handle_remove (h);
  nn_hook_handle_free (h);
}

TEST_P (ConvBn, EditsAfterAFusedForwardRebuildTheFoldedWeights)
{
  both (m.get (), x.get ());
  auto before = forward (m.get (), x.get ());

  // set_tensor (what load_state_dict does per tensor): a new stamp.
  randomise_bn (m.get (), "bn", 0.9);
  auto after = forward (m.get (), x.get ());  // records the new plan
  auto ref = conv_bn_reference (m.get (), x.get ());
  EXPECT_GT (max_diff (after, before), 1e-3);
  EXPECT_LT (max_diff (after, ref), 1e-5);
  after = forward (m.get (), x.get ());  // fused with the new fold
  EXPECT_TRUE (has (fusions (m.get ()), "conv+bn+act")) << "the rebuilt plan fuses again";
  EXPECT_LT (max_diff (after, ref), 1e-5);

  // An in-place write with a version bump (an optimiser step) on the
  // producer's weight and on the BatchNorm's statistics.
  for (const char *name : { "conv.weight", "bn.running_var", "bn.weight" }) {
    SCOPED_TRACE (name);
    NnTensor *t = nn_module_lookup_tensor (m.get (), name, nullptr);
    for (gint64 i = 0; i < nn_tensor_numel (t); i++)
      nn_tensor_f32 (t)[i] *= 1.5f;
    nn_tensor_mark_written (t);
    auto y = forward (m.get (), x.get ());
    EXPECT_LT (max_diff (y, conv_bn_reference (m.get (), x.get ())), 1e-5);
  }

  // Surgery: the BatchNorm replaced by an Identity, which absorbs into
  // nothing: the conv is no longer fused, and the output follows the edit.
  Error e;
  Module id = load_json (reg.get (), R"({"type": "Identity"})");
  NnShape in_shape = x->shape;
  NnSurgeryOptions opts = { sizeof (NnSurgeryOptions), 0, &in_shape };
  ASSERT_TRUE (nn_surgery_replace (m.get (), "bn", id.get (), &opts, e.out ())) << e.message ();
  auto y = forward (m.get (), x.get ());
  y = forward (m.get (), x.get ());
  EXPECT_FALSE (has (fusions (m.get ()), "conv+bn+act"));
  nn_engine_set_fusion (FALSE);
  auto y_off = forward (m.get (), x.get ());
  EXPECT_LT (max_diff (y, y_off), 1e-5);
}

TEST_P (ConvBn, TrainingModeAndTapeAreNeverFused)
{
  both (m.get (), x.get ());
  ASSERT_FALSE (fusions (m.get ()).empty ());

  // A recording tape: the backward reads every intermediate.
  NnTape *tape = nn_tape_new (1);
  ValueRef args = value_tuple ({ nn_value_new_tensor (x.get ()) });
  Error e;
  ValueRef out (nn_tape_call (tape, m.get (), args.get (), nullptr, e.out ()));
  ASSERT_TRUE (out) << e.message ();
  EXPECT_TRUE (fusions (m.get ()).empty ());
  EXPECT_GE (nn_tape_n_entries (tape), 6u);  // every leaf recorded, none absorbed
  nn_tape_free (tape);

  // Training mode: BatchNorm uses batch statistics, nothing folds.
  nn_module_train (m.get (), TRUE);
  forward (m.get (), x.get ());
  forward (m.get (), x.get ());
  EXPECT_FALSE (has (fusions (m.get ()), "conv+bn+act"));
  nn_module_train (m.get (), FALSE);
}

TEST_P (ConvBn, ErrorsAreTheUnfusedOnes)
{
  both (m.get (), x.get ());
  Tensor bad = tensor_f32 ({ 1, 5, 4, 4 }, [] (gint64) { return 1.0f; });
  Error fused, unfused;
  EXPECT_FALSE (nn_module_forward (m.get (), bad.get (), fused.out ()));
  nn_engine_set_fusion (FALSE);
  EXPECT_FALSE (nn_module_forward (m.get (), bad.get (), unfused.out ()));
  EXPECT_FALSE (fused.message ().empty ());
  EXPECT_EQ (fused.message (), unfused.message ());
  nn_engine_set_fusion (TRUE);
  // An unbatched input after a fused plan: not fused (the recorded rank
  // differs), so BatchNorm2d refuses the 3-D conv output as unfused.
  Tensor x3 = tensor_f32 ({ 2, 4, 4 }, [] (gint64 i) { return (float) i * 0.01f; });
  Error e3, e3_off;
  EXPECT_FALSE (nn_module_forward (m.get (), x3.get (), e3.out ()));
  nn_engine_set_fusion (FALSE);
  EXPECT_FALSE (nn_module_forward (m.get (), x3.get (), e3_off.out ()));
  EXPECT_TRUE (contains (e3.message (), "bn")) << e3.message ();
  EXPECT_EQ (e3.message (), e3_off.message ());
}

// --- PyTorch-exported models ---------------------------------------------

std::vector<float>
read_raw (const std::string &path)
{
  std::ifstream f (path, std::ios::binary);
  std::vector<char> b ((std::istreambuf_iterator<char> (f)), std::istreambuf_iterator<char> ());
  std::vector<float> v (b.size () / sizeof (float));
  if (!v.empty ())
    std::memcpy (v.data (), b.data (), v.size () * sizeof (float));
  return v;
}

// Exports into a fresh directory once per process; "" when torch is
// missing.
std::string
exported (bool resnet)
{
  static std::string dirs[2];
  static bool done[2];
  if (done[resnet])
    return dirs[resnet];
  done[resnet] = true;
  char *tmp = g_dir_make_tmp ("nn-fusion-XXXXXX", nullptr);
  std::string script = source_path ("tests/engine/fusion_models.py");
  std::vector<const char *> argv = { "/usr/bin/python3", script.c_str (), tmp };
  if (resnet)
    argv.push_back ("resnet18");
  argv.push_back (nullptr);
  int status = -1;
  char *err = nullptr;
  gboolean ran = g_file_test (argv[0], G_FILE_TEST_IS_EXECUTABLE)
                 && g_spawn_sync (nullptr, (char **) argv.data (), nullptr, G_SPAWN_DEFAULT,
                                  nullptr, nullptr, nullptr, &err, &status, nullptr);
  if (ran && g_spawn_check_wait_status (status, nullptr))
    dirs[resnet] = tmp;
  else if (ran && !(WIFEXITED (status) && WEXITSTATUS (status) == 77))
    ADD_FAILURE () << "fusion_models.py failed: " << (err ? err : "");
  g_free (err);
  g_free (tmp);
  return dirs[resnet];
}

struct Torch : ::testing::TestWithParam<const char *> {
  Registry reg = default_registry ();
  void SetUp () override { use_providers (reg.get (), GetParam ()); }
  void TearDown () override { nn_engine_set_fusion (TRUE); }

  Module load (const std::string &dir, const char *name)
  {
    Error e;
    std::string path = dir + "/" + name + ".json";
    Module m (nn_model_load (reg.get (), path.c_str (), nullptr, FALSE, e.out ()));
    EXPECT_TRUE (m) << e.message ();
    return m;
  }

  static Tensor input (const std::string &dir, const char *name, std::initializer_list<gint64> dims)
  {
    auto v = read_raw (dir + "/" + name + "_in.bin");
    Tensor t = tensor_f32 (dims, [&] (gint64 i) { return v.at (i); });
    return t;
  }
};

TEST_P (Torch, SmallNetAgreesFusedUnfusedAndWithPyTorch)
{
  std::string dir = exported (false);
  if (dir.empty ())
    GTEST_SKIP () << "python3-torch not available";
  Module m = load (dir, "small");
  ASSERT_TRUE (m);
  Tensor x = input (dir, "small", { 2, 3, 12, 10 });
  Pair p = both (m.get (), x.get ());
  auto torch = read_raw (dir + "/small_out.bin");
  EXPECT_LT (max_diff (p.fused, p.unfused), 1e-5);
  EXPECT_LT (max_diff (p.fused, torch), 1e-4);
  EXPECT_LT (max_diff (p.unfused, torch), 1e-4);
  auto f = fusions (m.get ());
  for (const char *g : { "stem.0+stem.1+stem.2", "block.conv1+block.bn1+block.relu",
                         "block.conv2+block.bn2+block.add+block.relu", "mix.0+mix.1", "dw.0+dw.1+dw.2",
                         "gate.0+gate.1+gate.2", "head.0+head.1", "head.2+head.3" })
    EXPECT_TRUE (has (f, g)) << g;

  // Hooks on a fused BatchNorm and a fused ReLU6 capture what PyTorch's did.
  for (const char *target : { "block.bn1", "stem.2" }) {
    SCOPED_TRACE (target);
    std::vector<float> cap;
    Error e;
    NnHookHandle *h = nn_module_add_forward_hook (nn_module_lookup_path (m.get (), target, nullptr),
                                                  capture_hook, &cap, nullptr, "cap", 0, e.out ());
    ASSERT_TRUE (h) << e.message ();
    auto y = forward (m.get (), x.get ());
    nn_hook_handle_remove (h);
    nn_hook_handle_free (h);
    EXPECT_LT (max_diff (cap, read_raw (dir + "/small_hook_" + target + ".bin")), 1e-4);
    EXPECT_LT (max_diff (y, p.unfused), 1e-5);
  }
}

TEST_P (Torch, Resnet18AgreesFusedUnfusedAndWithPyTorch)
{
  std::string dir = exported (true);
  if (dir.empty ())
    GTEST_SKIP () << "python3-torch not available";
  Module m = load (dir, "resnet18");
  ASSERT_TRUE (m);
  Tensor x = input (dir, "resnet18", { 1, 3, 64, 64 });
  Pair p = both (m.get (), x.get ());
  auto torch = read_raw (dir + "/resnet18_out.bin");
  EXPECT_LT (max_diff (p.fused, p.unfused), 1e-5);
  EXPECT_LT (max_diff (p.fused, torch), 1e-4);
  auto f = fusions (m.get ());
  EXPECT_TRUE (has (f, "conv1+bn1+relu"));
  EXPECT_TRUE (has (f, "layer1.0.conv1+layer1.0.bn1+layer1.0.relu"));
  EXPECT_TRUE (has (f, "layer2.0.downsample.0+layer2.0.downsample.1"));
  EXPECT_GE (f.size (), 20u);

  std::vector<float> cap;
  Error e;
  NnHookHandle *h = nn_module_add_forward_hook (
    nn_module_lookup_path (m.get (), "layer1.0.bn2", nullptr), capture_hook, &cap, nullptr,
    "cap", 0, e.out ());
  ASSERT_TRUE (h) << e.message ();
  forward (m.get (), x.get ());
  EXPECT_FALSE (has (fusions (m.get ()), "layer1.0.conv2+layer1.0.bn2"));
  nn_hook_handle_remove (h);
  nn_hook_handle_free (h);
  EXPECT_LT (max_diff (cap, read_raw (dir + "/resnet18_hook_layer1.0.bn2.bin")), 1e-4);
}

// --- residual adds ------------------------------------------------------

// Captures every module's output by path (a global hook), the last call's
// for a module called twice, as PyTorch's hook dict in fusion_models.py.
gboolean
capture_by_path (NnModule *, const char *path, const NnValue *, const NnValue *,
                 NnValue **output, gpointer user_data, GError **)
{
  auto *caps = static_cast<std::map<std::string, std::vector<float>> *> (user_data);
  NnTensor *t = nn_value_get_tensor (*output);
  if (t && t->dtype == NN_DTYPE_F32)
    (*caps)[path] = values (t);
  return TRUE;
}

// Which groups the residual model fuses (fusion_models.py, Residuals): a
// residual add in either operand order, after the exporter's `out += x`
// or `x + out`, with a module or a functional activation, with none, or
// with SiLU; not a broadcasting add, not an add whose result or whose
// chained operand is read again; the add (a producer then) absorbs the
// activation where the conv cannot take it.
const char *const kResidualFused[] = {
  "stem.0+stem.1+stem.2", "b1.conv1+b1.bn1+b1.relu", "b1.conv2+b1.bn2+b1.add+b1.relu",
  "b2_conv+b2_bn+add+relu", "b3_conv+b3_bn", "b3_down.0+b3_down.1", "add+b3_relu",
  "b4_conv+b4_bn+add", "b5_conv+b5_bn+add+b5_act", "b6_conv+b6_bn", "add+b6_relu",
  "b7_conv+b7_bn+add", "b8_conv+b8_bn", "add+b8_relu",
};

TEST_P (Torch, ResidualAddsAgreeFusedUnfusedAndWithPyTorch)
{
  std::string dir = exported (false);
  if (dir.empty ())
    GTEST_SKIP () << "python3-torch not available";
  Module m = load (dir, "residuals");
  ASSERT_TRUE (m);
  Tensor x = input (dir, "residuals", { 2, 3, 10, 12 });
  Pair p = both (m.get (), x.get ());
  auto torch = read_raw (dir + "/residuals_out.bin");
  EXPECT_LT (max_diff (p.fused, p.unfused), 1e-5);
  EXPECT_LT (max_diff (p.fused, torch), 1e-4);
  EXPECT_LT (max_diff (p.unfused, torch), 1e-4);
  auto f = fusions (m.get ());
  EXPECT_EQ (f.size (), G_N_ELEMENTS (kResidualFused));
  for (const char *g : kResidualFused)
    EXPECT_TRUE (has (f, g)) << g;
  // Later calls run the same groups with the same values.
  EXPECT_EQ (forward (m.get (), x.get ()), p.fused);
  EXPECT_EQ (fusions (m.get ()), f);

  // A hook on any module of a group un-fuses it, captures what PyTorch's
  // hook did and leaves the output as unfused; removed, the group is back.
  struct Case { const char *target, *group; };
  for (Case c : { Case { "b1.relu", "b1.conv2+b1.bn2+b1.add+b1.relu" },
                  Case { "b1.bn2", "b1.conv2+b1.bn2+b1.add+b1.relu" },
                  Case { "b1.conv2", "b1.conv2+b1.bn2+b1.add+b1.relu" },
                  Case { "b5_act", "b5_conv+b5_bn+add+b5_act" },
                  Case { "b7_bn", "b7_conv+b7_bn+add" },
                  Case { "b3_down.1", "b3_down.0+b3_down.1" } }) {
    SCOPED_TRACE (c.target);
    std::vector<float> cap;
    Error e;
    NnHookHandle *h = nn_module_add_forward_hook (nn_module_lookup_path (m.get (), c.target, nullptr),
                                                  capture_hook, &cap, nullptr, "cap", 0, e.out ());
    ASSERT_TRUE (h) << e.message ();
    auto y = forward (m.get (), x.get ());
    EXPECT_FALSE (has (fusions (m.get ()), c.group));
    nn_hook_handle_remove (h);
    nn_hook_handle_free (h);
    EXPECT_LT (max_diff (cap, read_raw (dir + "/residuals_hook_" + c.target + ".bin")), 1e-4);
    EXPECT_LT (max_diff (y, p.unfused), 1e-5);
    forward (m.get (), x.get ());
    EXPECT_TRUE (has (fusions (m.get ()), c.group));
  }

  // A global hook sees every module, so nothing fuses.
  std::map<std::string, std::vector<float>> caps;
  NnHookHandle *g = nn_add_global_forward_hook (capture_by_path, &caps, nullptr, "all", 0);
  ASSERT_TRUE (g);
  auto y = forward (m.get (), x.get ());
  nn_hook_handle_remove (g);
  nn_hook_handle_free (g);
  EXPECT_TRUE (fusions (m.get ()).empty ());
  EXPECT_LT (max_diff (y, p.unfused), 1e-5);
  for (const char *t : { "b1.relu", "b1.bn2", "b5_act", "b7_bn" })
    EXPECT_LT (max_diff (caps[t], read_raw (dir + "/residuals_hook_" + std::string (t) + ".bin")),
               1e-4) << t;
  forward (m.get (), x.get ());
  EXPECT_EQ (fusions (m.get ()).size (), G_N_ELEMENTS (kResidualFused));

  // Another input shape after the fused plan: the residual groups wait
  // for a plan recorded with it, the values are the unfused ones; a bad
  // input fails as unfused.
  Tensor x1 = tensor_f32 ({ 1, 3, 8, 6 }, [] (gint64 i) { return (float) std::cos (0.3 * i); });
  nn_engine_set_fusion (FALSE);
  auto y1_off = forward (m.get (), x1.get ());
  nn_engine_set_fusion (TRUE);
  forward (m.get (), x.get ());
  EXPECT_LT (max_diff (forward (m.get (), x1.get ()), y1_off), 1e-5);
  EXPECT_LT (max_diff (forward (m.get (), x1.get ()), y1_off), 1e-5);
  Tensor bad = tensor_f32 ({ 2, 4, 10, 12 }, [] (gint64) { return 1.0f; });
  Error fused_e, unfused_e;
  forward (m.get (), x.get ());
  EXPECT_FALSE (nn_module_forward (m.get (), bad.get (), fused_e.out ()));
  nn_engine_set_fusion (FALSE);
  EXPECT_FALSE (nn_module_forward (m.get (), bad.get (), unfused_e.out ()));
  nn_engine_set_fusion (TRUE);
  EXPECT_FALSE (fused_e.message ().empty ());
  EXPECT_EQ (fused_e.message (), unfused_e.message ());
}

TEST_P (Torch, ResidualAddsNeverFuseWithATapeOrInTraining)
{
  std::string dir = exported (false);
  if (dir.empty ())
    GTEST_SKIP () << "python3-torch not available";
  Module m = load (dir, "residuals");
  ASSERT_TRUE (m);
  Tensor x = input (dir, "residuals", { 2, 3, 10, 12 });
  Pair p = both (m.get (), x.get ());
  ASSERT_FALSE (fusions (m.get ()).empty ());

  NnTape *tape = nn_tape_new (1);
  ValueRef args = value_tuple ({ nn_value_new_tensor (x.get ()) });
  Error e;
  ValueRef out (nn_tape_call (tape, m.get (), args.get (), nullptr, e.out ()));
  ASSERT_TRUE (out) << e.message ();
  EXPECT_TRUE (fusions (m.get ()).empty ());
  EXPECT_LT (max_diff (values (nn_value_get_tensor (out.get ())), p.unfused), 1e-5);
  nn_tape_free (tape);

  // Training mode: nothing folds, and the adds (functional, in a
  // composite in training mode) absorb nothing either.
  nn_module_train (m.get (), TRUE);
  forward (m.get (), x.get ());
  forward (m.get (), x.get ());
  EXPECT_TRUE (fusions (m.get ()).empty ());
  nn_module_train (m.get (), FALSE);
  EXPECT_EQ (forward (m.get (), x.get ()), forward (m.get (), x.get ()));
  EXPECT_FALSE (fusions (m.get ()).empty ());
}

// add as a producer, on descriptor graphs: one pass for same-shape
// operands, the op then the activation for a scalar operand; checked
// against code in this file.
TEST_P (ConvBn, AddAbsorbsTheActivationAfterIt)
{
  const char *g = R"({"type": "Graph", "config": {"inputs": ["x"], "nodes": [
      {"name": "h", "module": "fc", "args": ["x"]},
      {"name": "a", "op": "relu", "args": ["h"]},
      {"name": "c", "op": "add", "args": ["h", "a"]},
      {"name": "d", "op": "relu", "args": ["c"]},
      {"name": "e", "op": "add", "args": ["d", 0.25]},
      {"name": "f", "op": "sigmoid", "args": ["e"]},
      {"name": "k", "op": "add", "args": ["f", "h"], "kwargs": {"alpha": 2.0}},
      {"name": "t", "module": "act", "args": ["k"]}], "output": "t"},
    "children": [{"name": "fc", "type": "Linear", "config": {"in_features": 4, "out_features": 6}},
                 {"name": "act", "type": "Tanh"}]})";
  Module gm = load_json (reg.get (), g);
  ASSERT_TRUE (gm);
  nn_module_reset_parameters (gm.get (), 5);
  Tensor in = tensor_f32 ({ 3, 4 }, [] (gint64 i) { return (float) std::sin (1.1 * i) * 3.0f; });
  const float *w = nn_tensor_f32 (nn_module_lookup_tensor (gm.get (), "fc.weight", nullptr));
  const float *b = nn_tensor_f32 (nn_module_lookup_tensor (gm.get (), "fc.bias", nullptr));
  std::vector<float> want;
  for (int n = 0; n < 3; n++)
    for (int o = 0; o < 6; o++) {
      double h = b[o];
      for (int i = 0; i < 4; i++)
        h += (double) nn_tensor_f32 (in.get ())[n * 4 + i] * w[o * 4 + i];
      double d = std::max (0.0, h + std::max (0.0, h));
      double f = 1.0 / (1.0 + std::exp (-(d + 0.25)));
      want.push_back ((float) std::tanh (f + 2.0 * h));
    }
  Pair p = both (gm.get (), in.get ());
  EXPECT_LT (max_diff (p.unfused, want), 1e-5);
  EXPECT_LT (max_diff (p.fused, want), 1e-5);
  auto f = fusions (gm.get ());
  EXPECT_TRUE (has (f, "add+relu"));     // same shapes: one pass
  EXPECT_TRUE (has (f, "add+sigmoid"));  // a scalar operand
  EXPECT_TRUE (has (f, "add+act"));      // alpha
  EXPECT_EQ (f.size (), 3u);
}

INSTANTIATE_TEST_SUITE_P (Providers, ConvBn, ::testing::Values ("", "-dnnl"));
INSTANTIATE_TEST_SUITE_P (Providers, Torch, ::testing::Values ("", "-dnnl"));

}  // namespace
