// core/tied.c and the tie handling of core/state_dict.c and descriptor.c:
// a tensor shared by two modules stays one tensor through descriptor
// loading, load_state_dict (one key or both), forward, save, reload and
// surgery.  Expected values come from independent arithmetic here.
#include "nn-test.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <glib/gstdio.h>

using namespace nntest;

namespace {

// A whole descriptor (with its top-level "tied") as a tree.
Module load_desc (NnRegistry *reg, const char *text)
{
  Error err;
  Module m (nn_descriptor_load_data (reg, text, -1, "test", err.out ()));
  EXPECT_NE (m, nullptr) << err.message ();
  return m;
}

// Sequential(a = Linear(3, 3), b = Linear(3, 3)) with b.weight tied to
// a.weight, as PyTorch's `m.b.weight = m.a.weight`.
const char *kTied = R"({"format": "nnkit", "version": 2, "input_shape": [1, 3], "model": {
  "type": "Sequential", "class": "Tied", "children": [
    {"name": "a", "type": "Linear", "config": {"in_features": 3, "out_features": 3}},
    {"name": "b", "type": "Linear", "config": {"in_features": 3, "out_features": 3}}]},
  "tied": {"b.weight": "a.weight"}})";

std::vector<std::string> names (GPtrArray *a)
{
  std::vector<std::string> out;
  for (guint i = 0; i < a->len; i++)
    out.push_back (((NnNamedItem *) a->pdata[i])->name);
  return out;
}

NnTensor *tensor_at (NnModule *m, const char *key)
{
  Error err;
  NnTensor *t = nn_module_lookup_tensor (m, key, err.out ());
  EXPECT_NE (t, nullptr) << err.message ();
  return t;
}

struct Entry {
  std::string key;
  NnShape shape;
  float base;  // element j holds base + 0.1 * j
};

void write_file (const std::string &path, const std::vector<Entry> &entries)
{
  std::vector<Tensor> owned;
  std::vector<const char *> keys;
  std::vector<NnTensor *> ts;
  for (const Entry &e : entries) {
    owned.emplace_back (nn_tensor_new (NN_DTYPE_F32, &e.shape));
    NnTensor *t = owned.back ().get ();
    for (gint64 j = 0; j < nn_tensor_numel (t); j++)
      nn_tensor_f32 (t)[j] = e.base + 0.1f * (float) j;
    keys.push_back (e.key.c_str ());
    ts.push_back (t);
  }
  Error err;
  ASSERT_TRUE (nn_safetensors_write (path.c_str (), keys.data (), ts.data (),
                                     (guint) ts.size (), nullptr, err.out ()))
      << err.message ();
}

class Tied : public ::testing::Test {
 protected:
  void SetUp () override
  {
    reg = default_registry ();
    dir = g_dir_make_tmp ("nnkit-tied-XXXXXX", nullptr);
    m = load_desc (reg.get (), kTied);
    ASSERT_NE (m, nullptr);
  }
  void TearDown () override
  {
    GDir *d = g_dir_open (dir, 0, nullptr);
    for (const char *n; d && (n = g_dir_read_name (d));)
      g_unlink (path (n).c_str ());
    if (d)
      g_dir_close (d);
    g_rmdir (dir);
    g_free (dir);
  }
  std::string path (const std::string &n) { return std::string (dir) + "/" + n; }
  bool load (const std::string &p, GError **error)
  {
    Error err;
    Safetensors st (nn_safetensors_open (p.c_str (), err.out ()));
    EXPECT_NE (st, nullptr) << err.message ();
    return st && nn_module_load_state_dict (m.get (), st.get (), nullptr, nullptr, error);
  }
  Registry reg;
  Module m;
  char *dir = nullptr;
};

TEST_F (Tied, DescriptorTiesOneTensor)
{
  EXPECT_EQ (tensor_at (m.get (), "a.weight"), tensor_at (m.get (), "b.weight"));
  Array sd (nn_module_state_dict (m.get ()));
  EXPECT_EQ (names (sd.get ()), std::vector<std::string> ({ "a.weight", "a.bias", "b.weight", "b.bias" }));
  Array np (nn_module_named_parameters (m.get ()));
  EXPECT_EQ (names (np.get ()), std::vector<std::string> ({ "a.weight", "a.bias", "b.bias" }));
  Array ties (nn_module_tied_keys (m.get ()));
  ASSERT_EQ (ties->len, 2u);
  EXPECT_STREQ ((const char *) ties->pdata[0], "b.weight");
  EXPECT_STREQ ((const char *) ties->pdata[1], "a.weight");
}

TEST_F (Tied, OneKeyInFileFillsTheOther)
{
  // What safetensors' save_file of a tied model holds: one of the keys.
  std::string p = path ("one.safetensors");
  write_file (p, { { "a.weight", shape ({ 3, 3 }), 1.0f }, { "a.bias", shape ({ 3 }), 2.0f },
                   { "b.bias", shape ({ 3 }), 3.0f } });
  Error err;
  ASSERT_TRUE (load (p, err.out ())) << err.message ();
  NnTensor *w = tensor_at (m.get (), "a.weight");
  EXPECT_EQ (w, tensor_at (m.get (), "b.weight"));
  EXPECT_FLOAT_EQ (nn_tensor_f32 (w)[4], 1.4f);

  // The alias key alone fills the first key as well.
  Module other = load_desc (reg.get (), kTied);
  std::string q = path ("alias.safetensors");
  write_file (q, { { "b.weight", shape ({ 3, 3 }), 5.0f }, { "a.bias", shape ({ 3 }), 2.0f },
                   { "b.bias", shape ({ 3 }), 3.0f } });
  Safetensors st (nn_safetensors_open (q.c_str (), err.out ()));
  ASSERT_TRUE (nn_module_load_state_dict (other.get (), st.get (), nullptr, nullptr, err.out ()))
      << err.message ();
  EXPECT_EQ (tensor_at (other.get (), "a.weight"), tensor_at (other.get (), "b.weight"));
  EXPECT_FLOAT_EQ (nn_tensor_f32 (tensor_at (other.get (), "a.weight"))[0], 5.0f);
}

TEST_F (Tied, BothKeysEqualLoadAsOne)
{
  std::string p = path ("both.safetensors");
  write_file (p, { { "a.weight", shape ({ 3, 3 }), 1.0f }, { "a.bias", shape ({ 3 }), 2.0f },
                   { "b.weight", shape ({ 3, 3 }), 1.0f }, { "b.bias", shape ({ 3 }), 3.0f } });
  Error err;
  ASSERT_TRUE (load (p, err.out ())) << err.message ();
  EXPECT_EQ (tensor_at (m.get (), "a.weight"), tensor_at (m.get (), "b.weight"));
}

TEST_F (Tied, BothKeysDifferentIsALoadErrorAndChangesNothing)
{
  NnTensor *before = tensor_at (m.get (), "a.weight");
  float first = nn_tensor_f32 (before)[0];
  std::string p = path ("differ.safetensors");
  write_file (p, { { "a.weight", shape ({ 3, 3 }), 1.0f }, { "a.bias", shape ({ 3 }), 2.0f },
                   { "b.weight", shape ({ 3, 3 }), 9.0f }, { "b.bias", shape ({ 3 }), 3.0f } });
  Error err;
  EXPECT_FALSE (load (p, err.out ()));
  ASSERT_NE (err.err, nullptr);
  EXPECT_TRUE (g_error_matches (err.err, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_LOAD));
  EXPECT_TRUE (contains (err.message (), "'a.weight' and 'b.weight'")) << err.message ();
  EXPECT_EQ (tensor_at (m.get (), "a.weight"), before);
  EXPECT_EQ (tensor_at (m.get (), "b.weight"), before);
  EXPECT_EQ (nn_tensor_f32 (before)[0], first);
}

TEST_F (Tied, MissingBothIsStillMissing)
{
  std::string p = path ("none.safetensors");
  write_file (p, { { "a.bias", shape ({ 3 }), 2.0f }, { "b.bias", shape ({ 3 }), 3.0f } });
  Error err;
  EXPECT_FALSE (load (p, err.out ()));
  EXPECT_TRUE (contains (err.message (), "Missing key(s) in state_dict: \"a.weight\", \"b.weight\""))
      << err.message ();
}

TEST_F (Tied, ForwardUsesTheSharedWeight)
{
  std::string p = path ("one.safetensors");
  write_file (p, { { "a.weight", shape ({ 3, 3 }), -0.3f }, { "a.bias", shape ({ 3 }), 0.5f },
                   { "b.bias", shape ({ 3 }), -1.0f } });
  Error err;
  ASSERT_TRUE (load (p, err.out ())) << err.message ();
  // y = W (W x + ba) + bb with W[i][k] = -0.3 + 0.1 (3 i + k).
  float W[3][3], ba[3], bb[3], x[3] = { 1.0f, -2.0f, 0.25f }, h[3], y[3];
  for (int i = 0; i < 3; i++) {
    ba[i] = 0.5f + 0.1f * i;
    bb[i] = -1.0f + 0.1f * i;
    for (int k = 0; k < 3; k++)
      W[i][k] = -0.3f + 0.1f * (float) (3 * i + k);
  }
  for (int i = 0; i < 3; i++) {
    h[i] = ba[i];
    for (int k = 0; k < 3; k++)
      h[i] += W[i][k] * x[k];
  }
  for (int i = 0; i < 3; i++) {
    y[i] = bb[i];
    for (int k = 0; k < 3; k++)
      y[i] += W[i][k] * h[k];
  }
  Tensor in = tensor_f32 ({ 1, 3 }, [&] (gint64 j) { return x[j]; });
  Tensor out (nn_module_forward (m.get (), in.get (), err.out ()));
  ASSERT_NE (out, nullptr) << err.message ();
  for (int i = 0; i < 3; i++)
    EXPECT_NEAR (nn_tensor_f32 (out.get ())[i], y[i], 1e-5);
  // Writing through one name is seen through the other.
  nn_tensor_f32 (tensor_at (m.get (), "b.weight"))[0] = 42.0f;
  EXPECT_EQ (nn_tensor_f32 (tensor_at (m.get (), "a.weight"))[0], 42.0f);
}

TEST_F (Tied, SaveWritesBothKeysAndReloadKeepsTheTie)
{
  std::string p = path ("model.json");
  Error err;
  ASSERT_TRUE (nn_model_save (m.get (), p.c_str (), err.out ())) << err.message ();
  std::string wp = path ("model.safetensors");
  Safetensors st (nn_safetensors_open (wp.c_str (), err.out ()));
  ASSERT_NE (st, nullptr) << err.message ();
  EXPECT_EQ (nn_safetensors_n_tensors (st.get ()), 4u);
  char *text = nullptr;
  ASSERT_TRUE (g_file_get_contents (p.c_str (), &text, nullptr, nullptr));
  EXPECT_TRUE (contains (take (text), "\"tied\"")) << "descriptor lacks its ties";
  Module back (nn_model_load (reg.get (), p.c_str (), nullptr, FALSE, err.out ()));
  ASSERT_NE (back, nullptr) << err.message ();
  EXPECT_EQ (tensor_at (back.get (), "a.weight"), tensor_at (back.get (), "b.weight"));
  Array np (nn_module_named_parameters (back.get ()));
  EXPECT_EQ (np->len, 3u);
  NnTensor *w0 = tensor_at (m.get (), "a.weight"), *w1 = tensor_at (back.get (), "b.weight");
  EXPECT_EQ (memcmp (w0->data, w1->data, nn_tensor_nbytes (w0)), 0);

  // The single-file form too.
  std::string sp = path ("model.safetensors");
  ASSERT_TRUE (nn_model_save (m.get (), sp.c_str (), err.out ())) << err.message ();
  Module single (nn_model_load (reg.get (), sp.c_str (), nullptr, FALSE, err.out ()));
  ASSERT_NE (single, nullptr) << err.message ();
  EXPECT_EQ (tensor_at (single.get (), "a.weight"), tensor_at (single.get (), "b.weight"));
}

TEST_F (Tied, SurgeryReplacingOneUnties)
{
  NnTensor *w = tensor_at (m.get (), "a.weight");
  nn_tensor_f32 (w)[0] = 7.0f;
  Error err;
  Module fresh = make_module (reg.get (), "Linear", R"({"in_features": 3, "out_features": 3})",
                              err, "b");
  ASSERT_NE (fresh, nullptr) << err.message ();
  ASSERT_TRUE (nn_surgery_replace (m.get (), "b", fresh.get (), nullptr, err.out ()))
      << err.message ();
  EXPECT_EQ (tensor_at (m.get (), "a.weight"), w);
  EXPECT_EQ (nn_tensor_f32 (w)[0], 7.0f);
  EXPECT_NE (tensor_at (m.get (), "b.weight"), w);
  Array ties (nn_module_tied_keys (m.get ()));
  EXPECT_EQ (ties->len, 0u);
  Array np (nn_module_named_parameters (m.get ()));
  EXPECT_EQ (np->len, 4u);
}

TEST_F (Tied, SharedModuleIsNotATie)
{
  Module s = load_desc (reg.get (), R"({"format": "nnkit", "version": 2, "model": {
    "type": "Sequential", "children": [
      {"name": "a", "type": "Linear", "config": {"in_features": 2, "out_features": 2}},
      {"name": "b", "ref": "a"}]}})");
  ASSERT_NE (s, nullptr);
  Array ties (nn_module_tied_keys (s.get ()));
  EXPECT_EQ (ties->len, 0u);
}

TEST_F (Tied, BadTiesAreDescriptorErrors)
{
  struct Case { const char *tied, *expect; } cases[] = {
    { R"({"b.weight": "a.nothing"})", "has no parameter or buffer 'nothing'" },
    { R"({"c.weight": "a.weight"})", "tied key 'c.weight'" },
    { R"({"b.bias": "a.weight"})", "cannot tie 'b.bias' to 'a.weight'" },
    { R"({"b.weight": 3})", "expected the first key as a string" },
    { R"(["b.weight"])", "'tied' must be an object" },
  };
  for (const Case &c : cases) {
    std::string text = std::string (kTied);
    text = text.substr (0, text.find ("\"tied\"")) + "\"tied\": " + c.tied + "}";
    Error err;
    Module bad (nn_descriptor_load_data (reg.get (), text.c_str (), -1, "bad.json", err.out ()));
    EXPECT_EQ (bad, nullptr) << c.tied;
    ASSERT_NE (err.err, nullptr);
    EXPECT_TRUE (g_error_matches (err.err, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID));
    EXPECT_TRUE (contains (err.message (), c.expect)) << err.message ();
    EXPECT_TRUE (contains (err.message (), "bad.json")) << err.message ();
  }
}

TEST_F (Tied, ApiRefusesParameterToBuffer)
{
  Module bn = load_desc (reg.get (), R"({"format": "nnkit", "version": 2, "model": {
    "type": "Sequential", "children": [
      {"name": "n", "type": "BatchNorm2d", "config": {"num_features": 3}},
      {"name": "l", "type": "Linear", "config": {"in_features": 3, "out_features": 1}}]}})");
  ASSERT_NE (bn, nullptr);
  Error err;
  EXPECT_FALSE (nn_module_tie (bn.get (), "n.running_mean", "n.weight", err.out ()));
  EXPECT_TRUE (contains (err.message (), "both must be parameters or both buffers"))
      << err.message ();
  ASSERT_TRUE (nn_module_tie (bn.get (), "n.bias", "n.weight", nullptr));
  EXPECT_EQ (tensor_at (bn.get (), "n.bias"), tensor_at (bn.get (), "n.weight"));
}

}  // namespace
