// The execution plan (core/plan.c): built once per root, reused while the
// tree is unedited, rebuilt after surgery and load_state_dict, never
// hiding a hook, per root (edits of other trees leave it alone), and
// built race-free by several threads.  Expected outputs come from a
// reference computation in this file over the module's own tensors.
#include "nn-test.h"

#include <glib/gstdio.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

using namespace nntest;

namespace {

// fc1 -> act -> tail(fc2) -> again(act): the root makes 4 calls and tail
// one more, so a plan has 5 steps.
const char *kNet = R"({"type": "Sequential", "children": [
    {"name": "fc1", "type": "Linear", "config": {"in_features": 4, "out_features": 3}},
    {"name": "act", "type": "ReLU"},
    {"name": "tail", "type": "Sequential", "children": [
      {"name": "fc2", "type": "Linear", "config": {"in_features": 3, "out_features": 2}}]},
    {"name": "again", "ref": "act"}]})";

Module
load (NnRegistry *reg, guint64 seed)
{
  Module m = load_json (reg, kNet);
  if (m)
    nn_module_reset_parameters (m.get (), seed);
  return m;
}

Tensor
input ()
{
  return tensor_f32 ({ 2, 4 }, [] (gint64 i) { return (float) ((i * 5) % 7) / 7.0f - 0.45f; });
}

// y = x W^T + b over the module's own tensors.
std::vector<float>
linear_ref (NnModule *root, const char *prefix, const std::vector<float> &x, int in, int out)
{
  std::string w = std::string (prefix) + ".weight", b = std::string (prefix) + ".bias";
  const float *W = nn_tensor_f32 (nn_module_lookup_tensor (root, w.c_str (), nullptr));
  const float *B = nn_tensor_f32 (nn_module_lookup_tensor (root, b.c_str (), nullptr));
  size_t rows = x.size () / in;
  std::vector<float> y (rows * out);
  for (size_t r = 0; r < rows; r++)
    for (int o = 0; o < out; o++) {
      double acc = B[o];
      for (int i = 0; i < in; i++)
        acc += (double) x[r * in + i] * W[o * in + i];
      y[r * out + o] = (float) acc;
    }
  return y;
}

std::vector<float>
relu_ref (std::vector<float> v)
{
  for (float &f : v)
    f = f < 0 ? 0 : f;
  return v;
}

std::vector<float>
reference (NnModule *root, NnTensor *x)
{
  const float *d = nn_tensor_f32 (x);
  std::vector<float> v (d, d + nn_tensor_numel (x));
  v = relu_ref (linear_ref (root, "fc1", v, 4, 3));
  return relu_ref (linear_ref (root, "tail.fc2", v, 3, 2));
}

::testing::AssertionResult
close_to (NnTensor *y, const std::vector<float> &want)
{
  if (y == nullptr)
    return ::testing::AssertionFailure () << "no output";
  if ((size_t) nn_tensor_numel (y) != want.size ())
    return ::testing::AssertionFailure () << "size " << nn_tensor_numel (y);
  for (size_t i = 0; i < want.size (); i++)
    if (std::fabs (nn_tensor_f32 (y)[i] - want[i]) > 1e-5f)
      return ::testing::AssertionFailure () << "element " << i << ": "
                                            << nn_tensor_f32 (y)[i] << " vs " << want[i];
  return ::testing::AssertionSuccess ();
}

Tensor
run (NnModule *m, NnTensor *x)
{
  Error e;
  Tensor y (nn_module_forward (m, x, e.out ()));
  EXPECT_NE (y, nullptr) << e.message ();
  return y;
}

// Surgery checks shapes from a [2, 4] input.
const NnSurgeryOptions *
opts ()
{
  static NnShape in = shape ({ 2, 4 });
  static NnSurgeryOptions o = { sizeof (NnSurgeryOptions), 0, &in };
  return &o;
}

guint
steps_of (NnModule *m)
{
  guint n = 0;
  nn_module_get_plan_info (m, &n);
  return n;
}

TEST (Plan, BuiltOnceAndReused)
{
  Registry reg = default_registry ();
  Module m = load (reg.get (), 1);
  ASSERT_NE (m, nullptr);
  Tensor x = input ();
  EXPECT_EQ (nn_module_get_plan_info (m.get (), nullptr), 0u);
  for (int i = 0; i < 3; i++) {
    Tensor y = run (m.get (), x.get ());
    EXPECT_TRUE (close_to (y.get (), reference (m.get (), x.get ())));
  }
  EXPECT_EQ (nn_module_get_plan_info (m.get (), nullptr), 1u);
  EXPECT_EQ (steps_of (m.get ()), 5u);
  // Shape inference neither uses nor changes it.
  NnShape in = shape ({ 2, 4 }), out;
  Error e;
  ASSERT_TRUE (nn_module_infer_shape (m.get (), &in, &out, e.out ())) << e.message ();
  EXPECT_EQ (shape_text (out), "[2, 2]");
  EXPECT_EQ (nn_module_get_plan_info (m.get (), nullptr), 1u);
  // A child run as a root of its own has a plan of its own.
  NnModule *tail = nn_module_lookup_path (m.get (), "tail", nullptr);
  Tensor h = tensor_f32 ({ 1, 3 }, [] (gint64 i) { return (float) i; });
  Tensor yt = run (tail, h.get ());
  EXPECT_EQ (steps_of (tail), 1u);
  EXPECT_EQ (steps_of (m.get ()), 5u);
  nn_module_drop_plan (m.get ());
  EXPECT_EQ (steps_of (m.get ()), 0u);
  Tensor y = run (m.get (), x.get ());
  EXPECT_EQ (nn_module_get_plan_info (m.get (), nullptr), 2u);
}

gboolean
count_calls (NnModule *m, const char *path, const NnValue *args,
             const NnValue *kwargs, NnValue **out, gpointer user_data,
             GError **error)
{
  static_cast<std::vector<std::string> *> (user_data)->push_back (path);
  return TRUE;
}

gboolean
negate_pre (NnModule *m, const char *path, NnValue **args, NnValue **kwargs,
            gpointer user_data, GError **error)
{
  NnTensor *t = nn_value_get_tensor (nn_value_item (*args, 0));
  NnTensor *c = nn_tensor_copy (t);
  for (gint64 i = 0; i < nn_tensor_numel (c); i++)
    nn_tensor_f32 (c)[i] = -nn_tensor_f32 (c)[i];
  NnValue *tuple = nn_value_new_tuple ();
  nn_value_append (tuple, nn_value_take_tensor (c));
  nn_value_unref (*args);
  *args = tuple;
  return TRUE;
}

TEST (Plan, HooksAddedAfterThePlanFire)
{
  Registry reg = default_registry ();
  Module m = load (reg.get (), 2);
  Tensor x = input ();
  Tensor y0 = run (m.get (), x.get ());
  ASSERT_EQ (nn_module_get_plan_info (m.get (), nullptr), 1u);

  std::vector<std::string> seen;
  Error e;
  NnModule *act = nn_module_lookup_path (m.get (), "act", nullptr);
  NnHookHandle *h = nn_module_add_forward_hook (act, count_calls, &seen, nullptr,
                                                "seen", 0, e.out ());
  ASSERT_NE (h, nullptr) << e.message ();
  Tensor y1 = run (m.get (), x.get ());
  // The module sits twice in the tree: its hook fires at both paths.
  EXPECT_EQ (seen, (std::vector<std::string>{ "act", "again" }));
  EXPECT_TRUE (close_to (y1.get (), reference (m.get (), x.get ())));

  // A pre-hook that changes the input is honoured on the planned path.
  NnModule *fc1 = nn_module_lookup_path (m.get (), "fc1", nullptr);
  NnHookHandle *p = nn_module_add_pre_hook (fc1, negate_pre, nullptr, nullptr,
                                            "neg", 0, e.out ());
  ASSERT_NE (p, nullptr) << e.message ();
  Tensor neg = tensor_f32 ({ 2, 4 }, [&] (gint64 i) { return -nn_tensor_f32 (x.get ())[i]; });
  Tensor y2 = run (m.get (), x.get ());
  EXPECT_TRUE (close_to (y2.get (), reference (m.get (), neg.get ())));

  nn_hook_handle_remove (h);
  nn_hook_handle_remove (p);
  nn_hook_handle_free (h);
  nn_hook_handle_free (p);
  seen.clear ();
  Tensor y3 = run (m.get (), x.get ());
  EXPECT_TRUE (seen.empty ());
  EXPECT_TRUE (close_to (y3.get (), reference (m.get (), x.get ())));
  // Hooks are asked for on every call, so they never cost a rebuild.
  EXPECT_EQ (nn_module_get_plan_info (m.get (), nullptr), 1u);

  // A global hook sees every planned call too.
  seen.clear ();
  NnHookHandle *g = nn_add_global_forward_hook (count_calls, &seen, nullptr, "all", 0);
  Tensor y4 = run (m.get (), x.get ());
  nn_hook_handle_remove (g);
  nn_hook_handle_free (g);
  EXPECT_EQ (seen, (std::vector<std::string>{ "fc1", "act", "tail.fc2", "tail", "again", "" }));
}

TEST (Plan, SurgeryIsSeenAndRebuilds)
{
  Registry reg = default_registry ();
  Module m = load (reg.get (), 3);
  Tensor x = input ();
  Tensor y0 = run (m.get (), x.get ());
  ASSERT_EQ (nn_module_get_plan_info (m.get (), nullptr), 1u);

  // Replace a grandchild: the new module runs on the next forward.
  Error e;
  Module fc (make_module (reg.get (), "Linear",
                          R"({"in_features": 3, "out_features": 2})", e, "fc2"));
  ASSERT_NE (fc, nullptr) << e.message ();
  nn_module_reset_parameters (fc.get (), 99);
  ASSERT_TRUE (nn_surgery_replace (m.get (), "tail.fc2", fc.get (), opts (), e.out ()))
      << e.message ();
  Tensor y1 = run (m.get (), x.get ());
  EXPECT_TRUE (close_to (y1.get (), reference (m.get (), x.get ())));
  EXPECT_NE (nn_tensor_f32 (y0.get ())[0] + nn_tensor_f32 (y0.get ())[1],
             nn_tensor_f32 (y1.get ())[0] + nn_tensor_f32 (y1.get ())[1]);
  EXPECT_EQ (nn_module_get_plan_info (m.get (), nullptr), 2u);
  EXPECT_EQ (steps_of (m.get ()), 5u);

  // Delete the second ReLU: one call fewer, and the plan says so.
  ASSERT_TRUE (nn_surgery_delete (m.get (), "again", opts (), e.out ())) << e.message ();
  Tensor y2 = run (m.get (), x.get ());
  const float *d = nn_tensor_f32 (x.get ());
  std::vector<float> v (d, d + 8);
  std::vector<float> want = linear_ref (m.get (), "tail.fc2",
                                        relu_ref (linear_ref (m.get (), "fc1", v, 4, 3)), 3, 2);
  EXPECT_TRUE (close_to (y2.get (), want));
  EXPECT_EQ (steps_of (m.get ()), 4u);
  EXPECT_EQ (nn_module_get_plan_info (m.get (), nullptr), 3u);
  // A second forward follows the new plan without rebuilding.
  Tensor y3 = run (m.get (), x.get ());
  EXPECT_TRUE (close_to (y3.get (), want));
  EXPECT_EQ (nn_module_get_plan_info (m.get (), nullptr), 3u);
}

TEST (Plan, LoadStateDictUsesTheNewWeights)
{
  Registry reg = default_registry ();
  Module m = load (reg.get (), 4);
  Module other = load (reg.get (), 5);
  Tensor x = input ();
  Tensor y0 = run (m.get (), x.get ());
  ASSERT_EQ (nn_module_get_plan_info (m.get (), nullptr), 1u);

  g_autofree char *dir = g_dir_make_tmp ("nn-plan-XXXXXX", nullptr);
  std::string path = std::string (dir) + "/w.safetensors";
  Error e;
  ASSERT_TRUE (nn_module_save_state_dict (other.get (), path.c_str (), nullptr, e.out ()))
      << e.message ();
  Safetensors st (nn_safetensors_open (path.c_str (), e.out ()));
  ASSERT_NE (st, nullptr) << e.message ();
  ASSERT_TRUE (nn_module_load_state_dict (m.get (), st.get (), nullptr, nullptr, e.out ()))
      << e.message ();
  Tensor y1 = run (m.get (), x.get ());
  EXPECT_TRUE (close_to (y1.get (), reference (other.get (), x.get ())));
  EXPECT_EQ (nn_module_get_plan_info (m.get (), nullptr), 2u);
  g_remove (path.c_str ());
  g_rmdir (dir);
}

TEST (Plan, EditsOfOtherTreesLeaveItAlone)
{
  Registry reg = default_registry ();
  Module m = load (reg.get (), 6);
  Module other = load (reg.get (), 7);
  Tensor x = input ();
  Tensor y0 = run (m.get (), x.get ());
  Error e;
  ASSERT_TRUE (nn_surgery_delete (other.get (), "again", opts (), e.out ())) << e.message ();
  Module extra = load (reg.get (), 8); // building trees moves nothing either
  Tensor y1 = run (m.get (), x.get ());
  EXPECT_EQ (nn_module_get_plan_info (m.get (), nullptr), 1u);
  EXPECT_TRUE (close_to (y1.get (), reference (m.get (), x.get ())));
}

TEST (Plan, SharedSubtreeEditedUnderAnotherRoot)
{
  // One module under two roots: an edit made through one root is seen
  // by the other's plan, since stamps live on the modules themselves.
  Registry reg = default_registry ();
  Module m = load (reg.get (), 9);
  Module outer (nn_module_new_from_type (reg.get (), "Sequential", nullptr, "outer", nullptr));
  ASSERT_NE (outer, nullptr);
  NnModule *tail = nn_module_lookup_path (m.get (), "tail", nullptr);
  Error e;
  ASSERT_TRUE (nn_module_add_child (outer.get (), "shared", tail, e.out ())) << e.message ();
  Tensor x = input ();
  Tensor y0 = run (m.get (), x.get ());
  Module fc (make_module (reg.get (), "Linear",
                          R"({"in_features": 3, "out_features": 2})", e, "fc2"));
  nn_module_reset_parameters (fc.get (), 42);
  NnShape outer_in = shape ({ 2, 3 });
  NnSurgeryOptions outer_opts = { sizeof (NnSurgeryOptions), 0, &outer_in };
  ASSERT_TRUE (nn_surgery_replace (outer.get (), "shared.fc2", fc.get (), &outer_opts, e.out ()))
      << e.message ();
  Tensor y1 = run (m.get (), x.get ());
  EXPECT_TRUE (close_to (y1.get (), reference (m.get (), x.get ())));
  EXPECT_EQ (nn_module_lookup_path (m.get (), "tail.fc2", nullptr), fc.get ());
  EXPECT_EQ (nn_module_get_plan_info (m.get (), nullptr), 2u);
}

TEST (Plan, ErrorsStillNameThePath)
{
  Registry reg = default_registry ();
  Module m = load (reg.get (), 10);
  Tensor x = input ();
  Tensor y0 = run (m.get (), x.get ());
  Tensor bad = tensor_f32 ({ 2, 5 }, [] (gint64 i) { return 1.0f; });
  Error e;
  Tensor y (nn_module_forward (m.get (), bad.get (), e.out ()));
  EXPECT_EQ (y, nullptr);
  EXPECT_TRUE (contains (e.message (), "fc1")) << e.message ();
  // The failed run published nothing; the plan still serves good inputs.
  EXPECT_EQ (nn_module_get_plan_info (m.get (), nullptr), 1u);
  Tensor y1 = run (m.get (), x.get ());
  EXPECT_TRUE (close_to (y1.get (), reference (m.get (), x.get ())));
}

TEST (Plan, FourThreadsBuildAndFollowOnePlanWhileHooksAreAddedOnClones)
{
  nn_set_num_threads (1);
  Registry reg = default_registry ();
  Module shared = load (reg.get (), 11);
  Tensor x = input ();
  const std::vector<float> want = reference (shared.get (), x.get ());
  std::vector<Module> clones;
  for (int t = 0; t < 4; t++)
    clones.push_back (load (reg.get (), 11));
  std::atomic<int> failures { 0 };
  auto work = [&] (int t) {
    NnModule *clone = clones[t].get ();
    for (int round = 0; round < 40; round++) {
      GError *err = nullptr;
      NnTensor *y = nn_module_forward (shared.get (), x.get (), &err);
      if (y == nullptr || !close_to (y, want))
        failures++;
      if (y)
        nn_tensor_unref (y);
      g_clear_error (&err);
      std::vector<std::string> seen;
      NnHookHandle *h = nn_module_add_forward_hook (
          nn_module_lookup_path (clone, "tail.fc2", nullptr), count_calls, &seen,
          nullptr, "count", 0, &err);
      NnTensor *yc = h ? nn_module_forward (clone, x.get (), &err) : nullptr;
      if (h == nullptr || yc == nullptr || seen.size () != 1 || !close_to (yc, want))
        failures++;
      if (yc)
        nn_tensor_unref (yc);
      if (h) {
        nn_hook_handle_remove (h);
        nn_hook_handle_free (h);
      }
      if (round % 8 == t)
        nn_module_drop_plan (shared.get ()); // rebuilt by whoever runs next
      g_clear_error (&err);
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++)
    threads.emplace_back (work, t);
  for (auto &th : threads)
    th.join ();
  EXPECT_EQ (failures.load (), 0);
  EXPECT_GE (nn_module_get_plan_info (shared.get (), nullptr), 1u);
  EXPECT_EQ (steps_of (shared.get ()), 5u);
}

}  // namespace

// --- in place when the input dies (docs/ENGINE.md, "Memory") -------------

namespace {

const char *kChain = R"({"type": "Sequential", "children": [
    {"name": "fc", "type": "Linear", "config": {"in_features": 4, "out_features": 6}},
    {"name": "r1", "type": "ReLU"},
    {"name": "r2", "type": "ReLU"}]})";

gboolean
keep_output (NnModule *m, const char *path, const NnValue *args,
             const NnValue *kwargs, NnValue **out, gpointer user_data,
             GError **error)
{
  auto *kept = static_cast<std::vector<NnValue *> *> (user_data);
  kept->push_back (nn_value_ref (*out));
  return TRUE;
}

std::vector<float>
values_of (NnTensor *t)
{
  const float *d = nn_tensor_f32 (t);
  return std::vector<float> (d, d + nn_tensor_numel (t));
}

TEST (InPlace, DyingInputsAreReusedAndObservedOnesAreNot)
{
  // Each ReLU a step of its own (fused, fc's epilogue would do r1's work).
  UnfusedScope unfused;
  Registry reg = default_registry ();
  Module m = load_json (reg.get (), kChain);
  ASSERT_NE (m, nullptr);
  nn_module_reset_parameters (m.get (), 12);
  Tensor x = input ();
  const std::vector<float> x0 = values_of (x.get ());
  const float *d = nn_tensor_f32 (x.get ());
  std::vector<float> h = linear_ref (m.get (), "fc", std::vector<float> (d, d + 8), 4, 6);
  ASSERT_TRUE (std::any_of (h.begin (), h.end (), [] (float f) { return f < 0; }));

  // Nothing observes fc's and r1's results: both ReLUs work in place.
  guint64 before = nn_engine_get_inplace_count ();
  Tensor y = run (m.get (), x.get ());
  EXPECT_TRUE (close_to (y.get (), relu_ref (h)));
  EXPECT_EQ (nn_engine_get_inplace_count () - before, 2u);
  EXPECT_EQ (values_of (x.get ()), x0); // the caller's input is never written

  // A hook keeping fc's result: r1 must leave it alone; r2 still reuses.
  std::vector<NnValue *> kept;
  Error e;
  NnHookHandle *hk = nn_module_add_forward_hook (
      nn_module_lookup_path (m.get (), "fc", nullptr), keep_output, &kept, nullptr,
      "keep", 0, e.out ());
  ASSERT_NE (hk, nullptr) << e.message ();
  before = nn_engine_get_inplace_count ();
  Tensor y2 = run (m.get (), x.get ());
  EXPECT_EQ (nn_engine_get_inplace_count () - before, 1u);
  ASSERT_EQ (kept.size (), 1u);
  EXPECT_TRUE (close_to (nn_value_get_tensor (kept[0]), h)); // negatives kept
  EXPECT_TRUE (close_to (y2.get (), relu_ref (h)));
  for (NnValue *v : kept)
    nn_value_unref (v);
  nn_hook_handle_remove (hk);
  nn_hook_handle_free (hk);

  // A hook on the ReLU itself sees its input as it was.
  kept.clear ();
  NnHookHandle *hr = nn_module_add_forward_hook (
      nn_module_lookup_path (m.get (), "r1", nullptr), keep_output, &kept, nullptr,
      "keep", 0, e.out ());
  before = nn_engine_get_inplace_count ();
  Tensor y3 = run (m.get (), x.get ());
  EXPECT_EQ (nn_engine_get_inplace_count () - before, 0u);
  EXPECT_TRUE (close_to (y3.get (), relu_ref (h)));
  for (NnValue *v : kept)
    nn_value_unref (v);
  nn_hook_handle_remove (hr);
  nn_hook_handle_free (hr);

  // A tape records the inputs backward reads: never in place then.
  before = nn_engine_get_inplace_count ();
  NnTape *tape = nn_tape_new (1);
  ValueRef args = value_tuple ({ nn_value_new_tensor (x.get ()) });
  ValueRef out (nn_tape_call (tape, m.get (), args.get (), nullptr, e.out ()));
  ASSERT_TRUE (out) << e.message ();
  EXPECT_EQ (nn_engine_get_inplace_count () - before, 0u);
  EXPECT_TRUE (close_to (nn_value_get_tensor (out.get ()), relu_ref (h)));
  nn_tape_free (tape);
}

TEST (InPlace, GraphKeepsValuesStillRead)
{
  // c = h + relu(h): relu must not overwrite h, which add reads after it;
  // d = relu(c) may reuse c, read by nobody else.
  Registry reg = default_registry ();
  ensure_add (reg.get ());
  const char *g = R"({"type": "Graph", "config": {"inputs": ["x"], "nodes": [
      {"name": "h", "module": "fc", "args": ["x"]},
      {"name": "a", "op": "relu", "args": ["h"]},
      {"name": "c", "op": "add", "args": ["h", "a"]},
      {"name": "d", "op": "relu", "args": ["c"]}], "output": "d"},
    "children": [{"name": "fc", "type": "Linear", "config": {"in_features": 4, "out_features": 6}}]})";
  Module m = load_json (reg.get (), g);
  ASSERT_NE (m, nullptr);
  nn_module_reset_parameters (m.get (), 13);
  Tensor x = input ();
  const float *d = nn_tensor_f32 (x.get ());
  std::vector<float> h = linear_ref (m.get (), "fc", std::vector<float> (d, d + 8), 4, 6);
  std::vector<float> want (h.size ());
  for (size_t i = 0; i < h.size (); i++)
    want[i] = std::max (0.0f, h[i] + std::max (0.0f, h[i]));
  // Fusion off: from the second forward the add would absorb d (one pass
  // computing relu (h + a), test_fusion.cpp), leaving d nothing to reuse.
  gboolean fusion = nn_engine_get_fusion ();
  nn_engine_set_fusion (FALSE);
  guint64 before = nn_engine_get_inplace_count ();
  for (int i = 0; i < 2; i++) {
    Tensor y = run (m.get (), x.get ());
    EXPECT_TRUE (close_to (y.get (), want));
  }
  EXPECT_EQ (nn_engine_get_inplace_count () - before, 2u); // d, twice
  nn_engine_set_fusion (fusion);
}

}  // namespace

// --- the storage pool (core/tensor.c) ---------------------------------------

namespace {

std::vector<std::string>
fusions_of (NnModule *root)
{
  std::vector<std::string> out;
  char **f = nn_module_get_plan_fusions (root);
  for (char **p = f; *p; p++)
    out.push_back (*p);
  g_strfreev (f);
  return out;
}

// fc1 -> act: Linear with its ReLU as the epilogue when fused.
const char *kFusable = R"({"type": "Sequential", "children": [
    {"name": "fc1", "type": "Linear", "config": {"in_features": 4, "out_features": 3}},
    {"name": "act", "type": "ReLU"},
    {"name": "fc2", "type": "Linear", "config": {"in_features": 3, "out_features": 2}}]})";

TEST (Plan, MadeAheadSoTheFirstForwardRunsFused)
{
  Registry reg = default_registry ();
  Module m = load_json (reg.get (), kFusable);
  ASSERT_NE (m, nullptr);
  nn_module_reset_parameters (m.get (), 4);
  Tensor x = input ();
  const float *d = nn_tensor_f32 (x.get ());
  std::vector<float> h = linear_ref (m.get (), "fc1", std::vector<float> (d, d + 8), 4, 3);
  for (float &v : h)
    v = std::max (v, 0.0f);
  std::vector<float> want = linear_ref (m.get (), "fc2", h, 3, 2);
  ASSERT_TRUE (std::any_of (h.begin (), h.end (), [] (float f) { return f == 0; }));

  Tensor y = run (m.get (), x.get ());
  EXPECT_TRUE (close_to (y.get (), want));
  // The plan came from a shape-only run before this forward, which then
  // followed it fused: one build, and the group already ran.
  EXPECT_EQ (nn_module_get_plan_info (m.get (), nullptr), 1u);
  EXPECT_EQ (fusions_of (m.get ()), std::vector<std::string>{"fc1+act"});
  Tensor y2 = run (m.get (), x.get ());
  EXPECT_EQ (values_of (y2.get ()), values_of (y.get ()));
  EXPECT_EQ (nn_module_get_plan_info (m.get (), nullptr), 1u);

  // Without fusion there is nothing to gain: the first forward records.
  Module u = load_json (reg.get (), kFusable);
  nn_module_reset_parameters (u.get (), 4);
  {
    UnfusedScope unfused;
    Tensor yu = run (u.get (), x.get ());
    EXPECT_TRUE (close_to (yu.get (), want));
  }
  EXPECT_EQ (nn_module_get_plan_info (u.get (), nullptr), 1u);
  EXPECT_TRUE (fusions_of (u.get ()).empty ());
}

// The forward-versus-infer check runs a composite's infer on the first
// forward of each step; MultiheadAttention's infer calls out_proj too.
// Those nested calls are shape inference, not steps: recorded, each
// attention layer left a second out_proj step that the next forward (its
// check skipped) did not make, so every forward left the plan one layer
// further on and recorded it again, unfused (vit_b_16: rebuilt on every
// forward, its MLPs never fused).
TEST (Plan, ChecksOfACompositesInferAreNotSteps)
{
  Registry reg = default_registry ();
  Module m = load_json (reg.get (), R"({"type": "Graph", "config": {"inputs": ["x"], "nodes": [
      {"name": "a1", "module": "attn1", "args": ["x", "x", "x"], "kwargs": {"need_weights": false}},
      {"name": "g1", "op": "getitem", "args": ["a1", 0]},
      {"name": "a2", "module": "attn2", "args": ["g1", "g1", "g1"], "kwargs": {"need_weights": false}},
      {"name": "g2", "op": "getitem", "args": ["a2", 0]},
      {"name": "h", "module": "fc", "args": ["g2"]},
      {"name": "y", "module": "act", "args": ["h"]}], "output": "y"},
    "children": [
      {"name": "attn1", "type": "MultiheadAttention", "config": {"embed_dim": 4, "num_heads": 2, "batch_first": true},
       "children": [{"name": "out_proj", "type": "Linear", "config": {"in_features": 4, "out_features": 4}}]},
      {"name": "attn2", "type": "MultiheadAttention", "config": {"embed_dim": 4, "num_heads": 2, "batch_first": true},
       "children": [{"name": "out_proj", "type": "Linear", "config": {"in_features": 4, "out_features": 4}}]},
      {"name": "fc", "type": "Linear", "config": {"in_features": 4, "out_features": 3}},
      {"name": "act", "type": "GELU"}]})");
  ASSERT_NE (m, nullptr);
  nn_module_reset_parameters (m.get (), 5);
  Tensor x = tensor_f32 ({ 1, 3, 4 }, [] (gint64 i) { return (float) ((i * 7) % 11) / 11.0f - 0.5f; });
  Tensor first = run (m.get (), x.get ());
  ASSERT_TRUE (first);
  guint steps = steps_of (m.get ());
  // attn1, its out_proj, getitem, attn2, its out_proj, getitem, fc, act.
  EXPECT_EQ (steps, 8u);
  for (int i = 0; i < 3; i++) {
    Tensor y = run (m.get (), x.get ());
    EXPECT_TRUE (close_to (y.get (), values_of (first.get ())));
    EXPECT_EQ (nn_module_get_plan_info (m.get (), nullptr), 1u) << "forward " << i + 2;
    EXPECT_EQ (steps_of (m.get ()), steps);
    EXPECT_EQ (fusions_of (m.get ()), std::vector<std::string>{"fc+act"});
  }
}

// A ModuleList has no forward and is never called itself: shape inference
// computes nothing for it, so a tree holding one (a transformer's blocks,
// MaxViT's stages) is planned ahead too and its first forward runs fused.
TEST (Plan, MadeAheadThroughAModuleList)
{
  Registry reg = default_registry ();
  Module m = load_json (reg.get (), R"({"type": "Graph", "config": {"inputs": ["x"], "nodes": [
      {"name": "h0", "module": "layers.0", "args": ["x"]},
      {"name": "a0", "module": "act", "args": ["h0"]},
      {"name": "y", "module": "layers.1", "args": ["a0"]}], "output": "y"},
    "children": [
      {"name": "layers", "type": "ModuleList", "children": [
        {"name": "0", "type": "Linear", "config": {"in_features": 4, "out_features": 3}},
        {"name": "1", "type": "Linear", "config": {"in_features": 3, "out_features": 2}}]},
      {"name": "act", "type": "ReLU"}]})");
  ASSERT_NE (m, nullptr);
  nn_module_reset_parameters (m.get (), 4);
  Tensor x = input ();
  const float *d = nn_tensor_f32 (x.get ());
  std::vector<float> h = relu_ref (linear_ref (m.get (), "layers.0", std::vector<float> (d, d + 8), 4, 3));
  std::vector<float> want = linear_ref (m.get (), "layers.1", h, 3, 2);
  Tensor y = run (m.get (), x.get ());
  EXPECT_TRUE (close_to (y.get (), want));
  EXPECT_EQ (nn_module_get_plan_info (m.get (), nullptr), 1u);
  EXPECT_EQ (fusions_of (m.get ()), std::vector<std::string>{"layers.0+act"});
}

TEST (Plan, NotMadeAheadWhenShapeInferenceWouldCompute)
{
  // FixtureLinear has no infer(): a shape-only run would compute it on
  // zeros, so the first forward records the plan as it runs, unfused.
  Registry reg = fixture_registry ();
  Module m = load_json (reg.get (), R"({"type": "Sequential", "children": [
      {"name": "fc1", "type": "Linear", "config": {"in_features": 4, "out_features": 3}},
      {"name": "act", "type": "ReLU"},
      {"name": "fx", "type": "FixtureLinear", "config": {"in_features": 3, "out_features": 2}}]})");
  ASSERT_NE (m, nullptr);
  nn_module_reset_parameters (m.get (), 4);
  Tensor x = input ();
  Tensor y = run (m.get (), x.get ());
  ASSERT_TRUE (y);
  EXPECT_EQ (nn_module_get_plan_info (m.get (), nullptr), 1u);
  EXPECT_TRUE (fusions_of (m.get ()).empty ());
  Tensor y2 = run (m.get (), x.get ());
  EXPECT_EQ (fusions_of (m.get ()), std::vector<std::string>{"fc1+act"});
  EXPECT_TRUE (close_to (y2.get (), values_of (y.get ())));
}

TEST (Pool, LargeBlocksAreKeptAndHandedOutZeroed)
{
  nn_tensor_pool_trim ();
  EXPECT_EQ (nn_tensor_pool_get_bytes (), 0u);
  const gint64 mib = 1 << 20;
  NnShape big = shape ({ 40 * mib });
  NnTensor *t = nn_tensor_new (NN_DTYPE_U8, &big);
  ASSERT_NE (t, nullptr);
  EXPECT_EQ ((guintptr) t->data % 64, 0u);
  memset (t->data, 0xab, 40 * mib);
  void *first = t->data;
  nn_tensor_unref (t);
  EXPECT_GE (nn_tensor_pool_get_bytes (), (gsize) (40 * mib));

  // Below 32 MiB: left to malloc, the pool is untouched.
  NnShape small = shape ({ 8 * mib });
  Tensor s (nn_tensor_new (NN_DTYPE_U8, &small));
  EXPECT_GE (nn_tensor_pool_get_bytes (), (gsize) (40 * mib));

  // 36 MiB fits the kept 40 MiB block (at least three quarters of it):
  // the same storage, zero-filled as nn_tensor_new promises.
  NnShape fits = shape ({ 9 * mib }); // F32: 36 MiB
  NnTensor *u = nn_tensor_new (NN_DTYPE_F32, &fits);
  ASSERT_NE (u, nullptr);
  EXPECT_EQ (u->data, first);
  EXPECT_EQ (nn_tensor_pool_get_bytes (), 0u);
  const guint8 *b = (const guint8 *) u->data;
  EXPECT_TRUE (std::all_of (b, b + 36 * mib, [] (guint8 c) { return c == 0; }));
  nn_tensor_unref (u);

  // 80 MiB does not fit it: a new block.
  NnShape larger = shape ({ 80 * mib });
  NnTensor *v = nn_tensor_new (NN_DTYPE_U8, &larger);
  ASSERT_NE (v, nullptr);
  EXPECT_NE (v->data, first);
  EXPECT_GE (nn_tensor_pool_get_bytes (), (gsize) (40 * mib));
  nn_tensor_unref (v);
  EXPECT_GE (nn_tensor_pool_get_bytes (), (gsize) (120 * mib));
  nn_tensor_pool_trim ();
  EXPECT_EQ (nn_tensor_pool_get_bytes (), 0u);
}

// Pool bytes after @n forwards of kNet on @rows rows (fc1's output, rows
// x 3 floats, dies inside the forward; fc2's is the caller's).
gsize
pool_after_forwards (NnModule *m, gint64 rows, int n)
{
  Tensor x = tensor_f32 ({ rows, 4 }, [] (gint64 i) { return (float) (i % 13) / 13.0f - 0.4f; });
  for (int i = 0; i < n; i++) {
    Tensor y = run (m, x.get ());
    if (!y)
      return 0;
  }
  return nn_tensor_pool_get_bytes ();
}

// Forwards of a built plan keep their blocks from 1 MiB up: the next
// forward takes the same ones again instead of spreading over the heap.
TEST (Pool, ForwardsOfABuiltPlanReuseTheirBlocks)
{
  Registry reg = fixture_registry ();
  Module m = load (reg.get (), 3);
  ASSERT_NE (m, nullptr);
  const gint64 rows = 120000;  // fc1's output: 1.44 MB
  nn_tensor_pool_trim ();
  // The forward that builds the plan keeps nothing: what it sets up once
  // is glibc's.
  EXPECT_EQ (pool_after_forwards (m.get (), rows, 1), 0u);
  gsize kept = pool_after_forwards (m.get (), rows, 1);
  EXPECT_GE (kept, (gsize) rows * 3 * sizeof (float));
  // Steady: the same blocks, no more.
  EXPECT_EQ (pool_after_forwards (m.get (), rows, 3), kept);
  // Outside a forward, a block larger than any kept one is freed, not
  // kept (a model's load and teardown free blocks no forward asks for).
  NnShape big = shape ({ 6 << 20 });
  nn_tensor_unref (nn_tensor_new (NN_DTYPE_U8, &big));
  EXPECT_EQ (nn_tensor_pool_get_bytes (), kept);
  nn_tensor_pool_trim ();
}

// A block no forward took for two forwards goes back to the system, so a
// model run at changing sizes holds only what its current size needs.
TEST (Pool, BlocksIdleForTwoForwardsAreFreed)
{
  Registry reg = fixture_registry ();
  Module m = load (reg.get (), 3);
  ASSERT_NE (m, nullptr);
  const gint64 small = 100000, large = 200000;
  nn_tensor_pool_trim ();
  pool_after_forwards (m.get (), small, 1);  // builds the plan
  gsize large_alone = (nn_tensor_pool_trim (), pool_after_forwards (m.get (), large, 4));
  ASSERT_GT (large_alone, 0u);
  nn_tensor_pool_trim ();
  gsize small_kept = pool_after_forwards (m.get (), small, 3);
  ASSERT_GT (small_kept, 0u);
  // The small blocks cannot serve the large forwards and sit idle.
  EXPECT_EQ (pool_after_forwards (m.get (), large, 4), large_alone);
  nn_tensor_pool_trim ();
}

// nn_tensor_storage_new(): aligned storage from the same pool, freed
// outside forwards and training, kept within a training step.
TEST (Pool, ProviderStorage)
{
  nn_tensor_pool_trim ();
  const gsize n = 3 << 20;
  guint8 *p = (guint8 *) nn_tensor_storage_new (n);
  ASSERT_NE (p, nullptr);
  EXPECT_EQ ((guintptr) p % 64, 0u);
  memset (p, 0x5a, n);  // all of it is writable
  nn_tensor_storage_free (p);
  EXPECT_EQ (nn_tensor_pool_get_bytes (), 0u) << "freed outside a forward";
  nn_tensor_storage_free (nullptr);
  void *tiny = nn_tensor_storage_new (0);
  ASSERT_NE (tiny, nullptr);
  nn_tensor_storage_free (tiny);

  NnTape *tape = nn_tape_new (0);
  void *q = nn_tensor_storage_new (n);
  ASSERT_NE (q, nullptr);
  nn_tensor_storage_free (q);
  EXPECT_GE (nn_tensor_pool_get_bytes (), n) << "kept within a training step";
  void *again = nn_tensor_storage_new (n);
  EXPECT_EQ (again, q) << "and handed out again";
  nn_tensor_storage_free (again);
  nn_tape_free (tape);
  nn_tensor_pool_trim ();
  EXPECT_EQ (nn_tensor_pool_get_bytes (), 0u);
}

// Provider storage smaller than the pool keeps (1 MiB in a forward,
// 256 KiB in a training step) never takes a kept block: it would hold the
// block while the larger tensors after it allocate new ones (resnet18's
// pool grew by a block each forward).
TEST (Pool, SmallProviderStorageLeavesKeptBlocks)
{
  nn_tensor_pool_trim ();
  const gsize big = 3 << 20, small = 200 << 10;
  NnTape *tape = nn_tape_new (0);
  void *b = nn_tensor_storage_new (big);
  ASSERT_NE (b, nullptr);
  nn_tensor_storage_free (b);
  gsize kept = nn_tensor_pool_get_bytes ();
  ASSERT_GE (kept, big) << "kept within a training step";
  void *s = nn_tensor_storage_new (small);
  ASSERT_NE (s, nullptr);
  EXPECT_EQ (nn_tensor_pool_get_bytes (), kept) << "the small one took the kept block";
  void *b2 = nn_tensor_storage_new (big);
  EXPECT_EQ (b2, b) << "the large one gets the kept block back";
  EXPECT_EQ (nn_tensor_pool_get_bytes (), 0u);
  nn_tensor_storage_free (s);
  EXPECT_EQ (nn_tensor_pool_get_bytes (), 0u) << "a small block is freed, not kept";
  nn_tensor_storage_free (b2);
  nn_tape_free (tape);
  nn_tensor_pool_trim ();
}

}  // namespace
