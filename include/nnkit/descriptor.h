/* nnkit: JSON descriptors of module trees.  Format: docs/DESCRIPTORS.md.
 *
 * Loading is all or nothing: any error leaves no partly built tree.
 * Saving an unchanged tree is byte-identical to the previous save.
 * MT safe as long as the tree is not mutated meanwhile.
 */
#ifndef NNKIT_DESCRIPTOR_H
#define NNKIT_DESCRIPTOR_H

#include <glib.h>
#include <json-glib/json-glib.h>
#include <nnkit/export.h>
#include <nnkit/module.h>

G_BEGIN_DECLS

/* Builds a tree from descriptor text.  @origin (nullable) names the source
 * in errors, e.g. the file name.  Returns: (transfer full) (nullable). */
NN_API NnModule *nn_descriptor_load_data (NnRegistry *reg, const char *data,
                                          gssize len, const char *origin,
                                          GError **error);
NN_API NnModule *nn_descriptor_load_file (NnRegistry *reg, const char *path,
                                          GError **error);
/* Builds a subtree from one module node ({"type": ..., "config": ...,
 * "children": [...]}), as used for surgery's new modules.  @path names it
 * in errors.  Returns: (transfer full) (nullable). */
NN_API NnModule *nn_descriptor_load_module_node (NnRegistry *reg,
                                                 JsonNode *node,
                                                 const char *path,
                                                 GError **error);
/* Same from text: a module node, or a whole descriptor (its "model"). */
NN_API NnModule *nn_descriptor_load_module_data (NnRegistry *reg,
                                                 const char *data,
                                                 gssize len,
                                                 const char *origin,
                                                 GError **error);

/* Returns: (transfer full) the descriptor text of @root, pretty-printed,
 * ending with a newline. */
NN_API char *nn_descriptor_to_data (NnModule *root, gsize *len_out);
/* Returns: (transfer full) the module node of @m (no "format" wrapper). */
NN_API JsonNode *nn_descriptor_module_to_node (NnModule *m);
/* Writes nn_descriptor_to_data() to @path atomically (temp, rename). */
NN_API gboolean nn_descriptor_save_file (NnModule *root, const char *path,
                                         GError **error);

G_END_DECLS

#endif
