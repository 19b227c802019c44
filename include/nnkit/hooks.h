/* nnkit: forward hooks and activation capture.
 *
 * Order, as in PyTorch: global pre-hooks, the module's pre-hooks,
 * forward, global forward hooks, the module's forward hooks.  Hooks fire
 * on every call through the core (Sequential, Graph nodes, any composite
 * plugin), so a module called twice fires twice.  Hooks belong to the
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

/* A pre-hook may replace the input: set *@input to a new tensor (transfer
 * full) after nn_tensor_unref()ing the old one.  Returning FALSE with
 * @error set aborts the forward. */
typedef gboolean (*NnPreHookFunc) (NnModule *m, const char *path,
                                   NnTensor **input, gpointer user_data,
                                   GError **error);
/* A forward hook sees the input (transfer none) and may replace the
 * output the same way. */
typedef gboolean (*NnForwardHookFunc) (NnModule *m, const char *path,
                                       NnTensor *input, NnTensor **output,
                                       gpointer user_data, GError **error);

typedef enum {
  NN_HOOK_PREPEND = 1 << 0, /* run before the hooks already registered */
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
/* Runs @root once and keeps each selected module's output, under its path
 * (the last output if it runs several times).  Returns: (transfer full)
 * the root's output. */
NN_API NnTensor *nn_capture_run (NnCapture *cap, NnTensor *input,
                                 GError **error);
/* Returns: (transfer none) (element-type NnNamedItem) captured outputs in
 * selection order; valid until the next run or free. */
NN_API GPtrArray *nn_capture_get_outputs (NnCapture *cap);
/* Saves the captured outputs to a safetensors file, atomically. */
NN_API gboolean nn_capture_save (NnCapture *cap, const char *path,
                                 GError **error);
/* Removes the capture's hooks and frees it. */
NN_API void nn_capture_free (NnCapture *cap);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NnCapture, nn_capture_free)

G_END_DECLS

#endif
