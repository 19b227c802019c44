// The new layer families (plugins/norm, embedding, activations, conv, pool,
// misc, recurrent, attention) against PyTorch: run.py writes reference
// cases with python3/torch at test time (reference.py, cases_FAMILY.py) and
// points NN_LAYERS_CASES at them.  Each case builds the module through the
// registry from the same config, checks the state_dict names, shapes and
// dtypes, the repr, loads torch's tensors, runs the call and compares every
// result leaf; shape inference on meta tensors must give the same shapes.
// Cases where torch raises must fail in nnkit too, with torch's wording
// (or the case's stated nnkit wording).
#include "nn-test.h"

#include <cmath>
#include <string>

using namespace nntest;

namespace {

struct NodeDeleter { void operator() (JsonNode *n) const { json_node_unref (n); } };
struct ValDeleter { void operator() (NnValue *v) const { if (v) nn_value_unref (v); } };
using Node = std::unique_ptr<JsonNode, NodeDeleter>;
using Val = std::unique_ptr<NnValue, ValDeleter>;

// torch's message as nnkit writes it: "torch.Size([2, 4])" is "[2, 4]",
// runs of spaces are one.
std::string normalise (std::string s)
{
  for (size_t p; (p = s.find ("torch.Size([")) != std::string::npos;) {
    size_t q = s.find ("])", p);
    s = s.substr (0, p) + "[" + s.substr (p + 12, q - p - 12) + "]" + s.substr (q + 2);
  }
  std::string out;
  for (char c : s)
    if (!(c == ' ' && !out.empty () && out.back () == ' '))
      out += c;
  return out;
}

NnValue *json_to_value (JsonNode *n)
{
  if (JSON_NODE_HOLDS_NULL (n))
    return nn_value_new_none ();
  if (JSON_NODE_HOLDS_ARRAY (n)) {
    NnValue *t = nn_value_new_tuple ();
    JsonArray *a = json_node_get_array (n);
    for (guint i = 0; i < json_array_get_length (a); i++)
      nn_value_append (t, json_to_value (json_array_get_element (a, i)));
    return t;
  }
  GType vt = json_node_get_value_type (n);
  if (vt == G_TYPE_INT64)
    return nn_value_new_int (json_node_get_int (n));
  if (vt == G_TYPE_DOUBLE)
    return nn_value_new_float (json_node_get_double (n));
  if (vt == G_TYPE_BOOLEAN)
    return nn_value_new_bool (json_node_get_boolean (n));
  return nn_value_new_string (json_node_get_string (n));
}

// An argument spec {"tensor": key}, {"tuple": [specs]} or {"value": json};
// tensors become meta tensors of the same shape when @meta.
NnValue *arg_value (JsonObject *spec, NnSafetensors *st, bool meta)
{
  if (json_object_has_member (spec, "tuple")) {
    NnValue *t = nn_value_new_tuple ();
    JsonArray *a = json_object_get_array_member (spec, "tuple");
    for (guint i = 0; i < json_array_get_length (a); i++)
      nn_value_append (t, arg_value (json_array_get_object_element (a, i), st, meta));
    return t;
  }
  if (json_object_has_member (spec, "tensor")) {
    const char *key = json_object_get_string_member (spec, "tensor");
    NnShape s;
    const char *dt = nn_safetensors_get_info (st, key, &s);
    NnDType dtype = NN_DTYPE_F32;
    EXPECT_TRUE (dt && nn_dtype_parse (dt, &dtype)) << key;
    if (meta)
      return nn_value_take_tensor (nn_tensor_new_meta (dtype, &s));
    GError *e = nullptr;
    NnTensor *t = nn_safetensors_get (st, key, dtype, &e);
    EXPECT_TRUE (t) << (e ? e->message : "");
    if (e) g_error_free (e);
    return t ? nn_value_take_tensor (t) : nn_value_new_none ();
  }
  return json_to_value (json_object_get_member (spec, "value"));
}

void build_args (JsonObject *c, NnSafetensors *st, bool meta, Val &args, Val &kwargs)
{
  args.reset (nn_value_new_tuple ());
  JsonArray *a = json_object_get_array_member (c, "args");
  for (guint i = 0; i < json_array_get_length (a); i++)
    nn_value_append (args.get (), arg_value (json_array_get_object_element (a, i), st, meta));
  kwargs.reset (nn_value_new_dict ());
  JsonObject *kw = json_object_get_object_member (c, "kwargs");
  GList *names = json_object_get_members (kw);
  for (GList *l = names; l; l = l->next)
    nn_value_dict_set (kwargs.get (), (const char *) l->data,
                       arg_value (json_object_get_object_member (kw, (const char *) l->data), st, meta));
  g_list_free (names);
}

struct Leaves { std::vector<std::pair<std::string, NnTensor *>> items; };

void collect (const char *name, NnTensor *t, gpointer data)
{
  ((Leaves *) data)->items.push_back ({ name, t });
}

// Copies torch's state_dict into the module's tensors.
void load_state (NnModule *m, JsonObject *c, NnSafetensors *st)
{
  JsonArray *state = json_object_get_array_member (c, "state");
  for (guint i = 0; i < json_array_get_length (state); i++) {
    const char *key = json_array_get_string_element (json_array_get_array_element (state, i), 0);
    Error err;
    NnTensor *dst = nn_module_lookup_tensor (m, key, err.out ());
    ASSERT_TRUE (dst) << key << ": " << err.message ();
    Tensor src (nn_safetensors_get (st, ("state." + std::string (key)).c_str (), dst->dtype, err.out ()));
    ASSERT_TRUE (src) << err.message ();
    ASSERT_TRUE (nn_shape_equal (&src->shape, &dst->shape)) << key;
    memcpy (dst->data, src->data, nn_tensor_nbytes (dst));
  }
}

void check_state_dict (NnModule *m, JsonObject *c)
{
  JsonArray *state = json_object_get_array_member (c, "state");
  Array sd (nn_module_state_dict (m));
  ASSERT_EQ (sd->len, json_array_get_length (state));
  for (guint i = 0; i < sd->len; i++) {
    auto *it = (NnNamedItem *) sd->pdata[i];
    JsonArray *want = json_array_get_array_element (state, i);
    EXPECT_EQ (it->name, std::string (json_array_get_string_element (want, 0)));
    NnShape s = {};
    JsonArray *dims = json_array_get_array_element (want, 1);
    for (guint k = 0; k < json_array_get_length (dims); k++)
      s.dims[s.ndim++] = json_array_get_int_element (dims, k);
    EXPECT_EQ (shape_text (it->tensor->shape), shape_text (s)) << it->name;
    EXPECT_EQ (nn_dtype_name (it->tensor->dtype),
               std::string (json_array_get_string_element (want, 2))) << it->name;
  }
}

void compare (const std::string &name, NnTensor *got, NnTensor *want, double tol)
{
  ASSERT_EQ (shape_text (got->shape), shape_text (want->shape)) << name;
  ASSERT_EQ (got->dtype, want->dtype) << name;
  gint64 n = nn_tensor_numel (got), bad = 0;
  for (gint64 i = 0; i < n && bad < 5; i++) {
    double g, w;
    if (got->dtype == NN_DTYPE_F32) {
      g = nn_tensor_f32 (got)[i];
      w = nn_tensor_f32 (want)[i];
    } else if (got->dtype == NN_DTYPE_I64) {
      g = (double) nn_tensor_i64 (got)[i];
      w = (double) nn_tensor_i64 (want)[i];
    } else {
      g = ((guint8 *) got->data)[i];
      w = ((guint8 *) want->data)[i];
    }
    bool same = (std::isnan (g) && std::isnan (w)) || g == w
                || std::fabs (g - w) <= tol * (1.0 + std::fabs (w));
    if (!same) {
      ADD_FAILURE () << name << "[" << i << "]: nnkit " << g << ", torch " << w;
      bad++;
    }
  }
}

void expect_error (JsonObject *c, const char *key, const Error &err, const char *what)
{
  ASSERT_FALSE (err.message ().empty ()) << what << " should have failed";
  std::string want = json_object_has_member (c, "expect_error")
                         ? json_object_get_string_member (c, "expect_error")
                         : normalise (json_object_get_string_member (c, key));
  EXPECT_TRUE (contains (normalise (err.message ()), want))
      << what << "\n  nnkit: " << err.message () << "\n  torch: " << want;
}

void run_case (NnRegistry *reg, JsonObject *c, const std::string &dir)
{
  const char *name = json_object_get_string_member (c, "name");
  SCOPED_TRACE (name);
  Error err;
  Node config (json_node_copy (json_object_get_member (c, "config")));
  Module m (json_object_has_member (c, "descriptor")
                ? nn_descriptor_load_module_node (reg, json_object_get_member (c, "descriptor"),
                                                  "m", err.out ())
                : nn_module_new_from_type (reg, json_object_get_string_member (c, "type"),
                                           json_node_get_object (config.get ()), "m",
                                           err.out ()));
  if (json_object_has_member (c, "create_error")) {
    EXPECT_FALSE (m);
    expect_error (c, "create_error", err, "create");
    return;
  }
  ASSERT_TRUE (m) << err.message ();
  std::string want_repr = json_object_has_member (c, "repr")
                              ? json_object_get_string_member (c, "repr") : "";
  if (!json_object_has_member (c, "op")) {
    EXPECT_EQ (take (nn_module_to_string (m.get ())), want_repr);
  }
  check_state_dict (m.get (), c);
  Safetensors st (nn_safetensors_open ((dir + "/" + name + ".safetensors").c_str (), err.out ()));
  ASSERT_TRUE (st) << err.message ();
  load_state (m.get (), c, st.get ());

  Val args, kwargs, margs, mkwargs;
  build_args (c, st.get (), false, args, kwargs);
  build_args (c, st.get (), true, margs, mkwargs);
  Val out (nn_module_call (m.get (), args.get (), kwargs.get (), err.out ()));
  Error merr;
  Val mout (nn_module_infer (m.get (), margs.get (), mkwargs.get (), merr.out ()));
  if (json_object_has_member (c, "call_error")) {
    EXPECT_FALSE (out);
    expect_error (c, "call_error", err, "forward");
    if (json_object_has_member (c, "data_error")) {
      EXPECT_TRUE (mout) << merr.message ();
    } else {
      EXPECT_FALSE (mout);
      expect_error (c, "call_error", merr, "shape inference");
    }
    return;
  }
  ASSERT_TRUE (out) << err.message ();
  ASSERT_TRUE (mout) << merr.message ();
  Leaves got, inferred;
  nn_value_foreach_tensor (out.get (), "", collect, &got);
  nn_value_foreach_tensor (mout.get (), "", collect, &inferred);
  JsonArray *outs = json_object_get_array_member (c, "outputs");
  ASSERT_EQ (got.items.size (), json_array_get_length (outs)) << take (nn_value_to_string (out.get ()));
  ASSERT_EQ (inferred.items.size (), got.items.size ());
  double tol = json_object_get_double_member (c, "tol");
  // torchinfo's Mult-Adds of the module's own parameters, through the
  // count_macs slot with the call bound as nnctl summary binds it.
  const NnLayerType *type = nn_module_get_type (m.get ());
  if (json_object_has_member (c, "macs")) {
    guint64 macs = 0;
    if (type->count_macs) {
      Error berr;
      // No signature is ABI 1's default: one F32 tensor named input.
      static const NnArgSpec input_only = { "input", NN_ARG_TENSOR, 0, 0, nullptr, "" };
      NnArgs *bound = nn_args_bind_signature (type->args ? type->args : &input_only,
                                              type->args ? type->n_args : 1, nullptr, margs.get (),
                                              mkwargs.get (), berr.out ());
      EXPECT_TRUE (bound) << berr.message ();
      if (bound) {
        macs = type->count_macs (m.get (), bound, mout.get ());
        nn_args_free (bound);
      }
    }
    EXPECT_EQ (macs, (guint64) json_object_get_int_member (c, "macs"));
  }
  for (guint i = 0; i < got.items.size (); i++) {
    const char *leaf = json_array_get_string_element (json_array_get_array_element (outs, i), 0);
    EXPECT_EQ (got.items[i].first, leaf);
    Tensor want (nn_safetensors_get (st.get (), ("out." + std::string (leaf)).c_str (),
                                     got.items[i].second->dtype, err.out ()));
    ASSERT_TRUE (want) << err.message ();
    compare (std::string ("out.") + leaf, got.items[i].second, want.get (), tol);
    EXPECT_TRUE (nn_tensor_is_meta (inferred.items[i].second));
    if (!json_object_has_member (c, "shape_from_data")) {
      EXPECT_EQ (shape_text (inferred.items[i].second->shape),
                 shape_text (got.items[i].second->shape));
    }
    EXPECT_EQ (inferred.items[i].second->dtype, got.items[i].second->dtype);
  }
}

}  // namespace

TEST (Layers, MatchPyTorch)
{
  const char *dir = g_getenv ("NN_LAYERS_CASES");
  if (!dir)
    GTEST_SKIP () << "NN_LAYERS_CASES is not set (run through run.py)";
  Registry reg = default_registry ();
  GError *e = nullptr;
  g_autofree char *text = nullptr;
  ASSERT_TRUE (g_file_get_contents ((std::string (dir) + "/cases.json").c_str (), &text,
                                    nullptr, &e)) << e->message;
  Node root (json_from_string (text, &e));
  ASSERT_TRUE (root) << (e ? e->message : "");
  JsonArray *cases = json_node_get_array (root.get ());
  ASSERT_GT (json_array_get_length (cases), 0u);
  for (guint i = 0; i < json_array_get_length (cases); i++)
    run_case (reg.get (), json_array_get_object_element (cases, i), dir);
}
