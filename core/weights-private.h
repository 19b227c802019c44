/* nnkit core: building a name -> tensor map in memory, shared by the
 * readers of formats that are not one mapped safetensors file (.pth,
 * shards).  Never installed. */
#ifndef NN_WEIGHTS_OPEN_PRIVATE_H
#define NN_WEIGHTS_OPEN_PRIVATE_H

#include "safetensors-private.h"

G_BEGIN_DECLS

/* Collects tensors in an anonymous memory file (memfd), then maps it as an
 * NnSafetensors: the safetensors reader's accessors, zero-copy path
 * included, then serve the tensors unchanged. */
typedef struct _NnStBuilder NnStBuilder;

/* @path names the source in errors.  Returns: (transfer full) (nullable). */
NnStBuilder *nn_st_builder_new (const char *path, GError **error);
void nn_st_builder_free (NnStBuilder *b);
/* Returns: (transfer none) (nullable) a writable, zero-filled buffer of
 * @shape's byte size for entry @name, valid until the next call; fill it
 * with little-endian elements.  A duplicate name is an error. */
guint8 *nn_st_builder_add (NnStBuilder *b, const char *name, NnDType dtype,
                           const NnShape *shape, GError **error);
/* Stores @key = @value (copied) in the result's metadata. */
void nn_st_builder_set_metadata (NnStBuilder *b, const char *key,
                                 const char *value);
gboolean nn_st_builder_has_metadata (NnStBuilder *b, const char *key);
/* Returns: (transfer full) (nullable) the map; @b is spent either way. */
NnSafetensors *nn_st_builder_finish (NnStBuilder *b, GError **error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (NnStBuilder, nn_st_builder_free)

/* Key renaming of nn_weights_open(), decided once from every key. */
typedef struct {
  char *strip;  /* (nullable) */
  const char *add; /* (nullable) */
  gboolean auto_stripped;
} NnWeightsRename;

/* Decides the renaming of @names (element-type utf8) under @opts. */
void nn_weights_rename_plan (NnWeightsRename *r, GPtrArray *names,
                             const NnWeightsOpenOptions *opts);
/* Returns: (transfer full) @name renamed. */
char *nn_weights_rename (const NnWeightsRename *r, const char *name);
/* Records the renaming in @b's metadata; frees @r's fields. */
void nn_weights_rename_finish (NnWeightsRename *r, NnStBuilder *b);
gboolean nn_weights_rename_is_identity (const NnWeightsRename *r);

/* nn_weights_open() for loading into @m: no auto-strip when @m's keys
 * themselves start with "module.". */
NnSafetensors *nn_weights_open_for_module (NnModule *m, const char *path,
                                           const NnWeightsOpenOptions *opts,
                                           GError **error);

/* pth_read.c: a torch.save zip file. */
NnSafetensors *nn_pth_open (const char *path, const NnWeightsOpenOptions *opts,
                            GError **error);
/* shards.c: a sharded safetensors index. */
NnSafetensors *nn_shards_open (const char *index_path,
                               const NnWeightsOpenOptions *opts,
                               GError **error);

G_END_DECLS

#endif
