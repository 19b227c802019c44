/* nnkit: running a module tree.
 *
 * nn_module_forward() is the only way a module runs: it fires the hooks
 * and is what composites reach through nn_call_child().  A tree may run in
 * several threads at once as long as nothing mutates it meanwhile.
 */
#ifndef NNKIT_RUNTIME_H
#define NNKIT_RUNTIME_H

#include <glib.h>
#include <nnkit/export.h>
#include <nnkit/tensor.h>
#include <nnkit/module.h>

G_BEGIN_DECLS

/* Runs @m on @input (transfer none).  Errors name the module path where
 * the failure happened.  Returns: (transfer full) (nullable). */
NN_API NnTensor *nn_module_forward (NnModule *m, NnTensor *input,
                                    GError **error);

/* Called by nn_module_infer_shape_observed() once inference succeeded,
 * for each module call in call-entry order (pre-order, as torchinfo lists
 * layers): @path is the module's dotted path, @depth its depth, @in and
 * @out its shapes.  Modules called twice are reported twice. */
typedef void (*NnShapeObserver) (NnModule *m, const char *path, guint depth,
                                 const NnShape *in, const NnShape *out,
                                 gpointer user_data);

/* Output shape of @m for input @in, without computing anything.  Errors
 * (NN_SHAPE_ERROR_MISMATCH) name the module path and both shapes. */
NN_API gboolean nn_module_infer_shape (NnModule *m, const NnShape *in,
                                       NnShape *out, GError **error);
NN_API gboolean nn_module_infer_shape_observed (NnModule *m,
                                                const NnShape *in,
                                                NnShape *out,
                                                NnShapeObserver observer,
                                                gpointer user_data,
                                                GError **error);

/* Threads for the forward (OpenBLAS included).  Default: the NN_NUM_THREADS
 * environment variable if set, else the number of cores.  Process-wide. */
NN_API void nn_set_num_threads (int n);

G_END_DECLS

#endif
