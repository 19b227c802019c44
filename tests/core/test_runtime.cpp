// Tests for core/runtime.c: forward and shape inference through the core,
// errors located by module path, and the shape observer's order.
#include "nn-test.h"

#include <cmath>

using namespace nntest;

static const char *kMlp = R"({"format": "nnkit", "version": 1, "model": {
  "type": "Sequential", "class": "Mlp", "children": [
    {"name": "fc1", "type": "Linear", "config": {"in_features": 3, "out_features": 4}},
    {"name": "act", "type": "ReLU"},
    {"name": "block", "type": "Sequential", "children": [
      {"name": "fc2", "type": "Linear", "config": {"in_features": 4, "out_features": 2}}]}]}})";

static void
fill (NnTensor *t, float start, float step)
{
  float *d = nn_tensor_f32 (t);
  for (gint64 i = 0; i < nn_tensor_numel (t); i++)
    d[i] = start + step * (float) i;
}

TEST (Runtime, SequentialForwardMatchesHandComputation)
{
  Registry reg = default_registry ();
  Error e;
  Module m (nn_descriptor_load_data (reg.get (), kMlp, -1, "mlp", e.out ()));
  ASSERT_TRUE (m) << e.message ();
  NnTensor *w1 = nn_module_lookup_tensor (m.get (), "fc1.weight", e.out ());
  NnTensor *b1 = nn_module_lookup_tensor (m.get (), "fc1.bias", e.out ());
  NnTensor *w2 = nn_module_lookup_tensor (m.get (), "block.fc2.weight", e.out ());
  NnTensor *b2 = nn_module_lookup_tensor (m.get (), "block.fc2.bias", e.out ());
  fill (w1, -0.5f, 0.1f);
  fill (b1, 0.1f, -0.05f);
  fill (w2, 0.3f, -0.07f);
  fill (b2, -0.2f, 0.4f);
  NnShape s = shape ({2, 3});
  Tensor x (nn_tensor_new (NN_DTYPE_F32, &s));
  fill (x.get (), -1.0f, 0.35f);
  Tensor y (nn_module_forward (m.get (), x.get (), e.out ()));
  ASSERT_TRUE (y) << e.message ();
  EXPECT_EQ (shape_text (y->shape), "[2, 2]");
  // Reference: y = W2 relu(W1 x + b1) + b2, computed here in double.
  const float *X = nn_tensor_f32 (x.get ()), *W1 = nn_tensor_f32 (w1), *B1 = nn_tensor_f32 (b1);
  const float *W2 = nn_tensor_f32 (w2), *B2 = nn_tensor_f32 (b2);
  for (int n = 0; n < 2; n++) {
    double h[4];
    for (int o = 0; o < 4; o++) {
      double acc = B1[o];
      for (int i = 0; i < 3; i++)
        acc += (double) W1[o * 3 + i] * X[n * 3 + i];
      h[o] = acc > 0 ? acc : 0;
    }
    for (int o = 0; o < 2; o++) {
      double acc = B2[o];
      for (int i = 0; i < 4; i++)
        acc += (double) W2[o * 4 + i] * h[i];
      EXPECT_NEAR (nn_tensor_f32 (y.get ())[n * 2 + o], acc, 1e-5);
    }
  }
}

TEST (Runtime, ErrorsNameTheModulePathAndShapes)
{
  Registry reg = default_registry ();
  Error e;
  Module m (nn_descriptor_load_data (reg.get (), kMlp, -1, "mlp", e.out ()));
  NnShape s = shape ({2, 5});
  Tensor x (nn_tensor_new (NN_DTYPE_F32, &s));
  Tensor y (nn_module_forward (m.get (), x.get (), e.out ()));
  EXPECT_FALSE (y);
  EXPECT_EQ (e.message ().rfind ("fc1: Linear: ", 0), 0u) << e.message ();
  EXPECT_NE (e.message ().find ("[2, 5]"), std::string::npos) << e.message ();
  NnShape out;
  EXPECT_FALSE (nn_module_infer_shape (m.get (), &s, &out, e.out ()));
  EXPECT_TRUE (e.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH)) << e.message ();
  EXPECT_EQ (e.message ().rfind ("fc1: Linear: ", 0), 0u) << e.message ();
  // Deeper modules get their full path, once.
  NnTensor *w2 = nn_module_lookup_tensor (m.get (), "block.fc2.weight", e.out ());
  (void) w2;
  Module bad (nn_descriptor_load_data (reg.get (), R"({"format": "nnkit", "version": 1, "model": {
    "type": "Sequential", "children": [
      {"name": "block", "type": "Sequential", "children": [
        {"name": "fc2", "type": "Linear", "config": {"in_features": 4, "out_features": 2}}]}]}})",
                                       -1, "bad", e.out ()));
  NnShape s3 = shape ({1, 3});
  EXPECT_FALSE (nn_module_infer_shape (bad.get (), &s3, &out, e.out ()));
  EXPECT_EQ (e.message ().rfind ("block.fc2: Linear: ", 0), 0u) << e.message ();
}

TEST (Runtime, ContainersWithoutForwardRefuseToRun)
{
  Registry reg = default_registry ();
  Error e;
  Module list (nn_descriptor_load_module_data (reg.get (), R"({"type": "ModuleList", "children": [
      {"name": "0", "type": "ReLU"}]})", -1, "l", e.out ()));
  ASSERT_TRUE (list) << e.message ();
  NnShape s = shape ({1, 3});
  Tensor x (nn_tensor_new (NN_DTYPE_F32, &s));
  Tensor y (nn_module_forward (list.get (), x.get (), e.out ()));
  EXPECT_FALSE (y);
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NO_FORWARD));
  EXPECT_EQ (e.message (), "ModuleList: ModuleList has no forward(): it is a container, not a "
                           "layer; call its children instead");
}

struct Seen {
  std::vector<std::string> paths;
  std::vector<std::string> outs;
  std::vector<guint> depths;
};

static void
observe (NnModule *, const char *path, guint depth, const NnShape *, const NnShape *out,
         gpointer ud)
{
  Seen *s = (Seen *) ud;
  s->paths.push_back (path);
  s->outs.push_back (shape_text (*out));
  s->depths.push_back (depth);
}

TEST (Runtime, ObserverSeesModulesInCallOrderWithShapes)
{
  Registry reg = default_registry ();
  Error e;
  Module m (nn_descriptor_load_data (reg.get (), kMlp, -1, "mlp", e.out ()));
  NnShape in = shape ({7, 3}), out;
  Seen seen;
  ASSERT_TRUE (nn_module_infer_shape_observed (m.get (), &in, &out, observe, &seen, e.out ()))
      << e.message ();
  EXPECT_EQ (seen.paths, (std::vector<std::string>{ "", "fc1", "act", "block", "block.fc2" }));
  EXPECT_EQ (seen.outs, (std::vector<std::string>{ "[7, 2]", "[7, 4]", "[7, 4]", "[7, 2]", "[7, 2]" }));
  EXPECT_EQ (seen.depths, (std::vector<guint>{ 0, 1, 1, 1, 2 }));
}

TEST (Runtime, ThreadsCanBeSet)
{
  nn_set_num_threads (1);
  EXPECT_EQ (nn_get_num_threads (), 1);
  nn_set_num_threads (0);
  EXPECT_EQ (nn_get_num_threads (), 1);
  nn_set_num_threads (2);
  EXPECT_EQ (nn_get_num_threads (), 2);
}
