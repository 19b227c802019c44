// Tests for core/descriptor.c: loading all or nothing, errors with a
// location, deterministic saving.
#include "nn-test.h"

#include <glib/gstdio.h>
#include <vector>

using namespace nntest;

static const char *kNet = R"({
  "format": "nnkit", "version": 1, "input_shape": [1, 3, 16, 16],
  "model": {"type": "Sequential", "class": "Net", "children": [
    {"name": "conv", "type": "Conv2d",
     "config": {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "padding": 1}},
    {"name": "act", "type": "ReLU"},
    {"name": "again", "ref": "act"},
    {"name": "head", "type": "Sequential", "children": [
      {"name": "pool", "type": "AdaptiveAvgPool2d", "config": {"output_size": 1}},
      {"name": "flat", "type": "Flatten"},
      {"name": "fc", "type": "Linear", "config": {"in_features": 4, "out_features": 2}}
    ]}
  ]}
})";

static Module
load (NnRegistry *reg, const std::string &text, Error &e)
{
  return Module (nn_descriptor_load_data (reg, text.c_str (), -1, "net.json", e.out ()));
}

static std::string
replace_once (std::string s, const std::string &from, const std::string &to)
{
  size_t at = s.find (from);
  EXPECT_NE (at, std::string::npos) << from;
  return s.replace (at, from.size (), to);
}

TEST (Descriptor, LoadsTreeWithClassSharedModuleAndInputShape)
{
  Registry reg = default_registry ();
  Error e;
  Module m = load (reg.get (), kNet, e);
  ASSERT_TRUE (m) << e.message ();
  EXPECT_STREQ (nn_module_get_class_name (m.get ()), "Net");
  EXPECT_STREQ (nn_module_get_type_name (m.get ()), "Sequential");
  EXPECT_EQ (nn_module_get_child (m.get (), "act"), nn_module_get_child (m.get (), "again"));
  NnShape s;
  ASSERT_TRUE (nn_module_get_input_shape (m.get (), &s));
  EXPECT_EQ (take (nn_shape_to_string (&s)), "[1, 3, 16, 16]");
}

TEST (Descriptor, SaveIsStableAndRoundTrips)
{
  Registry reg = default_registry ();
  Error e;
  Module m = load (reg.get (), kNet, e);
  ASSERT_TRUE (m) << e.message ();
  std::string first = take (nn_descriptor_to_data (m.get (), nullptr));
  std::string again = take (nn_descriptor_to_data (m.get (), nullptr));
  EXPECT_EQ (first, again);
  Module m2 = load (reg.get (), first, e);
  ASSERT_TRUE (m2) << e.message ();
  EXPECT_EQ (take (nn_descriptor_to_data (m2.get (), nullptr)), first);
  EXPECT_EQ (take (nn_module_to_string (m2.get ())), take (nn_module_to_string (m.get ())));
  // The shared module is saved once and referenced.
  EXPECT_NE (first.find ("\"ref\": \"act\""), std::string::npos) << first;
}

TEST (Descriptor, SaveFileIsAtomic)
{
  Registry reg = default_registry ();
  Error e;
  Module m = load (reg.get (), kNet, e);
  g_autofree char *dir = g_dir_make_tmp ("nnkit-desc-XXXXXX", nullptr);
  g_autofree char *path = g_build_filename (dir, "m.json", nullptr);
  ASSERT_TRUE (nn_descriptor_save_file (m.get (), path, e.out ())) << e.message ();
  Module back (nn_descriptor_load_file (reg.get (), path, e.out ()));
  ASSERT_TRUE (back) << e.message ();
  g_autofree char *bad = g_build_filename (dir, "missing", "m.json", nullptr);
  EXPECT_FALSE (nn_descriptor_save_file (m.get (), bad, e.out ()));
  EXPECT_TRUE (e.matches (NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_IO));
  g_remove (path);
  g_rmdir (dir);
}

struct BadCase {
  const char *name;
  std::string text;
  int code;
  const char *expect;
};

TEST (Descriptor, MalformedInputIsLocated)
{
  Registry reg = default_registry ();
  std::vector<BadCase> cases = {
    { "malformed JSON", std::string (kNet).substr (0, 120), NN_DESCRIPTOR_ERROR_PARSE,
      "net.json: malformed JSON: " },
    { "not an object", "[1, 2]", NN_DESCRIPTOR_ERROR_INVALID,
      "net.json: expected a descriptor object, found an array" },
    { "wrong format", replace_once (kNet, "\"nnkit\"", "\"onnx\""), NN_DESCRIPTOR_ERROR_INVALID,
      "net.json: format is 'onnx', expected 'nnkit'" },
    { "type not a string", replace_once (kNet, "\"type\": \"ReLU\"", "\"type\": 5"),
      NN_DESCRIPTOR_ERROR_INVALID, "net.json: act: field 'type' must be a string, found a number" },
    { "children not array", replace_once (kNet, "\"children\": [\n      {\"name\": \"pool\"",
                                          "\"children\": {\"x\": [{\"name\": \"pool\""),
      NN_DESCRIPTOR_ERROR_PARSE, "net.json: malformed JSON" },
    { "config not object", replace_once (kNet, "\"config\": {\"output_size\": 1}", "\"config\": 1"),
      NN_DESCRIPTOR_ERROR_INVALID, "net.json: head.pool: field 'config' must be an object" },
    { "unknown field", replace_once (kNet, "\"class\": \"Net\"", "\"clas\": \"Net\""),
      NN_DESCRIPTOR_ERROR_INVALID, "net.json: model: unknown field 'clas' in a module" },
    { "bad name", replace_once (kNet, "\"name\": \"act\"", "\"name\": \"a.ct\""),
      NN_DESCRIPTOR_ERROR_BAD_NAME, "net.json: children[1]: module name can't contain \".\", got: a.ct" },
    { "empty name", replace_once (kNet, "\"name\": \"act\"", "\"name\": \"\""),
      NN_DESCRIPTOR_ERROR_BAD_NAME, "module name can't be empty string" },
    { "duplicate name", replace_once (kNet, "\"name\": \"flat\"", "\"name\": \"pool\""),
      NN_DESCRIPTOR_ERROR_DUPLICATE_NAME, "net.json: head.children[1]: duplicate child name 'pool' in head" },
    { "dangling ref", replace_once (kNet, "\"ref\": \"act\"", "\"ref\": \"head.nope\""),
      NN_MODULE_ERROR_NOT_FOUND, "net.json: again: ref 'head.nope': no module 'head.nope'" },
    { "bad config", replace_once (kNet, "\"out_features\": 2", "\"out_feature\": 2"),
      NN_DESCRIPTOR_ERROR_UNKNOWN_KEY,
      "net.json: head.fc: Linear: unknown key 'out_feature' (did you mean 'out_features'?)" },
  };
  for (auto &c : cases) {
    Error e;
    Module m = load (reg.get (), c.text, e);
    EXPECT_FALSE (m) << c.name;
    EXPECT_EQ (e.err ? e.err->code : -1, c.code) << c.name << ": " << e.message ();
    EXPECT_NE (e.message ().find (c.expect), std::string::npos)
        << c.name << ": got '" << e.message () << "'";
  }
}

TEST (Descriptor, UnknownTypeListsKnownTypes)
{
  Registry reg = default_registry ();
  Error e;
  Module m = load (reg.get (), replace_once (kNet, "\"type\": \"ReLU\"", "\"type\": \"ReLu\""), e);
  EXPECT_FALSE (m);
  EXPECT_TRUE (e.matches (NN_PLUGIN_ERROR, NN_PLUGIN_ERROR_UNKNOWN_TYPE)) << e.message ();
  EXPECT_NE (e.message ().find ("net.json: act: unknown layer type 'ReLu'"), std::string::npos)
      << e.message ();
  EXPECT_NE (e.message ().find ("Conv2d"), std::string::npos);
}

TEST (Descriptor, ModuleNodeAndWholeDescriptorBothLoadAsModules)
{
  Registry reg = default_registry ();
  Error e;
  Module a (nn_descriptor_load_module_data (
      reg.get (), R"({"type": "Linear", "config": {"in_features": 2, "out_features": 3}})", -1,
      "inline", e.out ()));
  ASSERT_TRUE (a) << e.message ();
  EXPECT_EQ (take (nn_module_to_string (a.get ())), "Linear(in_features=2, out_features=3, bias=True)");
  Module b (nn_descriptor_load_module_data (reg.get (), kNet, -1, "inline", e.out ()));
  ASSERT_TRUE (b) << e.message ();
  Module c (nn_descriptor_load_module_data (reg.get (), "{\"type\": 1}", -1, "inline", e.out ()));
  EXPECT_FALSE (c);
  EXPECT_NE (e.message ().find ("inline: model: field 'type' must be a string"), std::string::npos)
      << e.message ();
}

// --- version 2: several recorded inputs ----------------------------------------

static const char *kTwoInputs = R"({
  "format": "nnkit", "version": 2,
  "inputs": [{"name": "ids", "shape": [1, 4], "dtype": "I64"},
             {"name": "x", "shape": [1, 4, 2], "dtype": "F32"}],
  "model": {"type": "Graph",
    "config": {"inputs": ["ids", "x"], "nodes": [
      {"name": "e", "module": "emb", "args": ["ids"]},
      {"name": "s", "op": "fixture_add", "args": ["e", "x"]},
      {"name": "y", "module": "fc", "args": ["s"]}],
     "output": "y"},
    "children": [{"name": "emb", "type": "FixtureEmbed", "config": {"num": 8, "dim": 2}},
                 {"name": "fc", "type": "FixtureLinear", "config": {"in_features": 2, "out_features": 3}}]}})";

TEST (Descriptor, InputsSpecLoadsSavesAndDrivesInference)
{
  Registry reg = fixture_registry ();
  Error e;
  Module m = load (reg.get (), kTwoInputs, e);
  ASSERT_TRUE (m) << e.message ();
  NnValue *spec = nn_module_get_input_spec (m.get ());
  ASSERT_NE (spec, nullptr);
  EXPECT_EQ (take (nn_value_to_string (spec)), "{'ids': Tensor[1, 4] I64 meta, 'x': Tensor[1, 4, 2] F32 meta}");
  NnShape one;
  EXPECT_FALSE (nn_module_get_input_shape (m.get (), &one)) << "two inputs: no single shape";
  ValueRef args (nn_module_input_spec_args (m.get ()));
  ValueRef out (nn_module_infer (m.get (), args.get (), nullptr, e.out ()));
  ASSERT_TRUE (out) << e.message ();
  EXPECT_EQ (take (nn_value_to_string (out.get ())), "Tensor[1, 4, 3] F32 meta");
  // Saved as written: version 2, the inputs spec, byte for byte.
  std::string first = take (nn_descriptor_to_data (m.get (), nullptr));
  EXPECT_TRUE (contains (first, "\"version\": 2")) << first;
  EXPECT_TRUE (contains (first, "\"name\": \"ids\"")) << first;
  Module again = load (reg.get (), first, e);
  ASSERT_TRUE (again) << e.message ();
  EXPECT_EQ (take (nn_descriptor_to_data (again.get (), nullptr)), first);
  // The one-input view writes the older input_shape.
  NnShape s = shape ({ 2, 3 });
  nn_module_set_input_shape (again.get (), &s);
  std::string legacy = take (nn_descriptor_to_data (again.get (), nullptr));
  EXPECT_TRUE (contains (legacy, "\"input_shape\": [2, 3]")) << legacy;
  EXPECT_FALSE (contains (legacy, "\n  \"inputs\": [")) << legacy;
  ASSERT_TRUE (nn_module_get_input_shape (again.get (), &one));
  EXPECT_EQ (shape_text (one), "[2, 3]");
  // Setting a spec checks it.
  ValueRef bad (nn_value_new_dict ());
  nn_value_dict_set (bad.get (), "x", nn_value_new_int (3));
  EXPECT_FALSE (nn_module_set_input_spec (again.get (), bad.get (), e.out ()));
  EXPECT_EQ (e.message (), "an input spec is a non-empty dict of input names to tensors, found {'x': 3}");
  ASSERT_TRUE (nn_module_set_input_spec (again.get (), nullptr, e.out ()));
  EXPECT_EQ (nn_module_get_input_spec (again.get ()), nullptr);
}

TEST (Descriptor, InputsSpecErrorsAreLocated)
{
  Registry reg = fixture_registry ();
  std::vector<BadCase> cases = {
    { "both", replace_once (kTwoInputs, "\"version\": 2,", "\"version\": 2, \"input_shape\": [1],"),
      NN_DESCRIPTOR_ERROR_INVALID, "net.json: give 'inputs' or 'input_shape', not both" },
    { "dtype", replace_once (kTwoInputs, "\"dtype\": \"I64\"", "\"dtype\": \"int4\""),
      NN_DESCRIPTOR_ERROR_INVALID, "net.json: inputs[0]: unknown dtype 'int4'" },
    { "dup", replace_once (kTwoInputs, "\"name\": \"x\", \"shape\"", "\"name\": \"ids\", \"shape\""),
      NN_DESCRIPTOR_ERROR_INVALID, "net.json: inputs[1]: input name 'ids' is empty or given twice" },
    { "shape", replace_once (kTwoInputs, "\"shape\": [1, 4],", "\"shape\": [1, -4],"),
      NN_DESCRIPTOR_ERROR_INVALID, "net.json: inputs[0]: 'shape' must be an array" },
    { "field", replace_once (kTwoInputs, "\"dtype\": \"I64\"", "\"dtype\": \"I64\", \"min\": 0"),
      NN_DESCRIPTOR_ERROR_INVALID, "net.json: inputs[0]: unknown field 'min' in an input" },
    { "huge", replace_once (kTwoInputs, "\"shape\": [1, 4],", "\"shape\": [4294967296, 4294967296, 16],"),
      NN_SHAPE_ERROR_INVALID, "net.json: inputs[0] [4294967296, 4294967296, 16] has more elements than 64-bit sizes can count" },
    { "huge input_shape", R"({"format": "nnkit", "version": 2, "input_shape": [4294967296, 4294967296, 16],
                               "model": {"type": "Sequential"}})",
      NN_SHAPE_ERROR_INVALID, "net.json: input_shape [4294967296, 4294967296, 16] has more elements" },
    { "version 3", replace_once (kTwoInputs, "\"version\": 2", "\"version\": 3"),
      NN_DESCRIPTOR_ERROR_INVALID, "net.json: version must be 1 or 2" },
  };
  for (auto &c : cases) {
    Error e;
    Module m = load (reg.get (), c.text, e);
    EXPECT_FALSE (m) << c.name;
    EXPECT_EQ (e.err ? e.err->code : -1, c.code) << c.name << ": " << e.message ();
    EXPECT_NE (e.message ().find (c.expect), std::string::npos)
        << c.name << ": got '" << e.message () << "'";
  }
}

// Surgery re-checks shapes over every recorded input of a multi-input
// Graph, and rolls back a change that breaks them.
TEST (Descriptor, SurgeryChecksEveryRecordedInput)
{
  Registry reg = fixture_registry ();
  Error e;
  Module m = load (reg.get (), kTwoInputs, e);
  ASSERT_TRUE (m) << e.message ();
  Module good = make_module (reg.get (), "FixtureLinear", R"({"in_features": 2, "out_features": 5})", e, "new");
  ASSERT_TRUE (good) << e.message ();
  ASSERT_TRUE (nn_surgery_replace (m.get (), "fc", good.get (), nullptr, e.out ())) << e.message ();
  Module bad = make_module (reg.get (), "FixtureEmbed", R"({"num": 8, "dim": 3})", e, "new");
  ASSERT_TRUE (bad) << e.message ();
  EXPECT_FALSE (nn_surgery_replace (m.get (), "emb", bad.get (), nullptr, e.out ()));
  EXPECT_TRUE (contains (e.message (), "shape check for inputs (Tensor[1, 4] I64 meta, Tensor[1, 4, 2] F32 meta) failed: "
                                       "Graph: node 's' (op 'fixture_add'): shapes [1, 4, 3] and [1, 4, 2] differ"))
      << e.message ();
  EXPECT_EQ (nn_module_lookup_path (m.get (), "emb", nullptr) == bad.get (), false) << "rolled back";
}
