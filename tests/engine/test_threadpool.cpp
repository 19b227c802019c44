// Tests for core/threadpool.c and core/threads.c.  Also built with
// ThreadSanitizer (the "tsan" suite): keep every shared write atomic.
#include "engine-test.h"

#include <atomic>
#include <dirent.h>
#include <thread>

extern "C" {
#include <nnkit/plugin.h>
#include <nnkit/runtime.h>
}

using namespace nnengine;

namespace {

struct Counts {
  std::vector<std::atomic<int>> hits;
  std::atomic<int> calls { 0 };
  std::atomic<unsigned long> threads_mask { 0 };
  explicit Counts (size_t n) : hits (n) {}
};

thread_local int thread_slot = -1;
std::atomic<int> next_slot { 0 };

void
count_range (gsize b, gsize e, gpointer data)
{
  auto *c = static_cast<Counts *> (data);
  if (thread_slot < 0)
    thread_slot = next_slot++;
  c->threads_mask |= 1ul << (thread_slot % 64);
  c->calls++;
  for (gsize i = b; i < e; i++)
    c->hits[i]++;
}

// Slow enough per range that a sleeping worker wakes before the caller
// has taken every range.
void
slow_range (gsize b, gsize e, gpointer data)
{
  g_usleep (2000);
  count_range (b, e, data);
}

int
n_threads_of_process ()
{
  int n = 0;
  DIR *d = opendir ("/proc/self/task");
  if (!d)
    return -1;
  while (struct dirent *e = readdir (d))
    if (e->d_name[0] != '.')
      n++;
  closedir (d);
  return n;
}

void
expect_each_once (Counts &c)
{
  for (size_t i = 0; i < c.hits.size (); i++)
    ASSERT_EQ (1, c.hits[i].load ()) << "index " << i;
}

} // namespace

TEST (ThreadPool, EveryIndexRunsOnce)
{
  nn_set_num_threads (2);
  NnThreadPool *pool = nn_thread_pool_new (4);
  for (size_t n : { 1, 2, 3, 7, 8, 9, 1000, 12345 }) {
    Counts c (n);
    nn_thread_pool_parallel_for (pool, n, count_range, &c);
    expect_each_once (c);
  }
  Counts none (0);
  nn_thread_pool_parallel_for (pool, 0, count_range, &none);
  EXPECT_EQ (0, none.calls.load ());
  nn_thread_pool_free (pool);
}

TEST (ThreadPool, UsesMoreThanOneThread)
{
  nn_set_num_threads (2);
  NnThreadPool *pool = nn_thread_pool_new (2);
  EXPECT_EQ (2u, nn_thread_pool_get_n_threads (pool));
  Counts c (64);
  nn_thread_pool_parallel_for (pool, 64, slow_range, &c);
  expect_each_once (c);
  EXPECT_GT (__builtin_popcountl (c.threads_mask.load ()), 1);
  nn_thread_pool_free (pool);
}

TEST (ThreadPool, OneThreadRunsInTheCaller)
{
  nn_set_num_threads (1);
  NnThreadPool *pool = nn_thread_pool_new (2);
  Counts c (100);
  nn_thread_pool_parallel_for (pool, 100, count_range, &c);
  expect_each_once (c);
  EXPECT_EQ (1, c.calls.load ());
  Counts d (10);
  nn_thread_pool_parallel_for (nullptr, 10, count_range, &d);
  expect_each_once (d);
  EXPECT_EQ (1, d.calls.load ());
  nn_thread_pool_free (pool);
  nn_set_num_threads (2);
}

TEST (ThreadPool, NoThreadStartsPerLoop)
{
  nn_set_num_threads (2);
  NnThreadPool *pool = nn_thread_pool_get_default ();
  EXPECT_EQ (pool, nn_call_get_thread_pool (nullptr));
  Counts warm (16);
  nn_thread_pool_parallel_for (pool, 16, count_range, &warm);
  int before = n_threads_of_process ();
  for (int i = 0; i < 200; i++) {
    Counts c (16);
    nn_thread_pool_parallel_for (pool, 16, count_range, &c);
    expect_each_once (c);
  }
  EXPECT_EQ (before, n_threads_of_process ());
}

TEST (ThreadPool, GrowsWhenTheCountIsRaised)
{
  nn_set_num_threads (1);
  NnThreadPool *pool = nn_thread_pool_new (1);
  EXPECT_EQ (1u, nn_thread_pool_get_n_threads (pool));
  nn_set_num_threads (3);
  Counts c (48);
  nn_thread_pool_parallel_for (pool, 48, slow_range, &c);
  expect_each_once (c);
  EXPECT_EQ (3u, nn_thread_pool_get_n_threads (pool));
  nn_thread_pool_free (pool);
  nn_set_num_threads (2);
}

namespace {
struct Nested {
  NnThreadPool *pool;
  std::atomic<int> inner_total { 0 };
};

void
nested_range (gsize b, gsize e, gpointer data)
{
  auto *n = static_cast<Nested *> (data);
  for (gsize i = b; i < e; i++) {
    Counts inner (10);
    nn_thread_pool_parallel_for (n->pool, 10, count_range, &inner);
    for (auto &h : inner.hits)
      n->inner_total += h.load ();
  }
}
} // namespace

TEST (ThreadPool, NestedLoopRunsWithoutDeadlock)
{
  nn_set_num_threads (2);
  Nested n;
  n.pool = nn_thread_pool_new (2);
  nn_thread_pool_parallel_for (n.pool, 20, nested_range, &n);
  EXPECT_EQ (200, n.inner_total.load ());
  nn_thread_pool_free (n.pool);
}

TEST (ThreadPool, ConcurrentCallersAllFinish)
{
  nn_set_num_threads (2);
  NnThreadPool *pool = nn_thread_pool_new (2);
  std::vector<std::thread> callers;
  std::atomic<int> good { 0 };
  for (int t = 0; t < 4; t++)
    callers.emplace_back ([&] {
      for (int k = 0; k < 50; k++) {
        Counts c (333);
        nn_thread_pool_parallel_for (pool, 333, count_range, &c);
        bool ok = true;
        for (auto &h : c.hits)
          ok = ok && h.load () == 1;
        good += ok;
      }
    });
  for (auto &t : callers)
    t.join ();
  EXPECT_EQ (200, good.load ());
  nn_thread_pool_free (pool);
}

TEST (Threads, CountIsAtLeastOne)
{
  nn_set_num_threads (0);
  EXPECT_EQ (1, nn_get_num_threads ());
  nn_set_num_threads (-5);
  EXPECT_EQ (1, nn_get_num_threads ());
  nn_set_num_threads (3);
  EXPECT_EQ (3, nn_get_num_threads ());
  nn_set_num_threads (2);
}

TEST (Threads, DefaultComesFromTheEnvironment)
{
  // Only a fresh process has an undecided count: engine-check reads it.
  CheckRun r = run_check ("threads", { "NN_NUM_THREADS=5" });
  ASSERT_EQ (0, r.status) << r.err;
  EXPECT_EQ ("5", r.kv["threads"]);
  r = run_check ("threads", { "NN_NUM_THREADS=zero" });
  EXPECT_EQ (std::to_string (g_get_num_processors ()), r.kv["threads"]);
  r = run_check ("threads", {}, { "NN_NUM_THREADS" });
  EXPECT_EQ (std::to_string (g_get_num_processors ()), r.kv["threads"]);
}

// The grain rule (nn_threads_for_work): whole grains per thread, at least
// one thread, at most the process's count.  Its decisions, not timings.
TEST (Threads, WorkGetsAThreadPerWholeGrain)
{
  nn_set_num_threads (4);
  EXPECT_EQ (1, nn_threads_for_work (0, 100));
  EXPECT_EQ (1, nn_threads_for_work (-7, 100));
  EXPECT_EQ (1, nn_threads_for_work (99, 100));
  EXPECT_EQ (1, nn_threads_for_work (199, 100));
  EXPECT_EQ (2, nn_threads_for_work (200, 100));
  EXPECT_EQ (3, nn_threads_for_work (399, 100));
  EXPECT_EQ (4, nn_threads_for_work (400, 100));
  EXPECT_EQ (4, nn_threads_for_work (G_MAXINT64, 100));
  // grain <= 0 means NN_WORK_GRAIN.
  EXPECT_EQ (1, nn_threads_for_work (NN_WORK_GRAIN * 2 - 1, 0));
  EXPECT_EQ (2, nn_threads_for_work (NN_WORK_GRAIN * 2, -1));
  // A product of 2 grains of multiply-adds gets 2 threads, half of one 1.
  EXPECT_EQ (2, nn_threads_for_work (2 * NN_GEMM_GRAIN, NN_GEMM_GRAIN));
  EXPECT_EQ (1, nn_threads_for_work (NN_GEMM_GRAIN / 2, NN_GEMM_GRAIN));
  nn_set_num_threads (1);
  EXPECT_EQ (1, nn_threads_for_work (G_MAXINT64, 1));
  nn_set_num_threads (2);
}

// Small work runs as one range in the calling thread; large work is
// split into ranges (a few per thread) like nn_thread_pool_parallel_for.
TEST (ThreadPool, SmallWorkRunsInTheCaller)
{
  nn_set_num_threads (2);
  NnThreadPool *pool = nn_thread_pool_new (2);
  Counts small (1000);
  thread_slot = -1;
  nn_thread_pool_parallel_for_work (pool, 1000, NN_WORK_GRAIN - 1, count_range, &small);
  expect_each_once (small);
  EXPECT_EQ (1, small.calls.load ());
  int caller = thread_slot;
  EXPECT_EQ (1ul << (caller % 64), small.threads_mask.load ());
  Counts large (1000);
  nn_thread_pool_parallel_for_work (pool, 1000, NN_WORK_GRAIN * 2, count_range, &large);
  expect_each_once (large);
  EXPECT_EQ (8, large.calls.load ());   // 2 threads x 4 ranges
  Counts none (0);
  nn_thread_pool_parallel_for_work (pool, 0, NN_WORK_GRAIN * 8, count_range, &none);
  EXPECT_EQ (0, none.calls.load ());
  nn_thread_pool_free (pool);
}
