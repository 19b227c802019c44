// Tests for core/check.c and core/check_shapes.c: plugin mistakes caught
// at the module that makes them, with fixture-mistakes' types.  The suite
// runs with NN_CHECK=1 (tests/meson.build's test_env), as every suite.
#include "nn-test.h"

#include <dlfcn.h>

using namespace nntest;

static std::string
mistakes_path ()
{
  const char *dir = g_getenv ("NN_TEST_FIXTURE_DIR");
  return std::string (dir ? dir : "tests/fixtures") + "/fixture-mistakes.so";
}

static Registry
mistakes_registry ()
{
  Registry reg = fixture_registry ();
  std::string path = mistakes_path ();
  Error e;
  EXPECT_TRUE (nn_registry_load_file (reg.get (), path.c_str (), e.out ())) << e.message ();
  return reg;
}

// fc (FixtureLinear 3 -> 10), then @type as "act".
static std::string
model_with (const char *type)
{
  return std::string (R"({"format": "nnkit", "version": 2, "model": {
    "type": "Sequential", "children": [
      {"name": "fc", "type": "FixtureLinear", "config": {"in_features": 3, "out_features": 10}},
      {"name": "act", "type": ")") + type + R"("}]}})";
}

static Module
load (NnRegistry *reg, const char *type)
{
  Error e;
  Module m (nn_descriptor_load_data (reg, model_with (type).c_str (), -1, "test", e.out ()));
  EXPECT_TRUE (m) << e.message ();
  return m;
}

TEST (Checks, CheckedModeIsOnInTheTestSuites)
{
  EXPECT_STREQ (g_getenv ("NN_CHECK"), "1");
}

TEST (Checks, ForwardShapeDifferingFromInferNamesModuleAndPlugin)
{
  Registry reg = mistakes_registry ();
  Module m = load (reg.get (), "BadShape");
  ASSERT_TRUE (m);
  Tensor x = tensor_f32 ({1, 3}, [] (gint64 i) { return (float) i; });
  Error e;
  Tensor y (nn_module_forward (m.get (), x.get (), e.out ()));
  EXPECT_FALSE (y);
  EXPECT_EQ (e.message (), "act: BadShape: forward returned Tensor[1, 9] F32 but infer "
                           "says Tensor[1, 10] F32 (a bug in plugin 'fixture-mistakes')");
  // Inference alone believes infer: the mistake only shows when run.
  NnShape in = shape ({1, 3}), out;
  Error e2;
  EXPECT_TRUE (nn_module_infer_shape (m.get (), &in, &out, e2.out ())) << e2.message ();
  EXPECT_EQ (shape_text (out), "[1, 10]");
}

TEST (Checks, SurgeryWithBadShapeIsCaughtAtTheFirstForward)
{
  Registry reg = mistakes_registry ();
  Module m = load (reg.get (), "FixtureAffine");
  ASSERT_TRUE (m);
  Error e;
  Module bad (nn_module_new_from_type (reg.get (), "BadShape", nullptr, "bad", e.out ()));
  ASSERT_TRUE (bad) << e.message ();
  NnShape in = shape ({2, 3});
  NnSurgeryOptions opts = { sizeof (NnSurgeryOptions), 0, &in };
  // Surgery checks shapes with infer, which is right here.
  ASSERT_TRUE (nn_surgery_replace (m.get (), "act", bad.get (), &opts, e.out ())) << e.message ();
  Tensor x = tensor_f32 ({2, 3}, [] (gint64 i) { return 0.5f * (float) i; });
  Tensor y (nn_module_forward (m.get (), x.get (), e.out ()));
  EXPECT_FALSE (y);
  EXPECT_EQ (e.message (), "act: BadShape: forward returned Tensor[2, 9] F32 but infer "
                           "says Tensor[2, 10] F32 (a bug in plugin 'fixture-mistakes')");
}

TEST (Checks, WriteIntoInputIsCaughtAndUndone)
{
  Registry reg = mistakes_registry ();
  Module m = load (reg.get (), "WritesInput");
  ASSERT_TRUE (m);
  Error e;
  Tensor x = tensor_f32 ({1, 3}, [] (gint64 i) { return 1.0f + (float) i; });
  NnModule *act = nn_module_lookup_ref (m.get (), "act", nullptr, e.out ());
  ASSERT_TRUE (act) << e.message ();
  g_autoptr (NnValue) args = nn_value_new_tuple ();
  Tensor h = tensor_f32 ({1, 10}, [] (gint64 i) { return (float) i - 4.0f; });
  nn_value_append (args, nn_value_new_tensor (h.get ()));
  NnValue *out = nn_module_call (act, args, nullptr, e.out ());
  EXPECT_EQ (out, nullptr);
  EXPECT_EQ (e.message (), "WritesInput: forward wrote into its input 'input' "
                           "(Tensor[1, 10] F32), which the type does not declare "
                           "in-place (inplace_arg); captured activations and Graph "
                           "values would change silently; the input is restored "
                           "(a bug in plugin 'fixture-mistakes')");
  for (int i = 0; i < 10; i++)
    EXPECT_EQ (nn_tensor_f32 (h.get ())[i], (float) i - 4.0f) << i;
  // Inside a tree the error carries the module path.
  Error e2;
  Tensor y (nn_module_forward (m.get (), x.get (), e2.out ()));
  EXPECT_FALSE (y);
  EXPECT_TRUE (contains (e2.message (), "act: WritesInput: forward wrote into "
                                        "its input 'input'")) << e2.message ();
}

TEST (Checks, DeclaredInplaceWriteIsAccepted)
{
  Registry reg = mistakes_registry ();
  Error e;
  Module m (nn_module_new_from_type (reg.get (), "InplaceOk", nullptr, "ok", e.out ()));
  ASSERT_TRUE (m) << e.message ();
  Tensor x = tensor_f32 ({4}, [] (gint64 i) { return (float) i; });
  Tensor y (nn_module_forward (m.get (), x.get (), e.out ()));
  ASSERT_TRUE (y) << e.message ();
  for (int i = 0; i < 4; i++) {
    EXPECT_EQ (nn_tensor_f32 (y.get ())[i], (float) i + 1.0f);
    EXPECT_EQ (nn_tensor_f32 (x.get ())[i], (float) i + 1.0f);
  }
}

TEST (Checks, ResultAliasingInputIsCaught)
{
  Registry reg = mistakes_registry ();
  Module m = load (reg.get (), "AliasOut");
  ASSERT_TRUE (m);
  Tensor x = tensor_f32 ({1, 3}, [] (gint64 i) { return (float) i; });
  Error e;
  Tensor y (nn_module_forward (m.get (), x.get (), e.out ()));
  EXPECT_FALSE (y);
  EXPECT_EQ (e.message (), "act: AliasOut: forward returned the result, which is "
                           "the very tensor object of its input 'input', but the type "
                           "declares neither an in-place argument (inplace_arg) nor "
                           "NN_LAYER_ALIASES (a bug in plugin 'fixture-mistakes')");
}

TEST (Checks, DeclaredViewIsAccepted)
{
  Registry reg = mistakes_registry ();
  Module m = load (reg.get (), "ViewOk");
  ASSERT_TRUE (m);
  Tensor x = tensor_f32 ({1, 3}, [] (gint64 i) { return (float) i; });
  Error e;
  Tensor y (nn_module_forward (m.get (), x.get (), e.out ()));
  EXPECT_TRUE (y) << e.message ();
}

static NnValue *
tape_call (NnTape *tape, NnModule *m, NnTensor *x, Error &e)
{
  g_autoptr (NnValue) args = nn_value_new_tuple ();
  nn_value_append (args, nn_value_new_tensor (x));
  return nn_tape_call (tape, m, args, nullptr, e.out ());
}

// A refused forward fails a recorded run as any other and never reaches
// the tape, whose backward would otherwise start from a wrong shape.
TEST (Checks, RefusedForwardIsNotRecorded)
{
  Registry reg = mistakes_registry ();
  Module m = load (reg.get (), "BadShape");
  ASSERT_TRUE (m);
  Tensor x = tensor_f32 ({1, 3}, [] (gint64 i) { return (float) i; });
  NnTape *tape = nn_tape_new (1);
  Error e;
  NnValue *out = tape_call (tape, m.get (), x.get (), e);
  EXPECT_EQ (out, nullptr);
  EXPECT_TRUE (contains (e.message (), "act: BadShape: forward returned Tensor[1, 9] F32 "
                                       "but infer says Tensor[1, 10] F32")) << e.message ();
  // fc (trainable) only; act's input is fc's result, so it would be recorded.
  EXPECT_EQ (nn_tape_n_entries (tape), 1u);
  nn_tape_free (tape);
}

// The check's infer of a composite runs a child without infer on zeros:
// that nested forward is inference, and must not be recorded.
TEST (Checks, InferOfTheCheckIsNotRecorded)
{
  Registry reg = mistakes_registry ();
  Error e;
  Module m (nn_descriptor_load_data (reg.get (), R"({"format": "nnkit", "version": 2,
    "model": {"type": "CallsInner", "children": [
      {"name": "inner", "type": "FixtureLinear",
       "config": {"in_features": 3, "out_features": 4}}]}})", -1, "test", e.out ()));
  ASSERT_TRUE (m) << e.message ();
  Tensor x = tensor_f32 ({2, 3}, [] (gint64 i) { return (float) i; });
  NnTape *tape = nn_tape_new (1);
  NnValue *out = tape_call (tape, m.get (), x.get (), e);
  ASSERT_NE (out, nullptr) << e.message ();
  EXPECT_EQ (shape_text (nn_value_get_tensor (out)->shape), "[2, 4]");
  // inner once, from the forward: the check's zero-filled run adds nothing.
  EXPECT_EQ (nn_tape_n_entries (tape), 1u);
  nn_value_unref (out);
  nn_tape_free (tape);
}

// NN_CHECK is read once per process: the other modes run in a child, this
// test binary again with NN_TEST_CHECK_MODE naming what to expect.
TEST (ChecksMode, Child)
{
  const char *mode = g_getenv ("NN_TEST_CHECK_MODE");
  if (!mode)
    GTEST_SKIP () << "run by ChecksMode.DefaultAndOff";
  Registry reg = mistakes_registry ();
  Module bad = load (reg.get (), "BadShape");
  Module writes = load (reg.get (), "WritesInput");
  ASSERT_TRUE (bad && writes);
  Tensor x = tensor_f32 ({1, 3}, [] (gint64 i) { return (float) i; });
  Error e1, e2;
  Tensor y1 (nn_module_forward (bad.get (), x.get (), e1.out ()));
  Tensor y2 (nn_module_forward (writes.get (), x.get (), e2.out ()));
  // Writes into inputs are only looked for in checked mode.
  EXPECT_TRUE (y2) << e2.message ();
  if (g_str_equal (mode, "default")) {
    EXPECT_FALSE (y1);
    EXPECT_TRUE (contains (e1.message (), "forward returned Tensor[1, 9] F32 but infer says"));
  } else {
    EXPECT_TRUE (y1) << e1.message ();
    EXPECT_EQ (shape_text (y1->shape), "[1, 9]");
  }
}

TEST (ChecksMode, DefaultAndOff)
{
  for (const char *mode : { "default", "off" }) {
    gchar **env = g_get_environ ();
    env = g_str_equal (mode, "off") ? g_environ_setenv (env, "NN_CHECK", "0", TRUE)
                                    : g_environ_unsetenv (env, "NN_CHECK");
    env = g_environ_setenv (env, "NN_TEST_CHECK_MODE", mode, TRUE);
    g_autofree char *self = g_file_read_link ("/proc/self/exe", nullptr);
    const char *argv[] = { self, "--gtest_filter=ChecksMode.Child", nullptr };
    int status = -1;
    g_autofree char *out = nullptr;
    Error e;
    ASSERT_TRUE (g_spawn_sync (nullptr, (char **) argv, env, G_SPAWN_STDERR_TO_DEV_NULL,
                               nullptr, nullptr, &out, nullptr, &status, e.out ()))
        << e.message ();
    g_strfreev (env);
    EXPECT_TRUE (g_spawn_check_wait_status (status, nullptr)) << mode << "\n" << out;
    EXPECT_TRUE (contains (out, "[  PASSED  ] 1 test")) << mode << "\n" << out;
  }
}

// A plan step remembers the signature (argument and result shapes, dtypes,
// scalars) whose forward agreed with infer: infer runs again only for a new
// signature or after an edit, which rebuilds the step.
TEST (ChecksCache, InferRunsOncePerSignatureAndStep)
{
  Registry reg = mistakes_registry ();
  // The plugin is loaded already: this only finds its counter.
  void *so = dlopen (mistakes_path ().c_str (), RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE (so, nullptr) << dlerror ();
  auto calls = (int (*) (void)) dlsym (so, "fixture_mistakes_infer_calls");
  ASSERT_NE (calls, nullptr) << dlerror ();
  Module m = load (reg.get (), "CountsInfer");
  ASSERT_TRUE (m);
  auto run = [&] (gint64 batch) {
    Tensor x = tensor_f32 ({batch, 3}, [] (gint64 i) { return 1.0f + (float) i; });
    Error e;
    Tensor y (nn_module_forward (m.get (), x.get (), e.out ()));
    EXPECT_TRUE (y) << e.message ();
  };
  int base = calls ();
  run (1);
  EXPECT_EQ (calls () - base, 1);
  run (1);
  run (1);
  EXPECT_EQ (calls () - base, 1);
  run (2);  // a new signature is compared
  EXPECT_EQ (calls () - base, 2);
  run (2);
  run (1);  // the step remembers the latest agreement only
  EXPECT_EQ (calls () - base, 3);

  Error e;
  Module fresh (nn_module_new_from_type (reg.get (), "CountsInfer", nullptr, "act", e.out ()));
  ASSERT_TRUE (fresh) << e.message ();
  NnShape in = shape ({1, 3});
  NnSurgeryOptions opts = { sizeof (NnSurgeryOptions), 0, &in };
  ASSERT_TRUE (nn_surgery_replace (m.get (), "act", fresh.get (), &opts, e.out ()))
    << e.message ();
  int before = calls ();  // surgery's own shape check may run infer
  run (1);  // the edit rebuilt the step
  EXPECT_EQ (calls () - before, 1);
  dlclose (so);
}

// The remembered signature includes the result's shape, so a forward
// whose shape depends on the data is still caught on the call it goes
// wrong, however often the same input shape agreed before.
TEST (ChecksCache, DataDependentShapeBugIsCaughtAfterAgreement)
{
  Registry reg = mistakes_registry ();
  Module m = load (reg.get (), "ShortIfNegative");
  ASSERT_TRUE (m);
  // fc's result then has the sign of the input's sum.
  Error le;
  NnTensor *w = nn_module_lookup_tensor (m.get (), "fc.weight", le.out ());
  NnTensor *b = nn_module_lookup_tensor (m.get (), "fc.bias", le.out ());
  ASSERT_TRUE (w && b) << le.message ();
  for (gint64 i = 0; i < nn_tensor_numel (w); i++)
    nn_tensor_f32 (w)[i] = 0.25f;
  memset (nn_tensor_f32 (b), 0, nn_tensor_nbytes (b));
  nn_tensor_mark_written (w);
  nn_tensor_mark_written (b);
  for (int i = 0; i < 3; i++) {
    Tensor x = tensor_f32 ({1, 3}, [] (gint64 i) { return 1.0f + (float) i; });
    Error e;
    Tensor y (nn_module_forward (m.get (), x.get (), e.out ()));
    ASSERT_TRUE (y) << e.message ();
  }
  // A negative input: fc's result is negative, and act one feature short.
  Tensor neg = tensor_f32 ({1, 3}, [] (gint64 i) { return -1.0f - (float) i; });
  Error e;
  Tensor y (nn_module_forward (m.get (), neg.get (), e.out ()));
  EXPECT_FALSE (y);
  EXPECT_EQ (e.message (), "act: ShortIfNegative: forward returned Tensor[1, 9] F32 but "
                           "infer says Tensor[1, 10] F32 (a bug in plugin "
                           "'fixture-mistakes')");
}
