// The pool plugin: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d and
// AdaptiveMaxPool2d against naive references written here (windows
// enumerated position by position, divisors counted rather than clipped),
// over many geometries; shape inference equals the forward's shape; error
// paths by message; reprs as PyTorch 1.13 prints them.
#include "nn-test.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace nntest;

namespace {

Module make (NnRegistry *reg, const char *type, const std::string &json,
             Error &err, const char *path = "pool")
{
  return make_module (reg, type, json, err, path);
}

Tensor random_input (const NnShape &s, unsigned seed)
{
  Tensor t (nn_tensor_new (NN_DTYPE_F32, &s));
  float *d = nn_tensor_f32 (t.get ());
  guint32 st = 2166136261u ^ seed;
  for (gint64 i = 0; i < nn_tensor_numel (t.get ()); i++) {
    st = st * 1664525u + 1013904223u;
    d[i] = (float) ((st >> 8) & 0xffff) / 8192.0f - 4.0f;
  }
  return t;
}

std::string tuple_json (int a, int b) { return "[" + std::to_string (a) + ", " + std::to_string (b) + "]"; }

// Output extent from the documented formula, written with floating floor
// and ceil rather than integer tricks.
gint64 ref_out_size (gint64 in, int k, int p, int s, int d, bool ceil_mode)
{
  double span = (double) (in + 2 * p - d * (k - 1) - 1) / s;
  gint64 out = (gint64) (ceil_mode ? std::ceil (span) : std::floor (span)) + 1;
  if (ceil_mode && (out - 1) * s >= in + p)
    out--;
  return out;
}

struct Geom {
  int kh, kw, sh, sw, ph, pw, dh, dw;
  bool ceil_mode;
};

// Every output element, its window enumerated offset by offset.
std::vector<float> ref_max_pool (const float *x, gint64 planes, gint64 H, gint64 W,
                                 const Geom &g, gint64 OH, gint64 OW)
{
  std::vector<float> y (planes * OH * OW);
  for (gint64 p = 0; p < planes; p++)
    for (gint64 oh = 0; oh < OH; oh++)
      for (gint64 ow = 0; ow < OW; ow++) {
        float m = -std::numeric_limits<float>::infinity ();
        for (int i = 0; i < g.kh; i++)
          for (int j = 0; j < g.kw; j++) {
            gint64 ih = oh * g.sh - g.ph + (gint64) i * g.dh;
            gint64 iw = ow * g.sw - g.pw + (gint64) j * g.dw;
            if (ih >= 0 && ih < H && iw >= 0 && iw < W)
              m = std::max (m, x[(p * H + ih) * W + iw]);
          }
        y[(p * OH + oh) * OW + ow] = m;
      }
  return y;
}

// PyTorch's divisor: positions inside the padded input (count_include_pad)
// or inside the input, or the override.
std::vector<float> ref_avg_pool (const float *x, gint64 planes, gint64 H, gint64 W,
                                 const Geom &g, bool include_pad, int divisor,
                                 gint64 OH, gint64 OW)
{
  std::vector<float> y (planes * OH * OW);
  for (gint64 p = 0; p < planes; p++)
    for (gint64 oh = 0; oh < OH; oh++)
      for (gint64 ow = 0; ow < OW; ow++) {
        double sum = 0;
        gint64 in_padded = 0, inside = 0;
        for (int i = 0; i < g.kh; i++)
          for (int j = 0; j < g.kw; j++) {
            gint64 ih = oh * g.sh - g.ph + i, iw = ow * g.sw - g.pw + j;
            bool hp = ih >= -g.ph && ih < H + g.ph, wp = iw >= -g.pw && iw < W + g.pw;
            if (hp && wp)
              in_padded++;
            if (ih >= 0 && ih < H && iw >= 0 && iw < W) {
              inside++;
              sum += x[(p * H + ih) * W + iw];
            }
          }
        double div = divisor ? divisor : include_pad ? in_padded : inside;
        y[(p * OH + oh) * OW + ow] = inside ? (float) (sum / div) : 0.0f;
      }
  return y;
}

void expect_close (const float *got, const std::vector<float> &want, const std::string &what)
{
  double maxref = 0, maxdiff = 0;
  for (size_t i = 0; i < want.size (); i++) {
    maxref = std::max (maxref, (double) std::fabs (want[i]));
    maxdiff = std::max (maxdiff, (double) std::fabs (got[i] - want[i]));
  }
  EXPECT_LE (maxdiff, 1e-5 * std::max (1.0, maxref)) << what;
}

// Runs @m on @in; checks that inferred and actual shapes agree with @want.
Tensor run_checked (NnModule *m, NnTensor *x, const NnShape &want, const std::string &what)
{
  Error err;
  NnShape inferred;
  EXPECT_TRUE (nn_module_infer_shape (m, &x->shape, &inferred, err.out ())) << what << ": " << err.message ();
  EXPECT_TRUE (nn_shape_equal (&inferred, &want))
      << what << ": inferred " << take (nn_shape_to_string (&inferred)) << " want "
      << take (nn_shape_to_string (&want));
  Tensor y (nn_module_forward (m, x, err.out ()));
  EXPECT_TRUE (y) << what << ": " << err.message ();
  if (y) {
    EXPECT_TRUE (nn_shape_equal (&y->shape, &want))
        << what << ": got " << take (nn_shape_to_string (&y->shape));
  }
  return y;
}

std::vector<Geom> geometries ()
{
  std::vector<Geom> gs;
  for (int k : { 1, 2, 3, 4 })
    for (int s : { 1, 2, 3 })
      for (int p = 0; p <= k / 2; p++)
        for (int d : { 1, 2 })
          for (bool c : { false, true })
            gs.push_back ({ k, k == 4 ? 3 : k, s, s == 3 ? 2 : s, p, std::min (p, (k == 4 ? 3 : k) / 2),
                            d, d == 2 ? 1 : d, c });
  return gs;
}

std::string geom_text (const Geom &g)
{
  return "k=" + tuple_json (g.kh, g.kw) + " s=" + tuple_json (g.sh, g.sw) + " p=" +
         tuple_json (g.ph, g.pw) + " d=" + tuple_json (g.dh, g.dw) + " ceil=" + (g.ceil_mode ? "1" : "0");
}

}  // namespace

TEST (MaxPool2d, MatchesNaiveReferenceOverManyGeometries)
{
  Registry reg = default_registry ();
  int checked = 0;
  for (const Geom &g : geometries ()) {
    std::string cfg = "{\"kernel_size\": " + tuple_json (g.kh, g.kw) + ", \"stride\": " +
                      tuple_json (g.sh, g.sw) + ", \"padding\": " + tuple_json (g.ph, g.pw) +
                      ", \"dilation\": " + tuple_json (g.dh, g.dw) + ", \"ceil_mode\": " +
                      (g.ceil_mode ? "true" : "false") + "}";
    Error err;
    Module m = make (reg.get (), "MaxPool2d", cfg, err);
    ASSERT_TRUE (m) << cfg << ": " << err.message ();
    for (auto hw : { std::pair<int, int> { 7, 9 }, { 10, 6 }, { 5, 5 } }) {
      gint64 OH = ref_out_size (hw.first, g.kh, g.ph, g.sh, g.dh, g.ceil_mode);
      gint64 OW = ref_out_size (hw.second, g.kw, g.pw, g.sw, g.dw, g.ceil_mode);
      if (OH < 1 || OW < 1)
        continue;
      NnShape in = shape ({ 3, 2, hw.first, hw.second });
      Tensor x = random_input (in, checked);
      Tensor y = run_checked (m.get (), x.get (), shape ({ 3, 2, OH, OW }), geom_text (g));
      if (!y)
        continue;
      expect_close (nn_tensor_f32 (y.get ()),
                    ref_max_pool (nn_tensor_f32 (x.get ()), 6, hw.first, hw.second, g, OH, OW),
                    geom_text (g));
      checked++;
    }
  }
  EXPECT_GT (checked, 200);
}

TEST (MaxPool2d, StrideDefaultsToKernelAndIntsExpand)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "MaxPool2d", "{\"kernel_size\": 3}", err);
  ASSERT_TRUE (m) << err.message ();
  Tensor x = random_input (shape ({ 2, 4, 10, 11 }), 5);
  Tensor y = run_checked (m.get (), x.get (), shape ({ 2, 4, 3, 3 }), "k3");
  ASSERT_TRUE (y);
  Geom g = { 3, 3, 3, 3, 0, 0, 1, 1, false };
  expect_close (nn_tensor_f32 (y.get ()),
                ref_max_pool (nn_tensor_f32 (x.get ()), 8, 10, 11, g, 3, 3), "k3");
}

TEST (MaxPool2d, UnbatchedInputAndNanPropagation)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "MaxPool2d", "{\"kernel_size\": 2}", err);
  ASSERT_TRUE (m) << err.message ();
  Tensor x = random_input (shape ({ 3, 4, 4 }), 9);
  nn_tensor_f32 (x.get ())[5] = NAN;  // plane 0, row 1, col 1: window (0, 0)
  Tensor y = run_checked (m.get (), x.get (), shape ({ 3, 2, 2 }), "unbatched");
  ASSERT_TRUE (y);
  const float *yd = nn_tensor_f32 (y.get ());
  EXPECT_TRUE (std::isnan (yd[0]));
  for (int i = 1; i < 12; i++)
    EXPECT_FALSE (std::isnan (yd[i])) << i;
}

TEST (MaxPool2d, LargeInputSplitAcrossThreadsMatches)
{
  // NN_NUM_THREADS=2 in the test environment: this input is big enough to
  // be split between threads.
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "MaxPool2d", "{\"kernel_size\": 3, \"stride\": 2, \"padding\": 1}", err);
  ASSERT_TRUE (m) << err.message ();
  Tensor x = random_input (shape ({ 2, 9, 112, 112 }), 1);
  Tensor y = run_checked (m.get (), x.get (), shape ({ 2, 9, 56, 56 }), "large");
  ASSERT_TRUE (y);
  Geom g = { 3, 3, 2, 2, 1, 1, 1, 1, false };
  expect_close (nn_tensor_f32 (y.get ()),
                ref_max_pool (nn_tensor_f32 (x.get ()), 18, 112, 112, g, 56, 56), "large");
}

TEST (AvgPool2d, MatchesNaiveReferenceOverManyGeometries)
{
  Registry reg = default_registry ();
  int checked = 0;
  for (const Geom &g0 : geometries ()) {
    if (g0.dh != 1 || g0.dw != 1)
      continue;  // AvgPool2d has no dilation
    for (bool include_pad : { true, false })
      for (int divisor : { 0, 3 }) {
        Geom g = g0;
        std::string cfg = "{\"kernel_size\": " + tuple_json (g.kh, g.kw) + ", \"stride\": " +
                          tuple_json (g.sh, g.sw) + ", \"padding\": " + tuple_json (g.ph, g.pw) +
                          ", \"ceil_mode\": " + (g.ceil_mode ? "true" : "false") +
                          ", \"count_include_pad\": " + (include_pad ? "true" : "false") +
                          ", \"divisor_override\": " + (divisor ? std::to_string (divisor) : "null") + "}";
        Error err;
        Module m = make (reg.get (), "AvgPool2d", cfg, err);
        ASSERT_TRUE (m) << cfg << ": " << err.message ();
        for (auto hw : { std::pair<int, int> { 7, 8 }, { 5, 10 } }) {
          gint64 OH = ref_out_size (hw.first, g.kh, g.ph, g.sh, 1, g.ceil_mode);
          gint64 OW = ref_out_size (hw.second, g.kw, g.pw, g.sw, 1, g.ceil_mode);
          if (OH < 1 || OW < 1)
            continue;
          Tensor x = random_input (shape ({ 2, 3, hw.first, hw.second }), checked);
          Tensor y = run_checked (m.get (), x.get (), shape ({ 2, 3, OH, OW }), cfg);
          if (!y)
            continue;
          expect_close (nn_tensor_f32 (y.get ()),
                        ref_avg_pool (nn_tensor_f32 (x.get ()), 6, hw.first, hw.second, g,
                                      include_pad, divisor, OH, OW),
                        cfg);
          checked++;
        }
      }
  }
  EXPECT_GT (checked, 100);
}

TEST (AvgPool2d, CeilModeWindowPastThePaddingIsClipped)
{
  // 6x6, kernel 3, stride 2, padding 1, ceil_mode: 4 outputs a side.  The
  // last window spans rows 5..7, clipped to the padded input (5..6) for
  // the count_include_pad divisor, and to the input (5) for the sum.
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "AvgPool2d",
                   "{\"kernel_size\": 3, \"stride\": 2, \"padding\": 1, \"ceil_mode\": true}", err);
  ASSERT_TRUE (m) << err.message ();
  NnShape in = shape ({ 1, 1, 6, 6 });
  Tensor x (nn_tensor_new (NN_DTYPE_F32, &in));
  for (int i = 0; i < 36; i++)
    nn_tensor_f32 (x.get ())[i] = 1.0f;
  Tensor y = run_checked (m.get (), x.get (), shape ({ 1, 1, 4, 4 }), "ceil");
  ASSERT_TRUE (y);
  const float *yd = nn_tensor_f32 (y.get ());
  // Corner (0, 0): window rows -1..1, cols -1..1: 4 ones over 9.
  EXPECT_NEAR (yd[0], 4.0f / 9.0f, 1e-6);
  // Corner (3, 3): rows 5..7 clipped to the padded input 5..6: 1 one over 4.
  EXPECT_NEAR (yd[15], 1.0f / 4.0f, 1e-6);
  // Interior (1, 1): rows 1..3, cols 1..3 all inside.
  EXPECT_NEAR (yd[5], 1.0f, 1e-6);
}

TEST (AdaptivePool2d, NonDivisibleSizesMatchReference)
{
  Registry reg = default_registry ();
  int checked = 0;
  for (const char *type : { "AdaptiveAvgPool2d", "AdaptiveMaxPool2d" })
    for (auto io : std::vector<std::vector<int>> { { 7, 7, 1, 1 }, { 7, 9, 3, 4 }, { 5, 5, 7, 7 },
                                                   { 10, 13, 3, 5 }, { 1, 1, 2, 3 }, { 14, 6, 14, 6 } }) {
      std::string cfg = "{\"output_size\": " + tuple_json (io[2], io[3]) + "}";
      Error err;
      Module m = make (reg.get (), type, cfg, err);
      ASSERT_TRUE (m) << err.message ();
      Tensor x = random_input (shape ({ 3, 2, io[0], io[1] }), io[0] * 31 + io[1]);
      Tensor y = run_checked (m.get (), x.get (), shape ({ 3, 2, io[2], io[3] }), cfg);
      ASSERT_TRUE (y);
      bool is_max = std::string (type) == "AdaptiveMaxPool2d";
      std::vector<float> want;
      const float *xd = nn_tensor_f32 (x.get ());
      for (int p = 0; p < 6; p++)
        for (int oh = 0; oh < io[2]; oh++)
          for (int ow = 0; ow < io[3]; ow++) {
            int h0 = (int) std::floor ((double) oh * io[0] / io[2]);
            int h1 = (int) std::ceil ((double) (oh + 1) * io[0] / io[2]);
            int w0 = (int) std::floor ((double) ow * io[1] / io[3]);
            int w1 = (int) std::ceil ((double) (ow + 1) * io[1] / io[3]);
            double acc = is_max ? -INFINITY : 0;
            for (int h = h0; h < h1; h++)
              for (int w = w0; w < w1; w++) {
                double v = xd[(p * io[0] + h) * io[1] + w];
                acc = is_max ? std::max (acc, v) : acc + v;
              }
            want.push_back ((float) (is_max ? acc : acc / ((h1 - h0) * (w1 - w0))));
          }
      expect_close (nn_tensor_f32 (y.get ()), want, std::string (type) + cfg);
      checked++;
    }
  EXPECT_EQ (checked, 12);
}

TEST (AdaptivePool2d, IntOutputSizeAndUnbatchedInput)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "AdaptiveAvgPool2d", "{\"output_size\": 1}", err);
  ASSERT_TRUE (m) << err.message ();
  Tensor x = random_input (shape ({ 5, 3, 4 }), 2);
  Tensor y = run_checked (m.get (), x.get (), shape ({ 5, 1, 1 }), "global");
  ASSERT_TRUE (y);
  for (int c = 0; c < 5; c++) {
    double s = 0;
    for (int i = 0; i < 12; i++)
      s += nn_tensor_f32 (x.get ())[c * 12 + i];
    EXPECT_NEAR (nn_tensor_f32 (y.get ())[c], s / 12, 1e-5);
  }
}

TEST (Pool, ReprsAsPyTorchPrintsThem)
{
  // Each expected string is print(module) from PyTorch 1.13 for the same
  // constructor arguments.
  struct { const char *type, *cfg, *want; } cases[] = {
    { "MaxPool2d", "{\"kernel_size\": 3, \"stride\": 2, \"padding\": 1}",
      "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)" },
    { "MaxPool2d", "{\"kernel_size\": [3, 2]}",
      "MaxPool2d(kernel_size=(3, 2), stride=(3, 2), padding=0, dilation=1, ceil_mode=False)" },
    { "MaxPool2d", "{\"kernel_size\": 3, \"stride\": [2, 1], \"padding\": [1, 0], \"dilation\": 2, \"ceil_mode\": true}",
      "MaxPool2d(kernel_size=3, stride=(2, 1), padding=(1, 0), dilation=2, ceil_mode=True)" },
    { "AvgPool2d", "{\"kernel_size\": 2}", "AvgPool2d(kernel_size=2, stride=2, padding=0)" },
    { "AvgPool2d", "{\"kernel_size\": 3, \"stride\": 2, \"padding\": 1, \"ceil_mode\": true, "
                   "\"count_include_pad\": false, \"divisor_override\": 3}",
      "AvgPool2d(kernel_size=3, stride=2, padding=1)" },
    { "AdaptiveAvgPool2d", "{\"output_size\": [1, 1]}", "AdaptiveAvgPool2d(output_size=(1, 1))" },
    { "AdaptiveAvgPool2d", "{\"output_size\": 7}", "AdaptiveAvgPool2d(output_size=7)" },
    { "AdaptiveMaxPool2d", "{\"output_size\": [2, 3]}", "AdaptiveMaxPool2d(output_size=(2, 3))" },
  };
  Registry reg = default_registry ();
  for (auto &c : cases) {
    Error err;
    Module m = make (reg.get (), c.type, c.cfg, err);
    ASSERT_TRUE (m) << c.cfg << ": " << err.message ();
    EXPECT_EQ (take (nn_module_to_string (m.get ())), c.want);
    EXPECT_EQ (nn_module_n_parameters (m.get ()), 0u);
    EXPECT_EQ (nn_module_n_buffers (m.get ()), 0u);
  }
}

TEST (Pool, BadInputRankNamesPathAndBothShapes)
{
  Registry reg = default_registry ();
  for (auto tc : std::vector<std::pair<const char *, const char *>> {
           { "MaxPool2d", "{\"kernel_size\": 2}" }, { "AvgPool2d", "{\"kernel_size\": 2}" },
           { "AdaptiveAvgPool2d", "{\"output_size\": 2}" }, { "AdaptiveMaxPool2d", "{\"output_size\": 2}" } }) {
    Error err;
    Module m = make (reg.get (), tc.first, tc.second, err);
    ASSERT_TRUE (m) << err.message ();
    // Under a Sequential, so that the core names the module path.
    Module seq (nn_module_new_from_type (reg.get (), "Sequential", nullptr, "", err.out ()));
    ASSERT_TRUE (seq) << err.message ();
    ASSERT_TRUE (nn_module_add_child (seq.get (), "3", m.get (), err.out ())) << err.message ();
    for (NnShape bad : { shape ({ 2, 3 }), shape ({ 1, 2, 3, 4, 5 }), shape ({ 1, 0, 4, 4 }) }) {
      NnShape out;
      EXPECT_FALSE (nn_module_infer_shape (seq.get (), &bad, &out, err.out ()));
      EXPECT_TRUE (err.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH)) << err.message ();
      std::string msg = err.message ();
      EXPECT_TRUE (contains (msg, std::string ("3: ") + tc.first + ": expected input "
                                  "[N, C, H, W] or [C, H, W]")) << msg;
      EXPECT_TRUE (contains (msg, "found " + take (nn_shape_to_string (&bad)))) << msg;
      Tensor x (nn_tensor_new (NN_DTYPE_F32, &bad));
      Tensor y (nn_module_forward (m.get (), x.get (), err.out ()));
      EXPECT_FALSE (y);
      EXPECT_TRUE (contains (err.message (), std::string (tc.first) + ": expected input")) << err.message ();
      EXPECT_TRUE (contains (err.message (), "found " + take (nn_shape_to_string (&bad)))) << err.message ();
    }
  }
}

TEST (Pool, WindowLargerThanPaddedInputIsAnError)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "MaxPool2d", "{\"kernel_size\": 3, \"dilation\": 2}", err);
  ASSERT_TRUE (m) << err.message ();
  NnShape in = shape ({ 1, 1, 4, 9 }), out;
  EXPECT_FALSE (nn_module_infer_shape (m.get (), &in, &out, err.out ()));
  EXPECT_TRUE (err.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH));
  EXPECT_TRUE (contains (err.message (), "MaxPool2d: input [1, 1, 4, 9] is too small")) << err.message ();
  EXPECT_TRUE (contains (err.message (), "kernel_size (3, 3), dilation (2, 2)")) << err.message ();

  Module a = make (reg.get (), "AvgPool2d", "{\"kernel_size\": 5, \"padding\": 1}", err);
  ASSERT_TRUE (a) << err.message ();
  Tensor x = random_input (shape ({ 2, 2, 2, 8 }), 3);
  Tensor y (nn_module_forward (a.get (), x.get (), err.out ()));
  EXPECT_FALSE (y);
  EXPECT_TRUE (contains (err.message (), "input [2, 2, 2, 8] is too small")) << err.message ();
  EXPECT_TRUE (contains (err.message (), "output would be 0x2")) << err.message ();
}

TEST (Pool, NonFloatInputIsAnError)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "AvgPool2d", "{\"kernel_size\": 2}", err);
  ASSERT_TRUE (m) << err.message ();
  NnShape s = shape ({ 1, 1, 4, 4 });
  Tensor x (nn_tensor_new (NN_DTYPE_I64, &s));
  Tensor y (nn_module_forward (m.get (), x.get (), err.out ()));
  EXPECT_FALSE (y);
  EXPECT_TRUE (err.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_ARGUMENTS)) << err.message ();
  EXPECT_TRUE (contains (err.message (), "argument 'input': expected dtype F32, found I64")) << err.message ();
}

TEST (Pool, InvalidConfigsAreRejectedWithTheKey)
{
  struct { const char *type, *cfg, *want; GQuark domain; int code; } cases[] = {
    { "MaxPool2d", "{\"kernel_size\": 3, \"padding\": 2}",
      "pool: MaxPool2d: padding (2, 2) must be at most half of kernel_size (3, 3)",
      NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_OUT_OF_RANGE },
    { "AvgPool2d", "{\"kernel_size\": [4, 2], \"padding\": [2, 2]}",
      "padding (2, 2) must be at most half of kernel_size (4, 2)",
      NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_OUT_OF_RANGE },
    { "AdaptiveMaxPool2d", "{\"output_size\": 2, \"return_indices\": true}",
      "key 'return_indices' must be false", NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_OUT_OF_RANGE },
    { "MaxPool2d", "{\"kernal_size\": 3}", "unknown key 'kernal_size' (did you mean 'kernel_size'?)",
      NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_UNKNOWN_KEY },
    { "MaxPool2d", "{\"stride\": 2}", "missing required key 'kernel_size'",
      NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_MISSING_KEY },
    { "MaxPool2d", "{\"kernel_size\": 0}", "key 'kernel_size' must be >= 1",
      NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_OUT_OF_RANGE },
    { "AvgPool2d", "{\"kernel_size\": 2, \"stride\": [1, 2, 3]}", "key 'stride'",
      NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_WRONG_KIND },
    { "AvgPool2d", "{\"kernel_size\": 2, \"divisor_override\": 0}", "key 'divisor_override' must be >= 1",
      NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_OUT_OF_RANGE },
    { "AdaptiveAvgPool2d", "{}", "missing required key 'output_size'",
      NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_MISSING_KEY },
    { "AdaptiveAvgPool2d", "{\"output_size\": \"7\"}", "key 'output_size' expects",
      NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_WRONG_KIND },
  };
  Registry reg = default_registry ();
  for (auto &c : cases) {
    Error err;
    Module m = make (reg.get (), c.type, c.cfg, err);
    EXPECT_FALSE (m) << c.cfg;
    EXPECT_TRUE (err.matches (c.domain, c.code)) << c.cfg << ": " << err.message ();
    EXPECT_TRUE (contains (err.message (), c.want)) << c.cfg << ": " << err.message ();
  }
}

TEST (Pool, SchemaDefaultsMirrorPyTorch)
{
  Registry reg = default_registry ();
  const NnLayerType *t = nn_registry_lookup_type (reg.get (), "MaxPool2d", nullptr);
  ASSERT_NE (t, nullptr);
  std::vector<std::string> keys;
  for (guint i = 0; i < t->n_schema; i++)
    keys.push_back (t->schema[i].name);
  EXPECT_EQ (keys, (std::vector<std::string> { "kernel_size", "stride", "padding", "dilation",
                                               "return_indices", "ceil_mode" }));
  t = nn_registry_lookup_type (reg.get (), "AvgPool2d", nullptr);
  ASSERT_NE (t, nullptr);
  keys.clear ();
  for (guint i = 0; i < t->n_schema; i++)
    keys.push_back (t->schema[i].name);
  EXPECT_EQ (keys, (std::vector<std::string> { "kernel_size", "stride", "padding", "ceil_mode",
                                               "count_include_pad", "divisor_override" }));

  Error err;
  Module m = make (reg.get (), "AvgPool2d", "{\"kernel_size\": 2}", err);
  ASSERT_TRUE (m) << err.message ();
  EXPECT_TRUE (nn_module_config_is_null (m.get (), "stride"));
  EXPECT_TRUE (nn_module_config_bool (m.get (), "count_include_pad"));
  EXPECT_FALSE (nn_module_config_bool (m.get (), "ceil_mode"));
  EXPECT_TRUE (nn_module_config_is_null (m.get (), "divisor_override"));
  // Pool tuples are stored as given, not expanded.
  EXPECT_EQ (take (nn_module_config_repr (m.get (), "kernel_size")), "2");
}

TEST (Pool, DescriptorRoundTripKeepsTuplesAsGiven)
{
  Registry reg = default_registry ();
  for (auto tc : std::vector<std::pair<const char *, const char *>> {
           { "MaxPool2d", "{\"kernel_size\": 3, \"stride\": [2, 1], \"ceil_mode\": true}" },
           { "AvgPool2d", "{\"kernel_size\": [2, 3], \"divisor_override\": 4}" },
           { "AdaptiveAvgPool2d", "{\"output_size\": 1}" } }) {
    Error err;
    Module m = make (reg.get (), tc.first, tc.second, err);
    ASSERT_TRUE (m) << err.message ();
    JsonNode *node = nn_descriptor_module_to_node (m.get ());
    Module back (nn_descriptor_load_module_node (reg.get (), node, "copy", err.out ()));
    ASSERT_TRUE (back) << err.message ();
    JsonNode *again = nn_descriptor_module_to_node (back.get ());
    std::string a = take (json_to_string (node, FALSE)), b = take (json_to_string (again, FALSE));
    EXPECT_EQ (a, b);
    EXPECT_EQ (take (nn_module_to_string (m.get ())), take (nn_module_to_string (back.get ())));
    json_node_unref (node);
    json_node_unref (again);
  }
}

TEST (Pool, EmptyBatchGivesEmptyOutput)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "MaxPool2d", "{\"kernel_size\": 2}", err);
  ASSERT_TRUE (m) << err.message ();
  Tensor x = random_input (shape ({ 0, 2, 4, 4 }), 1);
  Tensor y = run_checked (m.get (), x.get (), shape ({ 0, 2, 2, 2 }), "empty batch");
  ASSERT_TRUE (y);
  EXPECT_EQ (nn_tensor_numel (y.get ()), 0);
}
