// Tests for hostile input (core/json_guard.c and the walks of module.c and
// repr.c): deep nesting, duplicate keys, out-of-range numbers, shared
// module diamonds and deep trees load with a clear error or in linear time.
#include "nn-test.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <glib/gstdio.h>

using namespace nntest;

static std::string
deep_array (size_t depth)
{
  return std::string (depth, '[') + std::string (depth, ']');
}

// A chain of @depth Sequentials ending in a ReLU.
static std::string
deep_chain (size_t depth)
{
  std::string inner = "\"type\": \"ReLU\"";
  for (size_t i = 0; i < depth; i++)
    inner = "\"type\": \"Sequential\", \"children\": [{\"name\": \"0\", " + inner + "}]";
  return "{\"format\": \"nnkit\", \"version\": 1, \"model\": {" + inner + "}}";
}

static double
seconds_since (std::chrono::steady_clock::time_point t0)
{
  return std::chrono::duration<double> (std::chrono::steady_clock::now () - t0).count ();
}

// Writes a safetensors file with @header verbatim (padded) and no data.
static std::string
write_header (const std::string &name, std::string header)
{
  while (header.size () % 8)
    header += ' ';
  guint64 n = GUINT64_TO_LE (header.size ());
  std::string bytes ((const char *) &n, 8);
  bytes += header;
  g_autofree char *dir = g_dir_make_tmp ("nn-hostile-XXXXXX", nullptr);
  std::string path = std::string (dir) + "/" + name;
  EXPECT_TRUE (g_file_set_contents (path.c_str (), bytes.data (), bytes.size (), nullptr));
  return path;
}

TEST (Hostile, DeeplyNestedDescriptorIsRefusedBeforeParsing)
{
  Registry reg = default_registry ();
  Error e;
  std::string text = "{\"format\": \"nnkit\", \"version\": 1, \"model\": "
                     "{\"type\": \"ReLU\", \"config\": {\"x\": " + deep_array (100000) + "}}}";
  Module m (nn_descriptor_load_data (reg.get (), text.c_str (), -1, "deep.json", e.out ()));
  EXPECT_EQ (m, nullptr);
  EXPECT_TRUE (e.matches (NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_PARSE)) << e.message ();
  EXPECT_TRUE (contains (e.message (), "deep.json: JSON nested deeper than 2100 levels"))
      << e.message ();
  // Inline JSON for surgery goes through the same guard.
  Module n (nn_descriptor_load_module_data (reg.get (), deep_array (100000).c_str (), -1,
                                            "inline JSON", e.out ()));
  EXPECT_EQ (n, nullptr);
  EXPECT_TRUE (contains (e.message (), "nested deeper than")) << e.message ();
}

TEST (Hostile, DeeplyNestedSafetensorsHeaderIsRefused)
{
  std::string path = write_header ("deep.safetensors",
                                   "{\"__metadata__\": " + deep_array (100000) + "}");
  Error e;
  Safetensors st (nn_safetensors_open (path.c_str (), e.out ()));
  EXPECT_EQ (st, nullptr);
  EXPECT_TRUE (e.matches (NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER)) << e.message ();
  EXPECT_TRUE (contains (e.message (), "nested deeper than 1000 levels")) << e.message ();
}

TEST (Hostile, DuplicateHeaderKeysAreRefusedEvenWhenEscaped)
{
  const char *entry = "{\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [0, 0]}";
  for (const char *second : { "\"w\"", "\"\\u0077\"" }) {
    std::string path = write_header ("dup.safetensors", std::string ("{\"w\": ") + entry +
                                     ", " + second + ": " + entry + "}");
    Error e;
    Safetensors st (nn_safetensors_open (path.c_str (), e.out ()));
    EXPECT_EQ (st, nullptr) << second;
    EXPECT_TRUE (contains (e.message (), "duplicate key 'w'")) << e.message ();
  }
  // In __metadata__ too, naming the object.
  std::string path = write_header ("dupmd.safetensors",
                                   "{\"__metadata__\": {\"a\": \"1\", \"a\": \"2\"}}");
  Error e;
  Safetensors st (nn_safetensors_open (path.c_str (), e.out ()));
  EXPECT_EQ (st, nullptr);
  EXPECT_TRUE (contains (e.message (), "__metadata__: duplicate key 'a'")) << e.message ();
}

TEST (Hostile, DuplicateDescriptorKeysAreRefused)
{
  Registry reg = default_registry ();
  Error e;
  Module m (nn_descriptor_load_data (reg.get (),
      "{\"format\": \"nnkit\", \"version\": 1, \"model\": {\"type\": \"Dropout\", "
      "\"config\": {\"p\": 0.1, \"p\": 0.9}}}", -1, "dup.json", e.out ()));
  EXPECT_EQ (m, nullptr);
  EXPECT_TRUE (contains (e.message (), "dup.json: model.config: duplicate key 'p'"))
      << e.message ();
}

TEST (Hostile, HugeIntegersAreReportedAsGiven)
{
  Registry reg = default_registry ();
  for (const char *big : { "9223372036854775808", "-9223372036854775809",
                           "123456789012345678901234567890" }) {
    Error e;
    std::string text = std::string ("{\"format\": \"nnkit\", \"version\": 1, "
                                    "\"input_shape\": [1, ") + big + "], \"model\": {\"type\": \"ReLU\"}}";
    Module m (nn_descriptor_load_data (reg.get (), text.c_str (), -1, "big.json", e.out ()));
    EXPECT_EQ (m, nullptr) << big;
    EXPECT_TRUE (contains (e.message (), std::string ("big.json: input_shape[1]: integer ") +
                           big + " is out of range")) << e.message ();
  }
  // The largest gint64 itself is a number json-glib keeps exactly.
  Error e;
  Module m (nn_descriptor_load_data (reg.get (),
      "{\"format\": \"nnkit\", \"version\": 1, \"model\": {\"type\": \"Conv2d\", "
      "\"config\": {\"in_channels\": 1, \"out_channels\": 1, \"kernel_size\": 1, "
      "\"padding\": [9223372036854775807, 0]}}}", -1, "max.json", e.out ()));
  ASSERT_NE (m, nullptr) << e.message ();
  gint64 pad[2] = { 0, 0 };
  ASSERT_TRUE (nn_module_config_ints (m.get (), "padding", pad, 2));
  EXPECT_EQ (pad[0], G_MAXINT64);
}

TEST (Hostile, OutOfRangeFloatIsRefusedWithItsKeyPath)
{
  Registry reg = default_registry ();
  Error e;
  Module m (nn_descriptor_load_data (reg.get (),
      "{\"format\": \"nnkit\", \"version\": 1, \"model\": {\"type\": \"Sequential\", "
      "\"children\": [{\"name\": \"bn\", \"type\": \"BatchNorm2d\", "
      "\"config\": {\"num_features\": 2, \"eps\": 1e999}}]}}", -1, "inf.json", e.out ()));
  EXPECT_EQ (m, nullptr);
  EXPECT_TRUE (contains (e.message (),
                         "inf.json: model.children[0].config.eps: number 1e999 is out of range"))
      << e.message ();
}

TEST (Hostile, NonFiniteConfigFromTheApiIsRefused)
{
  Registry reg = default_registry ();
  for (double bad : { INFINITY, -INFINITY, NAN }) {
    g_autoptr (JsonObject) cfg = json_object_new ();
    json_object_set_int_member (cfg, "num_features", 2);
    json_object_set_double_member (cfg, "eps", bad);
    Error e;
    Module m (nn_module_new_from_type (reg.get (), "BatchNorm2d", cfg, "bn", e.out ()));
    EXPECT_EQ (m, nullptr) << bad;
    EXPECT_TRUE (contains (e.message (), "eps")) << e.message ();
  }
}

TEST (Hostile, LargestFiniteFloatSavesAndReloads)
{
  Registry reg = default_registry ();
  Error e;
  Module m (nn_descriptor_load_data (reg.get (),
      "{\"format\": \"nnkit\", \"version\": 1, \"model\": {\"type\": \"BatchNorm2d\", "
      "\"config\": {\"num_features\": 2, \"eps\": 1.7976931348623157e308}}}", -1, "max.json",
      e.out ()));
  ASSERT_NE (m, nullptr) << e.message ();
  gsize len = 0;
  CStr text (nn_descriptor_to_data (m.get (), &len));
  Module back (nn_descriptor_load_data (reg.get (), text.get (), (gssize) len, "saved", e.out ()));
  ASSERT_NE (back, nullptr) << e.message () << text.get ();
  EXPECT_EQ (nn_module_config_float (back.get (), "eps"), 1.7976931348623157e308);
}

// Found by the fourth fuzzing campaign: json-glib keeps a lone surrogate
// escape as bytes that are not UTF-8, so the loaded descriptor saved as
// text that did not load again.
TEST (Hostile, LoneSurrogateEscapesAreRefusedWithTheirKeyPath)
{
  Registry reg = default_registry ();
  for (const char *bad : { "\\uDAFE", "\\uDAFEt", "\\uDC00", "\\uD83D\\u0041" }) {
    std::string text = std::string ("{\"format\": \"nnkit\", \"version\": 1, \"model\": "
                                    "{\"type\": \"ReLU\", \"class\": \"Nn") + bad + "\"}}";
    Error e;
    Module m (nn_descriptor_load_data (reg.get (), text.c_str (), -1, "sur.json", e.out ()));
    EXPECT_EQ (m, nullptr) << bad;
    EXPECT_TRUE (contains (e.message (), "sur.json: model.class: a string has a lone UTF-16 "
                                         "surrogate escape \\u"))
        << e.message ();
  }
  // In a key, the message names the object holding it.
  Error e;
  Module m (nn_descriptor_load_data (reg.get (),
      "{\"format\": \"nnkit\", \"version\": 1, \"model\": {\"type\": \"Dropout\", "
      "\"config\": {\"\\uDC01\": 1}}}", -1, "key.json", e.out ()));
  EXPECT_EQ (m, nullptr);
  EXPECT_TRUE (contains (e.message (), "key.json: model.config: a key has a lone UTF-16 "
                                       "surrogate escape \\uDC01"))
      << e.message ();
  // And in a safetensors header.
  std::string path = write_header ("sur.safetensors",
                                   "{\"__metadata__\": {\"note\": \"\\uD800\"}}");
  Error se;
  Safetensors st (nn_safetensors_open (path.c_str (), se.out ()));
  EXPECT_EQ (st, nullptr);
  EXPECT_TRUE (contains (se.message (), "__metadata__.note: a string has a lone UTF-16 "
                                        "surrogate escape \\uD800"))
      << se.message ();
}

// Also found by the fourth campaign: json-glib reads "\uDAGG" as bytes that
// are not UTF-8 too.  Every escape JSON does not define is refused.
TEST (Hostile, InvalidEscapesAreRefusedWithTheirKeyPath)
{
  Registry reg = default_registry ();
  struct { const char *escape, *says; } cases[] = {
    { "\\uDAGG", "an invalid escape \\uDAGG (expected \\u and 4 hex digits)" },
    { "\\u12zz", "an invalid escape \\u12zz (expected" },
    { "\\x41", "an invalid escape \\x (JSON allows" },
  };
  for (const auto &c : cases) {
    std::string text = std::string ("{\"format\": \"nnkit\", \"version\": 1, \"model\": "
                                    "{\"type\": \"ReLU\", \"class\": \"Nn") + c.escape + "\"}}";
    Error e;
    Module m (nn_descriptor_load_data (reg.get (), text.c_str (), -1, "esc.json", e.out ()));
    EXPECT_EQ (m, nullptr) << c.escape;
    EXPECT_TRUE (contains (e.message (), std::string ("esc.json: model.class: a string has ") +
                                             c.says))
        << e.message ();
  }
  // The escapes JSON defines still load.
  Error e;
  Module m (nn_descriptor_load_data (reg.get (),
      "{\"format\": \"nnkit\", \"version\": 1, \"model\": {\"type\": \"ReLU\", "
      "\"class\": \"N\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9n\"}}", -1, "ok.json", e.out ()));
  ASSERT_NE (m, nullptr) << e.message ();
}

TEST (Hostile, SurrogatePairsLoadSaveAndReload)
{
  Registry reg = default_registry ();
  Error e;
  Module m (nn_descriptor_load_data (reg.get (),
      "{\"format\": \"nnkit\", \"version\": 1, \"model\": {\"type\": \"ReLU\", "
      "\"class\": \"Nn\\uD83D\\uDE00\"}}", -1, "pair.json", e.out ()));
  ASSERT_NE (m, nullptr) << e.message ();
  gsize len = 0;
  CStr text (nn_descriptor_to_data (m.get (), &len));
  EXPECT_TRUE (g_utf8_validate (text.get (), (gssize) len, nullptr));
  EXPECT_NE (std::string (text.get ()).find ("Nn\xF0\x9F\x98\x80"), std::string::npos)
      << text.get ();
  Module back (nn_descriptor_load_data (reg.get (), text.get (), (gssize) len, "saved",
                                        e.out ()));
  ASSERT_NE (back, nullptr) << e.message () << text.get ();
}

TEST (Hostile, SharedModuleDiamondsLoadInLinearTime)
{
  // m_k holds m_{k-1} twice: 2^40 paths, 42 modules.
  std::string kids = "{\"name\": \"m0\", \"type\": \"ReLU\"}";
  for (int k = 1; k <= 40; k++)
    kids += ", {\"name\": \"m" + std::to_string (k) + "\", \"type\": \"Sequential\", "
            "\"children\": [{\"name\": \"a\", \"ref\": \"m" + std::to_string (k - 1) +
            "\"}, {\"name\": \"b\", \"ref\": \"m" + std::to_string (k - 1) + "\"}]}";
  std::string text = "{\"format\": \"nnkit\", \"version\": 1, \"model\": "
                     "{\"type\": \"Sequential\", \"children\": [" + kids + "]}}";
  Registry reg = default_registry ();
  auto t0 = std::chrono::steady_clock::now ();
  Error e;
  Module m (nn_descriptor_load_data (reg.get (), text.c_str (), -1, "diamond.json", e.out ()));
  ASSERT_NE (m, nullptr) << e.message ();
  Array mods (nn_module_named_modules (m.get ()));
  EXPECT_EQ (mods->len, 42u);
  EXPECT_LT (seconds_since (t0), 2.0);
}

// The calling thread's CPU time: unlike wall time, other processes on a
// busy machine (the CI's parallel suites) do not add to it.
static double
thread_cpu_seconds ()
{
  struct timespec ts;
  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

// Loads, prints and walks a chain of @depth; returns the best of 3 CPU
// times of this thread (the work is all in it).
static double
deep_tree_seconds (NnRegistry *reg, size_t depth)
{
  std::string text = deep_chain (depth);
  double best = 1e9;
  for (int run = 0; run < 3; run++) {
    double t0 = thread_cpu_seconds ();
    Error e;
    Module m (nn_descriptor_load_data (reg, text.c_str (), -1, "chain.json", e.out ()));
    EXPECT_NE (m, nullptr) << e.message ();
    if (!m)
      return best;
    CStr repr (nn_module_to_string (m.get ()));
    Array mods (nn_module_named_modules (m.get ()));
    EXPECT_EQ (mods->len, depth + 1);
    // PyTorch's text: the leaf indented two spaces per level.
    EXPECT_TRUE (contains (repr.get (), "\n" + std::string (2 * depth, ' ') + "(0): ReLU()\n"));
    best = std::min (best, thread_cpu_seconds () - t0);
  }
  return best;
}

TEST (Hostile, DeepTreesLoadAndPrintInNearLinearTime)
{
  Registry reg = default_registry ();
  double half = deep_tree_seconds (reg.get (), 500);
  double full = deep_tree_seconds (reg.get (), 1000);
  // Printing re-indented every level's text: twice the depth cost eight
  // times as much (0.8 s at depth 1000 here).  Linear work doubles; the
  // slack absorbs timer noise on a busy machine.
  EXPECT_LT (full, 4 * half + 0.05) << "depth 500: " << half << " s, 1000: " << full << " s";
}

TEST (Hostile, TreesDeeperThanTheLimitAreRefusedClearly)
{
  Registry reg = default_registry ();
  Error e;
  Module m (nn_descriptor_load_data (reg.get (), deep_chain (1100).c_str (), -1, "chain.json",
                                     e.out ()));
  EXPECT_EQ (m, nullptr);
  EXPECT_TRUE (contains (e.message (), "chain.json: JSON nested deeper than 2100 levels"))
      << e.message ();
}

TEST (Hostile, ShapesWhoseSizeOverflowsAreRefused)
{
  NnShape s;
  Error e;
  EXPECT_FALSE (nn_shape_parse ("2147483647,2147483647,2147483647", &s, e.out ()));
  EXPECT_TRUE (e.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_INVALID)) << e.message ();
  EXPECT_TRUE (contains (e.message (), "more elements than 64-bit sizes can count"))
      << e.message ();
  NnShape big = shape ({ 1 << 30, 1 << 30, 1 << 30 });
  EXPECT_EQ (nn_shape_numel (&big), G_MAXINT64);

  Registry reg = default_registry ();
  Module m (nn_descriptor_load_data (reg.get (),
      "{\"format\": \"nnkit\", \"version\": 1, \"input_shape\": "
      "[2147483647, 2147483647, 2147483647], \"model\": {\"type\": \"ReLU\"}}", -1,
      "huge.json", e.out ()));
  EXPECT_EQ (m, nullptr);
  EXPECT_TRUE (contains (e.message (), "huge.json: input_shape [2147483647, 2147483647, "
                         "2147483647] has more elements")) << e.message ();
}

TEST (Hostile, ConvPaddingThatOverflowsIsAShapeError)
{
  Registry reg = default_registry ();
  Error e;
  Module conv = make_module (reg.get (), "Conv2d",
      R"({"in_channels": 1, "out_channels": 1, "kernel_size": 3,
          "padding": [4611686018427387904, 4611686018427387904]})", e, "conv");
  ASSERT_NE (conv, nullptr) << e.message ();
  NnShape in = shape ({ 1, 1, 8, 8 }), out;
  EXPECT_FALSE (nn_module_infer_shape (conv.get (), &in, &out, e.out ()));
  EXPECT_TRUE (contains (e.message (), "overflows 64 bits")) << e.message ();
  // A padding that fits but makes the output uncountable.
  Module wide = make_module (reg.get (), "Conv2d",
      R"({"in_channels": 1, "out_channels": 1, "kernel_size": 1,
          "padding": [2147483647, 2147483647]})", e, "wide");
  ASSERT_NE (wide, nullptr) << e.message ();
  NnShape in2 = shape ({ 1048576, 1, 1, 1 });
  EXPECT_FALSE (nn_module_infer_shape (wide.get (), &in2, &out, e.out ()));
  EXPECT_TRUE (contains (e.message (), "more elements than 64-bit sizes can count"))
      << e.message ();
}
