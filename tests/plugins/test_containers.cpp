// Tests of the containers plugin: Sequential, ModuleList, ModuleDict and
// Graph (version 2 and the version 1 upgrade).  Leaf layers and ops are
// the fixture-values types (tests/fixtures), which stand in for the layer
// families and the ops plugin; numerics are checked against naive
// references computed here, reprs against PyTorch's print() layout.
#include "nn-test.h"

#include <cmath>
#include <functional>
#include <string>
#include <thread>
#include <vector>

using namespace nntest;

namespace {

NnRegistry *reg ()
{
  static Registry r = fixture_registry ();
  return r.get ();
}

Module load (const std::string &json)
{
  Error e;
  NnModule *m = nn_descriptor_load_module_data (reg (), json.c_str (), -1,
                                                "test", e.out ());
  EXPECT_NE (m, nullptr) << e.message ();
  return Module (m);
}

// Loads @json expecting failure; returns the message after the origin.
std::string load_error (const std::string &json)
{
  Error e;
  NnModule *m = nn_descriptor_load_module_data (reg (), json.c_str (), -1,
                                                "test", e.out ());
  EXPECT_EQ (m, nullptr);
  if (m)
    nn_module_unref (m);
  EXPECT_TRUE (e.err != nullptr);
  // Every load error starts with the origin; the rest is returned.
  std::string msg = e.message ();
  EXPECT_EQ (msg.rfind ("test: ", 0), 0u) << msg;
  return msg.rfind ("test: ", 0) == 0 ? msg.substr (6) : msg;
}

// A module tree wrapping a Graph config as child "blk" of a Sequential,
// so errors carry a non-root path.
std::string in_seq (const std::string &graph_node)
{
  return R"({"type": "Sequential", "children": [{"name": "blk", )" +
         graph_node.substr (1) + "]}";
}


// Deterministic values in [-1, 1].
std::vector<float> values (size_t n, unsigned seed)
{
  std::vector<float> v (n);
  guint32 s = seed * 2654435761u + 1;
  for (auto &x : v)
    {
      s = s * 1664525u + 1013904223u;
      x = (float) ((s >> 8) / 8388608.0 - 1.0);
    }
  return v;
}

Tensor make (std::initializer_list<gint64> dims, const std::vector<float> &v)
{
  NnShape s = shape (dims);
  Tensor t (nn_tensor_new (NN_DTYPE_F32, &s));
  EXPECT_EQ ((size_t) nn_tensor_numel (t.get ()), v.size ());
  std::copy (v.begin (), v.end (), nn_tensor_f32 (t.get ()));
  return t;
}

void set_tensor (NnModule *root, const char *name, const std::vector<float> &v)
{
  Error e;
  NnTensor *t = nn_module_lookup_tensor (root, name, e.out ());
  ASSERT_NE (t, nullptr) << e.message ();
  ASSERT_EQ ((size_t) nn_tensor_numel (t), v.size ());
  std::copy (v.begin (), v.end (), nn_tensor_f32 (t));
}

std::vector<float> data (NnTensor *t)
{
  const float *p = nn_tensor_f32 (t);
  return std::vector<float> (p, p + nn_tensor_numel (t));
}

std::string shape_str (const NnShape &s) { return take (nn_shape_to_string (&s)); }

void expect_near (const std::vector<float> &got, const std::vector<float> &want,
                  float tol = 1e-5f)
{
  ASSERT_EQ (got.size (), want.size ());
  for (size_t i = 0; i < got.size (); i++)
    ASSERT_NEAR (got[i], want[i], tol * (1.0f + std::fabs (want[i])))
        << "at element " << i;
}

Tensor forward (NnModule *m, NnTensor *x)
{
  Error e;
  NnTensor *y = nn_module_forward (m, x, e.out ());
  EXPECT_NE (y, nullptr) << e.message ();
  return Tensor (y);
}


// Forward hooks that log "<tag>:<path>" into a vector.
struct Log {
  std::vector<std::string> lines;
};

gboolean log_forward (NnModule *, const char *path, const NnValue *, const NnValue *,
                      NnValue **, gpointer user_data, GError **)
{
  static_cast<Log *> (user_data)->lines.push_back (std::string ("fwd:") + path);
  return TRUE;
}

gboolean log_pre (NnModule *, const char *path, NnValue **, NnValue **,
                  gpointer user_data, GError **)
{
  static_cast<Log *> (user_data)->lines.push_back (std::string ("pre:") + path);
  return TRUE;
}

gboolean zero_output (NnModule *, const char *, const NnValue *, const NnValue *,
                      NnValue **output, gpointer, GError **)
{
  NnTensor *z = nn_tensor_new (NN_DTYPE_F32, &nn_value_get_tensor (*output)->shape);
  nn_value_unref (*output);
  *output = nn_value_take_tensor (z);
  return TRUE;
}


struct Hook {
  NnHookHandle *h;
  explicit Hook (NnHookHandle *handle) : h (handle) { EXPECT_NE (h, nullptr); }
  Hook (const Hook &) = delete;
  ~Hook () { nn_hook_handle_remove (h); nn_hook_handle_free (h); }
};

Hook fwd_hook (NnModule *m, NnForwardHookFunc f, void *data)
{
  Error e;
  NnHookHandle *h = nn_module_add_forward_hook (m, f, data, nullptr, nullptr, 0,
                                                e.out ());
  EXPECT_NE (h, nullptr) << e.message ();
  return Hook (h);
}

NnModule *at (NnModule *root, const char *path)
{
  Error e;
  NnModule *m = nn_module_lookup_path (root, path, e.out ());
  EXPECT_NE (m, nullptr) << e.message ();
  return m;
}

// y[n, o] = b[o] + sum_i W[o, i] x[n, i]
std::vector<float> linear_ref (const std::vector<float> &x, const std::vector<float> &w,
                               const std::vector<float> &b, int n, int in, int out)
{
  std::vector<float> y (n * out);
  for (int r = 0; r < n; r++)
    for (int o = 0; o < out; o++)
      {
        double acc = b[o];
        for (int i = 0; i < in; i++)
          acc += (double) w[o * in + i] * x[r * in + i];
        y[r * out + o] = (float) acc;
      }
  return y;
}

const char *kMlp = R"({"type": "Sequential", "children": [
  {"name": "0", "type": "FixtureLinear", "config": {"in_features": 3, "out_features": 4}},
  {"name": "1", "type": "FixtureAffine", "config": {"scale": -0.5}},
  {"name": "2", "type": "FixtureLinear", "config": {"in_features": 4, "out_features": 2}}]})";

}  // namespace

// --- Sequential -------------------------------------------------------------

TEST (Sequential, RunsChildrenInOrderThroughHooks)
{
  Module m = load (kMlp);
  ASSERT_TRUE (m);
  auto w1 = values (12, 1), b1 = values (4, 2), w2 = values (8, 3), b2 = values (2, 4);
  set_tensor (m.get (), "0.weight", w1);
  set_tensor (m.get (), "0.bias", b1);
  set_tensor (m.get (), "2.weight", w2);
  set_tensor (m.get (), "2.bias", b2);
  auto xv = values (6, 5);
  Tensor x = make ({ 2, 3 }, xv);

  Log log;
  Hook h0 = fwd_hook (at (m.get (), "0"), log_forward, &log);
  Hook h1 = fwd_hook (at (m.get (), "1"), log_forward, &log);
  Hook h2 = fwd_hook (at (m.get (), "2"), log_forward, &log);
  Hook hr = fwd_hook (m.get (), log_forward, &log);
  Error e;
  Hook p1 (nn_module_add_pre_hook (at (m.get (), "1"), log_pre, &log, nullptr,
                                   nullptr, 0, e.out ()));

  Tensor y = forward (m.get (), x.get ());
  ASSERT_TRUE (y);
  EXPECT_EQ (shape_str (y->shape), "[2, 2]");
  auto h = linear_ref (xv, w1, b1, 2, 3, 4);
  for (auto &v : h)
    v = -0.5f * v;
  expect_near (data (y.get ()), linear_ref (h, w2, b2, 2, 4, 2));
  EXPECT_EQ (log.lines, (std::vector<std::string>{ "fwd:0", "pre:1", "fwd:1",
                                                   "fwd:2", "fwd:" }));

  // A hook's replacement output is what the next child receives.
  Hook hz = fwd_hook (at (m.get (), "1"), zero_output, nullptr);
  Tensor y2 = forward (m.get (), x.get ());
  ASSERT_TRUE (y2);
  expect_near (data (y2.get ()), { b2[0], b2[1], b2[0], b2[1] });
}

TEST (Sequential, EmptyIsIdentity)
{
  Module m = load (R"({"type": "Sequential"})");
  ASSERT_TRUE (m);
  auto xv = values (6, 7);
  Tensor x = make ({ 2, 3 }, xv);
  Tensor y = forward (m.get (), x.get ());
  ASSERT_TRUE (y);
  EXPECT_EQ (data (y.get ()), xv);
  NnShape in = shape ({ 4, 5, 6 }), out;
  Error e;
  ASSERT_TRUE (nn_module_infer_shape (m.get (), &in, &out, e.out ())) << e.message ();
  EXPECT_TRUE (nn_shape_equal (&in, &out));
  EXPECT_EQ (take (nn_module_to_string (m.get ())), "Sequential()");
}

TEST (Sequential, InferShapeChainsChildrenAndNamesTheFailingOne)
{
  Module m = load (kMlp);
  ASSERT_TRUE (m);
  NnShape in = shape ({ 5, 3 }), out;
  Error e;
  ASSERT_TRUE (nn_module_infer_shape (m.get (), &in, &out, e.out ())) << e.message ();
  EXPECT_EQ (shape_str (out), "[5, 2]");

  NnShape bad = shape ({ 5, 7 });
  EXPECT_FALSE (nn_module_infer_shape (m.get (), &bad, &out, e.out ()));
  EXPECT_TRUE (e.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH)) << e.message ();
  EXPECT_EQ (e.message ().rfind ("0: FixtureLinear: ", 0), 0u) << e.message ();
  EXPECT_TRUE (contains (e.message (), "[5, 7]")) << e.message ();

  Tensor x = make ({ 5, 7 }, values (35, 1));
  EXPECT_EQ (nn_module_forward (m.get (), x.get (), e.out ()), nullptr);
  EXPECT_EQ (e.message ().rfind ("0: FixtureLinear: ", 0), 0u) << e.message ();
}

// --- ModuleList and ModuleDict ------------------------------------------------

TEST (ModuleList, HasNoForward)
{
  Module m = load (R"({"type": "Sequential", "children": [
    {"name": "blocks", "type": "ModuleList", "children": [{"name": "0", "type": "FixtureAffine"}]},
    {"name": "heads", "type": "ModuleDict", "children": [{"name": "cls", "type": "FixtureAffine"}]}]})");
  ASSERT_TRUE (m);
  Tensor x = make ({ 1, 2 }, { 1.0f, -1.0f });
  Error e;

  EXPECT_EQ (nn_module_forward (m.get (), x.get (), e.out ()), nullptr);
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NO_FORWARD)) << e.message ();
  EXPECT_EQ (e.message ().rfind ("blocks: ModuleList: ", 0), 0u) << e.message ();
  EXPECT_TRUE (contains (e.message (), "no forward")) << e.message ();

  NnShape in = shape ({ 1, 2 }), out;
  EXPECT_FALSE (nn_module_infer_shape (m.get (), &in, &out, e.out ()));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NO_FORWARD)) << e.message ();

  NnModule *heads = at (m.get (), "heads");
  EXPECT_EQ (nn_module_forward (heads, x.get (), e.out ()), nullptr);
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NO_FORWARD)) << e.message ();
  EXPECT_TRUE (contains (e.message (), "ModuleDict")) << e.message ();

  // Flags: ModuleList is indexable (negative index), ModuleDict is keyed.
  EXPECT_EQ (at (m.get (), "blocks.-1"), at (m.get (), "blocks.0"));
  const NnLayerType *dict = nn_module_get_type (heads);
  EXPECT_TRUE (dict->flags & NN_LAYER_KEYED);
  EXPECT_FALSE (dict->flags & NN_LAYER_INDEXABLE);
}

// Expected texts are PyTorch 1.13's print() of the same ModuleList: one
// line per item (2.x folds identical runs; the reference here is 1.13).
TEST (ModuleList, ReprListsEveryItem)
{
  Module m = load (R"({"type": "ModuleList", "children": [
    {"name": "0", "type": "FixtureLinear", "config": {"in_features": 10, "out_features": 10}},
    {"name": "1", "type": "FixtureLinear", "config": {"in_features": 10, "out_features": 10}},
    {"name": "2", "type": "FixtureLinear", "config": {"in_features": 10, "out_features": 10}},
    {"name": "3", "type": "FixtureAffine"},
    {"name": "4", "type": "FixtureLinear", "config": {"in_features": 10, "out_features": 20}},
    {"name": "5", "type": "FixtureLinear", "config": {"in_features": 10, "out_features": 10}},
    {"name": "6", "type": "FixtureLinear", "config": {"in_features": 10, "out_features": 10}}]})");
  ASSERT_TRUE (m);
  EXPECT_EQ (take (nn_module_to_string (m.get ())),
             "ModuleList(\n"
             "  (0): FixtureLinear(in_features=10, out_features=10)\n"
             "  (1): FixtureLinear(in_features=10, out_features=10)\n"
             "  (2): FixtureLinear(in_features=10, out_features=10)\n"
             "  (3): FixtureAffine(scale=1.0, shift=0.0)\n"
             "  (4): FixtureLinear(in_features=10, out_features=20)\n"
             "  (5): FixtureLinear(in_features=10, out_features=10)\n"
             "  (6): FixtureLinear(in_features=10, out_features=10)\n"
             ")");
}

TEST (ModuleList, ReprIndentsMultiLineItemsAndNests)
{
  const std::string block = R"({"type": "Sequential", "children": [
      {"name": "0", "type": "FixtureLinear", "config": {"in_features": 4, "out_features": 4}},
      {"name": "1", "type": "FixtureAffine", "config": {"shift": 2.0}}]})";
  Module m = load (R"({"type": "Sequential", "children": [
    {"name": "layers", "type": "ModuleList", "children": [
      {"name": "0", )" + block.substr (1) + R"(,
      {"name": "1", )" + block.substr (1) + R"(]},
    {"name": "empty", "type": "ModuleList"}]})");
  ASSERT_TRUE (m);
  EXPECT_EQ (take (nn_module_to_string (m.get ())),
             "Sequential(\n"
             "  (layers): ModuleList(\n"
             "    (0): Sequential(\n"
             "      (0): FixtureLinear(in_features=4, out_features=4)\n"
             "      (1): FixtureAffine(scale=1.0, shift=2.0)\n"
             "    )\n"
             "    (1): Sequential(\n"
             "      (0): FixtureLinear(in_features=4, out_features=4)\n"
             "      (1): FixtureAffine(scale=1.0, shift=2.0)\n"
             "    )\n"
             "  )\n"
             "  (empty): ModuleList()\n"
             ")");
}

TEST (ModuleList, ReprKeepsKeysAfterADeletion)
{
  // nnkit never renumbers keys: after deleting "1", items print as "0",
  // "2", "3".
  Module m = load (R"({"type": "ModuleList", "children": [
    {"name": "0", "type": "FixtureAffine"}, {"name": "2", "type": "FixtureAffine"},
    {"name": "3", "type": "FixtureAffine"}]})");
  ASSERT_TRUE (m);
  EXPECT_EQ (take (nn_module_to_string (m.get ())),
             "ModuleList(\n"
             "  (0): FixtureAffine(scale=1.0, shift=0.0)\n"
             "  (2): FixtureAffine(scale=1.0, shift=0.0)\n"
             "  (3): FixtureAffine(scale=1.0, shift=0.0)\n"
             ")");
}

// --- Graph (version 2) ----------------------------------------------------------

namespace {

// A Graph over one input "x" with @nodes (JSON array text), @output (an
// expression, JSON text) and @children.
std::string graph2 (const std::string &nodes, const std::string &output,
                    const std::string &children = "[]", const std::string &inputs = R"(["x"])")
{
  return R"({"type": "Graph", "config": {"inputs": )" + inputs + R"(, "nodes": )" + nodes +
         R"(, "output": )" + output + R"(}, "children": )" + children + "}";
}

ValueRef call (NnModule *m, ValueRef args, NnValue *kwargs = nullptr)
{
  Error e;
  ValueRef out (nn_module_call (m, args.get (), kwargs, e.out ()));
  EXPECT_TRUE (out) << e.message ();
  if (kwargs)
    nn_value_unref (kwargs);
  return out;
}

std::string text (const ValueRef &v) { return v ? take (nn_value_to_string (v.get ())) : "(null)"; }

}  // namespace

// Each JSON form of the argument-expression language, passed through
// FixtureEcho, which returns its arguments as bound.
TEST (Graph, ExpressionLanguageEveryForm)
{
  Module m = load (graph2 (R"([
    {"name": "e", "op": "fixture_echo", "args": [
       "x", 1, -1, 0.5, 1.0, true, false, null, [1, "x"],
       {"tuple": [2, {"tuple": []}]}, {"dict": {"k": 1, "a": "x"}}, {"str": "mean"},
       {"float": "inf"}, {"float": "-inf"}, {"float": "nan"},
       {"slice": [null, -1, 2]}, {"slice": [1, null, null]}, {"ellipsis": true},
       {"dtype": "int64"}, {"dtype": "F16"}],
     "kwargs": {"flag": true}}])",
                          R"("e")"));
  ASSERT_TRUE (m);
  ValueRef out = call (m.get (), value_tuple ({ nn_value_new_int (7) }));
  EXPECT_EQ (text (out),
             "(7, (1, -1, 0.5, 1.0, True, False, None, [1, 7], (2, ()), {'k': 1, 'a': 7}, 'mean', "
             "inf, -inf, nan, slice(None, -1, 2), slice(1, None, None), Ellipsis, 'torch.int64', "
             "'torch.float16'), True)");
}

TEST (Graph, StructuredOutputsAndMultipleInputsWithDefaults)
{
  Module m = load (graph2 (R"([
    {"name": "p", "module": "pair", "args": ["x"], "kwargs": {"y": "y", "as_dict": "d"}},
    {"name": "s", "op": "FixtureSize", "args": ["x", 0]}])",
                          R"({"dict": {"pair": "p", "rest": {"tuple": ["s", ["x", null]]}}})",
                          R"([{"name": "pair", "type": "FixturePair"}])",
                          R"(["x", {"name": "y", "default": null}, {"name": "d", "default": false}])"));
  ASSERT_TRUE (m);
  Tensor x = make ({ 2 }, { 1.0f, 2.0f });
  Tensor y = make ({ 2 }, { 0.5f, 4.0f });
  ValueRef out = call (m.get (), value_tuple ({ nn_value_new_tensor (x.get ()) }));
  EXPECT_EQ (text (out), "{'pair': (Tensor[2] F32, Tensor[2] F32), 'rest': (2, [Tensor[2] F32, None])}");
  NnValue *kw = nn_value_new_dict ();
  nn_value_dict_set (kw, "d", nn_value_new_bool (TRUE));
  nn_value_dict_set (kw, "y", nn_value_new_tensor (y.get ()));
  out = call (m.get (), value_tuple ({ nn_value_new_tensor (x.get ()) }), kw);
  ASSERT_TRUE (out);
  NnValue *pair = nn_value_dict_lookup (out.get (), "pair");
  ASSERT_EQ (nn_value_kind (pair), NN_VALUE_DICT);
  expect_near (data (nn_value_get_tensor (nn_value_dict_lookup (pair, "diff"))), { 0.5f, -2.0f });
  // Binding errors name the graph's own parameters, in Python's words.
  Error e;
  ValueRef none = value_tuple ({});
  EXPECT_FALSE (ValueRef (nn_module_call (m.get (), none.get (), nullptr, e.out ())));
  EXPECT_EQ (e.message (), "Graph: forward() missing 1 required positional argument: 'x'");
  NnValue *bad = nn_value_new_dict ();
  nn_value_dict_set (bad, "z", nn_value_new_int (1));
  ValueRef args = value_tuple ({ nn_value_new_tensor (x.get ()) });
  EXPECT_FALSE (ValueRef (nn_module_call (m.get (), args.get (), bad, e.out ())));
  nn_value_unref (bad);
  EXPECT_EQ (e.message (), "Graph: forward() got an unexpected keyword argument 'z'");
  // Shape inference walks the same nodes on meta tensors.
  NnShape s = shape ({ 3 });
  ValueRef margs = value_tuple ({ nn_value_take_tensor (nn_tensor_new_meta (NN_DTYPE_F32, &s)) });
  ValueRef inferred (nn_module_infer (m.get (), margs.get (), nullptr, e.out ()));
  ASSERT_TRUE (inferred) << e.message ();
  EXPECT_EQ (text (inferred),
             "{'pair': (Tensor[3] F32 meta, Tensor[3] F32 meta), 'rest': (3, [Tensor[3] F32 meta, None])}");
}

// A block with a keyword parameter, called from its parent with kwargs:
// Graph -> Graph through nn_call_module, the way a GPT block takes a mask.
TEST (Graph, NestedGraphsTakeKeywordsAndDescendantPaths)
{
  std::string block = graph2 (R"([
    {"name": "a", "module": "lin", "args": ["x"]},
    {"name": "b", "op": "fixture_add", "args": ["a", "bias"], "kwargs": {"alpha": "alpha"}}])",
                              R"("b")",
                              R"([{"name": "lin", "type": "FixtureLinear", "config": {"in_features": 2, "out_features": 2}}])",
                              R"(["x", "bias", {"name": "alpha", "default": 1.0}])");
  Module m = load (graph2 (R"([
    {"name": "h0", "module": "h.0", "args": ["x"], "kwargs": {"bias": "x", "alpha": 0.5}},
    {"name": "h1", "module": "h.1.lin", "args": ["h0"]}])",
                          R"("h1")",
                          R"([{"name": "h", "type": "ModuleList", "children": [
                                {"name": "0", )" + block.substr (1) + R"(,
                                {"name": "1", )" + block.substr (1) + R"(]}])"));
  ASSERT_TRUE (m);
  auto w0 = values (4, 1), b0 = values (2, 2), w1 = values (4, 3), b1 = values (2, 4);
  set_tensor (m.get (), "h.0.lin.weight", w0);
  set_tensor (m.get (), "h.0.lin.bias", b0);
  set_tensor (m.get (), "h.1.lin.weight", w1);
  set_tensor (m.get (), "h.1.lin.bias", b1);
  auto xv = values (6, 5);
  Tensor x = make ({ 3, 2 }, xv);
  Tensor y = forward (m.get (), x.get ());
  ASSERT_TRUE (y);
  auto a = linear_ref (xv, w0, b0, 3, 2, 2);
  for (size_t i = 0; i < a.size (); i++)
    a[i] += 0.5f * xv[i];
  expect_near (data (y.get ()), linear_ref (a, w1, b1, 3, 2, 2));

  // The observer sees the callee paths as called, depth by dots.
  Log log;
  Hook h = fwd_hook (at (m.get (), "h.1.lin"), log_forward, &log);
  Tensor y2 = forward (m.get (), x.get ());
  EXPECT_EQ (log.lines, (std::vector<std::string>{ "fwd:h.1.lin" }));
}

// Declared parameters and buffers: attr nodes read them, they come before
// the children in state_dict order, survive a save byte for byte, and
// reset_parameters leaves them as they are.
TEST (Graph, DeclaredTensorsAttrNodesAndStateDictOrder)
{
  std::string g = graph2 (R"([
    {"name": "tok", "attr": "class_token"},
    {"name": "pos", "attr": "enc.pos"},
    {"name": "a", "op": "fixture_add", "args": ["x", "tok"]},
    {"name": "b", "op": "FixtureAdd", "args": ["a", "pos"]}])",
                         R"("b")",
                         R"([{"name": "enc", "type": "Graph",
                              "parameters": {"pos": {"shape": [2], "dtype": "F32"}},
                              "config": {"inputs": ["x"], "nodes": [], "output": "x"}},
                             {"name": "fc", "type": "FixtureLinear", "config": {"in_features": 2, "out_features": 2}}])");
  g.insert (g.find ("\"config\""), R"("parameters": {"class_token": {"shape": [2], "dtype": "F32"}},
    "buffers": {"mask": {"shape": [1, 2], "dtype": "BOOL", "persistent": false},
                "steps": {"shape": [], "dtype": "I64", "persistent": true}}, )");
  std::string doc = R"({"format": "nnkit", "version": 2, "model": )" + g + "}";
  Error e;
  Module m (nn_descriptor_load_data (reg (), doc.c_str (), -1, "vit.json", e.out ()));
  ASSERT_TRUE (m) << e.message ();
  Array sd (nn_module_state_dict (m.get ()));
  std::vector<std::string> names;
  for (guint i = 0; i < sd->len; i++)
    names.push_back (((NnNamedItem *) sd->pdata[i])->name);
  EXPECT_EQ (names, (std::vector<std::string>{ "class_token", "steps", "enc.pos", "fc.weight", "fc.bias" }));
  NnTensor *mask = nn_module_lookup_tensor (m.get (), "mask", e.out ());
  ASSERT_TRUE (mask) << e.message ();
  EXPECT_EQ (mask->dtype, NN_DTYPE_BOOL);

  set_tensor (m.get (), "class_token", { 1.0f, 2.0f });
  set_tensor (m.get (), "enc.pos", { 10.0f, 20.0f });
  nn_module_reset_parameters (m.get (), 3);
  expect_near (data (nn_module_lookup_tensor (m.get (), "class_token", e.out ())), { 1.0f, 2.0f });
  Tensor x = make ({ 2 }, { 0.5f, 0.25f });
  Tensor y = forward (m.get (), x.get ());
  ASSERT_TRUE (y);
  expect_near (data (y.get ()), { 11.5f, 22.25f });
  // In inference the attr nodes read meta copies: no data is touched.
  NnShape s2 = shape ({ 2 });
  ValueRef margs = value_tuple ({ nn_value_take_tensor (nn_tensor_new_meta (NN_DTYPE_F32, &s2)) });
  ValueRef inferred (nn_module_infer (m.get (), margs.get (), nullptr, e.out ()));
  ASSERT_TRUE (inferred) << e.message ();
  EXPECT_EQ (text (inferred), "Tensor[2] F32 meta");

  gsize len = 0;
  std::string first = take (nn_descriptor_to_data (m.get (), &len));
  EXPECT_TRUE (contains (first, R"("parameters": {)")) << first;
  EXPECT_TRUE (contains (first, R"("persistent": false)")) << first;
  Module again (nn_descriptor_load_data (reg (), first.c_str (), -1, "saved", e.out ()));
  ASSERT_TRUE (again) << e.message ();
  EXPECT_EQ (take (nn_descriptor_to_data (again.get (), &len)), first);

  // A type without NN_LAYER_DECLARED_TENSORS refuses the keys.
  std::string plain = R"({"type": "Sequential", "children": [{"name": "s", "type": "Sequential",
      "parameters": {"w": {"shape": [1], "dtype": "F32"}}}]})";
  EXPECT_TRUE (contains (load_error (plain),
                         "s: type Sequential does not accept declared parameters")) << load_error (plain);
  EXPECT_TRUE (contains (load_error (graph2 ("[]", R"("x")").insert (1, R"("buffers": {"b": {"shape": [1], "dtype": "Q8"}}, )")),
                         "buffers 'b': unknown dtype 'Q8'"));
  // An attr node naming no tensor fails at run time with the node's name.
  Module m2 = load (graph2 (R"([{"name": "t", "attr": "nope"}])", R"("t")"));
  ASSERT_TRUE (m2);
  EXPECT_EQ (nn_module_forward (m2.get (), x.get (), e.out ()), nullptr);
  EXPECT_TRUE (contains (e.message (), "Graph: node 't': ")) << e.message ();
}

TEST (Graph, OpNodesResolveNamesAndAliasesWithConfig)
{
  Module m = load (graph2 (R"([
    {"name": "a", "op": "fixture_affine", "config": {"scale": 3.0}, "args": ["x"]},
    {"name": "b", "op": "FixtureAffine", "config": {"shift": -1.0}, "args": ["a"]},
    {"name": "c", "op": "fixture.add", "args": ["b", 2.0]}])",
                          R"("c")"));
  ASSERT_TRUE (m);
  Tensor x = make ({ 2 }, { 1.0f, -2.0f });
  Tensor y = forward (m.get (), x.get ());
  ASSERT_TRUE (y);
  expect_near (data (y.get ()), { 1.0f * 3 - 1 + 2, -2.0f * 3 - 1 + 2 });
  // Functional ops are not modules: no names, no hooks, no parameters.
  Array mods (nn_module_named_modules (m.get ()));
  EXPECT_EQ (mods->len, 1u);

  EXPECT_TRUE (contains (load_error (graph2 (R"([{"name": "l", "op": "FixtureLinear",
      "config": {"in_features": 1, "out_features": 1}, "args": ["x"]}])", R"("l")")),
                         "node 'l': op 'FixtureLinear' holds parameters or buffers"));
  EXPECT_TRUE (contains (load_error (graph2 (R"([{"name": "s", "op": "Sequential", "args": ["x"]}])", R"("s")")),
                         "node 's': op 'Sequential' is a container type"));
  std::string unknown = load_error (graph2 (R"([{"name": "q", "op": "no_such_op", "args": ["x"]}])", R"("q")"));
  EXPECT_TRUE (contains (unknown, "node 'q': unknown op 'no_such_op': ")) << unknown;
  std::string badcfg = load_error (graph2 (R"([{"name": "a", "op": "fixture_affine", "config": {"scal": 1.0}, "args": ["x"]}])", R"("a")"));
  EXPECT_TRUE (contains (badcfg, "node 'a'")) << badcfg;
  EXPECT_TRUE (contains (badcfg, "scal")) << badcfg;
  // An op's error at run time names the node and the op.
  Tensor wrong = make ({ 3 }, { 1, 2, 3 });
  Module m3 = load (graph2 (R"([{"name": "s", "op": "fixture_add", "args": ["x", "x"], "kwargs": {"beta": 1}}])", R"("s")"));
  ASSERT_TRUE (m3);
  Error e;
  EXPECT_EQ (nn_module_forward (m3.get (), wrong.get (), e.out ()), nullptr);
  EXPECT_EQ (e.message (), "Graph: node 's' (op 'fixture_add'): forward() got an unexpected keyword argument 'beta'");
}

TEST (Graph, ConfigErrorsNameTheNode)
{
  struct { std::string nodes, output, inputs, want; } cases[] = {
    { R"([{"name": "a", "module": "m", "args": ["nope"]}])", R"("a")", R"(["x"])",
      "node 'a' args[0]: 'nope' is neither a graph input nor an earlier node (defined so far: 'x'); "
      "a string constant is {\"str\": \"nope\"}" },
    { R"([{"name": "a", "op": "fixture_echo", "args": [{"tuple": 1}]}])", R"("a")", R"(["x"])",
      "node 'a' args[0]: 'tuple' expects the form {\"tuple\": [...]}, found a number" },
    { R"([{"name": "a", "op": "fixture_echo", "args": [{"lambda": 1}]}])", R"("a")", R"(["x"])",
      "node 'a' args[0]: unknown expression form 'lambda'" },
    { R"([{"name": "a", "op": "fixture_echo", "args": [{"float": "big"}]}])", R"("a")", R"(["x"])",
      "{\"float\": ...} takes \"inf\", \"-inf\" or \"nan\"" },
    { R"([{"name": "a", "op": "fixture_echo", "args": [{"dtype": "int3"}]}])", R"("a")", R"(["x"])",
      "unknown dtype 'int3'" },
    { R"([{"name": "x", "op": "fixture_echo", "args": [1]}])", R"("x")", R"(["x"])",
      "nodes[0]: the name 'x' is already taken" },
    { R"([{"name": "a", "op": "fixture_echo", "args": [1]}, {"name": "a", "op": "fixture_echo", "args": [1]}])",
      R"("a")", R"(["x"])", "nodes[1]: the name 'a' is already taken" },
    { R"([{"name": "a", "module": "m", "op": "fixture_echo"}])", R"("a")", R"(["x"])",
      "node 'a': give exactly one of \"module\"" },
    { R"([{"name": "a", "module": "m", "config": {}}])", R"("a")", R"(["x"])",
      "node 'a': only an op node takes a 'config'" },
    { R"([{"name": "a", "attr": "t", "args": []}])", R"("a")", R"(["x"])",
      "node 'a': an attr node takes no args or kwargs" },
    { R"([{"name": "a", "module": "m", "argz": []}])", R"("a")", R"(["x"])",
      "node 'a': unknown field 'argz'" },
    { R"([])", R"("zz")", R"(["x"])", "output: 'zz' is neither a graph input nor an earlier node" },
    { R"([])", R"("x")", R"([{"name": "x", "default": 1}, "y"])",
      "inputs[1] 'y': a required input follows one with a default" },
    { R"([])", R"("x")", R"([{"name": "x"}])", "inputs[0] must be {\"name\": N, \"default\": V}" },
  };
  for (auto &c : cases) {
    std::string msg = load_error (graph2 (c.nodes, c.output, R"([{"name": "m", "type": "FixtureAffine"}])", c.inputs));
    EXPECT_TRUE (contains (msg, c.want)) << msg << "\n  wanted: " << c.want;
  }
}

TEST (Graph, EveryModuleNodePathMustResolve)
{
  std::string msg = load_error (in_seq (graph2 (R"([{"name": "a", "module": "h.3", "args": ["x"]}])", R"("a")",
                                               R"([{"name": "h", "type": "ModuleList", "children": [
                                                    {"name": "0", "type": "FixtureAffine"}]}])")));
  EXPECT_TRUE (contains (msg, "blk: Graph: node 'a' calls 'h.3', which does not exist: ")) << msg;
  // Surgery that would break a node's path is rolled back by the check.
  Module m = load (in_seq (graph2 (R"([{"name": "a", "module": "h.0", "args": ["x"]}])", R"("a")",
                                   R"([{"name": "h", "type": "ModuleList", "children": [
                                        {"name": "0", "type": "FixtureAffine"}]}])")));
  ASSERT_TRUE (m);
  Error e;
  NnSurgeryOptions opts = { sizeof (NnSurgeryOptions), NN_SURGERY_NO_SHAPE_CHECK, nullptr };
  EXPECT_FALSE (nn_surgery_delete (m.get (), "blk.h.0", &opts, e.out ()));
  EXPECT_TRUE (contains (e.message (), "node 'a' calls 'h.0'")) << e.message ();
  EXPECT_NE (at (m.get (), "blk.h.0"), nullptr);
}

// A version 1 descriptor: op names resolve through the registry (aliases
// included), a layer type's kwargs become its config, a functional op's
// kwargs stay kwargs (string constants quoted), and a save writes v2.
TEST (Graph, Version1ConfigsAreUpgraded)
{
  const char *v1 = R"({"format": "nnkit", "version": 1, "input_shape": [2],
    "model": {"type": "Graph", "config": {"inputs": ["x"], "nodes": [
      {"name": "a", "module": "m", "args": ["x"]},
      {"name": "b", "op": "fixture_affine", "args": ["a"], "kwargs": {"scale": 2.0}},
      {"name": "c", "op": "fixture_add", "args": ["b", "x"], "kwargs": {"alpha": 3.0}},
      {"name": "d", "op": "fixture_echo", "args": ["c"], "kwargs": {"flag": true}}],
     "output": "d"},
     "children": [{"name": "m", "type": "FixtureAffine", "config": {"shift": 1.0}}]}})";
  Error e;
  Module m (nn_descriptor_load_data (reg (), v1, -1, "v1.json", e.out ()));
  ASSERT_TRUE (m) << e.message ();
  Tensor x = make ({ 2 }, { 1.0f, 2.0f });
  ValueRef out = call (m.get (), value_tuple ({ nn_value_new_tensor (x.get ()) }));
  ASSERT_TRUE (out);
  ASSERT_EQ (nn_value_n_items (out.get ()), 3u);
  expect_near (data (nn_value_get_tensor (nn_value_item (out.get (), 0))),
               { (1.0f + 1) * 2 + 3 * 1.0f, (2.0f + 1) * 2 + 3 * 2.0f });
  gsize len = 0;
  std::string saved = take (nn_descriptor_to_data (m.get (), &len));
  EXPECT_TRUE (contains (saved, R"("version": 2)")) << saved;
  EXPECT_TRUE (contains (saved, R"("input_shape": [)")) << saved;
  EXPECT_TRUE (contains (saved, R"("op": "fixture_affine",)")) << saved;
  EXPECT_TRUE (contains (saved, R"("config": {)")) << saved;
  Module again (nn_descriptor_load_data (reg (), saved.c_str (), -1, "v2.json", e.out ()));
  ASSERT_TRUE (again) << e.message ();
  EXPECT_EQ (take (nn_descriptor_to_data (again.get (), &len)), saved);

  // v1 string kwargs were constants; v1 module nodes took no kwargs.
  const char *v1s = R"({"format": "nnkit", "version": 1, "model": {"type": "Graph", "config": {
      "inputs": ["x"], "nodes": [{"name": "e", "op": "fixture_echo", "args": ["x"], "kwargs": {"flag": "x"}}],
      "output": "e"}}})";
  Module s (nn_descriptor_load_data (reg (), v1s, -1, "v1s.json", e.out ()));
  ASSERT_TRUE (s) << e.message ();
  EXPECT_FALSE (ValueRef (nn_module_call (s.get (), value_tuple ({ nn_value_new_int (1) }).get (), nullptr, e.out ())));
  EXPECT_EQ (e.message (), "Graph: node 'e' (op 'fixture_echo'): argument 'flag': expected bool, None, found str");
  const char *v1m = R"({"format": "nnkit", "version": 1, "model": {"type": "Graph", "config": {
      "inputs": ["x"], "nodes": [{"name": "a", "module": "m", "args": ["x"], "kwargs": {"k": 1}}],
      "output": "a"}, "children": [{"name": "m", "type": "FixtureAffine"}]}})";
  EXPECT_FALSE (Module (nn_descriptor_load_data (reg (), v1m, -1, "v1m.json", e.out ())));
  EXPECT_TRUE (contains (e.message (), "a version 1 module node takes no kwargs")) << e.message ();
  const char *v1u = R"({"format": "nnkit", "version": 1, "model": {"type": "Graph", "config": {
      "inputs": ["x"], "nodes": [{"name": "a", "op": "no_such_fn", "args": ["x"], "kwargs": {"inplace": true}}],
      "output": "a"}}})";
  EXPECT_FALSE (Module (nn_descriptor_load_data (reg (), v1u, -1, "v1u.json", e.out ())));
  EXPECT_TRUE (contains (e.message (), "node 'a': unknown op 'no_such_fn'")) << e.message ();
}

TEST (Graph, NoNodesIsIdentity)
{
  Module m = load (graph2 ("[]", R"("x")"));
  ASSERT_TRUE (m);
  Tensor x = make ({ 2 }, { 1.0f, 2.0f });
  Tensor y = forward (m.get (), x.get ());
  ASSERT_TRUE (y);
  EXPECT_EQ (y.get (), x.get ()) << "the input itself, as PyTorch's return x";
}

namespace {

struct Tracked {
  bool released = false;
  std::vector<float> storage;
};

void tracked_release (gpointer p) { static_cast<Tracked *> (p)->released = true; }

// Replaces the output with a copy whose storage reports when it is freed.
gboolean track_output (NnModule *, const char *, const NnValue *, const NnValue *,
                       NnValue **output, gpointer user_data, GError **)
{
  auto *t = static_cast<Tracked *> (user_data);
  NnTensor *o = nn_value_get_tensor (*output);
  t->storage = data (o);
  NnTensor *copy = nn_tensor_new_borrowed (NN_DTYPE_F32, &o->shape, t->storage.data (), FALSE,
                                           tracked_release, t);
  nn_value_unref (*output);
  *output = nn_value_take_tensor (copy);
  return TRUE;
}

gboolean note_released (NnModule *, const char *, NnValue **, NnValue **, gpointer user_data,
                        GError **)
{
  auto *seen = static_cast<std::pair<Tracked *, bool> *> (user_data);
  seen->second = seen->first->released;
  return TRUE;
}

}  // namespace

TEST (Graph, IntermediatesAreFreedAfterTheirLastUse)
{
  // a is read only by b, so it must be gone before c runs.
  Module m = load (graph2 (R"([
    {"name": "a", "module": "m1", "args": ["x"]},
    {"name": "b", "module": "m2", "args": ["a"]},
    {"name": "c", "module": "m3", "args": ["b"]},
    {"name": "d", "op": "fixture_add", "args": ["c", "x"]}])",
                           R"("d")", R"([{"name": "m1", "type": "FixtureAffine"}, {"name": "m2", "type": "FixtureAffine"},
                                   {"name": "m3", "type": "FixtureAffine", "config": {"scale": 2.0}}])"));
  ASSERT_TRUE (m);
  Tracked tracked;
  std::pair<Tracked *, bool> seen (&tracked, false);
  Hook h = fwd_hook (at (m.get (), "m1"), track_output, &tracked);
  Error e;
  Hook p (nn_module_add_pre_hook (at (m.get (), "m3"), note_released, &seen, nullptr,
                                  nullptr, 0, e.out ()));
  Tensor x = make ({ 4 }, { -1.0f, 2.0f, -3.0f, 4.0f });
  Tensor y = forward (m.get (), x.get ());
  ASSERT_TRUE (y);
  EXPECT_TRUE (seen.second);
  expect_near (data (y.get ()), { -3.0f, 6.0f, -9.0f, 12.0f });
}

TEST (Graph, ChildrenAreReplacedNotDeleted)
{
  // A Graph is a container (replace, hooks) but neither indexable nor
  // keyed: its node list names its children, so surgery may not drop one.
  Module m = load (in_seq (graph2 (R"([{"name": "a", "module": "act", "args": ["x"]}])",
                                   R"("a")", R"([{"name": "act", "type": "FixtureAffine"}])")));
  ASSERT_TRUE (m);
  const NnLayerType *t = nn_module_get_type (at (m.get (), "blk"));
  EXPECT_TRUE (t->flags & NN_LAYER_CONTAINER);
  EXPECT_TRUE (t->flags & NN_LAYER_ROUTES_ONLY);
  EXPECT_TRUE (t->flags & NN_LAYER_DECLARED_TENSORS);
  EXPECT_FALSE (t->flags & (NN_LAYER_INDEXABLE | NN_LAYER_KEYED));
  Error e;
  NnShape in = shape ({ 2, 3 });
  NnSurgeryOptions opts = { sizeof (NnSurgeryOptions), 0, &in };
  EXPECT_FALSE (nn_surgery_delete (m.get (), "blk.act", &opts, e.out ()));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_CONTAINER)) << e.message ();
  EXPECT_NE (nn_module_get_child (at (m.get (), "blk"), "act"), nullptr);
}

TEST (Graph, ReprIsClassNameAndChildren)
{
  std::string g = graph2 (R"([{"name": "a", "module": "act", "args": ["x"]}])", R"("a")",
                          R"([{"name": "act", "type": "FixtureAffine", "config": {"shift": 2.0}}])");
  g.insert (1, R"("class": "Block", )");
  Module m = load (g);
  ASSERT_TRUE (m);
  EXPECT_EQ (take (nn_module_to_string (m.get ())),
             "Block(\n  (act): FixtureAffine(scale=1.0, shift=2.0)\n)");
  gsize len = 0;
  std::string first = take (nn_descriptor_to_data (m.get (), &len));
  Error e;
  Module again (nn_descriptor_load_data (reg (), first.c_str (), -1, "saved", e.out ()));
  ASSERT_TRUE (again) << e.message ();
  EXPECT_EQ (take (nn_descriptor_to_data (again.get (), &len)), first);
}

TEST (Graph, ConcurrentForwardsAgree)
{
  Module ok = load (graph2 (R"([
    {"name": "s", "op": "fixture_affine", "config": {"scale": 0.5}, "args": ["x"]},
    {"name": "m", "op": "fixture_mul", "args": ["x", "s"]},
    {"name": "p", "module": "pair", "args": ["m", "x"]}])",
                            R"("p")", R"([{"name": "pair", "type": "FixturePair"}])"));
  ASSERT_TRUE (ok);
  Tensor x = make ({ 2, 3, 8, 8 }, values (384, 6));
  ValueRef ref = call (ok.get (), value_tuple ({ nn_value_new_tensor (x.get ()) }));
  ASSERT_TRUE (ref);
  std::vector<float> want = data (nn_value_get_tensor (nn_value_item (ref.get (), 0)));
  std::vector<int> same (4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++)
    threads.emplace_back ([&, t] {
      for (int i = 0; i < 20; i++)
        {
          ValueRef args = value_tuple ({ nn_value_new_tensor (x.get ()) });
          NnValue *y = nn_module_call (ok.get (), args.get (), nullptr, nullptr);
          if (y && data (nn_value_get_tensor (nn_value_item (y, 0))) == want)
            same[t]++;
          if (y)
            nn_value_unref (y);
        }
    });
  for (auto &t : threads)
    t.join ();
  EXPECT_EQ (same, (std::vector<int>{ 20, 20, 20, 20 }));
}
