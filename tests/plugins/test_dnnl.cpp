// Tests for plugins/dnnl: every oneDNN provider against the OpenBLAS
// reference (NN_PROVIDERS-style rule "-dnnl") on random configs, within
// 1e-4; the supports() checks; weight changes reaching the cached
// reordered weights; and identical descriptions from both providers.
#include "nn-test.h"

#include <cmath>
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
  std::atomic<int> bad { 0 };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++)
    threads.emplace_back ([&, t] {
      for (int k = 0; k < 10; k++) {
        int which = (t + k) % 2;
        Tensor y (nn_module_forward (f.get (), xs[which].get (), nullptr));
        const float *a = y ? nn_tensor_f32 (y.get ()) : nullptr;
        const float *b = nn_tensor_f32 (want[which].get ());
        for (gint64 i = 0; a && i < nn_tensor_numel (want[which].get ()); i++)
          if (std::fabs (a[i] - b[i]) > 1e-4 * std::max (1.0f, std::fabs (b[i]))) {
            bad++;
            break;
          }
        if (!a)
          bad++;
      }
    });
  for (auto &t : threads)
    t.join ();
  EXPECT_EQ (0, bad.load ());
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
