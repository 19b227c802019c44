// Tests for core/lookup.c on the resnet18-shaped tree: every lookup kind
// answers as PyTorch numbers and names it (tests/data/resnet18.*.txt).
#include "nn-test.h"

using namespace nntest;

TEST (Lookup, FlattenedIndexMatchesPyTorch)
{
  Registry reg = default_registry ();
  Module m = load_resnet18 (reg.get ());
  ASSERT_TRUE (m);
  auto rows = read_table ("resnet18.modules.txt");
  ASSERT_EQ (rows.size (), 68u);
  for (auto &row : rows) {
    gint64 idx = g_ascii_strtoll (row[0].c_str (), nullptr, 10);
    const char *path = nullptr;
    Error e;
    NnModule *at = nn_module_lookup_index (m.get (), idx, &path, e.out ());
    ASSERT_NE (at, nullptr) << e.message ();
    EXPECT_EQ (std::string (path), row[1]) << "index " << idx;
    EXPECT_STREQ (nn_module_get_class_name (at), row[2].c_str ()) << row[1];
    EXPECT_EQ (nn_module_index_of (m.get (), at), idx);
    NnModule *by_path = nn_module_lookup_path (m.get (), row[1].c_str (), e.out ());
    EXPECT_EQ (by_path, at) << row[1];
    char *canon = nullptr;
    std::string ref = "#" + row[0];
    EXPECT_EQ (nn_module_lookup_ref (m.get (), ref.c_str (), &canon, e.out ()), at);
    EXPECT_EQ (take (canon), row[1]);
  }
}

TEST (Lookup, IndexErrorsNameTheRange)
{
  Registry reg = default_registry ();
  Module m = load_resnet18 (reg.get ());
  Error e;
  EXPECT_EQ (nn_module_lookup_index (m.get (), 68, nullptr, e.out ()), nullptr);
  EXPECT_EQ (e.message (), "flattened index #68 is out of range: ResNet has 68 modules (#0 to #67)");
  EXPECT_EQ (nn_module_lookup_ref (m.get (), "#x1", nullptr, e.out ()), nullptr);
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE));
  EXPECT_NE (e.message ().find ("'#x1'"), std::string::npos);
  EXPECT_EQ (nn_module_lookup_ref (m.get (), "#-1", nullptr, e.out ()), nullptr);
  EXPECT_EQ (nn_module_index_of (m.get (), nullptr), -1);
}

TEST (Lookup, PathNegativeIndexAndCanonicalName)
{
  Registry reg = default_registry ();
  Module m = load_resnet18 (reg.get ());
  Error e;
  NnModule *last = nn_module_lookup_path (m.get (), "layer2.-1.conv1", e.out ());
  EXPECT_EQ (last, nn_module_lookup_path (m.get (), "layer2.1.conv1", e.out ()));
  char *canon = nullptr;
  EXPECT_EQ (nn_module_lookup_ref (m.get (), "layer2.-2", &canon, e.out ()),
             nn_module_lookup_path (m.get (), "layer2.0", e.out ()));
  EXPECT_EQ (take (canon), "layer2.0");
  EXPECT_EQ (nn_module_lookup_path (m.get (), "", e.out ()), m.get ());
}

TEST (Lookup, PathErrorsNameLongestPrefixAndChildren)
{
  Registry reg = default_registry ();
  Module m = load_resnet18 (reg.get ());
  Error e;
  EXPECT_EQ (nn_module_lookup_path (m.get (), "layer2.0.conv9", e.out ()), nullptr);
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND));
  EXPECT_EQ (e.message (), "no module 'layer2.0.conv9': 'layer2.0' (BasicBlock) has no child "
                           "'conv9'; children: conv1, bn1, relu, conv2, bn2, downsample");
  EXPECT_EQ (nn_module_lookup_path (m.get (), "fc2", e.out ()), nullptr);
  EXPECT_EQ (e.message (), "no module 'fc2': ResNet has no child 'fc2'; children: conv1, bn1, "
                           "relu, maxpool, layer1, layer2, layer3, layer4, avgpool, fc");
  EXPECT_EQ (nn_module_lookup_path (m.get (), "layer1.5", e.out ()), nullptr);
  EXPECT_EQ (e.message (), "no module 'layer1.5': index 5 is out of range for 'layer1' "
                           "(Sequential with 2 children)");
  EXPECT_EQ (nn_module_lookup_path (m.get (), "fc.weight", e.out ()), nullptr);
  EXPECT_NE (e.message ().find ("'fc' (Linear) has no child 'weight'; it has no children"),
             std::string::npos) << e.message ();
  EXPECT_EQ (nn_module_lookup_path (m.get (), "layer1..conv1", e.out ()), nullptr);
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE));
  // Graph children are named, not positional.
  EXPECT_EQ (nn_module_lookup_path (m.get (), "0", e.out ()), nullptr);
}

TEST (Lookup, TensorByFullName)
{
  Registry reg = default_registry ();
  Module m = load_resnet18 (reg.get ());
  Error e;
  for (auto &row : read_table ("resnet18.state_dict.txt")) {
    NnTensor *t = nn_module_lookup_tensor (m.get (), row[0].c_str (), e.out ());
    ASSERT_NE (t, nullptr) << row[0] << ": " << e.message ();
    EXPECT_EQ (shape_text (t->shape), row[1]) << row[0];
    EXPECT_EQ (t->dtype == NN_DTYPE_I64 ? "int64" : "float32", row[2]) << row[0];
  }
  EXPECT_EQ (nn_module_lookup_tensor (m.get (), "layer1.0.conv1.wieght", e.out ()), nullptr);
  EXPECT_EQ (e.message (), "no tensor 'layer1.0.conv1.wieght': 'layer1.0.conv1' (Conv2d) has no "
                           "parameter or buffer 'wieght'; it has: weight");
  EXPECT_EQ (nn_module_lookup_tensor (m.get (), "layer9.weight", e.out ()), nullptr);
  EXPECT_NE (e.message ().find ("no tensor 'layer9.weight': no module 'layer9'"), std::string::npos)
      << e.message ();
}

TEST (Lookup, IndexCacheFollowsMutation)
{
  Registry reg = default_registry ();
  Module m = load_resnet18 (reg.get ());
  Error e;
  NnModule *layer1 = nn_module_lookup_path (m.get (), "layer1", e.out ());
  EXPECT_EQ (nn_module_index_of (m.get (), layer1), 5);
  Module extra (nn_descriptor_load_module_data (reg.get (), R"({"type": "ReLU"})", -1, "x", nullptr));
  // Adding a child ahead of layer1 in the root renumbers everything after it.
  NnModule *relu = nn_module_lookup_path (m.get (), "relu", e.out ());
  ASSERT_TRUE (nn_module_add_child (relu, "inner", extra.get (), e.out ())) << e.message ();
  EXPECT_EQ (nn_module_index_of (m.get (), layer1), 6);
  const char *path = nullptr;
  EXPECT_EQ (nn_module_lookup_index (m.get (), 4, &path, e.out ()), extra.get ());
  EXPECT_STREQ (path, "relu.inner");
}

TEST (Lookup, PositionalStepNamesTheSlotEvenForARepeatedModule)
{
  Registry reg = default_registry ();
  Error e;
  Module m (nn_descriptor_load_module_data (reg.get (), R"({"type": "Sequential", "children": [
      {"name": "a", "type": "ReLU"}, {"name": "b", "ref": "a"}]})", -1, "twice", e.out ()));
  ASSERT_TRUE (m) << e.message ();
  char *canon = nullptr;
  ASSERT_NE (nn_module_lookup_ref (m.get (), "-1", &canon, e.out ()), nullptr) << e.message ();
  EXPECT_EQ (take (canon), "b");
  ASSERT_NE (nn_module_lookup_ref (m.get (), "0", &canon, e.out ()), nullptr);
  EXPECT_EQ (take (canon), "a");
}
