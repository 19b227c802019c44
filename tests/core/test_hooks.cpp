// Tests for core/hooks.c: PyTorch's firing order, handles, replacement of
// inputs and outputs, and hooks that cannot be bypassed.
#include "nn-test.h"

using namespace nntest;

static std::vector<std::string> log_;

static gboolean
pre_log (NnModule *m, const char *path, NnTensor **input, gpointer ud, GError **)
{
  log_.push_back (std::string ((const char *) ud) + "@" + path);
  return TRUE;
}

static gboolean
fwd_log (NnModule *m, const char *path, NnTensor *, NnTensor **out, gpointer ud, GError **)
{
  log_.push_back (std::string ((const char *) ud) + "@" + path);
  return TRUE;
}

static Module
mlp (NnRegistry *reg)
{
  Error e;
  Module m (nn_descriptor_load_module_data (reg, R"({"type": "Sequential", "children": [
      {"name": "fc", "type": "Linear", "config": {"in_features": 2, "out_features": 2}},
      {"name": "act", "type": "ReLU"},
      {"name": "act2", "ref": "act"}]})", -1, "mlp", e.out ()));
  EXPECT_TRUE (m) << e.message ();
  return m;
}

static Tensor
input (std::initializer_list<gint64> dims, float v = 1.0f)
{
  NnShape s = shape (dims);
  Tensor t (nn_tensor_new (NN_DTYPE_F32, &s));
  for (gint64 i = 0; i < nn_tensor_numel (t.get ()); i++)
    nn_tensor_f32 (t.get ())[i] = v;
  return t;
}

TEST (Hooks, FireInPyTorchOrderAndOnEveryCall)
{
  Registry reg = default_registry ();
  Module m = mlp (reg.get ());
  NnModule *act = nn_module_get_child (m.get (), "act");
  Error e;
  log_.clear ();
  NnHookHandle *h[6] = {
    nn_module_add_forward_hook (act, fwd_log, (gpointer) "fwd", nullptr, nullptr, 0, e.out ()),
    nn_module_add_pre_hook (act, pre_log, (gpointer) "pre", nullptr, nullptr, 0, e.out ()),
    nn_module_add_pre_hook (act, pre_log, (gpointer) "pre-first", nullptr, nullptr, NN_HOOK_PREPEND, e.out ()),
    nn_add_global_forward_hook (fwd_log, (gpointer) "gfwd", nullptr, nullptr, 0),
    nn_add_global_pre_hook (pre_log, (gpointer) "gpre", nullptr, nullptr, 0),
    nullptr,
  };
  Tensor x = input ({1, 2});
  Tensor y (nn_module_forward (m.get (), x.get (), e.out ()));
  ASSERT_TRUE (y) << e.message ();
  std::vector<std::string> want = {
    "gpre@", "gpre@fc", "gfwd@fc",
    // act runs twice (the same module under act and act2): hooks fire twice.
    "gpre@act", "pre-first@act", "pre@act", "gfwd@act", "fwd@act",
    "gpre@act2", "pre-first@act2", "pre@act2", "gfwd@act2", "fwd@act2",
    "gfwd@",
  };
  EXPECT_EQ (log_, want);
  for (auto *hh : h) {
    nn_hook_handle_remove (hh);
    nn_hook_handle_remove (hh); // twice is safe
    nn_hook_handle_free (hh);
  }
  log_.clear ();
  Tensor y2 (nn_module_forward (m.get (), x.get (), e.out ()));
  EXPECT_TRUE (log_.empty ());
}

static gboolean
double_input (NnModule *, const char *, NnTensor **input, gpointer, GError **)
{
  NnTensor *t = nn_tensor_copy (*input);
  for (gint64 i = 0; i < nn_tensor_numel (t); i++)
    nn_tensor_f32 (t)[i] *= 2.0f;
  nn_tensor_unref (*input);
  *input = t;
  return TRUE;
}

static gboolean
negate_output (NnModule *, const char *, NnTensor *, NnTensor **out, gpointer, GError **)
{
  NnTensor *t = nn_tensor_copy (*out);
  for (gint64 i = 0; i < nn_tensor_numel (t); i++)
    nn_tensor_f32 (t)[i] = -nn_tensor_f32 (t)[i];
  nn_tensor_unref (*out);
  *out = t;
  return TRUE;
}

TEST (Hooks, ReplaceInputAndOutput)
{
  Registry reg = default_registry ();
  Error e;
  Module relu (nn_descriptor_load_module_data (reg.get (), R"({"type": "ReLU"})", -1, "r", e.out ()));
  NnHookHandle *a = nn_module_add_pre_hook (relu.get (), double_input, nullptr, nullptr, "x2", 0, e.out ());
  NnHookHandle *b = nn_module_add_forward_hook (relu.get (), negate_output, nullptr, nullptr, "neg", 0, e.out ());
  Tensor x = input ({3}, 1.5f);
  Tensor y (nn_module_forward (relu.get (), x.get (), e.out ()));
  ASSERT_TRUE (y) << e.message ();
  for (int i = 0; i < 3; i++)
    EXPECT_FLOAT_EQ (nn_tensor_f32 (y.get ())[i], -3.0f);
  EXPECT_FLOAT_EQ (nn_tensor_f32 (x.get ())[0], 1.5f) << "the caller's input is untouched";
  Array list (nn_module_list_hooks (relu.get ()));
  ASSERT_EQ (list->len, 2u);
  EXPECT_EQ (((NnHookInfo *) list->pdata[0])->kind, NN_HOOK_KIND_PRE);
  EXPECT_STREQ (((NnHookInfo *) list->pdata[0])->label, "x2");
  EXPECT_STREQ (((NnHookInfo *) list->pdata[1])->label, "neg");
  EXPECT_LT (((NnHookInfo *) list->pdata[0])->id, ((NnHookInfo *) list->pdata[1])->id);
  nn_hook_handle_free (a);
  nn_hook_handle_free (b); // freeing a handle keeps the hook
  Array still (nn_module_list_hooks (relu.get ()));
  EXPECT_EQ (still->len, 2u);
}

static gboolean
fail_hook (NnModule *, const char *, NnTensor **, gpointer, GError **error)
{
  g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED, "refused by hook");
  return FALSE;
}

TEST (Hooks, FailingHookAbortsTheForwardWithItsMessage)
{
  Registry reg = default_registry ();
  Module m = mlp (reg.get ());
  Error e;
  NnHookHandle *h = nn_module_add_pre_hook (nn_module_get_child (m.get (), "fc"), fail_hook,
                                            nullptr, nullptr, nullptr, 0, e.out ());
  Tensor x = input ({1, 2});
  Tensor y (nn_module_forward (m.get (), x.get (), e.out ()));
  EXPECT_FALSE (y);
  EXPECT_EQ (e.message (), "fc: Linear: refused by hook");
  nn_hook_handle_free (h);
}

static int destroyed;
static void count_destroy (gpointer) { destroyed++; }

TEST (Hooks, RemoveAllRecursiveAndUserDataFreed)
{
  Registry reg = default_registry ();
  Module m = mlp (reg.get ());
  Error e;
  destroyed = 0;
  NnModule *fc = nn_module_get_child (m.get (), "fc");
  nn_hook_handle_free (nn_module_add_pre_hook (fc, pre_log, nullptr, count_destroy, nullptr, 0, e.out ()));
  nn_hook_handle_free (nn_module_add_forward_hook (m.get (), fwd_log, nullptr, count_destroy, nullptr, 0, e.out ()));
  nn_module_remove_all_hooks (m.get (), FALSE);
  EXPECT_EQ (destroyed, 1);
  Array on_fc (nn_module_list_hooks (fc));
  EXPECT_EQ (on_fc->len, 1u);
  nn_module_remove_all_hooks (m.get (), TRUE);
  EXPECT_EQ (destroyed, 2);
  Array none (nn_module_list_hooks (fc));
  EXPECT_EQ (none->len, 0u);
}

TEST (Hooks, HandleOutlivesModule)
{
  Registry reg = default_registry ();
  Error e;
  NnModule *relu = nn_descriptor_load_module_data (reg.get (), R"({"type": "ReLU"})", -1, "r", e.out ());
  destroyed = 0;
  NnHookHandle *h = nn_module_add_pre_hook (relu, pre_log, nullptr, count_destroy, nullptr, 0, e.out ());
  nn_module_unref (relu);
  EXPECT_EQ (destroyed, 1);
  nn_hook_handle_remove (h);
  nn_hook_handle_free (h);
}

TEST (Hooks, ModulesThatNeverRunRefuseHooks)
{
  Registry reg = default_registry ();
  Error e;
  Module list (nn_descriptor_load_module_data (reg.get (), R"({"type": "ModuleList"})", -1, "l", e.out ()));
  EXPECT_EQ (nn_module_add_forward_hook (list.get (), fwd_log, nullptr, nullptr, nullptr, 0, e.out ()), nullptr);
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NO_FORWARD));
  EXPECT_EQ (e.message (), "cannot hook ModuleList: ModuleList has no forward(), so it never "
                           "runs and a hook on it would never fire; hook its children instead");
  Module dict (nn_descriptor_load_module_data (reg.get (), R"({"type": "ModuleDict"})", -1, "d", e.out ()));
  EXPECT_EQ (nn_module_add_pre_hook (dict.get (), pre_log, nullptr, nullptr, nullptr, 0, e.out ()), nullptr);
  EXPECT_NE (e.message ().find ("ModuleDict has no forward()"), std::string::npos);
}

TEST (Hooks, GraphChildUsedTwiceFiresTwice)
{
  Registry reg = default_registry ();
  Module m = load_resnet18 (reg.get ());
  ASSERT_TRUE (m);
  Error e;
  NnModule *relu = nn_module_lookup_path (m.get (), "layer1.0.relu", e.out ());
  log_.clear ();
  NnHookHandle *h = nn_module_add_forward_hook (relu, fwd_log, (gpointer) "relu", nullptr, nullptr, 0, e.out ());
  Tensor x = input ({1, 3, 32, 32}, 0.5f);
  Tensor y (nn_module_forward (m.get (), x.get (), e.out ()));
  ASSERT_TRUE (y) << e.message ();
  EXPECT_EQ (log_, (std::vector<std::string>{ "relu@layer1.0.relu", "relu@layer1.0.relu" }));
  nn_hook_handle_free (h);
}
