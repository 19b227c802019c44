/* nnkit core: the process-wide thread count.  No BLAS here: the core does
 * not link OpenBLAS; the plugins that use it apply this count themselves
 * before BLAS work (plugins/blas/nn-blas.h), and the thread pool sizes
 * itself from it. */
#include "nn-private.h"
#include "nn-engine-private.h"

static gint num_threads = 0; /* 0: not decided yet */

/* MT safe; takes effect at the next forward (pool and BLAS read it). */
void
nn_set_num_threads (int n)
{
  g_atomic_int_set (&num_threads, MAX (n, 1));
}

/* The first call settles the default: NN_NUM_THREADS, else the cores.
 * MT safe. */
int
nn_get_num_threads (void)
{
  int n = g_atomic_int_get (&num_threads);
  static gsize once = 0;

  if (n > 0)
    return n;
  if (g_once_init_enter (&once))
    {
      const char *env = g_getenv ("NN_NUM_THREADS");
      guint64 v = 0;

      if (!env || !g_ascii_string_to_unsigned (env, 10, 1, 1024, &v, NULL))
        v = (guint64) g_get_num_processors ();
      g_atomic_int_compare_and_exchange (&num_threads, 0, (int) v);
      g_once_init_leave (&once, 1);
    }
  return g_atomic_int_get (&num_threads);
}

/* The grain rule (plugin.h): as many threads as the work has grains, at
 * least one, at most the process's count.  MT safe. */
int
nn_threads_for_work (gint64 work, gint64 grain)
{
  int n = nn_get_num_threads ();
  gint64 t;

  if (grain <= 0)
    grain = NN_WORK_GRAIN;
  t = work / grain;
  return t <= 1 ? 1 : t >= n ? n : (int) t;
}
