// The ops plugin against PyTorch: ops_reference.py runs PyTorch 1.13 at
// test time and writes every case (op spelling, arguments, PyTorch's result
// or error message); each case runs here through the registry by that
// spelling, with nn_module_call, and must give the same dtype, shape and
// values (floats within the case's tolerance, relative and absolute; ints
// and bools exactly), or an error containing PyTorch's message.  Shape
// inference (nn_module_infer) must agree with every result's structure,
// shapes and dtypes.  A few Graphs whose op nodes use the exporter's
// spellings, sizes flowing as ints, must compute what the PyTorch function
// they stand for computes.  Skipped when python3 cannot import torch.
#include "nn-test.h"

#include <cmath>
#include <string>
#include <vector>

using namespace nntest;

namespace {

double json_number (JsonNode *n)
{
  if (JSON_NODE_HOLDS_OBJECT (n)) {
    const char *s = json_object_get_string_member (json_node_get_object (n), "float");
    if (!strcmp (s, "nan")) return NAN;
    if (!strcmp (s, "inf")) return INFINITY;
    if (!strcmp (s, "-inf")) return -INFINITY;
    return g_ascii_strtod (s, nullptr);
  }
  return json_node_get_value_type (n) == G_TYPE_INT64 ? (double) json_node_get_int (n)
                                                      : json_node_get_double (n);
}

// Stores @v in element @i of @t by dtype: test-side reference code, kept
// apart from the plugin's own element access.
void store (NnTensor *t, gint64 i, double v)
{
  switch (t->dtype) {
  case NN_DTYPE_F32: ((float *) t->data)[i] = (float) v; break;
  case NN_DTYPE_F64: ((double *) t->data)[i] = v; break;
  case NN_DTYPE_I64: ((gint64 *) t->data)[i] = (gint64) v; break;
  case NN_DTYPE_I32: ((gint32 *) t->data)[i] = (gint32) v; break;
  case NN_DTYPE_I8: ((gint8 *) t->data)[i] = (gint8) v; break;
  case NN_DTYPE_U8: case NN_DTYPE_BOOL: ((guint8 *) t->data)[i] = (guint8) v; break;
  default: break;
  }
}

// F16/BF16 tensors come as float lists: build F32, then convert with the
// core's conversion (rounding to nearest even, as torch's .half()).
NnTensor *decode_tensor (JsonObject *o)
{
  NnDType dt;
  EXPECT_TRUE (nn_dtype_parse (json_object_get_string_member (o, "dtype"), &dt));
  JsonArray *sh = json_object_get_array_member (o, "shape");
  NnShape s = {};
  for (guint i = 0; i < json_array_get_length (sh); i++)
    s.dims[s.ndim++] = json_array_get_int_element (sh, i);
  gboolean half = dt == NN_DTYPE_F16 || dt == NN_DTYPE_BF16;
  NnTensor *t = nn_tensor_new (half ? NN_DTYPE_F32 : dt, &s);
  JsonArray *data = json_object_get_array_member (o, "data");
  for (guint i = 0; i < json_array_get_length (data); i++)
    store (t, i, json_number (json_array_get_element (data, i)));
  if (half) {
    NnTensor *h = nn_tensor_to_dtype (t, dt);
    nn_tensor_unref (t);
    t = h;
  }
  return t;
}

// The Graph descriptor's expression syntax, with tensors inline.
NnValue *decode (JsonNode *n)
{
  if (JSON_NODE_HOLDS_NULL (n))
    return nn_value_new_none ();
  if (JSON_NODE_HOLDS_ARRAY (n)) {
    NnValue *l = nn_value_new_list ();
    JsonArray *a = json_node_get_array (n);
    for (guint i = 0; i < json_array_get_length (a); i++)
      nn_value_append (l, decode (json_array_get_element (a, i)));
    return l;
  }
  if (JSON_NODE_HOLDS_OBJECT (n)) {
    JsonObject *o = json_node_get_object (n);
    if (json_object_has_member (o, "tensor"))
      return nn_value_take_tensor (decode_tensor (json_object_get_object_member (o, "tensor")));
    if (json_object_has_member (o, "float"))
      return nn_value_new_float (json_number (n));
    if (json_object_has_member (o, "str"))
      return nn_value_new_string (json_object_get_string_member (o, "str"));
    if (json_object_has_member (o, "dtype")) {
      std::string s = std::string ("torch.") + json_object_get_string_member (o, "dtype");
      return nn_value_new_string (s.c_str ());
    }
    if (json_object_has_member (o, "ellipsis"))
      return nn_value_new_ellipsis ();
    if (json_object_has_member (o, "slice")) {
      JsonArray *a = json_object_get_array_member (o, "slice");
      return nn_value_new_slice (decode (json_array_get_element (a, 0)),
                                 decode (json_array_get_element (a, 1)),
                                 decode (json_array_get_element (a, 2)));
    }
    if (json_object_has_member (o, "tuple")) {
      NnValue *t = nn_value_new_tuple ();
      JsonArray *a = json_object_get_array_member (o, "tuple");
      for (guint i = 0; i < json_array_get_length (a); i++)
        nn_value_append (t, decode (json_array_get_element (a, i)));
      return t;
    }
    NnValue *d = nn_value_new_dict ();
    JsonObject *items = json_object_get_object_member (o, "dict");
    GList *keys = json_object_get_members (items);
    for (GList *k = keys; k; k = k->next)
      nn_value_dict_set (d, (const char *) k->data,
                         decode (json_object_get_member (items, (const char *) k->data)));
    g_list_free (keys);
    return d;
  }
  GType t = json_node_get_value_type (n);
  if (t == G_TYPE_BOOLEAN)
    return nn_value_new_bool (json_node_get_boolean (n));
  if (t == G_TYPE_INT64)
    return nn_value_new_int (json_node_get_int (n));
  return nn_value_new_float (json_node_get_double (n));
}

double load (const NnTensor *t, gint64 i)
{
  switch (t->dtype) {
  case NN_DTYPE_F32: return ((const float *) t->data)[i];
  case NN_DTYPE_F64: return ((const double *) t->data)[i];
  case NN_DTYPE_I64: return (double) ((const gint64 *) t->data)[i];
  case NN_DTYPE_I32: return ((const gint32 *) t->data)[i];
  case NN_DTYPE_I8: return ((const gint8 *) t->data)[i];
  case NN_DTYPE_U8: case NN_DTYPE_BOOL: return ((const guint8 *) t->data)[i];
  default: return NAN;
  }
}

bool close (double got, double want, double tol)
{
  if (std::isnan (want))
    return std::isnan (got);
  if (std::isinf (want))
    return got == want;
  return std::fabs (got - want) <= tol + tol * std::fabs (want);
}

// Compares @got with @want (same structure); failures name @where.
void compare (const NnValue *got, const NnValue *want, double tol, const std::string &where)
{
  NnValueKind gk = nn_value_kind (got), wk = nn_value_kind (want);
  // PyTorch returns torch.Size and namedtuples as tuples; nnkit too.
  ASSERT_EQ (nn_value_kind_name (gk), std::string (nn_value_kind_name (wk))) << where;
  switch (wk) {
  case NN_VALUE_TENSOR: {
    NnTensor *g = nn_value_get_tensor (got), *w = nn_value_get_tensor (want);
    ASSERT_EQ (std::string (nn_dtype_name (g->dtype)), nn_dtype_name (w->dtype)) << where;
    ASSERT_TRUE (nn_shape_equal (&g->shape, &w->shape))
        << where << ": shape " << take (nn_shape_to_string (&g->shape)) << ", PyTorch "
        << take (nn_shape_to_string (&w->shape));
    // Half types are compared in float32.
    Tensor g32 (nn_tensor_to_dtype (g, nn_dtype_is_float (g->dtype) ? NN_DTYPE_F64 : g->dtype));
    Tensor w32 (nn_tensor_to_dtype (w, nn_dtype_is_float (w->dtype) ? NN_DTYPE_F64 : w->dtype));
    bool exact = !nn_dtype_is_float (w->dtype);
    int bad = 0;
    for (gint64 i = 0; i < nn_tensor_numel (w) && bad < 5; i++) {
      double a = load (g32.get (), i), b = load (w32.get (), i);
      bool ok = exact ? a == b : close (a, b, tol);
      if (!ok) {
        bad++;
        ADD_FAILURE () << where << ": element " << i << " is " << a << ", PyTorch " << b;
      }
    }
    break;
  }
  case NN_VALUE_INT:
    EXPECT_EQ (nn_value_get_int (got), nn_value_get_int (want)) << where;
    break;
  case NN_VALUE_BOOL:
    EXPECT_EQ (nn_value_get_bool (got), nn_value_get_bool (want)) << where;
    break;
  case NN_VALUE_FLOAT:
    EXPECT_TRUE (close (nn_value_get_float (got), nn_value_get_float (want), tol))
        << where << ": " << nn_value_get_float (got) << " vs " << nn_value_get_float (want);
    break;
  case NN_VALUE_STRING:
    EXPECT_STREQ (nn_value_get_string (got), nn_value_get_string (want)) << where;
    break;
  case NN_VALUE_TUPLE: case NN_VALUE_LIST: case NN_VALUE_DICT:
    ASSERT_EQ (nn_value_n_items (got), nn_value_n_items (want)) << where;
    for (guint i = 0; i < nn_value_n_items (want); i++)
      compare (nn_value_item (got, i), nn_value_item (want, i), tol,
               where + "[" + std::to_string (i) + "]");
    break;
  default:
    break;
  }
}

// Inference's result must have the forward's structure, shapes and dtypes.
void compare_meta (const NnValue *meta, const NnValue *real, const std::string &where)
{
  ASSERT_EQ (nn_value_kind (meta), nn_value_kind (real)) << where;
  if (nn_value_kind (real) == NN_VALUE_TENSOR) {
    NnTensor *m = nn_value_get_tensor (meta), *r = nn_value_get_tensor (real);
    EXPECT_EQ (m->dtype, r->dtype) << where;
    EXPECT_TRUE (nn_shape_equal (&m->shape, &r->shape))
        << where << ": inferred " << take (nn_shape_to_string (&m->shape)) << ", computed "
        << take (nn_shape_to_string (&r->shape));
    return;
  }
  NnValueKind k = nn_value_kind (real);
  if (k == NN_VALUE_TUPLE || k == NN_VALUE_LIST || k == NN_VALUE_DICT) {
    ASSERT_EQ (nn_value_n_items (meta), nn_value_n_items (real)) << where;
    for (guint i = 0; i < nn_value_n_items (real); i++)
      compare_meta (nn_value_item (meta, i), nn_value_item (real, i),
                    where + "[" + std::to_string (i) + "]");
  }
}

class OpsReference : public ::testing::Test {
protected:
  static JsonParser *parser;
  static std::string skip_reason;

  static void SetUpTestSuite ()
  {
    std::string out = build_path ("tests/plugins/ops_reference.json");
    std::string script = source_path ("tests/plugins/ops_reference.py");
    const char *argv[] = { "/usr/bin/python3", script.c_str (), out.c_str (), nullptr };
    gint status = 0;
    g_autofree char *err = nullptr;
    GError *e = nullptr;
    if (!g_spawn_sync (nullptr, (char **) argv, nullptr, G_SPAWN_STDOUT_TO_DEV_NULL, nullptr,
                       nullptr, nullptr, &err, &status, &e)) {
      skip_reason = std::string ("cannot run /usr/bin/python3: ") + e->message;
      g_error_free (e);
      return;
    }
    if (WIFEXITED (status) && WEXITSTATUS (status) == 77) {
      skip_reason = "python3 cannot import torch";
      return;
    }
    ASSERT_TRUE (g_spawn_check_wait_status (status, nullptr)) << "ops_reference.py failed:\n" << err;
    parser = json_parser_new ();
    ASSERT_TRUE (json_parser_load_from_file (parser, out.c_str (), nullptr)) << out;
  }

  static void TearDownTestSuite () { g_clear_object (&parser); }
};

JsonParser *OpsReference::parser = nullptr;
std::string OpsReference::skip_reason;

TEST_F (OpsReference, EveryCaseMatchesPyTorch)
{
  if (!skip_reason.empty ())
    GTEST_SKIP () << skip_reason;
  ASSERT_NE (parser, nullptr);
  Registry reg = default_registry ();
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));
  JsonArray *cases = json_object_get_array_member (root, "cases");
  ASSERT_GT (json_array_get_length (cases), 200u);
  for (guint c = 0; c < json_array_get_length (cases); c++) {
    JsonObject *o = json_array_get_object_element (cases, c);
    std::string name = json_object_get_string_member (o, "name");
    const char *op = json_object_get_string_member (o, "op");
    SCOPED_TRACE (name + " (" + op + ")");
    Error err;
    Module m (nn_module_new_from_type (reg.get (), op, nullptr, "op", err.out ()));
    ASSERT_TRUE (m) << err.message ();
    EXPECT_TRUE (nn_module_get_type (m.get ())->flags & NN_LAYER_OP);
    ValueRef args (nn_value_new_tuple ());
    JsonArray *a = json_object_get_array_member (o, "args");
    for (guint i = 0; i < json_array_get_length (a); i++)
      nn_value_append (args.get (), decode (json_array_get_element (a, i)));
    ValueRef kwargs (nn_value_new_dict ());
    JsonObject *kw = json_object_get_object_member (o, "kwargs");
    GList *keys = json_object_get_members (kw);
    for (GList *k = keys; k; k = k->next)
      nn_value_dict_set (kwargs.get (), (const char *) k->data,
                         decode (json_object_get_member (kw, (const char *) k->data)));
    g_list_free (keys);
    ValueRef out (nn_module_call (m.get (), args.get (), kwargs.get (), err.out ()));
    if (json_object_has_member (o, "error")) {
      std::string want = json_object_get_string_member (o, "error");
      EXPECT_FALSE (out) << "expected an error containing: " << want;
      EXPECT_TRUE (contains (err.message (), want))
          << "message: " << err.message () << "\nPyTorch: " << want;
      continue;
    }
    ASSERT_TRUE (out) << err.message ();
    ValueRef want (decode (json_object_get_member (o, "expect")));
    compare (out.get (), want.get (), json_object_get_double_member (o, "tol"), name);
    ValueRef meta (nn_module_infer (m.get (), args.get (), kwargs.get (), err.out ()));
    if (!meta) {
      // Only ops whose result shape depends on data may refuse: bool-mask
      // indexing, one_hot without num_classes, repeat_interleave with a
      // tensor of repeats; each says so.
      EXPECT_TRUE (contains (err.message (), "depends on")) << err.message ();
      continue;
    }
    compare_meta (meta.get (), out.get (), name + " (inferred)");
  }
}

TEST_F (OpsReference, GraphsOfOpsMatchPyTorch)
{
  if (!skip_reason.empty ())
    GTEST_SKIP () << skip_reason;
  ASSERT_NE (parser, nullptr);
  Registry reg = default_registry ();
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));
  JsonArray *graphs = json_object_get_array_member (root, "graphs");
  ASSERT_GT (json_array_get_length (graphs), 0u);
  for (guint g = 0; g < json_array_get_length (graphs); g++) {
    JsonObject *o = json_array_get_object_element (graphs, g);
    std::string name = json_object_get_string_member (o, "name");
    SCOPED_TRACE (name);
    Error err;
    Module m (nn_module_new_from_type (reg.get (), "Graph",
                                       json_object_get_object_member (o, "config"), "g",
                                       err.out ()));
    ASSERT_TRUE (m) << err.message ();
    ValueRef args (nn_value_new_tuple ());
    JsonArray *in = json_object_get_array_member (o, "inputs");
    for (guint i = 0; i < json_array_get_length (in); i++)
      nn_value_append (args.get (), decode (json_array_get_element (in, i)));
    ValueRef out (nn_module_call (m.get (), args.get (), nullptr, err.out ()));
    ASSERT_TRUE (out) << err.message ();
    ValueRef want (decode (json_object_get_member (o, "expect")));
    compare (out.get (), want.get (), 1e-5, name);
    ValueRef meta (nn_module_infer (m.get (), args.get (), nullptr, err.out ()));
    ASSERT_TRUE (meta) << err.message ();
    compare_meta (meta.get (), out.get (), name + " (inferred)");
  }
}

}  // namespace
