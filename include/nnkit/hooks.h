/* nnkit: forward hooks and activation capture.
 *
 * Order, as in PyTorch: global pre-hooks, the module's pre-hooks,
 * forward, global forward hooks, the module's forward hooks.  Hooks fire
 * on every call through the core (Sequential, Graph nodes, any composite
 * plugin), so a module called twice fires twice.  Shape inference
 * (nn_module_infer) fires no hooks: they could read tensor data, which
 * meta tensors do not have.  Hooks belong to the
 * module object: after a replacement they stay with the old module unless
 * NN_SURGERY_MOVE_HOOKS is given.
 *
 * Threads: registering or removing hooks while the tree runs in another
 * thread is not safe; hook functions run in the thread calling forward.
 */
#ifndef NNKIT_HOOKS_H
#define NNKIT_HOOKS_H

#include <glib.h>
#include <nnkit/export.h>
#include <nnkit/tensor.h>
#include <nnkit/module.h>

G_BEGIN_DECLS

/* A pre-hook sees the call's positional arguments *@args (a tuple) and may
 * replace them: nn_value_unref() the old value and store a new one
 * (transfer full); a value that is not a tuple is wrapped into a 1-tuple,
 * as PyTorch does with a hook's non-tuple result.  *@kwargs (a dict) is
 * given, and replaceable the same way, only to hooks registered with
 * NN_HOOK_WITH_KWARGS; other hooks get NULL.  Returning FALSE with @error
 * set aborts the call. */
typedef gboolean (*NnPreHookFunc) (NnModule *m, const char *path,
                                   NnValue **args, NnValue **kwargs,
                                   gpointer user_data, GError **error);
/* A forward hook sees the arguments (transfer none; @kwargs NULL unless
 * NN_HOOK_WITH_KWARGS) and may replace *@output the same way. */
typedef gboolean (*NnForwardHookFunc) (NnModule *m, const char *path,
                                       const NnValue *args,
                                       const NnValue *kwargs,
                                       NnValue **output, gpointer user_data,
                                       GError **error);

typedef enum {
  NN_HOOK_PREPEND = 1 << 0, /* run before the hooks already registered */
  NN_HOOK_WITH_KWARGS = 1 << 1, /* the hook sees the keyword arguments */
} NnHookFlags;

typedef enum {
  NN_HOOK_KIND_PRE,
  NN_HOOK_KIND_FORWARD,
} NnHookKind;

typedef struct _NnHookHandle NnHookHandle;

/* Registers a hook on @m.  @label (nullable) names it in listings;
 * @destroy (nullable) frees @user_data when the hook is removed.  Fails
 * with NN_MODULE_ERROR_NO_FORWARD on a module that never runs
 * (ModuleList, ModuleDict).  Returns: (transfer full) a handle, to free
 * with nn_hook_handle_free(); freeing the handle does not remove the hook. */
NN_API NnHookHandle *nn_module_add_pre_hook (NnModule *m, NnPreHookFunc func,
                                             gpointer user_data,
                                             GDestroyNotify destroy,
                                             const char *label, guint flags,
                                             GError **error);
NN_API NnHookHandle *nn_module_add_forward_hook (NnModule *m,
                                                 NnForwardHookFunc func,
                                                 gpointer user_data,
                                                 GDestroyNotify destroy,
                                                 const char *label,
                                                 guint flags, GError **error);
/* Global hooks fire for every module run in this process.  MT safe. */
NN_API NnHookHandle *nn_add_global_pre_hook (NnPreHookFunc func,
                                             gpointer user_data,
                                             GDestroyNotify destroy,
                                             const char *label, guint flags);
NN_API NnHookHandle *nn_add_global_forward_hook (NnForwardHookFunc func,
                                                 gpointer user_data,
                                                 GDestroyNotify destroy,
                                                 const char *label,
                                                 guint flags);

/* Removes the hook; safe to call twice, and after the module is gone. */
NN_API void nn_hook_handle_remove (NnHookHandle *h);
NN_API void nn_hook_handle_free (NnHookHandle *h);
/* Removes every hook of @m, and of its whole subtree if @recursive. */
NN_API void nn_module_remove_all_hooks (NnModule *m, gboolean recursive);

typedef struct {
  NnHookKind kind;
  guint64 id;     /* unique per process, in registration order */
  char *label;    /* (nullable) */
} NnHookInfo;

/* Returns: (transfer full) (element-type NnHookInfo) the hooks of @m in
 * firing order, pre-hooks first. */
NN_API GPtrArray *nn_module_list_hooks (NnModule *m);

/* --- activation capture (torchvision's create_feature_extractor) -------- */

typedef struct _NnCapture NnCapture;

/* Selects modules of @root by @refs: dotted paths, "#N" indices or globs.
 * Fails if a ref matches nothing or a module never runs.
 * Returns: (transfer full) (nullable). */
NN_API NnCapture *nn_capture_new (NnModule *root, const char *const *refs,
                                  guint n_refs, GError **error);
/* Runs @root once with @args (a tuple) and @kwargs (nullable dict), both
 * (transfer none), and keeps each selected module's output (the last one
 * if it runs several times).  Returns: (transfer full) the root's
 * result. */
NN_API NnValue *nn_capture_run (NnCapture *cap, const NnValue *args,
                                const NnValue *kwargs, GError **error);
/* Returns: (transfer none) (element-type NnNamedItem) the captured tensors
 * in selection order, each output's tensor leaves named by
 * nn_value_foreach_tensor() with the module path as prefix ("lstm",
 * "lstm.0", "lstm.1.0"); valid until the next run or free. */
NN_API GPtrArray *nn_capture_get_outputs (NnCapture *cap);
/* Saves the captured outputs to a safetensors file, atomically. */
NN_API gboolean nn_capture_save (NnCapture *cap, const char *path,
                                 GError **error);
/* Removes the capture's hooks and frees it. */
NN_API void nn_capture_free (NnCapture *cap);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NnCapture, nn_capture_free)

G_END_DECLS

#endif
