/* The BLAS-using plugins' side of OpenBLAS: loading it on first use, the
 * thread count and the kernel report.  The plugins do not link OpenBLAS:
 * loading it costs a process about 3 ms and 2.3 MB of resident memory
 * (with libgfortran) at start-up, and a model run by oneDNN never calls
 * it (docs/ENGINE.md, "OpenBLAS on first use"). */
#include "nn-blas.h"

#include <nnkit/blas.h>
#include <cblas.h>
#include <dlfcn.h>

/* The soname the plugins were built against (Debian's libopenblas0),
 * the name the core's probe and blas_setup.c load too. */
#define OPENBLAS_SONAME "libopenblas.so.0"

/* The OpenBLAS entry points the plugins call; filled once. */
static struct {
  __typeof__ (cblas_sgemm) *sgemm;
  __typeof__ (cblas_dgemm) *dgemm;
  __typeof__ (cblas_sgemv) *sgemv;
  __typeof__ (openblas_set_num_threads) *set_num_threads;
  __typeof__ (openblas_get_corename) *get_corename;
} fns;

/* Why loading failed (set once; freed when the plugin unloads). */
static char *load_failure;

/* The count last given to OpenBLAS from this plugin; 0: none yet. */
static gint applied;

static void
load_once (void)
{
  /* The handle stays open for the process: the plugins call into it until
   * they are unloaded, and OpenBLAS's worker threads cannot be stopped. */
  void *h = dlopen (OPENBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (!h)
    {
      load_failure = g_strdup (dlerror ());
      return;
    }
  const struct { const char *name; void **slot; } want[] = {
    { "cblas_sgemm", (void **) &fns.sgemm },
    { "cblas_dgemm", (void **) &fns.dgemm },
    { "cblas_sgemv", (void **) &fns.sgemv },
    { "openblas_set_num_threads", (void **) &fns.set_num_threads },
    { "openblas_get_corename", (void **) &fns.get_corename },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (want); i++)
    if (!(*want[i].slot = dlsym (h, want[i].name)))
      {
        load_failure = g_strdup_printf ("%s has no symbol %s", OPENBLAS_SONAME,
                                        want[i].name);
        return;
      }
  nn_blas_report_kernel (fns.get_corename ());
}

gboolean
nn_blas_ready (GError **error)
{
  static gsize once;

  /* Before the first dlopen: the core may have to set OPENBLAS_CORETYPE
   * and the initial thread count (core/blas_setup.c). */
  if (g_once_init_enter (&once))
    {
      nn_blas_setup ();
      load_once ();
      g_once_init_leave (&once, 1);
    }
  if (load_failure)
    {
      g_set_error (error, NN_PLUGIN_ERROR, NN_PLUGIN_ERROR_DLOPEN,
                   "cannot load OpenBLAS (%s), which this layer's "
                   "implementation needs: %s", OPENBLAS_SONAME, load_failure);
      return FALSE;
    }
  return TRUE;
}

/* The registry unloads plugins (dlclose()) when it is freed: the message
 * would outlive its only pointer. */
__attribute__ ((destructor)) static void
forget_failure (void)
{
  g_clear_pointer (&load_failure, g_free);
}

/* Reached only after nn_blas_ready() succeeded on the way in (every entry
 * point that computes with BLAS checks it); anything else is a plugin bug,
 * stopped here rather than run into a NULL call. */
static void
require_loaded (void)
{
  GError *e = NULL;
  if (!nn_blas_ready (&e))
    g_error ("a BLAS call without nn_blas_ready() first: %s", e->message);
}

static void
apply (int n)
{
  int old = g_atomic_int_get (&applied);

  require_loaded ();
  /* Only the thread that wins the exchange calls OpenBLAS, whose setter
   * is not meant to race with itself. */
  if (old != n && g_atomic_int_compare_and_exchange (&applied, old, n))
    fns.set_num_threads (n);
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

/* The plugins' own definitions of the cblas entry points they call
 * (hidden, so only this plugin binds to them), forwarding to OpenBLAS. */
void
cblas_sgemm (OPENBLAS_CONST enum CBLAS_ORDER order,
             OPENBLAS_CONST enum CBLAS_TRANSPOSE ta,
             OPENBLAS_CONST enum CBLAS_TRANSPOSE tb, OPENBLAS_CONST blasint m,
             OPENBLAS_CONST blasint n, OPENBLAS_CONST blasint k,
             OPENBLAS_CONST float alpha, OPENBLAS_CONST float *a,
             OPENBLAS_CONST blasint lda, OPENBLAS_CONST float *b,
             OPENBLAS_CONST blasint ldb, OPENBLAS_CONST float beta, float *c,
             OPENBLAS_CONST blasint ldc)
{
  require_loaded ();
  fns.sgemm (order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void
cblas_dgemm (OPENBLAS_CONST enum CBLAS_ORDER order,
             OPENBLAS_CONST enum CBLAS_TRANSPOSE ta,
             OPENBLAS_CONST enum CBLAS_TRANSPOSE tb, OPENBLAS_CONST blasint m,
             OPENBLAS_CONST blasint n, OPENBLAS_CONST blasint k,
             OPENBLAS_CONST double alpha, OPENBLAS_CONST double *a,
             OPENBLAS_CONST blasint lda, OPENBLAS_CONST double *b,
             OPENBLAS_CONST blasint ldb, OPENBLAS_CONST double beta,
             double *c, OPENBLAS_CONST blasint ldc)
{
  require_loaded ();
  fns.dgemm (order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void
cblas_sgemv (OPENBLAS_CONST enum CBLAS_ORDER order,
             OPENBLAS_CONST enum CBLAS_TRANSPOSE trans,
             OPENBLAS_CONST blasint m, OPENBLAS_CONST blasint n,
             OPENBLAS_CONST float alpha, OPENBLAS_CONST float *a,
             OPENBLAS_CONST blasint lda, OPENBLAS_CONST float *x,
             OPENBLAS_CONST blasint incx, OPENBLAS_CONST float beta, float *y,
             OPENBLAS_CONST blasint incy)
{
  require_loaded ();
  fns.sgemv (order, trans, m, n, alpha, a, lda, x, incx, beta, y, incy);
}
