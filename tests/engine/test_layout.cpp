// Laid-out tensors (core/layout.c, plugins/dnnl/dnnl_layout.c,
// docs/ENGINE.md "Memory"): oneDNN steps hand their blocked results to the
// next oneDNN step, and everything else sees plain tensors.  Results with
// layouts on agree with layouts off (1e-5) and with PyTorch (models
// exported at test time by layout_models.py, seeded weights); hooks,
// the root's caller, the tape and plain types see exactly PyTorch's plain
// values; a conv -> conv chain skips the reorders (counted); the
// nn_tensor_* API behaves on a laid-out tensor of a layout defined here.
// The oneDNN cases skip when Conv2d does not run on oneDNN.
#include "nn-test.h"

#include <nnkit/train.h>
#include <nnkit/hooks.h>
#include <nnkit/providers.h>

#include <glib/gstdio.h>
#include <dlfcn.h>
#include <sys/wait.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace nntest;

namespace {

std::vector<float>
values (NnTensor *t)
{
  EXPECT_TRUE (nn_tensor_is_plain (t));
  const float *d = nn_tensor_f32 (t);
  if (!d)
    return {};
  return std::vector<float> (d, d + nn_tensor_numel (t));
}

// Largest |a - b| / (1 + |b|): absolute near 0, relative for large values.
double
max_diff (const std::vector<float> &a, const std::vector<float> &b)
{
  if (a.size () != b.size () || a.empty ())
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
read_raw (const std::string &path)
{
  std::ifstream f (path, std::ios::binary);
  std::vector<char> b ((std::istreambuf_iterator<char> (f)), std::istreambuf_iterator<char> ());
  std::vector<float> v (b.size () / sizeof (float));
  if (!v.empty ())
    std::memcpy (v.data (), b.data (), v.size () * sizeof (float));
  return v;
}

// Whether Conv2d runs on oneDNN here: the plugin is built and no rule
// (NN_PROVIDERS=-dnnl, as scripts/test.sh's leak-checked run sets) keeps
// it from being chosen.
bool
dnnl_active (NnRegistry *reg)
{
  Array list (nn_registry_list_providers (reg, "Conv2d", nullptr));
  if (!list || list->len == 0)
    return false;
  auto *first = (NnProviderInfo *) list->pdata[0];
  return g_strcmp0 (first->plugin, "dnnl") == 0 && !first->excluded;
}

// Every tensor leaf of a result, in order, each checked plain.
std::vector<std::vector<float>>
results (NnModule *m, NnTensor *x)
{
  Error e;
  ValueRef args = value_tuple ({ nn_value_new_tensor (x) });
  ValueRef out (nn_module_call (m, args.get (), nullptr, e.out ()));
  EXPECT_TRUE (out) << e.message ();
  std::vector<std::vector<float>> r;
  if (!out)
    return r;
  nn_value_foreach_tensor (out.get (), "", [] (const char *, NnTensor *t, gpointer p) {
    EXPECT_TRUE (nn_tensor_is_plain (t));
    EXPECT_EQ (nn_tensor_get_layout (t, nullptr, nullptr), nullptr);
    static_cast<std::vector<std::vector<float>> *> (p)->push_back (values (t));
  }, &r);
  return r;
}

// @m's module at @path run alone on @x with layouts off (left off), so
// its result is plain: the reference a test computes from.  NULL, with
// a test failure, when the forward fails.
Tensor
alone_plain (NnModule *m, const char *path, NnTensor *x)
{
  nn_engine_set_layouts (FALSE);
  Error e;
  Tensor y (nn_module_forward (nn_module_lookup_path (m, path, nullptr), x, e.out ()));
  EXPECT_TRUE (y) << path << ": " << e.message ();
  return y;
}

// Layouts off, then on (the second planned forward of each: the first
// records the plan), with the reorders each forward ran.
struct OnOff {
  std::vector<std::vector<float>> off, on;
  guint64 off_reorders = 0, on_reorders = 0;
};

OnOff
on_off (NnModule *m, NnTensor *x)
{
  OnOff r;
  nn_engine_set_layouts (FALSE);
  results (m, x);
  guint64 c0 = nn_engine_get_reorder_count ();
  r.off = results (m, x);
  r.off_reorders = nn_engine_get_reorder_count () - c0;
  nn_engine_set_layouts (TRUE);
  results (m, x);
  c0 = nn_engine_get_reorder_count ();
  r.on = results (m, x);
  r.on_reorders = nn_engine_get_reorder_count () - c0;
  return r;
}

// Exports into a fresh directory once per process; "" when torch is
// missing.
std::string
exported ()
{
  static std::string dir;
  static bool done;
  if (done)
    return dir;
  done = true;
  char *tmp = g_dir_make_tmp ("nn-layout-XXXXXX", nullptr);
  std::string script = source_path ("tests/engine/layout_models.py");
  const char *argv[] = { "/usr/bin/python3", script.c_str (), tmp, nullptr };
  int status = -1;
  char *err = nullptr;
  gboolean ran = g_file_test (argv[0], G_FILE_TEST_IS_EXECUTABLE)
                 && g_spawn_sync (nullptr, (char **) argv, nullptr, G_SPAWN_DEFAULT,
                                  nullptr, nullptr, nullptr, &err, &status, nullptr);
  if (ran && g_spawn_check_wait_status (status, nullptr))
    dir = tmp;
  else if (ran && !(WIFEXITED (status) && WEXITSTATUS (status) == 77))
    ADD_FAILURE () << "layout_models.py failed: " << (err ? err : "");
  g_free (err);
  g_free (tmp);
  return dir;
}

struct Layout : ::testing::Test {
  Registry reg = default_registry ();
  std::string dir;
  void SetUp () override
  {
    if (!dnnl_active (reg.get ()))
      GTEST_SKIP () << "Conv2d does not run on oneDNN here (not built, or excluded)";
  }
  void TearDown () override { nn_engine_set_layouts (TRUE); }

  // The exported model @name and its input; skips without torch.
  Module load (const char *name)
  {
    dir = exported ();
    if (dir.empty ())
      return Module ();
    Error e;
    std::string path = dir + "/" + name + ".json";
    Module m (nn_model_load (reg.get (), path.c_str (), nullptr, FALSE, e.out ()));
    EXPECT_TRUE (m) << e.message ();
    return m;
  }
  Tensor input (const char *name, std::initializer_list<gint64> dims)
  {
    auto v = read_raw (dir + "/" + name + "_in.bin");
    return tensor_f32 (dims, [&] (gint64 i) { return v.at (i); });
  }
  std::vector<float> torch (const std::string &file) { return read_raw (dir + "/" + file); }
};

#define LOAD_OR_SKIP(m, name)                                   \
  Module m = load (name);                                       \
  if (dir.empty ())                                             \
    GTEST_SKIP () << "python3-torch not available";             \
  ASSERT_TRUE (m)

// --- descriptor models: the reorders a chain runs --------------------------

const char *kChain = R"({"type": "Sequential", "children": [
  {"name": "a", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
     "kernel_size": 3, "padding": 1}},
  {"name": "b", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
     "kernel_size": 3, "padding": 1}},
  {"name": "p", "type": "MaxPool2d", "config": {"kernel_size": 2}},
  {"name": "c", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
     "kernel_size": 1}}]})";

Tensor
chain_input ()
{
  return tensor_f32 ({ 2, 16, 8, 8 }, [] (gint64 i) {
    return (float) std::sin (0.37 * (double) i);
  });
}

// The descriptor model @json, its parameters reset from @seed, run on
// chain_input () with layouts off, then on; @n_results leaves expected.
OnOff
chain_on_off (NnRegistry *reg, const char *json, guint32 seed, size_t n_results)
{
  Module m = load_json (reg, json);
  EXPECT_TRUE (m);
  if (!m)
    return OnOff ();
  nn_module_reset_parameters (m.get (), seed);
  Tensor x = chain_input ();
  OnOff r = on_off (m.get (), x.get ());
  EXPECT_EQ (r.on.size (), n_results);
  EXPECT_EQ (r.off.size (), n_results);
  return r;
}

TEST_F (Layout, ConvChainSkipsReordersAndAgreesWithLayoutsOff)
{
  OnOff r = chain_on_off (reg.get (), kChain, 3, 1);
  ASSERT_EQ (r.on.size (), 1u);
  EXPECT_LT (max_diff (r.on[0], r.off[0]), 1e-5);
  // Off: each step reorders in and out when its primitive chose a blocked
  // layout.  On: at most the first step's input and the root's result.
  EXPECT_LE (r.on_reorders, 2u);
  if (r.off_reorders > 0) {
    EXPECT_GE (r.off_reorders, 6u);
    EXPECT_LT (r.on_reorders, r.off_reorders);
  }
}

// A BatchNorm between two convolutions, not folded (fusion off): with
// layouts on it normalises the blocked result in its layout on oneDNN;
// with them off its input is plain and it runs the reference kernel.  The
// two agree, and on stays within the chain's two reorders.
const char *kNormChain = R"({"type": "Sequential", "children": [
  {"name": "a", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
     "kernel_size": 3, "padding": 1}},
  {"name": "bn", "type": "BatchNorm2d", "config": {"num_features": 16}},
  {"name": "c", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
     "kernel_size": 1}}]})";

TEST_F (Layout, BatchNormNormalisesBlockedInputsInTheirLayoutAndPlainOnesOnTheReference)
{
  UnfusedScope unfused;
  Module m = load_json (reg.get (), kNormChain);
  ASSERT_TRUE (m);
  nn_module_reset_parameters (m.get (), 5);
  NnModule *bn = nn_module_get_child (m.get (), "bn");
  const char *names[] = { "running_mean", "running_var" };
  for (int k = 0; k < 2; k++) {
    NnTensor *t = nn_module_get_buffer (bn, names[k]);
    for (gint64 i = 0; i < 16; i++)
      nn_tensor_f32 (t)[i] = k ? 0.5f + 0.1f * (float) i : 0.2f * (float) (i % 5) - 0.4f;
  }
  for (const char *p : { "weight", "bias" }) {
    NnTensor *t = nn_module_get_parameter (bn, p);
    for (gint64 i = 0; i < 16; i++)
      nn_tensor_f32 (t)[i] = (float) std::cos (0.7 * (double) i) + (p[0] == 'w' ? 1.5f : 0.0f);
  }
  Tensor x = chain_input ();
  OnOff r = on_off (m.get (), x.get ());
  ASSERT_EQ (r.on.size (), 1u);
  EXPECT_LT (max_diff (r.on[0], r.off[0]), 1e-5);
  EXPECT_LE (r.on_reorders, 2u);
}

// torch.cat of convolutions' results along the channels, as Inception's
// branches and DenseNet's layers: joined in their layout by oneDNN's
// concat (dnnl_cat.c), a pooled input beside them reordered into it,
// read as is by the next convolution.  Joins the provider leaves to the
// reference (along another dim, with the plain input) agree too.
const char *kJoin = R"({"type": "Graph", "config": {"inputs": ["x"], "nodes": [
    {"name": "a", "module": "a", "args": ["x"]},
    {"name": "b", "module": "b", "args": ["x"]},
    {"name": "p", "module": "p", "args": ["x"]},
    {"name": "j", "op": "cat", "args": [["a", "b"], 1]},
    {"name": "c", "module": "c", "args": ["j"]},
    {"name": "k", "op": "cat", "args": [["p", "c", "a"], 1]},
    {"name": "d", "module": "d", "args": ["k"]},
    {"name": "h", "op": "cat", "args": [["c", "d"], 2]},
    {"name": "w", "op": "cat", "args": [["x", "a"], 1]}],
    "output": {"tuple": ["d", "h", "w"]}},
  "children": [
    {"name": "a", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
       "kernel_size": 3, "padding": 1}},
    {"name": "b", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 32,
       "kernel_size": 1}},
    {"name": "p", "type": "MaxPool2d", "config": {"kernel_size": 3, "stride": 1, "padding": 1}},
    {"name": "c", "type": "Conv2d", "config": {"in_channels": 48, "out_channels": 16,
       "kernel_size": 1}},
    {"name": "d", "type": "Conv2d", "config": {"in_channels": 48, "out_channels": 16,
       "kernel_size": 3, "padding": 1}}]})";

TEST_F (Layout, ChannelJoinsOfLaidOutResultsAgreeWithLayoutsOff)
{
  OnOff r = chain_on_off (reg.get (), kJoin, 11, 3);
  for (size_t i = 0; i < r.on.size () && i < r.off.size (); i++)
    EXPECT_LT (max_diff (r.on[i], r.off[i]), 1e-5) << "result " << i;
}

// Two convolutions' results joined and read by a third: the join runs in
// their layout, so the chain reorders no more than a plain chain's ends
// (the input in, the result out).
const char *kJoinChain = R"({"type": "Graph", "config": {"inputs": ["x"], "nodes": [
    {"name": "a", "module": "a", "args": ["x"]},
    {"name": "b", "module": "b", "args": ["a"]},
    {"name": "j", "op": "cat", "args": [["a", "b"], 1]},
    {"name": "c", "module": "c", "args": ["j"]}],
    "output": "c"},
  "children": [
    {"name": "a", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
       "kernel_size": 3, "padding": 1}},
    {"name": "b", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
       "kernel_size": 3, "padding": 1}},
    {"name": "c", "type": "Conv2d", "config": {"in_channels": 32, "out_channels": 16,
       "kernel_size": 3, "padding": 1}}]})";

TEST_F (Layout, ChannelJoinBetweenConvolutionsRunsInTheirLayout)
{
  OnOff r = chain_on_off (reg.get (), kJoinChain, 13, 1);
  ASSERT_EQ (r.on.size (), 1u);
  EXPECT_LT (max_diff (r.on[0], r.off[0]), 1e-5);
  EXPECT_LE (r.on_reorders, 2u);
}

// cat's checks stay the reference's with laid-out operands: PyTorch's
// message for sizes that do not match.
TEST_F (Layout, ChannelJoinOfMismatchedSizesFailsAsPyTorch)
{
  const char *bad = R"({"type": "Graph", "config": {"inputs": ["x"], "nodes": [
      {"name": "a", "module": "a", "args": ["x"]},
      {"name": "b", "module": "b", "args": ["x"]},
      {"name": "j", "op": "cat", "args": [["a", "b"], 1]}],
      "output": "j"},
    "children": [
      {"name": "a", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
         "kernel_size": 3, "padding": 1}},
      {"name": "b", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
         "kernel_size": 3}}]})";
  Module m = load_json (reg.get (), bad);
  ASSERT_TRUE (m);
  nn_module_reset_parameters (m.get (), 12);
  Tensor x = chain_input ();
  ValueRef args = value_tuple ({ nn_value_new_tensor (x.get ()) });
  Error e;
  ValueRef out (nn_module_call (m.get (), args.get (), nullptr, e.out ()));
  ASSERT_FALSE (out);
  EXPECT_NE (e.message ().find ("Sizes of tensors must match except in dimension 1"),
             std::string::npos) << e.message ();
}

// A grouped convolution of 4 channels per group between two ordinary
// ones: oneDNN picks narrower blocks for it, so its input and its result
// change layouts.  Each change is one reorder, straight from the
// producer's layout into the consumer's (not through plain: two), and
// the values agree with layouts off.
const char *kRelayout = R"({"type": "Sequential", "children": [
  {"name": "a", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
     "kernel_size": 3, "padding": 1}},
  {"name": "g", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
     "kernel_size": 3, "padding": 1, "groups": 4}},
  {"name": "c", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
     "kernel_size": 3, "padding": 1}}]})";

TEST_F (Layout, ALayoutChangeBetweenStepsIsOneReorder)
{
  OnOff r = chain_on_off (reg.get (), kRelayout, 14, 1);
  ASSERT_EQ (r.on.size (), 1u);
  EXPECT_LT (max_diff (r.on[0], r.off[0]), 1e-5);
  // The input in, the result out, and at most one per change of layout
  // between the three steps.
  EXPECT_LE (r.on_reorders, 4u) << "layouts off: " << r.off_reorders;
}

// At batch 1 a direct convolution takes oneDNN's own layout rather than
// its input's (dnnl_conv2d.c, conv_direct_own_layout), while a 3x3
// stride-1 one of a wide image may take Winograd's blocked layout: the
// steps then change layouts, and a residual add joins a result of one
// layout with a value of the other.  The values agree with layouts off,
// batch 1 and batch 2 alike, and each change costs one reorder at most.
const char *kMixedLayouts = R"({"type": "Graph", "config": {"inputs": ["x"], "nodes": [
    {"name": "w", "module": "w", "args": ["x"]},
    {"name": "r", "op": "relu", "args": ["w"]},
    {"name": "s", "module": "s", "args": ["r"]},
    {"name": "d", "module": "d", "args": ["r"]},
    {"name": "sum", "op": "add", "args": ["s", "d"]},
    {"name": "o", "module": "o", "args": ["sum"]}],
    "output": "o"},
  "children": [
    {"name": "w", "type": "Conv2d", "config": {"in_channels": 64, "out_channels": 64,
       "kernel_size": 3, "padding": 1}},
    {"name": "s", "type": "Conv2d", "config": {"in_channels": 64, "out_channels": 64,
       "kernel_size": 3, "padding": 1, "stride": 2}},
    {"name": "d", "type": "Conv2d", "config": {"in_channels": 64, "out_channels": 64,
       "kernel_size": 1, "stride": 2}},
    {"name": "o", "type": "Conv2d", "config": {"in_channels": 64, "out_channels": 32,
       "kernel_size": 3, "padding": 1}}]})";

TEST_F (Layout, MixedLayoutsAtBatchOneAgreeWithLayoutsOff)
{
  // 64 channels: resnet18's first block's size, Winograd at batch 1 on
  // AVX-512; 24: blocked layouts pad them to 32, and a primitive keeps
  // its padded reorder buffer between runs (dnnl_common.c, run_buffer).
  for (const char *c : { "64", "24" })
  for (gint64 batch : { 1, 2 }) {
    SCOPED_TRACE (std::string (c) + " channels, batch " + std::to_string (batch));
    std::string json = kMixedLayouts;
    for (size_t at = 0; (at = json.find ("64", at)) != std::string::npos; at += 2)
      json.replace (at, 2, c);
    Module m = load_json (reg.get (), json.c_str ());
    ASSERT_TRUE (m);
    nn_module_reset_parameters (m.get (), 21);
    gint64 ch = std::stoll (c);
    Tensor x = tensor_f32 ({ batch, ch, 56, 56 }, [] (gint64 i) {
      return (float) std::cos (0.113 * (double) i);
    });
    OnOff r = on_off (m.get (), x.get ());
    ASSERT_EQ (r.on.size (), 1u);
    ASSERT_EQ (r.off.size (), 1u);
    EXPECT_LT (max_diff (r.on[0], r.off[0]), 1e-4);
    // In, out, and one per change between the four convolutions and the
    // add (five steps reading laid-out values).
    EXPECT_LE (r.on_reorders, 7u) << "layouts off: " << r.off_reorders;
  }
}

// Runs @m on @x once, then four more times, each result checked against
// the first, and returns how many convolutions and Winograd weight
// reorders oneDNN created in those four (its own log, as ONEDNN_VERBOSE
// prints it; -1 when oneDNN is not loaded).  @log gets that log.
int
convolutions_created_later (NnModule *m, NnTensor *x, std::string *log)
{
  void *lib = dlopen ("libdnnl.so.2", RTLD_NOW | RTLD_NOLOAD);
  auto set_verbose = lib ? (int (*) (int)) dlsym (lib, "dnnl_set_verbose") : nullptr;
  if (!set_verbose) {
    ADD_FAILURE () << "the dnnl provider did not load oneDNN";
    return -1;
  }
  std::vector<std::vector<float>> first = results (m, x);
  EXPECT_EQ (first.size (), 1u);
  testing::internal::CaptureStdout ();
  set_verbose (2);
  for (int i = 0; i < 4; i++)
    EXPECT_EQ (results (m, x), first) << "forward " << i + 2;
  set_verbose (0);
  fflush (stdout);
  *log = testing::internal::GetCapturedStdout ();
  int created = 0;
  std::istringstream lines (*log);
  for (std::string line; std::getline (lines, line);)
    if (line.find (",create:") != std::string::npos
        && (line.find (",convolution,") != std::string::npos
            || line.find ("wino") != std::string::npos))
      created++;
  return created;
}

// A convolution built on oneDNN's own layout reorders an input laid out
// otherwise and keeps its primitive: the rebuild that lets a primitive
// follow a producer settling its layout (the first three forwards) is
// for the convolutions that read their input's layout.  Counted in
// oneDNN's own log: no convolution is created after the first forward.
TEST_F (Layout, OwnLayoutConvolutionsAreNotRebuiltForTheirInputsLayout)
{
  Module m = load_json (reg.get (), kMixedLayouts);
  ASSERT_TRUE (m);
  nn_module_reset_parameters (m.get (), 23);
  Tensor x = tensor_f32 ({ 1, 64, 56, 56 }, [] (gint64 i) {
    return (float) std::sin (0.071 * (double) i);
  });
  std::string log;
  EXPECT_EQ (convolutions_created_later (m.get (), x.get (), &log), 0) << log;
}

// A convolution whose primitive cannot read its input's layout as is
// (Winograd's blocks, fed the NHWC result of a 1x1 convolution on
// oneDNN's own layout, as resnet50's layer1 at batch 1) reorders it in at
// every run; it is rebuilt only when the producer changes its layout.
// It was rebuilt in the second and third forwards, its weights
// transformed again each time by oneDNN's scalar Winograd reorder
// (resnet50's third forward: 44.4 ms against a steady 39).
TEST_F (Layout, ConvolutionsFedTheLayoutTheyWereBuiltForAreNotRebuilt)
{
  Module m = load_json (reg.get (), R"({"type": "Sequential", "children": [
      {"name": "a", "type": "Conv2d", "config": {"in_channels": 64, "out_channels": 64, "kernel_size": 1}},
      {"name": "act", "type": "ReLU"},
      {"name": "b", "type": "Conv2d", "config": {"in_channels": 64, "out_channels": 64,
         "kernel_size": 3, "padding": 1}}]})");
  ASSERT_TRUE (m);
  nn_module_reset_parameters (m.get (), 29);
  Tensor x = tensor_f32 ({ 1, 64, 56, 56 }, [] (gint64 i) {
    return (float) std::sin (0.037 * (double) i);
  });
  std::string log;
  EXPECT_EQ (convolutions_created_later (m.get (), x.get (), &log), 0) << log;
}

// A residual block as a Graph: conv -> relu -> conv, added to a 1x1
// conv of the input (both blocked: the add runs on the buffers), relu;
// then an add with alpha and an add of a plain value (the reference adds
// plain tensors).  Checked against the same graph with layouts off and
// against code in this file.
const char *kResidual = R"({"type": "Graph", "config": {"inputs": ["x"], "nodes": [
    {"name": "a", "module": "a", "args": ["x"]},
    {"name": "r1", "op": "relu", "args": ["a"]},
    {"name": "b", "module": "b", "args": ["r1"]},
    {"name": "d", "module": "d", "args": ["x"]},
    {"name": "s", "op": "add", "args": ["b", "d"]},
    {"name": "r2", "module": "act", "args": ["s"]},
    {"name": "c", "module": "c", "args": ["r2"]},
    {"name": "s2", "op": "add", "args": ["c", "r2"], "kwargs": {"alpha": 0.5}},
    {"name": "s3", "op": "add", "args": ["s2", "x"]}],
    "output": "s3"},
  "children": [
    {"name": "a", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
       "kernel_size": 1}},
    {"name": "b", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
       "kernel_size": 3, "padding": 1}},
    {"name": "d", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
       "kernel_size": 1}},
    {"name": "act", "type": "ReLU"},
    {"name": "c", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
       "kernel_size": 1}}]})";

TEST_F (Layout, ResidualAddAndReluKeepTheLayoutAndAgree)
{
  Module m = load_json (reg.get (), kResidual);
  ASSERT_TRUE (m);
  nn_module_reset_parameters (m.get (), 5);
  Tensor x = chain_input ();
  OnOff r = on_off (m.get (), x.get ());
  ASSERT_EQ (r.on.size (), 1u);
  EXPECT_LT (max_diff (r.on[0], r.off[0]), 1e-5);
  EXPECT_LT (r.on_reorders, r.off_reorders);

  // Against each step run alone on plain tensors (layouts off, so every
  // module's result is plain; the adds and relus computed here).
  auto run = [&] (const char *path, const std::vector<float> &in) {
    Tensor t = tensor_f32 ({ 2, 16, 8, 8 }, [&] (gint64 i) { return in.at (i); });
    Tensor y = alone_plain (m.get (), path, t.get ());
    return y ? values (y.get ()) : std::vector<float> ();
  };
  auto relu = [] (std::vector<float> v) {
    for (auto &f : v)
      f = f < 0 ? 0 : f;
    return v;
  };
  std::vector<float> xv = values (x.get ());
  auto bv = run ("b", relu (run ("a", xv)));
  auto dv = run ("d", xv);
  std::vector<float> r2 (bv.size ());
  for (size_t i = 0; i < r2.size (); i++)
    r2[i] = bv[i] + dv[i];
  r2 = relu (r2);
  auto cv = run ("c", r2);
  std::vector<float> want (cv.size ());
  for (size_t i = 0; i < want.size (); i++)
    want[i] = (cv[i] + 0.5f * r2[i]) + xv[i];
  EXPECT_LT (max_diff (r.on[0], want), 1e-5);
}

// A squeeze-excitation scale: a blocked conv result times a plain
// per-channel factor, in both orders (oneDNN's binary primitive), then a
// product with a Python float (the reference, on plain tensors) and a
// blocked result squared (element by element on the buffers).  Both
// convs are 1x1, as before the excitation in EfficientNet: a 3x3 conv
// would run Winograd from batch 2, in nChw16c, whose
// per-channel product oneDNN 2.6 has only its reference binary kernel for
// (the plain reference then multiplies).
const char *kScale = R"({"type": "Graph", "config": {"inputs": ["x", "s"], "nodes": [
    {"name": "a", "module": "a", "args": ["x"]},
    {"name": "m1", "op": "mul", "args": ["a", "s"]},
    {"name": "m2", "op": "mul", "args": ["s", "m1"]},
    {"name": "c", "module": "c", "args": ["m2"]},
    {"name": "m3", "op": "mul", "args": ["c", 2.5]},
    {"name": "m4", "op": "mul", "args": ["c", "c"]}],
    "output": {"tuple": ["m2", "m3", "m4"]}},
  "children": [
    {"name": "a", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
       "kernel_size": 1}},
    {"name": "c", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
       "kernel_size": 1}}]})";

TEST_F (Layout, PerChannelScaleKeepsTheLayoutAndAgrees)
{
  Module m = load_json (reg.get (), kScale);
  ASSERT_TRUE (m);
  nn_module_reset_parameters (m.get (), 9);
  Tensor x = chain_input ();
  Tensor s = tensor_f32 ({ 2, 16, 1, 1 }, [] (gint64 i) { return 0.25f + 0.05f * (float) i; });
  auto call = [&] () {
    ValueRef args = value_tuple ({ nn_value_new_tensor (x.get ()), nn_value_new_tensor (s.get ()) });
    Error e;
    ValueRef out (nn_module_call (m.get (), args.get (), nullptr, e.out ()));
    EXPECT_TRUE (out) << e.message ();
    std::vector<std::vector<float>> r;
    for (guint i = 0; out && i < 3; i++)
      r.push_back (values (nn_value_get_tensor (nn_value_item (out.get (), i))));
    return r;
  };
  nn_engine_set_layouts (FALSE);
  call ();
  guint64 c0 = nn_engine_get_reorder_count ();
  auto off = call ();
  guint64 off_reorders = nn_engine_get_reorder_count () - c0;
  nn_engine_set_layouts (TRUE);
  call ();
  c0 = nn_engine_get_reorder_count ();
  auto on = call ();
  guint64 on_reorders = nn_engine_get_reorder_count () - c0;
  ASSERT_EQ (on.size (), 3u);
  ASSERT_EQ (off.size (), 3u);
  for (int i = 0; i < 3; i++)
    EXPECT_LT (max_diff (on[i], off[i]), 1e-5) << i;
  // Off: in and out of both convs.  On: x into a, then three results made
  // plain (m2 and m4 for the caller, c for the product with a float).
  EXPECT_LE (on_reorders, off_reorders);

  // Against the conv alone (layouts off) and the products computed here.
  Tensor a = alone_plain (m.get (), "a", x.get ());
  ASSERT_TRUE (a);
  auto av = values (a.get ());
  auto sv = values (s.get ());
  std::vector<float> want (av.size ());
  for (size_t i = 0; i < want.size (); i++) {
    float f = sv[i / 64];   // [2, 16, 8, 8]: one factor per (n, c)
    want[i] = f * (av[i] * f);
  }
  EXPECT_LT (max_diff (on[0], want), 1e-6);
}

// AdaptiveAvgPool2d between convolutions: where the output size divides
// the input's (a classifier's or a squeeze-excitation's global pool) it
// pools the blocked result in its layout on oneDNN, so the chain runs no
// more reorders than its ends; other sizes go to the reference.  Every
// size agrees with the windows' means computed here from the first
// convolution's result.
std::string
adaptive_chain (const char *size)
{
  return std::string (R"({"type": "Sequential", "children": [
    {"name": "a", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
       "kernel_size": 3, "padding": 1}},
    {"name": "p", "type": "AdaptiveAvgPool2d", "config": {"output_size": )") + size + R"(}},
    {"name": "c", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
       "kernel_size": 1}}]})";
}

TEST_F (Layout, AdaptiveAveragePoolKeepsTheLayoutWhereWindowsAreUniform)
{
  struct Case { const char *size; gint64 oh, ow; bool uniform; };
  for (Case k : { Case { "1", 1, 1, true }, Case { "[2, 4]", 2, 4, true },
                  Case { "8", 8, 8, true }, Case { "3", 3, 3, false },
                  Case { "[5, 2]", 5, 2, false } }) {
    SCOPED_TRACE (k.size);
    Module m = load_json (reg.get (), adaptive_chain (k.size).c_str ());
    ASSERT_TRUE (m);
    nn_module_reset_parameters (m.get (), 21);
    Tensor x = chain_input ();
    // The pool alone, from a's result: PyTorch's windows
    // [floor(i * in / out), ceil((i + 1) * in / out)).
    Tensor a = alone_plain (m.get (), "a", x.get ());
    ASSERT_TRUE (a);
    Tensor pooled = alone_plain (m.get (), "p", a.get ());
    ASSERT_TRUE (pooled);
    auto av = values (a.get ());
    std::vector<float> want;
    for (gint64 nc = 0; nc < 2 * 16; nc++)
      for (gint64 i = 0; i < k.oh; i++)
        for (gint64 j = 0; j < k.ow; j++) {
          gint64 h0 = i * 8 / k.oh, h1 = ((i + 1) * 8 + k.oh - 1) / k.oh;
          gint64 w0 = j * 8 / k.ow, w1 = ((j + 1) * 8 + k.ow - 1) / k.ow;
          double sum = 0;
          for (gint64 h = h0; h < h1; h++)
            for (gint64 w = w0; w < w1; w++)
              sum += av[nc * 64 + h * 8 + w];
          want.push_back ((float) (sum / (double) ((h1 - h0) * (w1 - w0))));
        }
    EXPECT_LT (max_diff (values (pooled.get ()), want), 1e-5) << "plain input";

    OnOff r = on_off (m.get (), x.get ());
    ASSERT_EQ (r.on.size (), 1u);
    EXPECT_LT (max_diff (r.on[0], r.off[0]), 1e-5);
    // The pool inside the chain, laid out: hooks see plain values.
    std::vector<float> seen;
    NnHookHandle *h = nn_module_add_forward_hook (
      nn_module_lookup_path (m.get (), "p", nullptr),
      [] (NnModule *, const char *, const NnValue *, const NnValue *,
          NnValue **out, gpointer d, GError **) -> gboolean {
        *(std::vector<float> *) d = values (nn_value_get_tensor (*out));
        return TRUE;
      }, &seen, nullptr, "capture", 0, nullptr);
    ASSERT_TRUE (h);
    results (m.get (), x.get ());
    nn_hook_handle_remove (h);
    nn_hook_handle_free (h);
    EXPECT_LT (max_diff (seen, want), 1e-5) << "the pool's output in the chain";
    if (k.uniform)
      EXPECT_LE (r.on_reorders, 2u) << "x in and c's result out only";
    else
      EXPECT_GT (r.on_reorders, 2u) << "the reference reads a plain input";
  }
}

// Identity, StochasticDepth and Dropout in eval mode return their input,
// a laid-out one included: between two convolutions they cost no reorder
// (EfficientNet's blocks had made each block's result plain at its
// StochasticDepth).  Dropout in training mode reads the values plain.
const char *kPassThrough = R"({"type": "Sequential", "children": [
  {"name": "a", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
     "kernel_size": 3, "padding": 1}},
  {"name": "sd", "type": "StochasticDepth", "config": {"p": 0.2, "mode": "row"}},
  {"name": "id", "type": "Identity"},
  {"name": "drop", "type": "Dropout", "config": {"p": 0.5}},
  {"name": "c", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
     "kernel_size": 1}}]})";

TEST_F (Layout, PassThroughLayersKeepTheLayout)
{
  OnOff r = chain_on_off (reg.get (), kPassThrough, 17, 1);
  ASSERT_EQ (r.on.size (), 1u);
  EXPECT_LT (max_diff (r.on[0], r.off[0]), 1e-5);
  EXPECT_LE (r.on_reorders, 2u) << "x in and c's result out only";

  // Dropout in training mode after a's laid-out result: every value is
  // dropped (0) or a's, computed with layouts off, scaled by 1 / (1 - p).
  const char *drop_only = R"({"type": "Sequential", "children": [
    {"name": "a", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
       "kernel_size": 3, "padding": 1}},
    {"name": "drop", "type": "Dropout", "config": {"p": 0.5}}]})";
  Module d = load_json (reg.get (), drop_only);
  ASSERT_TRUE (d);
  nn_module_reset_parameters (d.get (), 17);
  Tensor x = chain_input ();
  Tensor a = alone_plain (d.get (), "a", x.get ());
  ASSERT_TRUE (a);
  auto av = values (a.get ());
  nn_engine_set_layouts (TRUE);
  nn_module_train (nn_module_lookup_path (d.get (), "drop", nullptr), TRUE);
  Error e;
  Tensor y (nn_module_forward (d.get (), x.get (), e.out ()));
  ASSERT_TRUE (y) << e.message ();
  auto yv = values (y.get ());
  ASSERT_EQ (yv.size (), av.size ());
  size_t kept = 0;
  for (size_t i = 0; i < yv.size (); i++) {
    if (yv[i] != 0.0f) {
      kept++;
      EXPECT_NEAR (yv[i], 2.0f * av[i], 1e-4f * (1.0f + std::fabs (av[i]))) << i;
    }
  }
  EXPECT_GT (kept, yv.size () / 4);
  EXPECT_LT (kept, yv.size () * 3 / 4);
}

TEST_F (Layout, TapeAndTrainingModeGetPlainTensors)
{
  Module m = load_json (reg.get (), kChain);
  ASSERT_TRUE (m);
  nn_module_reset_parameters (m.get (), 3);
  Tensor x = chain_input ();
  OnOff r = on_off (m.get (), x.get ());

  // A recording tape: every step's result is plain where it is made, as
  // with layouts off, and backward works from them.
  NnTape *tape = nn_tape_new (1);
  ValueRef args = value_tuple ({ nn_value_new_tensor (x.get ()) });
  Error e;
  guint64 c0 = nn_engine_get_reorder_count ();
  ValueRef out (nn_tape_call (tape, m.get (), args.get (), nullptr, e.out ()));
  ASSERT_TRUE (out) << e.message ();
  EXPECT_EQ (nn_engine_get_reorder_count () - c0, r.off_reorders);
  NnTensor *y = nn_value_get_tensor (out.get ());
  ASSERT_TRUE (nn_tensor_is_plain (y));
  EXPECT_LT (max_diff (values (y), r.off[0]), 1e-5);
  Tensor grad = tensor_f32 ({ 2, 16, 4, 4 }, [] (gint64 i) { return 0.01f * (float) (i % 7); });
  ASSERT_TRUE (nn_backward (tape, y, grad.get (), e.out ())) << e.message ();
  nn_tape_free (tape);

  // Training mode without a tape may lay out: the values still agree.
  nn_module_train (m.get (), TRUE);
  auto t = results (m.get (), x.get ());
  nn_module_train (m.get (), FALSE);
  ASSERT_EQ (t.size (), 1u);
  EXPECT_LT (max_diff (t[0], r.off[0]), 1e-5);
}

// A hook on a step in the middle of the chain sees a plain tensor whose
// values are the unhooked run's.
gboolean
keep_output (NnModule *, const char *, const NnValue *, const NnValue *, NnValue **output,
             gpointer user_data, GError **)
{
  NnTensor *t = nn_value_get_tensor (*output);
  EXPECT_TRUE (nn_tensor_is_plain (t));
  *static_cast<std::vector<float> *> (user_data) = values (t);
  return TRUE;
}

gboolean
keep_input (NnModule *, const char *, NnValue **args, NnValue **, gpointer user_data,
            GError **)
{
  NnTensor *t = nn_value_get_tensor (nn_value_item (*args, 0));
  EXPECT_TRUE (nn_tensor_is_plain (t));
  *static_cast<std::vector<float> *> (user_data) = values (t);
  return TRUE;
}

TEST_F (Layout, HooksInTheChainSeePlainValues)
{
  Module m = load_json (reg.get (), kChain);
  ASSERT_TRUE (m);
  nn_module_reset_parameters (m.get (), 3);
  Tensor x = chain_input ();
  // Reference: b's result and c's input from layouts off, taken through
  // a shorter chain (a, b) and (a, b, p) built from the same modules.
  nn_engine_set_layouts (FALSE);
  std::vector<float> b_off, c_in_off;
  Error e;
  NnHookHandle *h1 = nn_module_add_forward_hook (nn_module_lookup_path (m.get (), "b", nullptr),
                                                 keep_output, &b_off, nullptr, "b", 0, e.out ());
  NnHookHandle *h2 = nn_module_add_pre_hook (nn_module_lookup_path (m.get (), "c", nullptr),
                                             keep_input, &c_in_off, nullptr, "c", 0, e.out ());
  ASSERT_TRUE (h1 && h2) << e.message ();
  auto y_off = results (m.get (), x.get ());
  nn_engine_set_layouts (TRUE);
  std::vector<float> b_on, c_in_on;
  for (NnHookHandle *h : { h1, h2 }) {
    nn_hook_handle_remove (h);
    nn_hook_handle_free (h);
  }
  h1 = nn_module_add_forward_hook (nn_module_lookup_path (m.get (), "b", nullptr),
                                   keep_output, &b_on, nullptr, "b", 0, e.out ());
  h2 = nn_module_add_pre_hook (nn_module_lookup_path (m.get (), "c", nullptr),
                               keep_input, &c_in_on, nullptr, "c", 0, e.out ());
  ASSERT_TRUE (h1 && h2) << e.message ();
  results (m.get (), x.get ());
  auto y_on = results (m.get (), x.get ());
  for (NnHookHandle *h : { h1, h2 }) {
    nn_hook_handle_remove (h);
    nn_hook_handle_free (h);
  }
  EXPECT_LT (max_diff (b_on, b_off), 1e-5);
  EXPECT_LT (max_diff (c_in_on, c_in_off), 1e-5);
  EXPECT_LT (max_diff (y_on[0], y_off[0]), 1e-5);

  // A global forward hook sees every module's result plain.
  std::atomic<int> seen { 0 };
  NnHookHandle *g = nn_add_global_forward_hook (
    [] (NnModule *, const char *, const NnValue *, const NnValue *, NnValue **output,
        gpointer p, GError **) -> gboolean {
      nn_value_foreach_tensor (*output, "", [] (const char *, NnTensor *t, gpointer q) {
        if (!nn_tensor_is_plain (t))
          (*static_cast<std::atomic<int> *> (q))++;
      }, p);
      return TRUE;
    }, &seen, nullptr, "global", 0);
  results (m.get (), x.get ());
  nn_hook_handle_remove (g);
  nn_hook_handle_free (g);
  EXPECT_EQ (seen.load (), 0);
}

TEST_F (Layout, TwoThreadsForwardOneModel)
{
  Module m = load_json (reg.get (), kChain);
  ASSERT_TRUE (m);
  nn_module_reset_parameters (m.get (), 3);
  Tensor x = chain_input ();
  auto want = results (m.get (), x.get ());
  std::atomic<int> bad { 0 };
  auto work = [&] () {
    for (int i = 0; i < 8; i++) {
      GError *err = nullptr;
      NnTensor *y = nn_module_forward (m.get (), x.get (), &err);
      if (!y || !nn_tensor_is_plain (y)
          || max_diff (std::vector<float> (nn_tensor_f32 (y), nn_tensor_f32 (y) + nn_tensor_numel (y)),
                       want[0]) > 1e-6)
        bad++;
      if (y)
        nn_tensor_unref (y);
      if (err)
        g_error_free (err);
    }
  };
  std::thread a (work), b (work);
  a.join ();
  b.join ();
  EXPECT_EQ (bad.load (), 0);
}

// NN_CHECK=1 (every suite's environment, tests/meson.build) still catches
// a plain type writing its input when that input came laid out from a
// oneDNN conv.
TEST_F (Layout, CheckedModeCatchesAWriteToAMadePlainInput)
{
  if (g_strcmp0 (g_getenv ("NN_CHECK"), "1") != 0)
    GTEST_SKIP () << "runs under NN_CHECK=1";
  const char *dirv = g_getenv ("NN_TEST_FIXTURE_DIR");
  std::string path = std::string (dirv ? dirv : "tests/fixtures") + "/fixture-mistakes.so";
  Error e;
  ASSERT_TRUE (nn_registry_load_file (reg.get (), path.c_str (), e.out ())) << e.message ();
  Module m = load_json (reg.get (), R"({"type": "Sequential", "children": [
    {"name": "conv", "type": "Conv2d", "config": {"in_channels": 16, "out_channels": 16,
       "kernel_size": 1}},
    {"name": "w", "type": "WritesInput"}]})");
  ASSERT_TRUE (m);
  Tensor x = chain_input ();
  Error e2;
  Tensor y (nn_module_forward (m.get (), x.get (), e2.out ()));
  EXPECT_FALSE (y);
  EXPECT_TRUE (contains (e2.message (), "WritesInput")) << e2.message ();
}

// --- models exported from PyTorch ------------------------------------------

TEST_F (Layout, SmallNetAgreesOnOffAndWithPyTorch)
{
  LOAD_OR_SKIP (m, "small");
  Tensor x = input ("small", { 2, 3, 12, 10 });
  OnOff r = on_off (m.get (), x.get ());
  ASSERT_EQ (r.on.size (), 2u);
  ASSERT_EQ (r.off.size (), 2u);
  for (int i = 0; i < 2; i++) {
    SCOPED_TRACE (i);
    EXPECT_LT (max_diff (r.on[i], r.off[i]), 1e-5);
    EXPECT_LT (max_diff (r.on[i], torch ("small_out" + std::to_string (i) + ".bin")), 1e-4);
  }
  EXPECT_LT (r.on_reorders, r.off_reorders);

  // Hooks on a conv whose result a plain op, two convs and a pool read,
  // on the pool, and a pre-hook on a conv: PyTorch's values.
  std::vector<float> c3, pool, c4_in;
  Error e;
  std::vector<NnHookHandle *> hs = {
    nn_module_add_forward_hook (nn_module_lookup_path (m.get (), "c3", nullptr), keep_output,
                                &c3, nullptr, "c3", 0, e.out ()),
    nn_module_add_forward_hook (nn_module_lookup_path (m.get (), "pool", nullptr), keep_output,
                                &pool, nullptr, "pool", 0, e.out ()),
    nn_module_add_pre_hook (nn_module_lookup_path (m.get (), "c4", nullptr), keep_input,
                            &c4_in, nullptr, "c4", 0, e.out ()) };
  auto y = results (m.get (), x.get ());
  for (NnHookHandle *h : hs) {
    ASSERT_TRUE (h);
    nn_hook_handle_remove (h);
    nn_hook_handle_free (h);
  }
  EXPECT_LT (max_diff (c3, torch ("small_hook_out_c3.bin")), 1e-4);
  EXPECT_LT (max_diff (pool, torch ("small_hook_out_pool.bin")), 1e-4);
  EXPECT_LT (max_diff (c4_in, torch ("small_hook_in_c4.bin")), 1e-4);
  ASSERT_EQ (y.size (), 2u);
  EXPECT_LT (max_diff (y[0], r.off[0]), 1e-5);
}

TEST_F (Layout, Resnet18AgreesOnOffAndWithPyTorchAndItsHooksSeePyTorchsValues)
{
  LOAD_OR_SKIP (m, "resnet18");
  Tensor x = input ("resnet18", { 1, 3, 64, 64 });
  OnOff r = on_off (m.get (), x.get ());
  ASSERT_EQ (r.on.size (), 1u);
  EXPECT_LT (max_diff (r.on[0], r.off[0]), 1e-5);
  EXPECT_LT (max_diff (r.on[0], torch ("resnet18_out0.bin")), 1e-4);
  EXPECT_LT (r.on_reorders, r.off_reorders);
  // The residual add and ReLU run on the blocked buffers too: at most the
  // stem's input and the pooled classifier's input are reordered.
  EXPECT_LE (r.on_reorders, 2u);

  std::vector<float> conv1, maxpool, conv2_in;
  Error e;
  std::vector<NnHookHandle *> hs = {
    nn_module_add_forward_hook (nn_module_lookup_path (m.get (), "layer2.0.conv1", nullptr),
                                keep_output, &conv1, nullptr, "conv1", 0, e.out ()),
    nn_module_add_forward_hook (nn_module_lookup_path (m.get (), "maxpool", nullptr),
                                keep_output, &maxpool, nullptr, "maxpool", 0, e.out ()),
    nn_module_add_pre_hook (nn_module_lookup_path (m.get (), "layer2.0.conv2", nullptr),
                            keep_input, &conv2_in, nullptr, "conv2", 0, e.out ()) };
  results (m.get (), x.get ());
  auto y = results (m.get (), x.get ());
  for (NnHookHandle *h : hs) {
    ASSERT_TRUE (h);
    nn_hook_handle_remove (h);
    nn_hook_handle_free (h);
  }
  EXPECT_LT (max_diff (conv1, torch ("resnet18_hook_out_layer2.0.conv1.bin")), 1e-4);
  EXPECT_LT (max_diff (maxpool, torch ("resnet18_hook_out_maxpool.bin")), 1e-4);
  EXPECT_LT (max_diff (conv2_in, torch ("resnet18_hook_in_layer2.0.conv2.bin")), 1e-4);
  EXPECT_LT (max_diff (y[0], r.off[0]), 1e-5);
}

TEST_F (Layout, MobilenetV2AgreesOnOffAndWithPyTorch)
{
  LOAD_OR_SKIP (m, "mobilenet_v2");
  Tensor x = input ("mobilenet_v2", { 2, 3, 64, 64 });
  OnOff r = on_off (m.get (), x.get ());
  ASSERT_EQ (r.on.size (), 1u);
  EXPECT_LT (max_diff (r.on[0], r.off[0]), 1e-5);
  EXPECT_LT (max_diff (r.on[0], torch ("mobilenet_v2_out0.bin")), 1e-4);
  EXPECT_LT (r.on_reorders, r.off_reorders);
  // The residual adds keep the layout: the input, the stem's result (in
  // nChw16c, the layout of the Winograd steps a stem usually feeds, while
  // the depthwise kernels read NHWC) and the classifier's input.
  EXPECT_LE (r.on_reorders, 3u);

  std::vector<float> cap;
  Error e;
  NnHookHandle *h = nn_module_add_forward_hook (
    nn_module_lookup_path (m.get (), "features.3.conv.0.0", nullptr), keep_output, &cap,
    nullptr, "cap", 0, e.out ());
  ASSERT_TRUE (h) << e.message ();
  results (m.get (), x.get ());
  nn_hook_handle_remove (h);
  nn_hook_handle_free (h);
  EXPECT_LT (max_diff (cap, torch ("mobilenet_v2_hook_out_features.3.conv.0.0.bin")), 1e-4);
}

// --- the nn_tensor_* API on a laid-out tensor -------------------------------
// A layout of this file: the values stored in reverse order.

std::atomic<int> to_plain_calls { 0 };
std::atomic<bool> fail_to_plain { false };

gboolean
reversed_to_plain (const NnTensor *t, gconstpointer, gconstpointer laid, gpointer plain,
                   GError **error)
{
  to_plain_calls++;
  if (fail_to_plain) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED, "reversed: refused");
    return FALSE;
  }
  // Slow enough that racing readers overlap.
  g_usleep (2000);
  gint64 n = nn_tensor_numel (t);
  for (gint64 i = 0; i < n; i++)
    static_cast<float *> (plain)[i] = static_cast<const float *> (laid)[n - 1 - i];
  return TRUE;
}

const NnLayoutClass reversed = { sizeof (NnLayoutClass), "reversed", reversed_to_plain,
                                 g_free, { nullptr } };

Tensor
reversed_tensor ()
{
  float *laid = g_new (float, 6);
  for (int i = 0; i < 6; i++)
    laid[i] = (float) (5 - i);   // plain values 0 .. 5
  NnShape s = shape ({ 2, 3 });
  return Tensor (nn_tensor_new_laid_out (NN_DTYPE_F32, &s, &reversed, g_strdup ("desc"), laid,
                                         g_free));
}

TEST (LayoutApi, MakePlainIsIdempotentAndTheApiSeesPlainValues)
{
  to_plain_calls = 0;
  fail_to_plain = false;
  Tensor t = reversed_tensor ();
  ASSERT_TRUE (t);
  EXPECT_FALSE (nn_tensor_is_plain (t.get ()));
  EXPECT_EQ (nn_tensor_f32 (t.get ()), nullptr);   // no plain data yet
  gpointer data = nullptr, laid = nullptr;
  EXPECT_EQ (nn_tensor_get_layout (t.get (), &data, &laid), &reversed);
  EXPECT_STREQ ((const char *) data, "desc");
  EXPECT_EQ (((float *) laid)[0], 5.0f);

  // Copies, views and conversions are plain, made from the plain values.
  Tensor c (nn_tensor_copy (t.get ()));
  ASSERT_TRUE (c);
  EXPECT_TRUE (nn_tensor_is_plain (c.get ()));
  EXPECT_EQ (nn_tensor_get_layout (c.get (), nullptr, nullptr), nullptr);
  EXPECT_EQ (values (c.get ()), (std::vector<float> { 0, 1, 2, 3, 4, 5 }));
  EXPECT_EQ (to_plain_calls.load (), 1);
  NnShape flat = shape ({ 6 });
  Tensor v (nn_tensor_reshape (t.get (), &flat));
  ASSERT_TRUE (v);
  EXPECT_EQ (nn_tensor_f32 (v.get ())[5], 5.0f);
  Tensor d (nn_tensor_to_dtype (t.get (), NN_DTYPE_F64));
  ASSERT_TRUE (d);
  EXPECT_EQ (((double *) d->data)[4], 4.0);
  Error e;
  EXPECT_TRUE (nn_tensor_make_plain (t.get (), e.out ()));
  EXPECT_EQ (to_plain_calls.load (), 1);   // converted once
  EXPECT_TRUE (nn_tensor_is_plain (t.get ()));
  // The laid values stay for their provider until the data is written.
  EXPECT_EQ (nn_tensor_get_layout (t.get (), nullptr, nullptr), &reversed);
  nn_tensor_mark_written (t.get ());
  EXPECT_EQ (nn_tensor_get_layout (t.get (), nullptr, nullptr), nullptr);
  EXPECT_TRUE (nn_tensor_is_plain (t.get ()));
}

TEST (LayoutApi, AFailedConversionNamesTheLayoutAndLeavesTheTensorAsItWas)
{
  to_plain_calls = 0;
  fail_to_plain = true;
  Tensor t = reversed_tensor ();
  Error e;
  EXPECT_FALSE (nn_tensor_make_plain (t.get (), e.out ()));
  EXPECT_TRUE (contains (e.message (), "reversed: refused")) << e.message ();
  EXPECT_FALSE (nn_tensor_is_plain (t.get ()));
  EXPECT_EQ (nn_tensor_copy (t.get ()), nullptr);
  fail_to_plain = false;
  Error e2;
  EXPECT_TRUE (nn_tensor_make_plain (t.get (), e2.out ())) << e2.message ();
  EXPECT_EQ (values (t.get ()), (std::vector<float> { 0, 1, 2, 3, 4, 5 }));
}

TEST (LayoutApi, RacingReadersConvertOnce)
{
  to_plain_calls = 0;
  fail_to_plain = false;
  Tensor t = reversed_tensor ();
  std::atomic<int> ok { 0 };
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; i++)
    ts.emplace_back ([&] () {
      if (nn_tensor_make_plain (t.get (), nullptr) && nn_tensor_f32 (t.get ())[2] == 2.0f)
        ok++;
    });
  for (auto &th : ts)
    th.join ();
  EXPECT_EQ (ok.load (), 4);
  EXPECT_EQ (to_plain_calls.load (), 1);
}

TEST (LayoutApi, PlainTypesAndTheCallerNeverSeeALaidOutTensor)
{
  // A laid-out tensor given to a plain type (Flatten, ReLU) as input: the
  // core makes it plain first; the caller's result is plain.
  Registry reg = default_registry ();
  Module m = load_json (reg.get (), R"({"type": "Sequential", "children": [
    {"name": "r", "type": "ReLU"}, {"name": "f", "type": "Flatten", "config": {"start_dim": 0}}]})");
  ASSERT_TRUE (m);
  to_plain_calls = 0;
  fail_to_plain = false;
  Tensor t = reversed_tensor ();
  Error e;
  Tensor y (nn_module_forward (m.get (), t.get (), e.out ()));
  ASSERT_TRUE (y) << e.message ();
  EXPECT_TRUE (nn_tensor_is_plain (y.get ()));
  EXPECT_EQ (values (y.get ()), (std::vector<float> { 0, 1, 2, 3, 4, 5 }));
  EXPECT_EQ (to_plain_calls.load (), 1);

  // A conversion that fails is the call's error, naming the layout.
  fail_to_plain = true;
  Tensor u = reversed_tensor ();
  Error e2;
  Tensor z (nn_module_forward (m.get (), u.get (), e2.out ()));
  EXPECT_FALSE (z);
  EXPECT_TRUE (contains (e2.message (), "reversed")) << e2.message ();
  fail_to_plain = false;
}

}  // namespace
