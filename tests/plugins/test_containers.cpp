// Tests of the containers plugin: Sequential, ModuleList, ModuleDict and
// Graph.  Numerics are checked against naive references computed here;
// reprs against PyTorch's print() text for the same structure.
#include "nn-test.h"

#include <cmath>
#include <functional>
#include <string>
#include <thread>
#include <vector>

using namespace nntest;

namespace {

NnRegistry *reg ()
{
  static Registry r = default_registry ();
  return r.get ();
}

Module load (const std::string &json)
{
  Error e;
  NnModule *m = nn_descriptor_load_module_data (reg (), json.c_str (), -1,
                                                "test", e.out ());
  EXPECT_NE (m, nullptr) << e.message ();
  return Module (m);
}

// Loads @json expecting failure; returns the message after the origin.
std::string load_error (const std::string &json)
{
  Error e;
  NnModule *m = nn_descriptor_load_module_data (reg (), json.c_str (), -1,
                                                "test", e.out ());
  EXPECT_EQ (m, nullptr);
  if (m)
    nn_module_unref (m);
  EXPECT_TRUE (e.err != nullptr);
  // Every load error starts with the origin; the rest is returned.
  std::string msg = e.message ();
  EXPECT_EQ (msg.rfind ("test: ", 0), 0u) << msg;
  return msg.rfind ("test: ", 0) == 0 ? msg.substr (6) : msg;
}

// A module tree wrapping a Graph config as child "blk" of a Sequential,
// so errors carry a non-root path.
std::string in_seq (const std::string &graph_node)
{
  return R"({"type": "Sequential", "children": [{"name": "blk", )" +
         graph_node.substr (1) + "]}";
}

std::string graph (const std::string &nodes, const std::string &output,
                   const std::string &children = "[]")
{
  return R"({"type": "Graph", "config": {"inputs": ["x"], "nodes": )" + nodes +
         R"(, "output": ")" + output + R"("}, "children": )" + children + "}";
}

// Deterministic values in [-1, 1].
std::vector<float> values (size_t n, unsigned seed)
{
  std::vector<float> v (n);
  guint32 s = seed * 2654435761u + 1;
  for (auto &x : v)
    {
      s = s * 1664525u + 1013904223u;
      x = (float) ((s >> 8) / 8388608.0 - 1.0);
    }
  return v;
}

Tensor make (std::initializer_list<gint64> dims, const std::vector<float> &v)
{
  NnShape s = shape (dims);
  Tensor t (nn_tensor_new (NN_DTYPE_F32, &s));
  EXPECT_EQ ((size_t) nn_tensor_numel (t.get ()), v.size ());
  std::copy (v.begin (), v.end (), nn_tensor_f32 (t.get ()));
  return t;
}

void set_tensor (NnModule *root, const char *name, const std::vector<float> &v)
{
  Error e;
  NnTensor *t = nn_module_lookup_tensor (root, name, e.out ());
  ASSERT_NE (t, nullptr) << e.message ();
  ASSERT_EQ ((size_t) nn_tensor_numel (t), v.size ());
  std::copy (v.begin (), v.end (), nn_tensor_f32 (t));
}

std::vector<float> data (NnTensor *t)
{
  const float *p = nn_tensor_f32 (t);
  return std::vector<float> (p, p + nn_tensor_numel (t));
}

std::string shape_str (const NnShape &s) { return take (nn_shape_to_string (&s)); }

void expect_near (const std::vector<float> &got, const std::vector<float> &want,
                  float tol = 1e-5f)
{
  ASSERT_EQ (got.size (), want.size ());
  for (size_t i = 0; i < got.size (); i++)
    ASSERT_NEAR (got[i], want[i], tol * (1.0f + std::fabs (want[i])))
        << "at element " << i;
}

Tensor forward (NnModule *m, NnTensor *x)
{
  Error e;
  NnTensor *y = nn_module_forward (m, x, e.out ());
  EXPECT_NE (y, nullptr) << e.message ();
  return Tensor (y);
}

float sigmoid (float v) { return 1.0f / (1.0f + std::exp (-v)); }

// Forward hooks that log "<tag>:<path>" into a vector.
struct Log {
  std::vector<std::string> lines;
};

gboolean log_forward (NnModule *, const char *path, NnTensor *, NnTensor **,
                      gpointer user_data, GError **)
{
  static_cast<Log *> (user_data)->lines.push_back (std::string ("fwd:") + path);
  return TRUE;
}

gboolean log_pre (NnModule *, const char *path, NnTensor **, gpointer user_data,
                  GError **)
{
  static_cast<Log *> (user_data)->lines.push_back (std::string ("pre:") + path);
  return TRUE;
}

gboolean zero_output (NnModule *, const char *, NnTensor *, NnTensor **output,
                      gpointer, GError **)
{
  NnTensor *z = nn_tensor_new (NN_DTYPE_F32, &(*output)->shape);
  nn_tensor_unref (*output);
  *output = z;
  return TRUE;
}

gboolean count_forward (NnModule *, const char *, NnTensor *, NnTensor **,
                        gpointer user_data, GError **)
{
  (*static_cast<int *> (user_data))++;
  return TRUE;
}

struct Hook {
  NnHookHandle *h;
  explicit Hook (NnHookHandle *handle) : h (handle) { EXPECT_NE (h, nullptr); }
  Hook (const Hook &) = delete;
  ~Hook () { nn_hook_handle_remove (h); nn_hook_handle_free (h); }
};

Hook fwd_hook (NnModule *m, NnForwardHookFunc f, void *data)
{
  Error e;
  NnHookHandle *h = nn_module_add_forward_hook (m, f, data, nullptr, nullptr, 0,
                                                e.out ());
  EXPECT_NE (h, nullptr) << e.message ();
  return Hook (h);
}

NnModule *at (NnModule *root, const char *path)
{
  Error e;
  NnModule *m = nn_module_lookup_path (root, path, e.out ());
  EXPECT_NE (m, nullptr) << e.message ();
  return m;
}

// y[n, o] = b[o] + sum_i W[o, i] x[n, i]
std::vector<float> linear_ref (const std::vector<float> &x, const std::vector<float> &w,
                               const std::vector<float> &b, int n, int in, int out)
{
  std::vector<float> y (n * out);
  for (int r = 0; r < n; r++)
    for (int o = 0; o < out; o++)
      {
        double acc = b[o];
        for (int i = 0; i < in; i++)
          acc += (double) w[o * in + i] * x[r * in + i];
        y[r * out + o] = (float) acc;
      }
  return y;
}

const char *kMlp = R"({"type": "Sequential", "children": [
  {"name": "0", "type": "Linear", "config": {"in_features": 3, "out_features": 4}},
  {"name": "1", "type": "ReLU"},
  {"name": "2", "type": "Linear", "config": {"in_features": 4, "out_features": 2}}]})";

}  // namespace

// --- Sequential -------------------------------------------------------------

TEST (Sequential, RunsChildrenInOrderThroughHooks)
{
  Module m = load (kMlp);
  ASSERT_TRUE (m);
  auto w1 = values (12, 1), b1 = values (4, 2), w2 = values (8, 3), b2 = values (2, 4);
  set_tensor (m.get (), "0.weight", w1);
  set_tensor (m.get (), "0.bias", b1);
  set_tensor (m.get (), "2.weight", w2);
  set_tensor (m.get (), "2.bias", b2);
  auto xv = values (6, 5);
  Tensor x = make ({ 2, 3 }, xv);

  Log log;
  Hook h0 = fwd_hook (at (m.get (), "0"), log_forward, &log);
  Hook h1 = fwd_hook (at (m.get (), "1"), log_forward, &log);
  Hook h2 = fwd_hook (at (m.get (), "2"), log_forward, &log);
  Hook hr = fwd_hook (m.get (), log_forward, &log);
  Error e;
  Hook p1 (nn_module_add_pre_hook (at (m.get (), "1"), log_pre, &log, nullptr,
                                   nullptr, 0, e.out ()));

  Tensor y = forward (m.get (), x.get ());
  ASSERT_TRUE (y);
  EXPECT_EQ (shape_str (y->shape), "[2, 2]");
  auto h = linear_ref (xv, w1, b1, 2, 3, 4);
  for (auto &v : h)
    v = std::max (v, 0.0f);
  expect_near (data (y.get ()), linear_ref (h, w2, b2, 2, 4, 2));
  EXPECT_EQ (log.lines, (std::vector<std::string>{ "fwd:0", "pre:1", "fwd:1",
                                                   "fwd:2", "fwd:" }));

  // A hook's replacement output is what the next child receives.
  Hook hz = fwd_hook (at (m.get (), "1"), zero_output, nullptr);
  Tensor y2 = forward (m.get (), x.get ());
  ASSERT_TRUE (y2);
  expect_near (data (y2.get ()), { b2[0], b2[1], b2[0], b2[1] });
}

TEST (Sequential, EmptyIsIdentity)
{
  Module m = load (R"({"type": "Sequential"})");
  ASSERT_TRUE (m);
  auto xv = values (6, 7);
  Tensor x = make ({ 2, 3 }, xv);
  Tensor y = forward (m.get (), x.get ());
  ASSERT_TRUE (y);
  EXPECT_EQ (data (y.get ()), xv);
  NnShape in = shape ({ 4, 5, 6 }), out;
  Error e;
  ASSERT_TRUE (nn_module_infer_shape (m.get (), &in, &out, e.out ())) << e.message ();
  EXPECT_TRUE (nn_shape_equal (&in, &out));
  EXPECT_EQ (take (nn_module_to_string (m.get ())), "Sequential()");
}

TEST (Sequential, InferShapeChainsChildrenAndNamesTheFailingOne)
{
  Module m = load (kMlp);
  ASSERT_TRUE (m);
  NnShape in = shape ({ 5, 3 }), out;
  Error e;
  ASSERT_TRUE (nn_module_infer_shape (m.get (), &in, &out, e.out ())) << e.message ();
  EXPECT_EQ (shape_str (out), "[5, 2]");

  NnShape bad = shape ({ 5, 7 });
  EXPECT_FALSE (nn_module_infer_shape (m.get (), &bad, &out, e.out ()));
  EXPECT_TRUE (e.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH)) << e.message ();
  EXPECT_EQ (e.message ().rfind ("0: Linear: ", 0), 0u) << e.message ();
  EXPECT_TRUE (contains (e.message (), "[5, 7]")) << e.message ();

  Tensor x = make ({ 5, 7 }, values (35, 1));
  EXPECT_EQ (nn_module_forward (m.get (), x.get (), e.out ()), nullptr);
  EXPECT_EQ (e.message ().rfind ("0: Linear: ", 0), 0u) << e.message ();
}

// --- ModuleList and ModuleDict ------------------------------------------------

TEST (ModuleList, HasNoForward)
{
  Module m = load (R"({"type": "Sequential", "children": [
    {"name": "blocks", "type": "ModuleList", "children": [{"name": "0", "type": "ReLU"}]},
    {"name": "heads", "type": "ModuleDict", "children": [{"name": "cls", "type": "ReLU"}]}]})");
  ASSERT_TRUE (m);
  Tensor x = make ({ 1, 2 }, { 1.0f, -1.0f });
  Error e;

  EXPECT_EQ (nn_module_forward (m.get (), x.get (), e.out ()), nullptr);
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NO_FORWARD)) << e.message ();
  EXPECT_EQ (e.message ().rfind ("blocks: ModuleList: ", 0), 0u) << e.message ();
  EXPECT_TRUE (contains (e.message (), "no forward")) << e.message ();

  NnShape in = shape ({ 1, 2 }), out;
  EXPECT_FALSE (nn_module_infer_shape (m.get (), &in, &out, e.out ()));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NO_FORWARD)) << e.message ();

  NnModule *heads = at (m.get (), "heads");
  EXPECT_EQ (nn_module_forward (heads, x.get (), e.out ()), nullptr);
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NO_FORWARD)) << e.message ();
  EXPECT_TRUE (contains (e.message (), "ModuleDict")) << e.message ();

  // Flags: ModuleList is indexable (negative index), ModuleDict is keyed.
  EXPECT_EQ (at (m.get (), "blocks.-1"), at (m.get (), "blocks.0"));
  const NnLayerType *dict = nn_module_get_type (heads);
  EXPECT_TRUE (dict->flags & NN_LAYER_KEYED);
  EXPECT_FALSE (dict->flags & NN_LAYER_INDEXABLE);
}

// Expected texts are PyTorch's print() of the same ModuleList (>= 2.0,
// which folds runs; e.g. its own docs show "(0-2): 3 x Linear(...)").
TEST (ModuleList, ReprFoldsRunsOfIdenticalItems)
{
  Module m = load (R"({"type": "ModuleList", "children": [
    {"name": "0", "type": "Linear", "config": {"in_features": 10, "out_features": 10}},
    {"name": "1", "type": "Linear", "config": {"in_features": 10, "out_features": 10}},
    {"name": "2", "type": "Linear", "config": {"in_features": 10, "out_features": 10}},
    {"name": "3", "type": "ReLU"},
    {"name": "4", "type": "Linear", "config": {"in_features": 10, "out_features": 20}},
    {"name": "5", "type": "Linear", "config": {"in_features": 10, "out_features": 10}},
    {"name": "6", "type": "Linear", "config": {"in_features": 10, "out_features": 10}}]})");
  ASSERT_TRUE (m);
  EXPECT_EQ (take (nn_module_to_string (m.get ())),
             "ModuleList(\n"
             "  (0-2): 3 x Linear(in_features=10, out_features=10, bias=True)\n"
             "  (3): ReLU()\n"
             "  (4): Linear(in_features=10, out_features=20, bias=True)\n"
             "  (5-6): 2 x Linear(in_features=10, out_features=10, bias=True)\n"
             ")");
}

TEST (ModuleList, ReprFoldsMultiLineItemsAndNests)
{
  const std::string block = R"({"type": "Sequential", "children": [
      {"name": "0", "type": "Linear", "config": {"in_features": 4, "out_features": 4}},
      {"name": "1", "type": "ReLU", "config": {"inplace": true}}]})";
  Module m = load (R"({"type": "Sequential", "children": [
    {"name": "layers", "type": "ModuleList", "children": [
      {"name": "0", )" + block.substr (1) + R"(,
      {"name": "1", )" + block.substr (1) + R"(]},
    {"name": "empty", "type": "ModuleList"}]})");
  ASSERT_TRUE (m);
  EXPECT_EQ (take (nn_module_to_string (m.get ())),
             "Sequential(\n"
             "  (layers): ModuleList(\n"
             "    (0-1): 2 x Sequential(\n"
             "      (0): Linear(in_features=4, out_features=4, bias=True)\n"
             "      (1): ReLU(inplace=True)\n"
             "    )\n"
             "  )\n"
             "  (empty): ModuleList()\n"
             ")");
}

TEST (ModuleList, ReprRunStopsAtAKeyGap)
{
  // nnkit never renumbers keys: after deleting "1", items "0" and "2" are
  // not printed as a range that would name the missing key.
  Module m = load (R"({"type": "ModuleList", "children": [
    {"name": "0", "type": "ReLU"}, {"name": "2", "type": "ReLU"},
    {"name": "3", "type": "ReLU"}]})");
  ASSERT_TRUE (m);
  EXPECT_EQ (take (nn_module_to_string (m.get ())),
             "ModuleList(\n"
             "  (0): ReLU()\n"
             "  (2-3): 2 x ReLU()\n"
             ")");
}

// --- Graph: numerics ------------------------------------------------------------

namespace {

// out[n,c,h,w] over [N,C,H,W] helpers for the references below.
struct Dims4 {
  int n, c, h, w;
  int at (int a, int b, int y, int x) const { return ((a * c + b) * h + y) * w + x; }
  int size () const { return n * c * h * w; }
};

}  // namespace

TEST (Graph, AddMulCatFlattenAndFunctionalOps)
{
  const std::string nodes = R"([
    {"name": "a", "module": "act", "args": ["x"]},
    {"name": "s", "op": "adaptive_avg_pool2d", "args": ["x"], "kwargs": {"output_size": 1}},
    {"name": "m", "op": "mul", "args": ["x", "s"]},
    {"name": "ad", "op": "add", "args": ["a", "m"]},
    {"name": "r", "op": "relu", "args": ["ad"]},
    {"name": "c", "op": "cat", "args": ["r", "x"], "kwargs": {"dim": -3}},
    {"name": "sg", "op": "Sigmoid", "args": ["c"]},
    {"name": "f", "op": "flatten", "args": ["sg"], "kwargs": {"start_dim": 1}}])";
  Module m = load (graph (nodes, "f", R"([{"name": "act", "type": "ReLU"}])"));
  ASSERT_TRUE (m);

  const Dims4 d{ 2, 3, 4, 4 };
  auto xv = values (d.size (), 11);
  Tensor x = make ({ 2, 3, 4, 4 }, xv);
  Tensor y = forward (m.get (), x.get ());
  ASSERT_TRUE (y);
  EXPECT_EQ (shape_str (y->shape), "[2, 96]");

  std::vector<float> want;
  for (int n = 0; n < d.n; n++)
    {
      std::vector<float> mean (d.c, 0.0f);
      for (int c = 0; c < d.c; c++)
        {
          double acc = 0;
          for (int i = 0; i < d.h * d.w; i++)
            acc += xv[d.at (n, c, 0, 0) + i];
          mean[c] = (float) (acc / (d.h * d.w));
        }
      for (int c = 0; c < d.c; c++)
        for (int i = 0; i < d.h * d.w; i++)
          {
            float v = xv[d.at (n, c, 0, 0) + i];
            float ad = std::max (v, 0.0f) + v * mean[c];
            want.push_back (sigmoid (std::max (ad, 0.0f)));
          }
      for (int i = 0; i < d.c * d.h * d.w; i++)
        want.push_back (sigmoid (xv[d.at (n, 0, 0, 0) + i]));
    }
  expect_near (data (y.get ()), want);

  NnShape in = shape ({ 2, 3, 4, 4 }), out;
  Error e;
  ASSERT_TRUE (nn_module_infer_shape (m.get (), &in, &out, e.out ())) << e.message ();
  EXPECT_EQ (shape_str (out), "[2, 96]");

  // Functional ops are not modules: only the root and its one child.
  Array mods (nn_module_named_modules (m.get ()));
  EXPECT_EQ (mods->len, 2u);
  EXPECT_EQ (nn_module_count_parameters (m.get ()), 0);
}

TEST (Graph, FlattenDefaultsAreTorchFlattens)
{
  // torch.flatten starts at dim 0 (nn.Flatten at 1).
  Module m = load (graph (R"([
    {"name": "f", "op": "flatten", "args": ["x"]},
    {"name": "g", "op": "flatten", "args": ["x"], "kwargs": {"start_dim": 1, "end_dim": 2}},
    {"name": "s", "op": "adaptive_avg_pool2d", "args": ["g"], "kwargs": {"output_size": [1, 1]}}])",
                          "f"));
  ASSERT_TRUE (m);
  auto xv = values (2 * 3 * 4 * 5, 3);
  Tensor x = make ({ 2, 3, 4, 5 }, xv);
  Tensor y = forward (m.get (), x.get ());
  ASSERT_TRUE (y);
  EXPECT_EQ (shape_str (y->shape), "[120]");
  EXPECT_EQ (data (y.get ()), xv);

  Module m2 = load (graph (R"([
    {"name": "g", "op": "flatten", "args": ["x"], "kwargs": {"start_dim": 1, "end_dim": 2}}])",
                           "g"));
  ASSERT_TRUE (m2);
  NnShape in = shape ({ 2, 3, 4, 5 }), out;
  Error e;
  ASSERT_TRUE (nn_module_infer_shape (m2.get (), &in, &out, e.out ())) << e.message ();
  EXPECT_EQ (shape_str (out), "[2, 12, 5]");
}

TEST (Graph, GeneralBroadcastingSubDivAndCat)
{
  // p: row means [2,3,4,1]; q: column means [2,3,1,5]; f: [24,5].
  Module m = load (graph (R"([
    {"name": "p", "op": "adaptive_avg_pool2d", "args": ["x"], "kwargs": {"output_size": [4, 1]}},
    {"name": "q", "op": "adaptive_avg_pool2d", "args": ["x"], "kwargs": {"output_size": [1, 5]}},
    {"name": "s", "op": "add", "args": ["p", "q"]},
    {"name": "f", "op": "flatten", "args": ["x"], "kwargs": {"end_dim": 2}},
    {"name": "t", "op": "mul", "args": ["f", "q"]},
    {"name": "g", "op": "Sigmoid", "args": ["q"]},
    {"name": "dv", "op": "div", "args": ["x", "g"]},
    {"name": "sb", "op": "sub", "args": ["dv", "p"]},
    {"name": "c", "op": "cat", "args": ["s", "t", "sb"], "kwargs": {"dim": 2}}])",
                          "c"));
  ASSERT_TRUE (m);
  const Dims4 d{ 2, 3, 4, 5 };
  auto xv = values (d.size (), 21);
  Tensor x = make ({ 2, 3, 4, 5 }, xv);
  Tensor y = forward (m.get (), x.get ());
  ASSERT_TRUE (y);
  ASSERT_EQ (shape_str (y->shape), "[2, 3, 32, 5]");

  auto row = [&] (int n, int c, int h) {
    double a = 0;
    for (int w = 0; w < d.w; w++) a += xv[d.at (n, c, h, w)];
    return (float) (a / d.w);
  };
  auto col = [&] (int n, int c, int w) {
    double a = 0;
    for (int h = 0; h < d.h; h++) a += xv[d.at (n, c, h, w)];
    return (float) (a / d.h);
  };
  std::vector<float> want;
  for (int n = 0; n < d.n; n++)
    for (int c = 0; c < d.c; c++)
      {
        for (int h = 0; h < d.h; h++)
          for (int w = 0; w < d.w; w++)
            want.push_back (row (n, c, h) + col (n, c, w));
        for (int k = 0; k < 24; k++)
          for (int w = 0; w < d.w; w++)
            want.push_back (xv[k * d.w + w] * col (n, c, w));
        for (int h = 0; h < d.h; h++)
          for (int w = 0; w < d.w; w++)
            want.push_back (xv[d.at (n, c, h, w)] / sigmoid (col (n, c, w)) - row (n, c, h));
      }
  expect_near (data (y.get ()), want);

  NnShape in = shape ({ 2, 3, 4, 5 }), out;
  Error e;
  ASSERT_TRUE (nn_module_infer_shape (m.get (), &in, &out, e.out ())) << e.message ();
  EXPECT_EQ (shape_str (out), "[2, 3, 32, 5]");
}

TEST (Graph, NoNodesIsIdentity)
{
  Module m = load (graph ("[]", "x"));
  ASSERT_TRUE (m);
  auto xv = values (8, 2);
  Tensor x = make ({ 2, 4 }, xv);
  Tensor y = forward (m.get (), x.get ());
  ASSERT_TRUE (y);
  EXPECT_EQ (data (y.get ()), xv);
}

// --- Graph: children through the core --------------------------------------------

TEST (Graph, ChildUsedTwiceRunsTwice)
{
  // BasicBlock's shape: relu(bn(x)) ... relu(add(.., x)) with one ReLU.
  Module m = load (graph (R"([
    {"name": "r1", "module": "relu", "args": ["x"]},
    {"name": "s", "op": "sub", "args": ["r1", "x"]},
    {"name": "add", "op": "add", "args": ["s", "x"]},
    {"name": "r2", "module": "relu", "args": ["s"]},
    {"name": "out", "op": "mul", "args": ["r2", "add"]}])",
                          "out", R"([{"name": "relu", "type": "ReLU"}])"));
  ASSERT_TRUE (m);
  int count = 0;
  Log log;
  Hook h = fwd_hook (at (m.get (), "relu"), count_forward, &count);
  Hook hl = fwd_hook (at (m.get (), "relu"), log_forward, &log);
  auto xv = values (10, 4);
  Tensor x = make ({ 2, 5 }, xv);
  Tensor y = forward (m.get (), x.get ());
  ASSERT_TRUE (y);
  EXPECT_EQ (count, 2);
  EXPECT_EQ (log.lines, (std::vector<std::string>{ "fwd:relu", "fwd:relu" }));
  std::vector<float> want;
  for (float v : xv)
    {
      float s = std::max (v, 0.0f) - v;
      want.push_back (std::max (s, 0.0f) * (s + v));
    }
  expect_near (data (y.get ()), want);
}

namespace {

struct Tracked {
  bool released = false;
  std::vector<float> storage;
};

void tracked_release (gpointer p) { static_cast<Tracked *> (p)->released = true; }

// Replaces the output with a copy whose storage reports when it is freed.
gboolean track_output (NnModule *, const char *, NnTensor *, NnTensor **output,
                       gpointer user_data, GError **)
{
  auto *t = static_cast<Tracked *> (user_data);
  t->storage = data (*output);
  NnTensor *copy = nn_tensor_new_borrowed (NN_DTYPE_F32, &(*output)->shape,
                                           t->storage.data (), FALSE,
                                           tracked_release, t);
  nn_tensor_unref (*output);
  *output = copy;
  return TRUE;
}

gboolean note_released (NnModule *, const char *, NnTensor **, gpointer user_data,
                        GError **)
{
  auto *seen = static_cast<std::pair<Tracked *, bool> *> (user_data);
  seen->second = seen->first->released;
  return TRUE;
}

}  // namespace

TEST (Graph, IntermediatesAreFreedAfterTheirLastUse)
{
  // a is read only by b, so it must be gone before c runs.
  Module m = load (graph (R"([
    {"name": "a", "module": "m1", "args": ["x"]},
    {"name": "b", "module": "m2", "args": ["a"]},
    {"name": "c", "module": "m3", "args": ["b"]},
    {"name": "d", "op": "add", "args": ["c", "x"]}])",
                          "d", R"([{"name": "m1", "type": "ReLU"}, {"name": "m2", "type": "ReLU"},
                                   {"name": "m3", "type": "ReLU"}])"));
  ASSERT_TRUE (m);
  Tracked tracked;
  std::pair<Tracked *, bool> seen (&tracked, false);
  Hook h = fwd_hook (at (m.get (), "m1"), track_output, &tracked);
  Error e;
  Hook p (nn_module_add_pre_hook (at (m.get (), "m3"), note_released, &seen, nullptr,
                                  nullptr, 0, e.out ()));
  Tensor x = make ({ 4 }, { -1.0f, 2.0f, -3.0f, 4.0f });
  Tensor y = forward (m.get (), x.get ());
  ASSERT_TRUE (y);
  EXPECT_TRUE (seen.second);
  expect_near (data (y.get ()), { -1.0f, 4.0f, -3.0f, 8.0f });
}

TEST (Graph, ReplacedChildIsSeenByForward)
{
  Module m = load (in_seq (graph (R"([
    {"name": "a", "module": "act", "args": ["x"]},
    {"name": "out", "op": "add", "args": ["a", "x"]}])",
                                  "out", R"([{"name": "act", "type": "ReLU"}])")));
  ASSERT_TRUE (m);
  auto xv = values (6, 9);
  Tensor x = make ({ 2, 3 }, xv);
  Tensor y1 = forward (m.get (), x.get ());
  ASSERT_TRUE (y1);
  std::vector<float> want1, want2;
  for (float v : xv)
    {
      want1.push_back (std::max (v, 0.0f) + v);
      want2.push_back (sigmoid (v) + v);
    }
  expect_near (data (y1.get ()), want1);

  Error e;
  Module sig (nn_descriptor_load_module_data (reg (), R"({"type": "Sigmoid"})", -1,
                                              "new", e.out ()));
  ASSERT_TRUE (sig) << e.message ();
  NnShape in = shape ({ 2, 3 });
  NnSurgeryOptions opts = { sizeof (NnSurgeryOptions), 0, &in };
  ASSERT_TRUE (nn_surgery_replace (m.get (), "blk.act", sig.get (), &opts, e.out ()))
      << e.message ();
  Tensor y2 = forward (m.get (), x.get ());
  ASSERT_TRUE (y2);
  expect_near (data (y2.get ()), want2);
}

TEST (Graph, ChildrenAreReplacedNotDeleted)
{
  // A Graph is a container (replace, hooks) but neither indexable nor
  // keyed: its node list names its children, so surgery may not drop one.
  Module m = load (in_seq (graph (R"([
    {"name": "a", "module": "act", "args": ["x"]}])",
                                  "a", R"([{"name": "act", "type": "ReLU"}])")));
  ASSERT_TRUE (m);
  const NnLayerType *t = nn_module_get_type (at (m.get (), "blk"));
  EXPECT_TRUE (t->flags & NN_LAYER_CONTAINER);
  EXPECT_FALSE (t->flags & (NN_LAYER_INDEXABLE | NN_LAYER_KEYED));
  Error e;
  NnShape in = shape ({ 2, 3 });
  NnSurgeryOptions opts = { sizeof (NnSurgeryOptions), 0, &in };
  EXPECT_FALSE (nn_surgery_delete (m.get (), "blk.act", &opts, e.out ()));
  EXPECT_TRUE (e.matches (NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_CONTAINER)) << e.message ();
  EXPECT_NE (nn_module_get_child (at (m.get (), "blk"), "act"), nullptr);
}

TEST (Graph, ReprIsClassNameAndChildren)
{
  std::string g = graph (R"([{"name": "a", "module": "act", "args": ["x"]}])", "a",
                         R"([{"name": "act", "type": "ReLU", "config": {"inplace": true}}])");
  g.insert (1, R"("class": "Block", )");
  Module m = load (g);
  ASSERT_TRUE (m);
  EXPECT_EQ (take (nn_module_to_string (m.get ())),
             "Block(\n  (act): ReLU(inplace=True)\n)");

  // The config round-trips through a saved descriptor unchanged.
  gsize len = 0;
  std::string first = take (nn_descriptor_to_data (m.get (), &len));
  Error e;
  Module again (nn_descriptor_load_data (reg (), first.c_str (), -1, "saved", e.out ()));
  ASSERT_TRUE (again) << e.message ();
  EXPECT_EQ (take (nn_descriptor_to_data (again.get (), &len)), first);
}

TEST (Graph, ConcurrentForwardsAgree)
{
  Module m = load (graph (R"([
    {"name": "s", "op": "adaptive_avg_pool2d", "args": ["x"], "kwargs": {"output_size": 1}},
    {"name": "m", "op": "mul", "args": ["x", "s"]},
    {"name": "c", "op": "cat", "args": ["m", "x"], "kwargs": {"dim": 1}}])", "c"));
  ASSERT_TRUE (m);
  Tensor x = make ({ 2, 3, 8, 8 }, values (384, 6));
  Tensor ref = forward (m.get (), x.get ());
  ASSERT_TRUE (ref);
  std::vector<int> same (4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++)
    threads.emplace_back ([&, t] {
      for (int i = 0; i < 20; i++)
        {
          NnTensor *y = nn_module_forward (m.get (), x.get (), nullptr);
          if (y && data (y) == data (ref.get ()))
            same[t]++;
          if (y)
            nn_tensor_unref (y);
        }
    });
  for (auto &t : threads)
    t.join ();
  EXPECT_EQ (same, (std::vector<int>{ 20, 20, 20, 20 }));
}

// --- Graph: errors -------------------------------------------------------------------

TEST (Graph, BroadcastErrorNamesNodeAndShapes)
{
  Module m = load (in_seq (graph (R"([
    {"name": "c", "op": "cat", "args": ["x", "x"], "kwargs": {"dim": 1}},
    {"name": "p", "op": "adaptive_avg_pool2d", "args": ["c"], "kwargs": {"output_size": 28}},
    {"name": "add", "op": "add", "args": ["x", "p"]}])",
                                  "add")));
  ASSERT_TRUE (m);
  const std::string want =
      "blk: Graph: node 'add': cannot broadcast [1, 64, 56, 56] with [1, 128, 28, 28]";
  NnShape in = shape ({ 1, 64, 56, 56 }), out;
  Error e;
  EXPECT_FALSE (nn_module_infer_shape (m.get (), &in, &out, e.out ()));
  EXPECT_TRUE (e.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH)) << e.message ();
  EXPECT_EQ (e.message (), want);

  Tensor x = make ({ 1, 64, 56, 56 }, std::vector<float> (64 * 56 * 56, 0.5f));
  EXPECT_EQ (nn_module_forward (m.get (), x.get (), e.out ()), nullptr);
  EXPECT_TRUE (e.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH)) << e.message ();
  EXPECT_EQ (e.message (), want);

  // Equal ranks, one side 1: fine; a trailing mismatch is not.
  Module ok = load (graph (R"([
    {"name": "p", "op": "adaptive_avg_pool2d", "args": ["x"], "kwargs": {"output_size": [1, 3]}},
    {"name": "add", "op": "add", "args": ["x", "p"]}])", "add"));
  ASSERT_TRUE (ok);
  NnShape in2 = shape ({ 2, 4, 6, 3 });
  ASSERT_TRUE (nn_module_infer_shape (ok.get (), &in2, &out, e.out ())) << e.message ();
  EXPECT_EQ (shape_str (out), "[2, 4, 6, 3]");
  NnShape in3 = shape ({ 2, 4, 6, 5 });
  EXPECT_FALSE (nn_module_infer_shape (ok.get (), &in3, &out, e.out ()));
  EXPECT_EQ (e.message (), "Graph: node 'add': cannot broadcast [2, 4, 6, 5] with [2, 4, 1, 3]");
}

TEST (Graph, CatShapeErrors)
{
  Module m = load (graph (R"([
    {"name": "p", "op": "adaptive_avg_pool2d", "args": ["x"], "kwargs": {"output_size": 2}},
    {"name": "cat", "op": "cat", "args": ["x", "p"], "kwargs": {"dim": 1}}])", "cat"));
  ASSERT_TRUE (m);
  NnShape in = shape ({ 1, 3, 4, 4 }), out;
  Error e;
  EXPECT_FALSE (nn_module_infer_shape (m.get (), &in, &out, e.out ()));
  EXPECT_EQ (e.message (), "Graph: node 'cat': cannot cat [1, 3, 4, 4] with [1, 3, 2, 2] "
                           "along dim 1: sizes must match except in that dim");

  Module m2 = load (graph (R"([{"name": "cat", "op": "cat", "args": ["x"], "kwargs": {"dim": 4}}])",
                           "cat"));
  ASSERT_TRUE (m2);
  Tensor x = make ({ 1, 3, 4, 4 }, values (48, 1));
  EXPECT_EQ (nn_module_forward (m2.get (), x.get (), e.out ()), nullptr);
  EXPECT_EQ (e.message (), "Graph: node 'cat': cat dim 4 is out of range for 4-D tensors "
                           "(expected -4..3)");
}

TEST (Graph, ConfigErrorsNameTheNode)
{
  struct Case {
    std::string nodes, output, want;
  };
  const std::vector<Case> cases = {
    { R"([{"name": "a", "op": "relu", "args": ["x"]},
          {"name": "b", "op": "add", "args": ["a", "nope"]}])", "b",
      "node 'b': arg 'nope' is neither the input nor an earlier node "
      "(defined so far: 'x', 'a')" },
    { R"([{"name": "a", "op": "add", "args": ["x", "b"]},
          {"name": "b", "op": "relu", "args": ["x"]}])", "a",
      "node 'a': arg 'b' is neither the input nor an earlier node (defined so far: 'x')" },
    { R"([{"name": "a", "op": "relu", "args": ["x"]},
          {"name": "a", "op": "relu", "args": ["a"]}])", "a",
      "nodes[1]: duplicate node name 'a' (first at nodes[0])" },
    { R"([{"name": "x", "op": "relu", "args": ["x"]}])", "x",
      "nodes[0]: node name 'x' is the graph input's name" },
    { R"([{"name": "a", "op": "relu", "args": ["x"]}])", "zz",
      "output 'zz' is neither the input nor a node (values: 'x', 'a')" },
    { R"([{"name": "a", "module": "act", "args": ["x", "x"]}])", "a",
      "node 'a': module 'act' takes 1 arg, found 2" },
    { R"([{"name": "a", "op": "add", "args": ["x"]}])", "a",
      "node 'a': op 'add' takes 2 args, found 1" },
    { R"([{"name": "a", "op": "cat", "args": []}])", "a",
      "node 'a': op 'cat' takes at least 1 args, found 0" },
    { R"([{"name": "a", "module": "act", "op": "relu", "args": ["x"]}])", "a",
      "node 'a': give exactly one of \"module\" (a child name) and \"op\" (a functional op), "
      "found both" },
    { R"([{"name": "a", "args": ["x"]}])", "a",
      "node 'a': give exactly one of \"module\" (a child name) and \"op\" (a functional op), "
      "found neither" },
    { R"([{"name": "a", "op": "relu", "args": ["x"], "arg": 1}])", "a",
      "node 'a': unknown field 'arg' (expected name, module or op, args, kwargs)" },
    { R"([{"name": "a", "module": "act", "args": ["x"], "kwargs": {"inplace": true}}])", "a",
      "node 'a': a module node takes no kwargs" },
    { R"([{"name": "a", "op": "flatten", "args": ["x"], "kwargs": {"dims": 1}}])", "a",
      "node 'a': op 'flatten' has no kwarg 'dims' (accepted: 'start_dim', 'end_dim')" },
    { R"([{"name": "a", "op": "cat", "args": ["x"], "kwargs": {"axis": 1}}])", "a",
      "node 'a': op 'cat' has no kwarg 'axis' (accepted: 'dim')" },
    { R"([{"name": "a", "op": "add", "args": ["x", "x"], "kwargs": {"alpha": 2}}])", "a",
      "node 'a': op 'add' has no kwarg 'alpha' (accepted: none)" },
    { R"([{"name": "a", "op": "cat", "args": ["x"], "kwargs": {"dim": "1"}}])", "a",
      "node 'a': cat: kwarg 'dim' must be an integer" },
    { R"([{"name": "a", "op": "adaptive_avg_pool2d", "args": ["x"]}])", "a",
      "node 'a': op 'adaptive_avg_pool2d' needs kwarg 'output_size'" },
    { R"([{"name": "a", "op": "Sequential", "args": ["x"]}])", "a",
      "node 'a': op 'Sequential' is a container type, which cannot be used as a function" },
    { R"([{"name": "a", "op": "Linear", "args": ["x"],
           "kwargs": {"in_features": 2, "out_features": 2}}])", "a",
      "node 'a': op 'Linear' holds parameters or buffers, so it cannot be used as a "
      "function; make it a child and use \"module\"" },
    { R"([{"name": "a", "op": "Softmax", "args": ["x"], "kwargs": {"dimm": 1}}])", "a",
      "node 'a': Softmax: unknown key 'dimm'" },
    { R"([{"name": "a", "op": "ReLU", "args": ["x", "x"]}])", "a",
      "node 'a': op 'ReLU' takes 1 arg, found 2" },
    { R"([{"name": "a", "op": "relu", "args": "x"}])", "a",
      "nodes[0] 'a': 'args' must be an array of value names, found a string" },
    { R"([{"name": "a", "op": "relu", "args": [3]}])", "a",
      "nodes[0] 'a': args[0] must be a value name, found a number" },
    { R"([{"op": "relu", "args": ["x"]}])", "a",
      "nodes[0] needs a non-empty string 'name', found null" },
    { R"([7])", "a", "nodes[0] must be an object, found a number" },
    { R"({"a": 1})", "a", "'nodes' must be an array of node objects, found an object" },
  };
  for (const auto &c : cases)
    {
      std::string msg = load_error (in_seq (graph (c.nodes, c.output,
                                                   R"([{"name": "act", "type": "ReLU"}])")));
      EXPECT_EQ (msg.rfind ("blk: Graph: ", 0), 0u) << msg;
      EXPECT_TRUE (contains (msg, c.want)) << "got:  " << msg << "\nwant: " << c.want;
    }
}

TEST (Graph, InputsMustBeOneName)
{
  for (const char *inputs : { R"(["x", "y"])", R"([])", R"("x")", R"([1])" })
    {
      std::string json = R"({"type": "Graph", "config": {"inputs": )" + std::string (inputs) +
                         R"(, "nodes": [], "output": "x"}})";
      std::string msg = load_error (json);
      EXPECT_TRUE (contains (msg, "Graph: 'inputs' must be an array of exactly one string"))
          << msg;
    }
}

TEST (Graph, UnknownOpListsBuiltinsAndTypes)
{
  std::string msg = load_error (in_seq (graph (
      R"([{"name": "a", "op": "frobnicate", "args": ["x"]}])", "a")));
  EXPECT_EQ (msg.rfind ("blk: Graph: node 'a': unknown op 'frobnicate': not a built-in op "
                        "(add, sub, mul, div, cat, flatten, relu, adaptive_avg_pool2d) nor "
                        "a layer type: ", 0), 0u) << msg;
  // The registry's part lists the layer types that are available.
  EXPECT_TRUE (contains (msg, "Conv2d")) << msg;
  EXPECT_TRUE (contains (msg, "Hardsigmoid")) << msg;
}

TEST (Graph, MissingChildAtLoadNamesGraphNodeAndChild)
{
  std::string msg = load_error (in_seq (graph (
      R"([{"name": "conv", "module": "conv1", "args": ["x"]}])", "conv",
      R"([{"name": "act", "type": "ReLU"}, {"name": "bn", "type": "Identity"}])")));
  EXPECT_EQ (msg, "blk: Graph: node 'conv' calls child 'conv1', which does not exist "
                  "(children: 'act', 'bn')");
}

TEST (Graph, FunctionalOpErrorsNameTheNode)
{
  // Flatten's own shape check, reached through the alias.
  Module m = load (in_seq (graph (R"([
    {"name": "f", "op": "flatten", "args": ["x"], "kwargs": {"start_dim": 3}}])", "f")));
  ASSERT_TRUE (m);
  NnShape in = shape ({ 2, 3 }), out;
  Error e;
  EXPECT_FALSE (nn_module_infer_shape (m.get (), &in, &out, e.out ()));
  EXPECT_EQ (e.message ().rfind ("blk: Graph: node 'f' (op 'flatten'): ", 0), 0u)
      << e.message ();
}
