// Tests for core/surgery.c: replace, insert, append, delete, pop and wrap
// by name, dotted path and flattened index; the naming rule; and, for every
// refused edit, that the tree, weights, text, indices and hooks are exactly
// as before.
#include "nn-test.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

extern "C" {
#include <glib/gstdio.h>
#include <nnkit/surgery.h>
}

using namespace nntest;

namespace {

// Everything a failed surgery must leave untouched, taken from the outside.
struct Snapshot {
  std::string descriptor;
  std::string text;
  std::vector<std::string> keys;
  std::vector<NnTensor *> tensor_objs;
  std::vector<std::vector<char>> bytes;
  std::vector<std::string> paths;
  std::vector<NnModule *> modules;
  std::vector<gint64> indices;
  std::vector<std::vector<guint64>> hooks;

  explicit Snapshot (NnModule *root)
  {
    descriptor = take (nn_descriptor_to_data (root, nullptr));
    text = take (nn_module_to_string (root));
    Array sd (nn_module_state_dict (root));
    for (guint i = 0; i < sd->len; i++) {
      auto *it = (NnNamedItem *) sd->pdata[i];
      keys.push_back (it->name);
      tensor_objs.push_back (it->tensor);
      const char *p = (const char *) it->tensor->data;
      bytes.emplace_back (p, p + nn_tensor_nbytes (it->tensor));
    }
    Array mods (nn_module_named_modules (root));
    for (guint i = 0; i < mods->len; i++) {
      auto *it = (NnNamedItem *) mods->pdata[i];
      paths.push_back (it->name);
      modules.push_back (it->module);
      indices.push_back (nn_module_index_of (root, it->module));
      hooks.push_back (hook_ids (it->module));
    }
  }

  static std::vector<guint64> hook_ids (NnModule *m)
  {
    std::vector<guint64> ids;
    Array hs (nn_module_list_hooks (m));
    for (guint i = 0; i < hs->len; i++)
      ids.push_back (((NnHookInfo *) hs->pdata[i])->id);
    return ids;
  }

  // Asserts that @root is exactly as when the snapshot was taken.
  void expect_same (NnModule *root, const std::string &what) const
  {
    Snapshot now (root);
    EXPECT_EQ (now.descriptor, descriptor) << what << ": descriptor changed";
    EXPECT_EQ (now.text, text) << what << ": print text changed";
    EXPECT_EQ (now.keys, keys) << what << ": state_dict keys changed";
    EXPECT_EQ (now.tensor_objs, tensor_objs) << what << ": tensor objects changed";
    ASSERT_EQ (now.bytes.size (), bytes.size ());
    for (size_t i = 0; i < bytes.size (); i++)
      EXPECT_TRUE (now.bytes[i].size () == bytes[i].size () &&
                   std::memcmp (now.bytes[i].data (), bytes[i].data (), bytes[i].size ()) == 0)
          << what << ": " << keys[i] << " changed";
    EXPECT_EQ (now.paths, paths) << what << ": named_modules changed";
    EXPECT_EQ (now.modules, modules) << what << ": module objects changed";
    EXPECT_EQ (now.indices, indices) << what << ": flattened indices changed";
    EXPECT_EQ (now.hooks, hooks) << what << ": hooks changed";
    // The index cache answers both ways as before.
    for (size_t i = 0; i < modules.size (); i++) {
      const char *p = nullptr;
      Error e;
      EXPECT_EQ (nn_module_lookup_index (root, (gint64) i, &p, e.out ()), modules[i]) << e.message ();
      EXPECT_EQ (std::string (p ? p : "(none)"), paths[i]);
    }
  }
};

Module
module_from (NnRegistry *reg, const char *json)
{
  Error e;
  Module m (nn_descriptor_load_module_data (reg, json, -1, "test", e.out ()));
  EXPECT_TRUE (m) << e.message ();
  return m;
}

Module
resnet (NnRegistry *reg, guint32 seed = 1)
{
  Module m = load_resnet18 (reg);
  if (m)
    nn_module_reset_parameters (m.get (), seed);
  return m;
}

std::string
out_shape (NnModule *root, const NnShape &in)
{
  NnShape out;
  Error e;
  if (!nn_module_infer_shape (root, &in, &out, e.out ()))
    return "error: " + e.message ();
  return shape_text (out);
}

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

Tensor
forward (NnModule *m, NnTensor *x)
{
  Error e;
  Tensor y (nn_module_forward (m, x, e.out ()));
  EXPECT_TRUE (y) << e.message ();
  return y;
}

std::vector<float>
values (NnTensor *t)
{
  const float *p = nn_tensor_f32 (t);
  return std::vector<float> (p, p + nn_tensor_numel (t));
}

std::vector<std::string>
child_names (NnModule *m)
{
  std::vector<std::string> names;
  for (guint i = 0; i < nn_module_n_children (m); i++) {
    const char *n = nullptr;
    nn_module_child_at (m, i, &n);
    names.push_back (n);
  }
  return names;
}

NnModule *
at (NnModule *root, const char *path)
{
  Error e;
  NnModule *m = nn_module_lookup_path (root, path, e.out ());
  EXPECT_TRUE (m) << e.message ();
  return m;
}

gboolean
count_fwd (NnModule *, const char *, const NnValue *, const NnValue *, NnValue **, gpointer ud, GError **)
{
  ++*(int *) ud;
  return TRUE;
}

NnHookHandle *
counting_hook (NnModule *m, int *counter, const char *label = "count")
{
  Error e;
  NnHookHandle *h = nn_module_add_forward_hook (m, count_fwd, counter, nullptr, label, 0, e.out ());
  EXPECT_TRUE (h) << e.message ();
  return h;
}

const char *const kLinear512x10 =
  R"({"type": "Linear", "config": {"in_features": 512, "out_features": 10}})";
const char *const kNarrowConv =
  R"({"type": "Conv2d", "config": {"in_channels": 64, "out_channels": 32,
      "kernel_size": 3, "padding": 1, "bias": false}})";

// A Graph root whose dataflow runs only "body"; "extras" (ModuleList) and
// "heads" (ModuleDict) are editable containers off the forward path, as in
// models that keep auxiliary heads.
const char *const kEditable = R"({
  "format": "nnkit", "version": 1, "input_shape": [2, 4],
  "model": {"type": "Graph", "class": "Net",
    "config": {"inputs": ["x"], "nodes": [{"name": "body", "module": "body", "args": ["x"]}],
               "output": "body"},
    "children": [
      {"name": "body", "type": "Sequential", "children": [
        {"name": "0", "type": "Linear", "config": {"in_features": 4, "out_features": 8}},
        {"name": "1", "type": "ReLU"},
        {"name": "2", "type": "Linear", "config": {"in_features": 8, "out_features": 8}},
        {"name": "3", "type": "ReLU"}]},
      {"name": "extras", "type": "ModuleList", "children": [
        {"name": "0", "type": "Identity"},
        {"name": "1", "type": "ReLU"},
        {"name": "2", "type": "Tanh"}]},
      {"name": "heads", "type": "ModuleDict", "children": [
        {"name": "a", "type": "Linear", "config": {"in_features": 8, "out_features": 2}},
        {"name": "b", "type": "Linear", "config": {"in_features": 8, "out_features": 3}}]}
    ]}})";

Module
editable (NnRegistry *reg)
{
  Error e;
  Module m (nn_descriptor_load_data (reg, kEditable, -1, "editable.json", e.out ()));
  EXPECT_TRUE (m) << e.message ();
  if (m)
    nn_module_reset_parameters (m.get (), 7);
  return m;
}

}  // namespace

// --- replace ---------------------------------------------------------------

TEST (Surgery, ReplaceByChildNameKeepsEveryOtherWeight)
{
  Registry reg = default_registry ();
  Module m = resnet (reg.get ());
  ASSERT_TRUE (m);
  Snapshot before (m.get ());
  Module fc = module_from (reg.get (), kLinear512x10);
  nn_module_reset_parameters (fc.get (), 99);
  Error e;
  ASSERT_TRUE (nn_surgery_replace (m.get (), "fc", fc.get (), nullptr, e.out ())) << e.message ();
  EXPECT_EQ (nn_module_get_child (m.get (), "fc"), fc.get ());
  EXPECT_EQ (out_shape (m.get (), shape ({1, 3, 224, 224})), "[1, 10]");
  Snapshot after (m.get ());
  ASSERT_EQ (after.keys, before.keys);
  for (size_t i = 0; i < before.keys.size (); i++) {
    if (before.keys[i].rfind ("fc.", 0) == 0) {
      EXPECT_NE (after.tensor_objs[i], before.tensor_objs[i]) << before.keys[i];
      continue;
    }
    EXPECT_EQ (after.tensor_objs[i], before.tensor_objs[i]) << before.keys[i];
    EXPECT_EQ (std::memcmp (after.bytes[i].data (), before.bytes[i].data (),
                            before.bytes[i].size ()), 0) << before.keys[i];
  }
  // The print text changes only on the fc line.
  EXPECT_TRUE (contains (after.text,
               "(fc): Linear(in_features=512, out_features=10, bias=True)"));
  EXPECT_EQ (after.paths, before.paths);
}

TEST (Surgery, ReplaceByDottedPathAndNegativeIndex)
{
  Registry reg = default_registry ();
  Module m = resnet (reg.get ());
  ASSERT_TRUE (m);
  Module conv = module_from (reg.get (), R"({"type": "Conv2d", "config": {"in_channels": 128,
      "out_channels": 128, "kernel_size": 5, "padding": 2}})");
  Error e;
  ASSERT_TRUE (nn_surgery_replace (m.get (), "layer2.0.conv2", conv.get (), nullptr, e.out ()))
      << e.message ();
  EXPECT_EQ (at (m.get (), "layer2.0.conv2"), conv.get ());
  EXPECT_EQ (out_shape (m.get (), shape ({1, 3, 224, 224})), "[1, 1000]");

  // "layer1.-1" is layer1.1: the slot under its real name is replaced.
  NnModule *old_block = at (m.get (), "layer1.1");
  Module id = module_from (reg.get (), R"({"type": "Identity"})");
  ASSERT_TRUE (nn_surgery_replace (m.get (), "layer1.-1", id.get (), nullptr, e.out ()))
      << e.message ();
  EXPECT_EQ (child_names (at (m.get (), "layer1")), (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ (at (m.get (), "layer1.1"), id.get ());
  EXPECT_NE (at (m.get (), "layer1.0"), old_block);
}

TEST (Surgery, ReplaceByFlattenedIndex)
{
  Registry reg = default_registry ();
  Module m = resnet (reg.get ());
  ASSERT_TRUE (m);
  NnModule *conv1 = at (m.get (), "layer1.0.conv1");
  gint64 idx = nn_module_index_of (m.get (), conv1);
  ASSERT_GT (idx, 0);
  // The index is the position in named_modules(): PyTorch's numbering.
  Array mods (nn_module_named_modules (m.get ()));
  EXPECT_STREQ (((NnNamedItem *) mods->pdata[idx])->name, "layer1.0.conv1");
  Module repl = module_from (reg.get (), R"({"type": "Conv2d", "config": {"in_channels": 64,
      "out_channels": 64, "kernel_size": 1, "bias": false}})");
  std::string ref = "#" + std::to_string (idx);
  Error e;
  ASSERT_TRUE (nn_surgery_replace (m.get (), ref.c_str (), repl.get (), nullptr, e.out ()))
      << e.message ();
  EXPECT_EQ (at (m.get (), "layer1.0.conv1"), repl.get ());
  const char *p = nullptr;
  EXPECT_EQ (nn_module_lookup_index (m.get (), idx, &p, e.out ()), repl.get ());
  EXPECT_STREQ (p, "layer1.0.conv1");
}

TEST (Surgery, ReplaceWithATreeFromAnotherModelKeepsItsWeights)
{
  Registry reg = default_registry ();
  Module a = resnet (reg.get (), 1);
  Module b = resnet (reg.get (), 2);
  ASSERT_TRUE (a && b);
  NnModule *b_layer3 = at (b.get (), "layer3");
  NnTensor *w = nn_module_lookup_tensor (b.get (), "layer3.1.conv2.weight", nullptr);
  std::vector<float> want = values (w);
  Error e;
  ASSERT_TRUE (nn_surgery_replace (a.get (), "layer3", b_layer3, nullptr, e.out ())) << e.message ();
  b.reset (); // a now holds the only reference to the moved subtree
  NnTensor *got = nn_module_lookup_tensor (a.get (), "layer3.1.conv2.weight", e.out ());
  ASSERT_TRUE (got) << e.message ();
  EXPECT_EQ (values (got), want);
  Tensor x = random_input (shape ({1, 3, 32, 32}), 3);
  Tensor y = forward (a.get (), x.get ());
  ASSERT_TRUE (y);
  EXPECT_EQ (shape_text (y->shape), "[1, 1000]");
}

TEST (Surgery, ReplaceChangesTheForward)
{
  Registry reg = default_registry ();
  Module m = editable (reg.get ());
  ASSERT_TRUE (m);
  Tensor x = random_input (shape ({2, 4}), 5);
  // Replacing body.3 (ReLU) by Tanh: the output is tanh of the pre-activation.
  Tensor y0 = forward (at (m.get (), "body.0"), x.get ());
  Tensor y1 = forward (at (m.get (), "body.1"), y0.get ());
  Tensor pre = forward (at (m.get (), "body.2"), y1.get ());
  Module tanh_m = module_from (reg.get (), R"({"type": "Tanh"})");
  Error e;
  ASSERT_TRUE (nn_surgery_replace (m.get (), "body.3", tanh_m.get (), nullptr, e.out ())) << e.message ();
  Tensor y = forward (m.get (), x.get ());
  ASSERT_TRUE (y && pre);
  std::vector<float> got = values (y.get ()), p = values (pre.get ());
  ASSERT_EQ (got.size (), p.size ());
  for (size_t i = 0; i < p.size (); i++)
    EXPECT_NEAR (got[i], std::tanh (p[i]), 1e-6) << i;
}

// --- Sequential and ModuleList edits --------------------------------------

TEST (Surgery, SequentialInsertAppendFollowTheNamingRule)
{
  Registry reg = default_registry ();
  Module m = editable (reg.get ());
  ASSERT_TRUE (m);
  NnModule *body = at (m.get (), "body");
  Module id1 = module_from (reg.get (), R"({"type": "Identity"})");
  Module id2 = module_from (reg.get (), R"({"type": "Identity"})");
  Module id3 = module_from (reg.get (), R"({"type": "Identity"})");
  Module id4 = module_from (reg.get (), R"({"type": "Identity"})");
  Error e;
  // append: one more than the largest integer key.
  ASSERT_TRUE (nn_surgery_append (m.get (), "body", nullptr, id1.get (), nullptr, e.out ())) << e.message ();
  EXPECT_EQ (child_names (body), (std::vector<std::string>{"0", "1", "2", "3", "4"}));
  // insert at the front: names are kept, the new one is "5".
  ASSERT_TRUE (nn_surgery_insert (m.get (), "body", 0, nullptr, id2.get (), nullptr, e.out ())) << e.message ();
  EXPECT_EQ (child_names (body), (std::vector<std::string>{"5", "0", "1", "2", "3", "4"}));
  // negative index: before the last item, as list.insert(-1, x).
  ASSERT_TRUE (nn_surgery_insert (m.get (), "body", -1, "tail", id3.get (), nullptr, e.out ())) << e.message ();
  EXPECT_EQ (child_names (body), (std::vector<std::string>{"5", "0", "1", "2", "3", "tail", "4"}));
  EXPECT_EQ (nn_module_get_child (body, "tail"), id3.get ());
  // After deleting "1" (not the largest), append still gives "6".
  ASSERT_TRUE (nn_surgery_delete (m.get (), "body.1", nullptr, e.out ())) << e.message ();
  ASSERT_TRUE (nn_surgery_append (m.get (), "body", nullptr, id4.get (), nullptr, e.out ())) << e.message ();
  EXPECT_EQ (child_names (body), (std::vector<std::string>{"5", "0", "2", "3", "tail", "4", "6"}));
  // The path "body.1" is now position 1 (name "0"), as seq[1] in Python.
  EXPECT_EQ (at (m.get (), "body.1"), nn_module_get_child (body, "0"));
  // The inserted Identities change nothing numerically: compare against the
  // remaining layers run one by one.
  Tensor x = random_input (shape ({2, 4}), 11);
  Tensor h = forward (nn_module_get_child (body, "0"), x.get ());
  h = forward (nn_module_get_child (body, "2"), h.get ());
  h = forward (nn_module_get_child (body, "3"), h.get ());
  Tensor y = forward (m.get (), x.get ());
  ASSERT_TRUE (h && y);
  EXPECT_EQ (values (y.get ()), values (h.get ()));
}

TEST (Surgery, DeletingTheLargestKeyReusesIt)
{
  Registry reg = default_registry ();
  Module m = editable (reg.get ());
  ASSERT_TRUE (m);
  Module id = module_from (reg.get (), R"({"type": "Identity"})");
  Error e;
  ASSERT_TRUE (nn_surgery_delete (m.get (), "extras.2", nullptr, e.out ())) << e.message ();
  ASSERT_TRUE (nn_surgery_append (m.get (), "extras", nullptr, id.get (), nullptr, e.out ())) << e.message ();
  EXPECT_EQ (child_names (at (m.get (), "extras")), (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ (at (m.get (), "extras.2"), id.get ());
}

TEST (Surgery, DeleteAndPopByIndexNameAndNegativeIndex)
{
  Registry reg = default_registry ();
  Module m = editable (reg.get ());
  ASSERT_TRUE (m);
  NnModule *extras = at (m.get (), "extras");
  NnModule *last = nn_module_get_child (extras, "2");
  NnModule *first = nn_module_get_child (extras, "0");
  Error e;
  Module popped (nn_surgery_pop (m.get (), "extras.-1", nullptr, e.out ()));
  ASSERT_TRUE (popped) << e.message ();
  EXPECT_EQ (popped.get (), last);
  EXPECT_STREQ (nn_module_get_type_name (popped.get ()), "Tanh");
  EXPECT_EQ (child_names (extras), (std::vector<std::string>{"0", "1"}));
  // By flattened index.
  gint64 idx = nn_module_index_of (m.get (), first);
  std::string ref = "#" + std::to_string (idx);
  Module popped2 (nn_surgery_pop (m.get (), ref.c_str (), nullptr, e.out ()));
  ASSERT_TRUE (popped2) << e.message ();
  EXPECT_EQ (popped2.get (), first);
  EXPECT_EQ (child_names (extras), (std::vector<std::string>{"1"}));
  // By name in a Sequential; the model still runs.
  ASSERT_TRUE (nn_surgery_delete (m.get (), "body.3", nullptr, e.out ())) << e.message ();
  EXPECT_EQ (child_names (at (m.get (), "body")), (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ (out_shape (m.get (), shape ({2, 4})), "[2, 8]");
  // Indices follow the new tree (the cache was invalidated).
  Array mods (nn_module_named_modules (m.get ()));
  for (guint i = 0; i < mods->len; i++) {
    auto *it = (NnNamedItem *) mods->pdata[i];
    EXPECT_EQ (nn_module_index_of (m.get (), it->module), (gint64) i) << it->name;
  }
  EXPECT_EQ (nn_module_index_of (m.get (), first), -1);
}

TEST (Surgery, ModuleListInsertByPositionAndName)
{
  Registry reg = default_registry ();
  Module m = editable (reg.get ());
  ASSERT_TRUE (m);
  Module s = module_from (reg.get (), R"({"type": "Sigmoid"})");
  Module t = module_from (reg.get (), R"({"type": "Identity"})");
  Error e;
  ASSERT_TRUE (nn_surgery_insert (m.get (), "extras", -3, nullptr, s.get (), nullptr, e.out ())) << e.message ();
  EXPECT_EQ (child_names (at (m.get (), "extras")), (std::vector<std::string>{"3", "0", "1", "2"}));
  ASSERT_TRUE (nn_surgery_insert (m.get (), "extras", 4, "aux", t.get (), nullptr, e.out ())) << e.message ();
  EXPECT_EQ (child_names (at (m.get (), "extras")), (std::vector<std::string>{"3", "0", "1", "2", "aux"}));
  ASSERT_TRUE (nn_surgery_delete (m.get (), "extras.aux", nullptr, e.out ())) << e.message ();
  EXPECT_EQ (child_names (at (m.get (), "extras")), (std::vector<std::string>{"3", "0", "1", "2"}));
}

TEST (Surgery, ModuleDictInsertAndDeleteByKey)
{
  Registry reg = default_registry ();
  Module m = editable (reg.get ());
  ASSERT_TRUE (m);
  Module c = module_from (reg.get (), R"({"type": "Linear", "config": {"in_features": 8, "out_features": 4}})");
  Error e;
  ASSERT_TRUE (nn_surgery_append (m.get (), "heads", "c", c.get (), nullptr, e.out ())) << e.message ();
  EXPECT_EQ (child_names (at (m.get (), "heads")), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ (at (m.get (), "heads.c"), c.get ());
  ASSERT_TRUE (nn_surgery_delete (m.get (), "heads.a", nullptr, e.out ())) << e.message ();
  EXPECT_EQ (child_names (at (m.get (), "heads")), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ (nn_module_lookup_tensor (m.get (), "heads.a.weight", nullptr), nullptr);
  EXPECT_TRUE (nn_module_lookup_tensor (m.get (), "heads.c.weight", nullptr));

  // A ModuleDict needs a key, and keys are unique.
  Snapshot before (m.get ());
  Module d = module_from (reg.get (), R"({"type": "Identity"})");
  EXPECT_FALSE (nn_surgery_append (m.get (), "heads", nullptr, d.get (), nullptr, e.out ()));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE)) << e.message ();
  EXPECT_EQ (e.message (), "insert into ModuleDict 'heads' needs a key");
  before.expect_same (m.get (), "keyless ModuleDict insert");
  EXPECT_FALSE (nn_surgery_append (m.get (), "heads", "b", d.get (), nullptr, e.out ()));
  EXPECT_TRUE (e.matches (NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_DUPLICATE_NAME)) << e.message ();
  EXPECT_TRUE (contains (e.message (), "'heads'")) << e.message ();
  EXPECT_TRUE (contains (e.message (), "'b'")) << e.message ();
  before.expect_same (m.get (), "duplicate key");
}

// --- wrap ----------------------------------------------------------------

TEST (Surgery, WrapAfterAndBefore)
{
  // Forwards before and after the edits compared exactly.
  UnfusedScope unfused;
  Registry reg = default_registry ();
  Module m = resnet (reg.get ());
  ASSERT_TRUE (m);
  Tensor x = random_input (shape ({1, 3, 32, 32}), 21);
  Tensor y0 = forward (m.get (), x.get ());
  ASSERT_TRUE (y0);
  NnModule *fc = at (m.get (), "fc");
  int fired = 0;
  NnHookHandle *h = counting_hook (fc, &fired);
  gint64 fc_idx = nn_module_index_of (m.get (), fc);

  Module relu = module_from (reg.get (), R"({"type": "ReLU"})");
  Error e;
  ASSERT_TRUE (nn_surgery_wrap (m.get (), "fc", relu.get (), FALSE, nullptr, e.out ())) << e.message ();
  NnModule *seq = at (m.get (), "fc");
  EXPECT_STREQ (nn_module_get_type_name (seq), "Sequential");
  EXPECT_EQ (child_names (seq), (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ (at (m.get (), "fc.0"), fc);
  EXPECT_EQ (at (m.get (), "fc.1"), relu.get ());
  // #fc_idx is now the Sequential, and the old fc follows it.
  EXPECT_EQ (nn_module_index_of (m.get (), seq), fc_idx);
  EXPECT_EQ (nn_module_index_of (m.get (), fc), fc_idx + 1);
  EXPECT_TRUE (nn_module_lookup_tensor (m.get (), "fc.0.weight", nullptr));

  // Output = relu(old output); the hook on the wrapped fc still fires.
  Tensor y1 = forward (m.get (), x.get ());
  ASSERT_TRUE (y1);
  EXPECT_EQ (fired, 1);
  std::vector<float> a = values (y0.get ()), b = values (y1.get ());
  ASSERT_EQ (a.size (), b.size ());
  for (size_t i = 0; i < a.size (); i++)
    EXPECT_EQ (b[i], std::max (a[i], 0.0f)) << i;

  // Wrap before: Sequential(Identity, layer4); same output as before.
  NnModule *layer4 = at (m.get (), "layer4");
  Module id = module_from (reg.get (), R"({"type": "Identity"})");
  ASSERT_TRUE (nn_surgery_wrap (m.get (), "layer4", id.get (), TRUE, nullptr, e.out ())) << e.message ();
  EXPECT_EQ (at (m.get (), "layer4.0"), id.get ());
  EXPECT_EQ (at (m.get (), "layer4.1"), layer4);
  EXPECT_TRUE (nn_module_lookup_tensor (m.get (), "layer4.1.0.conv1.weight", nullptr));
  Tensor y2 = forward (m.get (), x.get ());
  ASSERT_TRUE (y2);
  EXPECT_EQ (values (y2.get ()), values (y1.get ()));
  EXPECT_EQ (fired, 2);
  nn_hook_handle_remove (h);
  nn_hook_handle_free (h);
}

// --- hooks across a replacement -----------------------------------------

TEST (Surgery, HooksStayWithTheOldModuleByDefault)
{
  Registry reg = default_registry ();
  Module m = editable (reg.get ());
  ASSERT_TRUE (m);
  Module old (nn_module_ref (at (m.get (), "body.3")));
  int fired = 0;
  NnHookHandle *h = counting_hook (old.get (), &fired);
  auto ids = Snapshot::hook_ids (old.get ());
  ASSERT_EQ (ids.size (), 1u);
  Module repl = module_from (reg.get (), R"({"type": "Tanh"})");
  Error e;
  ASSERT_TRUE (nn_surgery_replace (m.get (), "body.3", repl.get (), nullptr, e.out ())) << e.message ();
  EXPECT_EQ (Snapshot::hook_ids (old.get ()), ids);
  EXPECT_TRUE (Snapshot::hook_ids (repl.get ()).empty ());
  Tensor x = random_input (shape ({2, 4}), 1);
  Tensor y = forward (m.get (), x.get ());
  EXPECT_EQ (fired, 0); // the old module is no longer in the tree
  nn_hook_handle_remove (h);
  nn_hook_handle_free (h);
}

TEST (Surgery, MoveHooksMovesThemToTheNewModule)
{
  Registry reg = default_registry ();
  Module m = editable (reg.get ());
  ASSERT_TRUE (m);
  Module old (nn_module_ref (at (m.get (), "body.3")));
  int fired = 0;
  NnHookHandle *h = counting_hook (old.get (), &fired);
  auto ids = Snapshot::hook_ids (old.get ());
  Module repl = module_from (reg.get (), R"({"type": "Tanh"})");
  NnSurgeryOptions opts = { sizeof (NnSurgeryOptions), NN_SURGERY_MOVE_HOOKS, nullptr };
  Error e;
  ASSERT_TRUE (nn_surgery_replace (m.get (), "body.3", repl.get (), &opts, e.out ())) << e.message ();
  EXPECT_TRUE (Snapshot::hook_ids (old.get ()).empty ());
  EXPECT_EQ (Snapshot::hook_ids (repl.get ()), ids);
  Tensor x = random_input (shape ({2, 4}), 1);
  Tensor y = forward (m.get (), x.get ());
  EXPECT_EQ (fired, 1);
  // The handle still removes the moved hook.
  nn_hook_handle_remove (h);
  nn_hook_handle_free (h);
  EXPECT_TRUE (Snapshot::hook_ids (repl.get ()).empty ());
}

TEST (Surgery, MoveHooksOntoAHookedModuleIsRefused)
{
  Registry reg = default_registry ();
  Module m = editable (reg.get ());
  ASSERT_TRUE (m);
  int a = 0, b = 0;
  NnHookHandle *ha = counting_hook (at (m.get (), "body.3"), &a);
  Module repl = module_from (reg.get (), R"({"type": "Tanh"})");
  NnHookHandle *hb = counting_hook (repl.get (), &b);
  Snapshot before (m.get ());
  auto repl_ids = Snapshot::hook_ids (repl.get ());
  NnSurgeryOptions opts = { sizeof (NnSurgeryOptions), NN_SURGERY_MOVE_HOOKS, nullptr };
  Error e;
  EXPECT_FALSE (nn_surgery_replace (m.get (), "body.3", repl.get (), &opts, e.out ()));
  EXPECT_TRUE (contains (e.message (), "'body.3'")) << e.message ();
  EXPECT_TRUE (contains (e.message (), "hooks")) << e.message ();
  before.expect_same (m.get (), "move hooks onto hooked module");
  EXPECT_EQ (Snapshot::hook_ids (repl.get ()), repl_ids);
  for (auto *h : {ha, hb}) {
    nn_hook_handle_remove (h);
    nn_hook_handle_free (h);
  }
}

// --- refused edits leave everything as it was -----------------------------

class SurgeryRefused : public ::testing::Test {
protected:
  void SetUp () override
  {
    reg = default_registry ();
    m = resnet (reg.get ());
    ASSERT_TRUE (m);
    // Hooks on the modules the edits aim at, so that a rollback that lost
    // or moved them shows up.
    for (const char *p : {"layer1.0.conv1", "fc", "layer2.0", "layer1"}) {
      NnModule *t = at (m.get (), p);
      handles.push_back (counting_hook (t, &fired, p));
    }
    before.reset (new Snapshot (m.get ()));
  }
  void TearDown () override
  {
    for (auto *h : handles) {
      nn_hook_handle_remove (h);
      nn_hook_handle_free (h);
    }
  }
  void unchanged (const std::string &what) { before->expect_same (m.get (), what); }

  Registry reg;
  Module m;
  int fired = 0;
  std::vector<NnHookHandle *> handles;
  std::unique_ptr<Snapshot> before;
  Error e;
};

TEST_F (SurgeryRefused, ShapeBreakNamesPathAndShapes)
{
  Module narrow = module_from (reg.get (), kNarrowConv);
  for (guint flags : {0u, (guint) NN_SURGERY_MOVE_HOOKS}) {
    NnSurgeryOptions opts = { sizeof (NnSurgeryOptions), flags, nullptr };
    EXPECT_FALSE (nn_surgery_replace (m.get (), "layer1.0.conv1", narrow.get (), &opts, e.out ()));
    EXPECT_TRUE (e.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH)) << e.message ();
    std::string msg = e.message ();
    EXPECT_TRUE (contains (msg, "replace 'layer1.0.conv1' refused, model unchanged")) << msg;
    EXPECT_TRUE (contains (msg, "[1, 3, 224, 224]")) << msg;     // the input checked
    EXPECT_TRUE (contains (msg, "layer1.0.bn1")) << msg;         // where it broke
    EXPECT_TRUE (contains (msg, "64")) << msg;                   // expected channels
    EXPECT_TRUE (contains (msg, "[1, 32, 56, 56]")) << msg;      // found shape
    unchanged ("shape break, flags " + std::to_string (flags));
    EXPECT_TRUE (Snapshot::hook_ids (narrow.get ()).empty ());
  }
  // A given input shape is used instead of the recorded one.
  NnShape in = shape ({2, 3, 64, 64});
  NnSurgeryOptions opts = { sizeof (NnSurgeryOptions), 0, &in };
  EXPECT_FALSE (nn_surgery_replace (m.get (), "#5", narrow.get (), &opts, e.out ()));
  EXPECT_TRUE (contains (e.message (), "[2, 3, 64, 64]")) << e.message ();
  unchanged ("shape break at given shape");
}

TEST_F (SurgeryRefused, ShapeBreakByInsertDeleteAndWrap)
{
  Module bad = module_from (reg.get (), R"({"type": "Linear", "config": {"in_features": 3, "out_features": 3}})");
  EXPECT_FALSE (nn_surgery_insert (m.get (), "layer1", 1, nullptr, bad.get (), nullptr, e.out ()));
  EXPECT_TRUE (e.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH)) << e.message ();
  EXPECT_TRUE (contains (e.message (), "insert into 'layer1' refused, model unchanged")) << e.message ();
  unchanged ("insert shape break");
  EXPECT_FALSE (nn_surgery_append (m.get (), "layer4", "x", bad.get (), nullptr, e.out ()));
  unchanged ("append shape break");
  // layer2.0 turns 64 channels into 128: without it layer2.1 gets 64.
  EXPECT_FALSE (nn_surgery_delete (m.get (), "layer2.0", nullptr, e.out ()));
  EXPECT_TRUE (e.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH)) << e.message ();
  EXPECT_TRUE (contains (e.message (), "delete 'layer2.0' refused, model unchanged")) << e.message ();
  EXPECT_TRUE (contains (e.message (), "layer2.1")) << e.message ();
  unchanged ("delete shape break");
  EXPECT_EQ (nn_surgery_pop (m.get (), "layer2.-2", nullptr, e.out ()), nullptr);
  unchanged ("pop shape break");
  EXPECT_FALSE (nn_surgery_wrap (m.get (), "fc", bad.get (), FALSE, nullptr, e.out ()));
  EXPECT_TRUE (e.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH)) << e.message ();
  EXPECT_TRUE (contains (e.message (), "'fc'")) << e.message ();
  unchanged ("wrap shape break");
  EXPECT_FALSE (nn_surgery_wrap (m.get (), "layer1.0.conv1", bad.get (), TRUE, nullptr, e.out ()));
  unchanged ("wrap before shape break");
}

TEST_F (SurgeryRefused, BadPathIndexAndRoot)
{
  Module id = module_from (reg.get (), R"({"type": "Identity"})");
  EXPECT_FALSE (nn_surgery_replace (m.get (), "layer1.0.conv9", id.get (), nullptr, e.out ()));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND)) << e.message ();
  EXPECT_TRUE (contains (e.message (), "'layer1.0'")) << e.message (); // longest prefix
  EXPECT_TRUE (contains (e.message (), "conv1, bn1, relu, conv2, bn2")) << e.message ();
  unchanged ("bad path");
  EXPECT_FALSE (nn_surgery_replace (m.get (), "layer1..conv1", id.get (), nullptr, e.out ()));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE)) << e.message ();
  unchanged ("empty segment");
  EXPECT_FALSE (nn_surgery_replace (m.get (), "#68", id.get (), nullptr, e.out ()));
  EXPECT_TRUE (contains (e.message (), "#68 is out of range")) << e.message ();
  unchanged ("bad index");
  EXPECT_FALSE (nn_surgery_delete (m.get (), "#abc", nullptr, e.out ()));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE)) << e.message ();
  unchanged ("malformed index");
  EXPECT_FALSE (nn_surgery_delete (m.get (), "layer1.2", nullptr, e.out ()));
  EXPECT_TRUE (contains (e.message (), "out of range")) << e.message ();
  unchanged ("sequential index out of range");
  for (const char *root_ref : {"", "#0"}) {
    EXPECT_FALSE (nn_surgery_replace (m.get (), root_ref, id.get (), nullptr, e.out ()));
    EXPECT_TRUE (contains (e.message (), "is the root module")) << e.message ();
    EXPECT_FALSE (nn_surgery_delete (m.get (), root_ref, nullptr, e.out ()));
    EXPECT_TRUE (contains (e.message (), "is the root module")) << e.message ();
    EXPECT_FALSE (nn_surgery_wrap (m.get (), root_ref, id.get (), FALSE, nullptr, e.out ()));
    EXPECT_TRUE (contains (e.message (), "root")) << e.message ();
    unchanged (std::string ("root as target ") + root_ref);
  }
  EXPECT_FALSE (nn_surgery_insert (m.get (), "layer1", 3, nullptr, id.get (), nullptr, e.out ()));
  EXPECT_TRUE (contains (e.message (), "insert position 3 is out of range for 'layer1'")) << e.message ();
  EXPECT_FALSE (nn_surgery_insert (m.get (), "layer1", -3, nullptr, id.get (), nullptr, e.out ()));
  EXPECT_TRUE (contains (e.message (), "use -2 to 2")) << e.message ();
  unchanged ("insert position");
  EXPECT_FALSE (nn_surgery_append (m.get (), "layerX", nullptr, id.get (), nullptr, e.out ()));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND)) << e.message ();
  unchanged ("bad container path");
}

TEST_F (SurgeryRefused, NotAContainer)
{
  Module id = module_from (reg.get (), R"({"type": "Identity"})");
  // layer1.0 is a BasicBlock: a Graph, whose dataflow names its children.
  EXPECT_FALSE (nn_surgery_insert (m.get (), "layer1.0", 0, "extra", id.get (), nullptr, e.out ()));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_CONTAINER)) << e.message ();
  EXPECT_EQ (e.message (), "cannot insert in 'layer1.0': it is BasicBlock (Graph), not a "
                           "Sequential, ModuleList or ModuleDict; use replace instead");
  unchanged ("insert into Graph");
  EXPECT_FALSE (nn_surgery_append (m.get (), "layer1.0.conv1", nullptr, id.get (), nullptr, e.out ()));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_CONTAINER)) << e.message ();
  EXPECT_TRUE (contains (e.message (), "'layer1.0.conv1': it is Conv2d")) << e.message ();
  unchanged ("append into leaf");
  // Deleting a Graph child that a node calls is refused and nothing moves.
  EXPECT_FALSE (nn_surgery_delete (m.get (), "layer1.0.bn1", nullptr, e.out ()));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_CONTAINER)) << e.message ();
  EXPECT_TRUE (contains (e.message (), "'layer1.0'")) << e.message ();
  unchanged ("delete from Graph");
  EXPECT_EQ (nn_surgery_pop (m.get (), "avgpool", nullptr, e.out ()), nullptr);
  EXPECT_TRUE (contains (e.message (), "cannot delete in the root: it is ResNet (Graph)")) << e.message ();
  unchanged ("pop from root Graph");
  EXPECT_FALSE (nn_surgery_insert (m.get (), "", 0, "x", id.get (), nullptr, e.out ()));
  EXPECT_TRUE (contains (e.message (), "the root")) << e.message ();
  unchanged ("insert into root Graph");
}

TEST_F (SurgeryRefused, BadNamesAndCycles)
{
  Module id = module_from (reg.get (), R"({"type": "Identity"})");
  EXPECT_FALSE (nn_surgery_insert (m.get (), "layer1", 0, "a.b", id.get (), nullptr, e.out ()));
  EXPECT_TRUE (e.matches (NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_BAD_NAME)) << e.message ();
  EXPECT_TRUE (contains (e.message (), "module name can't contain \".\", got: a.b")) << e.message ();
  unchanged ("dotted name");
  EXPECT_FALSE (nn_surgery_insert (m.get (), "layer1", 0, "", id.get (), nullptr, e.out ()));
  EXPECT_TRUE (contains (e.message (), "module name can't be empty string")) << e.message ();
  unchanged ("empty name");
  EXPECT_FALSE (nn_surgery_append (m.get (), "layer1", "1", id.get (), nullptr, e.out ()));
  EXPECT_TRUE (e.matches (NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_DUPLICATE_NAME)) << e.message ();
  unchanged ("duplicate name");
  // A module may not end up inside itself.
  EXPECT_FALSE (nn_surgery_append (m.get (), "layer1", "self", m.get (), nullptr, e.out ()));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE)) << e.message ();
  unchanged ("insert root into itself");
  EXPECT_FALSE (nn_surgery_replace (m.get (), "layer1.0", m.get (), nullptr, e.out ()));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE)) << e.message ();
  EXPECT_TRUE (contains (e.message (), "'layer1.0'")) << e.message ();
  unchanged ("replace with the root");
  // layer1 contains layer1.0.conv1's parent: putting layer1 there is a cycle.
  EXPECT_FALSE (nn_surgery_replace (m.get (), "layer1.0.conv1", at (m.get (), "layer1"),
                                    nullptr, e.out ()));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE)) << e.message ();
  unchanged ("replace with an ancestor");
  EXPECT_FALSE (nn_surgery_wrap (m.get (), "layer1.0", at (m.get (), "layer1"), FALSE, nullptr, e.out ()));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE)) << e.message ();
  unchanged ("wrap with an ancestor");
}

TEST_F (SurgeryRefused, MissingInputShape)
{
  nn_module_set_input_shape (m.get (), nullptr);
  before.reset (new Snapshot (m.get ()));
  Module fc = module_from (reg.get (), kLinear512x10);
  EXPECT_FALSE (nn_surgery_replace (m.get (), "fc", fc.get (), nullptr, e.out ()));
  EXPECT_TRUE (e.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_NO_SHAPE)) << e.message ();
  EXPECT_TRUE (contains (e.message (), "no input shape")) << e.message ();
  EXPECT_TRUE (contains (e.message (), "'fc'")) << e.message ();
  unchanged ("no input shape");
  Module id = module_from (reg.get (), R"({"type": "Identity"})");
  EXPECT_FALSE (nn_surgery_append (m.get (), "layer1", nullptr, id.get (), nullptr, e.out ()));
  EXPECT_TRUE (e.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_NO_SHAPE)) << e.message ();
  unchanged ("no input shape, append");
  // Skipping the check is an explicit choice.
  NnSurgeryOptions skip = { sizeof (NnSurgeryOptions), NN_SURGERY_NO_SHAPE_CHECK, nullptr };
  EXPECT_TRUE (nn_surgery_replace (m.get (), "fc", fc.get (), &skip, e.out ())) << e.message ();
  EXPECT_EQ (nn_module_get_child (m.get (), "fc"), fc.get ());
}

TEST (Surgery, CheckShapesAlone)
{
  Registry reg = default_registry ();
  Module m = resnet (reg.get ());
  ASSERT_TRUE (m);
  Error e;
  EXPECT_TRUE (nn_surgery_check_shapes (m.get (), nullptr, e.out ())) << e.message ();
  NnShape wrong = shape ({1, 1, 224, 224});
  NnSurgeryOptions opts = { sizeof (NnSurgeryOptions), 0, &wrong };
  EXPECT_FALSE (nn_surgery_check_shapes (m.get (), &opts, e.out ()));
  EXPECT_TRUE (e.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH)) << e.message ();
  EXPECT_TRUE (contains (e.message (), "conv1")) << e.message ();
  EXPECT_TRUE (contains (e.message (), "[1, 1, 224, 224]")) << e.message ();
}

TEST (Surgery, OldCheckpointReportsTheReplacedKeys)
{
  Registry reg = default_registry ();
  Module m = resnet (reg.get ());
  ASSERT_TRUE (m);
  g_autofree char *dir = g_dir_make_tmp ("nn-surgery-XXXXXX", nullptr);
  ASSERT_TRUE (dir);
  std::string path = std::string (dir) + "/old.safetensors";
  Error e;
  ASSERT_TRUE (nn_module_save_state_dict (m.get (), path.c_str (), nullptr, e.out ())) << e.message ();
  Module fc = module_from (reg.get (), kLinear512x10);
  ASSERT_TRUE (nn_surgery_replace (m.get (), "fc", fc.get (), nullptr, e.out ())) << e.message ();
  // Replacing a module with itself is a no-op that still checks shapes.
  NnModule *conv = at (m.get (), "layer4.1.conv2");
  EXPECT_TRUE (nn_surgery_replace (m.get (), "layer4.1.conv2", conv, nullptr, e.out ())) << e.message ();
  EXPECT_EQ (at (m.get (), "layer4.1.conv2"), conv);
  Snapshot before (m.get ());
  {
    Safetensors st (nn_safetensors_open (path.c_str (), e.out ()));
    ASSERT_TRUE (st) << e.message ();
    NnLoadReport *rep = nullptr;
    EXPECT_FALSE (nn_module_load_state_dict (m.get (), st.get (), nullptr, &rep, e.out ()));
    ASSERT_TRUE (rep);
    std::vector<std::string> mism;
    for (guint i = 0; i < rep->mismatched->len; i++)
      mism.push_back (((NnSizeMismatch *) rep->mismatched->pdata[i])->key);
    EXPECT_EQ (mism, (std::vector<std::string>{"fc.weight", "fc.bias"}));
    std::string text = take (nn_load_report_to_string (rep));
    EXPECT_TRUE (contains (text, "size mismatch for fc.weight")) << text;
    nn_load_report_free (rep);
  }
  before.expect_same (m.get (), "failed strict load");
  std::string p2 = std::string (dir) + "/old.safetensors";
  g_unlink (p2.c_str ());
  g_rmdir (dir);
}

TEST (Surgery, PositionalRefEditsTheSlotAskedForWhenAModuleSitsTwice)
{
  Registry reg = default_registry ();
  Error e;
  // The same ReLU object at extras.0 and extras.1 (PyTorch allows it).
  Module m (nn_descriptor_load_data (reg.get (), R"({
    "format": "nnkit", "version": 1, "input_shape": [1, 4],
    "model": {"type": "Graph",
      "config": {"inputs": ["x"], "nodes": [{"name": "fc", "module": "fc", "args": ["x"]}],
                 "output": "fc"},
      "children": [
        {"name": "fc", "type": "Linear", "config": {"in_features": 4, "out_features": 4}},
        {"name": "extras", "type": "ModuleList", "children": [
          {"name": "0", "type": "ReLU"},
          {"name": "2", "type": "Tanh"}]}]}})", -1, "shared.json", e.out ()));
  ASSERT_TRUE (m) << e.message ();
  NnModule *extras = at (m.get (), "extras");
  NnModule *relu = nn_module_get_child (extras, "0");
  ASSERT_TRUE (nn_surgery_insert (m.get (), "extras", 1, "1", relu, nullptr, e.out ())) << e.message ();
  ASSERT_EQ (nn_module_get_child (extras, "1"), relu);
  ASSERT_TRUE (nn_surgery_delete (m.get (), "extras.-2", nullptr, e.out ())) << e.message ();
  EXPECT_EQ (child_names (extras), (std::vector<std::string>{"0", "2"}));
  Module sig = module_from (reg.get (), R"({"type": "Sigmoid"})");
  Module id = module_from (reg.get (), R"({"type": "Identity"})");
  ASSERT_TRUE (nn_surgery_insert (m.get (), "extras", 1, "again", relu, nullptr, e.out ())) << e.message ();
  // Position 1 holds the second occurrence, named "again".
  ASSERT_TRUE (nn_surgery_replace (m.get (), "extras.1", sig.get (), nullptr, e.out ())) << e.message ();
  EXPECT_EQ (nn_module_get_child (extras, "0"), relu);
  EXPECT_EQ (nn_module_get_child (extras, "again"), sig.get ());
  // Wrapping through a position wraps that slot too.
  ASSERT_TRUE (nn_surgery_insert (m.get (), "extras", 1, "third", relu, nullptr, e.out ())) << e.message ();
  ASSERT_TRUE (nn_surgery_wrap (m.get (), "extras.1", id.get (), FALSE, nullptr, e.out ())) << e.message ();
  EXPECT_EQ (nn_module_get_child (extras, "0"), relu);
  EXPECT_STREQ (nn_module_get_type_name (nn_module_get_child (extras, "third")), "Sequential");
  EXPECT_EQ (at (m.get (), "extras.third.0"), relu);
}

TEST_F (SurgeryRefused, BadDescriptorForTheNewModule)
{
  // The new module never gets built, so the model cannot change.
  struct { const char *json, *want; } cases[] = {
    {R"({"type": "Linear", "config": {"in_features": 512, "out_feature": 10}})",
     "unknown key 'out_feature' (did you mean 'out_features'?)"},
    {R"({"type": "Linaer", "config": {}})", "Linaer"},
    {R"({"type": "Linear", "config": {"in_features": 512, "out_features": -1}})", "out_features"},
    {R"({"type": "Linear", )", "new.json"},
  };
  for (auto &c : cases) {
    Module bad (nn_descriptor_load_module_data (reg.get (), c.json, -1, "new.json", e.out ()));
    EXPECT_FALSE (bad) << c.json;
    EXPECT_TRUE (contains (e.message (), c.want)) << e.message ();
    unchanged (std::string ("bad descriptor ") + c.json);
  }
}

TEST (Surgery, FailedSaveOfAnEditedModelDamagesNothing)
{
  Registry reg = default_registry ();
  Module m = resnet (reg.get ());
  ASSERT_TRUE (m);
  g_autofree char *dir = g_dir_make_tmp ("nn-surgery-save-XXXXXX", nullptr);
  ASSERT_TRUE (dir);
  std::string json = std::string (dir) + "/edited.json";
  std::string weights = std::string (dir) + "/edited.safetensors";
  const char *old_text = "previous descriptor\n";
  ASSERT_TRUE (g_file_set_contents (json.c_str (), old_text, -1, nullptr));
  // The weights path is taken by a directory: the weights write fails.
  ASSERT_EQ (g_mkdir (weights.c_str (), 0755), 0);
  Module fc = module_from (reg.get (), kLinear512x10);
  Error e;
  ASSERT_TRUE (nn_surgery_replace (m.get (), "fc", fc.get (), nullptr, e.out ())) << e.message ();
  EXPECT_FALSE (nn_model_save (m.get (), json.c_str (), e.out ()));
  EXPECT_TRUE (contains (e.message (), "edited.safetensors")) << e.message ();
  g_autofree char *now = nullptr;
  ASSERT_TRUE (g_file_get_contents (json.c_str (), &now, nullptr, nullptr));
  EXPECT_STREQ (now, old_text);
  // No temp files left behind.
  GDir *d = g_dir_open (dir, 0, nullptr);
  std::vector<std::string> entries;
  for (const char *n; (n = g_dir_read_name (d));)
    entries.push_back (n);
  g_dir_close (d);
  std::sort (entries.begin (), entries.end ());
  EXPECT_EQ (entries, (std::vector<std::string>{"edited.json", "edited.safetensors"}));
  // Saved properly, the edited model reloads with the same output.
  g_rmdir (weights.c_str ());
  ASSERT_TRUE (nn_model_save (m.get (), json.c_str (), e.out ())) << e.message ();
  Module again (nn_model_load (reg.get (), json.c_str (), nullptr, FALSE, e.out ()));
  ASSERT_TRUE (again) << e.message ();
  Tensor x = random_input (shape ({1, 3, 32, 32}), 8);
  Tensor y1 = forward (m.get (), x.get ());
  Tensor y2 = forward (again.get (), x.get ());
  ASSERT_TRUE (y1 && y2);
  EXPECT_EQ (shape_text (y2->shape), "[1, 10]");
  EXPECT_EQ (values (y1.get ()), values (y2.get ()));
  g_unlink (json.c_str ());
  g_unlink (weights.c_str ());
  g_rmdir (dir);
}
