/* nnkit: safetensors files, state_dict loading and saving, whole models.
 *
 * The reader maps the file; little-endian, aligned F32 tensors are used in
 * place (zero-copy), others (F16, BF16, F64, I64, unaligned) are converted
 * into owned storage.  Every header field is validated before use.
 * An NnSafetensors is immutable once opened: MT safe to read.
 */
#ifndef NNKIT_WEIGHTS_H
#define NNKIT_WEIGHTS_H

#include <glib.h>
#include <nnkit/export.h>
#include <nnkit/tensor.h>
#include <nnkit/module.h>

G_BEGIN_DECLS

/* Largest header accepted: safetensors' own reference caps it at 100 MB. */
#define NN_SAFETENSORS_MAX_HEADER (100u * 1024u * 1024u)

typedef struct _NnSafetensors NnSafetensors;

/* Returns: (transfer full) (nullable). */
NN_API NnSafetensors *nn_safetensors_open (const char *path, GError **error);
NN_API void nn_safetensors_free (NnSafetensors *st);
NN_API guint nn_safetensors_n_tensors (NnSafetensors *st);
/* Returns: (transfer none) name of entry @i, in file offset order. */
NN_API const char *nn_safetensors_name_at (NnSafetensors *st, guint i);
/* Returns: (transfer none) (nullable) the file's dtype name ("F16", ...)
 * and shape of entry @name. */
NN_API const char *nn_safetensors_get_info (NnSafetensors *st,
                                            const char *name,
                                            NnShape *shape_out);
/* Returns: (transfer full) (nullable) tensor @name converted to @dtype.
 * A zero-copy tensor keeps the mapping alive. */
NN_API NnTensor *nn_safetensors_get (NnSafetensors *st, const char *name,
                                     NnDType dtype, GError **error);
/* Returns: (transfer none) (nullable) a __metadata__ value. */
NN_API const char *nn_safetensors_get_metadata (NnSafetensors *st,
                                                const char *key);

/* Writes @n tensors under @names, with optional string @metadata
 * (nullable; char* -> char*), atomically: temp file in the same directory,
 * fsync, rename.  On failure the destination is untouched. */
NN_API gboolean nn_safetensors_write (const char *path,
                                      const char *const *names,
                                      NnTensor *const *tensors, guint n,
                                      GHashTable *metadata, GError **error);

/* --- state_dict -------------------------------------------------------- */

typedef enum {
  NN_LOAD_NON_STRICT = 1 << 0, /* missing/unexpected keys do not fail */
  /* F16/BF16 file tensors stay as stored (borrowed from the mapping) in
   * F32 slots of types with NN_LAYER_HALF_WEIGHTS; default: convert. */
  NN_LOAD_KEEP_DTYPE = 1 << 1,
} NnLoadFlags;

typedef struct {
  gsize struct_size;        /* sizeof (NnLoadOptions) */
  guint flags;              /* NnLoadFlags */
  const char *strip_prefix; /* (nullable) removed from file keys, "module." */
  const char *add_prefix;   /* (nullable) prepended to file keys */
} NnLoadOptions;

typedef struct {
  char *key;
  NnShape file_shape;
  NnShape model_shape;
} NnSizeMismatch;

typedef struct {
  char *model_class;     /* class name of the root, for the text form */
  GPtrArray *loaded;     /* (element-type utf8) keys copied */
  GPtrArray *missing;    /* (element-type utf8) model keys not in file */
  GPtrArray *unexpected; /* (element-type utf8) file keys not in model */
  GPtrArray *mismatched; /* (element-type NnSizeMismatch) */
} NnLoadReport;

NN_API void nn_load_report_free (NnLoadReport *r);
/* TRUE when nothing is missing, unexpected or mismatched. */
NN_API gboolean nn_load_report_is_clean (const NnLoadReport *r);
/* Returns: (transfer full) PyTorch's wording: "Error(s) in loading
 * state_dict for ResNet:\n\tMissing key(s) in state_dict: ...", or "" when
 * clean. */
NN_API char *nn_load_report_to_string (const NnLoadReport *r);

/* Loads @st into @m's state_dict.  A size mismatch always fails, and in
 * strict mode so do missing or unexpected keys; a failed load changes no
 * tensor.  @opts (nullable): strict, no prefixes.  @report_out (nullable,
 * transfer full) receives the report, also on failure. */
NN_API gboolean nn_module_load_state_dict (NnModule *m, NnSafetensors *st,
                                           const NnLoadOptions *opts,
                                           NnLoadReport **report_out,
                                           GError **error);
/* Writes @m's state_dict, PyTorch's keys and dtypes, atomically. */
NN_API gboolean nn_module_save_state_dict (NnModule *m, const char *path,
                                           GHashTable *metadata,
                                           GError **error);

/* --- whole models -------------------------------------------------------- */

/* Loads a model: a descriptor .json with its weights beside it (same stem,
 * .safetensors) or at @weights_path (nullable), or a single .safetensors
 * whose __metadata__ "nnkit.descriptor" holds the descriptor.  A
 * descriptor with no weights file beside it loads with initialised
 * weights only if @allow_no_weights.  Returns: (transfer full) (nullable). */
NN_API NnModule *nn_model_load (NnRegistry *reg, const char *path,
                                const char *weights_path,
                                gboolean allow_no_weights, GError **error);
/* Saves to @path: a .safetensors path writes one file carrying the
 * descriptor; any other path writes the descriptor there and the weights
 * beside it (stem + .safetensors).  Both writes are atomic, weights first. */
NN_API gboolean nn_model_save (NnModule *root, const char *path,
                               GError **error);
/* Returns: (transfer full) the weights path that goes with descriptor
 * @path: "model.json" -> "model.safetensors". */
NN_API char *nn_model_weights_path_for (const char *path);

/* --- weights from any file (weights_open.c, pth_*.c, shards.c) ---------- */

/* File formats nn_weights_open() reads, found by their first bytes. */
typedef enum {
  NN_WEIGHTS_FORMAT_UNKNOWN,
  NN_WEIGHTS_FORMAT_SAFETENSORS,     /* one .safetensors file */
  NN_WEIGHTS_FORMAT_SHARDED,         /* model.safetensors.index.json */
  NN_WEIGHTS_FORMAT_PTH,             /* torch.save zip (torch >= 1.6) */
  NN_WEIGHTS_FORMAT_PTH_LEGACY,      /* torch.save before 1.6: refused */
} NnWeightsFormat;

typedef enum {
  /* Do not strip a "module." prefix that every key carries. */
  NN_WEIGHTS_NO_AUTO_STRIP = 1 << 0,
  /* nn_model_load_with_options: load with NN_LOAD_KEEP_DTYPE. */
  NN_WEIGHTS_KEEP_DTYPE = 1 << 1,
} NnWeightsOpenFlags;

typedef struct {
  gsize struct_size;        /* sizeof (NnWeightsOpenOptions) */
  guint flags;              /* NnWeightsOpenFlags */
  const char *key;          /* (nullable) checkpoint dict entry holding the
                             * state_dict: "state_dict", "model" */
  const char *strip_prefix; /* (nullable) removed from keys starting with it */
  const char *add_prefix;   /* (nullable) prepended to every key */
} NnWeightsOpenOptions;

/* __metadata__ entries nn_weights_open() adds to say what it did. */
#define NN_WEIGHTS_META_FORMAT "nnkit.source_format" /* "pth", "sharded" */
#define NN_WEIGHTS_META_KEY "nnkit.source_key"       /* checkpoint entry used */
#define NN_WEIGHTS_META_STRIPPED "nnkit.stripped_prefix" /* "module." */

/* Returns: the format of @path from its first bytes (never its name), or
 * UNKNOWN with @error set (unreadable file, or no format matches). */
NN_API NnWeightsFormat nn_weights_detect_format (const char *path,
                                                 GError **error);
/* Returns: (transfer none) "safetensors", "sharded safetensors", ... */
NN_API const char *nn_weights_format_name (NnWeightsFormat format);

/* Opens any weights file as a name -> tensor map: a safetensors file, a
 * sharded safetensors index, or a torch.save .pth/.pt (the state_dict, or
 * a checkpoint dict's entry @opts->key; with no key, the one entry that is
 * a dict of tensors).  The .pth unpickler never runs code: anything but
 * tensors, storages and plain values is refused (docs/WEIGHTS.md).  Keys
 * are renamed by @opts (nullable: defaults); a "module." prefix on every
 * key is stripped unless NN_WEIGHTS_NO_AUTO_STRIP, and what was done is
 * recorded in the NN_WEIGHTS_META_* metadata.  A plain safetensors file
 * with no renaming is mapped as nn_safetensors_open() does; the other
 * formats are converted once into anonymous memory.  Returns: (transfer
 * full) (nullable). */
NN_API NnSafetensors *nn_weights_open (const char *path,
                                       const NnWeightsOpenOptions *opts,
                                       GError **error);

/* nn_model_load() with the weights file (any format nn_weights_open()
 * reads) opened under @wopts (nullable: defaults; the "module." prefix is
 * auto-stripped only if the model has no child called "module").
 * Returns: (transfer full) (nullable). */
NN_API NnModule *nn_model_load_with_options (NnRegistry *reg,
                                             const char *path,
                                             const char *weights_path,
                                             const NnWeightsOpenOptions *wopts,
                                             gboolean allow_no_weights,
                                             GError **error);

/* Writes @n tensors as Hugging Face's sharded safetensors: shards of at
 * most @max_shard_bytes each (a larger tensor gets a shard of its own)
 * named "<stem>-00001-of-0000N.safetensors" beside @index_path, then the
 * index "{"metadata": {"total_size": ...}, "weight_map": {...}}" at
 * @index_path ("model.safetensors.index.json"; <stem> is the part before
 * ".safetensors.index.json", else before ".json").  Each file is written
 * atomically; the index last.  @metadata (nullable) goes into every
 * shard. */
NN_API gboolean nn_safetensors_write_sharded (const char *index_path,
                                              const char *const *names,
                                              NnTensor *const *tensors,
                                              guint n, GHashTable *metadata,
                                              guint64 max_shard_bytes,
                                              GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NnSafetensors, nn_safetensors_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (NnLoadReport, nn_load_report_free)

G_END_DECLS

#endif
