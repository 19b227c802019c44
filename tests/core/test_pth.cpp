// core/pth_{zip,pickle,read}.c: torch.save files built here byte by byte
// (pickle opcodes written from the pickle spec, the zip by libzip), so the
// expected values come from the test, not from the reader.  Good files,
// every refusal of the restricted unpickler (with proof that nothing ran)
// and every kind of corruption.  Files written by PyTorch itself are
// tested in tests/nnctl/test_weights_torch.py.
#include "nn-test.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <glib/gstdio.h>
#include <zip.h>

using namespace nntest;

#define EXPECT_HAS(haystack, needle)                                        \
  do {                                                                      \
    std::string h_ = (haystack), n_ = (needle);                             \
    EXPECT_NE (h_.find (n_), std::string::npos)                             \
        << "expected \"" << n_ << "\" in: " << h_;                          \
  } while (0)

namespace {

// Pickle protocol 2 as torch.save writes it.
struct Pickle {
  std::string b = std::string ("\x80\x02", 2);
  Pickle &op (char c) { b += c; return *this; }
  Pickle &raw (const std::string &s) { b += s; return *this; }
  Pickle &str (const std::string &s)
  {
    b += 'X';
    uint32_t n = (uint32_t) s.size ();
    for (int i = 0; i < 4; i++) b += (char) ((n >> (8 * i)) & 0xff);
    b += s;
    return *this;
  }
  Pickle &i32 (int32_t v)
  {
    b += 'J';
    for (int i = 0; i < 4; i++) b += (char) (((uint32_t) v >> (8 * i)) & 0xff);
    return *this;
  }
  Pickle &global (const std::string &mod, const std::string &name)
  {
    b += 'c';
    b += mod + "\n" + name + "\n";
    return *this;
  }
  Pickle &ints (std::initializer_list<int32_t> v)
  {
    op ('(');
    for (int32_t x : v) i32 (x);
    return op ('t');
  }
  Pickle &ordered_dict () { return global ("collections", "OrderedDict").op (')').op ('R'); }
  // _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())
  Pickle &tensor (const std::string &stype, const std::string &key, int32_t numel,
                  int32_t offset, std::initializer_list<int32_t> size,
                  std::initializer_list<int32_t> stride)
  {
    global ("torch._utils", "_rebuild_tensor_v2").op ('(');
    op ('(').str ("storage").global ("torch", stype).str (key).str ("cpu").i32 (numel).op ('t');
    op ('Q').i32 (offset).ints (size).ints (stride).op ('\x89').ordered_dict ();
    return op ('t').op ('R');
  }
  Pickle &stop () { return op ('.'); }
};

struct Member {
  std::string name;
  std::string data;
};

std::string f32 (std::initializer_list<float> v)
{
  std::string s;
  for (float f : v) s.append ((const char *) &f, 4);
  return s;
}

class PthTest : public ::testing::Test {
 protected:
  void SetUp () override { dir_ = g_dir_make_tmp ("nnkit-pth-XXXXXX", nullptr); }
  void TearDown () override
  {
    GDir *d = g_dir_open (dir_, 0, nullptr);
    const char *n;
    while (d && (n = g_dir_read_name (d)))
      g_unlink (path (n).c_str ());
    if (d) g_dir_close (d);
    g_rmdir (dir_);
    g_free (dir_);
  }
  std::string path (const std::string &name) { return std::string (dir_) + "/" + name; }

  // A torch.save archive: archive/data.pkl, archive/data/<key>, version.
  std::string write_pth (const std::string &name, const std::string &pkl,
                         const std::vector<Member> &storages,
                         const char *byteorder = "little")
  {
    std::string p = path (name);
    int code = 0;
    zip_t *z = zip_open (p.c_str (), ZIP_CREATE | ZIP_TRUNCATE, &code);
    EXPECT_NE (z, nullptr);
    std::vector<Member> all = { { "archive/data.pkl", pkl }, { "archive/version", "3\n" } };
    if (byteorder)
      all.push_back ({ "archive/byteorder", byteorder });
    for (const Member &m : storages)
      all.push_back ({ "archive/data/" + m.name, m.data });
    for (const Member &m : all) {
      char *copy = (char *) g_memdup2 (m.data.data (), m.data.size ());
      zip_source_t *src = zip_source_buffer (z, copy, m.data.size (), 1);
      zip_int64_t i = zip_file_add (z, m.name.c_str (), src, ZIP_FL_OVERWRITE);
      EXPECT_GE (i, 0);
      zip_set_file_compression (z, (zip_uint64_t) i, ZIP_CM_STORE, 0);
    }
    EXPECT_EQ (zip_close (z), 0);
    return p;
  }

  Safetensors open (const std::string &p, Error &err, const char *key = nullptr,
                    guint flags = 0, const char *strip = nullptr,
                    const char *add = nullptr)
  {
    NnWeightsOpenOptions o = { sizeof o, flags, key, strip, add };
    return Safetensors (nn_weights_open (p.c_str (), &o, err.out ()));
  }

  static std::vector<float> floats (NnSafetensors *st, const char *name)
  {
    Error err;
    Tensor t (nn_safetensors_get (st, name, NN_DTYPE_F32, err.out ()));
    EXPECT_TRUE (t) << err.message ();
    if (!t) return {};
    float *f = nn_tensor_f32 (t.get ());
    return std::vector<float> (f, f + nn_tensor_numel (t.get ()));
  }

  static std::vector<gint64> longs (NnSafetensors *st, const char *name)
  {
    Error err;
    Tensor t (nn_safetensors_get (st, name, NN_DTYPE_I64, err.out ()));
    EXPECT_TRUE (t) << err.message ();
    if (!t) return {};
    gint64 *v = (gint64 *) t->data;
    return std::vector<gint64> (v, v + nn_tensor_numel (t.get ()));
  }

  // One F32 tensor "w" of shape [2, 3] over storage 0.
  std::string simple_pth (const std::string &name)
  {
    Pickle p;
    p.ordered_dict ().op ('(').str ("w").tensor ("FloatStorage", "0", 6, 0, { 2, 3 }, { 3, 1 });
    p.op ('u').stop ();
    return write_pth (name, p.b, { { "0", f32 ({ 1, 2, 3, 4, 5, 6 }) } });
  }

  std::string refused (const std::string &pkl, std::vector<Member> st = {})
  {
    std::string p = write_pth ("evil.pth", pkl, st);
    Error err;
    Safetensors s = open (p, err);
    EXPECT_FALSE (s);
    EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER)) << err.message ();
    return err.message ();
  }

  char *dir_ = nullptr;
};

// First in the file, so that its threads race for the process's first
// .pth read, the one that dlopen()s libzip (core/pth_zip_load.c): each must
// read the file (test.sh runs this suite under ThreadSanitizer too).
TEST_F (PthTest, ThreadsRacingForTheFirstReadAllRead)
{
  std::string pth = simple_pth ("first.pth");
  std::atomic<bool> go{ false };
  std::atomic<int> read{ 0 };
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; i++)
    threads.emplace_back ([&] {
      while (!go.load ())
        std::this_thread::yield ();
      Error err;
      Safetensors st = open (pth, err);
      EXPECT_TRUE (st) << err.message ();
      if (st && floats (st.get (), "w") == std::vector<float>{ 1, 2, 3, 4, 5, 6 })
        read++;
    });
  go.store (true);
  for (auto &t : threads)
    t.join ();
  EXPECT_EQ (read.load (), 6);
}

TEST_F (PthTest, ReadsAStateDict)
{
  Pickle p;
  p.ordered_dict ().op ('(');
  p.str ("conv.weight").tensor ("FloatStorage", "0", 6, 0, { 2, 3 }, { 3, 1 });
  p.str ("bn.num_batches_tracked").tensor ("LongStorage", "1", 1, 0, {}, {});
  p.op ('u').stop ();
  gint64 seven = 7;
  std::string pth = write_pth ("sd.pth", p.b,
                               { { "0", f32 ({ 1.5f, -2, 3, 4, 5, 6.25f }) },
                                 { "1", std::string ((const char *) &seven, 8) } });
  Error err;
  Safetensors st = open (pth, err);
  ASSERT_TRUE (st) << err.message ();
  ASSERT_EQ (nn_safetensors_n_tensors (st.get ()), 2u);
  EXPECT_STREQ (nn_safetensors_name_at (st.get (), 0), "conv.weight");
  EXPECT_STREQ (nn_safetensors_name_at (st.get (), 1), "bn.num_batches_tracked");
  NnShape s;
  EXPECT_STREQ (nn_safetensors_get_info (st.get (), "conv.weight", &s), "F32");
  EXPECT_TRUE (nn_shape_equal (&s, &(const NnShape &) shape ({ 2, 3 })));
  EXPECT_EQ (floats (st.get (), "conv.weight"),
             (std::vector<float>{ 1.5f, -2, 3, 4, 5, 6.25f }));
  EXPECT_STREQ (nn_safetensors_get_info (st.get (), "bn.num_batches_tracked", &s), "I64");
  EXPECT_EQ (s.ndim, 0u);
  EXPECT_EQ (longs (st.get (), "bn.num_batches_tracked"), std::vector<gint64>{ 7 });
  EXPECT_STREQ (nn_safetensors_get_metadata (st.get (), NN_WEIGHTS_META_FORMAT), "pth");
  EXPECT_EQ (nn_weights_detect_format (pth.c_str (), nullptr), NN_WEIGHTS_FORMAT_PTH);
}

TEST_F (PthTest, DetectsByMagicNotName)
{
  std::string pth = simple_pth ("weights.safetensors");
  Error err;
  Safetensors st = open (pth, err);
  ASSERT_TRUE (st) << err.message ();
  EXPECT_EQ (floats (st.get (), "w"), (std::vector<float>{ 1, 2, 3, 4, 5, 6 }));
}

TEST_F (PthTest, ViewsBecomeContiguous)
{
  // The transpose of a 2x3 storage, a slice starting at element 1, and an
  // expanded scalar (stride 0).
  Pickle p;
  p.ordered_dict ().op ('(');
  p.str ("t").tensor ("FloatStorage", "0", 6, 0, { 3, 2 }, { 1, 3 });
  p.str ("slice").tensor ("FloatStorage", "0", 6, 1, { 2, 2 }, { 3, 1 });
  p.str ("expanded").tensor ("FloatStorage", "0", 6, 5, { 2, 3 }, { 0, 0 });
  p.op ('u').stop ();
  std::string pth = write_pth ("v.pth", p.b, { { "0", f32 ({ 0, 1, 2, 3, 4, 5 }) } });
  Error err;
  Safetensors st = open (pth, err);
  ASSERT_TRUE (st) << err.message ();
  EXPECT_EQ (floats (st.get (), "t"), (std::vector<float>{ 0, 3, 1, 4, 2, 5 }));
  EXPECT_EQ (floats (st.get (), "slice"), (std::vector<float>{ 1, 2, 4, 5 }));
  EXPECT_EQ (floats (st.get (), "expanded"), std::vector<float> (6, 5.0f));
}

TEST_F (PthTest, OtherDtypesAndBigEndian)
{
  Pickle p;
  p.ordered_dict ().op ('(');
  p.str ("i32").tensor ("IntStorage", "0", 3, 0, { 3 }, { 1 });
  p.str ("u8").tensor ("ByteStorage", "1", 2, 0, { 2 }, { 1 });
  p.str ("h").tensor ("HalfStorage", "2", 2, 0, { 2 }, { 1 });
  p.str ("f").tensor ("FloatStorage", "3", 1, 0, { 1 }, { 1 });
  p.str ("s").tensor ("ShortStorage", "4", 2, 0, { 2 }, { 1 });
  p.str ("b").tensor ("BoolStorage", "5", 3, 0, { 3 }, { 1 });
  p.op ('u').stop ();
  // Big-endian bytes, as a big-endian machine writes them.
  std::string i32 = std::string ("\xff\xff\xff\xfe" "\x00\x00\x01\x00" "\x7f\xff\xff\xff", 12);
  std::string u8 = std::string ("\xff\x01", 2);
  std::string h = std::string ("\x3c\x00" "\xc0\x00", 4); // 1.0, -2.0
  std::string f = std::string ("\x3f\xc0\x00\x00", 4);    // 1.5
  std::string s16 = std::string ("\xff\xfe" "\x01\x00", 4);  // -2, 256
  std::string b = std::string ("\x01\x00\x02", 3);          // a 2 reads as true
  std::string pth = write_pth ("be.pth", p.b,
                               { { "0", i32 }, { "1", u8 }, { "2", h }, { "3", f },
                                 { "4", s16 }, { "5", b } }, "big");
  Error err;
  Safetensors st = open (pth, err);
  ASSERT_TRUE (st) << err.message ();
  EXPECT_STREQ (nn_safetensors_get_info (st.get (), "i32", nullptr), "I32");
  EXPECT_EQ (longs (st.get (), "i32"), (std::vector<gint64>{ -2, 256, 2147483647 }));
  EXPECT_STREQ (nn_safetensors_get_info (st.get (), "u8", nullptr), "U8");
  EXPECT_EQ (longs (st.get (), "u8"), (std::vector<gint64>{ 255, 1 }));
  // int16 has no dtype of its own: I32, sign-extended.
  EXPECT_STREQ (nn_safetensors_get_info (st.get (), "s", nullptr), "I32");
  EXPECT_EQ (longs (st.get (), "s"), (std::vector<gint64>{ -2, 256 }));
  EXPECT_STREQ (nn_safetensors_get_info (st.get (), "b", nullptr), "BOOL");
  Error e2;
  Tensor bt (nn_safetensors_get (st.get (), "b", NN_DTYPE_BOOL, e2.out ()));
  ASSERT_TRUE (bt) << e2.message ();
  EXPECT_EQ (std::string ((const char *) bt->data, 3), std::string ("\x01\x00\x01", 3));
  EXPECT_STREQ (nn_safetensors_get_info (st.get (), "h", nullptr), "F16");
  EXPECT_EQ (floats (st.get (), "h"), (std::vector<float>{ 1.0f, -2.0f }));
  EXPECT_EQ (floats (st.get (), "f"), std::vector<float>{ 1.5f });
}

TEST_F (PthTest, ByteorderMustBeLittleOrBig)
{
  Pickle p;
  p.ordered_dict ().stop ();
  std::string pth = write_pth ("bo.pth", p.b, {}, "middle");
  Error err;
  EXPECT_FALSE (open (pth, err));
  EXPECT_HAS (err.message (), "byteorder");
  EXPECT_HAS (err.message (), "middle");
}

// {'state_dict': sd, 'epoch': 3, 'lr': 0.1, 'best': None, 'flags': [True]}
std::string checkpoint_pickle (bool second_state_dict)
{
  Pickle p;
  p.op ('}').op ('(');
  p.str ("state_dict").ordered_dict ().op ('(');
  p.str ("module.fc.weight").tensor ("FloatStorage", "0", 2, 0, { 2 }, { 1 });
  p.op ('u');
  p.str ("epoch").raw ("K\x03");
  p.str ("lr").raw (std::string ("G\x3f\xb9\x99\x99\x99\x99\x99\x9a", 9));
  p.str ("best").op ('N');
  p.str ("flags").op (']').op ('\x88').op ('a');
  if (second_state_dict) {
    p.str ("ema").op ('}').op ('(');
    p.str ("fc.weight").tensor ("FloatStorage", "0", 2, 0, { 2 }, { 1 });
    p.op ('u');
  }
  p.op ('u').stop ();
  return p.b;
}

TEST_F (PthTest, CheckpointDictAutoPicksTheOnlyStateDict)
{
  std::string pth = write_pth ("ck.pth", checkpoint_pickle (false), { { "0", f32 ({ 7, 8 }) } });
  Error err;
  Safetensors st = open (pth, err);
  ASSERT_TRUE (st) << err.message ();
  EXPECT_STREQ (nn_safetensors_get_metadata (st.get (), NN_WEIGHTS_META_KEY), "state_dict");
  // Every key had "module.": stripped and reported.
  EXPECT_STREQ (nn_safetensors_get_metadata (st.get (), NN_WEIGHTS_META_STRIPPED), "module.");
  EXPECT_EQ (floats (st.get (), "fc.weight"), (std::vector<float>{ 7, 8 }));

  st = open (pth, err, "state_dict", NN_WEIGHTS_NO_AUTO_STRIP);
  ASSERT_TRUE (st) << err.message ();
  EXPECT_TRUE (nn_safetensors_get_info (st.get (), "module.fc.weight", nullptr));
  EXPECT_EQ (nn_safetensors_get_metadata (st.get (), NN_WEIGHTS_META_STRIPPED), nullptr);

  st = open (pth, err, nullptr, 0, "module.fc.", "head.");
  ASSERT_TRUE (st) << err.message ();
  EXPECT_TRUE (nn_safetensors_get_info (st.get (), "head.weight", nullptr));
}

TEST_F (PthTest, CheckpointKeyErrors)
{
  std::string pth = write_pth ("ck.pth", checkpoint_pickle (true), { { "0", f32 ({ 7, 8 }) } });
  Error err;
  EXPECT_FALSE (open (pth, err));
  EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_NOT_FOUND));
  EXPECT_HAS (err.message (), "checkpoint dict");
  EXPECT_HAS (err.message (), "--key");
  EXPECT_HAS (err.message (), "'state_dict' (dict), 'ema' (dict)");

  Safetensors st = open (pth, err, "ema");
  ASSERT_TRUE (st) << err.message ();
  EXPECT_TRUE (nn_safetensors_get_info (st.get (), "fc.weight", nullptr));

  EXPECT_FALSE (open (pth, err, "epoch"));
  EXPECT_HAS (err.message (), "entry 'epoch' is a int, expected a state_dict");
  EXPECT_FALSE (open (pth, err, "nope"));
  EXPECT_HAS (err.message (), "no entry 'nope'");
  EXPECT_HAS (err.message (), "'epoch' (int)");
}

TEST_F (PthTest, KeyOnSafetensorsIsAnError)
{
  std::string p = path ("x.safetensors");
  NnTensor *t = nn_tensor_new (NN_DTYPE_F32, &(const NnShape &) shape ({ 1 }));
  const char *name = "a";
  ASSERT_TRUE (nn_safetensors_write (p.c_str (), &name, &t, 1, nullptr, nullptr));
  nn_tensor_unref (t);
  Error err;
  EXPECT_FALSE (open (p, err, "state_dict"));
  EXPECT_HAS (err.message (), "applies to torch.save files");
}

// --- the restricted unpickler: nothing runs -------------------------------

TEST_F (PthTest, RefusesOsSystemAndNothingRuns)
{
  std::string marker = path ("pwned");
  const char *mods[][2] = { { "os", "system" }, { "posix", "system" },
                            { "subprocess", "call" } };
  for (auto &m : mods) {
    Pickle p;
    p.global (m[0], m[1]).op ('(').str ("touch " + marker).op ('t').op ('R').stop ();
    std::string msg = refused (p.b);
    EXPECT_HAS (msg, "GLOBAL");
    EXPECT_HAS (msg, std::string ("'") + m[0] + "." + m[1] + "' is not allowed");
    EXPECT_FALSE (g_file_test (marker.c_str (), G_FILE_TEST_EXISTS));
  }
}

TEST_F (PthTest, RefusesBuiltinsEvalAndStackGlobal)
{
  Pickle p;
  p.global ("builtins", "eval").op ('(').str ("1+1").op ('t').op ('R').stop ();
  EXPECT_HAS (refused (p.b), "'builtins.eval' is not allowed");

  Pickle q; // protocol 4 spelling: STACK_GLOBAL of two strings
  q.str ("os").str ("system").op ('\x93').stop ();
  std::string msg = refused (q.b);
  EXPECT_HAS (msg, "STACK_GLOBAL");
  EXPECT_HAS (msg, "'os.system'");
}

TEST_F (PthTest, RefusesObjectBuildingOpcodes)
{
  struct { const char *bytes; size_t len; const char *name; } cases[] = {
    { "(ios\nsystem\n.", 13, "INST" },
    { "(cos\nsystem\no.", 14, "GLOBAL" },  // refused at the global already
    { "(o.", 3, "OBJ" },
    { ")\x81.", 3, "NEWOBJ" },
    { "\x82\x01.", 3, "EXT1" },
    { "Pfoo\n.", 6, "PERSID" },
    { "I1\n.", 4, "INT" },
  };
  for (auto &c : cases) {
    Pickle p;
    p.raw (std::string (c.bytes, c.len));
    std::string msg = refused (p.b);
    EXPECT_HAS (msg, std::string ("opcode ") + c.name);
  }
}

TEST_F (PthTest, RefusesReduceOfNonCallables)
{
  Pickle p; // a storage class is allowed only inside a persistent id
  p.global ("torch", "FloatStorage").op (')').op ('R').stop ();
  std::string msg = refused (p.b);
  EXPECT_HAS (msg, "REDUCE");
  EXPECT_HAS (msg, "torch.FloatStorage");

  Pickle q; // calling a plain value
  q.op ('}').op (')').op ('R').stop ();
  EXPECT_HAS (refused (q.b), "calls a dict");

  Pickle r; // BUILD on a list
  r.op (']').op ('}').op ('b').stop ();
  msg = refused (r.b);
  EXPECT_HAS (msg, "BUILD");
  EXPECT_HAS (msg, "list");
}

TEST_F (PthTest, AcceptsBuildOfStateDictMetadata)
{
  // state_dict()._metadata travels as BUILD on the OrderedDict.
  Pickle p;
  p.ordered_dict ().op ('(').str ("w").tensor ("FloatStorage", "0", 1, 0, { 1 }, { 1 }).op ('u');
  p.op ('}').op ('(').str ("_metadata").ordered_dict ().op ('(').str ("").op ('}');
  p.op ('(').str ("version").raw ("K\x01").op ('u').op ('u').op ('u').op ('b').stop ();
  std::string pth = write_pth ("md.pth", p.b, { { "0", f32 ({ 4 }) } });
  Error err;
  Safetensors st = open (pth, err);
  ASSERT_TRUE (st) << err.message ();
  EXPECT_EQ (floats (st.get (), "w"), std::vector<float>{ 4 });
}

// --- corrupt files ----------------------------------------------------------

TEST_F (PthTest, TruncatedZip)
{
  std::string pth = simple_pth ("t.pth");
  gchar *data;
  gsize len;
  ASSERT_TRUE (g_file_get_contents (pth.c_str (), &data, &len, nullptr));
  ASSERT_TRUE (g_file_set_contents (pth.c_str (), data, (gssize) (len / 2), nullptr));
  g_free (data);
  Error err;
  EXPECT_FALSE (open (pth, err));
  EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER)) << err.message ();
  EXPECT_HAS (err.message (), "broken zip archive");
  EXPECT_HAS (err.message (), pth);
}

TEST_F (PthTest, WrongMagic)
{
  std::string p = path ("junk.pth");
  ASSERT_TRUE (g_file_set_contents (p.c_str (), "\x01\x02\x03\x04\xff\xff\xff\xff garbage", -1, nullptr));
  Error err;
  EXPECT_FALSE (open (p, err));
  EXPECT_HAS (err.message (), "not a weights file");
  EXPECT_EQ (nn_weights_detect_format (p.c_str (), nullptr), NN_WEIGHTS_FORMAT_UNKNOWN);

  ASSERT_TRUE (g_file_set_contents (p.c_str (), "abc", 3, nullptr));
  EXPECT_FALSE (open (p, err));
  EXPECT_HAS (err.message (), "shorter than 8 bytes");
}

TEST_F (PthTest, ZipWithoutDataPkl)
{
  std::string p = path ("other.zip");
  zip_t *z = zip_open (p.c_str (), ZIP_CREATE | ZIP_TRUNCATE, nullptr);
  zip_file_add (z, "readme.txt", zip_source_buffer (z, "hi", 2, 0), 0);
  ASSERT_EQ (zip_close (z), 0);
  Error err;
  EXPECT_FALSE (open (p, err));
  EXPECT_HAS (err.message (), "not a torch.save file");
}

TEST_F (PthTest, LegacyFormatIsNamed)
{
  // torch < 1.6 pickles the magic number 0x1950a86a20f9469cfc6c first.
  std::string p = path ("old.pth");
  std::string data ("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15);
  ASSERT_TRUE (g_file_set_contents (p.c_str (), data.data (), (gssize) data.size (), nullptr));
  EXPECT_EQ (nn_weights_detect_format (p.c_str (), nullptr), NN_WEIGHTS_FORMAT_PTH_LEGACY);
  Error err;
  EXPECT_FALSE (open (p, err));
  EXPECT_HAS (err.message (), "legacy PyTorch format");
  EXPECT_HAS (err.message (), "torch >= 1.6");
}

TEST_F (PthTest, SafetensorsHeaderLooksLikeLegacyMagic)
{
  // A 0x580-byte header's length starts 0x80 0x05, as a protocol 5 pickle
  // does; the JSON at byte 8 makes it safetensors.
  std::string json = "{\"__metadata__\":{\"pad\":\"" + std::string (0x580 - 27, 'x') + "\"}}";
  ASSERT_EQ (json.size (), 0x580u);
  std::string data ("\x80\x05\0\0\0\0\0\0", 8);
  data += json;
  std::string p = path ("w.safetensors");
  ASSERT_TRUE (g_file_set_contents (p.c_str (), data.data (), (gssize) data.size (), nullptr));
  EXPECT_EQ (nn_weights_detect_format (p.c_str (), nullptr), NN_WEIGHTS_FORMAT_SAFETENSORS);
  Error err;
  Safetensors st = open (p, err);
  EXPECT_TRUE (st) << err.message ();
}

TEST_F (PthTest, UnknownOpcode)
{
  Pickle p;
  p.op ('\xff');
  std::string msg = refused (p.b);
  EXPECT_HAS (msg, "unknown opcode 0xff");
  EXPECT_HAS (msg, "at byte 2");
}

TEST_F (PthTest, TruncatedPickle)
{
  Pickle p;
  p.ordered_dict ().op ('(').str ("w");
  EXPECT_HAS (refused (p.b), "without STOP");
  Pickle q;
  q.raw (std::string ("X\xff\x00\x00\x00" "abc", 8));
  EXPECT_HAS (refused (q.b), "runs past the end");
  Pickle r;
  r.op ('u').stop ();
  EXPECT_HAS (refused (r.b), "no MARK");
}

TEST_F (PthTest, StorageOutOfRange)
{
  Pickle p;
  p.ordered_dict ().op ('(').str ("w").tensor ("FloatStorage", "0", 6, 2, { 2, 3 }, { 3, 1 });
  p.op ('u').stop ();
  std::string pth = write_pth ("oor.pth", p.b, { { "0", f32 ({ 1, 2, 3, 4, 5, 6 }) } });
  Error err;
  EXPECT_FALSE (open (pth, err));
  EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_OFFSETS)) << err.message ();
  EXPECT_HAS (err.message (), "tensor 'w' reaches element 7 of storage '0', which holds 6");
}

TEST_F (PthTest, StorageMemberShorterThanDeclared)
{
  Pickle p;
  p.ordered_dict ().op ('(').str ("w").tensor ("FloatStorage", "0", 6, 0, { 6 }, { 1 });
  p.op ('u').stop ();
  std::string pth = write_pth ("short.pth", p.b, { { "0", f32 ({ 1, 2 }) } });
  Error err;
  EXPECT_FALSE (open (pth, err));
  EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_OFFSETS)) << err.message ();
  EXPECT_HAS (err.message (), "holds 8 bytes, expected at least 24");

  std::string missing = write_pth ("missing.pth", p.b, {});
  EXPECT_FALSE (open (missing, err));
  EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_NOT_FOUND)) << err.message ();
  EXPECT_HAS (err.message (), "archive/data/0");
}

TEST_F (PthTest, BadStrideAndSize)
{
  Pickle p;
  p.ordered_dict ().op ('(').str ("w").tensor ("FloatStorage", "0", 6, 0, { 2, 3 }, { -3, 1 });
  p.op ('u').stop ();
  std::string pth = write_pth ("stride.pth", p.b, { { "0", f32 ({ 1, 2, 3, 4, 5, 6 }) } });
  Error err;
  EXPECT_FALSE (open (pth, err));
  EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_SHAPE)) << err.message ();
  EXPECT_HAS (err.message (), "tensor 'w': dimension 0 has size 2 and stride -3");

  Pickle q; // stride overflow
  q.ordered_dict ().op ('(').str ("w").tensor ("FloatStorage", "0", 6, 0, { 65536, 65536, 65536 },
                                               { 2147483647, 2147483647, 2147483647 });
  q.op ('u').stop ();
  pth = write_pth ("huge.pth", q.b, { { "0", f32 ({ 1, 2, 3, 4, 5, 6 }) } });
  EXPECT_FALSE (open (pth, err));
  EXPECT_HAS (err.message (), "tensor 'w'");

  Pickle r; // size and stride of different lengths
  r.ordered_dict ().op ('(').str ("w").tensor ("FloatStorage", "0", 6, 0, { 2, 3 }, { 1 });
  r.op ('u').stop ();
  pth = write_pth ("rank.pth", r.b, { { "0", f32 ({ 1, 2, 3, 4, 5, 6 }) } });
  EXPECT_FALSE (open (pth, err));
  EXPECT_HAS (err.message (), "stride tuple of the same length");
}

TEST_F (PthTest, StorageKeyCannotLeaveDataFolder)
{
  Pickle p;
  p.ordered_dict ().op ('(').str ("w").tensor ("FloatStorage", "../data.pkl", 1, 0, { 1 }, { 1 });
  p.op ('u').stop ();
  EXPECT_HAS (refused (p.b), "storage key is not a short alphanumeric name");
}

TEST_F (PthTest, NonTensorValueInStateDict)
{
  Pickle p;
  p.ordered_dict ().op ('(').str ("w").raw ("K\x01").op ('u').stop ();
  std::string pth = write_pth ("nt.pth", p.b, {});
  Error err;
  EXPECT_FALSE (open (pth, err));
  EXPECT_HAS (err.message (), "checkpoint dict, not a state_dict");
}

TEST_F (PthTest, TopLevelNotADict)
{
  Pickle p;
  p.op (']').stop ();
  std::string pth = write_pth ("list.pth", p.b, {});
  Error err;
  EXPECT_FALSE (open (pth, err));
  EXPECT_HAS (err.message (), "holds a list, expected a state_dict");
}

TEST_F (PthTest, SelfContainingListDoesNotLoop)
{
  Pickle p; // l = []; l.append(l); {'x': l}
  p.op ('}').op ('(').str ("x").op (']').raw ("q\x01").raw ("h\x01").op ('a').op ('u').stop ();
  std::string pth = write_pth ("cycle.pth", p.b, {});
  Error err;
  EXPECT_FALSE (open (pth, err));
  EXPECT_HAS (err.message (), "checkpoint dict, not a state_dict");
}

} // namespace
