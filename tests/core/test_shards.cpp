// core/shards.c and core/weights_open.c: sharded safetensors written and
// read back (round trip against the values written), index files written
// by hand in Hugging Face's layout, and each index error; format
// detection and key renaming on plain safetensors.
#include "nn-test.h"

#include <string>
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

class ShardsTest : public ::testing::Test {
 protected:
  void SetUp () override
  {
    dir_ = g_dir_make_tmp ("nnkit-shards-XXXXXX", nullptr);
    sub_ = std::string (dir_) + "/sub";
    g_mkdir (sub_.c_str (), 0755);
  }
  void TearDown () override
  {
    for (const std::string &d : { sub_, std::string (dir_) }) {
      GDir *gd = g_dir_open (d.c_str (), 0, nullptr);
      const char *n;
      while (gd && (n = g_dir_read_name (gd)))
        g_unlink ((d + "/" + n).c_str ());
      if (gd) g_dir_close (gd);
      g_rmdir (d.c_str ());
    }
    g_free (dir_);
  }
  std::string path (const std::string &name) { return sub_ + "/" + name; }

  // Tensors a (4 floats), b (2x3 floats), c (I64 scalar), d (1 float);
  // values i + 10 * tensor index.
  void make (std::vector<std::string> &names, std::vector<NnTensor *> &ts)
  {
    names = { "a", "b", "c", "d" };
    NnShape shapes[] = { shape ({ 4 }), shape ({ 2, 3 }), shape ({}), shape ({ 1 }) };
    for (int i = 0; i < 4; i++) {
      NnTensor *t = nn_tensor_new (i == 2 ? NN_DTYPE_I64 : NN_DTYPE_F32, &shapes[i]);
      for (gint64 k = 0; k < nn_tensor_numel (t); k++) {
        if (i == 2)
          ((gint64 *) t->data)[k] = 42;
        else
          ((float *) t->data)[k] = (float) (k + 10 * i);
      }
      ts.push_back (t);
    }
  }

  bool write_sharded (const std::string &index, guint64 max, Error &err)
  {
    std::vector<std::string> names;
    std::vector<NnTensor *> ts;
    make (names, ts);
    std::vector<const char *> cn;
    for (auto &n : names) cn.push_back (n.c_str ());
    bool ok = nn_safetensors_write_sharded (index.c_str (), cn.data (), ts.data (),
                                            (guint) ts.size (), nullptr, max, err.out ());
    for (NnTensor *t : ts) nn_tensor_unref (t);
    return ok;
  }

  void write (const std::string &name, const std::string &text)
  {
    ASSERT_TRUE (g_file_set_contents (path (name).c_str (), text.c_str (), -1, nullptr));
  }

  char *dir_ = nullptr;
  std::string sub_;
};

TEST_F (ShardsTest, RoundTrip)
{
  Error err;
  std::string index = path ("model.safetensors.index.json");
  // 16 + 24 + 8 + 4 bytes in shards of at most 30: [a], [b], [c, d].
  ASSERT_TRUE (write_sharded (index, 30, err)) << err.message ();
  EXPECT_TRUE (g_file_test (path ("model-00001-of-00003.safetensors").c_str (), G_FILE_TEST_EXISTS));
  EXPECT_TRUE (g_file_test (path ("model-00003-of-00003.safetensors").c_str (), G_FILE_TEST_EXISTS));
  EXPECT_FALSE (g_file_test (path ("model-00004-of-00004.safetensors").c_str (), G_FILE_TEST_EXISTS));

  // Each shard is an ordinary safetensors file with its own tensors.
  Safetensors s3 (nn_safetensors_open (path ("model-00003-of-00003.safetensors").c_str (), err.out ()));
  ASSERT_TRUE (s3) << err.message ();
  EXPECT_EQ (nn_safetensors_n_tensors (s3.get ()), 2u);

  EXPECT_EQ (nn_weights_detect_format (index.c_str (), nullptr), NN_WEIGHTS_FORMAT_SHARDED);
  Safetensors st (nn_weights_open (index.c_str (), nullptr, err.out ()));
  ASSERT_TRUE (st) << err.message ();
  ASSERT_EQ (nn_safetensors_n_tensors (st.get ()), 4u);
  const char *order[] = { "a", "b", "c", "d" };
  for (guint i = 0; i < 4; i++)
    EXPECT_STREQ (nn_safetensors_name_at (st.get (), i), order[i]);
  Tensor b (nn_safetensors_get (st.get (), "b", NN_DTYPE_F32, err.out ()));
  ASSERT_TRUE (b);
  for (int k = 0; k < 6; k++)
    EXPECT_EQ (nn_tensor_f32 (b.get ())[k], (float) (k + 10));
  Tensor c (nn_safetensors_get (st.get (), "c", NN_DTYPE_I64, err.out ()));
  ASSERT_TRUE (c);
  EXPECT_EQ (((gint64 *) c->data)[0], 42);
  EXPECT_STREQ (nn_safetensors_get_metadata (st.get (), NN_WEIGHTS_META_FORMAT), "sharded");

  // The index names the total size and maps every key.
  gchar *text = nullptr;
  ASSERT_TRUE (g_file_get_contents (index.c_str (), &text, nullptr, nullptr));
  std::string t = take (text);
  EXPECT_HAS (t, "\"total_size\" : 52");
  EXPECT_HAS (t, "\"d\" : \"model-00003-of-00003.safetensors\"");
}

TEST_F (ShardsTest, OneShardWhenEverythingFits)
{
  Error err;
  std::string index = path ("w.json");
  ASSERT_TRUE (write_sharded (index, 1u << 30, err)) << err.message ();
  EXPECT_TRUE (g_file_test (path ("w-00001-of-00001.safetensors").c_str (), G_FILE_TEST_EXISTS));
  Safetensors st (nn_weights_open (index.c_str (), nullptr, err.out ()));
  ASSERT_TRUE (st) << err.message ();
  EXPECT_EQ (nn_safetensors_n_tensors (st.get ()), 4u);
}

TEST_F (ShardsTest, ShardPathsStayInTheIndexFolder)
{
  Error err;
  ASSERT_TRUE (write_sharded (path ("m.safetensors.index.json"), 30, err));
  // A real safetensors file one folder up, which the index must not reach.
  std::string outside = std::string (dir_) + "/outside.safetensors";
  ASSERT_EQ (g_rename (path ("m-00001-of-00003.safetensors").c_str (), outside.c_str ()), 0);
  for (const char *bad : { "../outside.safetensors", "/etc/passwd", "..", "" }) {
    write ("bad.json", std::string ("{\"metadata\": {}, \"weight_map\": {\"a\": \"") + bad + "\"}}");
    Safetensors st (nn_weights_open (path ("bad.json").c_str (), nullptr, err.out ()));
    EXPECT_FALSE (st) << bad;
    EXPECT_HAS (err.message (), "expected a shard file name in the index's folder");
  }
  g_unlink (outside.c_str ());
}

TEST_F (ShardsTest, MissingShard)
{
  Error err;
  std::string index = path ("m.safetensors.index.json");
  ASSERT_TRUE (write_sharded (index, 30, err));
  g_unlink (path ("m-00002-of-00003.safetensors").c_str ());
  Safetensors st (nn_weights_open (index.c_str (), nullptr, err.out ()));
  EXPECT_FALSE (st);
  EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO)) << err.message ();
  EXPECT_HAS (err.message (), "m-00002-of-00003.safetensors (holding 'b') does not exist");
}

TEST_F (ShardsTest, KeyShardMismatch)
{
  Error err;
  ASSERT_TRUE (write_sharded (path ("m.safetensors.index.json"), 30, err));
  // The index sends 'b' to the shard holding 'a'.
  write ("x.json", "{\"weight_map\": {\"a\": \"m-00001-of-00003.safetensors\", "
                   "\"b\": \"m-00001-of-00003.safetensors\"}}");
  Safetensors st (nn_weights_open (path ("x.json").c_str (), nullptr, err.out ()));
  EXPECT_FALSE (st);
  EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_NOT_FOUND)) << err.message ();
  EXPECT_HAS (err.message (), "puts 'b' in m-00001-of-00003.safetensors, but that shard does not hold it");

  // A shard key the index does not list.
  write ("y.json", "{\"weight_map\": {\"c\": \"m-00003-of-00003.safetensors\"}}");
  st.reset (nn_weights_open (path ("y.json").c_str (), nullptr, err.out ()));
  EXPECT_FALSE (st);
  EXPECT_HAS (err.message (), "holds 'd', which the index does not list");
}

TEST_F (ShardsTest, MalformedIndex)
{
  Error err;
  write ("desc.json", "{\"version\": 2, \"model\": {}}");
  EXPECT_EQ (nn_weights_detect_format (path ("desc.json").c_str (), err.out ()),
             NN_WEIGHTS_FORMAT_UNKNOWN);
  EXPECT_HAS (err.message (), "not a sharded safetensors index");
  write ("num.json", "{\"weight_map\": {\"a\": 3}}");
  Safetensors st (nn_weights_open (path ("num.json").c_str (), nullptr, err.out ()));
  EXPECT_FALSE (st);
  EXPECT_HAS (err.message (), "key 'a' maps to a non-string");
}

TEST_F (ShardsTest, PlainSafetensorsRenamed)
{
  std::string p = path ("dp.safetensors");
  NnShape s = shape ({ 2 });
  NnTensor *t[2] = { nn_tensor_new (NN_DTYPE_F32, &s), nn_tensor_new (NN_DTYPE_F32, &s) };
  nn_tensor_f32 (t[1])[1] = 3.5f;
  const char *names[] = { "module.a", "module.b" };
  Error err;
  ASSERT_TRUE (nn_safetensors_write (p.c_str (), names, t, 2, nullptr, err.out ()));
  nn_tensor_unref (t[0]);
  nn_tensor_unref (t[1]);

  Safetensors st (nn_weights_open (p.c_str (), nullptr, err.out ()));
  ASSERT_TRUE (st) << err.message ();
  EXPECT_STREQ (nn_safetensors_name_at (st.get (), 1), "b");
  EXPECT_STREQ (nn_safetensors_get_metadata (st.get (), NN_WEIGHTS_META_STRIPPED), "module.");
  Tensor b (nn_safetensors_get (st.get (), "b", NN_DTYPE_F32, err.out ()));
  ASSERT_TRUE (b);
  EXPECT_EQ (nn_tensor_f32 (b.get ())[1], 3.5f);

  NnWeightsOpenOptions keep = { sizeof keep, NN_WEIGHTS_NO_AUTO_STRIP, nullptr, nullptr, "x." };
  st.reset (nn_weights_open (p.c_str (), &keep, err.out ()));
  ASSERT_TRUE (st) << err.message ();
  EXPECT_STREQ (nn_safetensors_name_at (st.get (), 0), "x.module.a");
}

} // namespace
