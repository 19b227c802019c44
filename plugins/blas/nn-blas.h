/* Shared by the plugins that call OpenBLAS (conv, linear, dnnl's
 * fallbacks): the core does not link OpenBLAS, so these apply the core's
 * thread count and report the kernel in use.  A static library linked
 * into each such plugin; not installed. */
#ifndef NN_BLAS_PLUGIN_H
#define NN_BLAS_PLUGIN_H

#include <nnkit/plugin.h>

G_BEGIN_DECLS

/* From the plugin's init: tells the core which kernel OpenBLAS runs
 * (nnctl plugins shows it). */
void nn_blas_plugin_init (void);
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
