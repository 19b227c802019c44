// The leaf plugin families under ABI 2: every functional spelling resolves
// to its layer type; call arguments override the config as PyTorch's
// functional forms pass them (F.hardtanh(x, -2.0, 2.0), torch.flatten(x,
// 0)); infer() works on meta tensors and agrees with forward; dtypes are
// refused by the core's binding against the declared signatures; the
// eval-mode identities pass any dtype (and Identity any value) through.
// Expected values come from reference code written here.
#include "nn-test.h"

#include <cmath>
#include <string>
#include <vector>

using namespace nntest;

namespace {

struct ValueDeleter { void operator() (NnValue *v) const { nn_value_unref (v); } };
using Value = std::unique_ptr<NnValue, ValueDeleter>;

Tensor ramp (const NnShape &s, float start, float step)
{
  Tensor t (nn_tensor_new (NN_DTYPE_F32, &s));
  float *d = nn_tensor_f32 (t.get ());
  for (gint64 i = 0; i < nn_tensor_numel (t.get ()); i++)
    d[i] = start + step * (float) i;
  return t;
}

// A tuple (x, extra...) of values, taking the extras (transfer full).
Value args (NnTensor *x, std::initializer_list<NnValue *> extra = {})
{
  Value a (nn_value_new_tuple ());
  nn_value_append (a.get (), nn_value_new_tensor (x));
  for (NnValue *v : extra)
    nn_value_append (a.get (), v);
  return a;
}

Value kwargs (std::initializer_list<std::pair<const char *, NnValue *>> items)
{
  Value d (nn_value_new_dict ());
  for (auto &kv : items)
    nn_value_dict_set (d.get (), kv.first, kv.second);
  return d;
}

NnTensor *tensor_of (const Value &v)
{
  return v ? nn_value_get_tensor (v.get ()) : nullptr;
}

}  // namespace

TEST (LeafCalls, EveryFunctionalSpellingResolvesToItsType)
{
  Registry reg = default_registry ();
  const std::vector<std::pair<const char *, const char *>> aliases = {
    { "relu", "ReLU" }, { "torch.relu", "ReLU" },
    { "torch.nn.functional.relu", "ReLU" }, { "Tensor.relu", "ReLU" },
    { "relu6", "ReLU6" }, { "torch.nn.functional.relu6", "ReLU6" },
    { "hardtanh", "Hardtanh" }, { "torch.nn.functional.hardtanh", "Hardtanh" },
    { "sigmoid", "Sigmoid" }, { "torch.sigmoid", "Sigmoid" },
    { "torch.nn.functional.sigmoid", "Sigmoid" }, { "Tensor.sigmoid", "Sigmoid" },
    { "hardsigmoid", "Hardsigmoid" }, { "torch.nn.functional.hardsigmoid", "Hardsigmoid" },
    { "silu", "SiLU" }, { "torch.nn.functional.silu", "SiLU" },
    { "hardswish", "Hardswish" }, { "torch.nn.functional.hardswish", "Hardswish" },
    { "gelu", "GELU" }, { "torch.nn.functional.gelu", "GELU" },
    { "tanh", "Tanh" }, { "torch.tanh", "Tanh" },
    { "torch.nn.functional.tanh", "Tanh" }, { "Tensor.tanh", "Tanh" },
    { "flatten", "Flatten" }, { "torch.flatten", "Flatten" }, { "Tensor.flatten", "Flatten" },
    { "dropout", "Dropout" }, { "torch.nn.functional.dropout", "Dropout" },
    { "adaptive_avg_pool2d", "AdaptiveAvgPool2d" },
    { "torch.nn.functional.adaptive_avg_pool2d", "AdaptiveAvgPool2d" },
    { "adaptive_max_pool2d", "AdaptiveMaxPool2d" },
    { "max_pool2d", "MaxPool2d" }, { "torch.nn.functional.max_pool2d", "MaxPool2d" },
    { "avg_pool2d", "AvgPool2d" }, { "torch.nn.functional.avg_pool2d", "AvgPool2d" },
  };
  for (const auto &a : aliases) {
    Error err;
    const NnLayerType *t = nn_registry_lookup_type (reg.get (), a.first, err.out ());
    ASSERT_TRUE (t) << a.first << ": " << err.message ();
    EXPECT_STREQ (t->name, a.second) << a.first;
  }
}

TEST (LeafCalls, AliasModuleComputesLikeTheType)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make_module (reg.get (), "torch.relu", "{}", err, "relu");
  ASSERT_TRUE (m) << err.message ();
  EXPECT_STREQ (nn_module_get_type_name (m.get ()), "ReLU");
  NnShape s = shape ({ 2, 3 });
  Tensor x = ramp (s, -2.5f, 1.0f);
  Value a = args (x.get ());
  Value y (nn_module_call (m.get (), a.get (), nullptr, err.out ()));
  ASSERT_TRUE (tensor_of (y)) << err.message ();
  for (gint64 i = 0; i < 6; i++)
    EXPECT_EQ (nn_tensor_f32 (tensor_of (y))[i], std::max (-2.5f + (float) i, 0.0f));
}

TEST (LeafCalls, HardtanhBoundsFromTheCallOverrideTheConfig)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make_module (reg.get (), "hardtanh", "{}", err, "ht");
  ASSERT_TRUE (m) << err.message ();
  NnShape s = shape ({ 9 });
  Tensor x = ramp (s, -4.0f, 1.0f);
  // F.hardtanh(x, -2.0, 3.0): positional bounds.
  Value a = args (x.get (), { nn_value_new_float (-2.0), nn_value_new_float (3.0) });
  Value y (nn_module_call (m.get (), a.get (), nullptr, err.out ()));
  ASSERT_TRUE (tensor_of (y)) << err.message ();
  for (gint64 i = 0; i < 9; i++)
    EXPECT_EQ (nn_tensor_f32 (tensor_of (y))[i], std::min (std::max (-4.0f + i, -2.0f), 3.0f));
  // Keyword max_val only: min_val stays the config's -1.
  Value a2 = args (x.get ());
  Value kw = kwargs ({ { "max_val", nn_value_new_int (2) } });
  Value y2 (nn_module_call (m.get (), a2.get (), kw.get (), err.out ()));
  ASSERT_TRUE (tensor_of (y2)) << err.message ();
  for (gint64 i = 0; i < 9; i++)
    EXPECT_EQ (nn_tensor_f32 (tensor_of (y2))[i], std::min (std::max (-4.0f + i, -1.0f), 2.0f));
  // An empty range is refused, in forward and in inference alike.
  Value bad = args (x.get (), { nn_value_new_float (1.0), nn_value_new_float (0.5) });
  Value y3 (nn_module_call (m.get (), bad.get (), nullptr, err.out ()));
  EXPECT_FALSE (y3);
  EXPECT_TRUE (contains (err.message (), "max_val")) << err.message ();
  Value y4 (nn_module_infer (m.get (), bad.get (), nullptr, err.out ()));
  EXPECT_FALSE (y4);
  EXPECT_TRUE (contains (err.message (), "max_val")) << err.message ();
}

TEST (LeafCalls, FlattenDimsFromTheCall)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make_module (reg.get (), "torch.flatten", "{}", err, "flatten");
  ASSERT_TRUE (m) << err.message ();
  NnShape s = shape ({ 2, 3, 4, 5 });
  Tensor x = ramp (s, 0.0f, 1.0f);
  struct { std::vector<NnValue *> extra; NnShape want; } cases[] = {
    { {}, shape ({ 2, 60 }) },                                  // config: nn.Flatten's 1
    { { nn_value_new_int (0) }, shape ({ 120 }) },              // torch.flatten(x, 0)
    { { nn_value_new_int (1), nn_value_new_int (2) }, shape ({ 2, 12, 5 }) },
    { { nn_value_new_int (-2) }, shape ({ 2, 3, 20 }) },
  };
  for (auto &c : cases) {
    Value a (nn_value_new_tuple ());
    nn_value_append (a.get (), nn_value_new_tensor (x.get ()));
    for (NnValue *v : c.extra)
      nn_value_append (a.get (), v);
    Value y (nn_module_call (m.get (), a.get (), nullptr, err.out ()));
    ASSERT_TRUE (tensor_of (y)) << err.message ();
    EXPECT_EQ (shape_text (tensor_of (y)->shape), shape_text (c.want));
    Value inf (nn_module_infer (m.get (), a.get (), nullptr, err.out ()));
    ASSERT_TRUE (tensor_of (inf)) << err.message ();
    EXPECT_TRUE (nn_tensor_is_meta (tensor_of (inf)));
    EXPECT_EQ (shape_text (tensor_of (inf)->shape), shape_text (c.want));
  }
  // Flatten moves no data, so integer token ids pass too.
  Tensor ids (nn_tensor_new (NN_DTYPE_I64, &s));
  Value a = args (ids.get ());
  Value y (nn_module_call (m.get (), a.get (), nullptr, err.out ()));
  ASSERT_TRUE (tensor_of (y)) << err.message ();
  EXPECT_EQ (tensor_of (y)->dtype, NN_DTYPE_I64);
  // A dim out of range names the argument and the input.
  Value bad = args (x.get (), { nn_value_new_int (4) });
  Value y2 (nn_module_call (m.get (), bad.get (), nullptr, err.out ()));
  EXPECT_FALSE (y2);
  EXPECT_TRUE (contains (err.message (), "start_dim 4 is out of range for input [2, 3, 4, 5]"))
      << err.message ();
}

TEST (LeafCalls, SoftmaxDimFromTheCall)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make_module (reg.get (), "Softmax", "{\"dim\": 0}", err, "sm");
  ASSERT_TRUE (m) << err.message ();
  NnShape s = shape ({ 2, 3 });
  Tensor x = ramp (s, 0.0f, 0.5f);
  Value a = args (x.get (), { nn_value_new_int (-1) });
  Value y (nn_module_call (m.get (), a.get (), nullptr, err.out ()));
  ASSERT_TRUE (tensor_of (y)) << err.message ();
  const float *v = nn_tensor_f32 (tensor_of (y));
  for (int r = 0; r < 2; r++) {
    double sum = 0;
    for (int c = 0; c < 3; c++)
      sum += std::exp (0.5 * (r * 3 + c));
    for (int c = 0; c < 3; c++)
      EXPECT_NEAR (v[r * 3 + c], std::exp (0.5 * (r * 3 + c)) / sum, 1e-6);
  }
  Value kw = kwargs ({ { "dtype", nn_value_new_string ("torch.float64") } });
  Value a2 = args (x.get ());
  Value y2 (nn_module_call (m.get (), a2.get (), kw.get (), err.out ()));
  EXPECT_FALSE (y2);
  EXPECT_TRUE (contains (err.message (), "argument 'dtype' must be None or torch.float32, found torch.float64"))
      << err.message ();
}

TEST (LeafCalls, GeluApproximationFromTheCall)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make_module (reg.get (), "gelu", "{}", err, "gelu");
  ASSERT_TRUE (m) << err.message ();
  NnShape s = shape ({ 5 });
  Tensor x = ramp (s, -2.0f, 1.0f);
  Value kw = kwargs ({ { "approximate", nn_value_new_string ("tanh") } });
  Value a = args (x.get ());
  Value y (nn_module_call (m.get (), a.get (), kw.get (), err.out ()));
  ASSERT_TRUE (tensor_of (y)) << err.message ();
  for (int i = 0; i < 5; i++) {
    double v = -2.0 + i;
    double want = 0.5 * v * (1 + std::tanh (std::sqrt (2 / M_PI) * (v + 0.044715 * v * v * v)));
    EXPECT_NEAR (nn_tensor_f32 (tensor_of (y))[i], want, 1e-5);
  }
  Value kw2 = kwargs ({ { "approximate", nn_value_new_string ("fast") } });
  Value y2 (nn_module_call (m.get (), a.get (), kw2.get (), err.out ()));
  EXPECT_FALSE (y2);
  EXPECT_TRUE (contains (err.message (), "argument 'approximate' must be 'none' or 'tanh', found 'fast'"))
      << err.message ();
}

TEST (LeafCalls, UnknownArgumentIsRefusedByName)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make_module (reg.get (), "ReLU", "{}", err, "act");
  ASSERT_TRUE (m) << err.message ();
  NnShape s = shape ({ 2 });
  Tensor x = ramp (s, 0.0f, 1.0f);
  Value a = args (x.get ());
  Value kw = kwargs ({ { "slope", nn_value_new_float (0.1) } });
  Value y (nn_module_call (m.get (), a.get (), kw.get (), err.out ()));
  EXPECT_FALSE (y);
  EXPECT_TRUE (err.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_ARGUMENTS)) << err.message ();
  EXPECT_TRUE (contains (err.message (), "slope")) << err.message ();
}

TEST (LeafCalls, InferMatchesForwardOnMetaTensors)
{
  Registry reg = default_registry ();
  struct { const char *type; const char *cfg; NnShape in; } cases[] = {
    { "Conv2d", "{\"in_channels\": 3, \"out_channels\": 8, \"kernel_size\": 3, \"stride\": 2}", shape ({ 2, 3, 9, 9 }) },
    { "Linear", "{\"in_features\": 6, \"out_features\": 4}", shape ({ 3, 5, 6 }) },
    { "BatchNorm2d", "{\"num_features\": 3}", shape ({ 2, 3, 4, 4 }) },
    { "MaxPool2d", "{\"kernel_size\": 3, \"stride\": 2, \"ceil_mode\": true}", shape ({ 1, 2, 8, 8 }) },
    { "AvgPool2d", "{\"kernel_size\": 2}", shape ({ 2, 7, 7 }) },
    { "AdaptiveAvgPool2d", "{\"output_size\": [3, 2]}", shape ({ 1, 4, 9, 5 }) },
    { "Softmax", "{\"dim\": 1}", shape ({ 2, 3, 4 }) },
    { "Flatten", "{}", shape ({ 2, 3, 4 }) },
    { "Hardswish", "{}", shape ({ 2, 3 }) },
    { "Dropout", "{}", shape ({ 2, 3 }) },
  };
  for (auto &c : cases) {
    Error err;
    Module m = make_module (reg.get (), c.type, c.cfg, err, "m");
    ASSERT_TRUE (m) << c.type << ": " << err.message ();
    Tensor meta (nn_tensor_new_meta (NN_DTYPE_F32, &c.in));
    Value ma = args (meta.get ());
    Value inferred (nn_module_infer (m.get (), ma.get (), nullptr, err.out ()));
    ASSERT_TRUE (tensor_of (inferred)) << c.type << ": " << err.message ();
    EXPECT_TRUE (nn_tensor_is_meta (tensor_of (inferred))) << c.type;
    Tensor x = ramp (c.in, -1.0f, 0.01f);
    Value a = args (x.get ());
    Value y (nn_module_call (m.get (), a.get (), nullptr, err.out ()));
    ASSERT_TRUE (tensor_of (y)) << c.type << ": " << err.message ();
    EXPECT_EQ (shape_text (tensor_of (inferred)->shape), shape_text (tensor_of (y)->shape)) << c.type;
    EXPECT_EQ (tensor_of (inferred)->dtype, tensor_of (y)->dtype) << c.type;
  }
}

TEST (LeafCalls, IdentitiesPassAnyDtypeAndIdentityAnyValue)
{
  Registry reg = default_registry ();
  NnShape s = shape ({ 2, 2 });
  Tensor ids (nn_tensor_new (NN_DTYPE_I64, &s));
  Tensor mask (nn_tensor_new (NN_DTYPE_BOOL, &s));
  for (const char *type : { "Identity", "Dropout", "StochasticDepth" }) {
    Error err;
    Module m = make_module (reg.get (), type,
                            g_str_equal (type, "StochasticDepth") ? "{\"p\": 0.2, \"mode\": \"row\"}" : "{}",
                            err, "m");
    ASSERT_TRUE (m) << type << ": " << err.message ();
    for (NnTensor *t : { ids.get (), mask.get () }) {
      Value a = args (t);
      Value y (nn_module_call (m.get (), a.get (), nullptr, err.out ()));
      ASSERT_TRUE (tensor_of (y)) << type << ": " << err.message ();
      EXPECT_EQ (tensor_of (y), t) << type << ": the identity shares its input";
    }
  }
  // nn.Identity returns whatever it is given: a tuple stays that tuple.
  Error err;
  Module id = make_module (reg.get (), "Identity", "{}", err, "id");
  Value tup (nn_value_new_tuple ());
  nn_value_append (tup.get (), nn_value_new_tensor (ids.get ()));
  nn_value_append (tup.get (), nn_value_new_int (7));
  Value a (nn_value_new_tuple ());
  nn_value_append (a.get (), nn_value_ref (tup.get ()));
  Value y (nn_module_call (id.get (), a.get (), nullptr, err.out ()));
  ASSERT_TRUE (y) << err.message ();
  EXPECT_EQ (take (nn_value_to_string (y.get ())), take (nn_value_to_string (tup.get ())));
}

TEST (LeafCalls, DropoutTrainingDropsAndScales)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make_module (reg.get (), "torch.nn.functional.dropout", "{}", err, "drop");
  ASSERT_TRUE (m) << err.message ();
  NnShape s = shape ({ 64 });
  Tensor x = ramp (s, 1.0f, 1.0f);
  // F.dropout(x, 0.1, False) is the identity ...
  Value a = args (x.get (), { nn_value_new_float (0.1), nn_value_new_bool (FALSE) });
  Value y (nn_module_call (m.get (), a.get (), nullptr, err.out ()));
  ASSERT_TRUE (tensor_of (y)) << err.message ();
  EXPECT_EQ (tensor_of (y), x.get ());
  // ... F.dropout(x, training=True) (p=0.5) zeroes some elements and
  // doubles the others.
  Value a2 = args (x.get ());
  Value kw = kwargs ({ { "training", nn_value_new_bool (TRUE) } });
  Value y2 (nn_module_call (m.get (), a2.get (), kw.get (), err.out ()));
  ASSERT_TRUE (tensor_of (y2)) << err.message ();
  const float *xd = nn_tensor_f32 (x.get ()), *yd = nn_tensor_f32 (tensor_of (y2));
  int dropped = 0;
  for (int i = 0; i < 64; i++) {
    EXPECT_TRUE (yd[i] == 0.0f || yd[i] == 2.0f * xd[i]) << i;
    dropped += yd[i] == 0.0f;
  }
  EXPECT_GT (dropped, 0);
  EXPECT_LT (dropped, 64);
  Value a3 = args (x.get (), { nn_value_new_float (1.5) });
  Value y3 (nn_module_call (m.get (), a3.get (), nullptr, err.out ()));
  EXPECT_FALSE (y3);
  EXPECT_TRUE (contains (err.message (), "between 0 and 1, but got 1.5")) << err.message ();
}

TEST (LeafCalls, SignaturesAreDeclared)
{
  Registry reg = default_registry ();
  // Every leaf type names its parameters; dtypes are declared for tensors.
  for (const char *name : { "Conv2d", "Linear", "BatchNorm2d", "MaxPool2d", "AvgPool2d",
                            "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "ReLU", "ReLU6",
                            "Hardtanh", "Sigmoid", "Hardsigmoid", "SiLU", "Hardswish",
                            "GELU", "Tanh", "Softmax", "Dropout", "Flatten", "Identity",
                            "StochasticDepth" }) {
    Error err;
    const NnLayerType *t = nn_registry_lookup_type (reg.get (), name, err.out ());
    ASSERT_TRUE (t) << err.message ();
    ASSERT_NE (t->args, nullptr) << name;
    ASSERT_GE (t->n_args, 1u) << name;
    EXPECT_TRUE (t->args[0].kinds & NN_ARG_TENSOR) << name;
    EXPECT_NE (t->args[0].dtypes, 0u) << name;
    EXPECT_NE (t->infer, nullptr) << name;
    EXPECT_EQ (t->flags & NN_LAYER_OP, 0u) << name << " is a layer type, not an op";
  }
}
