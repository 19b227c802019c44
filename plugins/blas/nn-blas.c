/* The BLAS-using plugins' side of the thread count and kernel report. */
#include "nn-blas.h"

#include <nnkit/blas.h>
#include <cblas.h>

/* The count last given to OpenBLAS from this plugin; 0: none yet. */
static gint applied;

void
nn_blas_plugin_init (void)
{
  /* No thread count here: OpenBLAS loaded with one thread (the core's
   * blas_setup.c) and starts its workers only when the first product
   * asks for more (nn_blas_prepare()). */
  nn_blas_report_kernel (openblas_get_corename ());
}

static void
apply (int n)
{
  int old = g_atomic_int_get (&applied);

  /* Only the thread that wins the exchange calls OpenBLAS, whose setter
   * is not meant to race with itself. */
  if (old != n && g_atomic_int_compare_and_exchange (&applied, old, n))
    openblas_set_num_threads (n);
}

void
nn_blas_prepare (void)
{
  apply (nn_get_num_threads ());
}

void
nn_blas_prepare_work (gint64 macs)
{
  apply (nn_threads_for_work (macs, NN_GEMM_GRAIN));
}
