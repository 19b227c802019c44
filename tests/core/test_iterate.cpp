// Tests for core/iterate.c: PyTorch's orders on the resnet18-shaped tree,
// sharing rules, and glob selection.
#include "nn-test.h"

using namespace nntest;

static std::vector<std::string>
names (GPtrArray *a)
{
  std::vector<std::string> out;
  for (guint i = 0; i < a->len; i++)
    out.push_back (((NnNamedItem *) a->pdata[i])->name);
  return out;
}

static void
expect_tensor_list (GPtrArray *got, const char *table)
{
  auto rows = read_table (table);
  ASSERT_EQ (got->len, rows.size ()) << table;
  for (guint i = 0; i < got->len; i++) {
    NnNamedItem *it = (NnNamedItem *) got->pdata[i];
    EXPECT_EQ (it->name, rows[i][0]) << table << " #" << i;
    EXPECT_EQ (shape_text (it->tensor->shape), rows[i][1]) << it->name;
  }
}

TEST (Iterate, NamedModulesParametersBuffersStateDictMatchPyTorch)
{
  Registry reg = default_registry ();
  Module m = load_resnet18 (reg.get ());
  ASSERT_TRUE (m);
  Array mods (nn_module_named_modules (m.get ()));
  auto rows = read_table ("resnet18.modules.txt");
  ASSERT_EQ (mods->len, rows.size ());
  for (guint i = 0; i < mods->len; i++)
    EXPECT_EQ (((NnNamedItem *) mods->pdata[i])->name, rows[i][1]);
  Array params (nn_module_named_parameters (m.get ()));
  expect_tensor_list (params.get (), "resnet18.parameters.txt");
  Array bufs (nn_module_named_buffers (m.get ()));
  expect_tensor_list (bufs.get (), "resnet18.buffers.txt");
  Array sd (nn_module_state_dict (m.get ()));
  expect_tensor_list (sd.get (), "resnet18.state_dict.txt");
  EXPECT_EQ (nn_module_count_parameters (m.get ()), 11689512);
}

TEST (Iterate, NamedChildren)
{
  Registry reg = default_registry ();
  Module m = load_resnet18 (reg.get ());
  Array kids (nn_module_named_children (m.get ()));
  std::vector<std::string> want = { "conv1", "bn1", "relu", "maxpool", "layer1",
                                    "layer2", "layer3", "layer4", "avgpool", "fc" };
  EXPECT_EQ (names (kids.get ()), want);
}

static const char *kShared = R"({"format": "nnkit", "version": 1, "model": {
  "type": "Sequential", "children": [
    {"name": "a", "type": "Linear", "config": {"in_features": 2, "out_features": 2}},
    {"name": "b", "type": "Sequential", "children": [
      {"name": "inner", "ref": "a"},
      {"name": "bn", "type": "BatchNorm2d", "config": {"num_features": 2}}]},
    {"name": "c", "ref": "a"}]}})";

TEST (Iterate, SharedModulesFollowPyTorchRules)
{
  Registry reg = default_registry ();
  Error e;
  Module m (nn_descriptor_load_data (reg.get (), kShared, -1, "shared", e.out ()));
  ASSERT_TRUE (m) << e.message ();
  Array mods (nn_module_named_modules (m.get ()));
  EXPECT_EQ (names (mods.get ()), (std::vector<std::string>{ "", "a", "b", "b.bn" }));
  Array all (nn_module_named_modules_all_paths (m.get ()));
  EXPECT_EQ (names (all.get ()),
             (std::vector<std::string>{ "", "a", "b", "b.inner", "b.bn", "c" }));
  Array params (nn_module_named_parameters (m.get ()));
  EXPECT_EQ (names (params.get ()),
             (std::vector<std::string>{ "a.weight", "a.bias", "b.bn.weight", "b.bn.bias" }));
  // state_dict repeats shared modules under every path.
  Array sd (nn_module_state_dict (m.get ()));
  EXPECT_EQ (names (sd.get ()),
             (std::vector<std::string>{ "a.weight", "a.bias", "b.inner.weight", "b.inner.bias",
                                        "b.bn.weight", "b.bn.bias", "b.bn.running_mean",
                                        "b.bn.running_var", "b.bn.num_batches_tracked",
                                        "c.weight", "c.bias" }));
  EXPECT_EQ (nn_module_count_parameters (m.get ()), 6 + 4);
}

TEST (Iterate, GlobOverModulesAndTensors)
{
  Registry reg = default_registry ();
  Module m = load_resnet18 (reg.get ());
  Error e;
  Array convs (nn_module_glob (m.get (), "layer*.0.conv?", "modules", e.out ()));
  EXPECT_EQ (names (convs.get ()),
             (std::vector<std::string>{ "layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1",
                                        "layer2.0.conv2", "layer3.0.conv1", "layer3.0.conv2",
                                        "layer4.0.conv1", "layer4.0.conv2" }));
  Array biases (nn_module_glob (m.get (), "*.bias", "parameters", e.out ()));
  std::vector<std::string> want;
  for (auto &row : read_table ("resnet18.parameters.txt"))
    if (g_str_has_suffix (row[0].c_str (), ".bias"))
      want.push_back (row[0]);
  EXPECT_EQ (names (biases.get ()), want);
  Array counters (nn_module_glob (m.get (), "*num_batches*", "tensors", e.out ()));
  EXPECT_EQ (counters->len, 20u);
  Array none (nn_module_glob (m.get (), "nothing*", "modules", e.out ()));
  EXPECT_EQ (none->len, 0u);
  EXPECT_EQ (nn_module_glob (m.get (), "*", "weights", e.out ()), nullptr);
  EXPECT_NE (e.message ().find ("unknown selection 'weights'"), std::string::npos);
}
