/* nnkit: running a module tree.
 *
 * nn_module_call() is the only way a module runs: it binds the arguments
 * to the type's signature, fires the hooks, and is what composites reach
 * through nn_call_module().  A tree may run in several threads at once as
 * long as nothing mutates it meanwhile.
 *
 * Shape inference runs the same calls on meta tensors (shape and dtype,
 * no data): a type's infer() if it has one, its forward() as is when it
 * only routes values (NN_LAYER_ROUTES_ONLY), else its forward() on
 * zero-filled copies of the inputs, whose result is turned back into meta
 * tensors.  Inference fires no hooks.
 */
#ifndef NNKIT_RUNTIME_H
#define NNKIT_RUNTIME_H

#include <glib.h>
#include <nnkit/export.h>
#include <nnkit/tensor.h>
#include <nnkit/value.h>
#include <nnkit/module.h>

G_BEGIN_DECLS

/* Runs @m with positional @args (a tuple; NULL is the empty tuple) and
 * keyword @kwargs (a dict, nullable), both (transfer none).  Errors name
 * the module path where the failure happened.
 * Returns: (transfer full) (nullable) the result. */
NN_API NnValue *nn_module_call (NnModule *m, const NnValue *args,
                                const NnValue *kwargs, GError **error);

/* The one-tensor convenience: runs @m on @input (transfer none) and
 * returns (transfer full) (nullable) its result, which must be a tensor
 * (else an error naming the module and what it returned). */
NN_API NnTensor *nn_module_forward (NnModule *m, NnTensor *input,
                                    GError **error);

/* Shape inference: like nn_module_call with meta tensors (real tensors in
 * @args are read as meta tensors of their shape).  Returns: (transfer
 * full) (nullable) a result whose tensors are meta tensors. */
NN_API NnValue *nn_module_infer (NnModule *m, const NnValue *args,
                                 const NnValue *kwargs, GError **error);

/* Called by nn_module_infer_observed() once inference succeeded, for each
 * module call in call-entry order (pre-order, as torchinfo lists layers):
 * @path is the module's dotted path, @depth its depth, @args and @kwargs
 * (nullable) its arguments and @out its result, all (transfer none), with
 * meta tensors.  Modules called twice are reported twice. */
typedef void (*NnCallObserver) (NnModule *m, const char *path, guint depth,
                                const NnValue *args, const NnValue *kwargs,
                                const NnValue *out, gpointer user_data);
NN_API NnValue *nn_module_infer_observed (NnModule *m, const NnValue *args,
                                          const NnValue *kwargs,
                                          NnCallObserver observer,
                                          gpointer user_data, GError **error);

/* The one-F32-input convenience: @out is the shape of the result's first
 * tensor leaf for an F32 input of shape @in. */
NN_API gboolean nn_module_infer_shape (NnModule *m, const NnShape *in,
                                       NnShape *out, GError **error);

/* As NnCallObserver, reduced to the first tensor leaf of the arguments
 * and of the result (a zero-dimensional shape where there is none). */
typedef void (*NnShapeObserver) (NnModule *m, const char *path, guint depth,
                                 const NnShape *in, const NnShape *out,
                                 gpointer user_data);
NN_API gboolean nn_module_infer_shape_observed (NnModule *m,
                                                const NnShape *in,
                                                NnShape *out,
                                                NnShapeObserver observer,
                                                gpointer user_data,
                                                GError **error);

/* Threads for the forward (OpenBLAS included).  Default: the NN_NUM_THREADS
 * environment variable if set, else the number of cores.  Process-wide. */
NN_API void nn_set_num_threads (int n);

/* --- the execution plan (appended in ABI 2.0; docs/ENGINE.md) ----------
 *
 * A root's first forward records the calls its composites make (module
 * and functional-op calls); later
 * forwards reuse those resolved steps while the modules they pass through
 * are unedited (surgery, load_state_dict and nn_module_set_tensor renew
 * them), and rebuild the plan otherwise.  NN_PLAN=off resolves every call
 * afresh.  Hooks are asked for on every call either way. */

/* Returns: how many times @root's plan was built (0: never run as a root,
 * or always with NN_PLAN=off); @n_steps (out) (optional) the steps of the
 * current plan.  MT safe. */
NN_API guint64 nn_module_get_plan_info (NnModule *root, guint *n_steps);
/* Forgets @root's plan; the next forward records a new one.  MT safe. */
NN_API void nn_module_drop_plan (NnModule *root);
/* Returns: how many calls in this process so far wrote their result into
 * a dying input (inplace_arg, docs/ENGINE.md "Memory").  MT safe. */
NN_API guint64 nn_engine_get_inplace_count (void);

/* --- fusion in the plan (appended in ABI 2.0; docs/ENGINE.md "Fusion") --
 *
 * Later forwards may run a producer (Conv2d, Linear) together with the
 * BatchNorm and activation modules right after it when nothing else
 * observes the values in between: no hook on any of them, eval mode, no
 * tape.  On by default; NN_FUSE=off or nn_engine_set_fusion (FALSE)
 * turns it off process-wide (the results agree to rounding either way). */
NN_API void nn_engine_set_fusion (gboolean enabled);
NN_API gboolean nn_engine_get_fusion (void);
/* Returns: (transfer full) a NULL-terminated list of the groups @root's
 * last planned forward fused, each the full paths joined by '+'
 * ("layer1.0.conv1+layer1.0.bn1+layer1.0.relu"), an op call as its
 * caller's path and its type in lower case ("layer1.0.add").  MT safe. */
NN_API char **nn_module_get_plan_fusions (NnModule *root);

/* --- laid-out activations (appended in ABI 2.0; docs/ENGINE.md "Memory")
 *
 * A provider's step may leave its result in the provider's blocked layout
 * for its next step to read as is; the core makes it plain wherever
 * anything else reads it (other types, hooks, the tape, the caller).  On
 * by default; NN_DNNL_LAYOUT=off or nn_engine_set_layouts (FALSE) makes
 * every result plain where it is made (the results agree either way). */
NN_API void nn_engine_set_layouts (gboolean enabled);
NN_API gboolean nn_engine_get_layouts (void);
/* Returns: how many activation reorders (between a plain and a blocked
 * layout) providers ran in this process so far.  MT safe. */
NN_API guint64 nn_engine_get_reorder_count (void);

G_END_DECLS

#endif
