// Concurrent reads of one model (docs/ARCHITECTURE.md, "Threads"): lookups
// by path and flattened index, iteration and forward from 4 threads, while
// each thread also builds trees, which moves the global tree generation,
// and registers hooks on its own copy.  Run under ThreadSanitizer too
// (scripts/test.sh), where the lazily rebuilt index cache used to race.
#include "nn-test.h"

#include <atomic>
#include <thread>
#include <vector>

using namespace nntest;

namespace {

const char *kNet = R"({"format": "nnkit", "version": 1, "input_shape": [1, 2, 6, 6],
 "model": {"type": "Sequential", "children": [
    {"name": "conv", "type": "Conv2d",
     "config": {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "padding": 1}},
    {"name": "bn", "type": "BatchNorm2d", "config": {"num_features": 3}},
    {"name": "act", "type": "ReLU"},
    {"name": "head", "type": "Sequential", "children": [
      {"name": "pool", "type": "AdaptiveAvgPool2d", "config": {"output_size": 1}},
      {"name": "flat", "type": "Flatten"},
      {"name": "fc", "type": "Linear", "config": {"in_features": 3, "out_features": 4}}]},
    {"name": "again", "ref": "act"}]}})";

Module
load (NnRegistry *reg)
{
  Error e;
  Module m (nn_descriptor_load_data (reg, kNet, -1, "net", e.out ()));
  EXPECT_NE (m, nullptr) << e.message ();
  nn_module_reset_parameters (m.get (), 3);
  return m;
}

Tensor
input ()
{
  NnShape s = shape ({ 1, 2, 6, 6 });
  Tensor t (nn_tensor_new (NN_DTYPE_F32, &s));
  float *d = nn_tensor_f32 (t.get ());
  for (gint64 i = 0; i < nn_shape_numel (&s); i++)
    d[i] = (float) ((i * 7) % 11) / 11.0f - 0.4f;
  return t;
}

std::vector<float>
values (NnTensor *t)
{
  const float *d = nn_tensor_f32 (t);
  return std::vector<float> (d, d + nn_tensor_numel (t));
}

gboolean
count_calls (NnModule *m, const char *path, const NnValue *args,
             const NnValue *kwargs, NnValue **out, gpointer user_data,
             GError **error)
{
  ++*(int *) user_data;
  return TRUE;
}

TEST (Concurrency, LookupsIterationForwardAndHooksFromFourThreads)
{
  nn_set_num_threads (1);
  Registry reg = default_registry ();
  Module shared = load (reg.get ());
  ASSERT_NE (shared, nullptr);
  Tensor x = input ();
  Error e;
  Tensor y0 (nn_module_forward (shared.get (), x.get (), e.out ()));
  ASSERT_NE (y0, nullptr) << e.message ();
  const std::vector<float> expected = values (y0.get ());
  Array mods (nn_module_named_modules (shared.get ()));
  std::vector<std::string> paths;
  std::vector<NnModule *> modules;
  for (guint i = 0; i < mods->len; i++) {
    auto *it = (NnNamedItem *) mods->pdata[i];
    paths.push_back (it->name);
    modules.push_back (it->module);
  }
  std::vector<Module> clones;
  for (int t = 0; t < 4; t++)
    clones.push_back (load (reg.get ()));

  std::atomic<int> failures { 0 };
  auto work = [&] (int t) {
    NnModule *clone = clones[t].get ();
    for (int round = 0; round < 60; round++) {
      size_t i = (size_t) (round + t) % paths.size ();
      const char *path = nullptr;
      GError *err = nullptr;
      NnModule *m = nn_module_lookup_index (shared.get (), (gint64) i, &path, &err);
      if (m != modules[i] || path == nullptr || paths[i] != path)
        failures++;
      if (nn_module_index_of (shared.get (), modules[i]) != (gint64) i)
        failures++;
      if (nn_module_lookup_path (shared.get (), paths[i].c_str (), &err) != modules[i])
        failures++;
      g_clear_error (&err);
      GPtrArray *all = nn_module_named_modules (shared.get ());
      if (all->len != paths.size ())
        failures++;
      g_ptr_array_unref (all);
      NnTensor *y = nn_module_forward (shared.get (), x.get (), &err);
      if (y == nullptr || values (y) != expected)
        failures++;
      if (y)
        nn_tensor_unref (y);
      g_clear_error (&err);
      // Building a tree moves the global generation under the readers.
      NnModule *tmp = nn_descriptor_load_data (reg.get (), kNet, -1, "tmp", &err);
      if (tmp == nullptr)
        failures++;
      else
        nn_module_unref (tmp);
      g_clear_error (&err);
      // Hooks on this thread's own copy.
      int calls = 0;
      NnHookHandle *h = nn_module_add_forward_hook (
          nn_module_lookup_path (clone, "head.fc", nullptr), count_calls, &calls,
          nullptr, "count", 0, &err);
      NnTensor *yc = h ? nn_module_forward (clone, x.get (), &err) : nullptr;
      if (h == nullptr || yc == nullptr || calls != 1)
        failures++;
      if (yc)
        nn_tensor_unref (yc);
      if (h) {
        nn_hook_handle_remove (h);
        nn_hook_handle_free (h);
      }
      g_clear_error (&err);
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++)
    threads.emplace_back (work, t);
  for (auto &th : threads)
    th.join ();
  EXPECT_EQ (failures.load (), 0);
}

}  // namespace
