// The linear plugin's Linear: forward against a naive matmul written here
// on several leading shapes, shape inference, errors, PyTorch's repr text,
// reset_parameters and torchinfo's Mult-Adds.
#include "nn-test.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

using namespace nntest;
// Substring checks with gtest alone (no gmock).
#define EXPECT_HAS(haystack, needle) \
  EXPECT_PRED_FORMAT2 (::testing::IsSubstring, std::string (needle), std::string (haystack))

namespace {

// Calls the type's count_macs slot as nnctl summary does: a meta input of
// shape @in bound to the type's signature, and a meta result of shape @out.
inline guint64 macs_for (NnModule *m, const NnShape &in, const NnShape &out)
{
  const NnLayerType *t = nn_module_get_type (m);
  NnValue *a = nn_value_new_tuple ();
  nn_value_append (a, nn_value_take_tensor (nn_tensor_new_meta (NN_DTYPE_F32, &in)));
  GError *e = nullptr;
  NnArgs *bound = nn_args_bind_signature (t->args, t->n_args, nullptr, a, nullptr, &e);
  EXPECT_TRUE (bound) << (e ? e->message : "");
  if (e) g_error_free (e);
  NnValue *v = nn_value_take_tensor (nn_tensor_new_meta (NN_DTYPE_F32, &out));
  guint64 n = bound ? t->count_macs (m, bound, v) : 0;
  nn_args_free (bound);
  nn_value_unref (v);
  nn_value_unref (a);
  return n;
}


Module make (NnRegistry *reg, const std::string &json, Error &err,
             const char *path = "fc")
{
  GError *e = nullptr;
  JsonNode *node = json_from_string (json.c_str (), &e);
  EXPECT_EQ (e, nullptr) << (e ? e->message : "");
  if (e) g_error_free (e);
  Module m (nn_module_new_from_type (reg, "Linear", node ? json_node_get_object (node) : nullptr,
                                     path, err.out ()));
  if (node) json_node_unref (node);
  return m;
}

void fill (float *d, gint64 n, unsigned seed)
{
  guint32 s = 2166136261u ^ seed;
  for (gint64 i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    d[i] = (float) ((s >> 8) & 0xffff) / 32768.0f - 1.0f;
  }
}

struct Case {
  const char *name;
  int in, out;
  bool bias;
  std::vector<gint64> lead;  // leading dimensions before in_features
};

void PrintTo (const Case &c, std::ostream *os)
{
  *os << c.name << " in=" << c.in << " out=" << c.out << " bias=" << c.bias;
}

class LinearForward : public ::testing::TestWithParam<Case> {};

TEST_P (LinearForward, MatchesNaiveMatmulAndInferredShape)
{
  const Case &c = GetParam ();
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "{\"in_features\": " + std::to_string (c.in) +
                   ", \"out_features\": " + std::to_string (c.out) +
                   ", \"bias\": " + (c.bias ? "true" : "false") + "}", err);
  ASSERT_TRUE (m) << err.message ();
  for (guint i = 0; i < nn_module_n_parameters (m.get ()); i++) {
    NnTensor *t = nn_module_parameter_at (m.get (), i, nullptr);
    fill (nn_tensor_f32 (t), nn_tensor_numel (t), 100 + i);
  }

  NnShape in = {}, want = {};
  for (gint64 d : c.lead) { in.dims[in.ndim++] = d; want.dims[want.ndim++] = d; }
  in.dims[in.ndim++] = c.in;
  want.dims[want.ndim++] = c.out;
  Tensor x (nn_tensor_new (NN_DTYPE_F32, &in));
  fill (nn_tensor_f32 (x.get ()), nn_tensor_numel (x.get ()), 3);

  NnShape inferred;
  ASSERT_TRUE (nn_module_infer_shape (m.get (), &in, &inferred, err.out ())) << err.message ();
  EXPECT_TRUE (nn_shape_equal (&inferred, &want)) << take (nn_shape_to_string (&inferred));
  Tensor y (nn_module_forward (m.get (), x.get (), err.out ()));
  ASSERT_TRUE (y) << err.message ();
  EXPECT_TRUE (nn_shape_equal (&y->shape, &want)) << take (nn_shape_to_string (&y->shape));

  const float *w = nn_tensor_f32 (nn_module_get_parameter (m.get (), "weight"));
  NnTensor *bt = nn_module_get_parameter (m.get (), "bias");
  ASSERT_EQ (bt != nullptr, c.bias);
  const float *xd = nn_tensor_f32 (x.get ()), *yd = nn_tensor_f32 (y.get ());
  gint64 rows = nn_tensor_numel (x.get ()) / c.in;
  float maxref = 0, maxdiff = 0;
  for (gint64 r = 0; r < rows; r++)
    for (int o = 0; o < c.out; o++) {
      double acc = bt ? nn_tensor_f32 (bt)[o] : 0.0;
      for (int i = 0; i < c.in; i++)
        acc += (double) xd[r * c.in + i] * w[o * c.in + i];
      maxref = std::max (maxref, (float) std::fabs (acc));
      maxdiff = std::max (maxdiff, (float) std::fabs (acc - yd[r * c.out + o]));
    }
  EXPECT_LE (maxdiff, 1e-4f * std::max (1.0f, maxref));
}

const Case kCases[] = {
  { "vector", 7, 5, true, {} },
  { "single_row", 512, 10, true, { 1 } },
  { "batch4", 33, 17, true, { 4 } },
  { "batch4_nobias", 33, 17, false, { 4 } },
  { "leading_2x3", 9, 4, true, { 2, 3 } },
  { "leading_2x1x5_nobias", 16, 8, false, { 2, 1, 5 } },
  { "one_in_feature", 1, 6, true, { 3 } },
  { "empty_batch", 8, 3, true, { 0 } },
};

INSTANTIATE_TEST_SUITE_P (Shapes, LinearForward, ::testing::ValuesIn (kCases),
                          [] (const ::testing::TestParamInfo<Case> &i) { return std::string (i.param.name); });

TEST (Linear, ParametersHavePyTorchNamesAndShapes)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "{\"in_features\": 512, \"out_features\": 1000}", err);
  ASSERT_TRUE (m) << err.message ();
  ASSERT_EQ (nn_module_n_parameters (m.get ()), 2u);
  const char *name = nullptr;
  NnTensor *w = nn_module_parameter_at (m.get (), 0, &name);
  EXPECT_STREQ (name, "weight");
  NnShape ws = shape ({ 1000, 512 });
  EXPECT_TRUE (nn_shape_equal (&w->shape, &ws));
  NnTensor *b = nn_module_parameter_at (m.get (), 1, &name);
  EXPECT_STREQ (name, "bias");
  NnShape bs = shape ({ 1000 });
  EXPECT_TRUE (nn_shape_equal (&b->shape, &bs));

  Module nb = make (reg.get (), "{\"in_features\": 3, \"out_features\": 4, \"bias\": false}", err);
  ASSERT_TRUE (nb) << err.message ();
  EXPECT_EQ (nn_module_n_parameters (nb.get ()), 1u);
}

// Expected strings are PyTorch 1.13's print(nn.Linear(...)) output.
TEST (Linear, ReprIsPyTorchText)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "{\"in_features\": 512, \"out_features\": 1000}", err);
  ASSERT_TRUE (m) << err.message ();
  EXPECT_EQ (take (nn_module_to_string (m.get ())),
             "Linear(in_features=512, out_features=1000, bias=True)");
  Module nb = make (reg.get (), "{\"in_features\": 3, \"out_features\": 4, \"bias\": false}", err);
  ASSERT_TRUE (nb) << err.message ();
  EXPECT_EQ (take (nn_module_to_string (nb.get ())),
             "Linear(in_features=3, out_features=4, bias=False)");
}

TEST (Linear, WrongLastDimensionNamesBothShapes)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "{\"in_features\": 512, \"out_features\": 10}", err);
  ASSERT_TRUE (m) << err.message ();
  for (NnShape in : { shape ({ 1, 256 }), shape ({ 1, 512, 7, 7 }), shape ({}) }) {
    NnShape out;
    std::string got = take (nn_shape_to_string (&in));
    EXPECT_FALSE (nn_module_infer_shape (m.get (), &in, &out, err.out ()));
    EXPECT_TRUE (err.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH)) << err.message ();
    EXPECT_HAS (err.message (), ("expected input [..., 512] (last dimension 512), got " + got));
    Tensor x (nn_tensor_new (NN_DTYPE_F32, &in));
    EXPECT_EQ (nn_module_forward (m.get (), x.get (), err.out ()), nullptr);
    EXPECT_HAS (err.message (), ("got " + got));
  }
}

TEST (Linear, ConfigErrorsNameTheKey)
{
  Registry reg = default_registry ();
  struct { const char *json, *message; int code; } cases[] = {
    { "{\"in_feature\": 3, \"out_features\": 4}",
      "classifier.1: Linear: unknown key 'in_feature' (did you mean 'in_features'?)",
      NN_DESCRIPTOR_ERROR_UNKNOWN_KEY },
    { "{\"in_features\": 3}", "classifier.1: Linear: missing required key 'out_features'",
      NN_DESCRIPTOR_ERROR_MISSING_KEY },
    { "{\"in_features\": 0, \"out_features\": 4}", "key 'in_features' must be >= 1",
      NN_DESCRIPTOR_ERROR_OUT_OF_RANGE },
    { "{\"in_features\": 3, \"out_features\": 4, \"bias\": 1}", "key 'bias' expects a bool, found int 1",
      NN_DESCRIPTOR_ERROR_WRONG_KIND },
    { "{\"in_features\": 3000000000, \"out_features\": 4}", "weight [4, 3000000000] is too large",
      NN_DESCRIPTOR_ERROR_OUT_OF_RANGE },
  };
  for (auto &c : cases) {
    Error err;
    Module m = make (reg.get (), c.json, err, "classifier.1");
    EXPECT_FALSE (m) << c.json;
    EXPECT_TRUE (err.matches (NN_DESCRIPTOR_ERROR, c.code)) << c.json << ": " << err.message ();
    EXPECT_HAS (err.message (), (c.message)) << c.json;
  }
}

TEST (Linear, ResetParametersFollowsKaimingUniformBounds)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "{\"in_features\": 64, \"out_features\": 100}", err);
  ASSERT_TRUE (m) << err.message ();
  nn_module_reset_parameters (m.get (), 7);
  const double bound = 1.0 / 8.0;  // 1 / sqrt(in_features)
  for (const char *name : { "weight", "bias" }) {
    NnTensor *t = nn_module_get_parameter (m.get (), name);
    const float *d = nn_tensor_f32 (t);
    float lo = 1, hi = -1;
    for (gint64 i = 0; i < nn_tensor_numel (t); i++) {
      lo = std::min (lo, d[i]);
      hi = std::max (hi, d[i]);
    }
    EXPECT_GE (lo, -bound) << name;
    EXPECT_LE (hi, bound) << name;
    EXPECT_LT (lo, -0.8 * bound) << name;
    EXPECT_GT (hi, 0.8 * bound) << name;
  }
}

// torchinfo's Mult-Adds: resnet18's fc at batch 1 is 513,000; with leading
// shape [2, 3] every one of the 6 rows uses each weight once.
TEST (Linear, CountMacsFollowsTorchinfo)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "{\"in_features\": 512, \"out_features\": 1000}", err);
  ASSERT_TRUE (m) << err.message ();
  const NnLayerType *type = nn_module_get_type (m.get ());
  ASSERT_NE (type->count_macs, nullptr);
  NnShape in = shape ({ 1, 512 }), out = shape ({ 1, 1000 });
  EXPECT_EQ (macs_for (m.get (), in, out), 513000u);
  NnShape in3 = shape ({ 2, 3, 512 }), out3 = shape ({ 2, 3, 1000 });
  EXPECT_EQ (macs_for (m.get (), in3, out3), 6u * 513000u);
}

}  // namespace
