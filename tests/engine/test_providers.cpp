// Tests for core/providers.c: several plugins providing "Scaled" at
// different ranks (tests/fixtures/fixture-provider.c), chosen per module.
#include "nn-test.h"

extern "C" {
#include <nnkit/providers.h>
}

using namespace nntest;

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_TRUE (contains (haystack, needle)) << (haystack)

namespace {

std::string
fixture (const std::string &name)
{
  return std::string (g_getenv ("NN_TEST_FIXTURE_DIR")) + "/" + name + ".so";
}

Registry
registry_with (std::initializer_list<const char *> names)
{
  Registry reg (nn_registry_new ());
  nn_registry_set_use_default_dir (reg.get (), FALSE);
  for (const char *n : names) {
    Error e;
    EXPECT_TRUE (nn_registry_load_file (reg.get (), fixture (n).c_str (), e.out ()))
      << e.message ();
  }
  return reg;
}

// The plugin chosen for a Scaled module with @config_json, or "error: ...".
std::string
chosen (NnRegistry *reg, const char *config_json)
{
  JsonNode *node = json_from_string (config_json, nullptr);
  Error e;
  NnModule *m = nn_module_new_from_type (reg, "Scaled", json_node_get_object (node),
                                         "layer", e.out ());
  json_node_unref (node);
  if (!m)
    return "error: " + e.message ();
  std::string name = nn_plugin_get_name (nn_module_get_plugin (m));
  nn_module_unref (m);
  return name;
}

} // namespace

TEST (Providers, HighestRankThatAcceptsWins)
{
  for (auto order : { std::vector<const char *> { "fixture-prov-ref", "fixture-prov-fast" },
                      std::vector<const char *> { "fixture-prov-fast", "fixture-prov-ref" } }) {
    Registry reg (nn_registry_new ());
    nn_registry_set_use_default_dir (reg.get (), FALSE);
    for (auto n : order)
      ASSERT_TRUE (nn_registry_load_file (reg.get (), fixture (n).c_str (), nullptr));
    ASSERT_TRUE (nn_registry_set_providers (reg.get (), "", nullptr));
    EXPECT_EQ ("prov-fast", chosen (reg.get (), "{}"));
    // supports() refuses: the reference takes it.
    EXPECT_EQ ("prov-ref", chosen (reg.get (), R"({"factor": -1.0})"));
    // The fast provider's schema refuses: the reference takes it.
    EXPECT_EQ ("prov-ref", chosen (reg.get (), R"({"width": 9})"));
    // Lookups see the top-ranked provider.
    NnPlugin *p = nullptr;
    ASSERT_NE (nullptr, nn_registry_resolve_type (reg.get (), "Scaled", &p, nullptr));
    EXPECT_STREQ ("prov-fast", nn_plugin_get_name (p));
  }
}

TEST (Providers, SameRankIsADuplicate)
{
  Registry reg = registry_with ({ "fixture-prov-ref" });
  Error e;
  EXPECT_FALSE (nn_registry_load_file (reg.get (), fixture ("fixture-prov-tie").c_str (), e.out ()));
  EXPECT_TRUE (e.matches (NN_PLUGIN_ERROR, NN_PLUGIN_ERROR_DUPLICATE_TYPE)) << e.message ();
  EXPECT_CONTAINS (e.message (), "'Scaled'");
  EXPECT_CONTAINS (e.message (), "already registered at the same rank");
  EXPECT_EQ ("prov-ref", chosen (reg.get (), "{}"));
}

TEST (Providers, RankNoneOnlyWhenSelected)
{
  Registry reg = registry_with ({ "fixture-prov-ref", "fixture-prov-none" });
  ASSERT_TRUE (nn_registry_set_providers (reg.get (), nullptr, nullptr));
  EXPECT_EQ ("prov-ref", chosen (reg.get (), "{}"));
  ASSERT_TRUE (nn_registry_set_providers (reg.get (), "Scaled=prov-none", nullptr));
  EXPECT_EQ ("prov-none", chosen (reg.get (), "{}"));
}

TEST (Providers, RulesSelectAndExclude)
{
  Registry reg = registry_with ({ "fixture-prov-ref", "fixture-prov-fast" });
  ASSERT_TRUE (nn_registry_set_providers (reg.get (), "-prov-fast", nullptr));
  EXPECT_EQ ("prov-ref", chosen (reg.get (), "{}"));
  ASSERT_TRUE (nn_registry_set_providers (reg.get (), "Scaled=prov-ref", nullptr));
  EXPECT_EQ ("prov-ref", chosen (reg.get (), "{}"));
  ASSERT_TRUE (nn_registry_set_providers (reg.get (), "Other=-prov-fast", nullptr));
  EXPECT_EQ ("prov-fast", chosen (reg.get (), "{}"));
  // A selected provider that refuses the config falls back on the rest.
  ASSERT_TRUE (nn_registry_set_providers (reg.get (), "Scaled=prov-fast", nullptr));
  EXPECT_EQ ("prov-ref", chosen (reg.get (), R"({"factor": -2.0})"));

  CStr text (nn_registry_get_providers (reg.get ()));
  EXPECT_STREQ ("Scaled=prov-fast", text.get ());
  Error e;
  EXPECT_FALSE (nn_registry_set_providers (reg.get (), "Scaled=", e.out ()));
  EXPECT_TRUE (e.matches (NN_PLUGIN_ERROR, NN_PLUGIN_ERROR_INVALID));
  EXPECT_CONTAINS (e.message (), "bad provider rule 'Scaled='");
  CStr kept (nn_registry_get_providers (reg.get ()));
  EXPECT_STREQ ("Scaled=prov-fast", kept.get ());
  ASSERT_TRUE (nn_registry_set_providers (reg.get (), "", nullptr));
  EXPECT_EQ (nullptr, CStr (nn_registry_get_providers (reg.get ())).get ());
}

TEST (Providers, EnvironmentRules)
{
  g_setenv ("NN_PROVIDERS", "Scaled=-prov-fast", TRUE);
  {
    Registry reg = registry_with ({ "fixture-prov-ref", "fixture-prov-fast" });
    EXPECT_EQ ("prov-ref", chosen (reg.get (), "{}"));
    // The API replaces the environment's rules.
    ASSERT_TRUE (nn_registry_set_providers (reg.get (), "", nullptr));
    EXPECT_EQ ("prov-fast", chosen (reg.get (), "{}"));
  }
  g_setenv ("NN_PROVIDERS", "Scaled==x", TRUE);
  {
    // A malformed variable is ignored (with a warning), never fatal.
    Registry reg = registry_with ({ "fixture-prov-ref", "fixture-prov-fast" });
    EXPECT_EQ ("prov-fast", chosen (reg.get (), "{}"));
    EXPECT_EQ (nullptr, CStr (nn_registry_get_providers (reg.get ())).get ());
  }
  g_unsetenv ("NN_PROVIDERS");
}

TEST (Providers, NoProviderTakesTheConfig)
{
  Registry reg = registry_with ({ "fixture-prov-ref", "fixture-prov-fast" });
  ASSERT_TRUE (nn_registry_set_providers (reg.get (), "-prov-ref", nullptr));
  std::string r = chosen (reg.get (), R"({"factor": -1.0})");
  EXPECT_CONTAINS (r, "error: layer: no provider of 'Scaled' takes this config");
  EXPECT_CONTAINS (r, "prov-fast (does not support this config)");
  EXPECT_CONTAINS (r, "prov-ref (excluded)");
  // A schema error of the first candidate is the error reported.
  r = chosen (reg.get (), R"({"width": 9})");
  EXPECT_CONTAINS (r, "error: ");
  EXPECT_CONTAINS (r, "width");
}

TEST (Providers, ListInTrialOrder)
{
  Registry reg = registry_with ({ "fixture-prov-ref", "fixture-prov-fast", "fixture-prov-none" });
  ASSERT_TRUE (nn_registry_set_providers (reg.get (), "-prov-fast", nullptr));
  Error e;
  Array list (nn_registry_list_providers (reg.get (), "Scaled", e.out ()));
  ASSERT_TRUE (list) << e.message ();
  ASSERT_EQ (3u, list->len);
  auto *a = (NnProviderInfo *) g_ptr_array_index (list.get (), 0);
  auto *b = (NnProviderInfo *) g_ptr_array_index (list.get (), 1);
  auto *c = (NnProviderInfo *) g_ptr_array_index (list.get (), 2);
  EXPECT_STREQ ("prov-ref", a->plugin);
  EXPECT_EQ (NN_RANK_PRIMARY, a->rank);
  EXPECT_FALSE (a->excluded);
  EXPECT_STREQ ("prov-fast", b->plugin);
  EXPECT_EQ (NN_RANK_PRIMARY + 64, b->rank);
  EXPECT_TRUE (b->excluded);
  EXPECT_STREQ ("prov-none", c->plugin);
  EXPECT_EQ (NN_RANK_NONE, c->rank);
  EXPECT_TRUE (c->excluded);
  EXPECT_CONTAINS (std::string (a->path), "fixture-prov-ref");

  Error unknown;
  EXPECT_EQ (nullptr, nn_registry_list_providers (reg.get (), "Nope", unknown.out ()));
  EXPECT_TRUE (unknown.matches (NN_PLUGIN_ERROR, NN_PLUGIN_ERROR_UNKNOWN_TYPE));
}
