// Every type with a backward against PyTorch autograd: grad_reference.py
// draws random configurations and computes, with torch at test time, the
// output, the input gradients and the parameter gradients that nnkit's
// tape must reproduce within 1e-4 relative.
#include "train-test.h"

#include <cmath>

using namespace nntrain;

namespace {

// One call argument from its JSON form in cases.json (see "args").
NnValue *
arg_value (JsonNode *e, const std::vector<Tensor> &ins)
{
  if (JSON_NODE_HOLDS_NULL (e))
    return nn_value_new_none ();
  if (JSON_NODE_HOLDS_ARRAY (e)) {
    NnValue *t = nn_value_new_tuple ();
    JsonArray *a = json_node_get_array (e);
    for (guint j = 0; j < json_array_get_length (a); j++)
      nn_value_append (t, arg_value (json_array_get_element (a, j), ins));
    return t;
  }
  if (JSON_NODE_HOLDS_OBJECT (e)) {
    JsonObject *o = json_node_get_object (e);
    if (json_object_has_member (o, "in"))
      return nn_value_new_tensor (ins[json_object_get_int_member (o, "in")].get ());
    if (json_object_has_member (o, "list")) {
      NnValue *l = nn_value_new_list ();
      JsonArray *a = json_object_get_array_member (o, "list");
      for (guint j = 0; j < json_array_get_length (a); j++)
        nn_value_append (l, nn_value_new_tensor (ins[json_array_get_int_element (a, j)].get ()));
      return l;
    }
    JsonArray *a = json_object_get_array_member (o, "slice");
    NnValue *parts[3];
    for (guint j = 0; j < 3; j++)
      parts[j] = arg_value (json_array_get_element (a, j), ins);
    return nn_value_new_slice (parts[0], parts[1], parts[2]);
  }
  if (json_node_get_value_type (e) == G_TYPE_BOOLEAN)
    return nn_value_new_bool (json_node_get_boolean (e));
  if (json_node_get_value_type (e) == G_TYPE_DOUBLE)
    return nn_value_new_float (json_node_get_double (e));
  return nn_value_new_int (json_node_get_int (e));
}

class GradReference : public ::testing::Test {
protected:
  static std::string dir;
  static std::string skip;

  static void SetUpTestSuite ()
  {
    dir = tmp_dir ();
    bool no_torch = false;
    std::string err = run_python (source_path ("tests/train/grad_reference.py"), { dir },
                                  &no_torch);
    if (!err.empty ()) {
      if (no_torch) skip = err;
      else ADD_FAILURE () << err;
    }
  }
  static void TearDownTestSuite () { remove_tree (dir); }
};

std::string GradReference::dir;
std::string GradReference::skip;

TEST_F (GradReference, EveryCaseMatchesTorch)
{
  if (!skip.empty ()) GTEST_SKIP () << skip;
  GError *e = nullptr;
  JsonParser *parser = json_parser_new ();
  ASSERT_TRUE (json_parser_load_from_file (parser, (dir + "/cases.json").c_str (), &e))
      << (e ? e->message : "");
  JsonArray *cases = json_node_get_array (json_parser_get_root (parser));
  Registry reg = default_registry ();
  ASSERT_GT (json_array_get_length (cases), 10u);
  for (guint c = 0; c < json_array_get_length (cases); c++) {
    JsonObject *cs = json_array_get_object_element (cases, c);
    std::string name = json_object_get_string_member (cs, "name");
    SCOPED_TRACE (name);
    JsonNode *cfg = json_object_get_member (cs, "config");
    CStr cfg_text (json_to_string (cfg, FALSE));
    Error err;
    Module m = make_module (reg.get (), json_object_get_string_member (cs, "type"),
                            cfg_text.get (), err, name.c_str ());
    ASSERT_TRUE (m) << err.message ();
    Safetensors st (nn_safetensors_open ((dir + "/" + name + ".safetensors").c_str (), err.out ()));
    ASSERT_TRUE (st) << err.message ();

    JsonArray *params = json_object_get_array_member (cs, "params");
    for (guint p = 0; p < json_array_get_length (params); p++) {
      const char *pn = json_array_get_string_element (params, p);
      Tensor t = load (st.get (), std::string ("param.") + pn);
      ASSERT_TRUE (nn_module_set_tensor (m.get (), pn, t.get (), err.out ())) << err.message ();
    }
    JsonArray *buffers = json_object_get_array_member (cs, "buffers");
    for (guint b = 0; b < json_array_get_length (buffers); b++) {
      const char *bn = json_array_get_string_element (buffers, b);
      Tensor t = load (st.get (), std::string ("buffer.") + bn);
      ASSERT_TRUE (nn_module_set_tensor (m.get (), bn, t.get (), err.out ())) << err.message ();
    }
    nn_module_train (m.get (), json_object_get_boolean_member (cs, "train"));

    NnTape *tape = nn_tape_new (0);
    std::vector<Tensor> ins;
    ValueRef args (nn_value_new_tuple ());
    gint64 n_in = json_object_get_int_member (cs, "inputs");
    for (gint64 i = 0; i < n_in; i++) {
      std::string key = "in" + std::to_string (i);
      ins.push_back (load (st.get (), key));
      ASSERT_TRUE (ins.back ()) << key;
      if (nn_safetensors_get_info (st.get (), ("grad." + key).c_str (), nullptr))
        nn_tape_watch (tape, ins.back ().get ());
    }
    if (json_object_has_member (cs, "args")) {
      // Explicit positional arguments: {"in": i}, {"list": [i, ...]},
      // {"slice": [start, stop, step]}, ints, floats, bools, null, tuples.
      JsonArray *spec = json_object_get_array_member (cs, "args");
      for (guint k = 0; k < json_array_get_length (spec); k++)
        nn_value_append (args.get (), arg_value (json_array_get_element (spec, k), ins));
    } else {
      for (gint64 i = 0; i < n_in; i++)
        nn_value_append (args.get (), nn_value_new_tensor (ins[i].get ()));
      // Non-tensor arguments after the tensors: ints or tuples of ints.
      JsonArray *extra = json_object_get_array_member (cs, "extra");
      for (guint k = 0; k < json_array_get_length (extra); k++)
        nn_value_append (args.get (), arg_value (json_array_get_element (extra, k), ins));
    }
    ValueRef out (nn_tape_call (tape, m.get (), args.get (), nullptr, err.out ()));
    ASSERT_TRUE (out) << err.message ();
    // A tuple result (chunk, split): the case differentiates item "pick".
    NnTensor *res = nn_value_get_tensor (out.get ());
    if (json_object_has_member (cs, "pick")) {
      NnValue *item = nn_value_item (out.get (), (guint) json_object_get_int_member (cs, "pick"));
      ASSERT_TRUE (item);
      res = nn_value_get_tensor (item);
    }
    ASSERT_TRUE (res);
    Tensor want_out = load (st.get (), "out");
    EXPECT_TRUE (close (res, want_out.get ())) << "output";
    Tensor gout = load (st.get (), "gout");
    ASSERT_TRUE (nn_backward (tape, res, gout.get (), err.out ())) << err.message ();
    for (gint64 i = 0; i < n_in; i++) {
      std::string key = "grad.in" + std::to_string (i);
      Tensor want = load (st.get (), key);
      // Braces: gtest's EXPECT_* expands to an if/else of its own.
      if (want) {
        EXPECT_TRUE (close (nn_tape_grad (tape, ins[i].get ()), want.get ())) << key;
      }
    }
    for (guint p = 0; p < json_array_get_length (params); p++) {
      const char *pn = json_array_get_string_element (params, p);
      Tensor want = load (st.get (), std::string ("grad.param.") + pn);
      EXPECT_TRUE (close (nn_module_lookup_grad (m.get (), pn, err.out ()), want.get ()))
          << pn << " " << err.message ();
    }
    // Buffers after the forward: running statistics in training mode.
    for (guint b = 0; b < json_array_get_length (buffers); b++) {
      const char *bn = json_array_get_string_element (buffers, b);
      Tensor want = load (st.get (), std::string ("after.") + bn);
      NnTensor *got = nn_module_get_buffer (m.get (), bn);
      ASSERT_TRUE (got && want) << bn;
      if (want->dtype == NN_DTYPE_I64)
        EXPECT_EQ (*(gint64 *) got->data, *(gint64 *) want->data) << bn;
      else
        EXPECT_TRUE (close (got, want.get ())) << bn;
    }
    nn_tape_free (tape);
  }
  g_object_unref (parser);
}

} // namespace
