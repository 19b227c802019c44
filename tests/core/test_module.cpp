// Tests for core/module.c: reference counting, shared children, PyTorch's
// child-name rules, cycles, tensor replacement, config access, parameter
// initialisation and display class names.
#include "nn-test.h"

#include <cmath>
#include <cstring>

using namespace nntest;

namespace {

Module
make (NnRegistry *reg, const char *type, const char *config_json = nullptr)
{
  Error e;
  JsonObject *cfg = nullptr;
  JsonNode *node = nullptr;
  if (config_json) {
    node = json_from_string (config_json, nullptr);
    EXPECT_TRUE (node && JSON_NODE_HOLDS_OBJECT (node)) << config_json;
    cfg = json_node_get_object (node);
  }
  Module m (nn_module_new_from_type (reg, type, cfg, "test", e.out ()));
  EXPECT_TRUE (m) << e.message ();
  if (node)
    json_node_unref (node);
  return m;
}

std::vector<std::string>
names (GPtrArray *items)
{
  std::vector<std::string> out;
  for (guint i = 0; i < items->len; i++)
    out.push_back (((NnNamedItem *) items->pdata[i])->name);
  return out;
}

std::vector<char>
bytes (NnModule *m)
{
  std::vector<char> out;
  Array sd (nn_module_state_dict (m));
  for (guint i = 0; i < sd->len; i++) {
    NnTensor *t = ((NnNamedItem *) sd->pdata[i])->tensor;
    const char *p = (const char *) t->data;
    out.insert (out.end (), p, p + nn_tensor_nbytes (t));
  }
  return out;
}

}  // namespace

TEST (Module, ParentHoldsAReference)
{
  Registry reg = default_registry ();
  Module seq = make (reg.get (), "Sequential");
  Module fc = make (reg.get (), "Linear", R"({"in_features": 2, "out_features": 3})");
  ASSERT_TRUE (seq && fc);
  Error e;
  ASSERT_TRUE (nn_module_add_child (seq.get (), "0", fc.get (), e.out ())) << e.message ();
  NnModule *raw = fc.release ();
  nn_module_unref (raw); // the Sequential's reference keeps it alive
  NnModule *child = nn_module_get_child (seq.get (), "0");
  ASSERT_EQ (child, raw);
  EXPECT_STREQ (nn_module_get_type_name (child), "Linear");
  NnTensor *w = nn_module_get_parameter (child, "weight");
  ASSERT_TRUE (w);
  EXPECT_EQ (shape_text (w->shape), "[3, 2]");
  // ref/unref pairs balance; ASan reports any use after free or leak.
  EXPECT_EQ (nn_module_ref (child), child);
  nn_module_unref (child);
  EXPECT_EQ (nn_module_child_at (seq.get (), 0, nullptr), child);
  EXPECT_EQ (nn_module_child_at (seq.get (), 1, nullptr), nullptr);
  EXPECT_EQ (nn_module_get_child (seq.get (), "1"), nullptr);
}

TEST (Module, OneModuleUnderTwoParents)
{
  Registry reg = default_registry ();
  Module root = make (reg.get (), "ModuleDict");
  Module a = make (reg.get (), "Sequential");
  Module b = make (reg.get (), "Sequential");
  Module fc = make (reg.get (), "Linear", R"({"in_features": 2, "out_features": 2})");
  Error e;
  ASSERT_TRUE (nn_module_add_child (a.get (), "fc", fc.get (), e.out ())) << e.message ();
  ASSERT_TRUE (nn_module_add_child (b.get (), "fc", fc.get (), e.out ())) << e.message ();
  ASSERT_TRUE (nn_module_add_child (root.get (), "a", a.get (), e.out ())) << e.message ();
  ASSERT_TRUE (nn_module_add_child (root.get (), "b", b.get (), e.out ())) << e.message ();
  // As PyTorch: named_modules lists it once, state_dict under both paths,
  // named_parameters once.
  Array mods (nn_module_named_modules (root.get ()));
  EXPECT_EQ (names (mods.get ()), (std::vector<std::string>{"", "a", "a.fc", "b"}));
  Array all (nn_module_named_modules_all_paths (root.get ()));
  EXPECT_EQ (names (all.get ()), (std::vector<std::string>{"", "a", "a.fc", "b", "b.fc"}));
  Array sd (nn_module_state_dict (root.get ()));
  EXPECT_EQ (names (sd.get ()), (std::vector<std::string>{"a.fc.weight", "a.fc.bias",
                                                          "b.fc.weight", "b.fc.bias"}));
  Array params (nn_module_named_parameters (root.get ()));
  EXPECT_EQ (names (params.get ()), (std::vector<std::string>{"a.fc.weight", "a.fc.bias"}));
  EXPECT_EQ (nn_module_count_parameters (root.get ()), 6);
  // One object: a write through one path is seen through the other.
  nn_tensor_f32 (nn_module_lookup_tensor (root.get (), "a.fc.weight", nullptr))[0] = 42.0f;
  EXPECT_EQ (nn_tensor_f32 (nn_module_lookup_tensor (root.get (), "b.fc.weight", nullptr))[0], 42.0f);
  // Dropping the other owners leaves the tree whole.
  a.reset ();
  b.reset ();
  fc.reset ();
  EXPECT_EQ (nn_module_lookup_path (root.get (), "a.fc", nullptr),
             nn_module_lookup_path (root.get (), "b.fc", nullptr));
}

TEST (Module, ChildNamesFollowPyTorchsRule)
{
  Registry reg = default_registry ();
  Module seq = make (reg.get (), "Sequential");
  Module r = make (reg.get (), "ReLU");
  Error e;
  EXPECT_FALSE (nn_module_add_child (seq.get (), "", r.get (), e.out ()));
  EXPECT_TRUE (e.matches (NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_BAD_NAME));
  EXPECT_EQ (e.message (), "module name can't be empty string \"\"");
  EXPECT_FALSE (nn_module_add_child (seq.get (), "a.b", r.get (), e.out ()));
  EXPECT_TRUE (e.matches (NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_BAD_NAME));
  EXPECT_EQ (e.message (), "module name can't contain \".\", got: a.b");
  EXPECT_FALSE (nn_module_name_is_valid (nullptr, e.out ()));
  EXPECT_TRUE (nn_module_name_is_valid ("act", e.out ()));
  ASSERT_TRUE (nn_module_add_child (seq.get (), "act", r.get (), e.out ())) << e.message ();
  EXPECT_FALSE (nn_module_add_child (seq.get (), "act", r.get (), e.out ()));
  EXPECT_TRUE (e.matches (NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_DUPLICATE_NAME));
  EXPECT_EQ (e.message (), "Sequential already has a child named 'act'");
  // The same module under another name is fine (a shared child).
  EXPECT_TRUE (nn_module_add_child (seq.get (), "act2", r.get (), e.out ())) << e.message ();
  EXPECT_EQ (nn_module_n_children (seq.get ()), 2u);
  const char *n = nullptr;
  EXPECT_EQ (nn_module_child_at (seq.get (), 1, &n), r.get ());
  EXPECT_STREQ (n, "act2");
}

TEST (Module, CyclesAreRefused)
{
  Registry reg = default_registry ();
  Module outer = make (reg.get (), "Sequential");
  Module inner = make (reg.get (), "Sequential");
  Error e;
  EXPECT_FALSE (nn_module_add_child (outer.get (), "self", outer.get (), e.out ()));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE)) << e.message ();
  EXPECT_EQ (e.message (), "cannot add 'self' (Sequential): it contains its new parent Sequential");
  ASSERT_TRUE (nn_module_add_child (outer.get (), "inner", inner.get (), e.out ())) << e.message ();
  EXPECT_FALSE (nn_module_add_child (inner.get (), "up", outer.get (), e.out ()));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE)) << e.message ();
  EXPECT_EQ (nn_module_n_children (inner.get ()), 0u);
  Array mods (nn_module_named_modules (outer.get ()));
  EXPECT_EQ (names (mods.get ()), (std::vector<std::string>{"", "inner"}));
}

TEST (Module, SetTensorChecksShapeAndDtype)
{
  Registry reg = default_registry ();
  Module fc = make (reg.get (), "Linear", R"({"in_features": 4, "out_features": 3})");
  Module bn = make (reg.get (), "BatchNorm2d", R"({"num_features": 3})");
  Error e;
  NnShape good = shape ({3, 4}), bad = shape ({4, 3});
  Tensor t (nn_tensor_new (NN_DTYPE_F32, &good));
  Tensor wrong (nn_tensor_new (NN_DTYPE_F32, &bad));
  Tensor wrong_dtype (nn_tensor_new (NN_DTYPE_I64, &good));
  NnTensor *old = nn_module_get_parameter (fc.get (), "weight");
  EXPECT_FALSE (nn_module_set_tensor (fc.get (), "weight", wrong.get (), e.out ()));
  EXPECT_TRUE (e.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH));
  EXPECT_EQ (e.message (), "Linear.weight: expected F32 [3, 4], found F32 [4, 3]");
  EXPECT_FALSE (nn_module_set_tensor (fc.get (), "weight", wrong_dtype.get (), e.out ()));
  EXPECT_EQ (e.message (), "Linear.weight: expected F32 [3, 4], found I64 [3, 4]");
  EXPECT_FALSE (nn_module_set_tensor (fc.get (), "weights", t.get (), e.out ()));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND));
  EXPECT_EQ (e.message (), "Linear has no parameter or buffer 'weights'");
  EXPECT_EQ (nn_module_get_parameter (fc.get (), "weight"), old);
  ASSERT_TRUE (nn_module_set_tensor (fc.get (), "weight", t.get (), e.out ())) << e.message ();
  EXPECT_EQ (nn_module_get_parameter (fc.get (), "weight"), t.get ());
  // Buffers too, with their own dtype.
  NnShape one = shape ({});
  Tensor nbt (nn_tensor_new (NN_DTYPE_I64, &one));
  *(gint64 *) nbt->data = 7;
  ASSERT_TRUE (nn_module_set_tensor (bn.get (), "num_batches_tracked", nbt.get (), e.out ())) << e.message ();
  EXPECT_EQ (*(gint64 *) nn_module_get_buffer (bn.get (), "num_batches_tracked")->data, 7);
  gboolean persistent = FALSE;
  const char *bname = nullptr;
  ASSERT_TRUE (nn_module_buffer_at (bn.get (), 0, &bname, &persistent));
  EXPECT_STREQ (bname, "running_mean");
  EXPECT_TRUE (persistent);
  EXPECT_EQ (nn_module_n_buffers (bn.get ()), 3u);
  EXPECT_EQ (nn_module_n_parameters (bn.get ()), 2u);
  const char *pname = nullptr;
  EXPECT_TRUE (nn_module_parameter_at (bn.get (), 1, &pname));
  EXPECT_STREQ (pname, "bias");
  EXPECT_EQ (nn_module_parameter_at (bn.get (), 2, nullptr), nullptr);
}

TEST (Module, ConfigAccessorsSeeValidatedDefaults)
{
  Registry reg = default_registry ();
  Module conv = make (reg.get (), "Conv2d",
      R"({"in_channels": 3, "out_channels": 8, "kernel_size": 3, "padding": 1})");
  Module bn = make (reg.get (), "BatchNorm2d", R"({"num_features": 8, "eps": 0.001})");
  ASSERT_TRUE (conv && bn);
  EXPECT_EQ (nn_module_config_int (conv.get (), "out_channels"), 8);
  gint64 k[2] = {0, 0}, s[2] = {0, 0};
  // An int given for a tuple key expands as PyTorch's _pair does.
  EXPECT_TRUE (nn_module_config_ints (conv.get (), "kernel_size", k, 2));
  EXPECT_EQ (k[0], 3);
  EXPECT_EQ (k[1], 3);
  EXPECT_TRUE (nn_module_config_ints (conv.get (), "stride", s, 2));
  EXPECT_EQ (s[0], 1);
  EXPECT_EQ (s[1], 1);
  EXPECT_TRUE (nn_module_config_bool (conv.get (), "bias"));
  EXPECT_STREQ (nn_module_config_string (conv.get (), "padding_mode"), "zeros");
  EXPECT_DOUBLE_EQ (nn_module_config_float (bn.get (), "eps"), 0.001);
  EXPECT_DOUBLE_EQ (nn_module_config_float (bn.get (), "momentum"), 0.1);
  EXPECT_EQ (take (nn_module_config_repr (conv.get (), "kernel_size")), "(3, 3)");
  EXPECT_EQ (take (nn_module_config_repr (bn.get (), "eps")), "0.001");
  JsonObject *cfg = nn_module_get_config (conv.get ());
  EXPECT_TRUE (json_object_has_member (cfg, "dilation"));
  EXPECT_TRUE (json_object_has_member (cfg, "groups"));
  EXPECT_EQ (shape_text (nn_module_get_parameter (conv.get (), "weight")->shape), "[8, 3, 3, 3]");
  // A bad config never makes a module, and names the key.
  Error e;
  JsonNode *node = json_from_string (R"({"in_channels": 3, "out_channels": 8, "kernal_size": 3})", nullptr);
  Module none (nn_module_new_from_type (reg.get (), "Conv2d", json_node_get_object (node),
                                        "layer2.0.conv1", e.out ()));
  json_node_unref (node);
  EXPECT_FALSE (none);
  EXPECT_TRUE (e.matches (NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_UNKNOWN_KEY)) << e.message ();
  EXPECT_NE (e.message ().find ("layer2.0.conv1"), std::string::npos) << e.message ();
  EXPECT_NE (e.message ().find ("did you mean 'kernel_size'"), std::string::npos) << e.message ();
  Module unknown (nn_module_new_from_type (reg.get (), "Conv7d", nullptr, "x", e.out ()));
  EXPECT_FALSE (unknown);
  EXPECT_TRUE (e.matches (NN_PLUGIN_ERROR, NN_PLUGIN_ERROR_UNKNOWN_TYPE)) << e.message ();
}

TEST (Module, ResetParametersIsDeterministicPerSeed)
{
  Registry reg = default_registry ();
  const char *cfg = R"({"in_features": 64, "out_features": 16})";
  Module a = make (reg.get (), "Linear", cfg);
  Module b = make (reg.get (), "Linear", cfg);
  Module c = make (reg.get (), "Linear", cfg);
  nn_module_reset_parameters (a.get (), 5);
  nn_module_reset_parameters (b.get (), 5);
  nn_module_reset_parameters (c.get (), 6);
  EXPECT_EQ (bytes (a.get ()), bytes (b.get ()));
  EXPECT_NE (bytes (a.get ()), bytes (c.get ()));
  // PyTorch's Linear init: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias,
  // and not all zero.
  float bound = 1.0f / std::sqrt (64.0f);
  for (const char *name : {"weight", "bias"}) {
    NnTensor *t = nn_module_get_parameter (a.get (), name);
    float maxabs = 0;
    for (gint64 i = 0; i < nn_tensor_numel (t); i++)
      maxabs = std::max (maxabs, std::fabs (nn_tensor_f32 (t)[i]));
    EXPECT_LE (maxabs, bound) << name;
    EXPECT_GT (maxabs, bound / 2) << name;
  }
  // The whole tree is filled, and the same seed gives the same tree.
  Module t1 = load_resnet18 (reg.get ());
  Module t2 = load_resnet18 (reg.get ());
  ASSERT_TRUE (t1 && t2);
  nn_module_reset_parameters (t1.get (), 9);
  nn_module_reset_parameters (t2.get (), 9);
  EXPECT_EQ (bytes (t1.get ()), bytes (t2.get ()));
  NnTensor *w = nn_module_lookup_tensor (t1.get (), "layer3.1.conv2.weight", nullptr);
  ASSERT_TRUE (w);
  float sum = 0;
  for (gint64 i = 0; i < nn_tensor_numel (w); i++)
    sum += std::fabs (nn_tensor_f32 (w)[i]);
  EXPECT_GT (sum, 0.0f);
  // BatchNorm resets to PyTorch's defaults: weight 1, bias 0, var 1.
  EXPECT_EQ (nn_tensor_f32 (nn_module_lookup_tensor (t1.get (), "bn1.weight", nullptr))[0], 1.0f);
  EXPECT_EQ (nn_tensor_f32 (nn_module_lookup_tensor (t1.get (), "bn1.running_var", nullptr))[0], 1.0f);
}

TEST (Module, ClassNameSetAndReset)
{
  Registry reg = default_registry ();
  Module g = make (reg.get (), "Sequential");
  Module r = make (reg.get (), "ReLU");
  Error e;
  ASSERT_TRUE (nn_module_add_child (g.get (), "act", r.get (), e.out ()));
  EXPECT_STREQ (nn_module_get_class_name (g.get ()), "Sequential");
  nn_module_set_class_name (g.get (), "Head");
  EXPECT_STREQ (nn_module_get_class_name (g.get ()), "Head");
  EXPECT_STREQ (nn_module_get_type_name (g.get ()), "Sequential");
  EXPECT_EQ (take (nn_module_to_string (g.get ())), "Head(\n  (act): ReLU()\n)");
  nn_module_set_class_name (g.get (), nullptr);
  EXPECT_STREQ (nn_module_get_class_name (g.get ()), "Sequential");
  EXPECT_EQ (take (nn_module_to_string (g.get ())), "Sequential(\n  (act): ReLU()\n)");
  // Setting the type name itself is the same as no display name, so the
  // descriptor does not carry a redundant "class".
  nn_module_set_class_name (g.get (), "Sequential");
  EXPECT_STREQ (nn_module_get_class_name (g.get ()), "Sequential");
  JsonNode *node = nn_descriptor_module_to_node (g.get ());
  EXPECT_FALSE (json_object_has_member (json_node_get_object (node), "class"));
  json_node_unref (node);
  nn_module_set_class_name (g.get (), "Head");
  node = nn_descriptor_module_to_node (g.get ());
  EXPECT_STREQ (json_object_get_string_member (json_node_get_object (node), "class"), "Head");
  json_node_unref (node);
}

TEST (Module, InputShapeIsRecordedAndForgotten)
{
  Registry reg = default_registry ();
  Module m = load_resnet18 (reg.get ());
  ASSERT_TRUE (m);
  NnShape s;
  ASSERT_TRUE (nn_module_get_input_shape (m.get (), &s));
  EXPECT_EQ (shape_text (s), "[1, 3, 224, 224]");
  NnShape other = shape ({2, 3, 64, 64});
  nn_module_set_input_shape (m.get (), &other);
  ASSERT_TRUE (nn_module_get_input_shape (m.get (), &s));
  EXPECT_EQ (shape_text (s), "[2, 3, 64, 64]");
  nn_module_set_input_shape (m.get (), nullptr);
  EXPECT_FALSE (nn_module_get_input_shape (m.get (), &s));
}
