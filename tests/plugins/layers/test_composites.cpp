// The composite layer types (MultiheadAttention, the Transformer layers and
// stacks) reach their children only through the core: hooks on children
// fire on every call, a child replaced by surgery is used on the next
// call, check() refuses trees without the children the forward needs, and
// a replacement that breaks shapes is refused with the model unchanged.
#include "nn-test.h"

#include <cmath>
#include <string>

using namespace nntest;

namespace {

// A TransformerEncoderLayer(d_model=4, nhead=2, dim_feedforward=6) tree,
// seq-first, as the exporter writes it; @drop removes one child.
std::string encoder_layer_json (const std::string &drop = "")
{
  const char *kids[][2] = {
    { "self_attn", R"({"name": "self_attn", "type": "MultiheadAttention",
        "config": {"embed_dim": 4, "num_heads": 2},
        "children": [{"name": "out_proj", "type": "Linear", "class": "NonDynamicallyQuantizableLinear",
                      "config": {"in_features": 4, "out_features": 4}}]})" },
    { "linear1", R"({"name": "linear1", "type": "Linear", "config": {"in_features": 4, "out_features": 6}})" },
    { "dropout", R"({"name": "dropout", "type": "Dropout", "config": {"p": 0.1}})" },
    { "linear2", R"({"name": "linear2", "type": "Linear", "config": {"in_features": 6, "out_features": 4}})" },
    { "norm1", R"({"name": "norm1", "type": "LayerNorm", "config": {"normalized_shape": [4]}})" },
    { "norm2", R"({"name": "norm2", "type": "LayerNorm", "config": {"normalized_shape": [4]}})" },
    { "dropout1", R"({"name": "dropout1", "type": "Dropout", "config": {"p": 0.1}})" },
    { "dropout2", R"({"name": "dropout2", "type": "Dropout", "config": {"p": 0.1}})" },
  };
  std::string s = R"({"type": "TransformerEncoderLayer", "config": {"d_model": 4, "nhead": 2,
                      "dim_feedforward": 6}, "children": [)";
  bool first = true;
  for (auto &k : kids) {
    if (drop == k[0])
      continue;
    s += (first ? "" : ", ") + std::string (k[1]);
    first = false;
  }
  return s + "]}";
}

Module load (NnRegistry *reg, const std::string &json, Error &err)
{
  return Module (nn_descriptor_load_module_data (reg, json.c_str (), -1, "test", err.out ()));
}

Tensor random_input (const NnShape &s, unsigned seed)
{
  Tensor t (nn_tensor_new (NN_DTYPE_F32, &s));
  guint32 x = 2166136261u ^ seed;
  for (gint64 i = 0; i < nn_tensor_numel (t.get ()); i++) {
    x = x * 1664525u + 1013904223u;
    nn_tensor_f32 (t.get ())[i] = (float) ((x >> 8) & 0xffff) / 32768.0f - 1.0f;
  }
  return t;
}

gboolean count_hook (NnModule *, const char *, const NnValue *, const NnValue *, NnValue **,
                     gpointer user_data, GError **)
{
  (*(int *) user_data)++;
  return TRUE;
}

}  // namespace

TEST (Composites, ChildHooksFireOnEveryCall)
{
  Registry reg = default_registry ();
  Error err;
  Module m = load (reg.get (), encoder_layer_json (), err);
  ASSERT_TRUE (m) << err.message ();
  nn_module_reset_parameters (m.get (), 7);
  int linear1 = 0, out_proj = 0, drop = 0;
  const struct { const char *path; int *count; } hooks[] = {
    { "linear1", &linear1 }, { "self_attn.out_proj", &out_proj }, { "dropout2", &drop },
  };
  for (auto &h : hooks) {
    NnModule *c = nn_module_lookup_path (m.get (), h.path, err.out ());
    ASSERT_TRUE (c) << err.message ();
    NnHookHandle *hh = nn_module_add_forward_hook (c, count_hook, h.count, nullptr, "t", 0,
                                                   err.out ());
    ASSERT_TRUE (hh) << err.message ();
    nn_hook_handle_free (hh);
  }
  Tensor x = random_input (shape ({ 3, 2, 4 }), 1);
  for (int i = 0; i < 2; i++) {
    Tensor y (nn_module_forward (m.get (), x.get (), err.out ()));
    ASSERT_TRUE (y) << err.message ();
    EXPECT_EQ (shape_text (y->shape), "[3, 2, 4]");
  }
  EXPECT_EQ (linear1, 2);
  EXPECT_EQ (out_proj, 2);
  EXPECT_EQ (drop, 2);
}

TEST (Composites, ReplacedChildIsUsedAndItsHookFires)
{
  Registry reg = default_registry ();
  Error err;
  Module m = load (reg.get (), encoder_layer_json (), err);
  ASSERT_TRUE (m) << err.message ();
  nn_module_reset_parameters (m.get (), 3);
  Tensor x = random_input (shape ({ 3, 2, 4 }), 2);
  Tensor before (nn_module_forward (m.get (), x.get (), err.out ()));
  ASSERT_TRUE (before) << err.message ();

  // Post-norm: the output is norm2(...), so each row has mean 0; with
  // norm2 replaced by Identity it no longer has.
  Module id = make_module (reg.get (), "Identity", "{}", err, "norm2");
  ASSERT_TRUE (id) << err.message ();
  int fired = 0;
  NnHookHandle *hh = nn_module_add_forward_hook (id.get (), count_hook, &fired, nullptr, "t", 0,
                                                 err.out ());
  ASSERT_TRUE (hh) << err.message ();
  nn_hook_handle_free (hh);
  NnShape in = shape ({ 3, 2, 4 });
  NnSurgeryOptions opts = { sizeof (NnSurgeryOptions), 0, &in };
  ASSERT_TRUE (nn_surgery_replace (m.get (), "norm2", id.get (), &opts, err.out ()))
      << err.message ();
  Tensor after (nn_module_forward (m.get (), x.get (), err.out ()));
  ASSERT_TRUE (after) << err.message ();
  EXPECT_EQ (fired, 1);
  double max_mean = 0.0;
  for (gint64 r = 0; r < 6; r++) {
    double b = 0.0, a = 0.0;
    for (gint64 j = 0; j < 4; j++) {
      b += nn_tensor_f32 (before.get ())[r * 4 + j];
      a += nn_tensor_f32 (after.get ())[r * 4 + j];
    }
    EXPECT_NEAR (b / 4, 0.0, 1e-5);
    max_mean = std::max (max_mean, std::fabs (a / 4));
  }
  EXPECT_GT (max_mean, 1e-3);
}

TEST (Composites, SurgeryThatBreaksShapesIsRefused)
{
  Registry reg = default_registry ();
  Error err;
  Module m = load (reg.get (), encoder_layer_json (), err);
  ASSERT_TRUE (m) << err.message ();
  std::string text = take (nn_module_to_string (m.get ()));
  // linear2 must map 6 features back to 4 for the residual connection.
  Module bad = make_module (reg.get (), "Linear", R"({"in_features": 6, "out_features": 5})", err,
                            "linear2");
  ASSERT_TRUE (bad) << err.message ();
  NnShape in = shape ({ 3, 2, 4 });
  NnSurgeryOptions opts = { sizeof (NnSurgeryOptions), 0, &in };
  EXPECT_FALSE (nn_surgery_replace (m.get (), "linear2", bad.get (), &opts, err.out ()));
  EXPECT_TRUE (contains (err.message (), "residual connection")) << err.message ();
  EXPECT_EQ (take (nn_module_to_string (m.get ())), text);
  // Any child type is accepted, as in PyTorch, but one that cannot take
  // the attention call fails the shape check.
  Module lin = make_module (reg.get (), "Linear", R"({"in_features": 4, "out_features": 4})", err,
                            "self_attn");
  ASSERT_TRUE (lin) << err.message ();
  EXPECT_FALSE (nn_surgery_replace (m.get (), "self_attn", lin.get (), &opts, err.out ()));
  EXPECT_TRUE (contains (err.message (), "self_attn")) << err.message ();
  EXPECT_TRUE (contains (err.message (), "refused, model unchanged")) << err.message ();
  EXPECT_EQ (take (nn_module_to_string (m.get ())), text);
}

TEST (Composites, MissingChildrenAreRefused)
{
  Registry reg = default_registry ();
  Error err;
  Module m = load (reg.get (), encoder_layer_json ("norm2"), err);
  EXPECT_FALSE (m);
  EXPECT_TRUE (contains (err.message (), "expected a child 'norm2' (a LayerNorm), found none"))
      << err.message ();
  Module mha = load (reg.get (), R"({"type": "MultiheadAttention", "config": {"embed_dim": 4, "num_heads": 2}})", err);
  EXPECT_FALSE (mha);
  EXPECT_TRUE (contains (err.message (), "expected a child 'out_proj' (a Linear(embed_dim, embed_dim)), found none"))
      << err.message ();
  std::string enc = R"({"type": "TransformerEncoder", "config": {"num_layers": 2},
      "children": [{"name": "layers", "type": "ModuleList", "children": [)" + encoder_layer_json () +
                    R"(]}]})";
  // The layer node needs a name inside the ModuleList.
  enc.replace (enc.find ("{\"type\": \"TransformerEncoderLayer\""), 1, "{\"name\": \"0\", ");
  Module stack = load (reg.get (), enc, err);
  EXPECT_FALSE (stack);
  EXPECT_TRUE (contains (err.message (), "found no 'layers.1'")) << err.message ();
}

TEST (Composites, ShapeInferenceMatchesForward)
{
  Registry reg = default_registry ();
  Error err;
  Module m = load (reg.get (), encoder_layer_json (), err);
  ASSERT_TRUE (m) << err.message ();
  NnShape out;
  ASSERT_TRUE (nn_module_infer_shape (m.get (), &(const NnShape &) shape ({ 5, 3, 4 }), &out,
                                      err.out ())) << err.message ();
  EXPECT_EQ (shape_text (out), "[5, 3, 4]");
  EXPECT_FALSE (nn_module_infer_shape (m.get (), &(const NnShape &) shape ({ 5, 3, 6 }), &out,
                                       err.out ()));
  EXPECT_TRUE (contains (err.message (), "self_attn")) << err.message ();
  EXPECT_TRUE (contains (err.message (), "was expecting embedding dimension of 4, but got 6"))
      << err.message ();
}
