// The misc plugin: Dropout, Identity and StochasticDepth are the identity
// in eval mode (sharing storage); Flatten's shapes for every start/end
// pair, negatives included, against a reference written here, and its
// errors; config errors; reprs as PyTorch 1.13 / torchvision 0.14 print
// them.
#include "nn-test.h"

#include <string>
#include <vector>

using namespace nntest;

namespace {

Module make (NnRegistry *reg, const char *type, const std::string &json, Error &err,
             const char *path = "m")
{
  return make_module (reg, type, json, err, path);
}

Tensor counting (const NnShape &s)
{
  Tensor t (nn_tensor_new (NN_DTYPE_F32, &s));
  for (gint64 i = 0; i < nn_tensor_numel (t.get ()); i++)
    nn_tensor_f32 (t.get ())[i] = (float) i;
  return t;
}

}  // namespace

TEST (Misc, EvalIdentitiesReturnTheInputUnchanged)
{
  Registry reg = default_registry ();
  struct { const char *type, *cfg; } cases[] = {
    { "Dropout", "{}" }, { "Dropout", "{\"p\": 0.9, \"inplace\": true}" }, { "Identity", "{}" },
    { "StochasticDepth", "{\"p\": 0.2, \"mode\": \"row\"}" }, { "StochasticDepth", "{\"p\": 1.0, \"mode\": \"batch\"}" },
  };
  for (auto &c : cases) {
    Error err;
    Module m = make (reg.get (), c.type, c.cfg, err);
    ASSERT_TRUE (m) << c.cfg << ": " << err.message ();
    NnShape s = shape ({ 2, 3, 4, 5 });
    Tensor x = counting (s);
    NnShape inferred;
    ASSERT_TRUE (nn_module_infer_shape (m.get (), &s, &inferred, err.out ())) << err.message ();
    EXPECT_TRUE (nn_shape_equal (&inferred, &s));
    Tensor y (nn_module_forward (m.get (), x.get (), err.out ()));
    ASSERT_TRUE (y) << err.message ();
    EXPECT_TRUE (nn_shape_equal (&y->shape, &s));
    EXPECT_EQ (y->data, x->data) << c.type << ": shares the input's storage";
    EXPECT_EQ (nn_module_n_parameters (m.get ()) + nn_module_n_buffers (m.get ()), 0u);
  }
}

TEST (Flatten, EveryStartEndPairMatchesReference)
{
  Registry reg = default_registry ();
  const std::vector<gint64> dims = { 2, 3, 4, 5 };
  int checked = 0;
  for (int start = -4; start < 4; start++)
    for (int end = -4; end < 4; end++) {
      int s = start < 0 ? start + 4 : start, e = end < 0 ? end + 4 : end;
      Error err;
      Module m = make (reg.get (), "Flatten", "{\"start_dim\": " + std::to_string (start) +
                                                  ", \"end_dim\": " + std::to_string (end) + "}", err);
      ASSERT_TRUE (m) << err.message ();
      NnShape in = shape ({ 2, 3, 4, 5 }), out;
      gboolean ok = nn_module_infer_shape (m.get (), &in, &out, err.out ());
      if (s > e) {
        EXPECT_FALSE (ok) << start << "," << end;
        EXPECT_TRUE (err.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH));
        EXPECT_TRUE (contains (err.message (), "Flatten: start_dim " + std::to_string (s) +
                                               " comes after end_dim " + std::to_string (e) +
                                               " for input [2, 3, 4, 5]")) << err.message ();
        continue;
      }
      ASSERT_TRUE (ok) << err.message ();
      std::vector<gint64> want (dims.begin (), dims.begin () + s);
      gint64 merged = 1;
      for (int i = s; i <= e; i++)
        merged *= dims[i];
      want.push_back (merged);
      want.insert (want.end (), dims.begin () + e + 1, dims.end ());
      ASSERT_EQ (out.ndim, want.size ());
      for (guint i = 0; i < out.ndim; i++)
        EXPECT_EQ (out.dims[i], want[i]) << start << "," << end;

      Tensor x = counting (in);
      Tensor y (nn_module_forward (m.get (), x.get (), err.out ()));
      ASSERT_TRUE (y) << err.message ();
      EXPECT_TRUE (nn_shape_equal (&y->shape, &out));
      EXPECT_EQ (y->data, x->data) << "a view sharing storage";
      checked++;
    }
  EXPECT_EQ (checked, 40);  // 10 ordered pairs of dims, each spelt 4 ways
}

TEST (Flatten, DefaultsAndScalarInput)
{
  Registry reg = default_registry ();
  Error err;
  Module m = make (reg.get (), "Flatten", "{}", err);
  ASSERT_TRUE (m) << err.message ();
  NnShape in = shape ({ 8, 512, 1, 1 }), out;
  ASSERT_TRUE (nn_module_infer_shape (m.get (), &in, &out, err.out ())) << err.message ();
  EXPECT_EQ (take (nn_shape_to_string (&out)), "[8, 512]");

  // torch.flatten(tensor(3.), 0, -1) is tensor([3.]).
  Module all = make (reg.get (), "Flatten", "{\"start_dim\": 0}", err);
  ASSERT_TRUE (all) << err.message ();
  NnShape scalar = {};
  ASSERT_TRUE (nn_module_infer_shape (all.get (), &scalar, &out, err.out ())) << err.message ();
  EXPECT_EQ (take (nn_shape_to_string (&out)), "[1]");
  Tensor x (nn_tensor_new (NN_DTYPE_F32, &scalar));
  Tensor y (nn_module_forward (all.get (), x.get (), err.out ()));
  ASSERT_TRUE (y) << err.message ();
  EXPECT_EQ (take (nn_shape_to_string (&y->shape)), "[1]");
}

TEST (Flatten, OutOfRangeDimsNamePathKeyAndShape)
{
  Registry reg = default_registry ();
  Error err;
  struct { const char *cfg; NnShape in; const char *want; } cases[] = {
    { "{\"start_dim\": 4}", shape ({ 2, 3, 4 }),
      "flat: Flatten: start_dim 4 is out of range for input [2, 3, 4] (expected a dim in [-3, 2])" },
    { "{\"end_dim\": -3}", shape ({ 2, 3 }),
      "flat: Flatten: end_dim -3 is out of range for input [2, 3] (expected a dim in [-2, 1])" },
    { "{}", shape ({ 5 }), "flat: Flatten: start_dim 1 is out of range for input [5]" },
  };
  for (auto &c : cases) {
    Module m = make (reg.get (), "Flatten", c.cfg, err);
    ASSERT_TRUE (m) << err.message ();
    Module seq (nn_module_new_from_type (reg.get (), "Sequential", nullptr, "", err.out ()));
    ASSERT_TRUE (seq) << err.message ();
    ASSERT_TRUE (nn_module_add_child (seq.get (), "flat", m.get (), err.out ())) << err.message ();
    NnShape out;
    EXPECT_FALSE (nn_module_infer_shape (seq.get (), &c.in, &out, err.out ()));
    EXPECT_TRUE (err.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH));
    EXPECT_TRUE (contains (err.message (), c.want)) << err.message ();
    Tensor x (nn_tensor_new (NN_DTYPE_F32, &c.in));
    Tensor y (nn_module_forward (seq.get (), x.get (), err.out ()));
    EXPECT_FALSE (y);
    EXPECT_TRUE (contains (err.message (), c.want)) << err.message ();
  }
}

TEST (Misc, ReprsAsPyTorchPrintsThem)
{
  // print(module) from PyTorch 1.13 and torchvision 0.14.
  struct { const char *type, *cfg, *want; } cases[] = {
    { "Dropout", "{}", "Dropout(p=0.5, inplace=False)" },
    { "Dropout", "{\"p\": 0.2, \"inplace\": true}", "Dropout(p=0.2, inplace=True)" },
    { "Flatten", "{}", "Flatten(start_dim=1, end_dim=-1)" },
    { "Flatten", "{\"start_dim\": 0, \"end_dim\": 2}", "Flatten(start_dim=0, end_dim=2)" },
    { "Identity", "{}", "Identity()" },
    { "StochasticDepth", "{\"p\": 0.2, \"mode\": \"row\"}", "StochasticDepth(p=0.2, mode=row)" },
    { "StochasticDepth", "{\"p\": 0.0125, \"mode\": \"batch\"}", "StochasticDepth(p=0.0125, mode=batch)" },
  };
  Registry reg = default_registry ();
  for (auto &c : cases) {
    Error err;
    Module m = make (reg.get (), c.type, c.cfg, err);
    ASSERT_TRUE (m) << c.cfg << ": " << err.message ();
    EXPECT_EQ (take (nn_module_to_string (m.get ())), c.want);
  }
}

TEST (Misc, ConfigErrors)
{
  struct { const char *type, *cfg, *want; int code; } cases[] = {
    { "Dropout", "{\"p\": 1.5}", "m: Dropout: key 'p' must be between 0", NN_DESCRIPTOR_ERROR_OUT_OF_RANGE },
    { "Dropout", "{\"p\": -0.1}", "key 'p' must be between 0", NN_DESCRIPTOR_ERROR_OUT_OF_RANGE },
    { "Flatten", "{\"start_dim\": \"1\"}", "key 'start_dim' expects an int", NN_DESCRIPTOR_ERROR_WRONG_KIND },
    { "Flatten", "{\"strat_dim\": 1}", "unknown key 'strat_dim' (did you mean 'start_dim'?)",
      NN_DESCRIPTOR_ERROR_UNKNOWN_KEY },
    { "Identity", "{\"in_features\": 3}", "unknown key 'in_features' (Identity takes no config keys)",
      NN_DESCRIPTOR_ERROR_UNKNOWN_KEY },
    { "StochasticDepth", "{\"mode\": \"row\"}", "missing required key 'p'", NN_DESCRIPTOR_ERROR_MISSING_KEY },
    { "StochasticDepth", "{\"p\": 0.1}", "missing required key 'mode'", NN_DESCRIPTOR_ERROR_MISSING_KEY },
    { "StochasticDepth", "{\"p\": 0.1, \"mode\": \"col\"}", "key 'mode' expects one of 'row', 'batch'",
      NN_DESCRIPTOR_ERROR_WRONG_KIND },
  };
  Registry reg = default_registry ();
  for (auto &c : cases) {
    Error err;
    Module m = make (reg.get (), c.type, c.cfg, err);
    EXPECT_FALSE (m) << c.cfg;
    EXPECT_TRUE (err.matches (NN_DESCRIPTOR_ERROR, c.code)) << c.cfg << ": " << err.message ();
    EXPECT_TRUE (contains (err.message (), c.want)) << c.cfg << ": " << err.message ();
  }
}
