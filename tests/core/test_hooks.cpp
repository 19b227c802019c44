// Tests for core/hooks.c: PyTorch's firing order, handles, replacement of
// arguments and outputs, keyword arguments, and hooks that cannot be
// bypassed (calls into descendants, a module called in a loop).
#include "nn-test.h"

using namespace nntest;

static std::vector<std::string> log_;

static gboolean
pre_log (NnModule *m, const char *path, NnValue **args, NnValue **kwargs, gpointer ud,
         GError **)
{
  log_.push_back (std::string ((const char *) ud) + "@" + path);
  return TRUE;
}

static gboolean
fwd_log (NnModule *m, const char *path, const NnValue *, const NnValue *, NnValue **out,
         gpointer ud, GError **)
{
  log_.push_back (std::string ((const char *) ud) + "@" + path);
  return TRUE;
}

static Module
mlp (NnRegistry *reg)
{
  return load_json (reg, R"({"type": "Sequential", "children": [
      {"name": "fc", "type": "FixtureLinear", "config": {"in_features": 2, "out_features": 2}},
      {"name": "act", "type": "FixtureAffine"},
      {"name": "act2", "ref": "act"}]})");
}

static Tensor
input (std::initializer_list<gint64> dims, float v = 1.0f)
{
  return tensor_f32 (dims, [v] (gint64) { return v; });
}

TEST (Hooks, FireInPyTorchOrderAndOnEveryCall)
{
  Registry reg = fixture_registry ();
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
double_input (NnModule *, const char *, NnValue **args, NnValue **kwargs, gpointer, GError **)
{
  EXPECT_EQ (kwargs, nullptr) << "kwargs only for NN_HOOK_WITH_KWARGS hooks";
  NnTensor *t = nn_tensor_copy (nn_value_get_tensor (nn_value_item (*args, 0)));
  for (gint64 i = 0; i < nn_tensor_numel (t); i++)
    nn_tensor_f32 (t)[i] *= 2.0f;
  nn_value_unref (*args);
  *args = nn_value_take_tensor (t); // not a tuple: the core wraps it
  return TRUE;
}

static gboolean
negate_output (NnModule *, const char *, const NnValue *args, const NnValue *kwargs,
               NnValue **out, gpointer, GError **)
{
  EXPECT_EQ (nn_value_kind (args), NN_VALUE_TUPLE);
  EXPECT_EQ (kwargs, nullptr);
  NnTensor *t = nn_tensor_copy (nn_value_get_tensor (*out));
  for (gint64 i = 0; i < nn_tensor_numel (t); i++)
    nn_tensor_f32 (t)[i] = -nn_tensor_f32 (t)[i];
  nn_value_unref (*out);
  *out = nn_value_take_tensor (t);
  return TRUE;
}

TEST (Hooks, ReplaceArgumentsAndOutput)
{
  Registry reg = fixture_registry ();
  Error e;
  Module aff = load_json (reg.get (), R"({"type": "FixtureAffine", "config": {"shift": 1.0}})");
  NnHookHandle *a = nn_module_add_pre_hook (aff.get (), double_input, nullptr, nullptr, "x2", 0, e.out ());
  NnHookHandle *b = nn_module_add_forward_hook (aff.get (), negate_output, nullptr, nullptr, "neg", 0, e.out ());
  Tensor x = input ({3}, 1.5f);
  Tensor y (nn_module_forward (aff.get (), x.get (), e.out ()));
  ASSERT_TRUE (y) << e.message ();
  for (int i = 0; i < 3; i++)
    EXPECT_FLOAT_EQ (nn_tensor_f32 (y.get ())[i], -(1.5f * 2.0f + 1.0f));
  EXPECT_FLOAT_EQ (nn_tensor_f32 (x.get ())[0], 1.5f) << "the caller's input is untouched";
  Array list (nn_module_list_hooks (aff.get ()));
  ASSERT_EQ (list->len, 2u);
  EXPECT_EQ (((NnHookInfo *) list->pdata[0])->kind, NN_HOOK_KIND_PRE);
  EXPECT_STREQ (((NnHookInfo *) list->pdata[0])->label, "x2");
  EXPECT_STREQ (((NnHookInfo *) list->pdata[1])->label, "neg");
  EXPECT_LT (((NnHookInfo *) list->pdata[0])->id, ((NnHookInfo *) list->pdata[1])->id);
  nn_hook_handle_free (a);
  nn_hook_handle_free (b); // freeing a handle keeps the hook
  Array still (nn_module_list_hooks (aff.get ()));
  EXPECT_EQ (still->len, 2u);
}

// With NN_HOOK_WITH_KWARGS a pre-hook sees and may rewrite the keywords.
static gboolean
force_dict (NnModule *, const char *, NnValue **args, NnValue **kwargs, gpointer, GError **)
{
  EXPECT_NE (kwargs, nullptr);
  EXPECT_EQ (nn_value_kind (*kwargs), NN_VALUE_DICT);
  NnValue *kw = nn_value_new_dict ();
  nn_value_dict_set (kw, "as_dict", nn_value_new_bool (TRUE));
  nn_value_unref (*kwargs);
  *kwargs = kw;
  return TRUE;
}

static gboolean
see_kwargs (NnModule *, const char *, const NnValue *, const NnValue *kwargs, NnValue **out,
            gpointer ud, GError **)
{
  *(std::string *) ud = kwargs ? take (nn_value_to_string (kwargs)) : "NULL";
  return TRUE;
}

TEST (Hooks, WithKwargsHooksSeeAndReplaceKeywords)
{
  Registry reg = fixture_registry ();
  Error e;
  Module pair = load_json (reg.get (), R"({"type": "FixturePair"})");
  std::string seen_with, seen_without;
  nn_hook_handle_free (nn_module_add_pre_hook (pair.get (), force_dict, nullptr, nullptr, nullptr,
                                               NN_HOOK_WITH_KWARGS, e.out ()));
  nn_hook_handle_free (nn_module_add_forward_hook (pair.get (), see_kwargs, &seen_with, nullptr,
                                                   nullptr, NN_HOOK_WITH_KWARGS, e.out ()));
  nn_hook_handle_free (nn_module_add_forward_hook (pair.get (), see_kwargs, &seen_without, nullptr,
                                                   nullptr, 0, e.out ()));
  Tensor x = input ({2}, 3.0f);
  ValueRef args = value_tuple ({ nn_value_new_tensor (x.get ()) });
  ValueRef out (nn_module_call (pair.get (), args.get (), nullptr, e.out ()));
  ASSERT_TRUE (out) << e.message ();
  ASSERT_EQ (nn_value_kind (out.get ()), NN_VALUE_DICT) << "the hook's as_dict=True was used";
  EXPECT_FLOAT_EQ (nn_tensor_f32 (nn_value_get_tensor (nn_value_dict_lookup (out.get (), "sum")))[0], 6.0f);
  EXPECT_EQ (seen_with, "{'as_dict': True}");
  EXPECT_EQ (seen_without, "NULL");
}

static gboolean
fail_hook (NnModule *, const char *, NnValue **, NnValue **, gpointer, GError **error)
{
  g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED, "refused by hook");
  return FALSE;
}

static gboolean
null_args (NnModule *, const char *, NnValue **args, NnValue **, gpointer, GError **)
{
  nn_value_unref (*args);
  *args = nullptr;
  return TRUE;
}

TEST (Hooks, FailingHookAbortsTheForwardWithItsMessage)
{
  Registry reg = fixture_registry ();
  Module m = mlp (reg.get ());
  Error e;
  NnModule *fc = nn_module_get_child (m.get (), "fc");
  NnHookHandle *h = nn_module_add_pre_hook (fc, fail_hook, nullptr, nullptr, nullptr, 0, e.out ());
  Tensor x = input ({1, 2});
  Tensor y (nn_module_forward (m.get (), x.get (), e.out ()));
  EXPECT_FALSE (y);
  EXPECT_EQ (e.message (), "fc: FixtureLinear: refused by hook");
  nn_hook_handle_remove (h);
  nn_hook_handle_free (h);
  // A hook that drops the arguments is reported, not followed into a crash.
  h = nn_module_add_pre_hook (fc, null_args, nullptr, nullptr, "dropper", 0, e.out ());
  EXPECT_FALSE (Tensor (nn_module_forward (m.get (), x.get (), e.out ())));
  EXPECT_EQ (e.message (), "fc: FixtureLinear: pre-hook 'dropper' set the arguments to NULL; "
                           "set a tuple value instead");
  nn_hook_handle_free (h);
}

static int destroyed;
static void count_destroy (gpointer) { destroyed++; }

TEST (Hooks, RemoveAllRecursiveAndUserDataFreed)
{
  Registry reg = fixture_registry ();
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
  Registry reg = fixture_registry ();
  Error e;
  NnModule *aff = nn_descriptor_load_module_data (reg.get (), R"({"type": "FixtureAffine"})", -1, "r", e.out ());
  ASSERT_TRUE (aff) << e.message ();
  destroyed = 0;
  NnHookHandle *h = nn_module_add_pre_hook (aff, pre_log, nullptr, count_destroy, nullptr, 0, e.out ());
  nn_module_unref (aff);
  EXPECT_EQ (destroyed, 1);
  nn_hook_handle_remove (h);
  nn_hook_handle_free (h);
}

TEST (Hooks, ModulesThatNeverRunRefuseHooks)
{
  Registry reg = fixture_registry ();
  Error e;
  Module list = load_json (reg.get (), R"({"type": "ModuleList"})");
  EXPECT_EQ (nn_module_add_forward_hook (list.get (), fwd_log, nullptr, nullptr, nullptr, 0, e.out ()), nullptr);
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NO_FORWARD));
  EXPECT_EQ (e.message (), "cannot hook ModuleList: ModuleList has no forward(), so it never "
                           "runs and a hook on it would never fire; hook its children instead");
  Module dict = load_json (reg.get (), R"({"type": "ModuleDict"})");
  EXPECT_EQ (nn_module_add_pre_hook (dict.get (), pre_log, nullptr, nullptr, nullptr, 0, e.out ()), nullptr);
  EXPECT_NE (e.message ().find ("ModuleDict has no forward()"), std::string::npos);
}

// A Graph looping over a ModuleList calls "layers.1" through the core:
// its hook fires once per call, and a replacement is seen by the next
// forward without any re-parse.
TEST (Hooks, CallsIntoDescendantsFireOncePerCallAndSeeReplacements)
{
  Registry reg = fixture_registry ();
  Module m = load_json (reg.get (), R"({"type": "Graph",
    "config": {"inputs": ["x"], "nodes": [
      {"name": "a", "module": "layers.0", "args": ["x"]},
      {"name": "b", "module": "layers.1", "args": ["a"]},
      {"name": "c", "module": "layers.1", "args": ["b"]}],
     "output": "c"},
    "children": [{"name": "layers", "type": "ModuleList", "children": [
      {"name": "0", "type": "FixtureAffine", "config": {"scale": 2.0}},
      {"name": "1", "type": "FixtureAffine", "config": {"shift": 1.0}}]}]})");
  ASSERT_TRUE (m);
  Error e;
  NnModule *l1 = nn_module_lookup_path (m.get (), "layers.1", e.out ());
  log_.clear ();
  nn_hook_handle_free (nn_module_add_pre_hook (l1, pre_log, (gpointer) "pre", nullptr, nullptr, 0, e.out ()));
  Tensor x = input ({2}, 3.0f);
  Tensor y (nn_module_forward (m.get (), x.get (), e.out ()));
  ASSERT_TRUE (y) << e.message ();
  EXPECT_FLOAT_EQ (nn_tensor_f32 (y.get ())[0], 3.0f * 2.0f + 1.0f + 1.0f);
  EXPECT_EQ (log_, (std::vector<std::string>{ "pre@layers.1", "pre@layers.1" }));

  // Replace layers.1: the next forward calls the new module.
  Module repl = load_json (reg.get (), R"({"type": "FixtureAffine", "config": {"scale": 10.0}})");
  NnSurgeryOptions opts = { sizeof opts, NN_SURGERY_NO_SHAPE_CHECK, nullptr };
  ASSERT_TRUE (nn_surgery_replace (m.get (), "layers.1", repl.get (), &opts, e.out ())) << e.message ();
  log_.clear ();
  Tensor y2 (nn_module_forward (m.get (), x.get (), e.out ()));
  ASSERT_TRUE (y2) << e.message ();
  EXPECT_FLOAT_EQ (nn_tensor_f32 (y2.get ())[0], 3.0f * 2.0f * 10.0f * 10.0f);
  EXPECT_TRUE (log_.empty ()) << "hooks stay with the old module, as in PyTorch";
}

// Inference runs on meta tensors and fires no hooks (they could read data).
TEST (Hooks, InferenceFiresNoHooks)
{
  Registry reg = fixture_registry ();
  Module m = mlp (reg.get ());
  Error e;
  log_.clear ();
  NnHookHandle *g = nn_add_global_pre_hook (pre_log, (gpointer) "g", nullptr, nullptr, 0);
  NnShape in = shape ({4, 2}), out;
  ASSERT_TRUE (nn_module_infer_shape (m.get (), &in, &out, e.out ())) << e.message ();
  EXPECT_EQ (shape_text (out), "[4, 2]");
  EXPECT_TRUE (log_.empty ());
  nn_hook_handle_remove (g);
  nn_hook_handle_free (g);
}
