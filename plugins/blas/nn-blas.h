/* Shared by the plugins that call OpenBLAS (conv, linear, ops,
 * attention, recurrent, dnnl's fallbacks): the core does not link
 * OpenBLAS and neither do they.  This loads it on first use, applies the
 * core's thread count and reports the kernel in use.  A static library
 * linked into each such plugin; not installed. */
#ifndef NN_BLAS_PLUGIN_H
#define NN_BLAS_PLUGIN_H

#include <nnkit/plugin.h>

G_BEGIN_DECLS

/* Loads OpenBLAS on the first call (docs/ENGINE.md, "OpenBLAS on first
 * use") and reports its kernel to the core.  Every entry point (forward,
 * backward) that reaches a BLAS call calls this first and fails with its
 * @error (NN_PLUGIN_ERROR_DLOPEN, naming the library) when OpenBLAS
 * cannot be loaded; a BLAS call without it aborts as a plugin bug.  MT
 * safe; after the first call one atomic read. */
gboolean nn_blas_ready (GError **error);
/* Before BLAS work: applies nn_get_num_threads() to OpenBLAS when it has
 * changed since the last call.  MT safe and cheap (one atomic read). */
void nn_blas_prepare (void);
/* Before one BLAS product of @macs multiply-adds: OpenBLAS gets
 * nn_threads_for_work (@macs, NN_GEMM_GRAIN) threads, so a small product
 * runs on one.  MT safe; the count is process-wide in OpenBLAS, so a
 * product running at the same time in another thread may use this one's
 * count (only its speed changes). */
void nn_blas_prepare_work (gint64 macs);

G_END_DECLS

#endif
