/* nnkit: which OpenBLAS kernel runs, and why.
 *
 * Debian's OpenBLAS picks its kernel from the CPU model when it loads and
 * falls back to generic SSE3 ("Prescott") kernels on models it does not
 * know, several times slower.  The core does not link OpenBLAS; before
 * the first plugin is dlopen'ed it asks a helper process
 * (nnkit-blas-probe) which kernel OpenBLAS would pick, compares it with
 * what cpuid says the CPU can run, and sets OPENBLAS_CORETYPE when
 * OpenBLAS would pick a weaker one.  A user-set OPENBLAS_CORETYPE (even
 * empty) is left alone.  When OpenBLAS is already loaded (the host
 * program linked it) nothing can be changed: nnkit says so once on
 * stderr.  See docs/ENGINE.md.  All functions are MT safe.
 */
#ifndef NNKIT_BLAS_H
#define NNKIT_BLAS_H

#include <glib.h>
#include <nnkit/export.h>

G_BEGIN_DECLS

typedef enum {
  NN_BLAS_NOT_CHECKED,   /* no plugin loaded yet */
  NN_BLAS_DEFAULT_OK,    /* OpenBLAS's own choice fits the CPU */
  NN_BLAS_OVERRIDDEN,    /* nnkit set OPENBLAS_CORETYPE */
  NN_BLAS_USER_SET,      /* OPENBLAS_CORETYPE came from the environment */
  NN_BLAS_TOO_LATE,      /* already loaded with a weaker kernel */
  NN_BLAS_UNKNOWN,       /* could not probe (helper missing or failing) */
} NnBlasSetup;

/* Makes the decision above, once per process; called by the registry
 * before it loads a plugin.  Later calls return at once. */
NN_API void nn_blas_setup (void);
/* What nn_blas_setup() did. */
NN_API NnBlasSetup nn_blas_get_setup (void);
/* Returns: (transfer full) one line for people: the kernel in use, what
 * OpenBLAS alone would pick, what the CPU supports and what nnkit did.
 * The plugins load OpenBLAS on first use; when none has yet, this loads
 * it (after nn_blas_setup()) to read the kernel it will run. */
NN_API char *nn_blas_describe (void);
/* Returns: (transfer full) (nullable) the kernel OpenBLAS runs, loading
 * it as nn_blas_describe() does; NULL when it cannot be loaded. */
NN_API char *nn_blas_get_kernel (void);
/* Called by BLAS-using plugins (plugins/blas/nn-blas.h) when they load
 * OpenBLAS, with openblas_get_corename() (transfer none, copied). */
NN_API void nn_blas_report_kernel (const char *corename);
/* Returns: (transfer none) the strongest OpenBLAS 0.3.21 kernel the
 * process's CPU (nn_cpu_info_get(), NN_CPU_DISABLE applied) can run. */
NN_API const char *nn_blas_best_kernel_for_cpu (void);

G_END_DECLS

#endif
