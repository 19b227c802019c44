// core/state_dict.c: load_state_dict's classification, PyTorch's error
// text (checked against PyTorch itself when python3-torch is present),
// strict and non-strict modes, prefixes, dtype conversion, atomicity of a
// refused load, and state_dict saving.  Models come from descriptors over
// the build tree's Conv2d, BatchNorm2d, Linear and Sequential plugins.
#include "nn-test.h"

#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <glib/gstdio.h>

using namespace nntest;

#define EXPECT_HAS(haystack, needle)                                        \
  do {                                                                      \
    std::string h_ = (haystack), n_ = (needle);                             \
    EXPECT_NE (h_.find (n_), std::string::npos)                             \
        << "expected \"" << n_ << "\" in: " << h_;                          \
  } while (0)

namespace {

// Net = Sequential(conv, bn, head=Sequential(fc)), class name "Net".
const char *kNet = R"({"format": "nnkit", "version": 1, "model": {
  "type": "Sequential", "class": "Net", "children": [
    {"name": "conv", "type": "Conv2d",
     "config": {"in_channels": 3, "out_channels": 4, "kernel_size": 3}},
    {"name": "bn", "type": "BatchNorm2d", "config": {"num_features": 4}},
    {"name": "head", "type": "Sequential", "children": [
      {"name": "fc", "type": "Linear", "config": {"in_features": 4, "out_features": 2}}]}]}})";

const std::vector<std::string> kNetKeys = {
  "conv.weight", "conv.bias", "bn.weight", "bn.bias", "bn.running_mean",
  "bn.running_var", "bn.num_batches_tracked", "head.fc.weight", "head.fc.bias",
};

// The same in PyTorch, for the reference checks.
const char *kTorchNet = R"(
import sys, json, struct
from collections import OrderedDict
import torch, torch.nn as nn
class Net(nn.Sequential):
    pass
def make():
    return Net(OrderedDict(conv=nn.Conv2d(3, 4, 3), bn=nn.BatchNorm2d(4),
                           head=nn.Sequential(OrderedDict(fc=nn.Linear(4, 2)))))
)";

NnTensor *make_tensor (NnDType dtype, NnShape s)
{
  return nn_tensor_new (dtype, &s);
}

class TmpDir {
 public:
  TmpDir () { dir_ = g_dir_make_tmp ("nnkit-sd-XXXXXX", nullptr); }
  ~TmpDir ()
  {
    GDir *d = g_dir_open (dir_, 0, nullptr);
    for (const char *n; d && (n = g_dir_read_name (d));)
      g_unlink (path (n).c_str ());
    if (d)
      g_dir_close (d);
    g_rmdir (dir_);
    g_free (dir_);
  }
  std::string path (const std::string &name) const { return std::string (dir_) + "/" + name; }

 private:
  char *dir_;
};

Module load_desc (NnRegistry *reg, const char *text)
{
  Error err;
  Module m (nn_descriptor_load_data (reg, text, -1, "test", err.out ()));
  EXPECT_NE (m, nullptr) << err.message ();
  return m;
}

// Fills every state_dict tensor with values distinct per key and @salt.
void fill (NnModule *m, float salt)
{
  Array sd (nn_module_state_dict (m));
  for (guint i = 0; i < sd->len; i++) {
    NnNamedItem *it = (NnNamedItem *) sd->pdata[i];
    NnTensor *t = it->tensor;
    ASSERT_FALSE (nn_tensor_is_read_only (t)) << it->name;
    for (gint64 j = 0; j < nn_tensor_numel (t); j++) {
      if (t->dtype == NN_DTYPE_I64)
        ((gint64 *) t->data)[j] = (gint64) (salt * 100) + i;
      else
        ((float *) t->data)[j] = salt + 0.01f * (float) i + 0.001f * (float) j;
    }
  }
}

// Tensor identity and bytes of every state_dict entry.
struct Snapshot {
  std::vector<std::pair<std::string, std::pair<NnTensor *, std::string>>> items;
  explicit Snapshot (NnModule *m)
  {
    Array sd (nn_module_state_dict (m));
    for (guint i = 0; i < sd->len; i++) {
      NnNamedItem *it = (NnNamedItem *) sd->pdata[i];
      items.push_back ({ it->name, { it->tensor,
          std::string ((const char *) it->tensor->data, nn_tensor_nbytes (it->tensor)) } });
    }
  }
  bool operator== (const Snapshot &o) const { return items == o.items; }
};

std::vector<std::string> keys_of (NnModule *m)
{
  Array sd (nn_module_state_dict (m));
  std::vector<std::string> out;
  for (guint i = 0; i < sd->len; i++)
    out.push_back (((NnNamedItem *) sd->pdata[i])->name);
  return out;
}

std::vector<std::string> strs (GPtrArray *a)
{
  std::vector<std::string> out;
  for (guint i = 0; i < a->len; i++)
    out.push_back ((const char *) a->pdata[i]);
  return out;
}

struct Entry {
  std::string key;
  NnShape shape;
  NnDType dtype;
  float value;
};

// Writes a checkpoint of @entries (each filled with its value) in order.
void write_checkpoint (const std::string &path, const std::vector<Entry> &entries)
{
  std::vector<Tensor> owned;
  std::vector<const char *> names;
  std::vector<NnTensor *> ts;
  for (const Entry &e : entries) {
    owned.emplace_back (make_tensor (e.dtype, e.shape));
    NnTensor *t = owned.back ().get ();
    for (gint64 j = 0; j < nn_tensor_numel (t); j++) {
      if (e.dtype == NN_DTYPE_I64)
        ((gint64 *) t->data)[j] = (gint64) e.value;
      else
        ((float *) t->data)[j] = e.value;
    }
    names.push_back (e.key.c_str ());
    ts.push_back (t);
  }
  Error err;
  ASSERT_TRUE (nn_safetensors_write (path.c_str (), names.data (), ts.data (),
                                     (guint) ts.size (), nullptr, err.out ()))
      << err.message ();
}

// The model's own entries, renamed by @rename, each with value @v.
std::vector<Entry> entries_like (NnModule *m, float v,
                                 std::string (*rename) (const std::string &) = nullptr)
{
  Array sd (nn_module_state_dict (m));
  std::vector<Entry> out;
  for (guint i = 0; i < sd->len; i++) {
    NnNamedItem *it = (NnNamedItem *) sd->pdata[i];
    std::string k = rename ? rename (it->name) : it->name;
    out.push_back ({ k, it->tensor->shape, it->tensor->dtype, v });
  }
  return out;
}

Safetensors open_st (const std::string &path)
{
  Error err;
  Safetensors st (nn_safetensors_open (path.c_str (), err.out ()));
  EXPECT_NE (st, nullptr) << err.message ();
  return st;
}

float first_f32 (NnModule *m, const char *key)
{
  Error err;
  NnTensor *t = nn_module_lookup_tensor (m, key, err.out ());
  EXPECT_NE (t, nullptr) << err.message ();
  return t ? nn_tensor_f32 (t)[0] : NAN;
}

class StateDict : public ::testing::Test {
 protected:
  void SetUp () override
  {
    reg = default_registry ();
    net = load_desc (reg.get (), kNet);
    ASSERT_NE (net, nullptr);
    fill (net.get (), 1.0f);
  }
  Registry reg;
  Module net;
  TmpDir tmp;
};

TEST_F (StateDict, RoundTripStrict)
{
  std::string p = tmp.path ("net.safetensors");
  Error err;
  ASSERT_TRUE (nn_module_save_state_dict (net.get (), p.c_str (), nullptr, err.out ()))
      << err.message ();
  Module other = load_desc (reg.get (), kNet);
  fill (other.get (), 7.0f);
  Safetensors st = open_st (p);
  NnLoadReport *rep = nullptr;
  ASSERT_TRUE (nn_module_load_state_dict (other.get (), st.get (), nullptr, &rep, err.out ()))
      << err.message ();
  ASSERT_NE (rep, nullptr);
  EXPECT_TRUE (nn_load_report_is_clean (rep));
  EXPECT_EQ (take (nn_load_report_to_string (rep)), "");
  EXPECT_EQ (strs (rep->loaded), kNetKeys);
  EXPECT_STREQ (rep->model_class, "Net");
  nn_load_report_free (rep);

  Snapshot a (net.get ()), b (other.get ());
  ASSERT_EQ (a.items.size (), b.items.size ());
  for (size_t i = 0; i < a.items.size (); i++) {
    EXPECT_EQ (a.items[i].first, b.items[i].first);
    EXPECT_EQ (a.items[i].second.second, b.items[i].second.second) << a.items[i].first;
  }
  // F32 weights come straight from the mapping; the I64 counter is copied.
  Error e2;
  EXPECT_TRUE (nn_tensor_is_read_only (nn_module_lookup_tensor (other.get (), "conv.weight", e2.out ())));
  NnTensor *nbt = nn_module_lookup_tensor (other.get (), "bn.num_batches_tracked", e2.out ());
  EXPECT_EQ (nbt->dtype, NN_DTYPE_I64);
  EXPECT_EQ (*(gint64 *) nbt->data, 106);
}

TEST_F (StateDict, SaveWritesPyTorchKeysAndDtypes)
{
  std::string p = tmp.path ("net.safetensors");
  GHashTable *md = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (md, (gpointer) "format", (gpointer) "pt");
  Error err;
  ASSERT_TRUE (nn_module_save_state_dict (net.get (), p.c_str (), md, err.out ())) << err.message ();
  g_hash_table_unref (md);
  Safetensors st = open_st (p);
  ASSERT_EQ (nn_safetensors_n_tensors (st.get ()), kNetKeys.size ());
  EXPECT_STREQ (nn_safetensors_get_metadata (st.get (), "format"), "pt");
  for (guint i = 0; i < kNetKeys.size (); i++) {
    EXPECT_EQ (nn_safetensors_name_at (st.get (), i), kNetKeys[i]);
    NnShape s;
    const char *dt = nn_safetensors_get_info (st.get (), kNetKeys[i].c_str (), &s);
    if (kNetKeys[i] == "bn.num_batches_tracked") {
      EXPECT_STREQ (dt, "I64");
      EXPECT_EQ (s.ndim, 0u);
    } else {
      EXPECT_STREQ (dt, "F32") << kNetKeys[i];
    }
  }
  NnShape s;
  nn_safetensors_get_info (st.get (), "conv.weight", &s);
  EXPECT_EQ (take (nn_shape_to_string (&s)), "[4, 3, 3, 3]");
}

TEST_F (StateDict, StrictFailureChangesNothing)
{
  std::string p = tmp.path ("ck.safetensors");
  std::vector<Entry> es = entries_like (net.get (), 5.0f);
  es.erase (es.begin () + 5);  // bn.running_var
  write_checkpoint (p, es);
  Safetensors st = open_st (p);
  Snapshot before (net.get ());
  NnLoadReport *rep = nullptr;
  Error err;
  EXPECT_FALSE (nn_module_load_state_dict (net.get (), st.get (), nullptr, &rep, err.out ()));
  EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_LOAD));
  EXPECT_EQ (err.message (), "Error(s) in loading state_dict for Net:\n\t"
                             "Missing key(s) in state_dict: \"bn.running_var\". ");
  ASSERT_NE (rep, nullptr);
  EXPECT_EQ (take (nn_load_report_to_string (rep)), err.message ());
  EXPECT_EQ (strs (rep->missing), std::vector<std::string> ({ "bn.running_var" }));
  EXPECT_TRUE (strs (rep->loaded).empty ());
  nn_load_report_free (rep);
  EXPECT_TRUE (Snapshot (net.get ()) == before);
}

TEST_F (StateDict, NonStrictLoadsWhatMatches)
{
  std::string p = tmp.path ("ck.safetensors");
  std::vector<Entry> es = entries_like (net.get (), 5.0f);
  es.erase (es.begin () + 1);  // conv.bias
  es.push_back ({ "head.fc.extra", shape ({ 2 }), NN_DTYPE_F32, 9.0f });
  write_checkpoint (p, es);
  Safetensors st = open_st (p);
  NnLoadOptions opts = { sizeof opts, NN_LOAD_NON_STRICT, nullptr, nullptr };
  NnLoadReport *rep = nullptr;
  Error err;
  ASSERT_TRUE (nn_module_load_state_dict (net.get (), st.get (), &opts, &rep, err.out ()))
      << err.message ();
  EXPECT_FALSE (nn_load_report_is_clean (rep));
  EXPECT_EQ (strs (rep->missing), std::vector<std::string> ({ "conv.bias" }));
  EXPECT_EQ (strs (rep->unexpected), std::vector<std::string> ({ "head.fc.extra" }));
  EXPECT_EQ (rep->loaded->len, kNetKeys.size () - 1);
  EXPECT_EQ (take (nn_load_report_to_string (rep)),
             "Error(s) in loading state_dict for Net:\n\t"
             "Missing key(s) in state_dict: \"conv.bias\". \n\t"
             "Unexpected key(s) in state_dict: \"head.fc.extra\". ");
  nn_load_report_free (rep);
  EXPECT_EQ (first_f32 (net.get (), "conv.weight"), 5.0f);
  EXPECT_EQ (first_f32 (net.get (), "head.fc.bias"), 5.0f);
  EXPECT_EQ (first_f32 (net.get (), "conv.bias"), 1.01f);  // untouched
}

TEST_F (StateDict, SizeMismatchFailsEvenNonStrict)
{
  std::string p = tmp.path ("ck.safetensors");
  std::vector<Entry> es = entries_like (net.get (), 5.0f);
  es[7].shape = shape ({ 10, 4 });  // head.fc.weight
  es[6].shape = shape ({ 2, 1 });   // bn.num_batches_tracked
  write_checkpoint (p, es);
  Safetensors st = open_st (p);
  Snapshot before (net.get ());
  for (guint flags : { 0u, (guint) NN_LOAD_NON_STRICT }) {
    NnLoadOptions opts = { sizeof opts, flags, nullptr, nullptr };
    NnLoadReport *rep = nullptr;
    Error err;
    EXPECT_FALSE (nn_module_load_state_dict (net.get (), st.get (), &opts, &rep, err.out ()));
    EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_LOAD));
    EXPECT_EQ (err.message (),
               "Error(s) in loading state_dict for Net:\n\t"
               "size mismatch for bn.num_batches_tracked: copying a param with shape "
               "torch.Size([2, 1]) from checkpoint, the shape in current model is torch.Size([]).\n\t"
               "size mismatch for head.fc.weight: copying a param with shape "
               "torch.Size([10, 4]) from checkpoint, the shape in current model is torch.Size([2, 4]).");
    ASSERT_EQ (rep->mismatched->len, 2u);
    auto *sm = (NnSizeMismatch *) rep->mismatched->pdata[1];
    EXPECT_STREQ (sm->key, "head.fc.weight");
    EXPECT_EQ (take (nn_shape_to_string (&sm->file_shape)), "[10, 4]");
    EXPECT_EQ (take (nn_shape_to_string (&sm->model_shape)), "[2, 4]");
    nn_load_report_free (rep);
    EXPECT_TRUE (Snapshot (net.get ()) == before);
  }
}

std::string add_module_prefix (const std::string &k) { return "module." + k; }

TEST_F (StateDict, DataParallelPrefixStrip)
{
  std::string p = tmp.path ("dp.safetensors");
  write_checkpoint (p, entries_like (net.get (), 3.0f, add_module_prefix));
  Safetensors st = open_st (p);
  Snapshot before (net.get ());
  NnLoadReport *rep = nullptr;
  Error err;
  // Without the option everything is both missing and unexpected.
  EXPECT_FALSE (nn_module_load_state_dict (net.get (), st.get (), nullptr, &rep, err.out ()));
  EXPECT_EQ (rep->missing->len, kNetKeys.size ());
  EXPECT_EQ (rep->unexpected->len, kNetKeys.size ());
  EXPECT_HAS (err.message (), "Unexpected key(s) in state_dict: \"module.conv.weight\", ");
  nn_load_report_free (rep);
  EXPECT_TRUE (Snapshot (net.get ()) == before);

  NnLoadOptions opts = { sizeof opts, 0, "module.", nullptr };
  ASSERT_TRUE (nn_module_load_state_dict (net.get (), st.get (), &opts, &rep, err.out ()))
      << err.message ();
  EXPECT_TRUE (nn_load_report_is_clean (rep));
  EXPECT_EQ (strs (rep->loaded), kNetKeys);
  nn_load_report_free (rep);
  EXPECT_EQ (first_f32 (net.get (), "head.fc.weight"), 3.0f);
}

TEST_F (StateDict, StripOnlyWherePresentAndAdd)
{
  // A head saved on its own ("fc.*", one key with a stray "module.")
  // loads into head.fc with add_prefix "head.".
  std::string p = tmp.path ("head.safetensors");
  write_checkpoint (p, { { "module.fc.weight", shape ({ 2, 4 }), NN_DTYPE_F32, 4.0f },
                         { "fc.bias", shape ({ 2 }), NN_DTYPE_F32, 4.5f } });
  Safetensors st = open_st (p);
  NnLoadOptions opts = { sizeof opts, NN_LOAD_NON_STRICT, "module.", "head." };
  NnLoadReport *rep = nullptr;
  Error err;
  ASSERT_TRUE (nn_module_load_state_dict (net.get (), st.get (), &opts, &rep, err.out ()))
      << err.message ();
  EXPECT_EQ (strs (rep->loaded), std::vector<std::string> ({ "head.fc.weight", "head.fc.bias" }));
  EXPECT_TRUE (strs (rep->unexpected).empty ());
  EXPECT_EQ (rep->missing->len, kNetKeys.size () - 2);
  nn_load_report_free (rep);
  EXPECT_EQ (first_f32 (net.get (), "head.fc.weight"), 4.0f);
  EXPECT_EQ (first_f32 (net.get (), "head.fc.bias"), 4.5f);
}

TEST_F (StateDict, TwoFileKeysOnOneModelKeyIsAnError)
{
  std::string p = tmp.path ("amb.safetensors");
  write_checkpoint (p, { { "module.conv.bias", shape ({ 4 }), NN_DTYPE_F32, 1.0f },
                         { "conv.bias", shape ({ 4 }), NN_DTYPE_F32, 2.0f } });
  Safetensors st = open_st (p);
  Snapshot before (net.get ());
  NnLoadOptions opts = { sizeof opts, NN_LOAD_NON_STRICT, "module.", nullptr };
  Error err;
  EXPECT_FALSE (nn_module_load_state_dict (net.get (), st.get (), &opts, nullptr, err.out ()));
  EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_LOAD));
  EXPECT_HAS (err.message (), "'module.conv.bias' and 'conv.bias' both become 'conv.bias'");
  EXPECT_TRUE (Snapshot (net.get ()) == before);
}

TEST_F (StateDict, DtypeConversionPerModelTensor)
{
  // I64 into a float parameter converts; a float counter is refused.
  std::string p = tmp.path ("dt.safetensors");
  std::vector<Entry> es = entries_like (net.get (), 2.0f);
  es[1].dtype = NN_DTYPE_I64;  // conv.bias
  write_checkpoint (p, es);
  {
    Safetensors st = open_st (p);
    Error err;
    ASSERT_TRUE (nn_module_load_state_dict (net.get (), st.get (), nullptr, nullptr, err.out ()))
        << err.message ();
    NnTensor *b = nn_module_lookup_tensor (net.get (), "conv.bias", err.out ());
    EXPECT_EQ (b->dtype, NN_DTYPE_F32);
    EXPECT_EQ (nn_tensor_f32 (b)[3], 2.0f);
  }
  net = load_desc (reg.get (), kNet);  // its weights are read-only now
  fill (net.get (), 1.0f);
  es[1].dtype = NN_DTYPE_F32;
  es[6].dtype = NN_DTYPE_F32;  // bn.num_batches_tracked
  write_checkpoint (p, es);
  Safetensors st = open_st (p);
  Snapshot before (net.get ());
  Error err;
  EXPECT_FALSE (nn_module_load_state_dict (net.get (), st.get (), nullptr, nullptr, err.out ()));
  EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_DTYPE)) << err.message ();
  EXPECT_HAS (err.message (), "bn.num_batches_tracked");
  EXPECT_HAS (err.message (), p);
  EXPECT_HAS (err.message (), "is F32, but an I64 tensor is expected");
  EXPECT_TRUE (Snapshot (net.get ()) == before);
}

TEST_F (StateDict, LegacyOneElementIntoScalar)
{
  // PyTorch loads a 1-D checkpoint value into a 0-D tensor (old
  // num_batches_tracked files).
  std::string p = tmp.path ("old.safetensors");
  std::vector<Entry> es = entries_like (net.get (), 2.0f);
  es[6].shape = shape ({ 1 });
  es[6].value = 42;
  write_checkpoint (p, es);
  Safetensors st = open_st (p);
  Error err;
  ASSERT_TRUE (nn_module_load_state_dict (net.get (), st.get (), nullptr, nullptr, err.out ()))
      << err.message ();
  NnTensor *t = nn_module_lookup_tensor (net.get (), "bn.num_batches_tracked", err.out ());
  EXPECT_EQ (t->shape.ndim, 0u);
  EXPECT_EQ (*(gint64 *) t->data, 42);
}

TEST_F (StateDict, SharedModuleHasEveryPath)
{
  const char *shared = R"({"format": "nnkit", "version": 1, "model": {
    "type": "Sequential", "class": "Tied", "children": [
      {"name": "a", "type": "Linear", "config": {"in_features": 2, "out_features": 2}},
      {"name": "b", "ref": "a"}]}})";
  Module m = load_desc (reg.get (), shared);
  ASSERT_NE (m, nullptr);
  EXPECT_EQ (keys_of (m.get ()), std::vector<std::string> ({ "a.weight", "a.bias", "b.weight", "b.bias" }));
  std::string p = tmp.path ("tied.safetensors");
  Error err;
  ASSERT_TRUE (nn_module_save_state_dict (m.get (), p.c_str (), nullptr, err.out ())) << err.message ();
  EXPECT_EQ (nn_safetensors_n_tensors (open_st (p).get ()), 4u);
  // Loading copies every key in order into the one module: the last wins,
  // as PyTorch's copy_ does.
  write_checkpoint (p, { { "a.weight", shape ({ 2, 2 }), NN_DTYPE_F32, 1.0f },
                         { "a.bias", shape ({ 2 }), NN_DTYPE_F32, 2.0f },
                         { "b.weight", shape ({ 2, 2 }), NN_DTYPE_F32, 3.0f },
                         { "b.bias", shape ({ 2 }), NN_DTYPE_F32, 4.0f } });
  Safetensors st = open_st (p);
  ASSERT_TRUE (nn_module_load_state_dict (m.get (), st.get (), nullptr, nullptr, err.out ()))
      << err.message ();
  EXPECT_EQ (first_f32 (m.get (), "a.weight"), 3.0f);
  EXPECT_EQ (first_f32 (m.get (), "b.bias"), 4.0f);
}

TEST_F (StateDict, OptionsStructSizeIsRespected)
{
  // A caller built against a shorter NnLoadOptions: later fields unread.
  std::string p = tmp.path ("dp.safetensors");
  write_checkpoint (p, entries_like (net.get (), 3.0f, add_module_prefix));
  Safetensors st = open_st (p);
  NnLoadOptions opts = { G_STRUCT_OFFSET (NnLoadOptions, strip_prefix), 0, "module.", nullptr };
  Error err;
  EXPECT_FALSE (nn_module_load_state_dict (net.get (), st.get (), &opts, nullptr, err.out ()));
  EXPECT_HAS (err.message (), "Missing key(s)");
}

// --- against PyTorch ---------------------------------------------------------

// Runs /usr/bin/python3 with @script; false (test skipped) without torch.
bool run_python (const std::string &script, const std::vector<std::string> &args,
                 std::string *out)
{
  if (!g_file_test ("/usr/bin/python3", G_FILE_TEST_IS_EXECUTABLE))
    return false;
  std::vector<const char *> argv = { "/usr/bin/python3", "-c", script.c_str () };
  for (const std::string &a : args)
    argv.push_back (a.c_str ());
  argv.push_back (nullptr);
  char *sout = nullptr, *serr = nullptr;
  int status = 0;
  GError *e = nullptr;
  gboolean ran = g_spawn_sync (nullptr, (char **) argv.data (), nullptr, G_SPAWN_DEFAULT,
                               nullptr, nullptr, &sout, &serr, &status, &e);
  bool ok = ran && g_spawn_check_wait_status (status, nullptr);
  if (ok)
    *out = sout;
  else if (ran && std::string (serr).find ("No module named 'torch'") == std::string::npos)
    ADD_FAILURE () << "python failed: " << serr;
  if (e)
    g_error_free (e);
  g_free (sout);
  g_free (serr);
  return ok;
}

TEST_F (StateDict, ReportTextIsPyTorchs)
{
  // Missing, unexpected at several depths (reported per module, in
  // pre-order) and size mismatches, strict and not.
  std::vector<Entry> es = {
    { "zzz", shape ({ 1 }), NN_DTYPE_F32, 0 },
    { "head.other.x", shape ({ 1 }), NN_DTYPE_F32, 0 },
    { "conv.weight", shape ({ 4, 3, 3, 3 }), NN_DTYPE_F32, 0 },
    { "bn.weight", shape ({ 4 }), NN_DTYPE_F32, 0 },
    { "bn.extra", shape ({ 2 }), NN_DTYPE_F32, 0 },
    { "bn.bias", shape ({ 4 }), NN_DTYPE_F32, 0 },
    { "bn.running_mean", shape ({ 4 }), NN_DTYPE_F32, 0 },
    { "bn.num_batches_tracked", shape ({}), NN_DTYPE_I64, 0 },
    { "head.fc.weight", shape ({ 3, 4 }), NN_DTYPE_F32, 0 },
    { "head.fc.bias", shape ({ 3 }), NN_DTYPE_F32, 0 },
    { "aaa.b", shape ({ 1 }), NN_DTYPE_F32, 0 },
  };
  std::string p = tmp.path ("ck.safetensors");
  write_checkpoint (p, es);
  Safetensors st = open_st (p);

  std::string spec = "[";
  for (const Entry &e : es) {
    spec += (spec.size () > 1 ? ", [\"" : "[\"") + e.key + "\", " +
            take (nn_shape_to_string (&e.shape)) + ", \"" +
            nn_dtype_name (e.dtype) + "\"]";
  }
  spec += "]";
  std::string script = std::string (kTorchNet) + R"(
m = make()
sd = OrderedDict((k, torch.zeros(s, dtype=torch.int64 if d == 'I64' else torch.float32))
                 for k, s, d in json.loads(sys.argv[1]))
for strict in (True, False):
    try:
        m.load_state_dict(sd, strict=strict)
        sys.stdout.write('OK')
    except RuntimeError as e:
        sys.stdout.write(str(e))
    sys.stdout.write('\x01')
sd2 = OrderedDict((k, v) for k, v in sd.items() if not k.startswith('head.fc'))
r = m.load_state_dict(sd2, strict=False)
sys.stdout.write(json.dumps([r.missing_keys, r.unexpected_keys]))
)";
  std::string out;
  if (!run_python (script, { spec }, &out))
    GTEST_SKIP () << "python3-torch not available";
  gchar **parts = g_strsplit (out.c_str (), "\x01", -1);
  ASSERT_EQ (g_strv_length (parts), 3u);
  std::string torch_strict = parts[0], torch_loose = parts[1], torch_keys = parts[2];
  g_strfreev (parts);

  NnLoadReport *rep = nullptr;
  Error err;
  EXPECT_FALSE (nn_module_load_state_dict (net.get (), st.get (), nullptr, &rep, err.out ()));
  EXPECT_EQ (err.message (), torch_strict);
  EXPECT_EQ (take (nn_load_report_to_string (rep)), torch_strict);
  nn_load_report_free (rep);
  NnLoadOptions opts = { sizeof opts, NN_LOAD_NON_STRICT, nullptr, nullptr };
  EXPECT_FALSE (nn_module_load_state_dict (net.get (), st.get (), &opts, nullptr, err.out ()));
  EXPECT_EQ (err.message (), torch_loose);

  // The key lists of a non-strict load without the mismatched keys.
  std::vector<Entry> es2;
  for (const Entry &e : es)
    if (e.key.rfind ("head.fc", 0) != 0)
      es2.push_back (e);
  std::string p2 = tmp.path ("ck2.safetensors");
  write_checkpoint (p2, es2);
  Safetensors st2 = open_st (p2);
  ASSERT_TRUE (nn_module_load_state_dict (net.get (), st2.get (), &opts, &rep, err.out ()))
      << err.message ();
  std::string mine = "[[";
  for (guint i = 0; i < rep->missing->len; i++)
    mine += std::string (i ? ", \"" : "\"") + (char *) rep->missing->pdata[i] + "\"";
  mine += "], [";
  for (guint i = 0; i < rep->unexpected->len; i++)
    mine += std::string (i ? ", \"" : "\"") + (char *) rep->unexpected->pdata[i] + "\"";
  mine += "]]";
  nn_load_report_free (rep);
  EXPECT_EQ (mine, torch_keys);
}

TEST_F (StateDict, SavedStateDictLoadsInPyTorchStrictly)
{
  std::string p = tmp.path ("net.safetensors");
  Error err;
  ASSERT_TRUE (nn_module_save_state_dict (net.get (), p.c_str (), nullptr, err.out ()))
      << err.message ();
  // A minimal safetensors reader in Python (the safetensors package is not
  // in Debian 12), then a strict load and each tensor's sum and dtype.
  std::string script = std::string (kTorchNet) + R"(
b = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
data = b[8 + n:]
dt = {'F32': torch.float32, 'I64': torch.int64}
sd = OrderedDict()
for k, v in h.items():
    if k == '__metadata__':
        continue
    s, e = v['data_offsets']
    sd[k] = torch.frombuffer(bytearray(data[s:e]), dtype=dt[v['dtype']]).reshape(v['shape'])
m = make()
m.load_state_dict(sd, strict=True)
out = [[k, str(t.dtype), float(t.double().sum())] for k, t in m.state_dict().items()]
sys.stdout.write(json.dumps(out))
)";
  std::string out;
  if (!run_python (script, { p }, &out))
    GTEST_SKIP () << "python3-torch not available";
  std::string mine = "[";
  Array sd (nn_module_state_dict (net.get ()));
  for (guint i = 0; i < sd->len; i++) {
    NnNamedItem *it = (NnNamedItem *) sd->pdata[i];
    double sum = 0;
    for (gint64 j = 0; j < nn_tensor_numel (it->tensor); j++)
      sum += it->tensor->dtype == NN_DTYPE_I64 ? (double) ((gint64 *) it->tensor->data)[j]
                                               : (double) ((float *) it->tensor->data)[j];
    char buf[64];
    g_ascii_dtostr (buf, sizeof buf, sum);
    // Python's float repr and %.17g agree on round-tripping; compare values.
    mine += std::string (i ? ", " : "") + "[\"" + it->name + "\", \"" +
            (it->tensor->dtype == NN_DTYPE_I64 ? "torch.int64" : "torch.float32") + "\", " +
            buf + "]";
  }
  mine += "]";
  // Parse both as JSON to compare numbers by value, not by text.
  JsonParser *a = json_parser_new (), *b = json_parser_new ();
  ASSERT_TRUE (json_parser_load_from_data (a, out.c_str (), -1, nullptr)) << out;
  ASSERT_TRUE (json_parser_load_from_data (b, mine.c_str (), -1, nullptr)) << mine;
  JsonArray *ta = json_node_get_array (json_parser_get_root (a));
  JsonArray *tb = json_node_get_array (json_parser_get_root (b));
  ASSERT_EQ (json_array_get_length (ta), json_array_get_length (tb)) << out;
  for (guint i = 0; i < json_array_get_length (ta); i++) {
    JsonArray *x = json_array_get_array_element (ta, i), *y = json_array_get_array_element (tb, i);
    EXPECT_STREQ (json_array_get_string_element (x, 0), json_array_get_string_element (y, 0));
    EXPECT_STREQ (json_array_get_string_element (x, 1), json_array_get_string_element (y, 1));
    EXPECT_DOUBLE_EQ (json_array_get_double_element (x, 2), json_array_get_double_element (y, 2));
  }
  g_object_unref (a);
  g_object_unref (b);
}

}  // namespace
