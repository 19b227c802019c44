// Tests for core/repr.c: print(model) text.
#include "nn-test.h"

using namespace nntest;

TEST (Repr, Resnet18IsByteIdenticalToPyTorch)
{
  Registry reg = default_registry ();
  Module m = load_resnet18 (reg.get ());
  ASSERT_TRUE (m);
  g_autofree char *want = nullptr;
  std::string path = source_path ("tests/data/resnet18.repr.txt");
  ASSERT_TRUE (g_file_get_contents (path.c_str (), &want, nullptr, nullptr));
  EXPECT_EQ (take (nn_module_to_string (m.get ())) + "\n", std::string (want));
}

TEST (Repr, DepthLimitFoldsDeeperChildren)
{
  Registry reg = default_registry ();
  Module m = load_resnet18 (reg.get ());
  std::string top = take (nn_module_to_string_depth (m.get (), 1));
  EXPECT_NE (top.find ("\n  (layer1): Sequential(...)\n"), std::string::npos) << top;
  EXPECT_NE (top.find ("\n  (fc): Linear(in_features=512, out_features=1000, bias=True)\n"),
             std::string::npos) << top;
  EXPECT_EQ (take (nn_module_to_string_depth (m.get (), 0)), "ResNet(...)");
  EXPECT_EQ (take (nn_module_to_string_depth (m.get (), -1)), take (nn_module_to_string (m.get ())));
}

TEST (Repr, EmptyAndMultiLineForms)
{
  Registry reg = default_registry ();
  Error e;
  Module empty (nn_descriptor_load_module_data (reg.get (), R"({"type": "Sequential"})", -1, "e", e.out ()));
  ASSERT_TRUE (empty) << e.message ();
  EXPECT_EQ (take (nn_module_to_string (empty.get ())), "Sequential()");
  Module nested (nn_descriptor_load_module_data (reg.get (), R"({"type": "Sequential", "children": [
      {"name": "inner", "type": "Sequential", "class": "Block", "children": [
        {"name": "act", "type": "ReLU"}]}]})", -1, "n", e.out ()));
  ASSERT_TRUE (nested) << e.message ();
  EXPECT_EQ (take (nn_module_to_string (nested.get ())),
             "Sequential(\n  (inner): Block(\n    (act): ReLU()\n  )\n)");
}

// A Graph standing for a PyTorch class with its own extra_repr (ConvNeXt's
// LayerNorm2d) prints the recorded text as PyTorch's Module.__repr__ would:
// on one line without children, first inside the parentheses with them.
TEST (Repr, RecordedExtraReprOfAGraph)
{
  Registry reg = default_registry ();
  Error e;
  const char *leaf = R"({"type": "Graph", "class": "LayerNorm2d", "extra_repr": "(8,), eps=1e-06, elementwise_affine=True",
      "config": {"inputs": ["x"], "nodes": [], "output": "x"}})";
  Module m (nn_descriptor_load_module_data (reg.get (), leaf, -1, "l", e.out ()));
  ASSERT_TRUE (m) << e.message ();
  EXPECT_EQ (take (nn_module_to_string (m.get ())),
             "LayerNorm2d((8,), eps=1e-06, elementwise_affine=True)");
  EXPECT_STREQ (nn_module_get_extra_repr (m.get ()), "(8,), eps=1e-06, elementwise_affine=True");
  const char *parent = R"({"type": "Graph", "class": "Block", "extra_repr": "k=2",
      "config": {"inputs": ["x"], "nodes": [{"name": "a", "module": "act", "args": ["x"]}], "output": "a"},
      "children": [{"name": "act", "type": "ReLU"}]})";
  Module p (nn_descriptor_load_module_data (reg.get (), parent, -1, "p", e.out ()));
  ASSERT_TRUE (p) << e.message ();
  EXPECT_EQ (take (nn_module_to_string (p.get ())), "Block(\n  k=2\n  (act): ReLU()\n)");
  // Saved back as given.
  g_autofree char *text = nn_descriptor_to_data (m.get (), nullptr);
  ASSERT_TRUE (text);
  EXPECT_TRUE (contains (text, "(8,), eps=1e-06, elementwise_affine=True")) << text;
  Module again (nn_descriptor_load_module_data (reg.get (), text, -1, "again", e.out ()));
  ASSERT_TRUE (again) << e.message ();
  EXPECT_EQ (take (nn_module_to_string (again.get ())), take (nn_module_to_string (m.get ())));
  // Not a string: refused, naming the field.
  Module bad (nn_descriptor_load_module_data (reg.get (), R"({"type": "Graph", "extra_repr": 3,
      "config": {"inputs": ["x"], "nodes": [], "output": "x"}})", -1, "b", e.out ()));
  EXPECT_FALSE (bad);
  EXPECT_TRUE (contains (e.message (), "field 'extra_repr' must be a string, found")) << e.message ();
}

// A config key PyTorch holds as a Python list (MViT's MaxPool3d(kernel_size=
// [1, 3, 3])) prints as a list when the descriptor names it in
// "repr_lists".  Expected texts are PyTorch 1.13's print() of
// nn.MaxPool2d([3, 3], [2, 2], 1) and of nn.MaxPool2d((3, 3), (2, 2), 1).
TEST (Repr, ConfigKeysHeldAsListsPrintAsLists)
{
  Registry reg = default_registry ();
  Error e;
  const char *listed = R"({"type": "MaxPool2d", "repr_lists": ["kernel_size", "stride"],
      "config": {"kernel_size": [3, 3], "stride": [2, 2], "padding": 1}})";
  Module m (nn_descriptor_load_module_data (reg.get (), listed, -1, "l", e.out ()));
  ASSERT_TRUE (m) << e.message ();
  const std::string want =
      "MaxPool2d(kernel_size=[3, 3], stride=[2, 2], padding=1, dilation=1, ceil_mode=False)";
  EXPECT_EQ (take (nn_module_to_string (m.get ())), want);
  const char *const *keys = nn_module_get_repr_lists (m.get ());
  ASSERT_TRUE (keys);
  EXPECT_STREQ (keys[0], "kernel_size");
  EXPECT_STREQ (keys[1], "stride");
  EXPECT_FALSE (keys[2]);

  // Saved back and loaded again, the lists stay lists.
  g_autofree char *text = nn_descriptor_to_data (m.get (), nullptr);
  ASSERT_TRUE (text);
  EXPECT_TRUE (contains (text, "\"repr_lists\"")) << text;
  Module again (nn_descriptor_load_module_data (reg.get (), text, -1, "again", e.out ()));
  ASSERT_TRUE (again) << e.message ();
  EXPECT_EQ (take (nn_module_to_string (again.get ())), want);

  // Forgotten: tuples, as for a module built with tuples.
  ASSERT_TRUE (nn_module_set_repr_lists (m.get (), nullptr, e.out ())) << e.message ();
  EXPECT_FALSE (nn_module_get_repr_lists (m.get ()));
  EXPECT_EQ (take (nn_module_to_string (m.get ())),
             "MaxPool2d(kernel_size=(3, 3), stride=(2, 2), padding=1, dilation=1, ceil_mode=False)");
}

TEST (Repr, ReprListsNamingNoListAreRefused)
{
  Registry reg = default_registry ();
  Error e;
  struct { const char *json; GQuark domain; int code; const char *says; } cases[] = {
    { R"({"type": "MaxPool2d", "repr_lists": "kernel_size", "config": {"kernel_size": [3, 3]}})",
      NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
      "model: field 'repr_lists' must be an array of config keys, found a string" },
    { R"({"type": "MaxPool2d", "repr_lists": [3], "config": {"kernel_size": [3, 3]}})",
      NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
      "model: repr_lists[0] must be a config key (a string), found" },
    { R"({"type": "MaxPool2d", "repr_lists": ["kernal_size"], "config": {"kernel_size": [3, 3]}})",
      NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_UNKNOWN_KEY,
      "model: MaxPool2d has no config key 'kernal_size' to print as a list" },
    { R"({"type": "MaxPool2d", "repr_lists": ["padding"], "config": {"kernel_size": [3, 3], "padding": 1}})",
      NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_WRONG_KIND,
      "model: MaxPool2d config 'padding' prints as a list only when it holds one: "
      "expected an array, found 1" },
  };
  for (const auto &c : cases) {
    Module m (nn_descriptor_load_module_data (reg.get (), c.json, -1, "bad", e.out ()));
    EXPECT_FALSE (m) << c.json;
    EXPECT_TRUE (e.matches (c.domain, c.code)) << e.message ();
    EXPECT_TRUE (contains (e.message (), c.says)) << e.message ();
  }
  // In a child: the error names its path, and nothing is built.
  Module nested (nn_descriptor_load_module_data (reg.get (), R"({"type": "Sequential", "children": [
      {"name": "pool", "type": "MaxPool2d", "repr_lists": ["stride"], "config": {"kernel_size": 2}}]})",
      -1, "nested", e.out ()));
  EXPECT_FALSE (nested);
  EXPECT_TRUE (contains (e.message (), "pool: MaxPool2d config 'stride' prints as a list only")) << e.message ();
}
