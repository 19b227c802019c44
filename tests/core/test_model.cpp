// core/model.c: whole models on disk, as a descriptor with its weights
// beside it or as one safetensors file; atomic saves that leave an
// existing model intact on failure.
#include "nn-test.h"

#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <glib/gstdio.h>
#include <sys/resource.h>
#include <csignal>

using namespace nntest;

#define EXPECT_HAS(haystack, needle)                                        \
  do {                                                                      \
    std::string h_ = (haystack), n_ = (needle);                             \
    EXPECT_NE (h_.find (n_), std::string::npos)                             \
        << "expected \"" << n_ << "\" in: " << h_;                          \
  } while (0)

namespace {

const char *kNet = R"({"format": "nnkit", "version": 1, "input_shape": [1, 3, 8, 8],
 "model": {"type": "Sequential", "class": "Net", "children": [
    {"name": "conv", "type": "Conv2d",
     "config": {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "bias": false}},
    {"name": "bn", "type": "BatchNorm2d", "config": {"num_features": 4}},
    {"name": "fc", "type": "Linear", "config": {"in_features": 6, "out_features": 2}}]}})";

class TmpDir {
 public:
  TmpDir () { dir_ = g_dir_make_tmp ("nnkit-model-XXXXXX", nullptr); }
  ~TmpDir ()
  {
    for (const std::string &n : list ()) {
      std::string p = path (n);
      if (g_file_test (p.c_str (), G_FILE_TEST_IS_DIR))
        g_rmdir (p.c_str ());
      else
        g_unlink (p.c_str ());
    }
    g_rmdir (dir_);
    g_free (dir_);
  }
  std::string path (const std::string &name) const { return std::string (dir_) + "/" + name; }
  std::set<std::string> list () const
  {
    std::set<std::string> out;
    GDir *d = g_dir_open (dir_, 0, nullptr);
    for (const char *n; d && (n = g_dir_read_name (d));)
      out.insert (n);
    if (d)
      g_dir_close (d);
    return out;
  }

 private:
  char *dir_;
};

std::string read_bytes (const std::string &path)
{
  std::ifstream f (path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf ();
  return ss.str ();
}

void write_bytes (const std::string &path, const std::string &bytes)
{
  std::ofstream f (path, std::ios::binary);
  f.write (bytes.data (), (std::streamsize) bytes.size ());
}

// Every state_dict entry as key -> bytes, plus its dtype.
std::vector<std::string> dump (NnModule *m)
{
  Array sd (nn_module_state_dict (m));
  std::vector<std::string> out;
  for (guint i = 0; i < sd->len; i++) {
    NnNamedItem *it = (NnNamedItem *) sd->pdata[i];
    out.push_back (std::string (it->name) + ":" + nn_dtype_name (it->tensor->dtype) + ":" +
                   std::string ((const char *) it->tensor->data, nn_tensor_nbytes (it->tensor)));
  }
  return out;
}

std::string descriptor_of (NnModule *m)
{
  return take (nn_descriptor_to_data (m, nullptr));
}

class Model : public ::testing::Test {
 protected:
  void SetUp () override
  {
    reg = default_registry ();
    Error err;
    net.reset (nn_descriptor_load_data (reg.get (), kNet, -1, "net", err.out ()));
    ASSERT_NE (net, nullptr) << err.message ();
    nn_module_reset_parameters (net.get (), 1234);
    // Running statistics too, so that nothing is at its default.
    Error e2;
    float *rm = nn_tensor_f32 (nn_module_lookup_tensor (net.get (), "bn.running_mean", e2.out ()));
    for (int i = 0; i < 4; i++)
      rm[i] = 0.25f * (float) i - 0.3f;
    *(gint64 *) nn_module_lookup_tensor (net.get (), "bn.num_batches_tracked", e2.out ())->data = 17;
  }
  Module load (const std::string &path, const char *weights = nullptr, bool allow = false)
  {
    Error err;
    Module m (nn_model_load (reg.get (), path.c_str (), weights, allow, err.out ()));
    EXPECT_NE (m, nullptr) << err.message ();
    return m;
  }
  Registry reg;
  Module net;
  TmpDir tmp;
};

TEST (ModelPaths, WeightsPathFor)
{
  EXPECT_EQ (take (nn_model_weights_path_for ("model.json")), "model.safetensors");
  EXPECT_EQ (take (nn_model_weights_path_for ("/a/b/resnet18.json")), "/a/b/resnet18.safetensors");
  EXPECT_EQ (take (nn_model_weights_path_for ("dir.v1/model")), "dir.v1/model.safetensors");
  EXPECT_EQ (take (nn_model_weights_path_for ("a.b.json")), "a.b.safetensors");
  EXPECT_EQ (take (nn_model_weights_path_for (".json")), ".json.safetensors");
}

TEST_F (Model, DescriptorWithWeightsBeside)
{
  std::string desc = tmp.path ("net.json");
  Error err;
  ASSERT_TRUE (nn_model_save (net.get (), desc.c_str (), err.out ())) << err.message ();
  EXPECT_EQ (tmp.list (), std::set<std::string> ({ "net.json", "net.safetensors" }));
  Module back = load (desc);
  ASSERT_NE (back, nullptr);
  EXPECT_EQ (dump (back.get ()), dump (net.get ()));
  EXPECT_EQ (descriptor_of (back.get ()), descriptor_of (net.get ()));
  EXPECT_STREQ (nn_module_get_class_name (back.get ()), "Net");

  // Saving the reloaded, unchanged model gives the same bytes.
  std::string d1 = read_bytes (desc), w1 = read_bytes (tmp.path ("net.safetensors"));
  ASSERT_TRUE (nn_model_save (back.get (), desc.c_str (), err.out ())) << err.message ();
  EXPECT_EQ (read_bytes (desc), d1);
  EXPECT_EQ (read_bytes (tmp.path ("net.safetensors")), w1);
  EXPECT_EQ (tmp.list ().size (), 2u);
}

TEST_F (Model, SingleFile)
{
  std::string p = tmp.path ("net.safetensors");
  Error err;
  ASSERT_TRUE (nn_model_save (net.get (), p.c_str (), err.out ())) << err.message ();
  EXPECT_EQ (tmp.list (), std::set<std::string> ({ "net.safetensors" }));
  {
    Safetensors st (nn_safetensors_open (p.c_str (), err.out ()));
    ASSERT_NE (st, nullptr) << err.message ();
    EXPECT_EQ (std::string (nn_safetensors_get_metadata (st.get (), "nnkit.descriptor")),
               descriptor_of (net.get ()));
  }
  Module back = load (p);
  ASSERT_NE (back, nullptr);
  EXPECT_EQ (dump (back.get ()), dump (net.get ()));
  EXPECT_EQ (descriptor_of (back.get ()), descriptor_of (net.get ()));
  NnShape in;
  ASSERT_TRUE (nn_module_get_input_shape (back.get (), &in));
  EXPECT_EQ (take (nn_shape_to_string (&in)), "[1, 3, 8, 8]");
}

TEST_F (Model, ExplicitWeightsPath)
{
  std::string desc = tmp.path ("net.json");
  std::string other = tmp.path ("elsewhere.safetensors");
  Error err;
  ASSERT_TRUE (nn_descriptor_save_file (net.get (), desc.c_str (), err.out ())) << err.message ();
  ASSERT_TRUE (nn_module_save_state_dict (net.get (), other.c_str (), nullptr, err.out ()));
  Module back = load (desc, other.c_str ());
  ASSERT_NE (back, nullptr);
  EXPECT_EQ (dump (back.get ()), dump (net.get ()));

  // A weights path that was asked for must exist, whatever allow says.
  std::string absent = tmp.path ("absent.safetensors");
  EXPECT_EQ (nn_model_load (reg.get (), desc.c_str (), absent.c_str (), TRUE, err.out ()), nullptr);
  EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO));
  EXPECT_HAS (err.message (), absent);
}

TEST_F (Model, MissingWeightsBeside)
{
  std::string desc = tmp.path ("net.json");
  Error err;
  ASSERT_TRUE (nn_descriptor_save_file (net.get (), desc.c_str (), err.out ())) << err.message ();
  EXPECT_EQ (nn_model_load (reg.get (), desc.c_str (), nullptr, FALSE, err.out ()), nullptr);
  EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO));
  EXPECT_HAS (err.message (), desc);
  EXPECT_HAS (err.message (), tmp.path ("net.safetensors"));
  EXPECT_HAS (err.message (), "does not exist");

  Module fresh = load (desc, nullptr, true);
  ASSERT_NE (fresh, nullptr);
  EXPECT_EQ (descriptor_of (fresh.get ()), descriptor_of (net.get ()));
}

TEST_F (Model, MissingDescriptorIsNamedAsSuch)
{
  std::string desc = tmp.path ("absent.json");
  Error err;
  for (gboolean allow : { (gboolean) FALSE, (gboolean) TRUE }) {
    EXPECT_EQ (nn_model_load (reg.get (), desc.c_str (), nullptr, allow, err.out ()), nullptr);
    EXPECT_TRUE (err.matches (NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_IO)) << err.message ();
    EXPECT_EQ (err.message (), desc + ": no such file");
  }
}

TEST_F (Model, SafetensorsWithoutDescriptor)
{
  std::string p = tmp.path ("weights.safetensors");
  Error err;
  ASSERT_TRUE (nn_module_save_state_dict (net.get (), p.c_str (), nullptr, err.out ()));
  EXPECT_EQ (nn_model_load (reg.get (), p.c_str (), nullptr, FALSE, err.out ()), nullptr);
  EXPECT_TRUE (err.matches (NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID));
  EXPECT_HAS (err.message (), p);
  EXPECT_HAS (err.message (), "'nnkit.descriptor'");
}

TEST_F (Model, WrongWeightsFailStrictlyAndNameTheFile)
{
  // Weights of a model whose fc has another size.
  std::string desc = tmp.path ("net.json");
  Error err;
  ASSERT_TRUE (nn_descriptor_save_file (net.get (), desc.c_str (), err.out ()));
  std::string other (kNet);
  other.replace (other.find ("\"out_features\": 2"), 17, "\"out_features\": 5");
  Module bigger (nn_descriptor_load_data (reg.get (), other.c_str (), -1, "other", err.out ()));
  ASSERT_NE (bigger, nullptr) << err.message ();
  std::string w = tmp.path ("net.safetensors");
  ASSERT_TRUE (nn_module_save_state_dict (bigger.get (), w.c_str (), nullptr, err.out ()));
  EXPECT_EQ (nn_model_load (reg.get (), desc.c_str (), nullptr, FALSE, err.out ()), nullptr);
  EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_LOAD));
  EXPECT_EQ (err.message (), w + ": Error(s) in loading state_dict for Net:\n\t"
             "size mismatch for fc.weight: copying a param with shape torch.Size([5, 6]) "
             "from checkpoint, the shape in current model is torch.Size([2, 6]).\n\t"
             "size mismatch for fc.bias: copying a param with shape torch.Size([5]) "
             "from checkpoint, the shape in current model is torch.Size([2]).");
}

TEST_F (Model, CorruptWeightsAreReported)
{
  std::string desc = tmp.path ("net.json");
  Error err;
  ASSERT_TRUE (nn_model_save (net.get (), desc.c_str (), err.out ()));
  std::string w = tmp.path ("net.safetensors");
  std::string bytes = read_bytes (w);
  write_bytes (w, bytes.substr (0, bytes.size () - 4));
  EXPECT_EQ (nn_model_load (reg.get (), desc.c_str (), nullptr, FALSE, err.out ()), nullptr);
  EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_OFFSETS)) << err.message ();
  EXPECT_HAS (err.message (), w);
}

// A saved model pair, and the check that a failed save left it alone.
struct SavedPair {
  std::string desc, weights, desc_bytes, weights_bytes;
  void take_snapshot ()
  {
    desc_bytes = read_bytes (desc);
    weights_bytes = read_bytes (weights);
  }
  void expect_untouched ()
  {
    EXPECT_EQ (read_bytes (desc), desc_bytes);
    EXPECT_EQ (read_bytes (weights), weights_bytes);
  }
};

TEST_F (Model, FailedSaveLeavesThePreviousModel)
{
  SavedPair pair = { tmp.path ("net.json"), tmp.path ("net.safetensors"), "", "" };
  Error err;
  ASSERT_TRUE (nn_model_save (net.get (), pair.desc.c_str (), err.out ())) << err.message ();
  pair.take_snapshot ();

  // A changed model whose save fails half way through the weights (file
  // size limit, as a full disk): neither file changes, no temp is left.
  nn_module_reset_parameters (net.get (), 99);
  struct rlimit old, lim;
  ASSERT_EQ (getrlimit (RLIMIT_FSIZE, &old), 0);
  lim = old;
  lim.rlim_cur = 256;
  auto prev = signal (SIGXFSZ, SIG_IGN);
  ASSERT_EQ (setrlimit (RLIMIT_FSIZE, &lim), 0);
  gboolean ok = nn_model_save (net.get (), pair.desc.c_str (), err.out ());
  setrlimit (RLIMIT_FSIZE, &old);
  signal (SIGXFSZ, prev);
  EXPECT_FALSE (ok);
  EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO)) << err.message ();
  EXPECT_HAS (err.message (), pair.weights);
  pair.expect_untouched ();
  EXPECT_EQ (tmp.list (), std::set<std::string> ({ "net.json", "net.safetensors" }));
}

TEST_F (Model, DescriptorThatCannotBeReplacedLeavesTheWeightsToo)
{
  // The weights could be written but the descriptor's place is taken by
  // a directory: the weights must not be replaced either.
  std::string desc = tmp.path ("m.json");
  std::string weights = tmp.path ("m.safetensors");
  Error err;
  ASSERT_TRUE (nn_module_save_state_dict (net.get (), weights.c_str (), nullptr, err.out ()));
  std::string before = read_bytes (weights);
  ASSERT_EQ (g_mkdir (desc.c_str (), 0755), 0);
  nn_module_reset_parameters (net.get (), 7);
  EXPECT_FALSE (nn_model_save (net.get (), desc.c_str (), err.out ()));
  EXPECT_HAS (err.message (), desc);
  EXPECT_HAS (err.message (), "directory");
  EXPECT_EQ (read_bytes (weights), before);
  EXPECT_EQ (tmp.list (), std::set<std::string> ({ "m.json", "m.safetensors" }));
}

TEST_F (Model, SingleFileSaveFailureKeepsTheOldFile)
{
  std::string p = tmp.path ("net.safetensors");
  Error err;
  ASSERT_TRUE (nn_model_save (net.get (), p.c_str (), err.out ()));
  std::string before = read_bytes (p);
  std::string dir = tmp.path ("sub.safetensors");
  ASSERT_EQ (g_mkdir (dir.c_str (), 0755), 0);
  EXPECT_FALSE (nn_model_save (net.get (), dir.c_str (), err.out ()));
  EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO));
  EXPECT_HAS (err.message (), dir);
  EXPECT_EQ (read_bytes (p), before);
  EXPECT_EQ (tmp.list (), std::set<std::string> ({ "net.safetensors", "sub.safetensors" }));
}

}  // namespace

// A Graph's declared non-persistent buffer (a causal mask, position ids,
// as torch2nn writes it): the model's weights file carries it and loading
// the model reads it, while state_dict, save_state_dict and a plain
// load_state_dict keep PyTorch's rule that it is no state_dict entry.
TEST_F (Model, NonPersistentBuffersTravelWithTheModel)
{
  const char *desc = R"({"format": "nnkit", "version": 2,
    "inputs": [{"name": "x", "shape": [1, 3], "dtype": "F32"}],
    "model": {"type": "Graph", "class": "Masked",
      "config": {"inputs": ["x"], "nodes": [
        {"name": "mask", "attr": "mask"},
        {"name": "fc", "module": "fc", "args": ["x"]},
        {"name": "mul", "op": "mul", "args": ["fc", "mask"]}], "output": "mul"},
      "buffers": {"mask": {"shape": [3], "dtype": "F32", "persistent": false}},
      "children": [{"name": "fc", "type": "Linear",
                    "config": {"in_features": 3, "out_features": 3}}]}})";
  Error err;
  Module m (nn_descriptor_load_data (reg.get (), desc, -1, "masked", err.out ()));
  ASSERT_NE (m, nullptr) << err.message ();
  nn_module_reset_parameters (m.get (), 7);
  float *mask = nn_tensor_f32 (nn_module_get_buffer (m.get (), "mask"));
  mask[0] = 1.0f, mask[1] = 0.0f, mask[2] = 0.5f;
  EXPECT_EQ (Array (nn_module_state_dict (m.get ()))->len, 2u);  // fc.weight, fc.bias

  for (const char *name : { "masked.json", "masked1.safetensors" }) {
    std::string path = tmp.path (name);
    ASSERT_TRUE (nn_model_save (m.get (), path.c_str (), err.out ())) << err.message ();
    std::string wpath = g_str_has_suffix (name, ".json") ? tmp.path ("masked.safetensors") : path;
    {
      Safetensors st (nn_safetensors_open (wpath.c_str (), err.out ()));
      ASSERT_NE (st, nullptr) << err.message ();
      EXPECT_EQ (nn_safetensors_n_tensors (st.get ()), 3u) << name;
    }
    Module back = load (path);
    ASSERT_NE (back, nullptr) << name;
    const float *got = nn_tensor_f32 (nn_module_get_buffer (back.get (), "mask"));
    EXPECT_EQ (got[0], 1.0f) << name;
    EXPECT_EQ (got[1], 0.0f) << name;
    EXPECT_EQ (got[2], 0.5f) << name;
  }

  // A weights file without the buffer loads too: the buffer keeps its value.
  std::string sd = tmp.path ("sd.safetensors");
  ASSERT_TRUE (nn_module_save_state_dict (m.get (), sd.c_str (), nullptr, err.out ()))
      << err.message ();
  {
    Safetensors st (nn_safetensors_open (sd.c_str (), err.out ()));
    ASSERT_NE (st, nullptr) << err.message ();
    EXPECT_EQ (nn_safetensors_n_tensors (st.get ()), 2u);
  }
  Module nomask = load (tmp.path ("masked.json"), sd.c_str ());
  ASSERT_NE (nomask, nullptr);

  // PyTorch's load_state_dict calls a non-persistent key unexpected.
  Safetensors full (nn_safetensors_open (tmp.path ("masked.safetensors").c_str (), err.out ()));
  ASSERT_NE (full, nullptr) << err.message ();
  EXPECT_FALSE (nn_module_load_state_dict (m.get (), full.get (), nullptr, nullptr, err.out ()));
  EXPECT_HAS (err.message (), "Unexpected key(s) in state_dict: \"mask\"");
}
