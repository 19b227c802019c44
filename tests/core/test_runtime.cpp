// Tests for core/runtime.c and core/args.c: calls through the core with
// values, argument binding as Python binds (each TypeError message),
// dtype checks, shape inference on meta tensors (infer, routes-only and
// zero-filled forward), errors located by module path, the forward
// contract, and the observer's order.
#include "nn-test.h"

#include <cmath>

using namespace nntest;

static const char *kMlp = R"({"format": "nnkit", "version": 2, "model": {
  "type": "Sequential", "class": "Mlp", "children": [
    {"name": "fc1", "type": "FixtureLinear", "config": {"in_features": 3, "out_features": 4}},
    {"name": "act", "type": "FixtureAffine", "config": {"scale": -2.0, "shift": 0.5}},
    {"name": "block", "type": "Sequential", "children": [
      {"name": "fc2", "type": "FixtureLinear", "config": {"in_features": 4, "out_features": 2}}]}]}})";

static void
fill (NnTensor *t, float start, float step)
{
  float *d = nn_tensor_f32 (t);
  for (gint64 i = 0; i < nn_tensor_numel (t); i++)
    d[i] = start + step * (float) i;
}

TEST (Runtime, SequentialForwardMatchesHandComputation)
{
  Registry reg = fixture_registry ();
  Error e;
  Module m (nn_descriptor_load_data (reg.get (), kMlp, -1, "mlp", e.out ()));
  ASSERT_TRUE (m) << e.message ();
  NnTensor *w1 = nn_module_lookup_tensor (m.get (), "fc1.weight", e.out ());
  NnTensor *b1 = nn_module_lookup_tensor (m.get (), "fc1.bias", e.out ());
  NnTensor *w2 = nn_module_lookup_tensor (m.get (), "block.fc2.weight", e.out ());
  NnTensor *b2 = nn_module_lookup_tensor (m.get (), "block.fc2.bias", e.out ());
  fill (w1, -0.5f, 0.1f);
  fill (b1, 0.1f, -0.05f);
  fill (w2, 0.3f, -0.07f);
  fill (b2, -0.2f, 0.4f);
  NnShape s = shape ({2, 3});
  Tensor x (nn_tensor_new (NN_DTYPE_F32, &s));
  fill (x.get (), -1.0f, 0.35f);
  Tensor y (nn_module_forward (m.get (), x.get (), e.out ()));
  ASSERT_TRUE (y) << e.message ();
  EXPECT_EQ (shape_text (y->shape), "[2, 2]");
  // Reference: y = W2 (-2 (W1 x + b1) + 0.5) + b2, computed here in double.
  const float *X = nn_tensor_f32 (x.get ()), *W1 = nn_tensor_f32 (w1), *B1 = nn_tensor_f32 (b1);
  const float *W2 = nn_tensor_f32 (w2), *B2 = nn_tensor_f32 (b2);
  for (int n = 0; n < 2; n++) {
    double h[4];
    for (int o = 0; o < 4; o++) {
      double acc = B1[o];
      for (int i = 0; i < 3; i++)
        acc += (double) W1[o * 3 + i] * X[n * 3 + i];
      h[o] = -2.0 * acc + 0.5;
    }
    for (int o = 0; o < 2; o++) {
      double acc = B2[o];
      for (int i = 0; i < 4; i++)
        acc += (double) W2[o * 4 + i] * h[i];
      EXPECT_NEAR (nn_tensor_f32 (y.get ())[n * 2 + o], acc, 1e-5);
    }
  }
}

TEST (Runtime, ErrorsNameTheModulePathAndShapes)
{
  Registry reg = fixture_registry ();
  Error e;
  Module m (nn_descriptor_load_data (reg.get (), kMlp, -1, "mlp", e.out ()));
  NnShape s = shape ({2, 5});
  Tensor x (nn_tensor_new (NN_DTYPE_F32, &s));
  Tensor y (nn_module_forward (m.get (), x.get (), e.out ()));
  EXPECT_FALSE (y);
  EXPECT_EQ (e.message ().rfind ("fc1: FixtureLinear: ", 0), 0u) << e.message ();
  EXPECT_NE (e.message ().find ("[2, 5]"), std::string::npos) << e.message ();
  NnShape out;
  EXPECT_FALSE (nn_module_infer_shape (m.get (), &s, &out, e.out ()));
  EXPECT_TRUE (e.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH)) << e.message ();
  EXPECT_EQ (e.message ().rfind ("fc1: FixtureLinear: ", 0), 0u) << e.message ();
  // Deeper modules get their full path, once.
  Module bad (nn_descriptor_load_data (reg.get (), R"({"format": "nnkit", "version": 2, "model": {
    "type": "Sequential", "children": [
      {"name": "block", "type": "Sequential", "children": [
        {"name": "fc2", "type": "FixtureLinear", "config": {"in_features": 4, "out_features": 2}}]}]}})",
                                       -1, "bad", e.out ()));
  NnShape s3 = shape ({1, 3});
  EXPECT_FALSE (nn_module_infer_shape (bad.get (), &s3, &out, e.out ()));
  EXPECT_EQ (e.message (), "block.fc2: FixtureLinear: expected input [..., 4], found [1, 3]");
}

TEST (Runtime, ContainersWithoutForwardRefuseToRun)
{
  Registry reg = fixture_registry ();
  Error e;
  Module list = load_json (reg.get (), R"({"type": "ModuleList", "children": [
      {"name": "0", "type": "FixtureAffine"}]})");
  ASSERT_TRUE (list);
  NnShape s = shape ({1, 3});
  Tensor x (nn_tensor_new (NN_DTYPE_F32, &s));
  Tensor y (nn_module_forward (list.get (), x.get (), e.out ()));
  EXPECT_FALSE (y);
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NO_FORWARD));
  EXPECT_EQ (e.message (), "ModuleList: ModuleList has no forward(): it is a container, not a "
                           "layer; call its children instead");
}

// --- values in, values out ------------------------------------------------

static ValueRef
call (NnModule *m, ValueRef args, NnValue *kwargs, Error &e)
{
  ValueRef out (nn_module_call (m, args.get (), kwargs, e.out ()));
  if (kwargs)
    nn_value_unref (kwargs);
  return out;
}

static NnValue *
kw (std::initializer_list<std::pair<const char *, NnValue *>> items)
{
  NnValue *d = nn_value_new_dict ();
  for (auto &it : items)
    nn_value_dict_set (d, it.first, it.second);
  return d;
}

TEST (Runtime, MultiInputKeywordsAndTupleOrDictResults)
{
  Registry reg = fixture_registry ();
  Error e;
  Module pair = load_json (reg.get (), R"({"type": "FixturePair"})");
  Tensor x = tensor_f32 ({3}, [] (gint64 i) { return 1.0f + i; });
  Tensor y = tensor_f32 ({3}, [] (gint64 i) { return 0.5f * i; });

  // Positional y: a tuple (x + y, x - y).
  ValueRef out = call (pair.get (), value_tuple ({ nn_value_new_tensor (x.get ()), nn_value_new_tensor (y.get ()) }),
                    nullptr, e);
  ASSERT_TRUE (out) << e.message ();
  ASSERT_EQ (nn_value_kind (out.get ()), NN_VALUE_TUPLE);
  ASSERT_EQ (nn_value_n_items (out.get ()), 2u);
  for (int i = 0; i < 3; i++) {
    EXPECT_FLOAT_EQ (nn_tensor_f32 (nn_value_get_tensor (nn_value_item (out.get (), 0)))[i], 1.0f + i + 0.5f * i);
    EXPECT_FLOAT_EQ (nn_tensor_f32 (nn_value_get_tensor (nn_value_item (out.get (), 1)))[i], 1.0f + i - 0.5f * i);
  }
  // y by keyword and the keyword-only flag: a dict in insertion order.
  out = call (pair.get (), value_tuple ({ nn_value_new_tensor (x.get ()) }),
              kw ({ { "as_dict", nn_value_new_bool (TRUE) }, { "y", nn_value_new_tensor (y.get ()) } }), e);
  ASSERT_TRUE (out) << e.message ();
  ASSERT_EQ (nn_value_kind (out.get ()), NN_VALUE_DICT);
  EXPECT_STREQ (nn_value_dict_key (out.get (), 0), "sum");
  EXPECT_STREQ (nn_value_dict_key (out.get (), 1), "diff");
  EXPECT_FLOAT_EQ (nn_tensor_f32 (nn_value_get_tensor (nn_value_dict_lookup (out.get (), "diff")))[2], 3.0f - 1.0f);
  // The default None for y: x with itself.
  out = call (pair.get (), value_tuple ({ nn_value_new_tensor (x.get ()) }), nullptr, e);
  ASSERT_TRUE (out) << e.message ();
  EXPECT_FLOAT_EQ (nn_tensor_f32 (nn_value_get_tensor (nn_value_item (out.get (), 0)))[1], 4.0f);

  // nn_module_forward wants a tensor and says what it got instead.
  EXPECT_EQ (nn_module_forward (pair.get (), x.get (), e.out ()), nullptr);
  EXPECT_EQ (e.message (), "FixturePair: returned tuple, not a Tensor; use nn_module_call() for "
                           "results of other kinds");
}

TEST (Runtime, BindingErrorsUsePythonsWording)
{
  Registry reg = fixture_registry ();
  Module pair = load_json (reg.get (), R"({"type": "FixturePair"})");
  Module add = load_json (reg.get (), R"({"type": "FixtureAdd"})");
  Tensor x = tensor_f32 ({2}, [] (gint64) { return 1.0f; });
  auto t = [] (NnTensor *x) { return nn_value_new_tensor (x); };
  struct Case { NnModule *m; ValueRef args; NnValue *kwargs; const char *message; };
  std::vector<Case> cases;
  cases.push_back ({ pair.get (), value_tuple ({}), nullptr,
                     "FixturePair: forward() missing 1 required positional argument: 'x'" });
  cases.push_back ({ add.get (), value_tuple ({}), nullptr,
                     "FixtureAdd: forward() missing 2 required positional arguments: 'input' and 'other'" });
  cases.push_back ({ pair.get (), value_tuple ({ t (x.get ()), t (x.get ()), t (x.get ()) }), nullptr,
                     "FixturePair: forward() takes from 2 to 3 positional arguments but 4 were given" });
  cases.push_back ({ add.get (), value_tuple ({ t (x.get ()), t (x.get ()), nn_value_new_float (2) }), nullptr,
                     "FixtureAdd: forward() takes 3 positional arguments but 4 were given" });
  cases.push_back ({ pair.get (), value_tuple ({ t (x.get ()) }), kw ({ { "foo", nn_value_new_int (1) } }),
                     "FixturePair: forward() got an unexpected keyword argument 'foo'" });
  cases.push_back ({ pair.get (), value_tuple ({ t (x.get ()) }), kw ({ { "x", t (x.get ()) } }),
                     "FixturePair: forward() got multiple values for argument 'x'" });
  cases.push_back ({ pair.get (), value_tuple ({ nn_value_new_int (3) }), nullptr,
                     "FixturePair: argument 'x': expected Tensor, found int" });
  cases.push_back ({ pair.get (), value_tuple ({ t (x.get ()) }), kw ({ { "as_dict", nn_value_new_string ("yes") } }),
                     "FixturePair: argument 'as_dict': expected bool, found str" });
  for (auto &c : cases) {
    Error e;
    ValueRef out (nn_module_call (c.m, c.args.get (), c.kwargs, e.out ()));
    if (c.kwargs)
      nn_value_unref (c.kwargs);
    EXPECT_FALSE (out);
    EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_ARGUMENTS)) << e.message ();
    EXPECT_EQ (e.message (), c.message);
  }
}

TEST (Runtime, DtypeRefusalNamesPathArgumentExpectedAndFound)
{
  Registry reg = fixture_registry ();
  Error e;
  Module m = load_json (reg.get (), R"({"type": "Sequential", "children": [
      {"name": "emb", "type": "FixtureEmbed", "config": {"num": 4, "dim": 2}},
      {"name": "fc", "type": "FixtureLinear", "config": {"in_features": 2, "out_features": 1}}]})");
  NnShape s = shape ({3});
  Tensor f (nn_tensor_new (NN_DTYPE_F32, &s));
  EXPECT_EQ (nn_module_forward (m.get (), f.get (), e.out ()), nullptr);
  EXPECT_EQ (e.message (), "emb: FixtureEmbed: argument 'ids': expected dtype I64, found F32");
  // An ABI 1 style type (no signature) takes one F32 tensor "input".
  Module fc = load_json (reg.get (), R"({"type": "FixtureLinear", "config": {"in_features": 2, "out_features": 1}})");
  NnShape s2 = shape ({1, 2});
  Tensor i64 (nn_tensor_new (NN_DTYPE_I64, &s2));
  EXPECT_EQ (nn_module_forward (fc.get (), i64.get (), e.out ()), nullptr);
  EXPECT_EQ (e.message (), "FixtureLinear: argument 'input': expected dtype F32, found I64");
  // I64 ids through the whole model, checked against the table.
  Tensor ids (nn_tensor_new (NN_DTYPE_I64, &s));
  gint64 want_ids[3] = { 3, 0, 2 };
  for (int i = 0; i < 3; i++)
    nn_tensor_i64 (ids.get ())[i] = want_ids[i];
  fill (nn_module_lookup_tensor (m.get (), "emb.weight", e.out ()), 0.0f, 1.0f);
  fill (nn_module_lookup_tensor (m.get (), "fc.weight", e.out ()), 1.0f, 1.0f);
  Tensor y (nn_module_forward (m.get (), ids.get (), e.out ()));
  ASSERT_TRUE (y) << e.message ();
  for (int i = 0; i < 3; i++) // row id holds (2 id, 2 id + 1); weight (1, 2)
    EXPECT_FLOAT_EQ (nn_tensor_f32 (y.get ())[i], 2.0f * want_ids[i] + 2.0f * (2 * want_ids[i] + 1));
}

TEST (Runtime, ForwardContractViolationsAreReportedAgainstTheType)
{
  Registry reg = fixture_registry ();
  Error e;
  Module both = load_json (reg.get (), R"({"type": "Sequential", "children": [
      {"name": "b", "type": "FixtureBroken", "config": {"mode": "error_and_value"}}]})");
  Tensor x = tensor_f32 ({1}, [] (gint64) { return 0.0f; });
  EXPECT_EQ (nn_module_forward (both.get (), x.get (), e.out ()), nullptr);
  EXPECT_EQ (e.message (), "b: FixtureBroken: bug in layer type FixtureBroken: its forward() set an "
                           "error and returned a value (error: oops)");
  Module null = load_json (reg.get (), R"({"type": "FixtureBroken", "config": {"mode": "null"}})");
  EXPECT_EQ (nn_module_forward (null.get (), x.get (), e.out ()), nullptr);
  EXPECT_EQ (e.message (), "FixtureBroken: bug in layer type FixtureBroken: its forward() returned "
                           "NULL without setting an error");
}

TEST (Runtime, VariadicAndKeywordOnlyBinding)
{
  Registry reg = fixture_registry ();
  Error e;
  Module echo = load_json (reg.get (), R"({"type": "FixtureEcho"})");
  ValueRef out = call (echo.get (), value_tuple ({ nn_value_new_int (1), nn_value_new_float (2.5), nn_value_new_string ("s") }),
                    kw ({ { "flag", nn_value_new_bool (TRUE) } }), e);
  ASSERT_TRUE (out) << e.message ();
  EXPECT_EQ (take (nn_value_to_string (out.get ())), "(1, (2.5, 's'), True)");
  out = call (echo.get (), value_tuple ({ nn_value_new_none () }), nullptr, e);
  ASSERT_TRUE (out) << e.message ();
  EXPECT_EQ (take (nn_value_to_string (out.get ())), "(None, (), None)");
  // *args cannot be given by keyword.
  out = call (echo.get (), value_tuple ({ nn_value_new_int (1) }), kw ({ { "rest", nn_value_new_int (2) } }), e);
  EXPECT_FALSE (out);
  EXPECT_EQ (e.message (), "FixtureEcho: forward() got an unexpected keyword argument 'rest'");
}

// --- shape inference -------------------------------------------------------

TEST (Runtime, InferenceUsesInferRoutesOnlyOrZeroFilledForward)
{
  Registry reg = fixture_registry ();
  Error e;
  // FixtureAdd has infer; FixtureMul has none and refuses meta tensors in
  // forward, so it must see zero-filled real tensors; FixtureEmbed indexes
  // with its I64 input, for which zeros are valid ids.
  Module g = load_json (reg.get (), R"({"type": "Graph",
    "config": {"inputs": ["ids", "x"], "nodes": [
      {"name": "e", "module": "emb", "args": ["ids"]},
      {"name": "m", "op": "fixture_mul", "args": ["e", "x"]},
      {"name": "a", "op": "fixture.add", "args": ["m", "e"], "kwargs": {"alpha": 2.0}},
      {"name": "n", "op": "FixtureSize", "args": ["a", -1]}],
     "output": {"tuple": ["a", "n"]}},
    "children": [{"name": "emb", "type": "FixtureEmbed", "config": {"num": 5, "dim": 4}}]})");
  ASSERT_TRUE (g);
  NnShape si = shape ({2, 3}), sx = shape ({2, 3, 4});
  ValueRef args = value_tuple ({ nn_value_take_tensor (nn_tensor_new_meta (NN_DTYPE_I64, &si)),
                        nn_value_take_tensor (nn_tensor_new_meta (NN_DTYPE_F32, &sx)) });
  ValueRef out (nn_module_infer (g.get (), args.get (), nullptr, e.out ()));
  ASSERT_TRUE (out) << e.message ();
  EXPECT_EQ (take (nn_value_to_string (out.get ())), "(Tensor[2, 3, 4] F32 meta, 4)");
  // A shape error during inference names the path.
  NnShape bad = shape ({2, 3, 5});
  ValueRef args2 = value_tuple ({ nn_value_take_tensor (nn_tensor_new_meta (NN_DTYPE_I64, &si)),
                         nn_value_take_tensor (nn_tensor_new_meta (NN_DTYPE_F32, &bad)) });
  EXPECT_FALSE (ValueRef (nn_module_infer (g.get (), args2.get (), nullptr, e.out ())));
  EXPECT_EQ (e.message (), "Graph: node 'm' (op 'fixture_mul'): shapes [2, 3, 4] and [2, 3, 5] differ");
}

struct Seen {
  std::vector<std::string> paths;
  std::vector<std::string> outs;
  std::vector<guint> depths;
};

static void
observe (NnModule *, const char *path, guint depth, const NnShape *, const NnShape *out,
         gpointer ud)
{
  Seen *s = (Seen *) ud;
  s->paths.push_back (path);
  s->outs.push_back (shape_text (*out));
  s->depths.push_back (depth);
}

TEST (Runtime, ObserverSeesModulesInCallOrderWithShapes)
{
  Registry reg = fixture_registry ();
  Error e;
  Module m (nn_descriptor_load_data (reg.get (), kMlp, -1, "mlp", e.out ()));
  NnShape in = shape ({7, 3}), out;
  Seen seen;
  ASSERT_TRUE (nn_module_infer_shape_observed (m.get (), &in, &out, observe, &seen, e.out ()))
      << e.message ();
  EXPECT_EQ (seen.paths, (std::vector<std::string>{ "", "fc1", "act", "block", "block.fc2" }));
  EXPECT_EQ (seen.outs, (std::vector<std::string>{ "[7, 2]", "[7, 4]", "[7, 4]", "[7, 2]", "[7, 2]" }));
  EXPECT_EQ (seen.depths, (std::vector<guint>{ 0, 1, 1, 1, 2 }));
}

static void
observe_values (NnModule *, const char *path, guint depth, const NnValue *args,
                const NnValue *kwargs, const NnValue *out, gpointer ud)
{
  auto *lines = (std::vector<std::string> *) ud;
  lines->push_back (std::string (path) + " " + take (nn_value_to_string (args)) + " " +
                    (kwargs ? take (nn_value_to_string (kwargs)) : "-") + " -> " +
                    take (nn_value_to_string (out)));
}

TEST (Runtime, ValueObserverSeesArgumentsKeywordsAndResults)
{
  Registry reg = fixture_registry ();
  Error e;
  Module g = load_json (reg.get (), R"({"type": "Graph",
    "config": {"inputs": ["x"], "nodes": [
      {"name": "p", "module": "pair", "args": ["x"], "kwargs": {"as_dict": true}},
      {"name": "l", "module": "loop.0", "args": ["x"]},
      {"name": "l2", "module": "loop.0", "args": ["l"]}],
     "output": {"dict": {"p": "p", "l": "l2"}}},
    "children": [{"name": "pair", "type": "FixturePair"},
                 {"name": "loop", "type": "ModuleList", "children": [{"name": "0", "type": "FixtureAffine"}]}]})");
  ASSERT_TRUE (g);
  NnShape s = shape ({2});
  ValueRef args = value_tuple ({ nn_value_take_tensor (nn_tensor_new_meta (NN_DTYPE_F32, &s)) });
  std::vector<std::string> lines;
  ValueRef out (nn_module_infer_observed (g.get (), args.get (), nullptr, observe_values, &lines, e.out ()));
  ASSERT_TRUE (out) << e.message ();
  EXPECT_EQ (lines, (std::vector<std::string>{
    " (Tensor[2] F32 meta,) - -> {'p': {'sum': Tensor[2] F32 meta, 'diff': Tensor[2] F32 meta}, 'l': Tensor[2] F32 meta}",
    "pair (Tensor[2] F32 meta,) {'as_dict': True} -> {'sum': Tensor[2] F32 meta, 'diff': Tensor[2] F32 meta}",
    "loop.0 (Tensor[2] F32 meta,) - -> Tensor[2] F32 meta",
    "loop.0 (Tensor[2] F32 meta,) - -> Tensor[2] F32 meta",
  }));
}

TEST (Runtime, ThreadsCanBeSet)
{
  nn_set_num_threads (1);
  EXPECT_EQ (nn_get_num_threads (), 1);
  nn_set_num_threads (0);
  EXPECT_EQ (nn_get_num_threads (), 1);
  nn_set_num_threads (2);
  EXPECT_EQ (nn_get_num_threads (), 2);
}
