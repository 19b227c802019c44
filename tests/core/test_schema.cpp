// Tests for core/schema.c: config validation before a type's create runs.
#include "nn-test.h"

using namespace nntest;

static Module
make (NnRegistry *reg, const char *type, const char *config_json, Error &e,
      const char *path = "layer2.0.conv1")
{
  g_autoptr (JsonNode) n = json_from_string (config_json, nullptr);
  return Module (nn_module_new_from_type (reg, type, json_node_get_object (n), path, e.out ()));
}

TEST (Schema, UnknownKeySuggestsTheClosest)
{
  Registry reg = default_registry ();
  Error e;
  Module m = make (reg.get (), "Conv2d",
                   R"({"in_channels": 3, "out_channels": 8, "kernal_size": 3})", e);
  EXPECT_FALSE (m);
  EXPECT_TRUE (e.matches (NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_UNKNOWN_KEY));
  EXPECT_EQ (e.message (), "layer2.0.conv1: Conv2d: unknown key 'kernal_size' "
                           "(did you mean 'kernel_size'?)");
}

TEST (Schema, UnknownKeyWithoutCloseMatchListsKnownKeys)
{
  Registry reg = default_registry ();
  Error e;
  Module m = make (reg.get (), "Linear",
                   R"({"in_features": 3, "out_features": 8, "zzzzzzzz": 1})", e, "fc");
  EXPECT_FALSE (m);
  EXPECT_NE (e.message ().find ("fc: Linear: unknown key 'zzzzzzzz' (known keys: "
                                "in_features, out_features, bias)"), std::string::npos)
      << e.message ();
}

TEST (Schema, WrongKind)
{
  Registry reg = default_registry ();
  Error e;
  Module m = make (reg.get (), "Conv2d",
                   R"({"in_channels": 3, "out_channels": 8, "kernel_size": "big"})", e);
  EXPECT_FALSE (m);
  EXPECT_TRUE (e.matches (NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_WRONG_KIND));
  EXPECT_NE (e.message ().find ("layer2.0.conv1: Conv2d: key 'kernel_size' expects an int "
                                "or a tuple of 2 ints, found string 'big'"), std::string::npos)
      << e.message ();
  m = make (reg.get (), "Conv2d",
            R"({"in_channels": 3, "out_channels": 8, "kernel_size": [3, 3, 3]})", e);
  EXPECT_NE (e.message ().find ("found an array of 3"), std::string::npos) << e.message ();
  m = make (reg.get (), "Linear", R"({"in_features": 3.5, "out_features": 8})", e, "fc");
  EXPECT_NE (e.message ().find ("key 'in_features' expects an int, found float 3.5"),
             std::string::npos) << e.message ();
}

TEST (Schema, OutOfRange)
{
  Registry reg = default_registry ();
  Error e;
  Module m = make (reg.get (), "Conv2d",
                   R"({"in_channels": 3, "out_channels": 8, "kernel_size": [3, 0]})", e);
  EXPECT_FALSE (m);
  EXPECT_TRUE (e.matches (NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_OUT_OF_RANGE));
  EXPECT_EQ (e.message (), "layer2.0.conv1: Conv2d: key 'kernel_size' must be >= 1, found 0");
  Module bn = make (reg.get (), "BatchNorm2d", R"({"num_features": 4, "eps": -0.5})", e, "bn");
  EXPECT_FALSE (bn);
  EXPECT_NE (e.message ().find ("bn: BatchNorm2d: key 'eps' must be"), std::string::npos)
      << e.message ();
  EXPECT_NE (e.message ().find ("found -0.5"), std::string::npos) << e.message ();
}

TEST (Schema, MissingRequiredKey)
{
  Registry reg = default_registry ();
  Error e;
  Module m = make (reg.get (), "Conv2d", R"({"in_channels": 3, "kernel_size": 3})", e);
  EXPECT_FALSE (m);
  EXPECT_TRUE (e.matches (NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_MISSING_KEY));
  EXPECT_NE (e.message ().find ("layer2.0.conv1: Conv2d: missing required key 'out_channels'"),
             std::string::npos) << e.message ();
}

TEST (Schema, IntExpandsToTupleWhereTypeAsksAndStaysAsGivenElsewhere)
{
  Registry reg = default_registry ();
  Error e;
  Module conv = make (reg.get (), "Conv2d",
                      R"({"in_channels": 3, "out_channels": 8, "kernel_size": 3})", e);
  ASSERT_TRUE (conv) << e.message ();
  g_autofree char *k = nn_module_config_repr (conv.get (), "kernel_size");
  EXPECT_STREQ (k, "(3, 3)");
  g_autofree char *s = nn_module_config_repr (conv.get (), "stride");
  EXPECT_STREQ (s, "(1, 1)"); // default filled, expanded
  Module pool = make (reg.get (), "MaxPool2d", R"({"kernel_size": 3, "stride": 2})", e);
  ASSERT_TRUE (pool) << e.message ();
  g_autofree char *pk = nn_module_config_repr (pool.get (), "kernel_size");
  EXPECT_STREQ (pk, "3");
  gint64 v[2];
  ASSERT_TRUE (nn_module_config_ints (pool.get (), "kernel_size", v, 2));
  EXPECT_EQ (v[0], 3);
  EXPECT_EQ (v[1], 3);
}

TEST (Schema, FloatsAreStoredAsFloats)
{
  Registry reg = default_registry ();
  Error e;
  Module bn = make (reg.get (), "BatchNorm2d", R"({"num_features": 4, "eps": 1})", e, "bn");
  ASSERT_TRUE (bn) << e.message ();
  EXPECT_EQ (take (nn_module_config_repr (bn.get (), "eps")), "1.0");
  EXPECT_EQ (take (nn_module_config_repr (bn.get (), "momentum")), "0.1");
}
