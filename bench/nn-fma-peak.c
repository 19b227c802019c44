/* nn-fma-peak: one core's float32 multiply-add peak, the bound that a
 * GEMM-bound forward (vit_b_16 on one thread, docs/ENGINE.md) is held to.
 *
 *   taskset -c 0 build/bench/nn-fma-peak [--seconds S]
 *
 * Twelve independent FMA chains per width, enough to cover the FMA
 * latency (4 cycles) times two FMA pipes with room to spare, so the
 * figure is the pipes' throughput and not a chain's latency.  Prints
 * GFLOP/s (2 flops per lane per FMA) for 256- and 512-bit vectors; the
 * best of five timed runs.  The result is summed and printed so that the
 * compiler keeps the chains. */
#include <glib.h>
#include <immintrin.h>
#include <stdio.h>

#include "bench-time.h"

/* Seconds of this thread's CPU time: a busy machine delays the run but
 * does not inflate it. */
static double
now_s (void)
{
  return nn_bench_now_ms (CLOCK_THREAD_CPUTIME_ID) / 1e3;
}

#define CHAINS 12

/* Twelve named accumulators rather than an array: GCC at -O2 kept an
 * array in memory, a load and a store around every FMA. */
#define CHAIN_BODY(FMA, ADD)                                               \
  for (gint64 i = 0; i < iters; i++)                                      \
    {                                                                     \
      c0 = FMA (c0, a, b); c1 = FMA (c1, a, b); c2 = FMA (c2, a, b);      \
      c3 = FMA (c3, a, b); c4 = FMA (c4, a, b); c5 = FMA (c5, a, b);      \
      c6 = FMA (c6, a, b); c7 = FMA (c7, a, b); c8 = FMA (c8, a, b);      \
      c9 = FMA (c9, a, b); c10 = FMA (c10, a, b); c11 = FMA (c11, a, b);  \
    }                                                                     \
  c0 = ADD (ADD (ADD (c0, c1), ADD (c2, c3)), ADD (ADD (c4, c5), ADD (c6, c7))); \
  c0 = ADD (c0, ADD (ADD (c8, c9), ADD (c10, c11)))

#define CHAIN_VARS(T, SET1)                                                \
  T c0 = SET1 (0), c1 = SET1 (1), c2 = SET1 (2), c3 = SET1 (3),            \
    c4 = SET1 (4), c5 = SET1 (5), c6 = SET1 (6), c7 = SET1 (7),            \
    c8 = SET1 (8), c9 = SET1 (9), c10 = SET1 (10), c11 = SET1 (11)

__attribute__ ((target ("avx2,fma"))) static float
chains256 (gint64 iters)
{
  const __m256 a = _mm256_set1_ps (0.999999f), b = _mm256_set1_ps (1e-7f);
  CHAIN_VARS (__m256, _mm256_set1_ps);
  CHAIN_BODY (_mm256_fmadd_ps, _mm256_add_ps);
  float out[8];
  _mm256_storeu_ps (out, c0);
  return out[0] + out[7];
}

__attribute__ ((target ("avx512f"))) static float
chains512 (gint64 iters)
{
  const __m512 a = _mm512_set1_ps (0.999999f), b = _mm512_set1_ps (1e-7f);
  CHAIN_VARS (__m512, _mm512_set1_ps);
  CHAIN_BODY (_mm512_fmadd_ps, _mm512_add_ps);
  return _mm512_reduce_add_ps (c0);
}

/* Best GFLOP/s of five runs of @iters iterations of @fn at @lanes lanes. */
static double
best_gflops (float (*fn) (gint64), int lanes, gint64 iters, float *sink)
{
  double best = 0;
  for (int r = 0; r < 5; r++)
    {
      double t0 = now_s ();
      *sink += fn (iters);
      double dt = now_s () - t0;
      double gf = (double) iters * CHAINS * lanes * 2 / dt / 1e9;
      best = MAX (best, gf);
    }
  return best;
}

int
main (int argc, char **argv)
{
  double seconds = 0.5;
  GOptionEntry entries[] = {
    { "seconds", 0, 0, G_OPTION_ARG_DOUBLE, &seconds,
      "Rough length of each timed run (default 0.5)", "S" },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- one core's float32 FMA peak");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_autoptr (GError) err = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &err) || seconds <= 0 || seconds > 60)
    {
      fprintf (stderr, "nn-fma-peak: %s\n",
               err ? err->message : "--seconds: expected 0 < S <= 60");
      return 2;
    }
  __builtin_cpu_init ();
  if (!__builtin_cpu_supports ("avx2") || !__builtin_cpu_supports ("fma"))
    {
      fprintf (stderr, "nn-fma-peak: this CPU has no AVX2 FMA\n");
      return 1;
    }
  float sink = 0;
  /* About 4 G lane-flops per second per 256-bit pipe pair at 3 GHz: size
   * the runs from a short calibration instead of guessing. */
  double t0 = now_s ();
  sink += chains256 (1 << 20);
  double per_iter = (now_s () - t0) / (1 << 20);
  gint64 iters = (gint64) (seconds / MAX (per_iter, 1e-12));
  printf ("fma256_gflops %.1f\n", best_gflops (chains256, 8, iters, &sink));
  if (__builtin_cpu_supports ("avx512f"))
    printf ("fma512_gflops %.1f\n", best_gflops (chains512, 16, iters / 2, &sink));
  else
    printf ("fma512_gflops none (no AVX-512)\n");
  /* Never true for these inputs; keeps the chains' results alive. */
  if (sink == 12345.f)
    printf ("sink %g\n", sink);
  return 0;
}
