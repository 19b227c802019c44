/* nnkit: model surgery.
 *
 * Every edit is atomic: after the change, shape inference runs over the
 * whole tree from the given input shape (or the one recorded in the root);
 * if anything no longer fits, the edit is undone and the tree, weights,
 * hooks and flattened indices are exactly as before.
 *
 * Naming rule: names are never renumbered.  An item inserted or appended
 * into a Sequential or ModuleList without a name gets the smallest integer
 * key greater than every integer key present (so "0","1","2" + append ->
 * "3"; after deleting "1", append still gives "3").
 *
 * Not MT safe: nothing else may use the tree during an edit.
 */
#ifndef NNKIT_SURGERY_H
#define NNKIT_SURGERY_H

#include <glib.h>
#include <nnkit/export.h>
#include <nnkit/module.h>

G_BEGIN_DECLS

typedef enum {
  NN_SURGERY_MOVE_HOOKS = 1 << 0,   /* replace: hooks follow to the new module */
  NN_SURGERY_NO_SHAPE_CHECK = 1 << 1, /* skip the shape check */
} NnSurgeryFlags;

typedef struct {
  gsize struct_size;          /* sizeof (NnSurgeryOptions) */
  guint flags;                /* NnSurgeryFlags */
  const NnShape *input_shape; /* (nullable) else the recorded shape */
} NnSurgeryOptions;

/* PyTorch's set_submodule(): puts @new_module (a reference is taken) where
 * @ref (path or "#N") is.  The root itself cannot be replaced. */
NN_API gboolean nn_surgery_replace (NnModule *root, const char *ref,
                                    NnModule *new_module,
                                    const NnSurgeryOptions *opts,
                                    GError **error);
/* Inserts into the container at @container_ref before position @index
 * (negative counts from the end, n_children appends).  @name (nullable)
 * follows the naming rule above; ModuleDict requires it. */
NN_API gboolean nn_surgery_insert (NnModule *root, const char *container_ref,
                                   gint64 index, const char *name,
                                   NnModule *new_module,
                                   const NnSurgeryOptions *opts,
                                   GError **error);
NN_API gboolean nn_surgery_append (NnModule *root, const char *container_ref,
                                   const char *name, NnModule *new_module,
                                   const NnSurgeryOptions *opts,
                                   GError **error);
/* Deletes the module at @ref, which must be a child of a container.
 * Returns: (transfer full) (nullable) with @pop, the removed module. */
NN_API gboolean nn_surgery_delete (NnModule *root, const char *ref,
                                   const NnSurgeryOptions *opts,
                                   GError **error);
NN_API NnModule *nn_surgery_pop (NnModule *root, const char *ref,
                                 const NnSurgeryOptions *opts,
                                 GError **error);
/* Replaces X at @ref with Sequential(X, @other) (or Sequential(@other, X)
 * if @before); X keeps its name "0"/"1" inside the new Sequential. */
NN_API gboolean nn_surgery_wrap (NnModule *root, const char *ref,
                                 NnModule *other, gboolean before,
                                 const NnSurgeryOptions *opts,
                                 GError **error);

/* Checks that @root still fits @opts' input shape (or the recorded one).
 * The same check every edit runs. */
NN_API gboolean nn_surgery_check_shapes (NnModule *root,
                                         const NnSurgeryOptions *opts,
                                         GError **error);

G_END_DECLS

#endif
