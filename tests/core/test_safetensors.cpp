// core/safetensors.c: the reader's validation (one malformed file per
// kind), dtype conversion against independent references, zero-copy
// mapping, and the writer's format and atomicity.
#include "nn-test.h"

#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <glib/gstdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace nntest;

// Substring check with both strings in the failure message.
#define EXPECT_HAS(haystack, needle)                                        \
  do {                                                                      \
    std::string h_ = (haystack), n_ = (needle);                             \
    EXPECT_NE (h_.find (n_), std::string::npos)                             \
        << "expected \"" << n_ << "\" in: " << h_;                          \
  } while (0)

namespace {

NnTensor *make_tensor (NnDType dtype, NnShape s)
{
  return nn_tensor_new (dtype, &s);
}

// A fresh directory per test, removed with its files afterwards.
class TmpDir {
 public:
  TmpDir () { dir_ = g_dir_make_tmp ("nnkit-st-XXXXXX", nullptr); }
  ~TmpDir ()
  {
    chmod (dir_, 0755);
    for (const std::string &name : list ()) {
      std::string p = path (name);
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
  const char *c_str () const { return dir_; }

 private:
  char *dir_;
};

std::string le64 (uint64_t v)
{
  std::string s (8, '\0');
  for (int i = 0; i < 8; i++)
    s[i] = (char) ((v >> (8 * i)) & 0xff);
  return s;
}

// The safetensors layout: 8-byte length, header, data.
std::string st_bytes (const std::string &header, const std::string &data)
{
  return le64 (header.size ()) + header + data;
}

void write_bytes (const std::string &path, const std::string &bytes)
{
  std::ofstream f (path, std::ios::binary);
  f.write (bytes.data (), (std::streamsize) bytes.size ());
}

std::string read_bytes (const std::string &path)
{
  std::ifstream f (path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf ();
  return ss.str ();
}

template <typename T> std::string raw (const std::vector<T> &v)
{
  return std::string ((const char *) v.data (), v.size () * sizeof (T));
}

// Opens bytes written to "bad.safetensors"; expects a failure with @code
// whose message names the file and contains each of @parts.
void expect_open_fails (const std::string &bytes, int code,
                        std::initializer_list<const char *> parts)
{
  TmpDir tmp;
  std::string p = tmp.path ("bad.safetensors");
  write_bytes (p, bytes);
  Error err;
  Safetensors st (nn_safetensors_open (p.c_str (), err.out ()));
  EXPECT_EQ (st, nullptr);
  EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, code)) << err.message ();
  EXPECT_HAS (err.message (), p);
  for (const char *part : parts)
    EXPECT_HAS (err.message (), part);
}

const std::string kOneF32 = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";

// --- malformed files: one per validation kind ------------------------------

TEST (SafetensorsMalformed, EmptyFile)
{
  expect_open_fails ("", NN_WEIGHTS_ERROR_HEADER, { "0 bytes", "too short" });
}

TEST (SafetensorsMalformed, ShorterThanLengthField)
{
  expect_open_fails ("abc", NN_WEIGHTS_ERROR_HEADER, { "3 bytes", "8-byte header length" });
}

TEST (SafetensorsMalformed, HeaderLengthPastEndOfFile)
{
  std::string h = kOneF32;
  std::string bytes = le64 (h.size () + 100) + h + std::string (8, '\0');
  expect_open_fails (bytes, NN_WEIGHTS_ERROR_HEADER,
                     { "runs past the end of the file",
                       std::to_string (h.size () + 100).c_str () });
}

TEST (SafetensorsMalformed, HeaderLengthOverCap)
{
  uint64_t huge = (uint64_t) NN_SAFETENSORS_MAX_HEADER + 1;
  expect_open_fails (le64 (huge) + "{}", NN_WEIGHTS_ERROR_HEADER,
                     { std::to_string (huge).c_str (), "exceeds the limit" });
  // Even a length that would overflow 8 + n is caught, not wrapped.
  expect_open_fails (le64 (UINT64_MAX) + "{}", NN_WEIGHTS_ERROR_HEADER, { "exceeds the limit" });
}

TEST (SafetensorsMalformed, HeaderNotJson)
{
  expect_open_fails (st_bytes (R"({"w": {"dtype": "F32",)", ""), NN_WEIGHTS_ERROR_HEADER,
                     { "not valid JSON" });
  expect_open_fails (st_bytes ("", ""), NN_WEIGHTS_ERROR_HEADER, { "not UTF-8 JSON" });
}

TEST (SafetensorsMalformed, HeaderNotUtf8)
{
  expect_open_fails (st_bytes ("{\"\xff\xfe\":1}", ""), NN_WEIGHTS_ERROR_HEADER,
                     { "not UTF-8 JSON" });
  expect_open_fails (st_bytes (std::string ("{}\0 ", 4), ""), NN_WEIGHTS_ERROR_HEADER,
                     { "not UTF-8 JSON" });
}

TEST (SafetensorsMalformed, HeaderNotAnObject)
{
  expect_open_fails (st_bytes ("[1, 2, 3]", ""), NN_WEIGHTS_ERROR_HEADER,
                     { "header is array", "expected a JSON object" });
}

TEST (SafetensorsMalformed, EntryNotAnObjectOrIncomplete)
{
  expect_open_fails (st_bytes (R"({"w": [1]})", ""), NN_WEIGHTS_ERROR_HEADER,
                     { "tensor 'w'", "entry is a JSON array" });
  expect_open_fails (st_bytes (R"({"w": {"dtype":"F32","data_offsets":[0,0]}})", ""),
                     NN_WEIGHTS_ERROR_HEADER, { "tensor 'w'", "no 'shape'" });
}

TEST (SafetensorsMalformed, UnsupportedDtype)
{
  for (const char *dt : { "F8_E4M3", "f32", "U16", "C64" }) {
    std::string h = std::string (R"({"w":{"dtype":")") + dt +
                    R"(","shape":[2],"data_offsets":[0,8]}})";
    expect_open_fails (st_bytes (h, std::string (8, '\0')), NN_WEIGHTS_ERROR_DTYPE,
                       { "tensor 'w'", (std::string ("dtype '") + dt + "'").c_str (),
                         "F32, I64, F16, BF16, F64, I32, I8, U8 or BOOL" });
  }
  expect_open_fails (st_bytes (R"({"w":{"dtype":7,"shape":[],"data_offsets":[0,4]}})",
                               std::string (4, '\0')),
                     NN_WEIGHTS_ERROR_DTYPE, { "tensor 'w'", "dtype is a JSON number" });
}

TEST (SafetensorsMalformed, NegativeOrNonIntegerShape)
{
  expect_open_fails (st_bytes (R"({"w":{"dtype":"F32","shape":[2,-2],"data_offsets":[0,0]}})", ""),
                     NN_WEIGHTS_ERROR_SHAPE, { "tensor 'w'", "shape[1] is -2" });
  expect_open_fails (st_bytes (R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,0]}})", ""),
                     NN_WEIGHTS_ERROR_SHAPE, { "tensor 'w'", "shape[0] is 2.5" });
  expect_open_fails (st_bytes (R"({"w":{"dtype":"F32","shape":"2","data_offsets":[0,0]}})", ""),
                     NN_WEIGHTS_ERROR_SHAPE, { "tensor 'w'", "'shape' is a JSON string" });
}

TEST (SafetensorsMalformed, TooManyDimensions)
{
  expect_open_fails (st_bytes (R"({"w":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}})",
                               std::string (4, '\0')),
                     NN_WEIGHTS_ERROR_SHAPE, { "tensor 'w'", "9 dimensions", "at most 8" });
}

TEST (SafetensorsMalformed, ShapeProductOverflows)
{
  // 2^32 * 2^32 elements, and 2^62 elements of 4 bytes: both wrap 64 bits.
  expect_open_fails (st_bytes (R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", ""),
                     NN_WEIGHTS_ERROR_SHAPE, { "tensor 'w'", "overflows" });
  expect_open_fails (st_bytes (R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})", ""),
                     NN_WEIGHTS_ERROR_SHAPE, { "tensor 'w'", "overflows" });
}

TEST (SafetensorsMalformed, OffsetsOutOfBounds)
{
  expect_open_fails (st_bytes (kOneF32, std::string (4, '\0')), NN_WEIGHTS_ERROR_OFFSETS,
                     { "tensor 'w'", "[0, 8]", "run past the end of the data section", "4 bytes" });
}

TEST (SafetensorsMalformed, OffsetsMalformed)
{
  expect_open_fails (st_bytes (R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})",
                               std::string (8, '\0')),
                     NN_WEIGHTS_ERROR_OFFSETS, { "tensor 'w'", "begin after end" });
  expect_open_fails (st_bytes (R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8,9]}})",
                               std::string (8, '\0')),
                     NN_WEIGHTS_ERROR_OFFSETS, { "tensor 'w'", "expected [begin, end]" });
  expect_open_fails (st_bytes (R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})",
                               std::string (8, '\0')),
                     NN_WEIGHTS_ERROR_OFFSETS, { "tensor 'w'", "non-negative integers" });
}

TEST (SafetensorsMalformed, SizeInconsistentWithShape)
{
  expect_open_fails (st_bytes (R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,12]}})",
                               std::string (12, '\0')),
                     NN_WEIGHTS_ERROR_OFFSETS,
                     { "tensor 'w'", "hold 12 bytes", "shape [2, 3] of F32 needs 24" });
}

TEST (SafetensorsMalformed, Overlapping)
{
  std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                  R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  expect_open_fails (st_bytes (h, std::string (12, '\0')), NN_WEIGHTS_ERROR_OFFSETS,
                     { "tensor 'b'", "overlap tensor 'a' [0, 8]" });
}

TEST (SafetensorsMalformed, HoleBetweenTensors)
{
  std::string h = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                  R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
  expect_open_fails (st_bytes (h, std::string (12, '\0')), NN_WEIGHTS_ERROR_OFFSETS,
                     { "tensor 'b'", "hole", "bytes [4, 8)" });
}

TEST (SafetensorsMalformed, DataNotFullyCovered)
{
  expect_open_fails (st_bytes (kOneF32, std::string (12, '\0')), NN_WEIGHTS_ERROR_OFFSETS,
                     { "data section is 12 bytes", "cover 8", "[8, 12)" });
}

TEST (SafetensorsMalformed, MetadataNotStrings)
{
  expect_open_fails (st_bytes (R"({"__metadata__":{"ok":"yes","n":3}})", ""),
                     NN_WEIGHTS_ERROR_HEADER, { "'__metadata__' entry 'n'", "expected a string" });
  expect_open_fails (st_bytes (R"({"__metadata__":["x"]})", ""), NN_WEIGHTS_ERROR_HEADER,
                     { "'__metadata__' is a JSON array" });
}

TEST (SafetensorsMalformed, TruncatedFile)
{
  TmpDir tmp;
  std::string good = tmp.path ("good.safetensors");
  Tensor t (make_tensor (NN_DTYPE_F32, shape ({ 4, 4 })));
  const char *names[] = { "layer.weight" };
  NnTensor *ts[] = { t.get () };
  Error err;
  ASSERT_TRUE (nn_safetensors_write (good.c_str (), names, ts, 1, nullptr, err.out ()))
      << err.message ();
  std::string bytes = read_bytes (good);
  expect_open_fails (bytes.substr (0, bytes.size () - 10), NN_WEIGHTS_ERROR_OFFSETS,
                     { "tensor 'layer.weight'", "truncated" });
}

TEST (SafetensorsMalformed, MissingOrNotARegularFile)
{
  TmpDir tmp;
  std::string p = tmp.path ("absent.safetensors");
  Error err;
  EXPECT_EQ (nn_safetensors_open (p.c_str (), err.out ()), nullptr);
  EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO));
  EXPECT_HAS (err.message (), p);
  EXPECT_HAS (err.message (), "No such file");
  EXPECT_EQ (nn_safetensors_open (tmp.c_str (), err.out ()), nullptr);
  EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO));
  EXPECT_HAS (err.message (), "not a regular file");
}

// --- reading ----------------------------------------------------------------

struct Opened {
  TmpDir tmp;
  std::string path;
  Safetensors st;
};

std::unique_ptr<Opened> open_bytes (const std::string &bytes)
{
  auto o = std::make_unique<Opened> ();
  o->path = o->tmp.path ("t.safetensors");
  write_bytes (o->path, bytes);
  Error err;
  o->st.reset (nn_safetensors_open (o->path.c_str (), err.out ()));
  EXPECT_NE (o->st, nullptr) << err.message ();
  return o;
}

// A file whose one F32 tensor "w" (@v) starts at an address not aligned
// for float: the header is padded to leave the data at offset 1 mod 4.
std::unique_ptr<Opened> open_unaligned (const std::vector<float> &v)
{
  std::string h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string (v.size ())
                  + "],\"data_offsets\":[0," + std::to_string (4 * v.size ()) + "]}}";
  while ((8 + h.size ()) % 4 != 1)
    h += ' ';
  return open_bytes (st_bytes (h, raw (v)));
}

// Reference IEEE decoding from the bit fields, in double arithmetic.
double decode_float_bits (uint32_t bits, int exp_bits, int mant_bits)
{
  uint32_t sign = bits >> (exp_bits + mant_bits);
  uint32_t exp = (bits >> mant_bits) & ((1u << exp_bits) - 1);
  uint32_t mant = bits & ((1u << mant_bits) - 1);
  int bias = (1 << (exp_bits - 1)) - 1;
  double v;
  if (exp == 0)
    v = std::ldexp ((double) mant, 1 - bias - mant_bits);
  else if (exp == (1u << exp_bits) - 1)
    v = mant ? NAN : INFINITY;
  else
    v = std::ldexp (1.0 + std::ldexp ((double) mant, -mant_bits), (int) exp - bias);
  return sign ? -v : v;
}

void check_all_16bit (const char *dtype, int exp_bits, int mant_bits)
{
  std::vector<uint16_t> all (65536);
  for (uint32_t i = 0; i < 65536; i++)
    all[i] = (uint16_t) i;
  std::string h = std::string (R"({"x":{"dtype":")") + dtype +
                  R"(","shape":[256,256],"data_offsets":[0,131072]}})";
  auto o = open_bytes (st_bytes (h, raw (all)));
  ASSERT_NE (o->st, nullptr);
  Error err;
  Tensor t (nn_safetensors_get (o->st.get (), "x", NN_DTYPE_F32, err.out ()));
  ASSERT_NE (t, nullptr) << err.message ();
  EXPECT_EQ (t->dtype, NN_DTYPE_F32);
  NnShape want = shape ({ 256, 256 });
  EXPECT_TRUE (nn_shape_equal (&t->shape, &want));
  const float *f = nn_tensor_f32 (t.get ());
  int bad = 0;
  for (uint32_t i = 0; i < 65536; i++) {
    double want = decode_float_bits (i, exp_bits, mant_bits);
    bool ok;
    if (std::isnan (want))
      ok = std::isnan (f[i]) && std::signbit (f[i]) == (bool) (i & 0x8000);
    else
      ok = f[i] == (float) want && (double) f[i] == want &&
           std::signbit (f[i]) == std::signbit (want);
    if (!ok && bad++ < 5)
      ADD_FAILURE () << dtype << " bits 0x" << std::hex << i << ": got " << f[i]
                     << ", expected " << want;
  }
  EXPECT_EQ (bad, 0);
}

TEST (SafetensorsRead, F16ConvertsEveryValueExactly)
{
  check_all_16bit ("F16", 5, 10);
}

TEST (SafetensorsRead, BF16ConvertsEveryValueExactly)
{
  check_all_16bit ("BF16", 8, 7);
}

TEST (SafetensorsRead, F64ConvertsToNearestFloat)
{
  std::vector<double> v = { 0.1, -1e-3, 3.0, 1e300, -1e-320, 123456789.123 };
  std::string h = R"({"d":{"dtype":"F64","shape":[6],"data_offsets":[0,48]}})";
  auto o = open_bytes (st_bytes (h, raw (v)));
  Error err;
  Tensor t (nn_safetensors_get (o->st.get (), "d", NN_DTYPE_F32, err.out ()));
  ASSERT_NE (t, nullptr) << err.message ();
  const float *f = nn_tensor_f32 (t.get ());
  EXPECT_EQ (f[0], 0.1f);
  EXPECT_EQ (f[1], -1e-3f);
  EXPECT_EQ (f[2], 3.0f);
  EXPECT_TRUE (std::isinf (f[3]) && f[3] > 0);
  EXPECT_EQ (f[4], 0.0f);
  EXPECT_TRUE (std::signbit (f[4]));
  EXPECT_EQ (f[5], 123456792.0f);  // nearest float to 123456789.123
}

TEST (SafetensorsRead, I64AsI64OrF32)
{
  std::vector<int64_t> v = { INT64_MIN, -1, 0, 7, INT64_MAX, (int64_t) 1 << 40 };
  std::string h = R"({"n":{"dtype":"I64","shape":[2,3],"data_offsets":[0,48]}})";
  auto o = open_bytes (st_bytes (h, raw (v)));
  Error err;
  Tensor i (nn_safetensors_get (o->st.get (), "n", NN_DTYPE_I64, err.out ()));
  ASSERT_NE (i, nullptr) << err.message ();
  EXPECT_EQ (i->dtype, NN_DTYPE_I64);
  EXPECT_EQ (std::memcmp (i->data, v.data (), 48), 0);
  Tensor f (nn_safetensors_get (o->st.get (), "n", NN_DTYPE_F32, err.out ()));
  ASSERT_NE (f, nullptr) << err.message ();
  for (int k = 0; k < 6; k++)
    EXPECT_EQ (nn_tensor_f32 (f.get ())[k], (float) v[k]) << k;
}

TEST (SafetensorsRead, FloatAsI64IsRefused)
{
  std::string h = R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                  R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  auto o = open_bytes (st_bytes (h, std::string (8, '\0')));
  for (const char *name : { "w", "a" }) {
    Error err;
    EXPECT_EQ (nn_safetensors_get (o->st.get (), name, NN_DTYPE_I64, err.out ()), nullptr);
    EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_DTYPE));
    EXPECT_HAS (err.message (), o->path);
    EXPECT_HAS (err.message (), std::string ("tensor '") + name + "'");
    EXPECT_HAS (err.message (), "I64 tensor is expected");
  }
}

// Every ABI 2 dtype is accepted in storage: read as stored (zero-copy when
// aligned), or converted with PyTorch's .to() rules where the module's
// tensor has another dtype.
TEST (SafetensorsRead, AllNineDtypesInStorage)
{
  std::vector<int32_t> i32 = { -5, 0, 70000 };
  std::vector<int8_t> i8 = { -128, 1, 127, 0 };
  std::vector<uint8_t> u8 = { 0, 200, 255, 1 };
  std::vector<uint8_t> bo = { 1, 0, 1, 0 };
  std::vector<double> f64 = { 0.5, -1.25 };
  std::string h = R"({"a":{"dtype":"I32","shape":[3],"data_offsets":[0,12]},)"
                  R"("b":{"dtype":"I8","shape":[4],"data_offsets":[12,16]},)"
                  R"("c":{"dtype":"U8","shape":[4],"data_offsets":[16,20]},)"
                  R"("d":{"dtype":"BOOL","shape":[4],"data_offsets":[20,24]},)"
                  R"("e":{"dtype":"F64","shape":[2],"data_offsets":[24,40]}})";
  auto o = open_bytes (st_bytes (h, raw (i32) + raw (i8) + raw (u8) + raw (bo) + raw (f64)));
  Error err;
  EXPECT_STREQ (nn_safetensors_get_info (o->st.get (), "d", nullptr), "BOOL");
  Tensor a (nn_safetensors_get (o->st.get (), "a", NN_DTYPE_I32, err.out ()));
  ASSERT_NE (a, nullptr) << err.message ();
  EXPECT_EQ (std::memcmp (a->data, i32.data (), 12), 0);
  Tensor a64 (nn_safetensors_get (o->st.get (), "a", NN_DTYPE_I64, err.out ()));
  ASSERT_NE (a64, nullptr) << err.message ();
  EXPECT_EQ (nn_tensor_i64 (a64.get ())[2], 70000);
  Tensor b (nn_safetensors_get (o->st.get (), "b", NN_DTYPE_F32, err.out ()));
  ASSERT_NE (b, nullptr) << err.message ();
  EXPECT_EQ (nn_tensor_f32 (b.get ())[0], -128.0f);
  Tensor c (nn_safetensors_get (o->st.get (), "c", NN_DTYPE_U8, err.out ()));
  ASSERT_NE (c, nullptr) << err.message ();
  EXPECT_EQ (((uint8_t *) c->data)[1], 200);
  Tensor d (nn_safetensors_get (o->st.get (), "d", NN_DTYPE_BOOL, err.out ()));
  ASSERT_NE (d, nullptr) << err.message ();
  EXPECT_EQ (std::memcmp (d->data, bo.data (), 4), 0);
  Tensor e (nn_safetensors_get (o->st.get (), "e", NN_DTYPE_F16, err.out ()));
  ASSERT_NE (e, nullptr) << err.message ();
  EXPECT_EQ (((uint16_t *) e->data)[0], 0x3800); // 0.5 in IEEE half
  EXPECT_EQ (((uint16_t *) e->data)[1], 0xbd00); // -1.25
  // Floats are not read into integer or bool tensors.
  EXPECT_EQ (nn_safetensors_get (o->st.get (), "e", NN_DTYPE_BOOL, err.out ()), nullptr);
  EXPECT_HAS (err.message (), "is F64, but a BOOL tensor is expected");
  // A round trip writes each dtype under its own name.
  TmpDir tmp;
  std::string out = tmp.path ("all.safetensors");
  const char *names[] = { "a", "b", "c", "d", "e" };
  NnTensor *ts[] = { a.get (), nullptr, c.get (), d.get (), e.get () };
  Tensor b8 (nn_safetensors_get (o->st.get (), "b", NN_DTYPE_I8, err.out ()));
  ts[1] = b8.get ();
  ASSERT_TRUE (nn_safetensors_write (out.c_str (), names, ts, 5, nullptr, err.out ())) << err.message ();
  Safetensors back (nn_safetensors_open (out.c_str (), err.out ()));
  ASSERT_TRUE (back) << err.message ();
  const char *want[] = { "I32", "I8", "U8", "BOOL", "F16" };
  for (int i = 0; i < 5; i++)
    EXPECT_STREQ (nn_safetensors_get_info (back.get (), names[i], nullptr), want[i]);
  // A meta tensor has no data to write.
  NnShape ms = shape ({2});
  Tensor meta (nn_tensor_new_meta (NN_DTYPE_F32, &ms));
  NnTensor *mt[] = { meta.get () };
  const char *mn[] = { "m" };
  EXPECT_FALSE (nn_safetensors_write (tmp.path ("m.safetensors").c_str (), mn, mt, 1, nullptr, err.out ()));
  EXPECT_HAS (err.message (), "tensor 'm' is a meta tensor");
}

TEST (SafetensorsRead, UnknownNameIsNotFound)
{
  auto o = open_bytes (st_bytes (kOneF32, std::string (8, '\0')));
  Error err;
  EXPECT_EQ (nn_safetensors_get (o->st.get (), "fc.weight", NN_DTYPE_F32, err.out ()), nullptr);
  EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_NOT_FOUND));
  EXPECT_HAS (err.message (), "no tensor 'fc.weight'");
  EXPECT_HAS (err.message (), o->path);
  EXPECT_EQ (nn_safetensors_get_info (o->st.get (), "fc.weight", nullptr), nullptr);
}

TEST (SafetensorsRead, InfoOrderAndMetadata)
{
  // Header order differs from offset order; scalars and empty tensors.
  std::string h = R"({"__metadata__":{"format":"pt","note":"caf\u00e9"},)"
                  R"("z":{"dtype":"F32","shape":[],"data_offsets":[8,12]},)"
                  R"("empty":{"dtype":"F32","shape":[0,3],"data_offsets":[12,12]},)"
                  R"("a":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]}})";
  std::vector<float> z = { 2.5f };
  auto o = open_bytes (st_bytes (h, std::string (8, '\0') + raw (z)));
  NnSafetensors *st = o->st.get ();
  ASSERT_EQ (nn_safetensors_n_tensors (st), 3u);
  EXPECT_STREQ (nn_safetensors_name_at (st, 0), "a");
  EXPECT_STREQ (nn_safetensors_name_at (st, 1), "z");
  EXPECT_STREQ (nn_safetensors_name_at (st, 2), "empty");
  NnShape s;
  EXPECT_STREQ (nn_safetensors_get_info (st, "a", &s), "BF16");
  EXPECT_EQ (take (nn_shape_to_string (&s)), "[2, 2]");
  EXPECT_STREQ (nn_safetensors_get_info (st, "z", &s), "F32");
  EXPECT_EQ (s.ndim, 0u);
  EXPECT_STREQ (nn_safetensors_get_metadata (st, "format"), "pt");
  EXPECT_STREQ (nn_safetensors_get_metadata (st, "note"), "caf\xc3\xa9");
  EXPECT_EQ (nn_safetensors_get_metadata (st, "missing"), nullptr);

  Error err;
  Tensor zt (nn_safetensors_get (st, "z", NN_DTYPE_F32, err.out ()));
  ASSERT_NE (zt, nullptr) << err.message ();
  EXPECT_EQ (nn_tensor_f32 (zt.get ())[0], 2.5f);
  Tensor e (nn_safetensors_get (st, "empty", NN_DTYPE_F32, err.out ()));
  ASSERT_NE (e, nullptr) << err.message ();
  EXPECT_EQ (nn_tensor_numel (e.get ()), 0);
}

// The pathname of the mapping in /proc/self/maps that contains @p.
std::string mapping_of (const void *p)
{
  std::ifstream maps ("/proc/self/maps");
  std::string line;
  uintptr_t a = (uintptr_t) p;
  while (std::getline (maps, line)) {
    unsigned long lo, hi;
    if (sscanf (line.c_str (), "%lx-%lx", &lo, &hi) != 2 || a < lo || a >= hi)
      continue;
    size_t slash = line.find ('/');
    return slash == std::string::npos ? "" : line.substr (slash);
  }
  return "";
}

TEST (SafetensorsRead, AlignedF32IsZeroCopyAndKeepsTheMapping)
{
  std::vector<float> v = { 1.f, -2.f, 3.5f, 1e-20f };
  std::string h = R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
  while ((8 + h.size ()) % 8)
    h += ' ';
  auto o = open_bytes (st_bytes (h, raw (v)));
  Error err;
  Tensor t (nn_safetensors_get (o->st.get (), "w", NN_DTYPE_F32, err.out ()));
  ASSERT_NE (t, nullptr) << err.message ();
  EXPECT_TRUE (nn_tensor_is_read_only (t.get ()));
  char *real = realpath (o->path.c_str (), nullptr);
  EXPECT_EQ (mapping_of (t->data), std::string (real));
  free (real);
  // The tensor outlives the reader: its reference keeps the file mapped.
  std::string path_copy = o->path;
  o->st.reset ();
  EXPECT_EQ (std::memcmp (t->data, v.data (), 16), 0);
  EXPECT_NE (mapping_of (t->data), "");
  // A stray write through the read-only flag must not crash nor reach
  // the file (the mapping is private).
  std::string on_disk = read_bytes (path_copy);
  ((float *) t->data)[0] = 42.f;
  EXPECT_EQ (read_bytes (path_copy), on_disk);
  const void *data = t->data;
  t.reset ();
  EXPECT_EQ (mapping_of (data), "");  // last reference gone: unmapped
}

// Resident kB of the mapping holding @p (its smaps "Rss:"), -1 if none.
long resident_kb_of (const void *p)
{
  std::ifstream smaps ("/proc/self/smaps");
  std::string line;
  uintptr_t a = (uintptr_t) p;
  bool in = false;
  while (std::getline (smaps, line)) {
    unsigned long lo, hi;
    if (sscanf (line.c_str (), "%lx-%lx ", &lo, &hi) == 2
        && line.find (':') > line.find (' '))
      in = a >= lo && a < hi;
    long kb;
    if (in && sscanf (line.c_str (), "Rss: %ld kB", &kb) == 1)
      return kb;
  }
  return -1;
}

// nn_tensor_release_pages(): a tensor borrowed from the file mapping
// leaves the resident set and reads back the file's values; a reshaped
// view releases its parent's pages the same way.
TEST (SafetensorsRead, ReleasedPagesLeaveTheProcessAndReadBackTheSame)
{
  const size_t n = 1 << 20;  // 4 MiB of floats
  std::vector<float> v (n);
  for (size_t i = 0; i < n; i++)
    v[i] = (float) i * 0.5f - 7.f;
  std::string h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1024,1024],"
                  "\"data_offsets\":[0," + std::to_string (n * 4) + "]}}";
  while ((8 + h.size ()) % 8)
    h += ' ';
  auto o = open_bytes (st_bytes (h, raw (v)));
  Error err;
  Tensor t (nn_safetensors_get (o->st.get (), "w", NN_DTYPE_F32, err.out ()));
  ASSERT_NE (t, nullptr) << err.message ();
  ASSERT_TRUE (nn_tensor_is_read_only (t.get ()));
  ASSERT_EQ (std::memcmp (t->data, v.data (), n * 4), 0);  // all resident
  EXPECT_GE (resident_kb_of (t->data), 4000);
  nn_tensor_release_pages (t.get ());
  // Only the page shared with the header may stay.
  EXPECT_LE (resident_kb_of (t->data), 8);
  EXPECT_EQ (std::memcmp (t->data, v.data (), n * 4), 0);
  EXPECT_GE (resident_kb_of (t->data), 4000);

  NnShape flat = { 1, { (gint64) n } };
  Tensor view (nn_tensor_reshape (t.get (), &flat));
  ASSERT_NE (view, nullptr);
  nn_tensor_release_pages (view.get ());
  EXPECT_LE (resident_kb_of (t->data), 8);
  EXPECT_EQ (std::memcmp (view->data, v.data (), n * 4), 0);
}

// Anything but a read-only file mapping keeps its pages and values: an
// owned tensor, a converted (unaligned) one, a borrowed heap buffer.
TEST (SafetensorsRead, ReleasePagesLeavesOtherStorageAlone)
{
  NnShape s = { 1, { 1 << 18 } };
  Tensor owned (nn_tensor_new (NN_DTYPE_F32, &s));
  for (gint64 i = 0; i < s.dims[0]; i++)
    nn_tensor_f32 (owned.get ())[i] = (float) i;
  nn_tensor_release_pages (owned.get ());
  for (gint64 i = 0; i < s.dims[0]; i += 4099)
    ASSERT_EQ (nn_tensor_f32 (owned.get ())[i], (float) i);

  std::vector<float> heap (1 << 18, 3.25f);
  Tensor borrowed (nn_tensor_new_borrowed (NN_DTYPE_F32, &s, heap.data (), TRUE,
                                           nullptr, nullptr));
  nn_tensor_release_pages (borrowed.get ());
  for (size_t i = 0; i < heap.size (); i += 4099)
    ASSERT_EQ (heap[i], 3.25f);

  std::vector<float> v = { 1.f, -2.f, 3.5f };
  auto o = open_unaligned (v);
  Error err;
  Tensor copied (nn_safetensors_get (o->st.get (), "w", NN_DTYPE_F32, err.out ()));
  ASSERT_NE (copied, nullptr) << err.message ();
  nn_tensor_release_pages (copied.get ());
  EXPECT_EQ (std::memcmp (copied->data, v.data (), 12), 0);
}

// nn_tensor_get_file_key(): the file's identity (from stat(2), here) and
// the values' offset in it; views share it, other storage has none, and
// rewriting the file changes it.
TEST (SafetensorsRead, FileKeyNamesTheFileAndTheOffset)
{
  std::vector<float> v = { 1.f, 2.f, 3.f, 4.f, 5.f, 6.f };
  std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                  R"("b":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]}})";
  while ((8 + h.size ()) % 8)
    h += ' ';
  auto o = open_bytes (st_bytes (h, raw (v)));
  Error err;
  Tensor a (nn_safetensors_get (o->st.get (), "a", NN_DTYPE_F32, err.out ()));
  Tensor b (nn_safetensors_get (o->st.get (), "b", NN_DTYPE_F32, err.out ()));
  ASSERT_TRUE (a && b) << err.message ();
  guint64 ka[6], kb[6], kv[6];
  ASSERT_TRUE (nn_tensor_get_file_key (a.get (), ka));
  ASSERT_TRUE (nn_tensor_get_file_key (b.get (), kb));
  struct stat sb;
  ASSERT_EQ (stat (o->path.c_str (), &sb), 0);
  EXPECT_EQ (ka[0], (guint64) sb.st_dev);
  EXPECT_EQ (ka[1], (guint64) sb.st_ino);
  EXPECT_EQ (ka[2], (guint64) sb.st_size);
  EXPECT_EQ (ka[3], (guint64) sb.st_mtim.tv_sec * 1000000000u + sb.st_mtim.tv_nsec);
  EXPECT_EQ (ka[5], 8 + h.size ());
  EXPECT_EQ (kb[5], 8 + h.size () + 8);
  for (int i = 0; i < 5; i++)
    EXPECT_EQ (ka[i], kb[i]);
  NnShape flat = { 1, { 4 } };
  Tensor view (nn_tensor_reshape (b.get (), &flat));
  ASSERT_TRUE (nn_tensor_get_file_key (view.get (), kv));
  EXPECT_EQ (std::memcmp (kv, kb, sizeof kb), 0);

  NnShape s2 = { 1, { 2 } };
  Tensor owned (nn_tensor_new (NN_DTYPE_F32, &s2));
  EXPECT_FALSE (nn_tensor_get_file_key (owned.get (), kv));
  Tensor copied (nn_safetensors_get (o->st.get (), "a", NN_DTYPE_F64, err.out ()));
  ASSERT_TRUE (copied) << err.message ();
  EXPECT_FALSE (nn_tensor_get_file_key (copied.get (), kv));

  // The same bytes written again in place: a new modification time.
  std::string path = o->path, bytes = read_bytes (path);
  g_usleep (2000);
  write_bytes (path, bytes);
  Safetensors again (nn_safetensors_open (path.c_str (), err.out ()));
  ASSERT_TRUE (again) << err.message ();
  Tensor a2 (nn_safetensors_get (again.get (), "a", NN_DTYPE_F32, err.out ()));
  ASSERT_TRUE (a2 && nn_tensor_get_file_key (a2.get (), kv));
  EXPECT_NE (std::memcmp (kv, ka, sizeof ka), 0);
}

TEST (SafetensorsRead, ReadOnlyFileOpens)
{
  std::vector<float> v = { 1.f, 2.f };
  auto o = open_bytes (st_bytes (kOneF32 + "      ", raw (v)));
  o->st.reset ();
  ASSERT_EQ (chmod (o->path.c_str (), 0444), 0);
  Error err;
  Safetensors st (nn_safetensors_open (o->path.c_str (), err.out ()));
  ASSERT_NE (st, nullptr) << err.message ();
  Tensor t (nn_safetensors_get (st.get (), "w", NN_DTYPE_F32, err.out ()));
  ASSERT_NE (t, nullptr) << err.message ();
  EXPECT_EQ (nn_tensor_f32 (t.get ())[1], 2.f);
}

TEST (SafetensorsRead, UnalignedF32IsCopied)
{
  std::vector<float> v = { 1.f, -2.f, 3.5f };
  auto o = open_unaligned (v);
  Error err;
  Tensor t (nn_safetensors_get (o->st.get (), "w", NN_DTYPE_F32, err.out ()));
  ASSERT_NE (t, nullptr) << err.message ();
  EXPECT_FALSE (nn_tensor_is_read_only (t.get ()));
  EXPECT_EQ ((uintptr_t) t->data % alignof (float), 0u);
  EXPECT_EQ (std::memcmp (t->data, v.data (), 12), 0);
  EXPECT_EQ (mapping_of (t->data).find (o->path), std::string::npos);
}

// --- writing ----------------------------------------------------------------

TEST (SafetensorsWrite, MatchesTheReferenceLayout)
{
  // The byte layout the safetensors reference implementation produces for
  // {"attn.0": float32 [1, 2, 3] = 0..5}: compact JSON padded with spaces
  // to 64 bytes, then the data.
  TmpDir tmp;
  std::string p = tmp.path ("ref.safetensors");
  Tensor t (make_tensor (NN_DTYPE_F32, shape ({ 1, 2, 3 })));
  for (int i = 0; i < 6; i++)
    nn_tensor_f32 (t.get ())[i] = (float) i;
  const char *names[] = { "attn.0" };
  NnTensor *ts[] = { t.get () };
  Error err;
  ASSERT_TRUE (nn_safetensors_write (p.c_str (), names, ts, 1, nullptr, err.out ()))
      << err.message ();
  std::string header = R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
  header += std::string (64 - header.size (), ' ');
  std::vector<float> data = { 0, 1, 2, 3, 4, 5 };
  EXPECT_EQ (read_bytes (p), le64 (64) + header + raw (data));
}

TEST (SafetensorsWrite, RoundTripKeepsOrderDtypesAndMetadata)
{
  TmpDir tmp;
  std::string p = tmp.path ("rt.safetensors");
  Tensor w (make_tensor (NN_DTYPE_F32, shape ({ 3, 5 })));
  for (int i = 0; i < 15; i++)
    nn_tensor_f32 (w.get ())[i] = std::sin ((float) i) * 1e3f;
  Tensor n (make_tensor (NN_DTYPE_I64, shape ({})));
  *(int64_t *) n->data = (int64_t) 1 << 53;
  Tensor b (make_tensor (NN_DTYPE_F32, shape ({ 1 })));
  nn_tensor_f32 (b.get ())[0] = -0.0f;
  const char *names[] = { "z.weight", "bn.num_batches_tracked", "a\"q\\uote\n" };
  NnTensor *ts[] = { w.get (), n.get (), b.get () };
  GHashTable *md = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (md, (gpointer) "format", (gpointer) "pt");
  g_hash_table_insert (md, (gpointer) "desc", (gpointer) "{\"x\": [1, 2]}\n\t");
  Error err;
  ASSERT_TRUE (nn_safetensors_write (p.c_str (), names, ts, 3, md, err.out ())) << err.message ();
  g_hash_table_unref (md);

  std::string bytes = read_bytes (p);
  uint64_t hlen;
  std::memcpy (&hlen, bytes.data (), 8);
  EXPECT_EQ (hlen % 8, 0u);
  EXPECT_EQ (bytes.substr (8, 15), "{\"__metadata__\"");

  Safetensors st (nn_safetensors_open (p.c_str (), err.out ()));
  ASSERT_NE (st, nullptr) << err.message ();
  ASSERT_EQ (nn_safetensors_n_tensors (st.get ()), 3u);
  for (guint i = 0; i < 3; i++)
    EXPECT_STREQ (nn_safetensors_name_at (st.get (), i), names[i]);
  EXPECT_STREQ (nn_safetensors_get_metadata (st.get (), "desc"), "{\"x\": [1, 2]}\n\t");
  EXPECT_STREQ (nn_safetensors_get_metadata (st.get (), "format"), "pt");
  EXPECT_STREQ (nn_safetensors_get_info (st.get (), names[1], nullptr), "I64");
  for (guint i = 0; i < 3; i++) {
    Tensor r (nn_safetensors_get (st.get (), names[i], ts[i]->dtype, err.out ()));
    ASSERT_NE (r, nullptr) << err.message ();
    EXPECT_TRUE (nn_shape_equal (&r->shape, &ts[i]->shape));
    EXPECT_EQ (std::memcmp (r->data, ts[i]->data, nn_tensor_nbytes (ts[i])), 0) << names[i];
  }
}

TEST (SafetensorsWrite, EmptyFileIsValid)
{
  TmpDir tmp;
  std::string p = tmp.path ("empty.safetensors");
  Error err;
  ASSERT_TRUE (nn_safetensors_write (p.c_str (), nullptr, nullptr, 0, nullptr, err.out ()));
  EXPECT_EQ (read_bytes (p), le64 (8) + "{}      ");
  Safetensors st (nn_safetensors_open (p.c_str (), err.out ()));
  ASSERT_NE (st, nullptr) << err.message ();
  EXPECT_EQ (nn_safetensors_n_tensors (st.get ()), 0u);
}

TEST (SafetensorsWrite, BadNamesAreRefusedBeforeWriting)
{
  TmpDir tmp;
  std::string p = tmp.path ("x.safetensors");
  Tensor t (make_tensor (NN_DTYPE_F32, shape ({ 1 })));
  NnTensor *ts[] = { t.get (), t.get () };
  const char *dup[] = { "a", "a" };
  Error err;
  EXPECT_FALSE (nn_safetensors_write (p.c_str (), dup, ts, 2, nullptr, err.out ()));
  EXPECT_HAS (err.message (), "tensor name 'a' is given twice");
  EXPECT_HAS (err.message (), p);
  const char *reserved[] = { "__metadata__" };
  EXPECT_FALSE (nn_safetensors_write (p.c_str (), reserved, ts, 1, nullptr, err.out ()));
  EXPECT_HAS (err.message (), "'__metadata__'");
  EXPECT_TRUE (tmp.list ().empty ());
}

// An existing destination, and what a failed write must leave behind.
struct Existing {
  TmpDir tmp;
  std::string path;
  std::string before;
  Existing ()
  {
    path = tmp.path ("model.safetensors");
    before = st_bytes (kOneF32, std::string (8, '\x11'));
    write_bytes (path, before);
  }
  void expect_untouched ()
  {
    EXPECT_EQ (read_bytes (path), before);
    EXPECT_EQ (tmp.list (), std::set<std::string> ({ "model.safetensors" }));
  }
};

TEST (SafetensorsWrite, FailedWriteLeavesDestinationAndNoTempFile)
{
  // A write that fails half way: the file size limit makes write() fail
  // with EFBIG (as a full disk would), even when running as root.
  Existing ex;
  Tensor big (make_tensor (NN_DTYPE_F32, shape ({ 1 << 16 })));
  const char *names[] = { "big" };
  NnTensor *ts[] = { big.get () };
  struct rlimit old;
  ASSERT_EQ (getrlimit (RLIMIT_FSIZE, &old), 0);
  struct rlimit lim = old;
  lim.rlim_cur = 4096;
  auto prev = signal (SIGXFSZ, SIG_IGN);
  ASSERT_EQ (setrlimit (RLIMIT_FSIZE, &lim), 0);
  Error err;
  gboolean ok = nn_safetensors_write (ex.path.c_str (), names, ts, 1, nullptr, err.out ());
  setrlimit (RLIMIT_FSIZE, &old);
  signal (SIGXFSZ, prev);
  EXPECT_FALSE (ok);
  EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO));
  EXPECT_HAS (err.message (), ex.path);
  EXPECT_HAS (err.message (), "cannot write");
  ex.expect_untouched ();
}

TEST (SafetensorsWrite, DestinationThatIsADirectory)
{
  Existing ex;
  std::string dir = ex.tmp.path ("sub");
  ASSERT_EQ (g_mkdir (dir.c_str (), 0755), 0);
  Tensor t (make_tensor (NN_DTYPE_F32, shape ({ 2 })));
  const char *names[] = { "w" };
  NnTensor *ts[] = { t.get () };
  Error err;
  EXPECT_FALSE (nn_safetensors_write (dir.c_str (), names, ts, 1, nullptr, err.out ()));
  EXPECT_TRUE (err.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO));
  EXPECT_HAS (err.message (), dir);
  EXPECT_HAS (err.message (), "it is a directory");
  g_rmdir (dir.c_str ());
  ex.expect_untouched ();
}

TEST (SafetensorsWrite, UnwritableDirectory)
{
  Existing ex;
  std::string missing_dir = ex.tmp.path ("no/such/dir/x.safetensors");
  Tensor t (make_tensor (NN_DTYPE_F32, shape ({ 2 })));
  const char *names[] = { "w" };
  NnTensor *ts[] = { t.get () };
  Error err;
  EXPECT_FALSE (nn_safetensors_write (missing_dir.c_str (), names, ts, 1, nullptr, err.out ()));
  EXPECT_HAS (err.message (), missing_dir);
  EXPECT_HAS (err.message (), "temporary file");
  if (geteuid () != 0) {  // root writes through permission bits
    ASSERT_EQ (chmod (ex.tmp.c_str (), 0555), 0);
    EXPECT_FALSE (nn_safetensors_write (ex.path.c_str (), names, ts, 1, nullptr, err.out ()));
    EXPECT_HAS (err.message (), "Permission denied");
    chmod (ex.tmp.c_str (), 0755);
  }
  ex.expect_untouched ();
}

}  // namespace
