/* nnkit: the module tree.
 *
 * An NnModule is one layer or container: a layer type from a plugin, a
 * validated config, ordered named children, and ordered named parameters
 * and buffers.  Modules are reference-counted and may sit under several
 * parents, as in PyTorch.  Lookups and iteration follow PyTorch's names,
 * orders and numbering exactly (see docs/DESCRIPTORS.md).
 *
 * Threads: reading one tree from several threads is safe; mutating a tree
 * (surgery, adding children, loading weights) while another thread reads
 * or runs it is not.
 */
#ifndef NNKIT_MODULE_H
#define NNKIT_MODULE_H

#include <glib.h>
#include <json-glib/json-glib.h>
#include <nnkit/export.h>
#include <nnkit/error.h>
#include <nnkit/tensor.h>
#include <nnkit/value.h>
#include <nnkit/registry.h>

G_BEGIN_DECLS

typedef struct _NnModule NnModule;

/* Creates a module of type @type_name with @config (transfer none,
 * nullable: all defaults), validated against the type's schema first.
 * @path only names the module in error messages.
 * Returns: (transfer full) (nullable). */
NN_API NnModule *nn_module_new_from_type (NnRegistry *reg,
                                          const char *type_name,
                                          JsonObject *config,
                                          const char *path,
                                          GError **error);
NN_API NnModule *nn_module_ref (NnModule *m);
NN_API void nn_module_unref (NnModule *m);

/* Returns: (transfer none) the layer type name, e.g. "Conv2d". */
NN_API const char *nn_module_get_type_name (NnModule *m);
/* Returns: (transfer none) the layer type. */
NN_API const NnLayerType *nn_module_get_type (NnModule *m);
/* Returns: (transfer none) the class name printed in reprs: the display
 * name if set (e.g. "BasicBlock"), else the type name. */
NN_API const char *nn_module_get_class_name (NnModule *m);
/* (nullable) @name: NULL resets to the type name. */
NN_API void nn_module_set_class_name (NnModule *m, const char *name);
/* The extra_repr() text recorded for a module whose type has none of its
 * own (a Graph standing for a PyTorch class such as ConvNeXt's
 * LayerNorm2d, whose extra_repr() says "(768,), eps=1e-06, ...").
 * Returns: (transfer none) (nullable). */
NN_API const char *nn_module_get_extra_repr (NnModule *m);
/* (nullable) @text: copied; NULL or "" forgets it.  Ignored in print when
 * the type has an extra_repr of its own. */
NN_API void nn_module_set_extra_repr (NnModule *m, const char *text);
/* Returns: (transfer none) the validated config with defaults filled. */
NN_API JsonObject *nn_module_get_config (NnModule *m);
/* Config keys that PyTorch holds as Python lists where nnkit's config has
 * arrays, e.g. MViT's MaxPool3d(kernel_size=[1, 3, 3]): their
 * nn_module_config_repr() is "[1, 3, 3]", as print(model) shows it, not
 * "(1, 3, 3)".  A descriptor's "repr_lists" sets them.  @keys:
 * (nullable) NULL-terminated, copied; NULL or empty forgets them.  Each
 * must name an array in the config, else FALSE with
 * NN_DESCRIPTOR_ERROR_UNKNOWN_KEY or _WRONG_KIND and nothing changes.
 * Not thread-safe against a concurrent print of @m. */
NN_API gboolean nn_module_set_repr_lists (NnModule *m, const char *const *keys,
                                          GError **error);
/* Returns: (transfer none) (nullable) the keys, NULL-terminated. */
NN_API const char *const *nn_module_get_repr_lists (NnModule *m);

/* --- children ---------------------------------------------------------- */

/* PyTorch's rule: non-empty, no '.', unique within the parent. */
NN_API gboolean nn_module_name_is_valid (const char *name, GError **error);
/* Appends @child (a new reference is taken) under @name. */
NN_API gboolean nn_module_add_child (NnModule *m, const char *name,
                                     NnModule *child, GError **error);
NN_API guint nn_module_n_children (NnModule *m);
/* Returns: (transfer none) (nullable). */
NN_API NnModule *nn_module_get_child (NnModule *m, const char *name);
/* Returns: (transfer none) child @i; @name_out (transfer none, nullable). */
NN_API NnModule *nn_module_child_at (NnModule *m, guint i,
                                     const char **name_out);

/* --- parameters and buffers -------------------------------------------- */

NN_API guint nn_module_n_parameters (NnModule *m);
/* Returns: (transfer none) the module's own parameter @i. */
NN_API NnTensor *nn_module_parameter_at (NnModule *m, guint i,
                                         const char **name_out);
/* Returns: (transfer none) (nullable) own parameter @name. */
NN_API NnTensor *nn_module_get_parameter (NnModule *m, const char *name);
NN_API guint nn_module_n_buffers (NnModule *m);
NN_API NnTensor *nn_module_buffer_at (NnModule *m, guint i,
                                      const char **name_out,
                                      gboolean *persistent_out);
NN_API NnTensor *nn_module_get_buffer (NnModule *m, const char *name);
/* Replaces the storage of own tensor @name (parameter or buffer) with
 * @t (a new reference is taken); shape and dtype must match. */
NN_API gboolean nn_module_set_tensor (NnModule *m, const char *name,
                                      NnTensor *t, GError **error);

/* --- lookup -------------------------------------------------------------- */

/* Dotted path from @root: "" is the root, "layer2.0.conv1"; an integer
 * segment that is not a child name indexes a Sequential or ModuleList by
 * position, negative counting from the end.  The error names the longest
 * existing prefix and lists the children available there.
 * Returns: (transfer none) (nullable). */
NN_API NnModule *nn_module_lookup_path (NnModule *root, const char *path,
                                        GError **error);
/* PyTorch's flattened index: position in enumerate(named_modules()).
 * O(1) after the first call; any tree mutation invalidates the cache.
 * Returns: (transfer none) (nullable); @path_out (transfer none). */
NN_API NnModule *nn_module_lookup_index (NnModule *root, gint64 index,
                                         const char **path_out,
                                         GError **error);
/* Returns the flattened index of @m under @root, or -1. */
NN_API gint64 nn_module_index_of (NnModule *root, NnModule *m);
/* A reference: "#17" (flattened index) or a dotted path.
 * Returns: (transfer none) (nullable); @path_out (transfer full,
 * nullable) receives the canonical dotted path. */
NN_API NnModule *nn_module_lookup_ref (NnModule *root, const char *ref,
                                       char **path_out, GError **error);
/* A parameter or buffer by full name, e.g. "layer1.0.conv1.weight".
 * Returns: (transfer none) (nullable). */
NN_API NnTensor *nn_module_lookup_tensor (NnModule *root, const char *name,
                                          GError **error);

/* --- iteration, in PyTorch's orders ------------------------------------ */

typedef struct {
  char *name;        /* full dotted name; "" for the root */
  NnModule *module;  /* (transfer none in the entry; the list holds a ref) */
  NnTensor *tensor;  /* for tensor lists; NULL in module lists */
  guint depth;       /* module depth below the root (root 0) */
} NnNamedItem;

/* Every list below returns (transfer full) (element-type NnNamedItem);
 * free with g_ptr_array_unref. */
NN_API GPtrArray *nn_module_named_children (NnModule *m);
/* Pre-order from the root "", a shared module listed once. */
NN_API GPtrArray *nn_module_named_modules (NnModule *m);
/* Like named_modules but a shared module appears under every path. */
NN_API GPtrArray *nn_module_named_modules_all_paths (NnModule *m);
/* Pre-order, own tensors first; a shared tensor listed once. */
NN_API GPtrArray *nn_module_named_parameters (NnModule *m);
NN_API GPtrArray *nn_module_named_buffers (NnModule *m);
/* state_dict: per module in pre-order (not deduplicated), its parameters
 * then its persistent buffers. */
NN_API GPtrArray *nn_module_state_dict (NnModule *m);
/* Glob selection ('*', '?' as g_pattern_match_simple, where '*' also
 * crosses dots) over module paths or parameter/buffer names, in iteration
 * order.  @what: "modules", "parameters", "buffers" or "tensors"
 * (parameters then buffers). */
NN_API GPtrArray *nn_module_glob (NnModule *m, const char *pattern,
                                  const char *what, GError **error);
/* Total element count of own + descendant parameters (deduplicated). */
NN_API gint64 nn_module_count_parameters (NnModule *m);

/* --- text ---------------------------------------------------------------- */

/* PyTorch's print(model).  Returns (transfer full). */
NN_API char *nn_module_to_string (NnModule *m);
/* Like nn_module_to_string, but children below @max_depth levels print
 * as "Name(...)".  @max_depth < 0: unlimited. */
NN_API char *nn_module_to_string_depth (NnModule *m, int max_depth);

/* --- model-level attributes -------------------------------------------- */

/* The inputs recorded with the model (descriptor "inputs", or the older
 * "input_shape"), used by surgery's shape check and nnctl summary: a dict
 * value, input name -> meta tensor (shape and dtype), in the forward's
 * order.  Returns: (transfer none) (nullable) NULL if none is recorded. */
NN_API NnValue *nn_module_get_input_spec (NnModule *m);
/* Records @spec (transfer none, nullable: forgets): a non-empty dict of
 * input names to tensors, of which only shapes and dtypes are kept. */
NN_API gboolean nn_module_set_input_spec (NnModule *m, const NnValue *spec,
                                          GError **error);
/* Returns: (transfer full) (nullable) the recorded inputs as a tuple of
 * meta tensors: the positional arguments for nn_module_infer(). */
NN_API NnValue *nn_module_input_spec_args (NnModule *m);
/* The one-F32-input view of the spec: FALSE unless exactly one F32 input
 * is recorded. */
NN_API gboolean nn_module_get_input_shape (NnModule *m, NnShape *out);
/* Records one F32 input named "input" of @shape; NULL forgets the spec. */
NN_API void nn_module_set_input_shape (NnModule *m, const NnShape *shape);

/* Fills every tensor of the subtree as PyTorch's reset_parameters() would,
 * from a generator seeded with @seed. */
NN_API void nn_module_reset_parameters (NnModule *m, guint32 seed);

/* --- tied tensors ------------------------------------------------------ */

/* Ties the tensor at full key @alias_key (e.g. "lm_head.weight") to the
 * one at @first_key ("wte.weight"): afterwards both slots hold the same
 * tensor, as PyTorch's `m.lm_head.weight = m.wte.weight`.  Both must be
 * parameters (or both buffers) of the same dtype and shape.  Loading keeps
 * the tie; replacing either slot or either module unties.  Not thread
 * safe against a concurrent run of @root. */
NN_API gboolean nn_module_tie (NnModule *root, const char *alias_key,
                               const char *first_key, GError **error);
/* The ties of @root as (transfer full) pairs of strings, alias key then
 * first key, flattened: [alias0, first0, alias1, first1, ...], in
 * state_dict order.  A module shared by two parents is not a tie. */
NN_API GPtrArray *nn_module_tied_keys (NnModule *root);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NnModule, nn_module_unref)

G_END_DECLS

#endif
