// Shared helpers for the GoogleTest harness: RAII owners for C handles and
// a registry loaded with the build tree's plugins.
#pragma once

#include <gtest/gtest.h>
#include <memory>
#include <string>
#include <vector>

extern "C" {
#include <nnkit/nnkit.h>
#include <nnkit/plugin.h>
}

namespace nntest {

struct ErrorDeleter { void operator() (GError *e) const { g_error_free (e); } };
struct RegistryDeleter { void operator() (NnRegistry *r) const { nn_registry_unref (r); } };
struct ModuleDeleter { void operator() (NnModule *m) const { nn_module_unref (m); } };
struct TensorDeleter { void operator() (NnTensor *t) const { nn_tensor_unref (t); } };
struct ArrayDeleter { void operator() (GPtrArray *a) const { g_ptr_array_unref (a); } };
struct GFreeDeleter { void operator() (void *p) const { g_free (p); } };
struct StDeleter { void operator() (NnSafetensors *s) const { nn_safetensors_free (s); } };

using Registry = std::unique_ptr<NnRegistry, RegistryDeleter>;
using Module = std::unique_ptr<NnModule, ModuleDeleter>;
using Tensor = std::unique_ptr<NnTensor, TensorDeleter>;
using Array = std::unique_ptr<GPtrArray, ArrayDeleter>;
using CStr = std::unique_ptr<char, GFreeDeleter>;
using Safetensors = std::unique_ptr<NnSafetensors, StDeleter>;

// A GError** target that frees itself; message() is "" when unset.
struct Error {
  GError *err = nullptr;
  ~Error () { if (err) g_error_free (err); }
  GError **out () { if (err) { g_error_free (err); err = nullptr; } return &err; }
  std::string message () const { return err ? err->message : ""; }
  bool matches (GQuark d, int code) const { return err && g_error_matches (err, d, code); }
};

// A registry with the build tree's plugins (no system directory when the
// library runs uninstalled).  Fails the test on any load failure.
// Fusion off while in scope: every forward then computes what each module
// computes alone, exactly (a fused plan, made ahead of a root's first
// forward, agrees only to rounding; tests/engine/test_fusion.cpp compares).
struct UnfusedScope {
  UnfusedScope () { nn_engine_set_fusion (FALSE); }
  ~UnfusedScope () { nn_engine_set_fusion (TRUE); }
  UnfusedScope (const UnfusedScope &) = delete;
  UnfusedScope &operator= (const UnfusedScope &) = delete;
};

inline Registry default_registry ()
{
  Registry reg (nn_registry_new ());
  GError *e = nullptr;
  EXPECT_TRUE (nn_registry_load_default (reg.get (), &e)) << (e ? e->message : "");
  if (e) g_error_free (e);
  return reg;
}

inline std::string source_path (const std::string &rel)
{
  const char *root = g_getenv ("NN_TEST_SOURCE_ROOT");
  return std::string (root ? root : ".") + "/" + rel;
}

inline std::string build_path (const std::string &rel)
{
  const char *root = g_getenv ("NN_TEST_BUILD_ROOT");
  return std::string (root ? root : ".") + "/" + rel;
}

inline NnShape shape (std::initializer_list<gint64> dims)
{
  NnShape s = {};
  for (gint64 d : dims) s.dims[s.ndim++] = d;
  return s;
}

inline std::string take (char *s) { std::string r = s ? s : ""; g_free (s); return r; }

inline bool contains (const std::string &s, const std::string &part)
{
  return s.find (part) != std::string::npos;
}

// A module of @type from @json config text (a JSON object), named @path in
// errors; a JSON syntax error fails the test.
inline Module make_module (NnRegistry *reg, const char *type, const std::string &json,
                           Error &err, const char *path)
{
  GError *e = nullptr;
  JsonNode *node = json_from_string (json.c_str (), &e);
  EXPECT_EQ (e, nullptr) << (e ? e->message : "") << json;
  if (e) g_error_free (e);
  Module m (nn_module_new_from_type (reg, type, node ? json_node_get_object (node) : nullptr,
                                     path, err.out ()));
  if (node) json_node_unref (node);
  return m;
}

// The build tree's plugins plus tests/fixtures/fixture-values.so, whose
// ABI 2 types (FixtureAdd, FixturePair, FixtureLinear, ...) stand in for
// layer families and ops in core and container tests.
inline Registry fixture_registry ()
{
  Registry reg = default_registry ();
  const char *dir = g_getenv ("NN_TEST_FIXTURE_DIR");
  std::string path = std::string (dir ? dir : "tests/fixtures") + "/fixture-values.so";
  GError *e = nullptr;
  EXPECT_TRUE (nn_registry_load_file (reg.get (), path.c_str (), &e)) << (e ? e->message : "");
  if (e) g_error_free (e);
  return reg;
}

// A module tree from descriptor JSON text (a module node or a whole
// descriptor); failures fail the test.
inline Module load_json (NnRegistry *reg, const std::string &json)
{
  GError *e = nullptr;
  NnModule *m = nn_descriptor_load_module_data (reg, json.c_str (), -1, "test", &e);
  EXPECT_TRUE (m) << (e ? e->message : "") << "\n" << json;
  if (e) g_error_free (e);
  return Module (m);
}

// An F32 tensor of @dims filled with @f (index) values.
template <typename F>
inline Tensor tensor_f32 (std::initializer_list<gint64> dims, F f)
{
  NnShape s = {};
  for (gint64 d : dims) s.dims[s.ndim++] = d;
  Tensor t (nn_tensor_new (NN_DTYPE_F32, &s));
  for (gint64 i = 0; i < nn_tensor_numel (t.get ()); i++)
    nn_tensor_f32 (t.get ())[i] = f (i);
  return t;
}

// An owned NnValue (named apart from the Value helpers some test files
// define for themselves).
struct ValueRefDeleter { void operator() (NnValue *v) const { if (v) nn_value_unref (v); } };
using ValueRef = std::unique_ptr<NnValue, ValueRefDeleter>;

// A tuple value of the given items (transfer full of each).
inline ValueRef value_tuple (std::initializer_list<NnValue *> items)
{
  ValueRef t (nn_value_new_tuple ());
  for (NnValue *v : items) nn_value_append (t.get (), v);
  return t;
}

}  // namespace nntest

namespace nntest {

// Lines of a committed test data file (tests/data/NAME), split on tabs.
inline std::vector<std::vector<std::string>> read_table (const std::string &name)
{
  std::vector<std::vector<std::string>> rows;
  g_autofree char *text = nullptr;
  std::string path = source_path ("tests/data/" + name);
  if (!g_file_get_contents (path.c_str (), &text, nullptr, nullptr)) {
    ADD_FAILURE () << "cannot read " << path;
    return rows;
  }
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (int i = 0; lines[i]; i++) {
    if (!*lines[i])
      continue;
    g_auto (GStrv) cols = g_strsplit (lines[i], "\t", -1);
    std::vector<std::string> row;
    for (int k = 0; cols[k]; k++)
      row.push_back (cols[k]);
    rows.push_back (row);
  }
  return rows;
}

// Makes "add" (the op of resnet18.json's residual adds) resolvable: the
// ops plugin's when it is built, else tests/fixtures/fixture-add-shim.so.
inline void ensure_add (NnRegistry *reg)
{
  if (nn_registry_lookup_type (reg, "add", nullptr))
    return;
  const char *dir = g_getenv ("NN_TEST_FIXTURE_DIR");
  std::string path = std::string (dir ? dir : "tests/fixtures") + "/fixture-add-shim.so";
  GError *e = nullptr;
  EXPECT_TRUE (nn_registry_load_file (reg, path.c_str (), &e)) << (e ? e->message : "");
  if (e) g_error_free (e);
}

// The resnet18-shaped tree from tests/data/resnet18.json (no weights).
inline Module load_resnet18 (NnRegistry *reg)
{
  ensure_add (reg);
  GError *e = nullptr;
  std::string path = source_path ("tests/data/resnet18.json");
  NnModule *m = nn_descriptor_load_file (reg, path.c_str (), &e);
  EXPECT_TRUE (m) << (e ? e->message : "");
  if (e) g_error_free (e);
  return Module (m);
}

// "[64, 3, 7, 7]" as PyTorch's list(shape) prints it.
inline std::string shape_text (const NnShape &s)
{
  return take (nn_shape_to_string (&s));
}

}  // namespace nntest
