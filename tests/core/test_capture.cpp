// Tests for core/capture.c: selecting modules by path, "#N" and glob, the
// captured outputs against each module run on its own input, saving them
// to safetensors, and the errors.
#include "nn-test.h"

#include <cstring>

extern "C" {
#include <glib/gstdio.h>
}

using namespace nntest;

namespace {

Tensor
random_input (const NnShape &s, guint32 seed)
{
  Tensor t (nn_tensor_new (NN_DTYPE_F32, &s));
  GRand *r = g_rand_new_with_seed (seed);
  for (gint64 i = 0; i < nn_tensor_numel (t.get ()); i++)
    nn_tensor_f32 (t.get ())[i] = (float) g_rand_double_range (r, -1.0, 1.0);
  g_rand_free (r);
  return t;
}

NnModule *
at (NnModule *root, const char *path)
{
  Error e;
  NnModule *m = nn_module_lookup_path (root, path, e.out ());
  EXPECT_TRUE (m) << e.message ();
  return m;
}

// Runs @path's module alone on @x.
Tensor
run (NnModule *root, const char *path, NnTensor *x)
{
  Error e;
  Tensor y (nn_module_forward (at (root, path), x, e.out ()));
  EXPECT_TRUE (y) << path << ": " << e.message ();
  return y;
}

// Same shape and values: the same module on the same input computes the
// same floats, so the comparison is exact.
void
expect_equal (NnTensor *got, NnTensor *want, const std::string &what)
{
  ASSERT_TRUE (got && want) << what;
  ASSERT_TRUE (nn_shape_equal (&got->shape, &want->shape))
      << what << ": " << shape_text (got->shape) << " vs " << shape_text (want->shape);
  EXPECT_EQ (std::memcmp (got->data, want->data, nn_tensor_nbytes (want)), 0) << what;
}

struct CaptureDeleter { void operator() (NnCapture *c) const { nn_capture_free (c); } };
using Capture = std::unique_ptr<NnCapture, CaptureDeleter>;

Capture
capture (NnModule *root, std::vector<const char *> refs, Error &e)
{
  return Capture (nn_capture_new (root, refs.data (), (guint) refs.size (), e.out ()));
}

std::vector<std::string>
output_names (NnCapture *cap)
{
  std::vector<std::string> names;
  GPtrArray *outs = nn_capture_get_outputs (cap);
  for (guint i = 0; i < outs->len; i++)
    names.push_back (((NnNamedItem *) outs->pdata[i])->name);
  return names;
}

NnTensor *
output (NnCapture *cap, const std::string &name)
{
  GPtrArray *outs = nn_capture_get_outputs (cap);
  for (guint i = 0; i < outs->len; i++) {
    auto *it = (NnNamedItem *) outs->pdata[i];
    if (name == it->name)
      return it->tensor;
  }
  ADD_FAILURE () << "no captured output " << name;
  return nullptr;
}

// Runs the capture on one tensor; returns the root's tensor result.
Tensor
capture_run (NnCapture *cap, NnTensor *x, Error &e)
{
  ValueRef args = value_tuple ({ nn_value_new_tensor (x) });
  ValueRef out (nn_capture_run (cap, args.get (), nullptr, e.out ()));
  if (!out)
    return Tensor ();
  NnTensor *t = nn_value_get_tensor (out.get ());
  EXPECT_TRUE (t) << "the root returned a non-tensor";
  return Tensor (t ? nn_tensor_ref (t) : nullptr);
}

class CaptureResnet : public ::testing::Test {
protected:
  void SetUp () override
  {
    reg = default_registry ();
    m = load_resnet18 (reg.get ());
    ASSERT_TRUE (m);
    nn_module_reset_parameters (m.get (), 3);
    x = random_input (shape ({1, 3, 64, 64}), 17);
    // The reference: each stage run on its own, in the order ResNet runs them.
    stem = run (m.get (), "conv1", x.get ());
    Tensor t = run (m.get (), "bn1", stem.get ());
    t = run (m.get (), "relu", t.get ());
    pooled = run (m.get (), "maxpool", t.get ());
    l1 = run (m.get (), "layer1", pooled.get ());
    l2 = run (m.get (), "layer2", l1.get ());
    l3 = run (m.get (), "layer3", l2.get ());
    l4 = run (m.get (), "layer4", l3.get ());
  }

  // The comparisons are exact: module-by-module runs against unfused ones.
  UnfusedScope unfused;
  Registry reg;
  Module m;
  Tensor x, stem, pooled, l1, l2, l3, l4;
};

}  // namespace

TEST_F (CaptureResnet, OutputsEqualEachModuleRunOnItsOwn)
{
  Error e;
  gint64 idx = nn_module_index_of (m.get (), at (m.get (), "layer4"));
  std::string ref4 = "#" + std::to_string (idx);
  Capture cap = capture (m.get (), {"conv1", ref4.c_str (), "layer1.0", "layer*.0.conv?"}, e);
  ASSERT_TRUE (cap) << e.message ();
  Tensor y (capture_run (cap.get (), x.get (), e).release ());
  ASSERT_TRUE (y) << e.message ();
  // Selection order; the glob expands in named_modules order.
  EXPECT_EQ (output_names (cap.get ()),
             (std::vector<std::string>{"conv1", "layer4", "layer1.0",
                                       "layer1.0.conv1", "layer1.0.conv2",
                                       "layer2.0.conv1", "layer2.0.conv2",
                                       "layer3.0.conv1", "layer3.0.conv2",
                                       "layer4.0.conv1", "layer4.0.conv2"}));
  expect_equal (output (cap.get (), "conv1"), stem.get (), "conv1");
  expect_equal (output (cap.get (), "layer4"), l4.get (), "layer4");
  expect_equal (output (cap.get (), "layer1.0"), run (m.get (), "layer1.0", pooled.get ()).get (), "layer1.0");
  expect_equal (output (cap.get (), "layer1.0.conv1"),
                run (m.get (), "layer1.0.conv1", pooled.get ()).get (), "layer1.0.conv1");
  expect_equal (output (cap.get (), "layer2.0.conv1"),
                run (m.get (), "layer2.0.conv1", l1.get ()).get (), "layer2.0.conv1");
  expect_equal (output (cap.get (), "layer4.0.conv1"),
                run (m.get (), "layer4.0.conv1", l3.get ()).get (), "layer4.0.conv1");
  // The root's output is the plain forward's.
  Tensor plain (nn_module_forward (m.get (), x.get (), e.out ()));
  expect_equal (y.get (), plain.get (), "root output");
  EXPECT_EQ (shape_text (output (cap.get (), "layer4")->shape), "[1, 512, 2, 2]");
}

TEST_F (CaptureResnet, AModuleRunTwiceKeepsItsLastOutput)
{
  // BasicBlock calls its one ReLU twice; the second call gives the block's
  // output.
  Error e;
  Capture cap = capture (m.get (), {"layer1.0.relu", "layer1.0"}, e);
  ASSERT_TRUE (cap) << e.message ();
  Tensor y (capture_run (cap.get (), x.get (), e).release ());
  ASSERT_TRUE (y) << e.message ();
  expect_equal (output (cap.get (), "layer1.0.relu"), output (cap.get (), "layer1.0"), "relu");
  // A second run replaces the outputs.
  Tensor x2 = random_input (shape ({2, 3, 32, 32}), 5);
  Tensor y2 (capture_run (cap.get (), x2.get (), e).release ());
  ASSERT_TRUE (y2) << e.message ();
  EXPECT_EQ (shape_text (output (cap.get (), "layer1.0")->shape), "[2, 64, 8, 8]");
}

TEST_F (CaptureResnet, SavesUnderPathsAndReadsBack)
{
  Error e;
  Capture cap = capture (m.get (), {"conv1", "layer2", "layer3"}, e);
  ASSERT_TRUE (cap) << e.message ();
  g_autofree char *dir = g_dir_make_tmp ("nn-capture-XXXXXX", nullptr);
  ASSERT_TRUE (dir);
  std::string path = std::string (dir) + "/acts.safetensors";
  // Saving before any run is an error and writes nothing.
  EXPECT_FALSE (nn_capture_save (cap.get (), path.c_str (), e.out ()));
  EXPECT_TRUE (e.message ().find (path) != std::string::npos) << e.message ();
  EXPECT_TRUE (e.message ().find ("run the capture first") != std::string::npos) << e.message ();
  EXPECT_FALSE (g_file_test (path.c_str (), G_FILE_TEST_EXISTS));

  Tensor y (capture_run (cap.get (), x.get (), e).release ());
  ASSERT_TRUE (y) << e.message ();
  ASSERT_TRUE (nn_capture_save (cap.get (), path.c_str (), e.out ())) << e.message ();
  {
    Safetensors st (nn_safetensors_open (path.c_str (), e.out ()));
    ASSERT_TRUE (st) << e.message ();
    EXPECT_EQ (nn_safetensors_n_tensors (st.get ()), 3u);
    std::vector<std::pair<const char *, NnTensor *>> want = {
      {"conv1", stem.get ()}, {"layer2", l2.get ()}, {"layer3", l3.get ()}};
    for (auto &[name, ref] : want) {
      Tensor t (nn_safetensors_get (st.get (), name, NN_DTYPE_F32, e.out ()));
      ASSERT_TRUE (t) << name << ": " << e.message ();
      expect_equal (t.get (), ref, name);
    }
  }
  // A failed save (no such directory) leaves nothing behind.
  std::string bad = std::string (dir) + "/missing/acts.safetensors";
  EXPECT_FALSE (nn_capture_save (cap.get (), bad.c_str (), e.out ()));
  EXPECT_TRUE (e.message ().find ("missing") != std::string::npos) << e.message ();
  g_unlink (path.c_str ());
  EXPECT_EQ (g_rmdir (dir), 0) << "stray files left in " << dir;
}

TEST_F (CaptureResnet, FreeRemovesItsHooks)
{
  Error e;
  NnModule *conv1 = at (m.get (), "conv1");
  {
    Capture cap = capture (m.get (), {"conv1", "layer1.*"}, e);
    ASSERT_TRUE (cap) << e.message ();
    Array hooks (nn_module_list_hooks (conv1));
    ASSERT_EQ (hooks->len, 1u);
    EXPECT_STREQ (((NnHookInfo *) hooks->pdata[0])->label, "capture");
  }
  Array mods (nn_module_named_modules (m.get ()));
  for (guint i = 0; i < mods->len; i++) {
    auto *it = (NnNamedItem *) mods->pdata[i];
    Array hooks (nn_module_list_hooks (it->module));
    EXPECT_EQ (hooks->len, 0u) << it->name;
  }
}

TEST_F (CaptureResnet, SelectingNothingOrABadRefFails)
{
  Error e;
  EXPECT_FALSE (capture (m.get (), {"conv1", "head*"}, e));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND)) << e.message ();
  EXPECT_EQ (e.message (), "capture: glob 'head*' matches no module");
  EXPECT_FALSE (capture (m.get (), {"layer1.0.conv3"}, e));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND)) << e.message ();
  EXPECT_TRUE (e.message ().find ("'layer1.0'") != std::string::npos) << e.message ();
  EXPECT_FALSE (capture (m.get (), {"#99"}, e));
  EXPECT_TRUE (e.message ().find ("#99 is out of range") != std::string::npos) << e.message ();
  // A failed selection leaves no hook behind (conv1 was selected first).
  Array hooks (nn_module_list_hooks (at (m.get (), "conv1")));
  EXPECT_EQ (hooks->len, 0u);
}

namespace {

// A Graph whose dataflow uses only "body": "aux" never runs, "extras" is
// a ModuleList (no forward at all).
const char *const kPartial = R"({
  "format": "nnkit", "version": 1,
  "model": {"type": "Graph",
    "config": {"inputs": ["x"], "nodes": [{"name": "body", "module": "body", "args": ["x"]}],
               "output": "body"},
    "children": [
      {"name": "body", "type": "FixtureLinear", "config": {"in_features": 3, "out_features": 2}},
      {"name": "aux", "type": "FixtureLinear", "config": {"in_features": 3, "out_features": 2}},
      {"name": "extras", "type": "ModuleList", "children": [
        {"name": "0", "type": "FixtureAffine"}]}]}})";

}  // namespace

TEST (Capture, ModuleListAndModulesThatNeverRun)
{
  Registry reg = fixture_registry ();
  Error e;
  Module m (nn_descriptor_load_data (reg.get (), kPartial, -1, "partial.json", e.out ()));
  ASSERT_TRUE (m) << e.message ();
  EXPECT_FALSE (capture (m.get (), {"extras"}, e));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NO_FORWARD)) << e.message ();
  EXPECT_EQ (e.message (), "cannot capture 'extras': ModuleList has no forward(), so it has no output");
  // A glob skips the ModuleList but keeps what it matches below it...
  Capture some = capture (m.get (), {"extras*"}, e);
  ASSERT_TRUE (some) << e.message ();
  // ...and a glob that matches only modules without forward is an error.
  EXPECT_FALSE (capture (m.get (), {"ext?as"}, e));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NO_FORWARD)) << e.message ();
  EXPECT_TRUE (e.message ().find ("'ext?as'") != std::string::npos) << e.message ();

  Capture cap = capture (m.get (), {"body", "aux"}, e);
  ASSERT_TRUE (cap) << e.message ();
  Tensor x = random_input (shape ({1, 3}), 2);
  EXPECT_FALSE (capture_run (cap.get (), x.get (), e));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND)) << e.message ();
  EXPECT_EQ (e.message (), "capture: 'aux' did not run during the forward");
  EXPECT_EQ (nn_capture_get_outputs (cap.get ())->len, 0u);
  // A forward error comes back as it is.
  Tensor bad = random_input (shape ({1, 5}), 2);
  EXPECT_FALSE (capture_run (cap.get (), bad.get (), e));
  EXPECT_TRUE (e.message ().find ("body") != std::string::npos) << e.message ();
}

TEST (Capture, SelectingOneModuleTwiceCapturesItOnce)
{
  Registry reg = fixture_registry ();
  Error e;
  Module m (nn_descriptor_load_data (reg.get (), kPartial, -1, "partial.json", e.out ()));
  ASSERT_TRUE (m) << e.message ();
  nn_module_reset_parameters (m.get (), 1);
  Capture cap = capture (m.get (), {"body", "#1", "b*"}, e);
  ASSERT_TRUE (cap) << e.message ();
  Tensor x = random_input (shape ({4, 3}), 2);
  Tensor y (capture_run (cap.get (), x.get (), e).release ());
  ASSERT_TRUE (y) << e.message ();
  EXPECT_EQ (output_names (cap.get ()), (std::vector<std::string>{"body"}));
  expect_equal (output (cap.get (), "body"), y.get (), "body");
  Array hooks (nn_module_list_hooks (at (m.get (), "body")));
  EXPECT_EQ (hooks->len, 1u);
}

// Structured outputs are captured leaf by leaf under the rule of
// nn_value_foreach_tensor: "lstm" for a tensor, "lstm.0", "lstm.1.0" for
// LSTM's (out, (h_n, c_n)), "pair.sum" for a dict item.
TEST (Capture, TensorLeavesOfStructuredOutputsAreNamedByPosition)
{
  Registry reg = fixture_registry ();
  Error e;
  Module m = load_json (reg.get (), R"({"type": "Graph",
    "config": {"inputs": ["x"], "nodes": [
      {"name": "n", "module": "lstm", "args": ["x"]},
      {"name": "p", "module": "pair", "args": ["x"], "kwargs": {"as_dict": true}},
      {"name": "a", "module": "aff", "args": ["x"]}],
     "output": {"tuple": ["n", "a"]}},
    "children": [{"name": "lstm", "type": "FixtureNest"}, {"name": "pair", "type": "FixturePair"},
                 {"name": "aff", "type": "FixtureAffine", "config": {"shift": 1.0}}]})");
  ASSERT_TRUE (m);
  Capture cap = capture (m.get (), {"lstm", "pair", "aff"}, e);
  ASSERT_TRUE (cap) << e.message ();
  Tensor x = tensor_f32 ({2}, [] (gint64 i) { return 1.0f + i; });
  ValueRef args = value_tuple ({ nn_value_new_tensor (x.get ()) });
  ValueRef out (nn_capture_run (cap.get (), args.get (), nullptr, e.out ()));
  ASSERT_TRUE (out) << e.message ();
  EXPECT_EQ (take (nn_value_to_string (out.get ())),
             "((Tensor[2] F32, (Tensor[2] F32, Tensor[2] F32)), Tensor[2] F32)");
  EXPECT_EQ (output_names (cap.get ()),
             (std::vector<std::string>{"lstm.0", "lstm.1.0", "lstm.1.1", "pair.sum", "pair.diff", "aff"}));
  EXPECT_FLOAT_EQ (nn_tensor_f32 (output (cap.get (), "lstm.1.1"))[1], 6.0f);
  EXPECT_FLOAT_EQ (nn_tensor_f32 (output (cap.get (), "pair.sum"))[1], 4.0f);
  EXPECT_FLOAT_EQ (nn_tensor_f32 (output (cap.get (), "aff"))[0], 2.0f);
  g_autofree char *dir = g_dir_make_tmp ("nn-capture-XXXXXX", nullptr);
  std::string path = std::string (dir) + "/acts.safetensors";
  ASSERT_TRUE (nn_capture_save (cap.get (), path.c_str (), e.out ())) << e.message ();
  Safetensors st (nn_safetensors_open (path.c_str (), e.out ()));
  ASSERT_TRUE (st) << e.message ();
  Tensor h (nn_safetensors_get (st.get (), "lstm.1.0", NN_DTYPE_F32, e.out ()));
  ASSERT_TRUE (h) << e.message ();
  EXPECT_FLOAT_EQ (nn_tensor_f32 (h.get ())[1], 4.0f);
  g_unlink (path.c_str ());
  g_rmdir (dir);
}
