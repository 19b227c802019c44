// The conv plugin's Conv2d: forward against a naive direct convolution
// written here, shape inference, config and shape errors, PyTorch's repr
// text, reset_parameters and torchinfo's Mult-Adds.
#include "nn-test.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <thread>
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


// Owns a JsonObject parsed from text.
struct Config {
  JsonNode *node = nullptr;
  explicit Config (const std::string &json)
  {
    GError *e = nullptr;
    node = json_from_string (json.c_str (), &e);
    EXPECT_EQ (e, nullptr) << (e ? e->message : "");
    if (e) g_error_free (e);
  }
  ~Config () { if (node) json_node_unref (node); }
  JsonObject *obj () const { return node ? json_node_get_object (node) : nullptr; }
};

Module make (NnRegistry *reg, const char *type, const std::string &json,
             Error &err, const char *path = "conv")
{
  Config c (json);
  return Module (nn_module_new_from_type (reg, type, c.obj (), path, err.out ()));
}

// Deterministic, sign-varying values that differ per element and per seed.
void fill (float *d, gint64 n, unsigned seed)
{
  guint32 s = 2166136261u ^ seed;
  for (gint64 i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    d[i] = (float) ((s >> 8) & 0xffff) / 32768.0f - 1.0f;
  }
}

Tensor make_input (const NnShape &s, unsigned seed)
{
  Tensor t (nn_tensor_new (NN_DTYPE_F32, &s));
  fill (nn_tensor_f32 (t.get ()), nn_tensor_numel (t.get ()), seed);
  return t;
}

void fill_params (NnModule *m, unsigned seed)
{
  for (guint i = 0; i < nn_module_n_parameters (m); i++) {
    NnTensor *t = nn_module_parameter_at (m, i, nullptr);
    fill (nn_tensor_f32 (t), nn_tensor_numel (t), seed + 17 * i);
  }
}

// One Conv2d configuration and the input it runs on.
struct Case {
  const char *name;
  int in, out, kh, kw, sh, sw;
  int ph, pw;            // ignored when pad_str is set
  const char *pad_str;   // "same" / "valid" / nullptr
  int dh, dw, groups;
  bool bias;
  const char *mode;      // padding_mode
  int n, h, w;
  bool unbatched;
};

std::string config_json (const Case &c)
{
  std::string pad = c.pad_str ? std::string ("\"") + c.pad_str + "\""
                              : "[" + std::to_string (c.ph) + ", " + std::to_string (c.pw) + "]";
  return "{\"in_channels\": " + std::to_string (c.in) +
         ", \"out_channels\": " + std::to_string (c.out) +
         ", \"kernel_size\": [" + std::to_string (c.kh) + ", " + std::to_string (c.kw) + "]" +
         ", \"stride\": [" + std::to_string (c.sh) + ", " + std::to_string (c.sw) + "]" +
         ", \"padding\": " + pad +
         ", \"dilation\": [" + std::to_string (c.dh) + ", " + std::to_string (c.dw) + "]" +
         ", \"groups\": " + std::to_string (c.groups) +
         ", \"bias\": " + (c.bias ? "true" : "false") +
         ", \"padding_mode\": \"" + c.mode + "\"}";
}

// gtest prints a failing case by its config rather than its bytes.
void PrintTo (const Case &c, std::ostream *os)
{
  *os << c.name << " " << config_json (c) << " on [" << c.n << ", " << c.in << ", "
      << c.h << ", " << c.w << "]" << (c.unbatched ? " unbatched" : "");
}

// Source index of padded position i on an axis of extent n, or -1 for a
// zero.  Written from PyTorch's definitions of F.pad's modes.
int src_index (int i, int n, const std::string &mode)
{
  if (i >= 0 && i < n) return i;
  if (mode == "zeros") return -1;
  if (mode == "replicate") return i < 0 ? 0 : n - 1;
  if (mode == "circular") return ((i % n) + n) % n;
  // reflect: mirror about the edge element, which is not repeated
  return i < 0 ? -i : 2 * (n - 1) - i;
}

// The naive definition: out[n][o][y][x] = b[o] + sum over the group's input
// channels and every kernel tap.
std::vector<float> reference (const Case &c, const float *x, const float *w,
                              const float *b, int &ho, int &wo)
{
  int pt, pb, pl, pr;
  if (c.pad_str && std::string (c.pad_str) == "same") {
    int th = c.dh * (c.kh - 1), tw = c.dw * (c.kw - 1);
    pt = th / 2; pb = th - pt; pl = tw / 2; pr = tw - pl;
  } else if (c.pad_str) {
    pt = pb = pl = pr = 0;
  } else {
    pt = pb = c.ph; pl = pr = c.pw;
  }
  ho = (c.h + pt + pb - c.dh * (c.kh - 1) - 1) / c.sh + 1;
  wo = (c.w + pl + pr - c.dw * (c.kw - 1) - 1) / c.sw + 1;
  int cin = c.in / c.groups, cout = c.out / c.groups;
  std::vector<float> y ((size_t) c.n * c.out * ho * wo);
  for (int n = 0; n < c.n; n++)
    for (int o = 0; o < c.out; o++) {
      int g = o / cout;
      for (int oy = 0; oy < ho; oy++)
        for (int ox = 0; ox < wo; ox++) {
          double acc = b ? b[o] : 0.0;
          for (int ci = 0; ci < cin; ci++)
            for (int ki = 0; ki < c.kh; ki++)
              for (int kj = 0; kj < c.kw; kj++) {
                int iy = src_index (oy * c.sh + ki * c.dh - pt, c.h, c.mode);
                int ix = src_index (ox * c.sw + kj * c.dw - pl, c.w, c.mode);
                if (iy < 0 || ix < 0) continue;
                double xv = x[(((size_t) n * c.in + g * cin + ci) * c.h + iy) * c.w + ix];
                double wv = w[(((size_t) o * cin + ci) * c.kh + ki) * c.kw + kj];
                acc += xv * wv;
              }
          y[(((size_t) n * c.out + o) * ho + oy) * wo + ox] = (float) acc;
        }
    }
  return y;
}

class ConvForward : public ::testing::TestWithParam<Case> {};

TEST_P (ConvForward, MatchesNaiveReferenceAndInferredShape)
{
  const Case &c = GetParam ();
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "Conv2d", config_json (c), err);
  ASSERT_TRUE (m) << err.message ();
  fill_params (m.get (), 7);

  NnShape in_shape = c.unbatched ? shape ({ c.in, c.h, c.w }) : shape ({ c.n, c.in, c.h, c.w });
  Tensor x = make_input (in_shape, 3);
  NnShape inferred;
  ASSERT_TRUE (nn_module_infer_shape (m.get (), &in_shape, &inferred, err.out ())) << err.message ();
  Tensor y (nn_module_forward (m.get (), x.get (), err.out ()));
  ASSERT_TRUE (y) << err.message ();

  NnTensor *wt = nn_module_get_parameter (m.get (), "weight");
  NnTensor *bt = nn_module_get_parameter (m.get (), "bias");
  ASSERT_EQ (bt != nullptr, c.bias);
  int ho, wo;
  std::vector<float> ref = reference (c, nn_tensor_f32 (x.get ()), nn_tensor_f32 (wt),
                                      bt ? nn_tensor_f32 (bt) : nullptr, ho, wo);

  NnShape want = c.unbatched ? shape ({ c.out, ho, wo }) : shape ({ c.n, c.out, ho, wo });
  EXPECT_TRUE (nn_shape_equal (&y->shape, &want))
    << take (nn_shape_to_string (&y->shape)) << " vs " << take (nn_shape_to_string (&want));
  EXPECT_TRUE (nn_shape_equal (&inferred, &y->shape))
    << take (nn_shape_to_string (&inferred)) << " vs " << take (nn_shape_to_string (&y->shape));
  ASSERT_EQ ((size_t) nn_tensor_numel (y.get ()), ref.size ());

  float maxref = 0, maxdiff = 0;
  const float *got = nn_tensor_f32 (y.get ());
  for (size_t i = 0; i < ref.size (); i++) {
    maxref = std::max (maxref, std::fabs (ref[i]));
    maxdiff = std::max (maxdiff, std::fabs (ref[i] - got[i]));
  }
  EXPECT_LE (maxdiff, 1e-4f * std::max (1.0f, maxref)) << "max |ref| " << maxref;
}

const Case kCases[] = {
  // name, in, out, kh, kw, sh, sw, ph, pw, pad_str, dh, dw, groups, bias, mode, n, h, w, unbatched
  { "basic3x3", 3, 8, 3, 3, 1, 1, 1, 1, nullptr, 1, 1, 1, true, "zeros", 1, 9, 9, false },
  { "stride2_batch3", 3, 8, 3, 3, 2, 2, 1, 1, nullptr, 1, 1, 1, true, "zeros", 3, 10, 11, false },
  { "nonsquare", 4, 6, 3, 5, 1, 2, 1, 2, nullptr, 1, 1, 1, true, "zeros", 1, 8, 13, false },
  { "dilation2", 8, 8, 3, 3, 1, 1, 2, 2, nullptr, 2, 2, 1, true, "zeros", 2, 12, 12, false },
  { "dilation_nonsquare", 5, 7, 2, 3, 2, 1, 0, 3, nullptr, 3, 2, 1, false, "zeros", 1, 11, 9, false },
  { "groups4_nobias", 8, 16, 3, 3, 1, 1, 1, 1, nullptr, 1, 1, 4, false, "zeros", 3, 7, 7, false },
  { "depthwise", 8, 8, 3, 3, 1, 1, 1, 1, nullptr, 1, 1, 8, true, "zeros", 1, 14, 14, false },
  { "depthwise_stride2_batch3", 16, 16, 3, 3, 2, 2, 1, 1, nullptr, 1, 1, 16, true, "zeros", 3, 15, 16, false },
  // Big enough that the depthwise kernel splits channels over the test's
  // NN_NUM_THREADS=2 threads.
  { "depthwise_threaded", 32, 32, 3, 3, 1, 1, 1, 1, nullptr, 1, 1, 32, true, "zeros", 2, 64, 64, false },
  { "depthwise_threaded_generic", 24, 48, 5, 5, 1, 1, 2, 2, nullptr, 1, 1, 24, false, "zeros", 1, 48, 48, false },
  { "depthwise_multiplier", 4, 12, 3, 3, 1, 1, 1, 1, nullptr, 1, 1, 4, true, "zeros", 2, 6, 7, false },
  { "depthwise_5x5_dilated_nobias", 6, 6, 5, 5, 1, 1, 4, 4, nullptr, 2, 2, 6, false, "zeros", 1, 9, 10, false },
  { "depthwise_3x3_dilated", 6, 6, 3, 3, 1, 1, 2, 2, nullptr, 2, 2, 6, true, "zeros", 1, 9, 10, false },
  { "depthwise_3x3_no_interior", 3, 3, 3, 3, 1, 2, 1, 1, nullptr, 1, 1, 3, true, "zeros", 1, 2, 2, false },
  { "depthwise_3x3_unpadded_s2", 4, 8, 3, 3, 2, 2, 0, 0, nullptr, 1, 1, 4, false, "zeros", 2, 9, 9, false },
  { "depthwise_stride3", 5, 5, 3, 2, 3, 3, 0, 1, nullptr, 1, 1, 5, true, "zeros", 2, 13, 11, false },
  { "pointwise_batch3", 16, 24, 1, 1, 1, 1, 0, 0, nullptr, 1, 1, 1, true, "zeros", 3, 7, 5, false },
  { "pointwise_stride2", 8, 16, 1, 1, 2, 2, 0, 0, nullptr, 1, 1, 1, false, "zeros", 2, 9, 8, false },
  { "pointwise_groups2", 8, 6, 1, 1, 1, 1, 0, 0, nullptr, 1, 1, 2, true, "zeros", 1, 5, 5, false },
  { "pointwise_padded", 3, 4, 1, 1, 1, 1, 1, 2, nullptr, 1, 1, 1, true, "zeros", 1, 4, 4, false },
  { "same_odd", 4, 5, 3, 3, 1, 1, 0, 0, "same", 1, 1, 1, true, "zeros", 1, 8, 9, false },
  { "same_even_kernel", 4, 5, 4, 2, 1, 1, 0, 0, "same", 1, 1, 1, true, "zeros", 2, 7, 6, false },
  { "same_dilated", 3, 3, 3, 4, 1, 1, 0, 0, "same", 2, 3, 1, false, "zeros", 1, 10, 12, false },
  { "same_depthwise", 6, 6, 4, 4, 1, 1, 0, 0, "same", 1, 1, 6, true, "zeros", 1, 9, 9, false },
  { "valid", 3, 4, 3, 3, 1, 1, 0, 0, "valid", 1, 1, 1, true, "zeros", 1, 6, 7, false },
  { "valid_stride2", 3, 4, 3, 3, 2, 2, 0, 0, "valid", 1, 1, 1, true, "zeros", 2, 9, 8, false },
  { "resnet_stem", 3, 8, 7, 7, 2, 2, 3, 3, nullptr, 1, 1, 1, false, "zeros", 1, 32, 30, false },
  { "kernel_larger_than_input", 2, 3, 5, 5, 1, 1, 2, 2, nullptr, 1, 1, 1, true, "zeros", 1, 3, 3, false },
  { "reflect", 3, 4, 3, 3, 1, 1, 1, 2, nullptr, 1, 1, 1, true, "reflect", 2, 6, 7, false },
  { "replicate", 3, 4, 3, 5, 2, 1, 2, 1, nullptr, 1, 1, 1, true, "replicate", 1, 6, 7, false },
  { "circular", 4, 4, 3, 3, 1, 1, 2, 3, nullptr, 1, 1, 2, true, "circular", 1, 5, 4, false },
  { "reflect_same_depthwise", 4, 4, 4, 3, 1, 1, 0, 0, "same", 1, 1, 4, true, "reflect", 1, 6, 6, false },
  { "circular_pointwise", 3, 5, 1, 1, 1, 1, 1, 1, nullptr, 1, 1, 1, false, "circular", 1, 4, 3, false },
  { "unbatched", 3, 5, 3, 3, 1, 1, 1, 1, nullptr, 1, 1, 1, true, "zeros", 1, 6, 5, true },
  { "unbatched_depthwise", 4, 4, 3, 3, 2, 2, 1, 1, nullptr, 1, 1, 4, true, "zeros", 1, 7, 7, true },
  { "empty_batch", 3, 4, 3, 3, 1, 1, 1, 1, nullptr, 1, 1, 1, true, "zeros", 0, 5, 5, false },
  { "empty_batch_depthwise", 4, 4, 3, 3, 1, 1, 1, 1, nullptr, 1, 1, 4, true, "zeros", 0, 5, 5, false },
  { "one_by_one_image", 3, 4, 3, 3, 1, 1, 1, 1, nullptr, 1, 1, 1, true, "zeros", 2, 1, 1, false },
};

INSTANTIATE_TEST_SUITE_P (Configs, ConvForward, ::testing::ValuesIn (kCases),
                          [] (const ::testing::TestParamInfo<Case> &i) { return std::string (i.param.name); });

TEST (Conv2d, ParametersHavePyTorchNamesAndShapes)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "Conv2d",
                   "{\"in_channels\": 32, \"out_channels\": 64, \"kernel_size\": [3, 5], \"groups\": 4}", err);
  ASSERT_TRUE (m) << err.message ();
  ASSERT_EQ (nn_module_n_parameters (m.get ()), 2u);
  const char *name = nullptr;
  NnTensor *w = nn_module_parameter_at (m.get (), 0, &name);
  EXPECT_STREQ (name, "weight");
  NnShape ws = shape ({ 64, 8, 3, 5 });
  EXPECT_TRUE (nn_shape_equal (&w->shape, &ws)) << take (nn_shape_to_string (&w->shape));
  NnTensor *b = nn_module_parameter_at (m.get (), 1, &name);
  EXPECT_STREQ (name, "bias");
  NnShape bs = shape ({ 64 });
  EXPECT_TRUE (nn_shape_equal (&b->shape, &bs));
  EXPECT_EQ (w->dtype, NN_DTYPE_F32);
  EXPECT_EQ (nn_module_n_buffers (m.get ()), 0u);

  Module nb = make (reg.get (), "Conv2d",
                    "{\"in_channels\": 3, \"out_channels\": 4, \"kernel_size\": 1, \"bias\": false}", err);
  ASSERT_TRUE (nb) << err.message ();
  EXPECT_EQ (nn_module_n_parameters (nb.get ()), 1u);
  EXPECT_EQ (nn_module_get_parameter (nb.get (), "bias"), nullptr);
}

TEST (Conv2d, IntsExpandToPairsInTheStoredConfig)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "Conv2d",
                   "{\"in_channels\": 3, \"out_channels\": 4, \"kernel_size\": 3, \"stride\": 2, \"padding\": 1}", err);
  ASSERT_TRUE (m) << err.message ();
  gint64 k[2] = { 0, 0 };
  ASSERT_TRUE (nn_module_config_ints (m.get (), "kernel_size", k, 2));
  EXPECT_EQ (k[0], 3);
  EXPECT_EQ (k[1], 3);
  NnShape in = shape ({ 1, 3, 10, 10 }), out;
  ASSERT_TRUE (nn_module_infer_shape (m.get (), &in, &out, err.out ())) << err.message ();
  NnShape want = shape ({ 1, 4, 5, 5 });
  EXPECT_TRUE (nn_shape_equal (&out, &want)) << take (nn_shape_to_string (&out));
}

// Expected strings are PyTorch 1.13's print(nn.Conv2d(...)) output for the
// same arguments.
TEST (Conv2d, ReprIsPyTorchText)
{
  Registry reg = default_registry ();
  struct { const char *json, *torch; } cases[] = {
    { "{\"in_channels\": 3, \"out_channels\": 64, \"kernel_size\": 7, \"stride\": 2, \"padding\": 3, \"bias\": false}",
      "Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)" },
    { "{\"in_channels\": 16, \"out_channels\": 16, \"kernel_size\": 3, \"padding\": \"same\"}",
      "Conv2d(16, 16, kernel_size=(3, 3), stride=(1, 1), padding=same)" },
    { "{\"in_channels\": 16, \"out_channels\": 16, \"kernel_size\": 3, \"padding\": \"valid\"}",
      "Conv2d(16, 16, kernel_size=(3, 3), stride=(1, 1), padding=valid)" },
    { "{\"in_channels\": 16, \"out_channels\": 32, \"kernel_size\": [3, 5], \"stride\": [1, 2], \"padding\": [1, 2], \"dilation\": 2, \"groups\": 4}",
      "Conv2d(16, 32, kernel_size=(3, 5), stride=(1, 2), padding=(1, 2), dilation=(2, 2), groups=4)" },
    { "{\"in_channels\": 8, \"out_channels\": 8, \"kernel_size\": 3, \"padding\": 1, \"groups\": 8, \"padding_mode\": \"reflect\"}",
      "Conv2d(8, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), groups=8, padding_mode=reflect)" },
    { "{\"in_channels\": 8, \"out_channels\": 8, \"kernel_size\": 1}",
      "Conv2d(8, 8, kernel_size=(1, 1), stride=(1, 1))" },
    { "{\"in_channels\": 8, \"out_channels\": 8, \"kernel_size\": 1, \"padding\": [0, 1]}",
      "Conv2d(8, 8, kernel_size=(1, 1), stride=(1, 1), padding=(0, 1))" },
  };
  for (auto &c : cases) {
    Error err;
    Module m = make (reg.get (), "Conv2d", c.json, err);
    ASSERT_TRUE (m) << err.message ();
    EXPECT_EQ (take (nn_module_to_string (m.get ())), c.torch);
  }
}

Module conv_3_to_64 (NnRegistry *reg, Error &err, const char *path = "layer1.0.conv1")
{
  return make (reg, "Conv2d",
               "{\"in_channels\": 64, \"out_channels\": 64, \"kernel_size\": 3, \"padding\": 1, \"bias\": false}",
               err, path);
}

TEST (Conv2d, WrongChannelsNameBothShapes)
{
  Registry reg = default_registry ();
  Error err;
  Module m = conv_3_to_64 (reg.get (), err);
  ASSERT_TRUE (m) << err.message ();
  NnShape in = shape ({ 1, 32, 56, 56 }), out;
  EXPECT_FALSE (nn_module_infer_shape (m.get (), &in, &out, err.out ()));
  EXPECT_TRUE (err.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH)) << err.message ();
  EXPECT_HAS (err.message (), ("expected input [N, 64, H, W] (4-D with 64 channels, or 3-D unbatched), got [1, 32, 56, 56]"));

  Tensor x = make_input (in, 1);
  EXPECT_EQ (nn_module_forward (m.get (), x.get (), err.out ()), nullptr);
  EXPECT_HAS (err.message (), ("got [1, 32, 56, 56]"));
}

TEST (Conv2d, WrongRankIsAnError)
{
  Registry reg = default_registry ();
  Error err;
  Module m = conv_3_to_64 (reg.get (), err);
  ASSERT_TRUE (m) << err.message ();
  for (NnShape in : { shape ({ 64, 56 }), shape ({ 1, 1, 64, 56, 56 }), shape ({ 64 }) }) {
    NnShape out;
    EXPECT_FALSE (nn_module_infer_shape (m.get (), &in, &out, err.out ()));
    EXPECT_TRUE (err.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH)) << err.message ();
    EXPECT_HAS (err.message (), ("got " + take (nn_shape_to_string (&in))));
    Tensor x = make_input (in, 1);
    EXPECT_EQ (nn_module_forward (m.get (), x.get (), err.out ()), nullptr);
    EXPECT_HAS (err.message (), ("expected input [N, 64, H, W]"));
  }
}

TEST (Conv2d, InputSmallerThanKernelIsAnError)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "Conv2d",
                   "{\"in_channels\": 3, \"out_channels\": 4, \"kernel_size\": [5, 3], \"dilation\": 2}", err);
  ASSERT_TRUE (m) << err.message ();
  NnShape in = shape ({ 1, 3, 8, 20 }), out;
  EXPECT_FALSE (nn_module_infer_shape (m.get (), &in, &out, err.out ()));
  EXPECT_TRUE (err.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH));
  EXPECT_HAS (err.message (), ("input [1, 3, 8, 20] is too small: padded size (8, 20) "
                                          "is smaller than the dilated kernel (9, 5)"));
}

TEST (Conv2d, ReflectPaddingWiderThanInputIsAnError)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "Conv2d",
                   "{\"in_channels\": 3, \"out_channels\": 4, \"kernel_size\": 3, \"padding\": 2, \"padding_mode\": \"reflect\"}", err);
  ASSERT_TRUE (m) << err.message ();
  NnShape in = shape ({ 1, 3, 2, 6 }), out;
  EXPECT_FALSE (nn_module_infer_shape (m.get (), &in, &out, err.out ()));
  EXPECT_HAS (err.message (), ("padding_mode 'reflect' needs padding (2, 2) smaller than "
                                          "the input's height and width, got [1, 3, 2, 6]"));
}

TEST (Conv2d, ErrorsCarryTheModulePath)
{
  Registry reg = default_registry ();
  Error err;
  Module m = conv_3_to_64 (reg.get (), err);
  ASSERT_TRUE (m) << err.message ();
  Module seq (nn_module_new_from_type (reg.get (), "Sequential", nullptr, "", err.out ()));
  ASSERT_TRUE (seq) << err.message ();
  ASSERT_TRUE (nn_module_add_child (seq.get (), "conv1", m.get (), err.out ())) << err.message ();
  NnShape in = shape ({ 2, 3, 8, 8 }), out;
  EXPECT_FALSE (nn_module_infer_shape (seq.get (), &in, &out, err.out ()));
  EXPECT_HAS (err.message (), ("conv1"));
  EXPECT_HAS (err.message (), ("got [2, 3, 8, 8]"));
}

// The core words range errors; an int bound may print as 1 or 1.0, so
// the found value is checked as a second substring.
struct ConfigError { const char *json, *message; int code; const char *also = nullptr; };

TEST (Conv2d, ConfigErrorsNameTheKey)
{
  Registry reg = default_registry ();
  const ConfigError cases[] = {
    { "{\"in_channels\": 3, \"out_channels\": 4, \"kernal_size\": 3}",
      "layer2.0.conv1: Conv2d: unknown key 'kernal_size' (did you mean 'kernel_size'?)",
      NN_DESCRIPTOR_ERROR_UNKNOWN_KEY },
    { "{\"in_channels\": 3, \"out_channels\": 4, \"kernel_size\": 0}",
      "layer2.0.conv1: Conv2d: key 'kernel_size' must be >= 1",
      NN_DESCRIPTOR_ERROR_OUT_OF_RANGE, "found 0" },
    { "{\"in_channels\": 3, \"out_channels\": 4, \"kernel_size\": [3, -1]}",
      "key 'kernel_size' must be >= 1",
      NN_DESCRIPTOR_ERROR_OUT_OF_RANGE, "found -1" },
    { "{\"in_channels\": 0, \"out_channels\": 4, \"kernel_size\": 3}",
      "key 'in_channels' must be >= 1",
      NN_DESCRIPTOR_ERROR_OUT_OF_RANGE, "found 0" },
    { "{\"in_channels\": 3, \"out_channels\": 4, \"kernel_size\": 3, \"stride\": 0}",
      "key 'stride' must be >= 1",
      NN_DESCRIPTOR_ERROR_OUT_OF_RANGE, "found 0" },
    { "{\"in_channels\": 3, \"out_channels\": 4, \"kernel_size\": 3, \"padding\": -1}",
      "key 'padding' must be >= 0",
      NN_DESCRIPTOR_ERROR_OUT_OF_RANGE, "found -1" },
    { "{\"in_channels\": 3, \"out_channels\": 4, \"kernel_size\": [3, 3, 3]}",
      "key 'kernel_size' expects an int or a tuple of 2 ints",
      NN_DESCRIPTOR_ERROR_WRONG_KIND },
    { "{\"in_channels\": 3, \"out_channels\": 4, \"kernel_size\": 3, \"padding\": \"full\"}",
      "key 'padding' expects an int or a tuple of 2 ints or one of 'same', 'valid', found string 'full'",
      NN_DESCRIPTOR_ERROR_WRONG_KIND },
    { "{\"in_channels\": 3, \"out_channels\": 4, \"kernel_size\": 3, \"padding_mode\": \"mirror\"}",
      "key 'padding_mode' expects one of 'zeros', 'reflect', 'replicate', 'circular', found string 'mirror'",
      NN_DESCRIPTOR_ERROR_WRONG_KIND },
    { "{\"in_channels\": 3, \"out_channels\": 4}",
      "layer2.0.conv1: Conv2d: missing required key 'kernel_size'",
      NN_DESCRIPTOR_ERROR_MISSING_KEY },
    { "{\"in_channels\": 30, \"out_channels\": 8, \"kernel_size\": 3, \"groups\": 4}",
      "layer2.0.conv1: Conv2d: in_channels must be divisible by groups: in_channels=30, groups=4",
      NN_DESCRIPTOR_ERROR_OUT_OF_RANGE },
    { "{\"in_channels\": 8, \"out_channels\": 6, \"kernel_size\": 3, \"groups\": 4}",
      "layer2.0.conv1: Conv2d: out_channels must be divisible by groups: out_channels=6, groups=4",
      NN_DESCRIPTOR_ERROR_OUT_OF_RANGE },
    { "{\"in_channels\": 8, \"out_channels\": 8, \"kernel_size\": 3, \"stride\": 2, \"padding\": \"same\"}",
      "layer2.0.conv1: Conv2d: padding='same' is not supported for strided convolutions (stride=(2, 2))",
      NN_DESCRIPTOR_ERROR_INVALID },
    { "{\"in_channels\": 100000, \"out_channels\": 100000, \"kernel_size\": 3}",
      "weight [100000, 100000, 3, 3] would hold 90000000000 elements",
      NN_DESCRIPTOR_ERROR_OUT_OF_RANGE },
  };
  for (auto &c : cases) {
    Error err;
    Module m = make (reg.get (), "Conv2d", c.json, err, "layer2.0.conv1");
    EXPECT_FALSE (m) << c.json;
    EXPECT_TRUE (err.matches (NN_DESCRIPTOR_ERROR, c.code)) << c.json << ": " << err.message ();
    EXPECT_HAS (err.message (), (c.message)) << c.json;
    if (c.also) {
      EXPECT_HAS (err.message (), (c.also)) << c.json;
    }
  }
}

// A forward reads the weights at call time: swapping them (as
// load_state_dict does) changes the next output.
TEST (Conv2d, ForwardSeesSwappedWeights)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "Conv2d",
                   "{\"in_channels\": 2, \"out_channels\": 3, \"kernel_size\": 1, \"bias\": false}", err);
  ASSERT_TRUE (m) << err.message ();
  Tensor x = make_input (shape ({ 1, 2, 2, 2 }), 5);
  Tensor y0 (nn_module_forward (m.get (), x.get (), err.out ()));
  ASSERT_TRUE (y0) << err.message ();
  for (gint64 i = 0; i < nn_tensor_numel (y0.get ()); i++)
    EXPECT_EQ (nn_tensor_f32 (y0.get ())[i], 0.0f);

  NnShape ws = shape ({ 3, 2, 1, 1 });
  Tensor w (nn_tensor_new (NN_DTYPE_F32, &ws));
  float *wd = nn_tensor_f32 (w.get ());
  for (int i = 0; i < 6; i++) wd[i] = (float) (i + 1);
  ASSERT_TRUE (nn_module_set_tensor (m.get (), "weight", w.get (), err.out ())) << err.message ();
  Tensor y1 (nn_module_forward (m.get (), x.get (), err.out ()));
  ASSERT_TRUE (y1) << err.message ();
  const float *xd = nn_tensor_f32 (x.get ()), *yd = nn_tensor_f32 (y1.get ());
  for (int o = 0; o < 3; o++)
    for (int p = 0; p < 4; p++)
      EXPECT_NEAR (yd[o * 4 + p], wd[o * 2] * xd[p] + wd[o * 2 + 1] * xd[4 + p], 1e-5);
}

// One module run from two threads at once: each call has its own buffers.
TEST (Conv2d, ConcurrentForwardsAgree)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "Conv2d",
                   "{\"in_channels\": 8, \"out_channels\": 16, \"kernel_size\": 3, \"padding\": 1}", err);
  ASSERT_TRUE (m) << err.message ();
  fill_params (m.get (), 11);
  Tensor x = make_input (shape ({ 2, 8, 16, 16 }), 9);
  Tensor want (nn_module_forward (m.get (), x.get (), err.out ()));
  ASSERT_TRUE (want) << err.message ();

  std::vector<float> diffs (2, -1.0f);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; t++)
    threads.emplace_back ([&, t] {
      float worst = 0;
      for (int r = 0; r < 5; r++) {
        NnTensor *y = nn_module_forward (m.get (), x.get (), nullptr);
        if (!y) { worst = 1e9f; break; }
        for (gint64 i = 0; i < nn_tensor_numel (y); i++)
          worst = std::max (worst, std::fabs (nn_tensor_f32 (y)[i] - nn_tensor_f32 (want.get ())[i]));
        nn_tensor_unref (y);
      }
      diffs[t] = worst;
    });
  for (auto &th : threads) th.join ();
  EXPECT_EQ (diffs[0], 0.0f);
  EXPECT_EQ (diffs[1], 0.0f);
}

TEST (Conv2d, ResetParametersFollowsKaimingUniformBounds)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "Conv2d",
                   "{\"in_channels\": 16, \"out_channels\": 32, \"kernel_size\": [3, 5], \"groups\": 2}", err);
  ASSERT_TRUE (m) << err.message ();
  nn_module_reset_parameters (m.get (), 42);
  const double bound = 1.0 / std::sqrt (8.0 * 3 * 5);  // fan_in = in/groups * kh * kw
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
    // Uniform over the whole range, not a narrower one.
    EXPECT_LT (lo, -0.8 * bound) << name;
    EXPECT_GT (hi, 0.8 * bound) << name;
  }

  // Same seed, same values; another seed, other values.
  std::vector<float> first (nn_tensor_f32 (nn_module_get_parameter (m.get (), "weight")),
                            nn_tensor_f32 (nn_module_get_parameter (m.get (), "weight")) + 32 * 8 * 15);
  nn_module_reset_parameters (m.get (), 42);
  const float *again = nn_tensor_f32 (nn_module_get_parameter (m.get (), "weight"));
  EXPECT_TRUE (std::equal (first.begin (), first.end (), again));
  nn_module_reset_parameters (m.get (), 43);
  const float *other = nn_tensor_f32 (nn_module_get_parameter (m.get (), "weight"));
  EXPECT_FALSE (std::equal (first.begin (), first.end (), other));
}

// torchinfo's Mult-Adds for torchvision resnet18 at [1, 3, 224, 224]:
// conv1 118,013,952 and layer1.0.conv1 115,605,504; for a biased conv the
// bias elements count once per output pixel too.
TEST (Conv2d, CountMacsFollowsTorchinfo)
{
  Registry reg = default_registry ();
  Error err;
  Module stem = make (reg.get (), "Conv2d",
                      "{\"in_channels\": 3, \"out_channels\": 64, \"kernel_size\": 7, \"stride\": 2, \"padding\": 3, \"bias\": false}", err);
  ASSERT_TRUE (stem) << err.message ();
  const NnLayerType *type = nn_module_get_type (stem.get ());
  ASSERT_NE (type->count_macs, nullptr);
  NnShape in = shape ({ 1, 3, 224, 224 }), out;
  ASSERT_TRUE (nn_module_infer_shape (stem.get (), &in, &out, err.out ()));
  EXPECT_EQ (macs_for (stem.get (), in, out), 118013952u);

  Module c = conv_3_to_64 (reg.get (), err);
  NnShape in2 = shape ({ 1, 64, 56, 56 }), out2;
  ASSERT_TRUE (nn_module_infer_shape (c.get (), &in2, &out2, err.out ()));
  EXPECT_EQ (macs_for (c.get (), in2, out2), 115605504u);

  // alexnet features.0: Conv2d(3, 64, 11, 4, 2) with bias -> 70,470,400.
  Module ax = make (reg.get (), "Conv2d",
                    "{\"in_channels\": 3, \"out_channels\": 64, \"kernel_size\": 11, \"stride\": 4, \"padding\": 2}", err);
  ASSERT_TRUE (ax) << err.message ();
  ASSERT_TRUE (nn_module_infer_shape (ax.get (), &in, &out, err.out ()));
  EXPECT_EQ (macs_for (ax.get (), in, out), 70470400u);
}

}  // namespace
