// Cross-plugin test against an INSTALLED nnkit: compiled by run-install-test.sh
// with `pkg-config --cflags --libs nnkit gtest_main` only, never with the
// source tree's include directory.  It loads the installed built-in plugins
// plus the out-of-tree example plugin (examples/plugin), builds a model in
// which the example's C composite ResidualBlock holds a Conv2d from the conv
// plugin, replaces that Conv2d with a BatchNorm2d from the norm plugin, and
// checks outputs against a naive reference, hooks, save/reload and errors.
//
// Environment, set by the script:
//   NN_OOT_MODE         "uninstalled" (example found through NN_PLUGIN_PATH)
//                       or "installed" (everything in the installed dir)
//   NN_OOT_PLUGINDIR    the installed plugin directory (pkg-config plugindir)
//   NN_OOT_EXAMPLE_DIR  the directory nn-example.so must be loaded from
//   NN_OOT_MODEL        the example's residual.json
//   NN_OOT_WORKDIR      a scratch directory for saved models
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include <nnkit/nnkit.h>
#include <nnkit/plugin.h>
}

namespace {

struct RegistryDeleter { void operator() (NnRegistry *r) const { nn_registry_unref (r); } };
struct ModuleDeleter { void operator() (NnModule *m) const { nn_module_unref (m); } };
struct TensorDeleter { void operator() (NnTensor *t) const { nn_tensor_unref (t); } };
struct ArrayDeleter { void operator() (GPtrArray *a) const { g_ptr_array_unref (a); } };
struct GFreeDeleter { void operator() (void *p) const { g_free (p); } };
using Registry = std::unique_ptr<NnRegistry, RegistryDeleter>;
using Module = std::unique_ptr<NnModule, ModuleDeleter>;
using Tensor = std::unique_ptr<NnTensor, TensorDeleter>;
using Array = std::unique_ptr<GPtrArray, ArrayDeleter>;
using CStr = std::unique_ptr<char, GFreeDeleter>;

struct Error {
  GError *err = nullptr;
  ~Error () { if (err) g_error_free (err); }
  GError **out () { if (err) { g_error_free (err); err = nullptr; } return &err; }
  std::string message () const { return err ? err->message : ""; }
  bool matches (GQuark d, int code) const { return err && g_error_matches (err, d, code); }
};

std::string env (const char *name)
{
  const char *v = g_getenv (name);
  if (!v || !*v)
    ADD_FAILURE () << name << " is not set: run this through run-install-test.sh";
  return v ? v : "";
}

std::string canonical (const std::string &path)
{
  CStr c (g_canonicalize_filename (path.c_str (), nullptr));
  char *real = realpath (c.get (), nullptr);
  std::string out = real ? real : c.get ();
  free (real);
  return out;
}

std::string dir_of (const char *file)
{
  CStr d (g_path_get_dirname (file));
  return canonical (d.get ());
}

Registry load_registry ()
{
  Registry reg (nn_registry_new ());
  Error e;
  EXPECT_TRUE (nn_registry_load_default (reg.get (), e.out ())) << e.message ();
  Array failures (nn_registry_get_failures (reg.get ()));
  for (guint i = 0; i < failures->len; i++)
    ADD_FAILURE () << "plugin failed to load: "
                   << ((NnPluginFailure *) failures->pdata[i])->message;
  return reg;
}

Module load_model (NnRegistry *reg)
{
  Error e;
  Module m (nn_descriptor_load_file (reg, env ("NN_OOT_MODEL").c_str (), e.out ()));
  EXPECT_TRUE (m) << e.message ();
  return m;
}

Module new_module (NnRegistry *reg, const char *json)
{
  Error e;
  Module m (nn_descriptor_load_module_data (reg, json, -1, "test", e.out ()));
  EXPECT_TRUE (m) << e.message ();
  return m;
}

NnShape shape4 (gint64 a, gint64 b, gint64 c, gint64 d)
{
  NnShape s = { 4, { a, b, c, d } };
  return s;
}

void fill_uniform (NnTensor *t, GRand *rng, double lo, double hi)
{
  float *d = nn_tensor_f32 (t);
  for (gint64 i = 0; i < nn_tensor_numel (t); i++)
    d[i] = (float) g_rand_double_range (rng, lo, hi);
}

NnTensor *param (NnModule *root, const char *name)
{
  Error e;
  NnTensor *t = nn_module_lookup_tensor (root, name, e.out ());
  EXPECT_TRUE (t) << e.message ();
  return t;
}

// Weights that make every term matter: random conv weights (PyTorch's init
// with a seed), scales away from 1, a non-zero negative slope.
void randomise (NnModule *model, guint32 seed)
{
  nn_module_reset_parameters (model, seed);
  GRand *rng = g_rand_new_with_seed (seed + 1);
  fill_uniform (param (model, "0.act.scale"), rng, 0.5, 1.5);
  fill_uniform (param (model, "1.scale"), rng, -1.5, -0.5);
  g_rand_free (rng);
}

Tensor random_input (const NnShape &s, guint32 seed)
{
  Tensor t (nn_tensor_new (NN_DTYPE_F32, &s));
  GRand *rng = g_rand_new_with_seed (seed);
  fill_uniform (t.get (), rng, -2.0, 2.0);
  g_rand_free (rng);
  return t;
}

Tensor forward (NnModule *m, NnTensor *x)
{
  Error e;
  Tensor y (nn_module_forward (m, x, e.out ()));
  EXPECT_TRUE (y) << e.message ();
  return y;
}

// --- the naive reference, in double, straight from the definitions ------

using Vec = std::vector<double>;

Vec to_vec (const NnTensor *t)
{
  const float *d = nn_tensor_f32 (t);
  return Vec (d, d + nn_tensor_numel (t));
}

// Conv2d, stride 1, square padding, no groups or dilation.
Vec naive_conv (const Vec &x, int n, int c, int h, int w, NnTensor *weight,
                NnTensor *bias, int out_c, int k, int pad)
{
  const float *wt = nn_tensor_f32 (weight);
  const float *b = bias ? nn_tensor_f32 (bias) : nullptr;
  int oh = h + 2 * pad - k + 1, ow = w + 2 * pad - k + 1;
  Vec y ((size_t) n * out_c * oh * ow, 0.0);
  for (int in = 0; in < n; in++)
    for (int o = 0; o < out_c; o++)
      for (int i = 0; i < oh; i++)
        for (int j = 0; j < ow; j++) {
          double acc = b ? b[o] : 0.0;
          for (int ci = 0; ci < c; ci++)
            for (int ki = 0; ki < k; ki++)
              for (int kj = 0; kj < k; kj++) {
                int si = i + ki - pad, sj = j + kj - pad;
                if (si < 0 || si >= h || sj < 0 || sj >= w)
                  continue;
                acc += (double) wt[((o * c + ci) * k + ki) * k + kj]
                       * x[(((size_t) in * c + ci) * h + si) * w + sj];
              }
          y[(((size_t) in * out_c + o) * oh + i) * ow + j] = acc;
        }
  return y;
}

// BatchNorm2d in eval mode: (x - mean) / sqrt(var + eps) * weight + bias.
Vec naive_batch_norm (const Vec &x, int n, int c, int hw, NnModule *bn)
{
  const float *g = nn_tensor_f32 (nn_module_get_parameter (bn, "weight"));
  const float *b = nn_tensor_f32 (nn_module_get_parameter (bn, "bias"));
  const float *mean = nn_tensor_f32 (nn_module_get_buffer (bn, "running_mean"));
  const float *var = nn_tensor_f32 (nn_module_get_buffer (bn, "running_var"));
  double eps = json_object_get_double_member (nn_module_get_config (bn), "eps");
  Vec y (x.size ());
  for (int in = 0; in < n; in++)
    for (int ch = 0; ch < c; ch++)
      for (int i = 0; i < hw; i++) {
        size_t k = ((size_t) in * c + ch) * hw + i;
        y[k] = (x[k] - mean[ch]) / std::sqrt ((double) var[ch] + eps) * g[ch] + b[ch];
      }
  return y;
}

Vec naive_scaled_leaky (const Vec &x, int c, int hw, NnTensor *scale,
                        double slope)
{
  const float *s = nn_tensor_f32 (scale);
  Vec y (x.size ());
  for (size_t k = 0; k < x.size (); k++) {
    int ch = (int) ((k / hw) % c);
    y[k] = s[ch] * (x[k] >= 0 ? x[k] : slope * x[k]);
  }
  return y;
}

Vec naive_residual (const Vec &x, const Vec &branch, double alpha)
{
  Vec y (x.size ());
  for (size_t k = 0; k < x.size (); k++)
    y[k] = x[k] + alpha * branch[k];
  return y;
}

double config_float (NnModule *m, const char *key)
{
  return json_object_get_double_member (nn_module_get_config (m), key);
}

// The model's whole forward, given what "0.conv" computes.
Vec naive_model (NnModule *model, const Vec &x, const Vec &conv_out)
{
  const int c = 4, hw = 25;
  NnModule *block = nn_module_lookup_path (model, "0", nullptr);
  NnModule *act = nn_module_lookup_path (model, "0.act", nullptr);
  NnModule *last = nn_module_lookup_path (model, "1", nullptr);
  Vec branch = naive_scaled_leaky (conv_out, c, hw, param (model, "0.act.scale"),
                                   config_float (act, "negative_slope"));
  Vec res = naive_residual (x, branch, config_float (block, "alpha"));
  return naive_scaled_leaky (res, c, hw, param (model, "1.scale"),
                             config_float (last, "negative_slope"));
}

void expect_close (const NnTensor *got, const Vec &want, const char *what)
{
  ASSERT_EQ ((size_t) nn_tensor_numel (got), want.size ()) << what;
  double scale = 1.0;
  for (double v : want)
    scale = std::max (scale, std::fabs (v));
  const float *g = nn_tensor_f32 (got);
  for (size_t i = 0; i < want.size (); i++)
    ASSERT_NEAR (g[i], want[i], 1e-5 * scale) << what << " at element " << i;
}

bool bit_equal (const NnTensor *a, const NnTensor *b)
{
  return nn_shape_equal (&a->shape, &b->shape) &&
         memcmp (a->data, b->data, nn_tensor_nbytes (a)) == 0;
}

// Everything a refused surgery must leave alone: text, descriptor, every
// tensor's bytes, the flattened numbering.
struct Snapshot {
  std::string text, descriptor, index_paths;
  std::vector<std::string> tensors;
  NnModule *conv;

  explicit Snapshot (NnModule *m)
  {
    CStr t (nn_module_to_string (m));
    text = t.get ();
    CStr d (nn_descriptor_to_data (m, nullptr));
    descriptor = d.get ();
    Array sd (nn_module_state_dict (m));
    for (guint i = 0; i < sd->len; i++) {
      NnNamedItem *it = (NnNamedItem *) sd->pdata[i];
      tensors.push_back (std::string (it->name) + "=" +
                         std::string ((const char *) it->tensor->data,
                                      nn_tensor_nbytes (it->tensor)));
    }
    for (gint64 i = 0;; i++) {
      const char *p = nullptr;
      if (!nn_module_lookup_index (m, i, &p, nullptr))
        break;
      index_paths += std::string (p) + ";";
    }
    conv = nn_module_lookup_path (m, "0.conv", nullptr);
  }
  bool operator== (const Snapshot &o) const
  {
    return text == o.text && descriptor == o.descriptor && tensors == o.tensors &&
           index_paths == o.index_paths && conv == o.conv;
  }
};

struct HookLog {
  int calls = 0;
  std::string path;
  Tensor output;
};

gboolean record_hook (NnModule *, const char *path, const NnValue *, const NnValue *,
                      NnValue **output, gpointer user_data, GError **)
{
  HookLog *log = (HookLog *) user_data;
  NnTensor *t = nn_value_get_tensor (*output);
  log->calls++;
  log->path = path;
  log->output.reset (t ? nn_tensor_copy (t) : nullptr);
  return TRUE;
}

const char *plugin_of (NnModule *root, const char *path)
{
  NnModule *m = nn_module_lookup_path (root, path, nullptr);
  return m ? nn_plugin_get_name (nn_module_get_plugin (m)) : "(missing)";
}

bool uninstalled_mode ()
{
  return env ("NN_OOT_MODE") == "uninstalled";
}

// --- discovery -------------------------------------------------------------

// Conv2d is provided by the reference plugin and, when libdnnl-dev was
// there at build time, by the higher-ranked oneDNN plugin.
static bool
is_conv_provider (const char *name)
{
  return name && (std::string (name) == "conv" || std::string (name) == "dnnl");
}

TEST (Discovery, BuiltinPluginsFromInstalledDirExampleFromItsOwn)
{
  std::string plugindir = canonical (env ("NN_OOT_PLUGINDIR"));
  EXPECT_EQ (canonical (nn_registry_installed_dir ()), plugindir)
      << "the installed libnnkit must search its installed plugin directory";

  Registry reg = load_registry ();
  Array plugins (nn_registry_list_plugins (reg.get ()));
  std::string example_dir = canonical (env ("NN_OOT_EXAMPLE_DIR"));
  bool saw_example = false, saw_conv = false, saw_norm = false;
  for (guint i = 0; i < plugins->len; i++) {
    NnPluginInfo *p = (NnPluginInfo *) plugins->pdata[i];
    std::string name = p->name;
    if (name == "example") {
      saw_example = true;
      EXPECT_EQ (dir_of (p->path), example_dir) << p->path;
      EXPECT_STREQ (p->version, "1.0.0");
      ASSERT_TRUE (p->type_names[0] && p->type_names[1] && p->type_names[2]);
      EXPECT_STREQ (p->type_names[0], "ScaledLeakyReLU");
      EXPECT_STREQ (p->type_names[1], "ResidualBlock");
      EXPECT_STREQ (p->type_names[2], "GatedSum");
      EXPECT_EQ (p->type_names[3], nullptr);
    } else {
      // Every built-in plugin comes from the installed tree, none from a
      // build directory.
      EXPECT_EQ (dir_of (p->path), plugindir) << name << " from " << p->path;
      saw_conv |= name == "conv";
      saw_norm |= name == "norm";
    }
  }
  EXPECT_TRUE (saw_example && saw_conv && saw_norm);

  NnPlugin *plugin = nullptr;
  Error e;
  ASSERT_TRUE (nn_registry_resolve_type (reg.get (), "ResidualBlock", &plugin, e.out ()))
      << e.message ();
  EXPECT_STREQ (nn_plugin_get_name (plugin), "example");
  ASSERT_TRUE (nn_registry_resolve_type (reg.get (), "Conv2d", &plugin, e.out ()));
  // The top-ranked provider: oneDNN's when it was built, else the reference.
  EXPECT_TRUE (is_conv_provider (nn_plugin_get_name (plugin))) << nn_plugin_get_name (plugin);
}

// Uninstalled, only NN_PLUGIN_PATH brings the example in: without it the
// example's types are unknown, and the error lists what is known.
// Installed, the default directory alone provides it.
TEST (Discovery, ExampleFoundOnlyWhereItIs)
{
  if (!uninstalled_mode ()) {
    EXPECT_EQ (g_getenv ("NN_PLUGIN_PATH"), nullptr);
    Registry reg = load_registry ();
    Module m = load_model (reg.get ());
    EXPECT_TRUE (m);
    return;
  }
  std::string saved = env ("NN_PLUGIN_PATH");
  g_unsetenv ("NN_PLUGIN_PATH");
  Registry reg = load_registry ();
  g_setenv ("NN_PLUGIN_PATH", saved.c_str (), TRUE);

  Error e;
  Module m (nn_descriptor_load_file (reg.get (), env ("NN_OOT_MODEL").c_str (), e.out ()));
  EXPECT_FALSE (m);
  EXPECT_TRUE (e.matches (NN_PLUGIN_ERROR, NN_PLUGIN_ERROR_UNKNOWN_TYPE)) << e.message ();
  EXPECT_NE (e.message ().find ("ResidualBlock"), std::string::npos) << e.message ();
  EXPECT_NE (e.message ().find ("Conv2d"), std::string::npos) << e.message ();
}

// --- the example's own types ------------------------------------------------

TEST (Example, TextSchemaAndShapes)
{
  Registry reg = load_registry ();
  Module model = load_model (reg.get ());
  ASSERT_TRUE (model);
  CStr text (nn_module_to_string (model.get ()));
  EXPECT_STREQ (text.get (),
                "Sequential(\n"
                "  (0): ResidualBlock(\n"
                "    alpha=0.5\n"
                "    (conv): Conv2d(4, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n"
                "    (act): ScaledLeakyReLU(4, negative_slope=0.1)\n"
                "  )\n"
                "  (1): ScaledLeakyReLU(4, negative_slope=0.01)\n"
                ")");
  EXPECT_STREQ (plugin_of (model.get (), "0"), "example");
  EXPECT_TRUE (is_conv_provider (plugin_of (model.get (), "0.conv")));

  NnTensor *scale = param (model.get (), "0.act.scale");
  ASSERT_TRUE (scale);
  EXPECT_EQ (scale->shape.ndim, 1u);
  EXPECT_EQ (scale->shape.dims[0], 4);

  NnShape in = shape4 (3, 4, 7, 6), out;
  Error e;
  ASSERT_TRUE (nn_module_infer_shape (model.get (), &in, &out, e.out ())) << e.message ();
  EXPECT_TRUE (nn_shape_equal (&in, &out));

  // The schema is checked by the core before create runs.
  Module bad (nn_descriptor_load_module_data (reg.get (),
      "{\"type\": \"ScaledLeakyReLU\", \"config\": {\"num_channels\": 4, "
      "\"negative_slop\": 0.2}}", -1, "test", e.out ()));
  EXPECT_FALSE (bad);
  EXPECT_TRUE (e.matches (NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_UNKNOWN_KEY)) << e.message ();
  EXPECT_NE (e.message ().find ("did you mean 'negative_slope'"), std::string::npos)
      << e.message ();
  bad.reset (nn_descriptor_load_module_data (reg.get (),
      "{\"type\": \"ScaledLeakyReLU\", \"config\": {\"num_channels\": 0}}", -1,
      "test", e.out ()));
  EXPECT_FALSE (bad);
  EXPECT_TRUE (e.matches (NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_OUT_OF_RANGE)) << e.message ();
  EXPECT_NE (e.message ().find ("num_channels"), std::string::npos) << e.message ();

  // The composite's check: both named children must be there.
  bad.reset (nn_descriptor_load_module_data (reg.get (),
      "{\"type\": \"ResidualBlock\", \"children\": [{\"name\": \"conv\", "
      "\"type\": \"Identity\"}]}", -1, "test", e.out ()));
  EXPECT_FALSE (bad);
  EXPECT_NE (e.message ().find ("needs a child named 'act'"), std::string::npos)
      << e.message ();

  // A wrong input shape names the module path and both shapes.
  NnShape wrong = shape4 (2, 3, 5, 5);
  EXPECT_FALSE (nn_module_infer_shape (model.get (), &wrong, &out, e.out ()));
  EXPECT_TRUE (e.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH)) << e.message ();
  EXPECT_NE (e.message ().find ("0.conv"), std::string::npos) << e.message ();
  EXPECT_NE (e.message ().find ("[2, 3, 5, 5]"), std::string::npos) << e.message ();
}

TEST (Example, ForwardMatchesNaiveReference)
{
  Registry reg = load_registry ();
  Module model = load_model (reg.get ());
  ASSERT_TRUE (model);
  randomise (model.get (), 11);
  Tensor x = random_input (shape4 (2, 4, 5, 5), 5);
  Tensor y = forward (model.get (), x.get ());
  ASSERT_TRUE (y);

  Vec xv = to_vec (x.get ());
  Vec conv = naive_conv (xv, 2, 4, 5, 5, param (model.get (), "0.conv.weight"),
                         param (model.get (), "0.conv.bias"), 4, 3, 1);
  expect_close (y.get (), naive_model (model.get (), xv, conv), "model output");
}

// --- across plugin boundaries: surgery inside the C composite ---------------

class CrossPlugin : public ::testing::Test {
protected:
  void SetUp () override
  {
    reg = load_registry ();
    model = load_model (reg.get ());
    ASSERT_TRUE (model);
    randomise (model.get (), 3);
    x = random_input (shape4 (2, 4, 5, 5), 9);
    before = forward (model.get (), x.get ());
    ASSERT_TRUE (before);
  }

  // A refused edit leaves everything as it was, and the forward too.
  void expect_unchanged (const Snapshot &snap)
  {
    EXPECT_TRUE (Snapshot (model.get ()) == snap);
    Tensor again = forward (model.get (), x.get ());
    ASSERT_TRUE (again);
    EXPECT_TRUE (bit_equal (again.get (), before.get ()));
  }

  Module batch_norm (guint32 seed)
  {
    Module bn = new_module (reg.get (),
        "{\"type\": \"BatchNorm2d\", \"config\": {\"num_features\": 4, \"eps\": 0.001}}");
    GRand *rng = g_rand_new_with_seed (seed);
    fill_uniform (nn_module_get_parameter (bn.get (), "weight"), rng, 0.5, 2.0);
    fill_uniform (nn_module_get_parameter (bn.get (), "bias"), rng, -1.0, 1.0);
    fill_uniform (nn_module_get_buffer (bn.get (), "running_mean"), rng, -0.5, 0.5);
    fill_uniform (nn_module_get_buffer (bn.get (), "running_var"), rng, 0.5, 2.0);
    g_rand_free (rng);
    return bn;
  }

  Registry reg;
  Module model;
  Tensor x, before;
};

TEST_F (CrossPlugin, ShapeBreakingReplacementIsRefused)
{
  Snapshot snap (model.get ());
  Error e;

  // 8 channels out of the conv: the example's ScaledLeakyReLU refuses.
  Module wide = new_module (reg.get (),
      "{\"type\": \"Conv2d\", \"config\": {\"in_channels\": 4, \"out_channels\": 8, "
      "\"kernel_size\": 3, \"padding\": 1}}");
  EXPECT_FALSE (nn_surgery_replace (model.get (), "0.conv", wide.get (), nullptr, e.out ()));
  EXPECT_TRUE (e.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH)) << e.message ();
  for (const char *part : { "replace '0.conv' refused, model unchanged", "0.act",
                            "ScaledLeakyReLU", "[N, 4, ...]", "[2, 8, 5, 5]" })
    EXPECT_NE (e.message ().find (part), std::string::npos) << part << " in " << e.message ();
  expect_unchanged (snap);

  // No padding: the branch shrinks and the composite's own add refuses,
  // with the core's prefix naming the block.
  Module shrink = new_module (reg.get (),
      "{\"type\": \"Conv2d\", \"config\": {\"in_channels\": 4, \"out_channels\": 4, "
      "\"kernel_size\": 3}}");
  EXPECT_FALSE (nn_surgery_replace (model.get (), "#2", shrink.get (), nullptr, e.out ()));
  EXPECT_TRUE (e.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH)) << e.message ();
  for (const char *part : { "0: ResidualBlock", "residual add", "[2, 4, 5, 5]",
                            "[2, 4, 3, 3]" })
    EXPECT_NE (e.message ().find (part), std::string::npos) << part << " in " << e.message ();
  expect_unchanged (snap);

  // A bad path names what exists there.
  EXPECT_FALSE (nn_surgery_replace (model.get (), "0.convv", wide.get (), nullptr, e.out ()));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND)) << e.message ();
  EXPECT_NE (e.message ().find ("conv"), std::string::npos) << e.message ();
  expect_unchanged (snap);

  // The composite is not a container: its children are replaced, never
  // inserted or deleted.
  EXPECT_FALSE (nn_surgery_insert (model.get (), "0", 0, "extra", wide.get (), nullptr,
                                   e.out ()));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_CONTAINER)) << e.message ();
  EXPECT_NE (e.message ().find ("ResidualBlock"), std::string::npos) << e.message ();
  expect_unchanged (snap);
  EXPECT_FALSE (nn_surgery_delete (model.get (), "0.act", nullptr, e.out ()));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_CONTAINER)) << e.message ();
  expect_unchanged (snap);
}

TEST_F (CrossPlugin, ReplaceConvInCompositeWithBatchNorm)
{
  NnModule *block = nn_module_lookup_path (model.get (), "0", nullptr);
  NnModule *old_conv = nn_module_lookup_path (model.get (), "0.conv", nullptr);
  ASSERT_TRUE (block && old_conv);
  HookLog old_log;
  Error e;
  NnHookHandle *old_hook = nn_module_add_forward_hook (old_conv, record_hook, &old_log,
                                                       nullptr, "old", 0, e.out ());
  ASSERT_TRUE (old_hook) << e.message ();
  Tensor first = forward (model.get (), x.get ());
  ASSERT_TRUE (first);
  EXPECT_EQ (old_log.calls, 1);

  // Flattened index 2 is "0.conv", as enumerate(named_modules()) numbers it.
  const char *path = nullptr;
  ASSERT_EQ (nn_module_lookup_index (model.get (), 2, &path, e.out ()), old_conv);
  EXPECT_STREQ (path, "0.conv");

  Module bn = batch_norm (21);
  ASSERT_TRUE (bn);
  HookLog log;
  NnHookHandle *hook = nn_module_add_forward_hook (bn.get (), record_hook, &log, nullptr,
                                                   "capture", 0, e.out ());
  ASSERT_TRUE (hook) << e.message ();
  ASSERT_TRUE (nn_surgery_replace (model.get (), "#2", bn.get (), nullptr, e.out ()))
      << e.message ();

  // The composite object stays; the child slot now holds the norm plugin's
  // module, reached by the composite's forward through the core.
  EXPECT_EQ (nn_module_lookup_path (model.get (), "0", nullptr), block);
  EXPECT_EQ (nn_module_lookup_path (model.get (), "0.conv", nullptr), bn.get ());
  EXPECT_STREQ (plugin_of (model.get (), "0"), "example");
  EXPECT_STREQ (plugin_of (model.get (), "0.conv"), "norm");
  EXPECT_STREQ (plugin_of (model.get (), "0.act"), "example");

  Tensor after = forward (model.get (), x.get ());
  ASSERT_TRUE (after);
  Vec xv = to_vec (x.get ());
  Vec bn_out = naive_batch_norm (xv, 2, 4, 25, bn.get ());
  expect_close (after.get (), naive_model (model.get (), xv, bn_out), "after replace");
  EXPECT_FALSE (bit_equal (after.get (), before.get ()));

  // The hook on the new child fired once, at its path, with BN's output;
  // the old conv's hook stayed with the old object, which no longer runs.
  EXPECT_EQ (log.calls, 1);
  EXPECT_EQ (log.path, "0.conv");
  ASSERT_TRUE (log.output);
  expect_close (log.output.get (), bn_out, "hooked output");
  EXPECT_EQ (old_log.calls, 1); // only the forward before the replace
  Tensor again = forward (model.get (), x.get ());
  ASSERT_TRUE (again);
  EXPECT_EQ (log.calls, 2);
  EXPECT_EQ (old_log.calls, 1);
  nn_hook_handle_remove (old_hook);
  nn_hook_handle_free (old_hook);

  // Save as descriptor + weights and as one file; reload both.
  std::string work = env ("NN_OOT_WORKDIR");
  CStr text (nn_module_to_string (model.get ()));
  Array keys (nn_module_state_dict (model.get ()));
  for (std::string file : { work + "/replaced.json", work + "/replaced.safetensors" }) {
    SCOPED_TRACE (file);
    ASSERT_TRUE (nn_model_save (model.get (), file.c_str (), e.out ())) << e.message ();
    Module loaded (nn_model_load (reg.get (), file.c_str (), nullptr, FALSE, e.out ()));
    ASSERT_TRUE (loaded) << e.message ();
    NnModule *lblock = nn_module_lookup_path (loaded.get (), "0", nullptr);
    NnModule *lconv = nn_module_lookup_path (loaded.get (), "0.conv", nullptr);
    ASSERT_TRUE (lblock && lconv);
    EXPECT_STREQ (nn_module_get_type_name (lblock), "ResidualBlock");
    EXPECT_STREQ (nn_module_get_type_name (lconv), "BatchNorm2d");
    EXPECT_STREQ (plugin_of (loaded.get (), "0"), "example");
    EXPECT_STREQ (plugin_of (loaded.get (), "0.conv"), "norm");
    CStr ltext (nn_module_to_string (loaded.get ()));
    EXPECT_STREQ (ltext.get (), text.get ());
    Array lkeys (nn_module_state_dict (loaded.get ()));
    ASSERT_EQ (lkeys->len, keys->len);
    for (guint i = 0; i < keys->len; i++) {
      NnNamedItem *a = (NnNamedItem *) keys->pdata[i], *b = (NnNamedItem *) lkeys->pdata[i];
      EXPECT_STREQ (a->name, b->name);
      EXPECT_TRUE (bit_equal (a->tensor, b->tensor)) << a->name;
    }
    Tensor out = forward (loaded.get (), x.get ());
    ASSERT_TRUE (out);
    EXPECT_TRUE (bit_equal (out.get (), after.get ()));
  }
  nn_hook_handle_remove (hook);
  nn_hook_handle_remove (hook); // removing twice is safe
  nn_hook_handle_free (hook);
}

// The replaced child may come from the example plugin itself, and hooks can
// be moved along with the replacement.
TEST_F (CrossPlugin, ReplaceActWithConvMovingHooks)
{
  NnModule *old_act = nn_module_lookup_path (model.get (), "0.act", nullptr);
  HookLog log;
  Error e;
  NnHookHandle *hook = nn_module_add_forward_hook (old_act, record_hook, &log, nullptr,
                                                   "moved", 0, e.out ());
  ASSERT_TRUE (hook) << e.message ();
  Module conv = new_module (reg.get (),
      "{\"type\": \"Conv2d\", \"config\": {\"in_channels\": 4, \"out_channels\": 4, "
      "\"kernel_size\": 1, \"bias\": false}}");
  ASSERT_TRUE (conv);
  nn_module_reset_parameters (conv.get (), 8);
  NnSurgeryOptions opts = { sizeof (NnSurgeryOptions), NN_SURGERY_MOVE_HOOKS, nullptr };
  NnShape in = shape4 (2, 4, 5, 5);
  opts.input_shape = &in;
  ASSERT_TRUE (nn_surgery_replace (model.get (), "0.act", conv.get (), &opts, e.out ()))
      << e.message ();
  EXPECT_STREQ (plugin_of (model.get (), "0.act"), "conv");
  log.calls = 0;

  Tensor after = forward (model.get (), x.get ());
  ASSERT_TRUE (after);
  EXPECT_EQ (log.calls, 1);
  EXPECT_EQ (log.path, "0.act");

  // x + alpha * conv1x1(conv3x3(x)), then the last ScaledLeakyReLU.
  Vec xv = to_vec (x.get ());
  Vec c3 = naive_conv (xv, 2, 4, 5, 5, param (model.get (), "0.conv.weight"),
                       param (model.get (), "0.conv.bias"), 4, 3, 1);
  Vec c1 = naive_conv (c3, 2, 4, 5, 5, param (model.get (), "0.act.weight"), nullptr, 4, 1, 0);
  expect_close (log.output.get (), c1, "hooked 1x1 conv");
  NnModule *last = nn_module_lookup_path (model.get (), "1", nullptr);
  Vec res = naive_residual (xv, c1, config_float (nn_module_lookup_path (model.get (), "0", nullptr),
                                                  "alpha"));
  expect_close (after.get (),
                naive_scaled_leaky (res, 4, 25, param (model.get (), "1.scale"),
                                    config_float (last, "negative_slope")),
                "after replacing act");
  nn_hook_handle_remove (hook);
  nn_hook_handle_free (hook);
}

// The composite keeps no state between calls, so one tree runs in several
// threads at once; and a loaded model outlives its registry, which keeps
// every plugin it uses (the example included) loaded.
TEST_F (CrossPlugin, ThreadsAndLifetime)
{
  std::vector<Tensor> outs (4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < outs.size (); i++)
    threads.emplace_back ([&, i] {
      outs[i].reset (nn_module_forward (model.get (), x.get (), nullptr));
    });
  for (auto &t : threads)
    t.join ();
  for (auto &o : outs) {
    ASSERT_TRUE (o);
    EXPECT_TRUE (bit_equal (o.get (), before.get ()));
  }

  reg.reset ();
  Tensor later = forward (model.get (), x.get ());
  ASSERT_TRUE (later);
  EXPECT_TRUE (bit_equal (later.get (), before.get ()));
  EXPECT_STREQ (plugin_of (model.get (), "0"), "example");
}

// GatedSum, the example's multi-input type: two required tensors, an
// optional gate, a keyword-only scale, and a tuple (out, g) returned,
// against the formula evaluated here in double.
struct ValueDeleter { void operator() (NnValue *v) const { nn_value_unref (v); } };
using Value = std::unique_ptr<NnValue, ValueDeleter>;

TEST (Example, GatedSumTakesSeveralInputsAndReturnsATuple)
{
  Registry reg = load_registry ();
  Error e;
  Module m (nn_module_new_from_type (reg.get (), "GatedSum", nullptr, "gs", e.out ()));
  ASSERT_TRUE (m) << e.message ();
  NnShape s = shape4 (1, 2, 2, 3);
  Tensor x (nn_tensor_new (NN_DTYPE_F32, &s)), y (nn_tensor_new (NN_DTYPE_F32, &s)),
      gate (nn_tensor_new (NN_DTYPE_F32, &s));
  for (int i = 0; i < 12; i++) {
    nn_tensor_f32 (x.get ())[i] = 0.5f * i - 2.0f;
    nn_tensor_f32 (y.get ())[i] = 1.0f - 0.25f * i;
    nn_tensor_f32 (gate.get ())[i] = 0.3f * i - 1.5f;
  }
  Value args (nn_value_new_tuple ());
  nn_value_append (args.get (), nn_value_new_tensor (x.get ()));
  nn_value_append (args.get (), nn_value_new_tensor (y.get ()));
  Value kwargs (nn_value_new_dict ());
  nn_value_dict_set (kwargs.get (), "gate", nn_value_new_tensor (gate.get ()));
  nn_value_dict_set (kwargs.get (), "scale", nn_value_new_float (2.0));
  Value out (nn_module_call (m.get (), args.get (), kwargs.get (), e.out ()));
  ASSERT_TRUE (out) << e.message ();
  ASSERT_EQ (nn_value_kind (out.get ()), NN_VALUE_TUPLE);
  ASSERT_EQ (nn_value_n_items (out.get ()), 2u);
  NnTensor *o = nn_value_get_tensor (nn_value_item (out.get (), 0));
  NnTensor *g = nn_value_get_tensor (nn_value_item (out.get (), 1));
  ASSERT_TRUE (o && g);
  for (int i = 0; i < 12; i++) {
    double gv = 1.0 / (1.0 + std::exp (-(0.3 * i - 1.5)));
    double want = 2.0 * (gv * (0.5 * i - 2.0) + (1.0 - gv) * (1.0 - 0.25 * i));
    EXPECT_NEAR (nn_tensor_f32 (g)[i], gv, 1e-6);
    EXPECT_NEAR (nn_tensor_f32 (o)[i], want, 1e-5);
  }

  // Without a gate: an even mix, scale 1.
  Value even (nn_module_call (m.get (), args.get (), nullptr, e.out ()));
  ASSERT_TRUE (even) << e.message ();
  NnTensor *eo = nn_value_get_tensor (nn_value_item (even.get (), 0));
  for (int i = 0; i < 12; i++)
    EXPECT_NEAR (nn_tensor_f32 (eo)[i], 0.5 * (0.5 * i - 2.0) + 0.5 * (1.0 - 0.25 * i), 1e-6);

  // Inference gives the tuple of meta tensors without computing.
  Value inferred (nn_module_infer (m.get (), args.get (), kwargs.get (), e.out ()));
  ASSERT_TRUE (inferred) << e.message ();
  EXPECT_EQ (nn_value_count_tensors (inferred.get ()), 2u);
  EXPECT_TRUE (nn_tensor_is_meta (nn_value_get_tensor (nn_value_item (inferred.get (), 1))));

  // Errors: y missing, scale given positionally, a gate of another shape.
  Value only_x (nn_value_new_tuple ());
  nn_value_append (only_x.get (), nn_value_new_tensor (x.get ()));
  Value r1 (nn_module_call (m.get (), only_x.get (), nullptr, e.out ()));
  EXPECT_FALSE (r1);
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_ARGUMENTS)) << e.message ();
  EXPECT_NE (e.message ().find ("'y'"), std::string::npos) << e.message ();
  Value four (nn_value_new_tuple ());
  for (NnTensor *t : { x.get (), y.get (), gate.get () })
    nn_value_append (four.get (), nn_value_new_tensor (t));
  nn_value_append (four.get (), nn_value_new_float (2.0));
  Value r2 (nn_module_call (m.get (), four.get (), nullptr, e.out ()));
  EXPECT_FALSE (r2);
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_ARGUMENTS)) << e.message ();
  NnShape other = shape4 (1, 2, 3, 2);
  Tensor bad_gate (nn_tensor_new (NN_DTYPE_F32, &other));
  Value kw2 (nn_value_new_dict ());
  nn_value_dict_set (kw2.get (), "gate", nn_value_new_tensor (bad_gate.get ()));
  Value r3 (nn_module_call (m.get (), args.get (), kw2.get (), e.out ()));
  EXPECT_FALSE (r3);
  EXPECT_TRUE (e.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH)) << e.message ();
  EXPECT_NE (e.message ().find ("expected gate shaped like x [1, 2, 2, 3], found [1, 2, 3, 2]"),
             std::string::npos) << e.message ();
}

} // namespace
