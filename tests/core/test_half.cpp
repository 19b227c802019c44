// NN_LOAD_KEEP_DTYPE (core/state_dict.c) with NN_LAYER_HALF_WEIGHTS types:
// BF16/F16 file tensors stay as stored in Linear and BatchNorm2d, others
// and the default load convert to F32, and forward matches the converted
// model exactly (the per-call conversion is the same rounding).
#include "nn-test.h"

#include <cstring>
#include <string>
#include <vector>

#include <glib/gstdio.h>

using namespace nntest;

namespace {

const char *kNet = R"({"format": "nnkit", "version": 2, "model": {
  "type": "Sequential", "children": [
    {"name": "emb", "type": "Embedding", "config": {"num_embeddings": 4, "embedding_dim": 3}},
    {"name": "fc", "type": "Linear", "config": {"in_features": 3, "out_features": 2}}]}})";

Module load_desc (NnRegistry *reg)
{
  Error err;
  Module m (nn_descriptor_load_data (reg, kNet, -1, "test", err.out ()));
  EXPECT_NE (m, nullptr) << err.message ();
  return m;
}

// Writes every state_dict tensor of @m as @dtype with distinct values.
void write_half (NnModule *m, const std::string &path, NnDType dtype)
{
  Array sd (nn_module_state_dict (m));
  std::vector<Tensor> owned;
  std::vector<const char *> names;
  std::vector<NnTensor *> ts;
  for (guint i = 0; i < sd->len; i++) {
    NnNamedItem *it = (NnNamedItem *) sd->pdata[i];
    Tensor f (nn_tensor_new (NN_DTYPE_F32, &it->tensor->shape));
    for (gint64 j = 0; j < nn_tensor_numel (f.get ()); j++)
      nn_tensor_f32 (f.get ())[j] = 0.3f * (float) (i + 1) - 0.137f * (float) j;
    owned.emplace_back (nn_tensor_to_dtype (f.get (), dtype));
    names.push_back (it->name);
    ts.push_back (owned.back ().get ());
  }
  Error err;
  ASSERT_TRUE (nn_safetensors_write (path.c_str (), names.data (), ts.data (),
                                     (guint) ts.size (), nullptr, err.out ()))
      << err.message ();
}

void load (NnModule *m, const std::string &path, guint flags)
{
  Error err;
  Safetensors st (nn_safetensors_open (path.c_str (), err.out ()));
  ASSERT_NE (st, nullptr) << err.message ();
  NnLoadOptions o = { sizeof o, flags, nullptr, nullptr };
  ASSERT_TRUE (nn_module_load_state_dict (m, st.get (), &o, nullptr, err.out ()))
      << err.message ();
}

NnDType dtype_of (NnModule *m, const char *key)
{
  return nn_module_lookup_tensor (m, key, nullptr)->dtype;
}

class Half : public ::testing::TestWithParam<NnDType> {};

TEST_P (Half, KeepDtypeKeepsOnlyInFlaggedTypes)
{
  // oneDNN's Linear reads F32 itself and converts at load: the native one.
  g_setenv ("NN_PROVIDERS", "-dnnl", TRUE);
  Registry reg = default_registry ();
  char *dir = g_dir_make_tmp ("nnkit-half-XXXXXX", nullptr);
  std::string path = std::string (dir) + "/w.safetensors";
  Module kept = load_desc (reg.get ()), conv = load_desc (reg.get ());
  write_half (kept.get (), path, GetParam ());
  load (kept.get (), path, NN_LOAD_KEEP_DTYPE);
  load (conv.get (), path, 0);
  EXPECT_EQ (dtype_of (kept.get (), "fc.weight"), GetParam ());
  EXPECT_EQ (dtype_of (kept.get (), "fc.bias"), GetParam ());
  EXPECT_EQ (dtype_of (kept.get (), "emb.weight"), NN_DTYPE_F32);  // not flagged
  EXPECT_EQ (dtype_of (conv.get (), "fc.weight"), NN_DTYPE_F32);

  Tensor idx (nn_tensor_new (NN_DTYPE_I64, &(const NnShape &) shape ({ 1, 3 })));
  for (int j = 0; j < 3; j++)
    ((gint64 *) idx->data)[j] = (j * 3) % 4;
  Error err;
  Tensor a (nn_module_forward (kept.get (), idx.get (), err.out ()));
  ASSERT_NE (a, nullptr) << err.message ();
  Tensor b (nn_module_forward (conv.get (), idx.get (), err.out ()));
  ASSERT_NE (b, nullptr) << err.message ();
  ASSERT_EQ (nn_tensor_numel (a.get ()), nn_tensor_numel (b.get ()));
  EXPECT_EQ (memcmp (a->data, b->data, nn_tensor_nbytes (a.get ())), 0);

  // A later default load gives the declared F32 back.
  load (kept.get (), path, 0);
  EXPECT_EQ (dtype_of (kept.get (), "fc.weight"), NN_DTYPE_F32);
  g_unlink (path.c_str ());
  g_rmdir (dir);
  g_free (dir);
}

INSTANTIATE_TEST_SUITE_P (HalfDtypes, Half, ::testing::Values (NN_DTYPE_BF16, NN_DTYPE_F16));

}  // namespace
