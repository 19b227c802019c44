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
