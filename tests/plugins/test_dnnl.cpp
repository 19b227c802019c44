// Tests for plugins/dnnl: every oneDNN provider against the OpenBLAS
// reference (NN_PROVIDERS-style rule "-dnnl") on random configs, within
// 1e-4; the supports() checks; weight changes reaching the cached
// reordered weights; and identical descriptions from both providers.
#include "nn-test.h"

#include <cmath>
#include <dlfcn.h>
#include <sstream>
#include <functional>
#include <thread>
#include <atomic>

extern "C" {
#include <nnkit/providers.h>
}

using namespace nntest;

namespace {

struct Pair {
  Registry fast, ref;
};

bool
dnnl_built ()
{
  Registry reg = default_registry ();
  Array list (nn_registry_list_plugins (reg.get ()));
  for (guint i = 0; i < list->len; i++)
    if (g_strcmp0 (((NnPluginInfo *) list->pdata[i])->name, "dnnl") == 0)
      return true;
  return false;
}

Pair
registries ()
{
  Pair p { default_registry (), default_registry () };
  EXPECT_TRUE (nn_registry_set_providers (p.fast.get (), "", nullptr));
  EXPECT_TRUE (nn_registry_set_providers (p.ref.get (), "-dnnl", nullptr));
  return p;
}

Module
create (NnRegistry *reg, const char *type, const std::string &cfg)
{
  Error e;
  Module m = make_module (reg, type, cfg, e, "layer");
  EXPECT_TRUE (m) << type << " " << cfg << ": " << e.message ();
  return m;
}

std::string
provider (NnModule *m)
{
  return nn_plugin_get_name (nn_module_get_plugin (m));
}

void
fill_random (NnTensor *t, GRand *rng, double lo, double hi)
{
  if (!t || t->dtype != NN_DTYPE_F32)
    return;
  float *d = nn_tensor_f32 (t);
  for (gint64 i = 0; i < nn_tensor_numel (t); i++)
    d[i] = (float) g_rand_double_range (rng, lo, hi);
}

// Gives @a and @b the same random parameters and buffers (variances
// positive).
void
same_weights (NnModule *a, NnModule *b, guint32 seed)
{
  GRand *ra = g_rand_new_with_seed (seed), *rb = g_rand_new_with_seed (seed);
  for (guint i = 0; i < nn_module_n_parameters (a); i++) {
    fill_random (nn_module_parameter_at (a, i, nullptr), ra, -1, 1);
    fill_random (nn_module_parameter_at (b, i, nullptr), rb, -1, 1);
  }
  for (guint i = 0; i < nn_module_n_buffers (a); i++) {
    fill_random (nn_module_buffer_at (a, i, nullptr, nullptr), ra, 0.1, 2);
    fill_random (nn_module_buffer_at (b, i, nullptr, nullptr), rb, 0.1, 2);
  }
  g_rand_free (ra);
  g_rand_free (rb);
}

Tensor
random_input (const NnShape &s, guint32 seed)
{
  Tensor t (nn_tensor_new (NN_DTYPE_F32, &s));
  GRand *r = g_rand_new_with_seed (seed);
  fill_random (t.get (), r, -2, 2);
  g_rand_free (r);
  return t;
}

// Runs both modules on the same input and compares within 1e-4 (relative
// to the magnitude for large outputs).
void
expect_same_output (NnModule *fast, NnModule *ref, const NnShape &in, guint32 seed,
                    const std::string &what)
{
  Tensor x = random_input (in, seed);
  Error ef, er;
  Tensor yf (nn_module_forward (fast, x.get (), ef.out ()));
  Tensor yr (nn_module_forward (ref, x.get (), er.out ()));
  ASSERT_TRUE (yr) << what << ": " << er.message ();
  ASSERT_TRUE (yf) << what << ": " << ef.message ();
  ASSERT_TRUE (nn_shape_equal (&yf->shape, &yr->shape))
    << what << ": " << take (nn_shape_to_string (&yf->shape)) << " vs "
    << take (nn_shape_to_string (&yr->shape));
  const float *a = nn_tensor_f32 (yf.get ()), *b = nn_tensor_f32 (yr.get ());
  double worst = 0;
  for (gint64 i = 0; i < nn_tensor_numel (yr.get ()); i++)
    worst = std::max (worst, (double) std::fabs (a[i] - b[i]) / std::max (1.0, (double) std::fabs (b[i])));
  EXPECT_LE (worst, 1e-4) << what;
}

gint64
pick (GRand *r, std::initializer_list<gint64> v)
{
  return *(v.begin () + g_rand_int_range (r, 0, (gint32) v.size ()));
}

// Whether @y (nullable: a failed forward) equals @want within 1e-4 of
// @scale, or of max (1, |want[i]|) per element when @scale is 0.
bool
close_to (NnTensor *y, NnTensor *want, double scale)
{
  if (!y)
    return false;
  const float *a = nn_tensor_f32 (y), *b = nn_tensor_f32 (want);
  for (gint64 i = 0; i < nn_tensor_numel (want); i++)
    if (std::fabs (a[i] - b[i])
        > 1e-4 * (scale > 0 ? scale : std::max (1.0, (double) std::fabs (b[i]))))
      return false;
  return true;
}

// Runs @body (given its thread's index) on @n threads at once; returns
// the sum of what the calls return (their mismatches).
int
on_threads (int n, const std::function<int (int)> &body)
{
  std::atomic<int> bad { 0 };
  std::vector<std::thread> threads;
  for (int t = 0; t < n; t++)
    threads.emplace_back ([&, t] { bad += body (t); });
  for (auto &t : threads)
    t.join ();
  return bad.load ();
}

} // namespace

#define SKIP_WITHOUT_DNNL() \
  if (!dnnl_built ()) GTEST_SKIP () << "built without oneDNN"

TEST (Dnnl, Conv2dMatchesReferenceOnRandomConfigs)
{
  SKIP_WITHOUT_DNNL ();
  Pair p = registries ();
  GRand *r = g_rand_new_with_seed (7);
  for (int i = 0; i < 40; i++) {
    gint64 groups = pick (r, { 1, 1, 2, 4 });
    gint64 cin = groups * pick (r, { 1, 3, 8 }), cout = groups * pick (r, { 1, 4, 16 });
    bool depthwise = i % 5 == 0;
    if (depthwise) { groups = cin = pick (r, { 8, 32 }); cout = cin * pick (r, { 1, 2 }); }
    gint64 kh = pick (r, { 1, 3, 5 }), kw = pick (r, { 1, 3 });
    gint64 sh = pick (r, { 1, 2 }), sw = pick (r, { 1, 2 });
    gint64 ph = pick (r, { 0, 1, 2 }), pw = pick (r, { 0, 1 });
    gint64 dh = pick (r, { 1, 2 }), dw = pick (r, { 1, 1, 3 });
    bool bias = g_rand_boolean (r);
    std::string cfg = g_strdup_printf (
      R"({"in_channels": %ld, "out_channels": %ld, "kernel_size": [%ld, %ld],
          "stride": [%ld, %ld], "padding": [%ld, %ld], "dilation": [%ld, %ld],
          "groups": %ld, "bias": %s})", (long) cin, (long) cout, (long) kh, (long) kw,
      (long) sh, (long) sw, (long) ph, (long) pw, (long) dh, (long) dw, (long) groups,
      bias ? "true" : "false");
    if (i == 3) {
      cin = 4;
      cfg = R"({"in_channels": 4, "out_channels": 6, "kernel_size": 3, "padding": "same", "dilation": 2})";
    }
    Module f = create (p.fast.get (), "Conv2d", cfg);
    Module rm = create (p.ref.get (), "Conv2d", cfg);
    ASSERT_TRUE (f && rm);
    EXPECT_EQ ("dnnl", provider (f.get ()));
    EXPECT_EQ ("conv", provider (rm.get ()));
    same_weights (f.get (), rm.get (), 100 + i);
    gint64 n = pick (r, { 1, 2 }), h = pick (r, { 11, 16, 23 }), w = pick (r, { 9, 16 });
    NnShape in = i % 7 == 6 ? shape ({ cin, h, w }) : shape ({ n, cin, h, w });
    expect_same_output (f.get (), rm.get (), in, 1000 + i, cfg);
    // A second call reuses the primitive; another shape rebuilds it.
    expect_same_output (f.get (), rm.get (), in, 2000 + i, cfg + " (again)");
    expect_same_output (f.get (), rm.get (), shape ({ n + 1, cin, h + 2, w + 1 }), 3000 + i,
                        cfg + " (new shape)");
  }
  g_rand_free (r);
}

// 3x3 stride-1 convolutions run Winograd from batch 2 (at batch 1 only
// where its memory is small, which none of these is: next test), chosen
// by the shape alone: every forward agrees with the
// reference within 1e-4, repeated forwards give the same floats, and on
// AVX-512 (where oneDNN 2.6 has f32 Winograd) a batch's first image is
// rounded differently from that image run alone at batch 1, so another
// algorithm ran.  Batch 8 takes oneDNN's F(4,3) kernel, small batches
// F(2,3); odd sizes leave partial tiles.  Winograd's error grows with the
// output's magnitude, not per element (its transforms mix neighbours of
// different size), so it is compared as the conformance suite compares
// models: within 1e-4 of the largest |reference| (here ~25, outputs of
// 1,152 random products; F(4,3) then differs by up to 1.4e-4 on an
// element near 0, the direct kernels by ~1e-5).
TEST (Dnnl, Conv2dWinogradFromBatchTwo)
{
  SKIP_WITHOUT_DNNL ();
  Pair p = registries ();
  // NN_DNNL_WINOGRAD=off or =always changes which runs take it.
  bool default_mode = g_getenv ("NN_DNNL_WINOGRAD") == nullptr;
  bool avx512 = nn_cpu_has (nn_cpu_info_get (), NN_CPU_AVX512F);
  // Results of fewer than 128 pixels (N x OH x OW) keep the direct
  // kernels (small); batch 1 keeps them too.
  struct { gint64 cin, cout, n, hw; bool bias, small; } cases[] = {
    { 64, 64, 1, 16, true, false },
    { 64, 64, 8, 13, false, false },
    { 32, 64, 4, 9, true, false },
    { 128, 128, 8, 7, true, false },
    { 64, 64, 2, 8, true, false },
    { 64, 64, 2, 7, true, true },
  };
  int k = 0;
  for (auto &c : cases) {
    std::string cfg = g_strdup_printf (
      R"({"in_channels": %ld, "out_channels": %ld, "kernel_size": 3, "padding": 1, "bias": %s})",
      (long) c.cin, (long) c.cout, c.bias ? "true" : "false");
    Module f = create (p.fast.get (), "Conv2d", cfg);
    Module rm = create (p.ref.get (), "Conv2d", cfg);
    ASSERT_TRUE (f && rm);
    same_weights (f.get (), rm.get (), 300 + k);
    Tensor x = random_input (shape ({ c.n, c.cin, c.hw, c.hw }), 400 + k);
    Error er;
    Tensor want (nn_module_forward (rm.get (), x.get (), er.out ()));
    ASSERT_TRUE (want) << er.message ();
    std::vector<Tensor> ys;
    for (int run = 0; run < 3; run++) {
      Error ef;
      ys.emplace_back (nn_module_forward (f.get (), x.get (), ef.out ()));
      ASSERT_TRUE (ys.back ()) << cfg << ": " << ef.message ();
      const float *a = nn_tensor_f32 (ys.back ().get ()), *b = nn_tensor_f32 (want.get ());
      double worst = 0, scale = 1;
      for (gint64 i = 0; i < nn_tensor_numel (want.get ()); i++) {
        worst = std::max (worst, (double) std::fabs (a[i] - b[i]));
        scale = std::max (scale, (double) std::fabs (b[i]));
      }
      EXPECT_LE (worst, 1e-4 * scale) << cfg << " forward " << run + 1;
    }
    gint64 n = nn_tensor_numel (want.get ());
    for (int run = 1; run < 3; run++)
      EXPECT_EQ (0, memcmp (nn_tensor_f32 (ys[0].get ()), nn_tensor_f32 (ys[run].get ()),
                            (size_t) n * sizeof (float)))
        << cfg << ": forward " << run + 1 << " repeats the first";
    if (c.n == 1 || !default_mode || !avx512) {
      k++;
      continue;
    }
    // The first image alone, at batch 1: the direct kernels.
    Tensor x1 = random_input (shape ({ 1, c.cin, c.hw, c.hw }), 1);
    memcpy (nn_tensor_f32 (x1.get ()), nn_tensor_f32 (x.get ()), nn_tensor_nbytes (x1.get ()));
    nn_tensor_mark_written (x1.get ());
    Error e1;
    Tensor y1 (nn_module_forward (f.get (), x1.get (), e1.out ()));
    ASSERT_TRUE (y1) << cfg << ": " << e1.message ();
    bool differs = memcmp (nn_tensor_f32 (y1.get ()), nn_tensor_f32 (ys[0].get ()),
                           nn_tensor_nbytes (y1.get ())) != 0;
    EXPECT_EQ (!c.small, differs) << cfg << ": batch " << c.n << "'s algorithm";
    k++;
  }
}

// At batch 1 a convolution takes Winograd only where its weights' growth
// and its scratchpad are no larger than its result: 64 channels at 56x56
// (resnet's first stage) do, 128 at 28x28 (a scratchpad of ~10 MB) keep
// the direct kernels.  Which kernel ran is read off oneDNN's own log
// (verbose level 1: one line per primitive run naming its kernel).
TEST (Dnnl, Conv2dWinogradAtBatchOneOnlyWhereItsMemoryIsSmall)
{
  SKIP_WITHOUT_DNNL ();
  if (g_getenv ("NN_DNNL_WINOGRAD") || !nn_cpu_has (nn_cpu_info_get (), NN_CPU_AVX512F))
    GTEST_SKIP () << "oneDNN 2.6 has float32 Winograd on AVX-512 only; default mode only";
  Pair p = registries ();
  void *lib = dlopen ("libdnnl.so.2", RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE (nullptr, lib) << "the dnnl provider loaded oneDNN";
  auto set_verbose = (int (*) (int)) dlsym (lib, "dnnl_set_verbose");
  ASSERT_NE (nullptr, set_verbose);
  struct { gint64 c, hw; bool winograd; } cases[] = { { 64, 56, true }, { 128, 28, false } };
  int k = 0;
  for (auto &c : cases) {
    std::string cfg = g_strdup_printf (
      R"({"in_channels": %ld, "out_channels": %ld, "kernel_size": 3, "padding": 1})",
      (long) c.c, (long) c.c);
    Module f = create (p.fast.get (), "Conv2d", cfg);
    Module rm = create (p.ref.get (), "Conv2d", cfg);
    ASSERT_TRUE (f && rm);
    same_weights (f.get (), rm.get (), 500 + k);
    Tensor x = random_input (shape ({ 1, c.c, c.hw, c.hw }), 600 + k);
    Error er, ef;
    Tensor want (nn_module_forward (rm.get (), x.get (), er.out ()));
    ASSERT_TRUE (want) << er.message ();
    testing::internal::CaptureStdout ();
    set_verbose (1);
    Tensor got (nn_module_forward (f.get (), x.get (), ef.out ()));
    set_verbose (0);
    fflush (stdout);
    std::string log = testing::internal::GetCapturedStdout ();
    ASSERT_TRUE (got) << cfg << ": " << ef.message ();
    std::string problem = g_strdup_printf ("mb1_ic%ldoc%ld_ih%ld", (long) c.c, (long) c.c, (long) c.hw);
    bool ran = false, wino = false;
    std::istringstream lines (log);
    for (std::string line; std::getline (lines, line);)
      if (line.find (",exec,") != std::string::npos && line.find (",convolution,") != std::string::npos
          && line.find (problem) != std::string::npos) {
        ran = true;
        wino = wino || line.find ("wino") != std::string::npos;
      }
    EXPECT_TRUE (ran) << cfg << ": no convolution " << problem << " in oneDNN's log:\n" << log;
    EXPECT_EQ (c.winograd, wino) << cfg << " at batch 1:\n" << log;
    const float *a = nn_tensor_f32 (got.get ()), *b = nn_tensor_f32 (want.get ());
    double worst = 0, scale = 1;
    for (gint64 i = 0; i < nn_tensor_numel (want.get ()); i++) {
      worst = std::max (worst, (double) std::fabs (a[i] - b[i]));
      scale = std::max (scale, (double) std::fabs (b[i]));
    }
    EXPECT_LE (worst, 1e-4 * scale) << cfg;
    k++;
  }
  dlclose (lib);
}

TEST (Dnnl, LinearMatchesReference)
{
  SKIP_WITHOUT_DNNL ();
  Pair p = registries ();
  struct { gint64 in, out; bool bias; NnShape x; } cases[] = {
    { 16, 8, true, shape ({ 1, 16 }) },
    { 512, 1000, true, shape ({ 4, 512 }) },
    { 7, 3, false, shape ({ 2, 5, 7 }) },
    { 33, 65, true, shape ({ 33 }) },
  };
  int k = 0;
  for (auto &c : cases) {
    std::string cfg = g_strdup_printf (R"({"in_features": %ld, "out_features": %ld, "bias": %s})",
                                       (long) c.in, (long) c.out, c.bias ? "true" : "false");
    Module f = create (p.fast.get (), "Linear", cfg);
    Module rm = create (p.ref.get (), "Linear", cfg);
    ASSERT_TRUE (f && rm);
    EXPECT_EQ ("dnnl", provider (f.get ()));
    same_weights (f.get (), rm.get (), 50 + k);
    expect_same_output (f.get (), rm.get (), c.x, 60 + k, cfg);
    k++;
  }
}

TEST (Dnnl, PoolsMatchReference)
{
  SKIP_WITHOUT_DNNL ();
  Pair p = registries ();
  const char *max_cfgs[] = {
    R"({"kernel_size": 3, "stride": 2, "padding": 1})",
    R"({"kernel_size": 2})",
    R"({"kernel_size": 3, "stride": 2, "ceil_mode": true})",
    R"({"kernel_size": [3, 2], "stride": [1, 2], "padding": [1, 0], "dilation": [2, 1]})",
  };
  int k = 0;
  for (const char *cfg : max_cfgs) {
    Module f = create (p.fast.get (), "MaxPool2d", cfg);
    Module rm = create (p.ref.get (), "MaxPool2d", cfg);
    ASSERT_TRUE (f && rm);
    EXPECT_EQ ("dnnl", provider (f.get ()));
    expect_same_output (f.get (), rm.get (), shape ({ 2, 3, 15, 12 }), 70 + k, cfg);
    expect_same_output (f.get (), rm.get (), shape ({ 4, 9, 8 }), 80 + k++, cfg);
  }
  const char *avg_cfgs[] = {
    R"({"kernel_size": 3, "stride": 2, "padding": 1})",
    R"({"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": false})",
    R"({"kernel_size": 3, "stride": 2, "ceil_mode": true, "count_include_pad": false})",
    R"({"kernel_size": [2, 3]})",
  };
  for (const char *cfg : avg_cfgs) {
    Module f = create (p.fast.get (), "AvgPool2d", cfg);
    Module rm = create (p.ref.get (), "AvgPool2d", cfg);
    ASSERT_TRUE (f && rm);
    EXPECT_EQ ("dnnl", provider (f.get ()));
    expect_same_output (f.get (), rm.get (), shape ({ 2, 3, 14, 13 }), 90 + k++, cfg);
  }
}

TEST (Dnnl, MaxPoolPropagatesNanAsPyTorch)
{
  SKIP_WITHOUT_DNNL ();
  Pair p = registries ();
  const char *cfg = R"({"kernel_size": 2})";
  Module f = create (p.fast.get (), "MaxPool2d", cfg);
  ASSERT_EQ ("dnnl", provider (f.get ()));
  Tensor x = random_input (shape ({ 1, 2, 4, 4 }), 3);
  nn_tensor_f32 (x.get ())[5] = NAN;   // in the first output's window
  Error e;
  Tensor y (nn_module_forward (f.get (), x.get (), e.out ()));
  ASSERT_TRUE (y) << e.message ();
  EXPECT_TRUE (std::isnan (nn_tensor_f32 (y.get ())[0]));
  EXPECT_FALSE (std::isnan (nn_tensor_f32 (y.get ())[1]));
}

TEST (Dnnl, BatchNormMatchesReference)
{
  SKIP_WITHOUT_DNNL ();
  Pair p = registries ();
  int k = 0;
  for (const char *cfg : { R"({"num_features": 16})", R"({"num_features": 5, "affine": false, "eps": 0.001})" }) {
    Module f = create (p.fast.get (), "BatchNorm2d", cfg);
    Module rm = create (p.ref.get (), "BatchNorm2d", cfg);
    ASSERT_TRUE (f && rm);
    EXPECT_EQ ("dnnl", provider (f.get ()));
    same_weights (f.get (), rm.get (), 40 + k);
    gint64 c = k == 0 ? 16 : 5;
    expect_same_output (f.get (), rm.get (), shape ({ 2, c, 7, 9 }), 30 + k++, cfg);
  }
}

TEST (Dnnl, UnsupportedConfigsStayWithTheReference)
{
  SKIP_WITHOUT_DNNL ();
  Registry reg = default_registry ();
  ASSERT_TRUE (nn_registry_set_providers (reg.get (), "", nullptr));
  struct { const char *type, *cfg, *plugin; } cases[] = {
    { "Conv2d", R"({"in_channels": 2, "out_channels": 2, "kernel_size": 3, "padding": 1, "padding_mode": "reflect"})", "conv" },
    { "Conv2d", R"({"in_channels": 2, "out_channels": 2, "kernel_size": 3})", "dnnl" },
    { "AvgPool2d", R"({"kernel_size": 3, "ceil_mode": true})", "pool" },
    { "AvgPool2d", R"({"kernel_size": 3, "divisor_override": 2})", "pool" },
    { "MaxPool2d", R"({"kernel_size": 2, "return_indices": true})", "pool" },
    { "MaxPool2d", R"({"kernel_size": 2})", "dnnl" },
    { "BatchNorm2d", R"({"num_features": 3, "track_running_stats": false})", "norm" },
  };
  for (auto &c : cases) {
    Module m = create (reg.get (), c.type, c.cfg);
    ASSERT_TRUE (m);
    EXPECT_EQ (c.plugin, provider (m.get ())) << c.type << " " << c.cfg;
  }
}

TEST (Dnnl, BadInputIsReportedAsByTheReference)
{
  SKIP_WITHOUT_DNNL ();
  Pair p = registries ();
  const char *cfg = R"({"in_channels": 3, "out_channels": 4, "kernel_size": 3})";
  Module f = create (p.fast.get (), "Conv2d", cfg);
  Module rm = create (p.ref.get (), "Conv2d", cfg);
  Tensor x = random_input (shape ({ 1, 5, 8, 8 }), 1);
  Error ef, er;
  EXPECT_FALSE (Tensor (nn_module_forward (f.get (), x.get (), ef.out ())));
  EXPECT_FALSE (Tensor (nn_module_forward (rm.get (), x.get (), er.out ())));
  EXPECT_EQ (er.message (), ef.message ());
  EXPECT_TRUE (contains (ef.message (), "Conv2d: expected input [N, 3, H, W]")) << ef.message ();
}

TEST (Dnnl, NewWeightsReachTheCachedLayout)
{
  SKIP_WITHOUT_DNNL ();
  Pair p = registries ();
  const char *cfg = R"({"in_channels": 8, "out_channels": 16, "kernel_size": 3, "padding": 1})";
  Module f = create (p.fast.get (), "Conv2d", cfg);
  Module rm = create (p.ref.get (), "Conv2d", cfg);
  same_weights (f.get (), rm.get (), 5);
  expect_same_output (f.get (), rm.get (), shape ({ 1, 8, 12, 12 }), 6, "before");
  // load_state_dict and surgery put new tensors in place.
  for (NnModule *m : { f.get (), rm.get () }) {
    NnTensor *old = nn_module_get_parameter (m, "weight");
    Tensor fresh (nn_tensor_new (NN_DTYPE_F32, &old->shape));
    GRand *r = g_rand_new_with_seed (99);
    fill_random (fresh.get (), r, -3, 3);
    g_rand_free (r);
    Error e;
    ASSERT_TRUE (nn_module_set_tensor (m, "weight", fresh.get (), e.out ())) << e.message ();
  }
  expect_same_output (f.get (), rm.get (), shape ({ 1, 8, 12, 12 }), 6, "after new weights");
}

TEST (Dnnl, SeveralThreadsForwardOneModule)
{
  SKIP_WITHOUT_DNNL ();
  Pair p = registries ();
  const char *cfg = R"({"in_channels": 8, "out_channels": 8, "kernel_size": 3, "padding": 1})";
  Module f = create (p.fast.get (), "Conv2d", cfg);
  Module rm = create (p.ref.get (), "Conv2d", cfg);
  same_weights (f.get (), rm.get (), 11);
  // Two shapes, so the threads also race to rebuild the primitive.
  Tensor xs[2] = { random_input (shape ({ 1, 8, 10, 10 }), 12),
                   random_input (shape ({ 2, 8, 7, 9 }), 13) };
  Tensor want[2] = { Tensor (nn_module_forward (rm.get (), xs[0].get (), nullptr)),
                     Tensor (nn_module_forward (rm.get (), xs[1].get (), nullptr)) };
  ASSERT_TRUE (want[0] && want[1]);
  EXPECT_EQ (0, on_threads (4, [&] (int t) {
    int bad = 0;
    for (int k = 0; k < 10; k++) {
      int which = (t + k) % 2;
      Tensor y (nn_module_forward (f.get (), xs[which].get (), nullptr));
      bad += !close_to (y.get (), want[which].get (), 0);
    }
    return bad;
  }));
}

// Scratchpads come from one pool shared by all primitives (dnnl_scratch.c):
// modules running at once on several threads must each get a buffer of
// their own.  Winograd convolutions at batch 2 have scratchpads of tens
// of KB that a shared buffer would garble; each thread's own module, of
// its own size, is compared with the reference on every forward.
TEST (Dnnl, SeveralModulesShareTheScratchpadPool)
{
  SKIP_WITHOUT_DNNL ();
  Pair p = registries ();
  const int n_threads = 4;
  std::vector<Module> fast, ref;
  std::vector<Tensor> xs, want;
  for (int t = 0; t < n_threads; t++) {
    gint64 c = 16 * (t + 1);
    std::string cfg = g_strdup_printf (
      R"({"in_channels": %ld, "out_channels": %ld, "kernel_size": 3, "padding": 1})",
      (long) c, (long) c);
    fast.emplace_back (create (p.fast.get (), "Conv2d", cfg));
    ref.emplace_back (create (p.ref.get (), "Conv2d", cfg));
    ASSERT_TRUE (fast.back () && ref.back ());
    same_weights (fast.back ().get (), ref.back ().get (), 700 + t);
    xs.emplace_back (random_input (shape ({ 2, c, 12 + 2 * t, 12 + 2 * t }), 800 + t));
    want.emplace_back (nn_module_forward (ref.back ().get (), xs.back ().get (), nullptr));
    ASSERT_TRUE (want.back ());
  }
  EXPECT_EQ (0, on_threads (n_threads, [&] (int t) {
    // Winograd's error scales with the output's magnitude (see above).
    const float *b = nn_tensor_f32 (want[t].get ());
    double scale = 1;
    for (gint64 i = 0; i < nn_tensor_numel (want[t].get ()); i++)
      scale = std::max (scale, (double) std::fabs (b[i]));
    int bad = 0;
    for (int k = 0; k < 20; k++) {
      Tensor y (nn_module_forward (fast[t].get (), xs[t].get (), nullptr));
      bad += !close_to (y.get (), want[t].get (), scale);
    }
    return bad;
  }));
}

TEST (Dnnl, DescribesModulesAsTheReference)
{
  SKIP_WITHOUT_DNNL ();
  Pair p = registries ();
  struct { const char *type, *cfg; } cases[] = {
    { "Conv2d", R"({"in_channels": 4, "out_channels": 8, "kernel_size": 3, "stride": 2, "bias": false})" },
    { "Linear", R"({"in_features": 4, "out_features": 2})" },
    { "MaxPool2d", R"({"kernel_size": 3, "stride": 2, "padding": 1})" },
    { "AvgPool2d", R"({"kernel_size": 2})" },
    { "BatchNorm2d", R"({"num_features": 8})" },
  };
  for (auto &c : cases) {
    Module f = create (p.fast.get (), c.type, c.cfg);
    Module rm = create (p.ref.get (), c.type, c.cfg);
    ASSERT_TRUE (f && rm);
    EXPECT_EQ (take (nn_module_to_string (rm.get ())), take (nn_module_to_string (f.get ())));
    NnShape in = g_str_equal (c.type, "Linear") ? shape ({ 3, 4 }) : shape ({ 1, g_str_equal (c.type, "BatchNorm2d") ? 8 : 4, 9, 9 });
    NnShape a, b;
    ASSERT_TRUE (nn_module_infer_shape (f.get (), &in, &a, nullptr));
    ASSERT_TRUE (nn_module_infer_shape (rm.get (), &in, &b, nullptr));
    EXPECT_TRUE (nn_shape_equal (&a, &b)) << c.type;
  }
}

// --- matrix products and attention ----------------------------------------

namespace {

// Calls op or module @m with positional tensors @ts and keyword @kwargs
// (nullable, transfer full); the result value, or null with @e set.
ValueRef
call_with (NnModule *m, std::initializer_list<NnTensor *> ts, NnValue *kwargs, Error &e)
{
  ValueRef args (nn_value_new_tuple ());
  for (NnTensor *t : ts)
    nn_value_append (args.get (), t ? nn_value_new_tensor (t) : nn_value_new_none ());
  ValueRef kw (kwargs);
  return ValueRef (nn_module_call (m, args.get (), kw.get (), e.out ()));
}

// Every tensor of @a and @b (a tensor, or a tuple of tensors and None)
// equal within 1e-4 relative to magnitudes above 1.
void
expect_same_values (const NnValue *a, const NnValue *b, const std::string &what)
{
  ASSERT_EQ (nn_value_kind (a), nn_value_kind (b)) << what;
  if (nn_value_kind (a) == NN_VALUE_TUPLE) {
    ASSERT_EQ (nn_value_n_items (a), nn_value_n_items (b)) << what;
    for (guint i = 0; i < nn_value_n_items (a); i++)
      expect_same_values (nn_value_item (a, i), nn_value_item (b, i), what + " #" + std::to_string (i));
    return;
  }
  if (nn_value_is_none (a))
    return;
  NnTensor *x = nn_value_get_tensor (a), *y = nn_value_get_tensor (b);
  ASSERT_TRUE (x && y) << what;
  ASSERT_EQ (x->dtype, y->dtype) << what;
  ASSERT_TRUE (nn_shape_equal (&x->shape, &y->shape))
    << what << ": " << shape_text (x->shape) << " vs " << shape_text (y->shape);
  double worst = 0;
  for (gint64 i = 0; i < nn_tensor_numel (y); i++) {
    double u = x->dtype == NN_DTYPE_F64 ? ((double *) x->data)[i] : nn_tensor_f32 (x)[i];
    double v = y->dtype == NN_DTYPE_F64 ? ((double *) y->data)[i] : nn_tensor_f32 (y)[i];
    worst = std::max (worst, std::fabs (u - v) / std::max (1.0, std::fabs (v)));
  }
  EXPECT_LE (worst, 1e-4) << what;
}

Tensor
random_f64 (const NnShape &s, guint32 seed)
{
  Tensor t (nn_tensor_new (NN_DTYPE_F64, &s));
  GRand *r = g_rand_new_with_seed (seed);
  for (gint64 i = 0; i < nn_tensor_numel (t.get ()); i++)
    ((double *) t->data)[i] = g_rand_double_range (r, -2, 2);
  g_rand_free (r);
  return t;
}

// The product @a @ @b computed here, independently of both providers:
// torch.matmul's rules for 1-d operands and broadcast batch dims.
Tensor
naive_matmul (NnTensor *a, NnTensor *b)
{
  NnShape as = a->shape, bs = b->shape;
  bool drop_m = as.ndim == 1, drop_n = bs.ndim == 1;
  if (drop_m) as = shape ({ 1, a->shape.dims[0] });
  if (drop_n) bs = shape ({ b->shape.dims[0], 1 });
  guint nd = std::max (as.ndim, bs.ndim);
  gint64 ad[8], bd[8], cd[8];
  for (guint i = 0; i < nd; i++) {
    ad[i] = i < nd - as.ndim ? 1 : as.dims[i - (nd - as.ndim)];
    bd[i] = i < nd - bs.ndim ? 1 : bs.dims[i - (nd - bs.ndim)];
    cd[i] = std::max (ad[i], bd[i]);
  }
  gint64 m = ad[nd - 2], k = ad[nd - 1], n = bd[nd - 1];
  cd[nd - 2] = m;
  cd[nd - 1] = n;
  NnShape out = {};
  for (guint i = 0; i + 2 < nd; i++) out.dims[out.ndim++] = cd[i];
  if (!drop_m) out.dims[out.ndim++] = m;
  if (!drop_n) out.dims[out.ndim++] = n;
  Tensor c (nn_tensor_new (NN_DTYPE_F32, &out));
  gint64 batches = 1;
  for (guint i = 0; i + 2 < nd; i++) batches *= cd[i];
  const float *pa = nn_tensor_f32 (a), *pb = nn_tensor_f32 (b);
  float *pc = nn_tensor_f32 (c.get ());
  for (gint64 bi = 0; bi < batches; bi++) {
    gint64 rem = bi, oa = 0, ob = 0, sa = 1, sb = 1;
    for (guint i = nd - 2; i-- > 0;) {
      gint64 idx = rem % cd[i];
      rem /= cd[i];
      oa += (ad[i] == 1 ? 0 : idx) * sa;
      ob += (bd[i] == 1 ? 0 : idx) * sb;
      sa *= ad[i];
      sb *= bd[i];
    }
    for (gint64 i = 0; i < m; i++)
      for (gint64 j = 0; j < n; j++) {
        double s = 0;
        for (gint64 l = 0; l < k; l++)
          s += (double) pa[(oa * m + i) * k + l] * pb[(ob * k + l) * n + j];
        pc[(bi * m + i) * n + j] = (float) s;
      }
  }
  return c;
}

} // namespace

TEST (Dnnl, MatrixProductsMatchReferenceAndNaiveProduct)
{
  SKIP_WITHOUT_DNNL ();
  Pair p = registries ();
  struct { const char *op; NnShape a, b; } cases[] = {
    { "torch.matmul", shape ({ 3, 4 }), shape ({ 4, 5 }) },
    { "matmul", shape ({ 4 }), shape ({ 4 }) },
    { "matmul", shape ({ 4 }), shape ({ 4, 3 }) },
    { "matmul", shape ({ 2, 4 }), shape ({ 4 }) },
    { "operator.matmul", shape ({ 2, 3, 17, 8 }), shape ({ 2, 3, 8, 19 }) },
    { "Tensor.__matmul__", shape ({ 2, 1, 3, 4 }), shape ({ 5, 4, 2 }) },
    { "matmul", shape ({ 3, 4 }), shape ({ 2, 4, 5 }) },
    { "matmul", shape ({ 2, 3, 4 }), shape ({ 4 }) },
    { "matmul", shape ({ 5 }), shape ({ 2, 3, 5, 6 }) },
    { "matmul", shape ({ 12, 197, 64 }), shape ({ 12, 64, 197 }) },
    { "torch.mm", shape ({ 3, 4 }), shape ({ 4, 2 }) },
    { "torch.bmm", shape ({ 2, 3, 4 }), shape ({ 2, 4, 5 }) },
  };
  int k = 0;
  for (auto &c : cases) {
    std::string what = std::string (c.op) + " " + shape_text (c.a) + " @ " + shape_text (c.b);
    Error e;
    Module f = make_module (p.fast.get (), c.op, "{}", e, "op");
    Module rm = make_module (p.ref.get (), c.op, "{}", e, "op");
    ASSERT_TRUE (f && rm) << what;
    EXPECT_EQ ("dnnl", provider (f.get ())) << what;
    EXPECT_EQ ("ops", provider (rm.get ())) << what;
    Tensor a = random_input (c.a, 200 + k), b = random_input (c.b, 300 + k);
    Error ef, er;
    ValueRef yf = call_with (f.get (), { a.get (), b.get () }, nullptr, ef);
    ValueRef yr = call_with (rm.get (), { a.get (), b.get () }, nullptr, er);
    ASSERT_TRUE (yf) << what << ": " << ef.message ();
    ASSERT_TRUE (yr) << what << ": " << er.message ();
    expect_same_values (yf.get (), yr.get (), what);
    ValueRef naive (nn_value_take_tensor (naive_matmul (a.get (), b.get ()).release ()));
    expect_same_values (yf.get (), naive.get (), what + " (naive)");
    k++;
  }
}

TEST (Dnnl, FunctionalLinearMatchesReference)
{
  SKIP_WITHOUT_DNNL ();
  Pair p = registries ();
  struct { NnShape x; gint64 out; bool bias; } cases[] = {
    { shape ({ 2, 3, 4 }), 5, true }, { shape ({ 3, 4 }), 2, false },
    { shape ({ 1, 197, 96 }), 288, true }, { shape ({ 7 }), 3, true },
  };
  int k = 0;
  for (auto &c : cases) {
    gint64 in = c.x.dims[c.x.ndim - 1];
    std::string what = "F.linear " + shape_text (c.x) + " -> " + std::to_string (c.out);
    Error e;
    Module f = make_module (p.fast.get (), "torch.nn.functional.linear", "{}", e, "op");
    Module rm = make_module (p.ref.get (), "torch.nn.functional.linear", "{}", e, "op");
    ASSERT_TRUE (f && rm);
    EXPECT_EQ ("dnnl", provider (f.get ()));
    Tensor x = random_input (c.x, 400 + k), w = random_input (shape ({ c.out, in }), 500 + k);
    Tensor b = random_input (shape ({ c.out }), 600 + k);
    Error ef, er;
    ValueRef yf = call_with (f.get (), { x.get (), w.get (), c.bias ? b.get () : nullptr }, nullptr, ef);
    ValueRef yr = call_with (rm.get (), { x.get (), w.get (), c.bias ? b.get () : nullptr }, nullptr, er);
    ASSERT_TRUE (yf && yr) << what << ": " << ef.message () << er.message ();
    expect_same_values (yf.get (), yr.get (), what);
    k++;
  }
}

// What oneDNN's path does not take runs the reference: other dtypes,
// empty operands, a bias that only broadcasts, and errors, reported in
// the reference's words.
TEST (Dnnl, MatrixProductsFallBackToTheReference)
{
  SKIP_WITHOUT_DNNL ();
  Pair p = registries ();
  Error e;
  Module f = make_module (p.fast.get (), "matmul", "{}", e, "op");
  Module rm = make_module (p.ref.get (), "matmul", "{}", e, "op");
  ASSERT_TRUE (f && rm);
  ASSERT_EQ ("dnnl", provider (f.get ()));
  {
    Tensor a = random_f64 (shape ({ 3, 4 }), 1), b = random_f64 (shape ({ 4, 2 }), 2);
    Error ef, er;
    ValueRef yf = call_with (f.get (), { a.get (), b.get () }, nullptr, ef);
    ValueRef yr = call_with (rm.get (), { a.get (), b.get () }, nullptr, er);
    ASSERT_TRUE (yf && yr) << ef.message ();
    EXPECT_EQ (NN_DTYPE_F64, nn_value_get_tensor (yf.get ())->dtype);
    expect_same_values (yf.get (), yr.get (), "float64");
  }
  {
    NnShape zs = shape ({ 0, 4 });
    Tensor a (nn_tensor_new (NN_DTYPE_F32, &zs));
    Tensor b = random_input (shape ({ 4, 3 }), 3);
    Error ef;
    ValueRef yf = call_with (f.get (), { a.get (), b.get () }, nullptr, ef);
    ASSERT_TRUE (yf) << ef.message ();
    NnShape want = shape ({ 0, 3 });
    EXPECT_TRUE (nn_shape_equal (&nn_value_get_tensor (yf.get ())->shape, &want));
  }
  struct { const char *op; NnShape a, b; const char *msg; } bad[] = {
    { "matmul", shape ({ 3, 4 }), shape ({ 5, 2 }), "mat1 and mat2 shapes cannot be multiplied (3x4 and 5x2)" },
    { "matmul", shape ({ 2, 3, 4 }), shape ({ 3, 4, 2 }), "must match the size of tensor b" },
    { "bmm", shape ({ 1, 3, 4 }), shape ({ 2, 4, 5 }), "Expected size for first two dimensions of batch2 tensor" },
    { "mm", shape ({ 2, 3, 4 }), shape ({ 4, 5 }), "self must be a matrix" },
  };
  for (auto &c : bad) {
    Module bf = make_module (p.fast.get (), c.op, "{}", e, "op");
    Module br = make_module (p.ref.get (), c.op, "{}", e, "op");
    ASSERT_TRUE (bf && br);
    Tensor a = random_input (c.a, 4), b = random_input (c.b, 5);
    Error ef, er;
    EXPECT_FALSE (call_with (bf.get (), { a.get (), b.get () }, nullptr, ef)) << c.op;
    EXPECT_FALSE (call_with (br.get (), { a.get (), b.get () }, nullptr, er)) << c.op;
    EXPECT_EQ (er.message (), ef.message ());
    EXPECT_TRUE (contains (ef.message (), c.msg)) << ef.message ();
  }
  // F.linear with a bias that broadcasts but is not [out_features].
  Module lf = make_module (p.fast.get (), "linear", "{}", e, "op");
  Module lr = make_module (p.ref.get (), "linear", "{}", e, "op");
  Tensor x = random_input (shape ({ 2, 3, 4 }), 6), w = random_input (shape ({ 5, 4 }), 7);
  Tensor b = random_input (shape ({ 3, 1 }), 8);
  Error ef, er;
  ValueRef yf = call_with (lf.get (), { x.get (), w.get (), b.get () }, nullptr, ef);
  ValueRef yr = call_with (lr.get (), { x.get (), w.get (), b.get () }, nullptr, er);
  ASSERT_TRUE (yf && yr) << ef.message ();
  expect_same_values (yf.get (), yr.get (), "linear, broadcast bias");
}

// Provider listings (what `nnctl plugins matmul` prints) and NN_PROVIDERS
// rules reach the ops too.
TEST (Dnnl, MatmulProvidersAreListedAndExcludable)
{
  SKIP_WITHOUT_DNNL ();
  Pair p = registries ();
  for (const char *name : { "matmul", "torch.matmul", "bmm", "linear", "softmax", "MultiheadAttention" }) {
    Error e;
    Array list (nn_registry_list_providers (p.ref.get (), name, e.out ()));
    ASSERT_TRUE (list) << name << ": " << e.message ();
    ASSERT_EQ (2u, list->len) << name;
    // Tried first without rules; excluded ones are listed last.
    auto *first = (NnProviderInfo *) list->pdata[0], *second = (NnProviderInfo *) list->pdata[1];
    EXPECT_STRNE ("dnnl", first->plugin) << name;
    EXPECT_EQ (NN_RANK_PRIMARY, first->rank);
    EXPECT_FALSE (first->excluded) << name;
    EXPECT_STREQ ("dnnl", second->plugin) << name;
    EXPECT_EQ (NN_RANK_PRIMARY + 64, second->rank);
    EXPECT_TRUE (second->excluded) << name;
    Array fast (nn_registry_list_providers (p.fast.get (), name, e.out ()));
    ASSERT_TRUE (fast && fast->len == 2) << name;
    EXPECT_STREQ ("dnnl", ((NnProviderInfo *) fast->pdata[0])->plugin) << name;
    EXPECT_FALSE (((NnProviderInfo *) fast->pdata[0])->excluded) << name;
  }
}

TEST (Dnnl, SeveralThreadsShareTheProductCache)
{
  SKIP_WITHOUT_DNNL ();
  Pair p = registries ();
  Error e;
  Module f = make_module (p.fast.get (), "matmul", "{}", e, "op");
  ASSERT_TRUE (f);
  NnShape as[3] = { shape ({ 4, 9, 16 }), shape ({ 3, 5 }), shape ({ 2, 2, 7, 8 }) };
  NnShape bs[3] = { shape ({ 4, 16, 6 }), shape ({ 5, 11 }), shape ({ 2, 8, 3 }) };
  std::vector<Tensor> a, b, want;
  for (int i = 0; i < 3; i++) {
    a.push_back (random_input (as[i], 700 + i));
    b.push_back (random_input (bs[i], 800 + i));
    want.push_back (naive_matmul (a.back ().get (), b.back ().get ()));
  }
  EXPECT_EQ (0, on_threads (4, [&] (int t) {
    int bad = 0;
    for (int k = 0; k < 12; k++) {
      int i = (t + k) % 3;
      Error err;
      ValueRef y = call_with (f.get (), { a[i].get (), b[i].get () }, nullptr, err);
      NnTensor *yt = y ? nn_value_get_tensor (y.get ()) : nullptr;
      // Within 1e-4 absolute (a scale of 1).
      bad += !yt || !nn_shape_equal (&yt->shape, &want[i]->shape)
             || !close_to (yt, want[i].get (), 1.0);
    }
    return bad;
  }));
}

namespace {

Module
load_mha (NnRegistry *reg, gint64 e, gint64 h, const std::string &extra)
{
  std::string json = "{\"type\": \"MultiheadAttention\", \"config\": {\"embed_dim\": " +
    std::to_string (e) + ", \"num_heads\": " + std::to_string (h) + extra +
    "}, \"children\": [{\"name\": \"out_proj\", \"type\": \"Linear\", \"config\": "
    "{\"in_features\": " + std::to_string (e) + ", \"out_features\": " + std::to_string (e) + "}}]}";
  return load_json (reg, json);
}

void
scale_parameters (NnModule *m, float by)
{
  for (guint i = 0; i < nn_module_n_parameters (m); i++) {
    NnTensor *t = nn_module_parameter_at (m, i, nullptr);
    for (gint64 j = 0; j < nn_tensor_numel (t); j++)
      nn_tensor_f32 (t)[j] *= by;
  }
}

// Same random tensors in every parameter of both trees, of the size of an
// initialised model's (uniform in +-1/sqrt(E)): with +-1 a wide model's
// scores are in the hundreds and softmax amplifies rounding.
void
same_tree_weights (NnModule *a, NnModule *b, guint32 seed, gint64 e)
{
  same_weights (a, b, seed);
  same_weights (nn_module_get_child (a, "out_proj"), nn_module_get_child (b, "out_proj"), seed + 1);
  for (NnModule *m : { a, b }) {
    scale_parameters (m, 1.0f / std::sqrt ((float) e));
    scale_parameters (nn_module_get_child (m, "out_proj"), 1.0f / std::sqrt ((float) e));
  }
}

} // namespace

TEST (Dnnl, MultiheadAttentionMatchesReference)
{
  SKIP_WITHOUT_DNNL ();
  Pair p = registries ();
  struct {
    gint64 e, h; std::string extra; NnShape q, kv; bool self_attn, need_weights, average;
  } cases[] = {
    { 32, 4, "", shape ({ 7, 2, 32 }), shape ({ 7, 2, 32 }), true, false, true },
    { 32, 4, ", \"batch_first\": true", shape ({ 2, 7, 32 }), shape ({ 2, 7, 32 }), true, true, true },
    { 24, 3, ", \"batch_first\": true", shape ({ 3, 5, 24 }), shape ({ 3, 9, 24 }), false, true, false },
    { 16, 2, ", \"bias\": false", shape ({ 6, 3, 16 }), shape ({ 4, 3, 16 }), false, true, true },
    { 16, 2, ", \"bias\": false", shape ({ 6, 3, 16 }), shape ({ 6, 3, 16 }), true, false, true },
    { 16, 4, "", shape ({ 5, 16 }), shape ({ 8, 16 }), false, true, false },
    { 768, 12, ", \"batch_first\": true", shape ({ 1, 197, 768 }), shape ({ 1, 197, 768 }), true, false, true },
  };
  int k = 0;
  for (auto &c : cases) {
    std::string what = "MHA e=" + std::to_string (c.e) + c.extra + " q " + shape_text (c.q) +
                       " kv " + shape_text (c.kv);
    Module f = load_mha (p.fast.get (), c.e, c.h, c.extra);
    Module rm = load_mha (p.ref.get (), c.e, c.h, c.extra);
    ASSERT_TRUE (f && rm) << what;
    EXPECT_EQ ("dnnl", provider (f.get ()));
    EXPECT_EQ ("attention", provider (rm.get ()));
    same_tree_weights (f.get (), rm.get (), 900 + k, c.e);
    Tensor q = random_input (c.q, 1000 + k);
    Tensor kk = c.self_attn ? Tensor (nn_tensor_ref (q.get ())) : random_input (c.kv, 1100 + k);
    Tensor v = c.self_attn ? Tensor (nn_tensor_ref (q.get ())) : random_input (c.kv, 1200 + k);
    auto kwargs = [&] {
      NnValue *d = nn_value_new_dict ();
      nn_value_dict_set (d, "need_weights", nn_value_new_bool (c.need_weights));
      nn_value_dict_set (d, "average_attn_weights", nn_value_new_bool (c.average));
      return d;
    };
    Error ef, er;
    ValueRef yf = call_with (f.get (), { q.get (), kk.get (), v.get () }, kwargs (), ef);
    ValueRef yr = call_with (rm.get (), { q.get (), kk.get (), v.get () }, kwargs (), er);
    ASSERT_TRUE (yf) << what << ": " << ef.message ();
    ASSERT_TRUE (yr) << what << ": " << er.message ();
    expect_same_values (yf.get (), yr.get (), what);
    k++;
  }
}

namespace {

// A bool mask of @s, True where (i * 7 + seed) % 5 == 0: some keys of
// every row masked, never all.
Tensor
bool_mask (const NnShape &s, int seed)
{
  Tensor t (nn_tensor_new (NN_DTYPE_BOOL, &s));
  for (gint64 i = 0; i < nn_tensor_numel (t.get ()); i++)
    ((guint8 *) t->data)[i] = (i * 7 + seed) % 5 == 0;
  return t;
}

} // namespace

// The fast path adds the masks itself: bool and float attn_mask (2-D and
// per-head 3-D), bool and float key_padding_mask, batched and unbatched,
// with and without weights: the reference's results.
TEST (Dnnl, MultiheadAttentionMasksMatchReference)
{
  SKIP_WITHOUT_DNNL ();
  Pair p = registries ();
  struct {
    std::string extra; NnShape q, kv, am, kpm; bool am_bool, kpm_bool, need_weights;
  } cases[] = {
    { "", shape ({ 4, 2, 8 }), shape ({ 5, 2, 8 }), shape ({ 4, 5 }), shape ({ 0 }), true, false, false },
    { ", \"batch_first\": true", shape ({ 2, 6, 8 }), shape ({ 2, 6, 8 }), shape ({ 0 }), shape ({ 2, 6 }), false, true, false },
    { ", \"batch_first\": true", shape ({ 3, 4, 8 }), shape ({ 3, 7, 8 }), shape ({ 6, 4, 7 }), shape ({ 3, 7 }), false, true, true },
    { "", shape ({ 4, 3, 8 }), shape ({ 4, 3, 8 }), shape ({ 4, 4 }), shape ({ 3, 4 }), true, false, true },
    { "", shape ({ 4, 8 }), shape ({ 6, 8 }), shape ({ 2, 4, 6 }), shape ({ 6 }), true, true, true },
  };
  int k = 0;
  for (auto &c : cases) {
    std::string what = "masked MHA case " + std::to_string (k);
    Module f = load_mha (p.fast.get (), 8, 2, c.extra);
    Module rm = load_mha (p.ref.get (), 8, 2, c.extra);
    ASSERT_TRUE (f && rm) << what;
    same_tree_weights (f.get (), rm.get (), 950 + k, 8);
    bool self_attn = nn_shape_equal (&c.q, &c.kv);
    Tensor q = random_input (c.q, 1400 + k);
    Tensor kv = self_attn ? Tensor (nn_tensor_ref (q.get ())) : random_input (c.kv, 1500 + k);
    Tensor am, kpm;
    if (c.am.ndim == 2 || c.am.ndim == 3)
      am = c.am_bool ? bool_mask (c.am, k) : random_input (c.am, 1600 + k);
    if (c.kpm.dims[0] > 0)
      kpm = c.kpm_bool ? bool_mask (c.kpm, k + 1) : random_input (c.kpm, 1700 + k);
    auto kwargs = [&] {
      NnValue *d = nn_value_new_dict ();
      nn_value_dict_set (d, "need_weights", nn_value_new_bool (c.need_weights));
      if (am)
        nn_value_dict_set (d, "attn_mask", nn_value_new_tensor (am.get ()));
      if (kpm)
        nn_value_dict_set (d, "key_padding_mask", nn_value_new_tensor (kpm.get ()));
      return d;
    };
    Error ef, er;
    ValueRef yf = call_with (f.get (), { q.get (), kv.get (), kv.get () }, kwargs (), ef);
    ValueRef yr = call_with (rm.get (), { q.get (), kv.get (), kv.get () }, kwargs (), er);
    ASSERT_TRUE (yf) << what << ": " << ef.message ();
    ASSERT_TRUE (yr) << what << ": " << er.message ();
    expect_same_values (yf.get (), yr.get (), what);
    k++;
  }
}

// A row whose keys are all masked is NaN in the reference (softmax of
// -inf only), and in the fast path.
TEST (Dnnl, MultiheadAttentionFullyMaskedRowIsNaNLikeTheReference)
{
  SKIP_WITHOUT_DNNL ();
  Pair p = registries ();
  Module f = load_mha (p.fast.get (), 8, 2, ", \"batch_first\": true");
  Module rm = load_mha (p.ref.get (), 8, 2, ", \"batch_first\": true");
  ASSERT_TRUE (f && rm);
  same_tree_weights (f.get (), rm.get (), 31, 8);
  Tensor q = random_input (shape ({ 2, 3, 8 }), 5);
  NnShape ks = shape ({ 2, 3 });
  Tensor kpm (nn_tensor_new (NN_DTYPE_BOOL, &ks));
  for (int i = 0; i < 3; i++)
    ((guint8 *) kpm->data)[3 + i] = 1;   // batch 1: every key padded
  auto kwargs = [&] {
    NnValue *d = nn_value_new_dict ();
    nn_value_dict_set (d, "need_weights", nn_value_new_bool (FALSE));
    nn_value_dict_set (d, "key_padding_mask", nn_value_new_tensor (kpm.get ()));
    return d;
  };
  Error ef, er;
  ValueRef yf = call_with (f.get (), { q.get (), q.get (), q.get () }, kwargs (), ef);
  ValueRef yr = call_with (rm.get (), { q.get (), q.get (), q.get () }, kwargs (), er);
  ASSERT_TRUE (yf && yr) << ef.message () << er.message ();
  NnTensor *a = nn_value_get_tensor (nn_value_item (yf.get (), 0));
  NnTensor *b = nn_value_get_tensor (nn_value_item (yr.get (), 0));
  for (gint64 i = 0; i < nn_tensor_numel (b); i++) {
    bool padded_batch = i >= 3 * 8;
    EXPECT_EQ (padded_batch, std::isnan (nn_tensor_f32 (b)[i])) << "reference, element " << i;
    EXPECT_EQ (padded_batch, std::isnan (nn_tensor_f32 (a)[i])) << "fast path, element " << i;
    if (!padded_batch) {
      EXPECT_NEAR (nn_tensor_f32 (b)[i], nn_tensor_f32 (a)[i], 1e-4) << "element " << i;
    }
  }
}

// Masks of the wrong shape, and bad inputs, are the reference's: same
// results, same errors.
TEST (Dnnl, MultiheadAttentionFallsBackToTheReference)
{
  SKIP_WITHOUT_DNNL ();
  Pair p = registries ();
  Module f = load_mha (p.fast.get (), 8, 2, "");
  Module rm = load_mha (p.ref.get (), 8, 2, "");
  ASSERT_TRUE (f && rm);
  same_tree_weights (f.get (), rm.get (), 77, 8);
  Tensor q = random_input (shape ({ 4, 2, 8 }), 1), k = random_input (shape ({ 5, 2, 8 }), 2);
  Tensor mask = random_input (shape ({ 4, 5 }), 3);
  auto masked = [&] {
    NnValue *d = nn_value_new_dict ();
    nn_value_dict_set (d, "attn_mask", nn_value_new_tensor (mask.get ()));
    return d;
  };
  Error ef, er;
  ValueRef yf = call_with (f.get (), { q.get (), k.get (), k.get () }, masked (), ef);
  ValueRef yr = call_with (rm.get (), { q.get (), k.get (), k.get () }, masked (), er);
  ASSERT_TRUE (yf && yr) << ef.message () << er.message ();
  expect_same_values (yf.get (), yr.get (), "float attn_mask");
  Tensor bad_mask = random_input (shape ({ 5, 4 }), 6);
  auto bad_masked = [&] {
    NnValue *d = nn_value_new_dict ();
    nn_value_dict_set (d, "attn_mask", nn_value_new_tensor (bad_mask.get ()));
    return d;
  };
  EXPECT_FALSE (call_with (f.get (), { q.get (), k.get (), k.get () }, bad_masked (), ef));
  EXPECT_FALSE (call_with (rm.get (), { q.get (), k.get (), k.get () }, bad_masked (), er));
  EXPECT_EQ (er.message (), ef.message ());
  EXPECT_TRUE (contains (ef.message (), "The shape of the 2D attn_mask is")) << ef.message ();
  Tensor bad = random_input (shape ({ 4, 2, 6 }), 4);
  EXPECT_FALSE (call_with (f.get (), { bad.get (), k.get (), k.get () }, nullptr, ef));
  EXPECT_FALSE (call_with (rm.get (), { bad.get (), k.get (), k.get () }, nullptr, er));
  EXPECT_EQ (er.message (), ef.message ());
  EXPECT_TRUE (contains (ef.message (), "was expecting embedding dimension of 8, but got 6")) << ef.message ();
}

TEST (Dnnl, SoftmaxOpsMatchReference)
{
  SKIP_WITHOUT_DNNL ();
  Pair p = registries ();
  struct { const char *op; NnShape x; gint64 dim; } cases[] = {
    { "torch.nn.functional.softmax", shape ({ 2, 4, 7, 7 }), -1 },
    { "torch.softmax", shape ({ 3, 5, 6 }), 1 },
    { "Tensor.softmax", shape ({ 9 }), 0 },
    { "torch.nn.functional.log_softmax", shape ({ 4, 33 }), 1 },
    { "log_softmax", shape ({ 2, 3, 4, 5 }), -3 },
  };
  int k = 0;
  for (auto &c : cases) {
    std::string what = std::string (c.op) + " " + shape_text (c.x) + " dim " + std::to_string (c.dim);
    Error e;
    Module f = make_module (p.fast.get (), c.op, "{}", e, "op");
    Module rm = make_module (p.ref.get (), c.op, "{}", e, "op");
    ASSERT_TRUE (f && rm) << what;
    EXPECT_EQ ("dnnl", provider (f.get ())) << what;
    Tensor x = random_input (c.x, 1300 + k++);
    auto call = [&] (NnModule *m, Error &err) {
      ValueRef args = value_tuple ({ nn_value_new_tensor (x.get ()), nn_value_new_int (c.dim) });
      return ValueRef (nn_module_call (m, args.get (), nullptr, err.out ()));
    };
    Error ef, er;
    ValueRef yf = call (f.get (), ef), yr = call (rm.get (), er);
    ASSERT_TRUE (yf && yr) << what << ": " << ef.message () << er.message ();
    expect_same_values (yf.get (), yr.get (), what);
  }
}

// The implicit dim, a dtype argument, float64 and bad dims are the
// reference's.
TEST (Dnnl, SoftmaxFallsBackToTheReference)
{
  SKIP_WITHOUT_DNNL ();
  Pair p = registries ();
  Error e;
  Module f = make_module (p.fast.get (), "softmax", "{}", e, "op");
  Module rm = make_module (p.ref.get (), "softmax", "{}", e, "op");
  ASSERT_TRUE (f && rm);
  Tensor x = random_input (shape ({ 2, 3, 4 }), 1);
  Tensor x64 = random_f64 (shape ({ 3, 4 }), 2);
  struct { NnTensor *x; NnValue *(*dim) (); NnValue *(*dtype) (); const char *what; } cases[] = {
    { x.get (), [] { return nn_value_new_none (); }, nullptr, "implicit dim" },
    { x.get (), [] { return nn_value_new_int (-1); }, [] { return nn_value_new_string ("torch.float64"); }, "dtype" },
    { x64.get (), [] { return nn_value_new_int (1); }, nullptr, "float64" },
    { x.get (), [] { return nn_value_new_int (3); }, nullptr, "bad dim" },
  };
  for (auto &c : cases) {
    auto call = [&] (NnModule *m, Error &err) {
      ValueRef args = value_tuple ({ nn_value_new_tensor (c.x), c.dim () });
      ValueRef kw (c.dtype ? nn_value_new_dict () : nullptr);
      if (c.dtype)
        nn_value_dict_set (kw.get (), "dtype", c.dtype ());
      return ValueRef (nn_module_call (m, args.get (), kw.get (), err.out ()));
    };
    Error ef, er;
    ValueRef yf = call (f.get (), ef), yr = call (rm.get (), er);
    EXPECT_EQ (er.message (), ef.message ()) << c.what;
    ASSERT_EQ (!yr, !yf) << c.what;
    if (yr)
      expect_same_values (yf.get (), yr.get (), c.what);
  }
}

TEST (Dnnl, LayerNormMatchesReference)
{
  SKIP_WITHOUT_DNNL ();
  Pair p = registries ();
  struct { const char *cfg; NnShape x; } cases[] = {
    { R"({"normalized_shape": [768]})", shape ({ 2, 197, 768 }) },
    { R"({"normalized_shape": 32, "eps": 1e-6})", shape ({ 5, 32 }) },
    { R"({"normalized_shape": [4, 6], "elementwise_affine": false})", shape ({ 3, 2, 4, 6 }) },
    { R"({"normalized_shape": [4, 6]})", shape ({ 4, 6 }) },
    { R"({"normalized_shape": [7]})", shape ({ 7 }) },
  };
  int k = 0;
  for (auto &c : cases) {
    Module f = create (p.fast.get (), "LayerNorm", c.cfg);
    Module rm = create (p.ref.get (), "LayerNorm", c.cfg);
    ASSERT_TRUE (f && rm);
    EXPECT_EQ ("dnnl", provider (f.get ()));
    EXPECT_EQ ("norm", provider (rm.get ()));
    same_weights (f.get (), rm.get (), 1400 + k);
    expect_same_output (f.get (), rm.get (), c.x, 1500 + k, c.cfg);
    k++;
  }
  // Trailing dims other than normalized_shape: the reference's error.
  Module f = create (p.fast.get (), "LayerNorm", R"({"normalized_shape": [4, 6]})");
  Module rm = create (p.ref.get (), "LayerNorm", R"({"normalized_shape": [4, 6]})");
  Tensor x = random_input (shape ({ 2, 6, 4 }), 1);
  Error ef, er;
  EXPECT_FALSE (Tensor (nn_module_forward (f.get (), x.get (), ef.out ())));
  EXPECT_FALSE (Tensor (nn_module_forward (rm.get (), x.get (), er.out ())));
  EXPECT_EQ (er.message (), ef.message ());
  EXPECT_TRUE (contains (ef.message (), "expected input with shape [*, 4, 6]")) << ef.message ();
}

// Self-attention's in-projection runs on weights reordered once per
// module: new in_proj_weight / in_proj_bias tensors (load_state_dict,
// surgery), an in-place write (an optimiser step) and another sequence
// length each rebuild it, and the results stay the reference's.
TEST (Dnnl, MultiheadAttentionInProjectionFollowsNewWeights)
{
  SKIP_WITHOUT_DNNL ();
  Pair p = registries ();
  Module f = load_mha (p.fast.get (), 16, 4, ", \"batch_first\": true");
  Module rm = load_mha (p.ref.get (), 16, 4, ", \"batch_first\": true");
  ASSERT_TRUE (f && rm);
  same_tree_weights (f.get (), rm.get (), 61, 16);
  auto check = [&] (const NnShape &s, int seed, const std::string &what) {
    Tensor q = random_input (s, seed);
    auto kwargs = [] {
      NnValue *d = nn_value_new_dict ();
      nn_value_dict_set (d, "need_weights", nn_value_new_bool (FALSE));
      return d;
    };
    Error ef, er;
    ValueRef yf = call_with (f.get (), { q.get (), q.get (), q.get () }, kwargs (), ef);
    ValueRef yr = call_with (rm.get (), { q.get (), q.get (), q.get () }, kwargs (), er);
    ASSERT_TRUE (yf) << what << ": " << ef.message ();
    ASSERT_TRUE (yr) << what << ": " << er.message ();
    expect_same_values (yf.get (), yr.get (), what);
  };
  check (shape ({ 2, 5, 16 }), 1, "first weights");
  int seed = 70;
  for (const char *name : { "in_proj_weight", "in_proj_bias" }) {
    for (NnModule *m : { f.get (), rm.get () }) {
      NnTensor *old = nn_module_get_parameter (m, name);
      Tensor fresh (nn_tensor_new (NN_DTYPE_F32, &old->shape));
      GRand *r = g_rand_new_with_seed (seed);
      fill_random (fresh.get (), r, -0.3, 0.3);
      g_rand_free (r);
      Error e;
      ASSERT_TRUE (nn_module_set_tensor (m, name, fresh.get (), e.out ())) << e.message ();
    }
    check (shape ({ 2, 5, 16 }), 2, std::string ("new ") + name);
    seed++;
  }
  // In place, as an optimiser writes: same tensor, new version.
  for (NnModule *m : { f.get (), rm.get () }) {
    NnTensor *w = nn_module_get_parameter (m, "in_proj_weight");
    for (gint64 i = 0; i < nn_tensor_numel (w); i += 3)
      nn_tensor_f32 (w)[i] *= -0.5f;
    nn_tensor_mark_written (w);
  }
  check (shape ({ 2, 5, 16 }), 3, "weights written in place");
  check (shape ({ 3, 9, 16 }), 4, "another sequence length");
  check (shape ({ 2, 5, 16 }), 5, "the first length again");
}
