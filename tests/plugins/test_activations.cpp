// The activations plugin: every type against its formula evaluated in
// double here, on inputs of several ranks; NaN handling; Softmax's dim
// rules (explicit, negative, PyTorch's implicit choice, out of range);
// config errors; reprs as PyTorch 1.13 prints them.
#include "nn-test.h"

#include <cmath>
#include <functional>
#include <string>
#include <vector>

using namespace nntest;

namespace {

Module make (NnRegistry *reg, const char *type, const std::string &json, Error &err,
             const char *path = "act")
{
  return make_module (reg, type, json, err, path);
}

// Values in [-8, 8], with the breakpoints of the piecewise types included.
Tensor input (const NnShape &s, unsigned seed)
{
  Tensor t (nn_tensor_new (NN_DTYPE_F32, &s));
  float *d = nn_tensor_f32 (t.get ());
  guint32 st = 2166136261u ^ seed;
  const float special[] = { -3.0f, 3.0f, 0.0f, -1.0f, 1.0f, 6.0f, -0.0f };
  for (gint64 i = 0; i < nn_tensor_numel (t.get ()); i++) {
    st = st * 1664525u + 1013904223u;
    d[i] = i < 7 ? special[i] : (float) ((st >> 8) & 0xffff) / 4096.0f - 8.0f;
  }
  return t;
}

double sigmoid (double x) { return 1.0 / (1.0 + std::exp (-x)); }
double relu6 (double x) { return std::min (std::max (x, 0.0), 6.0); }

struct Elementwise {
  const char *type;
  const char *cfg;
  std::function<double (double)> f;
};

std::vector<Elementwise> elementwise ()
{
  return {
    { "ReLU", "{}", [] (double x) { return std::max (x, 0.0); } },
    { "ReLU", "{\"inplace\": true}", [] (double x) { return std::max (x, 0.0); } },
    { "ReLU6", "{}", relu6 },
    { "Hardtanh", "{}", [] (double x) { return std::min (std::max (x, -1.0), 1.0); } },
    { "Hardtanh", "{\"min_val\": -2.5, \"max_val\": 0.5}",
      [] (double x) { return std::min (std::max (x, -2.5), 0.5); } },
    { "Sigmoid", "{}", sigmoid },
    { "SiLU", "{}", [] (double x) { return x * sigmoid (x); } },
    { "Hardsigmoid", "{}", [] (double x) { return relu6 (x + 3) / 6; } },
    { "Hardswish", "{}", [] (double x) { return x * relu6 (x + 3) / 6; } },
    { "GELU", "{}", [] (double x) { return 0.5 * x * (1 + std::erf (x / std::sqrt (2.0))); } },
    { "GELU", "{\"approximate\": \"tanh\"}",
      [] (double x) { return 0.5 * x * (1 + std::tanh (std::sqrt (2 / M_PI) * (x + 0.044715 * x * x * x))); } },
    { "Tanh", "{}", [] (double x) { return std::tanh (x); } },
  };
}

}  // namespace

TEST (Activations, ElementwiseTypesMatchTheirFormulas)
{
  Registry reg = default_registry ();
  for (const auto &c : elementwise ())
    for (NnShape s : { shape ({ 2, 3, 5, 7 }), shape ({ 10, 33 }), shape ({ 1000 }), shape ({ 3, 4, 5 }) }) {
      Error err;
      Module m = make (reg.get (), c.type, c.cfg, err);
      ASSERT_TRUE (m) << c.type << c.cfg << ": " << err.message ();
      Tensor x = input (s, s.ndim);
      NnShape inferred;
      ASSERT_TRUE (nn_module_infer_shape (m.get (), &s, &inferred, err.out ())) << err.message ();
      EXPECT_TRUE (nn_shape_equal (&inferred, &s));
      Tensor y (nn_module_forward (m.get (), x.get (), err.out ()));
      ASSERT_TRUE (y) << err.message ();
      ASSERT_TRUE (nn_shape_equal (&y->shape, &s));
      EXPECT_NE (y->data, x->data) << "a new tensor, whatever inplace says";
      for (gint64 i = 0; i < nn_tensor_numel (x.get ()); i++) {
        double xi = nn_tensor_f32 (x.get ())[i], want = c.f (xi);
        ASSERT_NEAR (nn_tensor_f32 (y.get ())[i], want, 2e-6 * std::max (1.0, std::fabs (want)))
            << c.type << c.cfg << " at x=" << xi;
      }
    }
}

TEST (Activations, ClampsKeepNaN)
{
  Registry reg = default_registry ();
  for (const char *type : { "ReLU", "ReLU6", "Hardtanh", "Hardsigmoid", "Hardswish", "Sigmoid", "GELU" }) {
    Error err;
    Module m = make (reg.get (), type, "{}", err);
    ASSERT_TRUE (m) << err.message ();
    NnShape s = shape ({ 3 });
    Tensor x (nn_tensor_new (NN_DTYPE_F32, &s));
    nn_tensor_f32 (x.get ())[1] = NAN;
    Tensor y (nn_module_forward (m.get (), x.get (), err.out ()));
    ASSERT_TRUE (y) << err.message ();
    EXPECT_TRUE (std::isnan (nn_tensor_f32 (y.get ())[1])) << type;
    EXPECT_FALSE (std::isnan (nn_tensor_f32 (y.get ())[0])) << type;
  }
}

TEST (Softmax, AlongEveryDimMatchesReference)
{
  Registry reg = default_registry ();
  NnShape s = shape ({ 2, 3, 4, 5 });
  Tensor x = input (s, 11);
  const float *xd = nn_tensor_f32 (x.get ());
  for (int dim = -4; dim < 4; dim++) {
    Error err;
    Module m = make (reg.get (), "Softmax", "{\"dim\": " + std::to_string (dim) + "}", err);
    ASSERT_TRUE (m) << err.message ();
    Tensor y (nn_module_forward (m.get (), x.get (), err.out ()));
    ASSERT_TRUE (y) << err.message ();
    int d = dim < 0 ? dim + 4 : dim;
    gint64 stride = 1;
    for (int i = d + 1; i < 4; i++)
      stride *= s.dims[i];
    for (gint64 i = 0; i < nn_tensor_numel (x.get ()); i++) {
      // i's position along d, and the first element of its slice.
      gint64 k = (i / stride) % s.dims[d], base = i - k * stride;
      double denom = 0;
      for (gint64 j = 0; j < s.dims[d]; j++)
        denom += std::exp ((double) xd[base + j * stride]);
      ASSERT_NEAR (nn_tensor_f32 (y.get ())[i], std::exp ((double) xd[i]) / denom, 1e-6)
          << "dim " << dim << " at " << i;
    }
  }
}

TEST (Softmax, ImplicitDimFollowsPyTorchsLegacyRule)
{
  // dim=None: 0 for 0-, 1- and 3-d input, else 1.  A row of equal values
  // along the chosen dim gives 1/extent; checking which extent shows the dim.
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "Softmax", "{}", err);
  ASSERT_TRUE (m) << err.message ();
  struct { NnShape s; gint64 extent; } cases[] = {
    { shape ({ 4 }), 4 }, { shape ({ 2, 5 }), 5 }, { shape ({ 3, 2, 7 }), 3 }, { shape ({ 2, 6, 3, 3 }), 6 },
  };
  for (auto &c : cases) {
    Tensor x (nn_tensor_new (NN_DTYPE_F32, &c.s));
    Tensor y (nn_module_forward (m.get (), x.get (), err.out ()));
    ASSERT_TRUE (y) << err.message ();
    for (gint64 i = 0; i < nn_tensor_numel (y.get ()); i++)
      ASSERT_FLOAT_EQ (nn_tensor_f32 (y.get ())[i], 1.0f / (float) c.extent)
          << take (nn_shape_to_string (&c.s));
  }
  NnShape scalar = {};
  Tensor x (nn_tensor_new (NN_DTYPE_F32, &scalar));
  nn_tensor_f32 (x.get ())[0] = 3.0f;
  Tensor y (nn_module_forward (m.get (), x.get (), err.out ()));
  ASSERT_TRUE (y) << err.message ();
  EXPECT_EQ (y->shape.ndim, 0u);
  EXPECT_FLOAT_EQ (nn_tensor_f32 (y.get ())[0], 1.0f);
}

TEST (Softmax, LargeValuesDoNotOverflow)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "Softmax", "{\"dim\": -1}", err);
  ASSERT_TRUE (m) << err.message ();
  NnShape s = shape ({ 1, 3 });
  Tensor x (nn_tensor_new (NN_DTYPE_F32, &s));
  float *xd = nn_tensor_f32 (x.get ());
  xd[0] = 1000.0f; xd[1] = 1000.0f; xd[2] = -1000.0f;
  Tensor y (nn_module_forward (m.get (), x.get (), err.out ()));
  ASSERT_TRUE (y) << err.message ();
  EXPECT_FLOAT_EQ (nn_tensor_f32 (y.get ())[0], 0.5f);
  EXPECT_FLOAT_EQ (nn_tensor_f32 (y.get ())[1], 0.5f);
  EXPECT_FLOAT_EQ (nn_tensor_f32 (y.get ())[2], 0.0f);
}

TEST (Softmax, DimOutOfRangeNamesPathAndShape)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "Softmax", "{\"dim\": 3}", err);
  ASSERT_TRUE (m) << err.message ();
  Module seq (nn_module_new_from_type (reg.get (), "Sequential", nullptr, "", err.out ()));
  ASSERT_TRUE (seq) << err.message ();
  ASSERT_TRUE (nn_module_add_child (seq.get (), "head", m.get (), err.out ())) << err.message ();
  NnShape s = shape ({ 2, 3 }), out;
  EXPECT_FALSE (nn_module_infer_shape (seq.get (), &s, &out, err.out ()));
  EXPECT_TRUE (err.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH));
  EXPECT_TRUE (contains (err.message (), "head: Softmax: dim 3 is out of range for input [2, 3] "
                                         "(expected a dim in [-2, 1])")) << err.message ();
  Tensor x (nn_tensor_new (NN_DTYPE_F32, &s));
  Tensor y (nn_module_forward (seq.get (), x.get (), err.out ()));
  EXPECT_FALSE (y);
  EXPECT_TRUE (contains (err.message (), "head: Softmax: dim 3 is out of range")) << err.message ();
}

TEST (Activations, NonFloatInputIsAnError)
{
  Registry reg = default_registry ();
  for (const char *type : { "ReLU", "GELU", "Softmax" }) {
    Error err;
    Module m = make (reg.get (), type, "{}", err);
    ASSERT_TRUE (m) << err.message ();
    NnShape s = shape ({ 2, 2 });
    Tensor x (nn_tensor_new (NN_DTYPE_I64, &s));
    Tensor y (nn_module_forward (m.get (), x.get (), err.out ()));
    EXPECT_FALSE (y);
    EXPECT_TRUE (err.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_ARGUMENTS)) << err.message ();
    EXPECT_TRUE (contains (err.message (), "argument 'input': expected dtype F32, found I64"))
        << err.message ();
  }
}

TEST (Activations, ReprsAsPyTorchPrintsThem)
{
  // print(module) from PyTorch 1.13 for the same constructor arguments.
  struct { const char *type, *cfg, *want; } cases[] = {
    { "ReLU", "{}", "ReLU()" },
    { "ReLU", "{\"inplace\": true}", "ReLU(inplace=True)" },
    { "ReLU6", "{\"inplace\": true}", "ReLU6(inplace=True)" },
    { "ReLU6", "{}", "ReLU6()" },
    { "Hardtanh", "{}", "Hardtanh(min_val=-1.0, max_val=1.0)" },
    { "Hardtanh", "{\"min_val\": -0.5, \"max_val\": 2.5, \"inplace\": true}",
      "Hardtanh(min_val=-0.5, max_val=2.5, inplace=True)" },
    { "SiLU", "{}", "SiLU()" },
    { "SiLU", "{\"inplace\": true}", "SiLU(inplace=True)" },
    { "Sigmoid", "{}", "Sigmoid()" },
    { "Hardsigmoid", "{\"inplace\": true}", "Hardsigmoid()" },
    { "Hardswish", "{\"inplace\": true}", "Hardswish()" },
    { "GELU", "{}", "GELU(approximate='none')" },
    { "GELU", "{\"approximate\": \"tanh\"}", "GELU(approximate='tanh')" },
    { "Tanh", "{}", "Tanh()" },
    { "Softmax", "{}", "Softmax(dim=None)" },
    { "Softmax", "{\"dim\": -1}", "Softmax(dim=-1)" },
    { "Softmax", "{\"dim\": 1}", "Softmax(dim=1)" },
  };
  Registry reg = default_registry ();
  for (auto &c : cases) {
    Error err;
    Module m = make (reg.get (), c.type, c.cfg, err);
    ASSERT_TRUE (m) << c.cfg << ": " << err.message ();
    EXPECT_EQ (take (nn_module_to_string (m.get ())), c.want);
    EXPECT_EQ (nn_module_n_parameters (m.get ()) + nn_module_n_buffers (m.get ()), 0u);
  }
}

TEST (Activations, ConfigErrors)
{
  struct { const char *type, *cfg, *want; int code; } cases[] = {
    { "Hardtanh", "{\"min_val\": 1.0, \"max_val\": 1.0}",
      "act: Hardtanh: key 'max_val' must be greater than min_val (1.0), found 1.0",
      NN_DESCRIPTOR_ERROR_OUT_OF_RANGE },
    { "GELU", "{\"approximate\": \"fast\"}", "key 'approximate' expects one of 'none', 'tanh'",
      NN_DESCRIPTOR_ERROR_WRONG_KIND },
    { "ReLU", "{\"inplace\": \"yes\"}", "key 'inplace' expects a bool", NN_DESCRIPTOR_ERROR_WRONG_KIND },
    { "ReLU", "{\"inplace\": true, \"negative_slope\": 0.1}", "unknown key 'negative_slope'",
      NN_DESCRIPTOR_ERROR_UNKNOWN_KEY },
    { "Sigmoid", "{\"inplace\": true}", "unknown key 'inplace' (Sigmoid takes no config keys)",
      NN_DESCRIPTOR_ERROR_UNKNOWN_KEY },
    { "Softmax", "{\"dim\": 1.5}", "key 'dim' expects an int or null", NN_DESCRIPTOR_ERROR_WRONG_KIND },
  };
  Registry reg = default_registry ();
  for (auto &c : cases) {
    Error err;
    Module m = make (reg.get (), c.type, c.cfg, err);
    EXPECT_FALSE (m) << c.cfg;
    EXPECT_TRUE (err.matches (NN_DESCRIPTOR_ERROR, c.code)) << c.cfg << ": " << err.message ();
    EXPECT_TRUE (contains (err.message (), c.want)) << c.cfg << ": " << err.message ();
  }
}

TEST (Activations, AllTypesRegisteredWithDocumentedSchemas)
{
  Registry reg = default_registry ();
  for (const char *type : { "ReLU", "ReLU6", "Hardtanh", "SiLU", "Sigmoid", "Hardsigmoid", "Hardswish",
                            "GELU", "Tanh", "Softmax" }) {
    Error err;
    const NnLayerType *t = nn_registry_lookup_type (reg.get (), type, err.out ());
    ASSERT_NE (t, nullptr) << err.message ();
    EXPECT_NE (t->doc, nullptr);
    for (guint i = 0; i < t->n_schema; i++)
      EXPECT_NE (t->schema[i].doc, nullptr) << type << "." << t->schema[i].name;
  }
}

// GELU declares its input as in-place: after a Linear whose result
// nothing else holds, the engine writes GELU's result into it (no
// allocation); both forms still match their formulas.
TEST (Activations, GeluWorksInPlaceOnADyingInput)
{
  // GELU a step of its own (fused, Linear's epilogue would compute it).
  UnfusedScope unfused;
  Registry reg = default_registry ();
  for (const char *form : { "none", "tanh" }) {
    std::string json = std::string (
      "{\"type\": \"Sequential\", \"children\": ["
      "{\"name\": \"0\", \"type\": \"Linear\", \"config\": {\"in_features\": 5, \"out_features\": 37}},"
      "{\"name\": \"1\", \"type\": \"GELU\", \"config\": {\"approximate\": \"") + form + "\"}}]}";
    Module m = load_json (reg.get (), json);
    ASSERT_TRUE (m) << form;
    nn_module_reset_parameters (m.get (), 7);
    NnShape s = shape ({ 3, 5 });
    Tensor x = input (s, 11);
    Error err;
    Tensor h (nn_module_forward (nn_module_lookup_path (m.get (), "0", nullptr), x.get (), err.out ()));
    ASSERT_TRUE (h) << err.message ();
    guint64 before = nn_engine_get_inplace_count ();
    Tensor y (nn_module_forward (m.get (), x.get (), err.out ()));
    ASSERT_TRUE (y) << err.message ();
    EXPECT_EQ (1u, nn_engine_get_inplace_count () - before) << form;
    ASSERT_EQ (nn_tensor_numel (y.get ()), nn_tensor_numel (h.get ()));
    for (gint64 i = 0; i < nn_tensor_numel (y.get ()); i++) {
      double v = nn_tensor_f32 (h.get ())[i];
      double want = g_str_equal (form, "none")
        ? 0.5 * v * (1 + std::erf (v / std::sqrt (2.0)))
        : 0.5 * v * (1 + std::tanh (std::sqrt (2 / M_PI) * (v + 0.044715 * v * v * v)));
      EXPECT_NEAR (nn_tensor_f32 (y.get ())[i], want, 2e-6 * std::max (1.0, std::fabs (want)))
          << form << " at " << i;
    }
  }
}

// RReLU: eval uses the fixed slope (lower + upper) / 2; training draws one
// slope per negative element from U(lower, upper) with the tape's
// generator (the same seed draws the same slopes), and the gradient is
// the slope each element got.
TEST (Activations, RReLUDrawsItsSlopesOnlyInTraining)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "RReLU", "{\"lower\": 0.1, \"upper\": 0.3}", err);
  ASSERT_TRUE (m) << err.message ();
  NnShape s = shape ({ 64 });
  Tensor x = input (s, 3);
  ValueRef args (nn_value_new_tuple ());
  nn_value_append (args.get (), nn_value_new_tensor (x.get ()));
  ValueRef out (nn_module_call (m.get (), args.get (), nullptr, err.out ()));
  ASSERT_TRUE (out) << err.message ();
  const float *xd = nn_tensor_f32 (x.get ());
  const float *yd = nn_tensor_f32 (nn_value_get_tensor (out.get ()));
  for (int i = 0; i < 64; i++)
    EXPECT_FLOAT_EQ (yd[i], xd[i] >= 0 ? xd[i] : xd[i] * 0.2f) << i;

  nn_module_train (m.get (), TRUE);
  std::vector<float> first;
  for (int run = 0; run < 2; run++) {
    NnTape *tape = nn_tape_new (42);
    nn_tape_watch (tape, x.get ());
    ValueRef y (nn_tape_call (tape, m.get (), args.get (), nullptr, err.out ()));
    ASSERT_TRUE (y) << err.message ();
    NnTensor *yt = nn_value_get_tensor (y.get ());
    const float *t = nn_tensor_f32 (yt);
    bool varied = false;
    for (int i = 0; i < 64; i++) {
      if (xd[i] >= 0) {
        EXPECT_EQ (t[i], xd[i]);
        continue;
      }
      double a = t[i] / xd[i];
      EXPECT_GE (a, 0.1 - 1e-6) << i;
      EXPECT_LE (a, 0.3 + 1e-6) << i;
      varied = varied || std::fabs (a - 0.2) > 1e-3;
    }
    EXPECT_TRUE (varied);
    if (run == 0)
      first.assign (t, t + 64);
    else
      EXPECT_EQ (std::vector<float> (t, t + 64), first);
    Tensor ones (nn_tensor_new (NN_DTYPE_F32, &s));
    for (int i = 0; i < 64; i++)
      nn_tensor_f32 (ones.get ())[i] = 1.0f;
    ASSERT_TRUE (nn_backward (tape, yt, ones.get (), err.out ())) << err.message ();
    NnTensor *g = nn_tape_grad (tape, x.get ());
    ASSERT_NE (g, nullptr);
    for (int i = 0; i < 64; i++) {
      if (xd[i] != 0) {
        EXPECT_NEAR (nn_tensor_f32 (g)[i], xd[i] > 0 ? 1.0 : t[i] / xd[i], 1e-5) << i;
      }
    }
    nn_tape_free (tape);
  }
}

TEST (Softmax, Softmax2dTakesThreeOrFourDims)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "Softmax2d", "{}", err);
  ASSERT_TRUE (m) << err.message ();
  NnShape s = shape ({ 2, 6 });
  Tensor x = input (s, 5);
  ValueRef args (nn_value_new_tuple ());
  nn_value_append (args.get (), nn_value_new_tensor (x.get ()));
  ValueRef out (nn_module_call (m.get (), args.get (), nullptr, err.out ()));
  EXPECT_FALSE (out);
  EXPECT_TRUE (err.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH)) << err.message ();
  EXPECT_TRUE (contains (err.message (), "Softmax2d: Softmax2d requires a 3D or 4D tensor "
                         "as input, found [2, 6]")) << err.message ();
}
