// Tests for core/registry.c: loading, every load failure and its message,
// discovery order, unknown-type errors, threads and plugin lifetime.  The
// fixture plugins come from tests/fixtures (NN_TEST_FIXTURE_DIR).
#include "nn-test.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

using namespace nntest;

namespace {

#define EXPECT_CONTAINS(haystack, needle)                                  \
  EXPECT_NE (std::string (haystack).find (needle), std::string::npos)       \
      << "expected to find: " << (needle) << "\n in: " << (haystack)
#define EXPECT_NOT_CONTAINS(haystack, needle)                              \
  EXPECT_EQ (std::string (haystack).find (needle), std::string::npos)       \
      << "did not expect: " << (needle) << "\n in: " << (haystack)

std::string fixture (const std::string &name)
{
  const char *dir = g_getenv ("NN_TEST_FIXTURE_DIR");
  return std::string (dir ? dir : "tests/fixtures") + "/" + name;
}

std::string printf_string (const char *fmt, ...) G_GNUC_PRINTF (1, 2);
std::string printf_string (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *s = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  return take (s);
}

// A registry that sees only what a test gives it.
Registry isolated_registry ()
{
  Registry reg (nn_registry_new ());
  nn_registry_set_use_default_dir (reg.get (), FALSE);
  return reg;
}

// Loads @file, which must fail with @code; returns the message.
std::string load_failure (NnRegistry *reg, const std::string &file, int code)
{
  Error e;
  EXPECT_FALSE (nn_registry_load_file (reg, file.c_str (), e.out ())) << file;
  EXPECT_TRUE (e.matches (NN_PLUGIN_ERROR, code))
      << "code " << (e.err ? e.err->code : -1) << ": " << e.message ();
  // Every load error starts with the file it is about.
  EXPECT_EQ (e.message ().rfind (file + ": ", 0), 0u) << e.message ();
  return e.message ();
}

std::vector<std::string> type_names (NnRegistry *reg)
{
  std::vector<std::string> out;
  char **names = nn_registry_list_types (reg);
  for (char **n = names; *n; n++)
    out.push_back (*n);
  g_strfreev (names);
  return out;
}

bool has_type (NnRegistry *reg, const char *name)
{
  return nn_registry_lookup_type (reg, name, nullptr) != nullptr;
}

std::vector<std::string> plugin_names (NnRegistry *reg)
{
  std::vector<std::string> out;
  Array a (nn_registry_list_plugins (reg));
  for (guint i = 0; i < a->len; i++)
    out.push_back (static_cast<NnPluginInfo *> (g_ptr_array_index (a.get (), i))->name);
  return out;
}

// The first bytes of a file as the registry prints them: "23 20 54 68".
std::string hex_prefix (const std::string &path, gsize n)
{
  char *data = nullptr;
  gsize len = 0;
  EXPECT_TRUE (g_file_get_contents (path.c_str (), &data, &len, nullptr));
  std::string out;
  for (gsize i = 0; i < std::min (n, len); i++)
    out += printf_string ("%s%02x", i ? " " : "",
                          static_cast<unsigned char> (data[i]));
  g_free (data);
  return out;
}

// A temporary directory removed with everything in it (one level).
struct TempDir {
  std::string path;
  TempDir ()
  {
    char *p = g_dir_make_tmp ("nnkit-registry-XXXXXX", nullptr);
    path = p ? p : "";
    g_free (p);
  }
  ~TempDir ()
  {
    GDir *d = g_dir_open (path.c_str (), 0, nullptr);
    if (d) {
      const char *n;
      while ((n = g_dir_read_name (d)))
        g_remove ((path + "/" + n).c_str ());
      g_dir_close (d);
    }
    g_rmdir (path.c_str ());
  }
  std::string link (const std::string &target, const std::string &name) const
  {
    std::string p = path + "/" + name;
    EXPECT_EQ (symlink (target.c_str (), p.c_str ()), 0) << p;
    return p;
  }
  std::string write (const std::string &name, const std::string &data) const
  {
    std::string p = path + "/" + name;
    EXPECT_TRUE (g_file_set_contents (p.c_str (), data.data (),
                                      (gssize) data.size (), nullptr));
    return p;
  }
};

// Keeps an environment variable for the test's duration.
struct EnvGuard {
  std::string name;
  std::string old;
  bool had;
  explicit EnvGuard (const char *n) : name (n)
  {
    const char *v = g_getenv (n);
    had = v != nullptr;
    old = v ? v : "";
  }
  ~EnvGuard ()
  {
    if (had)
      g_setenv (name.c_str (), old.c_str (), TRUE);
    else
      g_unsetenv (name.c_str ());
  }
};

// Whether the dynamic linker still has @path mapped.
bool is_mapped (const std::string &path)
{
  void *h = dlopen (path.c_str (), RTLD_NOW | RTLD_NOLOAD);
  if (!h)
    return false;
  dlclose (h);
  return true;
}

}  // namespace

// --- loading a good plugin -------------------------------------------------

TEST (Registry, LoadsGoodPluginAndListsIt)
{
  Registry reg = isolated_registry ();
  std::string path = fixture ("fixture-good.so");
  Error e;
  ASSERT_TRUE (nn_registry_load_file (reg.get (), path.c_str (), e.out ())) << e.message ();

  NnPlugin *plugin = nullptr;
  const NnLayerType *t = nn_registry_resolve_type (reg.get (), "FixtureScale",
                                                   &plugin, e.out ());
  ASSERT_NE (t, nullptr) << e.message ();
  EXPECT_STREQ (t->name, "FixtureScale");
  ASSERT_EQ (t->n_schema, 1u);
  EXPECT_STREQ (t->schema[0].name, "factor");
  ASSERT_NE (plugin, nullptr);
  EXPECT_STREQ (nn_plugin_get_name (plugin), "fixture");
  EXPECT_EQ (nn_plugin_get_path (plugin), path);
  EXPECT_EQ (nn_plugin_get_registry (plugin), reg.get ());
  EXPECT_NE (nn_registry_lookup_type (reg.get (), "FixtureIdentity", nullptr), nullptr);

  Array plugins (nn_registry_list_plugins (reg.get ()));
  ASSERT_EQ (plugins->len, 1u);
  auto *info = static_cast<NnPluginInfo *> (g_ptr_array_index (plugins.get (), 0));
  EXPECT_STREQ (info->name, "fixture");
  EXPECT_STREQ (info->version, "1.0");
  EXPECT_STREQ (info->license, "MIT");
  EXPECT_STREQ (info->description, "well-formed test plugin");
  EXPECT_EQ (info->path, path);
  ASSERT_EQ (g_strv_length (info->type_names), 2u);
  EXPECT_STREQ (info->type_names[0], "FixtureScale");  // registration order
  EXPECT_STREQ (info->type_names[1], "FixtureIdentity");

  EXPECT_EQ (type_names (reg.get ()),
             (std::vector<std::string>{ "FixtureIdentity", "FixtureScale" }));
  Array failures (nn_registry_get_failures (reg.get ()));
  EXPECT_EQ (failures->len, 0u);
}

TEST (Registry, LoadingTheSameFileAgainIsANoOp)
{
  Registry reg = isolated_registry ();
  std::string path = fixture ("fixture-good.so");
  ASSERT_TRUE (nn_registry_load_file (reg.get (), path.c_str (), nullptr));
  Error e;
  EXPECT_TRUE (nn_registry_load_file (reg.get (), path.c_str (), e.out ())) << e.message ();
  EXPECT_EQ (plugin_names (reg.get ()), std::vector<std::string>{ "fixture" });
  Array failures (nn_registry_get_failures (reg.get ()));
  EXPECT_EQ (failures->len, 0u);
}

TEST (Registry, InstalledDirIsVersioned)
{
  std::string dir = nn_registry_installed_dir ();
  std::string tail = printf_string ("nnkit-%d/plugins", NN_ABI_MAJOR);
  ASSERT_GE (dir.size (), tail.size ());
  EXPECT_EQ (dir.substr (dir.size () - tail.size ()), tail);
}

// --- one test per failure kind ---------------------------------------------

TEST (RegistryFailure, TextFileIsNotAPlugin)
{
  Registry reg = isolated_registry ();
  std::string path = fixture ("fixture-not-a-plugin.so");
  std::string msg = load_failure (reg.get (), path, NN_PLUGIN_ERROR_NOT_A_PLUGIN);
  EXPECT_CONTAINS (msg, "not an ELF shared object");
  EXPECT_CONTAINS (msg, "expected the ELF magic 7f 45 4c 46");
  EXPECT_CONTAINS (msg, "found " + hex_prefix (path, 4));
}

TEST (RegistryFailure, EmptyAndNonSharedElfFilesAreNotPlugins)
{
  TempDir dir;
  Registry reg = isolated_registry ();
  std::string empty = dir.write ("empty.so", "");
  EXPECT_CONTAINS (load_failure (reg.get (), empty, NN_PLUGIN_ERROR_NOT_A_PLUGIN),
                   "found an empty file");

  // An ELF identification followed by e_type 1 (ET_REL), little-endian.
  std::string rel ("\x7f" "ELF\x02\x01\x01", 7);
  rel.resize (16, '\0');
  rel += std::string ("\x01\x00", 2);
  rel.resize (64, '\0');
  std::string obj = dir.write ("object.so", rel);
  std::string msg = load_failure (reg.get (), obj, NN_PLUGIN_ERROR_NOT_A_PLUGIN);
  EXPECT_CONTAINS (msg, "a relocatable object (ELF type 1)");
  EXPECT_CONTAINS (msg, "not a shared object");
}

TEST (RegistryFailure, MissingFileIsAnIoError)
{
  Registry reg = isolated_registry ();
  std::string path = fixture ("no-such-plugin.so");
  std::string msg = load_failure (reg.get (), path, NN_PLUGIN_ERROR_IO);
  EXPECT_CONTAINS (msg, g_strerror (ENOENT));
}

TEST (RegistryFailure, UndefinedSymbolCarriesDlerrorAndHint)
{
  Registry reg = isolated_registry ();
  std::string msg = load_failure (reg.get (), fixture ("fixture-undefined.so"),
                                  NN_PLUGIN_ERROR_DLOPEN);
  EXPECT_CONTAINS (msg, "undefined symbol: nn_fixture_function_defined_nowhere");
  EXPECT_CONTAINS (msg, "newer nnkit core");
  EXPECT_CONTAINS (msg, "library it depends on");
}

TEST (RegistryFailure, MissingEntrySymbolIsNamed)
{
  Registry reg = isolated_registry ();
  std::string msg = load_failure (reg.get (), fixture ("fixture-no-entry.so"),
                                  NN_PLUGIN_ERROR_NO_ENTRY);
  EXPECT_CONTAINS (msg, std::string ("entry symbol '") + NN_PLUGIN_ENTRY_SYMBOL + "' not found");
}

TEST (RegistryFailure, BadMagicShowsExpectedAndFound)
{
  Registry reg = isolated_registry ();
  std::string msg = load_failure (reg.get (), fixture ("fixture-bad-magic.so"),
                                  NN_PLUGIN_ERROR_BAD_MAGIC);
  EXPECT_CONTAINS (msg, printf_string ("expected 0x%08x", NN_PLUGIN_MAGIC));
  EXPECT_CONTAINS (msg, "found 0x12345678");
}

TEST (RegistryFailure, AbiMajorDifferenceNamesBothVersions)
{
  Registry reg = isolated_registry ();
  std::string msg = load_failure (reg.get (), fixture ("fixture-abi-major.so"),
                                  NN_PLUGIN_ERROR_ABI);
  EXPECT_CONTAINS (msg, printf_string ("plugin built for nnkit ABI %d.%d, this core is %d.%d",
                                       NN_ABI_MAJOR + 1, NN_ABI_MINOR,
                                       NN_ABI_MAJOR, NN_ABI_MINOR));
  EXPECT_CONTAINS (msg, "major version must be the same");
}

TEST (RegistryFailure, NewerAbiMinorNamesBothVersions)
{
  Registry reg = isolated_registry ();
  std::string msg = load_failure (reg.get (), fixture ("fixture-abi-minor.so"),
                                  NN_PLUGIN_ERROR_ABI);
  EXPECT_CONTAINS (msg, printf_string ("plugin built for nnkit ABI %d.%d, this core is %d.%d",
                                       NN_ABI_MAJOR, NN_ABI_MINOR + 1,
                                       NN_ABI_MAJOR, NN_ABI_MINOR));
  EXPECT_CONTAINS (msg, "needs a newer core");
}

TEST (RegistryFailure, MalformedDescriptors)
{
  EnvGuard guard ("NN_FIXTURE_CASE");
  Registry reg = isolated_registry ();
  std::string path = fixture ("fixture-invalid-desc.so");
  const struct { const char *name; const char *expect; } cases[] = {
    { "small-size", "struct_size 24 is smaller than the minimum" },
    { "null-name", "the plugin has no name" },
    { "null-init", "plugin 'fixture-no-init' has no init function" },
    { "null-desc", "nn_plugin_get_desc() returned NULL" },
  };
  for (const auto &c : cases) {
    SCOPED_TRACE (c.name);
    g_setenv ("NN_FIXTURE_CASE", c.name, TRUE);
    std::string msg = load_failure (reg.get (), path, NN_PLUGIN_ERROR_INVALID);
    EXPECT_CONTAINS (msg, c.expect);
  }
  // Retrying one file replaces its failure rather than listing it again.
  Array failures (nn_registry_get_failures (reg.get ()));
  ASSERT_EQ (failures->len, 1u);
  auto *f = static_cast<NnPluginFailure *> (g_ptr_array_index (failures.get (), 0));
  EXPECT_CONTAINS (f->message, "returned NULL");
}

TEST (RegistryFailure, InitFailureIsWrappedAndLeavesNoTypes)
{
  Registry reg = isolated_registry ();
  std::string msg = load_failure (reg.get (), fixture ("fixture-init-fails.so"),
                                  NN_PLUGIN_ERROR_INIT_FAILED);
  EXPECT_CONTAINS (msg, "plugin 'fixture-init-fails' init failed: "
                        "license key FIXTURE-123 not accepted");
  // It registered FixtureOrphan before failing: staged, never committed.
  EXPECT_FALSE (has_type (reg.get (), "FixtureOrphan"));
  EXPECT_TRUE (plugin_names (reg.get ()).empty ());
}

TEST (RegistryFailure, DuplicateTypeNamesBothPluginsAndRejectsWholePlugin)
{
  Registry reg = isolated_registry ();
  std::string good = fixture ("fixture-good.so");
  ASSERT_TRUE (nn_registry_load_file (reg.get (), good.c_str (), nullptr));
  std::string msg = load_failure (reg.get (), fixture ("fixture-dup-type.so"),
                                  NN_PLUGIN_ERROR_DUPLICATE_TYPE);
  EXPECT_CONTAINS (msg, "plugin 'fixture-dup-type' registers layer type 'FixtureScale'");
  EXPECT_CONTAINS (msg, "plugin 'fixture' (" + good + ") already registered");

  // FixtureDupOnly was registered before the clash: it must not stay.
  EXPECT_FALSE (has_type (reg.get (), "FixtureDupOnly"));
  NnPlugin *owner = nullptr;
  ASSERT_NE (nn_registry_resolve_type (reg.get (), "FixtureScale", &owner, nullptr), nullptr);
  EXPECT_STREQ (nn_plugin_get_name (owner), "fixture");
  EXPECT_EQ (plugin_names (reg.get ()), std::vector<std::string>{ "fixture" });
}

TEST (RegistryFailure, DuplicatePluginNameFirstWins)
{
  Registry reg = isolated_registry ();
  std::string good = fixture ("fixture-good.so");
  std::string dup = fixture ("fixture-dup-name.so");
  ASSERT_TRUE (nn_registry_load_file (reg.get (), good.c_str (), nullptr));
  std::string msg = load_failure (reg.get (), dup, NN_PLUGIN_ERROR_DUPLICATE_PLUGIN);
  EXPECT_CONTAINS (msg, "plugin 'fixture' is already loaded from " + good);
  EXPECT_CONTAINS (msg, "first one found wins");

  NnPlugin *owner = nullptr;
  ASSERT_NE (nn_registry_resolve_type (reg.get (), "FixtureScale", &owner, nullptr), nullptr);
  EXPECT_EQ (nn_plugin_get_path (owner), good);
}

TEST (RegistryFailure, MalformedLayerTypes)
{
  EnvGuard guard ("NN_FIXTURE_CASE");
  std::string path = fixture ("fixture-invalid-type.so");
  const struct { const char *name; const char *expect; } cases[] = {
    { "null-type", "invalid layer type #2: it is NULL" },
    { "null-create", "invalid layer type 'FixtureNoCreate': create is NULL" },
    { "small-size", "invalid layer type 'FixtureSmall': struct_size is" },
    { "args-no-name", "'FixtureArgNoName': argument #0 has no name" },
    { "args-dup", "'FixtureArgDup': argument 'x' is declared twice" },
    { "args-variadic", "'FixtureArgVariadic': argument 'y' follows the VARIADIC one without being KW_ONLY" },
    { "args-default", "'FixtureArgDefault': argument 'x' has a default that is not JSON: '{oops'" },
    { "args-order", "'FixtureArgOrder': required argument 'y' follows optional argument 'x'" },
    { "args-kinds", "'FixtureArgKinds': argument 'x' has kinds 0x0" },
    { "alias-dup", "'FixtureAliasDup': alias 'a' is listed twice" },
    { "alias-self", "'FixtureSelfAlias': alias #0 is empty or the type's own name" },
    { "no-name", "invalid layer type #2: it has no name" },
    { "space-name", "'Fixture Spaced': its name contains a space" },
    { "null-schema", "'FixtureNullSchema': n_schema is 2 but schema is NULL" },
    { "bad-flags", "'FixtureBadFlags': unknown flags 0x100000" },
    { "bad-default", "schema key 'groups' has default 1.5, which is not a valid int" },
    { "not-json-default", "schema key 'groups' has a default that is not JSON: '{oops'" },
    { "dup-key", "schema key 'alpha' is declared twice" },
    { "enum-no-values", "schema key 'mode' has no enum values" },
    { "tuple-len-0", "schema key 'kernel_size' is an int tuple of length 0" },
    { "empty-range", "schema key 'p' has an empty range [1, 0]" },
    { "enum-default", "schema key 'mode' has default \"circular\", which is not a valid enum" },
    // init swallowed the error and returned TRUE: still rejected.
    { "ignored-error", "invalid layer type 'FixtureNoCreate': create is NULL" },
  };
  for (const auto &c : cases) {
    SCOPED_TRACE (c.name);
    g_setenv ("NN_FIXTURE_CASE", c.name, TRUE);
    Registry reg = isolated_registry ();
    std::string msg = load_failure (reg.get (), path, NN_PLUGIN_ERROR_INVALID);
    EXPECT_CONTAINS (msg, "plugin 'fixture-invalid-type'");
    EXPECT_CONTAINS (msg, c.expect);
    EXPECT_FALSE (has_type (reg.get (), "FixtureValidFirst"));
  }
}

TEST (RegistryFailure, SaneRichSchemaIsAccepted)
{
  EnvGuard guard ("NN_FIXTURE_CASE");
  g_setenv ("NN_FIXTURE_CASE", "good-schema", TRUE);
  Registry reg = isolated_registry ();
  Error e;
  ASSERT_TRUE (nn_registry_load_file (reg.get (), fixture ("fixture-invalid-type.so").c_str (),
                                      e.out ())) << e.message ();
  EXPECT_EQ (type_names (reg.get ()),
             (std::vector<std::string>{ "FixtureRichSchema", "FixtureValidFirst" }));
}

TEST (RegistryFailure, RegisteringOutsideInitIsRefused)
{
  Registry reg = isolated_registry ();
  std::string path = fixture ("fixture-good.so");
  ASSERT_TRUE (nn_registry_load_file (reg.get (), path.c_str (), nullptr));
  void *h = dlopen (path.c_str (), RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE (h, nullptr);
  auto late = reinterpret_cast<char *(*) ()> (dlsym (h, "fixture_register_late"));
  ASSERT_NE (late, nullptr);
  std::string msg = take (late ());
  dlclose (h);
  EXPECT_CONTAINS (msg, path + ": plugin 'fixture' registered layer type "
                                "'FixtureLate' outside its init function");
  EXPECT_FALSE (has_type (reg.get (), "FixtureLate"));
}

// --- failures are recorded and the rest loads --------------------------------

TEST (Registry, FailuresAreRecordedInOrderAndOthersLoad)
{
  Registry reg = isolated_registry ();
  const std::vector<std::pair<std::string, int>> broken = {
    { "fixture-bad-magic.so", NN_PLUGIN_ERROR_BAD_MAGIC },
    { "fixture-no-entry.so", NN_PLUGIN_ERROR_NO_ENTRY },
    { "fixture-abi-major.so", NN_PLUGIN_ERROR_ABI },
    { "fixture-undefined.so", NN_PLUGIN_ERROR_DLOPEN },
  };
  ASSERT_TRUE (nn_registry_load_file (reg.get (), fixture ("fixture-good.so").c_str (), nullptr));
  for (const auto &b : broken)
    EXPECT_FALSE (nn_registry_load_file (reg.get (), fixture (b.first).c_str (), nullptr));
  ASSERT_TRUE (nn_registry_load_file (reg.get (), fixture ("fixture-other.so").c_str (), nullptr));

  EXPECT_EQ (plugin_names (reg.get ()),
             (std::vector<std::string>{ "fixture", "fixture-other" }));
  Array failures (nn_registry_get_failures (reg.get ()));
  ASSERT_EQ (failures->len, broken.size ());
  for (guint i = 0; i < failures->len; i++) {
    auto *f = static_cast<NnPluginFailure *> (g_ptr_array_index (failures.get (), i));
    EXPECT_EQ (f->path, fixture (broken[i].first));
    EXPECT_EQ (f->domain, NN_PLUGIN_ERROR);
    EXPECT_EQ (f->code, broken[i].second) << f->message;
    EXPECT_EQ (std::string (f->message).rfind (f->path + std::string (": "), 0), 0u);
  }
}

TEST (Registry, LoadDefaultOverAMixedDirectory)
{
  EnvGuard guard ("NN_PLUGIN_PATH");
  g_unsetenv ("NN_PLUGIN_PATH");
  Registry reg = isolated_registry ();
  std::string mix = fixture ("mix");
  nn_registry_add_path (reg.get (), mix.c_str ());
  Error e;
  ASSERT_TRUE (nn_registry_load_default (reg.get (), e.out ())) << e.message ();

  // Files are visited in sorted order; good ones load among the broken.
  EXPECT_EQ (plugin_names (reg.get ()),
             (std::vector<std::string>{ "fixture", "fixture-other" }));
  Array failures (nn_registry_get_failures (reg.get ()));
  std::vector<std::pair<std::string, int>> got;
  for (guint i = 0; i < failures->len; i++) {
    auto *f = static_cast<NnPluginFailure *> (g_ptr_array_index (failures.get (), i));
    got.emplace_back (f->path, f->code);
  }
  EXPECT_EQ (got, (std::vector<std::pair<std::string, int>>{
                      { mix + "/fixture-bad-magic.so", NN_PLUGIN_ERROR_BAD_MAGIC },
                      { mix + "/fixture-init-fails.so", NN_PLUGIN_ERROR_INIT_FAILED },
                      { mix + "/fixture-not-a-plugin.so", NN_PLUGIN_ERROR_NOT_A_PLUGIN },
                  }));
  // notes.txt has no module suffix.
  ASSERT_TRUE (g_file_test ((mix + "/notes.txt").c_str (), G_FILE_TEST_EXISTS));

  // A second call only looks at files not seen before: nothing changes.
  ASSERT_TRUE (nn_registry_load_default (reg.get (), nullptr));
  EXPECT_EQ (plugin_names (reg.get ()).size (), 2u);
  Array again (nn_registry_get_failures (reg.get ()));
  EXPECT_EQ (again->len, 3u);
}

TEST (Registry, UnreadableAddedDirectoryFailsButOthersLoad)
{
  EnvGuard guard ("NN_PLUGIN_PATH");
  g_unsetenv ("NN_PLUGIN_PATH");
  Registry reg = isolated_registry ();
  std::string missing = fixture ("no-such-dir");
  nn_registry_add_path (reg.get (), missing.c_str ());
  nn_registry_add_path (reg.get (), fixture ("mix").c_str ());
  Error e;
  EXPECT_FALSE (nn_registry_load_default (reg.get (), e.out ()));
  EXPECT_TRUE (e.matches (NN_PLUGIN_ERROR, NN_PLUGIN_ERROR_IO)) << e.message ();
  EXPECT_CONTAINS (e.message (), "cannot read plugin directory " + missing);
  EXPECT_TRUE (has_type (reg.get (), "FixtureScale"));
}

// --- discovery order ---------------------------------------------------------

TEST (RegistryDiscovery, AddedPathComesBeforeEnvironment)
{
  EnvGuard guard ("NN_PLUGIN_PATH");
  TempDir api, env;
  std::string first = api.link (fixture ("fixture-good.so"), "fixture.so");
  std::string second = env.link (fixture ("fixture-dup-name.so"), "fixture.so");
  env.link (fixture ("fixture-other.so"), "other.so");
  // Empty entries are ignored.
  g_setenv ("NN_PLUGIN_PATH", (":" + env.path + "::").c_str (), TRUE);

  Registry reg = isolated_registry ();
  nn_registry_add_path (reg.get (), api.path.c_str ());
  ASSERT_TRUE (nn_registry_load_default (reg.get (), nullptr));

  Array plugins (nn_registry_list_plugins (reg.get ()));
  ASSERT_EQ (plugins->len, 2u);
  auto *p0 = static_cast<NnPluginInfo *> (g_ptr_array_index (plugins.get (), 0));
  auto *p1 = static_cast<NnPluginInfo *> (g_ptr_array_index (plugins.get (), 1));
  EXPECT_STREQ (p0->name, "fixture");
  EXPECT_EQ (p0->path, first);
  EXPECT_STREQ (p0->version, "1.0");
  EXPECT_STREQ (p1->name, "fixture-other");

  Array failures (nn_registry_get_failures (reg.get ()));
  ASSERT_EQ (failures->len, 1u);
  auto *f = static_cast<NnPluginFailure *> (g_ptr_array_index (failures.get (), 0));
  EXPECT_EQ (f->path, second);
  EXPECT_EQ (f->code, NN_PLUGIN_ERROR_DUPLICATE_PLUGIN);
  EXPECT_CONTAINS (f->message, second + ": plugin 'fixture' is already loaded from " + first);
}

TEST (RegistryDiscovery, EnvironmentEntriesKeepTheirOrder)
{
  EnvGuard guard ("NN_PLUGIN_PATH");
  TempDir a, b;
  std::string old_copy = a.link (fixture ("fixture-dup-name.so"), "fixture.so");
  std::string new_copy = b.link (fixture ("fixture-good.so"), "fixture.so");
  g_setenv ("NN_PLUGIN_PATH", (a.path + ":" + b.path).c_str (), TRUE);

  Registry reg = isolated_registry ();
  ASSERT_TRUE (nn_registry_load_default (reg.get (), nullptr));
  NnPlugin *owner = nullptr;
  ASSERT_NE (nn_registry_resolve_type (reg.get (), "FixtureScale", &owner, nullptr), nullptr);
  EXPECT_EQ (nn_plugin_get_path (owner), old_copy);
  Array failures (nn_registry_get_failures (reg.get ()));
  ASSERT_EQ (failures->len, 1u);
  EXPECT_EQ (static_cast<NnPluginFailure *> (g_ptr_array_index (failures.get (), 0))->path,
             new_copy);
}

TEST (RegistryDiscovery, DefaultDirCanBeLeftOut)
{
  EnvGuard guard ("NN_PLUGIN_PATH");
  g_unsetenv ("NN_PLUGIN_PATH");
  Registry reg = isolated_registry ();
  ASSERT_TRUE (nn_registry_load_default (reg.get (), nullptr));
  EXPECT_TRUE (plugin_names (reg.get ()).empty ());
  EXPECT_TRUE (type_names (reg.get ()).empty ());
  Error e;
  EXPECT_EQ (nn_registry_lookup_type (reg.get (), "Conv2d", e.out ()), nullptr);
  EXPECT_NOT_CONTAINS (e.message (), "searched");
}

// Runs uninstalled: with no environment at all, the library finds the build
// tree's plugins/<family>/*.so and nothing else.
TEST (RegistryDiscovery, DefaultFindsBuildTreePluginsWithoutEnvironment)
{
  EnvGuard guard ("NN_PLUGIN_PATH");
  g_unsetenv ("NN_PLUGIN_PATH");
  const char *root_env = g_getenv ("NN_TEST_BUILD_ROOT");
  ASSERT_NE (root_env, nullptr);
  char *real = realpath (root_env, nullptr);
  ASSERT_NE (real, nullptr);
  std::string plugins_dir = std::string (real) + "/plugins";
  free (real);

  // What is on disk, found independently of the registry.
  std::set<std::string> on_disk;
  GDir *top = g_dir_open (plugins_dir.c_str (), 0, nullptr);
  ASSERT_NE (top, nullptr) << plugins_dir;
  for (const char *fam; (fam = g_dir_read_name (top));) {
    std::string sub = plugins_dir + "/" + fam;
    GDir *d = g_dir_open (sub.c_str (), 0, nullptr);
    if (!d)
      continue;
    for (const char *n; (n = g_dir_read_name (d));) {
      std::string name = n;
      if (name.size () > 3 && name.compare (name.size () - 3, 3, ".so") == 0
          && g_file_test ((sub + "/" + name).c_str (), G_FILE_TEST_IS_REGULAR))
        on_disk.insert (sub + "/" + name);
    }
    g_dir_close (d);
  }
  g_dir_close (top);

  Registry reg (nn_registry_new ());
  ASSERT_TRUE (nn_registry_load_default (reg.get (), nullptr));
  std::set<std::string> seen;
  Array plugins (nn_registry_list_plugins (reg.get ()));
  for (guint i = 0; i < plugins->len; i++)
    seen.insert (static_cast<NnPluginInfo *> (g_ptr_array_index (plugins.get (), i))->path);
  Array failures (nn_registry_get_failures (reg.get ()));
  for (guint i = 0; i < failures->len; i++) {
    auto *f = static_cast<NnPluginFailure *> (g_ptr_array_index (failures.get (), i));
    ADD_FAILURE () << "a build-tree plugin failed to load: " << f->message;
    seen.insert (f->path);
  }
  EXPECT_EQ (seen, on_disk);

  // The search itself is reported, and it is the build tree, not the
  // installed directory.
  Error e;
  EXPECT_EQ (nn_registry_lookup_type (reg.get (), "NoSuchTypeAnywhere", e.out ()), nullptr);
  EXPECT_CONTAINS (e.message (), "searched: " + plugins_dir);
  EXPECT_NOT_CONTAINS (e.message (), nn_registry_installed_dir ());
  EXPECT_NOT_CONTAINS (e.message (), "fixture");
}

// --- unknown types -----------------------------------------------------------

TEST (Registry, UnknownTypeListsKnownTypesAndFailedPlugins)
{
  Registry reg = isolated_registry ();
  ASSERT_TRUE (nn_registry_load_file (reg.get (), fixture ("fixture-good.so").c_str (), nullptr));
  ASSERT_TRUE (nn_registry_load_file (reg.get (), fixture ("fixture-other.so").c_str (), nullptr));
  std::string bad = fixture ("fixture-bad-magic.so");
  std::string bad_msg = load_failure (reg.get (), bad, NN_PLUGIN_ERROR_BAD_MAGIC);
  std::string init = fixture ("fixture-init-fails.so");
  std::string init_msg = load_failure (reg.get (), init, NN_PLUGIN_ERROR_INIT_FAILED);

  std::string known;
  for (const auto &n : type_names (reg.get ()))
    known += (known.empty () ? "" : ", ") + n;
  ASSERT_EQ (known, "FixtureIdentity, FixtureOther, FixtureScale");

  Error e;
  EXPECT_EQ (nn_registry_lookup_type (reg.get (), "Conv3d", e.out ()), nullptr);
  EXPECT_TRUE (e.matches (NN_PLUGIN_ERROR, NN_PLUGIN_ERROR_UNKNOWN_TYPE));
  EXPECT_CONTAINS (e.message (), "unknown layer type 'Conv3d' (known types: " + known);
  // "file (reason)", the reason being the load error without its file.
  EXPECT_CONTAINS (e.message (), "; plugins that failed to load: " + bad + " ("
                                     + bad_msg.substr (bad.size () + 2) + "), "
                                     + init + " (" + init_msg.substr (init.size () + 2) + ")");
  EXPECT_NOT_CONTAINS (e.message (), "did you mean");

  NnPlugin *p = reinterpret_cast<NnPlugin *> (0x1);
  EXPECT_EQ (nn_registry_resolve_type (reg.get (), "FixtureScal", &p, e.out ()), nullptr);
  EXPECT_EQ (p, nullptr);
  EXPECT_CONTAINS (e.message (), "unknown layer type 'FixtureScal' (did you mean 'FixtureScale'?)");
  EXPECT_EQ (nn_registry_lookup_type (reg.get (), "fixtureother", e.out ()), nullptr);
  EXPECT_CONTAINS (e.message (), "(did you mean 'FixtureOther'?)");
}

TEST (Registry, UnknownTypeInEmptyRegistry)
{
  Registry reg = isolated_registry ();
  Error e;
  EXPECT_EQ (nn_registry_lookup_type (reg.get (), "Linear", e.out ()), nullptr);
  EXPECT_EQ (e.message (), "unknown layer type 'Linear' (known types: none; "
                           "plugins that failed to load: none)");
}

TEST (Registry, UnknownTypeNamesSearchedDirectories)
{
  EnvGuard guard ("NN_PLUGIN_PATH");
  std::string missing = fixture ("not-there");
  g_setenv ("NN_PLUGIN_PATH", missing.c_str (), TRUE);
  Registry reg = isolated_registry ();
  nn_registry_add_path (reg.get (), fixture ("mix").c_str ());
  ASSERT_TRUE (nn_registry_load_default (reg.get (), nullptr));
  Error e;
  EXPECT_EQ (nn_registry_lookup_type (reg.get (), "Linear", e.out ()), nullptr);
  EXPECT_CONTAINS (e.message (), "; searched: " + fixture ("mix") + ", " + missing + " (missing))");
}

// --- threads -------------------------------------------------------------------

namespace {

struct ThreadCtx {
  NnRegistry *reg;
  std::atomic<int> errors{ 0 };
  std::atomic<bool> stop{ false };
};

gpointer lookup_worker (gpointer data)
{
  auto *ctx = static_cast<ThreadCtx *> (data);
  for (int i = 0; i < 400 || !ctx->stop.load (); i++) {
    NnPlugin *p = nullptr;
    const NnLayerType *t = nn_registry_resolve_type (ctx->reg, "FixtureScale", &p, nullptr);
    if (!t || strcmp (t->name, "FixtureScale") != 0 || !p
        || strcmp (nn_plugin_get_name (p), "fixture") != 0)
      ctx->errors++;
    GError *e = nullptr;
    if (nn_registry_lookup_type (ctx->reg, "NoSuchType", &e) || !e
        || !g_error_matches (e, NN_PLUGIN_ERROR, NN_PLUGIN_ERROR_UNKNOWN_TYPE))
      ctx->errors++;
    g_clear_error (&e);
    char **names = nn_registry_list_types (ctx->reg);
    if (!names || g_strv_length (names) < 2)
      ctx->errors++;
    g_strfreev (names);
    g_ptr_array_unref (nn_registry_list_plugins (ctx->reg));
    g_ptr_array_unref (nn_registry_get_failures (ctx->reg));
    if (i > 100000)
      break;
  }
  return nullptr;
}

}  // namespace

TEST (Registry, ConcurrentLookupsWhileLoading)
{
  Registry reg = isolated_registry ();
  ASSERT_TRUE (nn_registry_load_file (reg.get (), fixture ("fixture-good.so").c_str (), nullptr));
  ThreadCtx ctx;
  ctx.reg = reg.get ();
  std::vector<GThread *> threads;
  for (int i = 0; i < 6; i++)
    threads.push_back (g_thread_new ("lookup", lookup_worker, &ctx));

  // Loads and failures happen while the lookups run.
  EXPECT_TRUE (nn_registry_load_file (reg.get (), fixture ("fixture-other.so").c_str (), nullptr));
  EXPECT_FALSE (nn_registry_load_file (reg.get (), fixture ("fixture-dup-type.so").c_str (), nullptr));
  EXPECT_FALSE (nn_registry_load_file (reg.get (), fixture ("fixture-bad-magic.so").c_str (), nullptr));
  nn_registry_add_path (reg.get (), fixture ("mix").c_str ());
  EXPECT_TRUE (nn_registry_load_default (reg.get (), nullptr));
  ctx.stop = true;
  for (GThread *t : threads)
    g_thread_join (t);

  EXPECT_EQ (ctx.errors.load (), 0);
  EXPECT_EQ (plugin_names (reg.get ()),
             (std::vector<std::string>{ "fixture", "fixture-other" }));
  EXPECT_FALSE (has_type (reg.get (), "FixtureDupOnly"));
}

TEST (Registry, RefAndUnrefFromManyThreads)
{
  Registry reg = isolated_registry ();
  ASSERT_TRUE (nn_registry_load_file (reg.get (), fixture ("fixture-good.so").c_str (), nullptr));
  NnPlugin *plugin = nullptr;
  ASSERT_NE (nn_registry_resolve_type (reg.get (), "FixtureScale", &plugin, nullptr), nullptr);
  std::vector<GThread *> threads;
  for (int i = 0; i < 4; i++)
    threads.push_back (g_thread_new ("ref", [] (gpointer data) -> gpointer {
      auto *p = static_cast<NnPlugin *> (data);
      for (int j = 0; j < 10000; j++)
        nn_plugin_unref (nn_plugin_ref (p));
      return nullptr;
    }, plugin));
  for (GThread *t : threads)
    g_thread_join (t);
  EXPECT_STREQ (nn_plugin_get_name (plugin), "fixture");
}

// --- lifetime ------------------------------------------------------------------

TEST (RegistryLifetime, PluginStaysLoadedWhileAModuleLives)
{
  std::string path = fixture ("fixture-good.so");
  ASSERT_FALSE (is_mapped (path));
  NnRegistry *reg = nn_registry_new ();
  nn_registry_set_use_default_dir (reg, FALSE);
  ASSERT_TRUE (nn_registry_load_file (reg, path.c_str (), nullptr));
  ASSERT_TRUE (is_mapped (path));

  JsonObject *config = json_object_new ();
  json_object_set_double_member (config, "factor", 2.5);
  Error e;
  Module m (nn_module_new_from_type (reg, "FixtureScale", config, "", e.out ()));
  json_object_unref (config);
  ASSERT_TRUE (m) << e.message ();
  NnPlugin *plugin = nn_module_get_plugin (m.get ());
  EXPECT_EQ (nn_plugin_get_registry (plugin), reg);

  nn_registry_unref (reg);
  // The registry is gone, the plugin is not.
  EXPECT_TRUE (is_mapped (path));
  EXPECT_EQ (nn_plugin_get_registry (plugin), nullptr);
  EXPECT_EQ (nn_module_get_registry (m.get ()), nullptr);
  EXPECT_STREQ (nn_plugin_get_name (plugin), "fixture");
  EXPECT_STREQ (nn_module_get_type_name (m.get ()), "FixtureScale");

  // Plugin code still runs: extra_repr and forward.
  const NnLayerType *type = nn_module_get_type (m.get ());
  ASSERT_NE (type->extra_repr, nullptr);
  EXPECT_EQ (take (type->extra_repr (m.get ())), "factor=2.5");
  NnShape s = shape ({ 2, 3 });
  Tensor in (nn_tensor_new (NN_DTYPE_F32, &s));
  float *x = nn_tensor_f32 (in.get ());
  for (int i = 0; i < 6; i++)
    x[i] = 0.5f * (float) i - 1.0f;
  Tensor out (nn_module_forward (m.get (), in.get (), e.out ()));
  ASSERT_TRUE (out) << e.message ();
  ASSERT_EQ (nn_tensor_numel (out.get ()), 6);
  for (int i = 0; i < 6; i++)
    EXPECT_FLOAT_EQ (nn_tensor_f32 (out.get ())[i], x[i] * 2.5f);

  // The last module reference unloads it.
  m.reset ();
  EXPECT_FALSE (is_mapped (path));
}

TEST (RegistryLifetime, RegistryUnrefUnloadsUnusedPlugins)
{
  std::string path = fixture ("fixture-other.so");
  NnRegistry *reg = nn_registry_new ();
  ASSERT_TRUE (nn_registry_load_file (reg, path.c_str (), nullptr));
  NnRegistry *second = nn_registry_ref (reg);
  nn_registry_unref (reg);
  EXPECT_TRUE (is_mapped (path));
  nn_registry_unref (second);
  EXPECT_FALSE (is_mapped (path));
}

TEST (RegistryLifetime, FailedPluginsAreUnloaded)
{
  Registry reg = isolated_registry ();
  std::string path = fixture ("fixture-init-fails.so");
  EXPECT_FALSE (nn_registry_load_file (reg.get (), path.c_str (), nullptr));
  EXPECT_FALSE (is_mapped (path));
}

// A vtable whose struct_size is not a released NnLayerType size (cut short
// after forward, as an older or foreign header gives) is refused by name
// with both sizes: the core never guesses at a layout.
TEST (RegistryAbi, VtableOfAnUnreleasedSizeIsRefused)
{
  Registry reg = isolated_registry ();
  std::string msg = load_failure (reg.get (), fixture ("fixture-short-vtable.so"),
                                  NN_PLUGIN_ERROR_INVALID);
  EXPECT_CONTAINS (msg, "invalid layer type 'FixtureShort'");
  EXPECT_CONTAINS (msg, printf_string ("struct_size is %zu", offsetof (NnLayerType, infer)));
  EXPECT_CONTAINS (msg, printf_string ("accepts only %zu (sizeof (NnLayerType) of ABI 2.0)",
                                       sizeof (NnLayerType)));
  EXPECT_FALSE (has_type (reg.get (), "FixtureShort"));
}

// A plugin built for ABI 1 (hand-made ABI 1 descriptor and vtable) is
// refused before its init runs, naming both versions.
TEST (RegistryAbi, Abi1PluginIsRefusedNamingBothVersions)
{
  Registry reg = isolated_registry ();
  std::string msg = load_failure (reg.get (), fixture ("fixture-abi1.so"), NN_PLUGIN_ERROR_ABI);
  EXPECT_CONTAINS (msg, printf_string ("plugin built for nnkit ABI 1.0, this core is %d.%d",
                                       NN_ABI_MAJOR, NN_ABI_MINOR));
  EXPECT_CONTAINS (msg, "fixture-abi1.so");
}

// Aliases resolve like names and share their namespace across plugins.
TEST (RegistryAbi, AliasesResolveAndClashesNameBothPlugins)
{
  EnvGuard guard ("NN_FIXTURE_CASE");
  Registry reg = isolated_registry ();
  Error e;
  ASSERT_TRUE (nn_registry_load_file (reg.get (), fixture ("fixture-values.so").c_str (), e.out ()))
      << e.message ();
  const NnLayerType *add = nn_registry_lookup_type (reg.get (), "FixtureAdd", e.out ());
  ASSERT_NE (add, nullptr) << e.message ();
  EXPECT_EQ (nn_registry_lookup_type (reg.get (), "fixture_add", e.out ()), add);
  EXPECT_EQ (nn_registry_lookup_type (reg.get (), "fixture.add", e.out ()), add);
  NnPlugin *plugin = nullptr;
  EXPECT_EQ (nn_registry_resolve_type (reg.get (), "fixture_add", &plugin, e.out ()), add);
  EXPECT_STREQ (nn_plugin_get_name (plugin), "fixture-values");
  Module m (nn_module_new_from_type (reg.get (), "fixture.add", nullptr, "x", e.out ()));
  ASSERT_TRUE (m) << e.message ();
  EXPECT_STREQ (nn_module_get_type_name (m.get ()), "FixtureAdd");
  // Type listings hold names only.
  g_auto (GStrv) names = nn_registry_list_types (reg.get ());
  EXPECT_TRUE (g_strv_contains (names, "FixtureAdd"));
  EXPECT_FALSE (g_strv_contains (names, "fixture_add"));

  const struct { const char *name, *clash; } cases[] = {
    { "alias-clash", "registers layer type alias 'fixture_add', which plugin 'fixture-values'" },
    { "name-clash", "registers layer type 'fixture_mul', which plugin 'fixture-values'" },
    { "alias-first", "registers layer type alias 'FixtureValidFirst' twice" },
  };
  for (const auto &c : cases) {
    SCOPED_TRACE (c.name);
    g_setenv ("NN_FIXTURE_CASE", c.name, TRUE);
    std::string msg = load_failure (reg.get (), fixture ("fixture-invalid-type.so"),
                                    NN_PLUGIN_ERROR_DUPLICATE_TYPE);
    EXPECT_CONTAINS (msg, "plugin 'fixture-invalid-type'");
    EXPECT_CONTAINS (msg, c.clash);
    EXPECT_FALSE (has_type (reg.get (), "FixtureValidFirst"));
  }
}

// --- loading on demand (core/registry_lazy.c, core/plugin_index.c) ----------

namespace {

// A private copy of fixture @name in @dir: a path the plugin index has
// never seen, so each test starts without an entry.
std::string copy_fixture (const TempDir &dir, const std::string &name,
                          const std::string &as)
{
  char *data = nullptr;
  gsize len = 0;
  EXPECT_TRUE (g_file_get_contents (fixture (name).c_str (), &data, &len, nullptr));
  std::string out = dir.write (as, std::string (data ? data : "", len));
  g_free (data);
  return out;
}

std::vector<std::string> deferred (NnRegistry *reg)
{
  char **paths = nn_registry_list_deferred (reg);
  std::vector<std::string> out;
  for (guint i = 0; paths && paths[i]; i++)
    out.emplace_back (paths[i]);
  g_strfreev (paths);
  return out;
}

Registry scanned (const TempDir &dir)
{
  Registry reg = isolated_registry ();
  nn_registry_add_path (reg.get (), dir.path.c_str ());
  EXPECT_TRUE (nn_registry_load_default (reg.get (), nullptr));
  return reg;
}

}  // namespace

// The first scan loads every file and records what each registers; the
// next scan defers them, and a lookup loads only the plugin it needs.
TEST (RegistryLazy, IndexedPluginsLoadOnTheirFirstLookup)
{
  EnvGuard guard ("NN_PLUGIN_PATH"), lazy ("NN_PLUGIN_LAZY");
  g_unsetenv ("NN_PLUGIN_PATH");
  g_unsetenv ("NN_PLUGIN_LAZY");
  TempDir dir;
  std::string good = copy_fixture (dir, "fixture-good.so", "a-good.so");
  std::string other = copy_fixture (dir, "fixture-other.so", "b-other.so");
  {
    Registry first = scanned (dir);
    EXPECT_TRUE (deferred (first.get ()).empty ());
    EXPECT_TRUE (is_mapped (good));
    EXPECT_TRUE (is_mapped (other));
  }
  ASSERT_FALSE (is_mapped (good));

  Registry reg = scanned (dir);
  EXPECT_EQ (deferred (reg.get ()), (std::vector<std::string>{ good, other }));
  EXPECT_FALSE (is_mapped (good));
  EXPECT_FALSE (is_mapped (other));

  Error e;
  EXPECT_NE (nn_registry_lookup_type (reg.get (), "FixtureOther", e.out ()), nullptr)
      << e.message ();
  EXPECT_TRUE (is_mapped (other));
  EXPECT_FALSE (is_mapped (good));
  EXPECT_EQ (deferred (reg.get ()), (std::vector<std::string>{ good }));

  // Listing answers as an eager scan would: everything loads first, and
  // plugins are listed in discovery order, not in the order they loaded.
  EXPECT_EQ (plugin_names (reg.get ()),
             (std::vector<std::string>{ "fixture", "fixture-other" }));
  EXPECT_TRUE (deferred (reg.get ()).empty ());
  EXPECT_TRUE (is_mapped (good));
}

TEST (RegistryLazy, TurnedOffLoadsEverythingAtTheScan)
{
  EnvGuard guard ("NN_PLUGIN_PATH"), lazy ("NN_PLUGIN_LAZY");
  g_unsetenv ("NN_PLUGIN_PATH");
  TempDir dir;
  std::string good = copy_fixture (dir, "fixture-good.so", "good.so");
  g_unsetenv ("NN_PLUGIN_LAZY");
  { Registry first = scanned (dir); }

  g_setenv ("NN_PLUGIN_LAZY", "0", TRUE);
  {
    Registry reg = scanned (dir);
    EXPECT_TRUE (deferred (reg.get ()).empty ());
    EXPECT_TRUE (is_mapped (good));
  }
  g_unsetenv ("NN_PLUGIN_LAZY");
  Registry reg = scanned (dir);
  EXPECT_EQ (deferred (reg.get ()), std::vector<std::string>{ good });
  nn_registry_set_lazy (reg.get (), FALSE);
  EXPECT_TRUE (deferred (reg.get ()).empty ());
  EXPECT_TRUE (is_mapped (good));
  nn_registry_load_deferred (reg.get ());  // nothing left: a no-op
  EXPECT_EQ (plugin_names (reg.get ()), std::vector<std::string>{ "fixture" });
}

// A changed file (size or mtime) is not trusted to the index: it loads at
// the scan, and the index learns it again.
TEST (RegistryLazy, ChangedFileLoadsAtTheScan)
{
  EnvGuard guard ("NN_PLUGIN_PATH"), lazy ("NN_PLUGIN_LAZY");
  g_unsetenv ("NN_PLUGIN_PATH");
  g_unsetenv ("NN_PLUGIN_LAZY");
  TempDir dir;
  std::string good = copy_fixture (dir, "fixture-good.so", "good.so");
  { Registry first = scanned (dir); }
  struct timespec times[2] = { { 0, UTIME_OMIT }, { 1000000000, 0 } };
  ASSERT_EQ (utimensat (AT_FDCWD, good.c_str (), times, 0), 0);
  {
    Registry reg = scanned (dir);
    EXPECT_TRUE (deferred (reg.get ()).empty ());
    EXPECT_TRUE (has_type (reg.get (), "FixtureScale"));
  }
  Registry reg = scanned (dir);
  EXPECT_EQ (deferred (reg.get ()), std::vector<std::string>{ good });
}

// A damaged index entry is ignored, not believed.
TEST (RegistryLazy, DamagedIndexEntryIsIgnored)
{
  EnvGuard guard ("NN_PLUGIN_PATH"), lazy ("NN_PLUGIN_LAZY");
  g_unsetenv ("NN_PLUGIN_PATH");
  g_unsetenv ("NN_PLUGIN_LAZY");
  TempDir dir;
  std::string good = copy_fixture (dir, "fixture-good.so", "good.so");
  { Registry first = scanned (dir); }
  char *canonical = realpath (good.c_str (), nullptr);
  ASSERT_NE (canonical, nullptr);
  char *key = g_compute_checksum_for_string (G_CHECKSUM_SHA256, canonical, -1);
  free (canonical);
  std::string entry = std::string (g_get_user_cache_dir ()) + "/nnkit/plugin-index/" + key;
  g_free (key);
  char *text = nullptr;
  ASSERT_TRUE (g_file_get_contents (entry.c_str (), &text, nullptr, nullptr)) << entry;
  std::string damaged = std::string (text) + "two words\n";
  g_free (text);
  ASSERT_TRUE (g_file_set_contents (entry.c_str (), damaged.c_str (), -1, nullptr));

  Registry reg = scanned (dir);
  EXPECT_TRUE (deferred (reg.get ()).empty ());
  EXPECT_TRUE (is_mapped (good));
}

// Whatever the index says, the outcome is the eager scan's: broken files
// are still reported, the first of two same-named plugins still wins, and
// an unknown name still lists every type.
TEST (RegistryLazy, FailuresAndOrderAreThoseOfAnEagerScan)
{
  EnvGuard guard ("NN_PLUGIN_PATH"), lazy ("NN_PLUGIN_LAZY");
  g_unsetenv ("NN_PLUGIN_PATH");
  g_unsetenv ("NN_PLUGIN_LAZY");
  TempDir dir;
  std::string first = copy_fixture (dir, "fixture-good.so", "a.so");
  std::string bad = copy_fixture (dir, "fixture-bad-magic.so", "b-bad.so");
  std::string dup = copy_fixture (dir, "fixture-dup-name.so", "c-dup.so");
  std::string other = copy_fixture (dir, "fixture-other.so", "d-other.so");
  auto failures = [] (NnRegistry *reg) {
    Array f (nn_registry_get_failures (reg));
    std::vector<std::pair<std::string, int>> out;
    for (guint i = 0; i < f->len; i++) {
      auto *x = static_cast<NnPluginFailure *> (g_ptr_array_index (f.get (), i));
      out.emplace_back (x->path, x->code);
    }
    return out;
  };
  std::vector<std::pair<std::string, int>> want = {
    { bad, NN_PLUGIN_ERROR_BAD_MAGIC }, { dup, NN_PLUGIN_ERROR_DUPLICATE_PLUGIN } };
  {
    Registry eager = scanned (dir);
    EXPECT_EQ (failures (eager.get ()), want);
  }
  {
    Registry reg = scanned (dir);
    // b-bad.so has no index entry (it never loaded), so a.so, found
    // before it, loaded at the scan.  c-dup.so may be deferred (the probe
    // helper loaded it alone and indexed it), but it shares its plugin
    // name with a.so, so it can only load after it, and is refused.
    std::vector<std::string> d = deferred (reg.get ());
    EXPECT_EQ (std::count (d.begin (), d.end (), first), 0);
    EXPECT_EQ (std::count (d.begin (), d.end (), other), 1);
    EXPECT_EQ (failures (reg.get ()), want);
    EXPECT_EQ (plugin_names (reg.get ()),
               (std::vector<std::string>{ "fixture", "fixture-other" }));
  }
  Registry reg = scanned (dir);
  Error e;
  EXPECT_EQ (nn_registry_lookup_type (reg.get (), "NoSuchType", e.out ()), nullptr);
  EXPECT_TRUE (e.matches (NN_PLUGIN_ERROR, NN_PLUGIN_ERROR_UNKNOWN_TYPE));
  EXPECT_CONTAINS (e.message (), "FixtureOther");
  EXPECT_TRUE (deferred (reg.get ()).empty ());
}
