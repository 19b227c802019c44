/* nnkit: shapes and tensors.
 *
 * Tensors are dense, row-major (NCHW for images), reference-counted, and
 * either own their storage or borrow it (e.g. from a mapped safetensors
 * file).  Reference counting is atomic, so a tensor may be shared between
 * threads; writing its data while another thread reads it is the caller's
 * business.
 */
#ifndef NNKIT_TENSOR_H
#define NNKIT_TENSOR_H

#include <glib.h>
#include <nnkit/export.h>

G_BEGIN_DECLS

#define NN_MAX_DIMS 8

typedef struct {
  guint ndim;                /* number of dimensions, 0 for a scalar */
  gint64 dims[NN_MAX_DIMS];  /* extent of each dimension, in elements */
} NnShape;

/* Element types.  Values are stable across ABI 2 minors (descriptors and
 * plugins store them); F32 and I64 keep their ABI 1 values. */
typedef enum {
  NN_DTYPE_F32 = 0,  /* float32: parameters, activations */
  NN_DTYPE_I64 = 1,  /* int64: token ids, num_batches_tracked, sizes */
  NN_DTYPE_F16 = 2,  /* IEEE half */
  NN_DTYPE_BF16 = 3, /* bfloat16 */
  NN_DTYPE_F64 = 4,
  NN_DTYPE_I32 = 5,
  NN_DTYPE_I8 = 6,
  NN_DTYPE_U8 = 7,
  NN_DTYPE_BOOL = 8, /* one byte, 0 or 1 */
  NN_DTYPE_COUNT_ /*< skip >*/
} NnDType;

/* Bit masks over NnDType, for argument declarations (plugin.h). */
#define NN_DTYPE_BIT(d) (1u << (d))
#define NN_DTYPES_FLOAT                                                   \
  (NN_DTYPE_BIT (NN_DTYPE_F32) | NN_DTYPE_BIT (NN_DTYPE_F16)              \
   | NN_DTYPE_BIT (NN_DTYPE_BF16) | NN_DTYPE_BIT (NN_DTYPE_F64))
#define NN_DTYPES_INT                                                     \
  (NN_DTYPE_BIT (NN_DTYPE_I64) | NN_DTYPE_BIT (NN_DTYPE_I32)              \
   | NN_DTYPE_BIT (NN_DTYPE_I8) | NN_DTYPE_BIT (NN_DTYPE_U8))
#define NN_DTYPES_ALL ((1u << NN_DTYPE_COUNT_) - 1)

typedef struct _NnTensor NnTensor;
struct _NnTensor {
  NnDType dtype;   /* element type */
  NnShape shape;   /* extents; data holds numel() * dtype size bytes */
  gpointer data;   /* first element; writable unless borrowed read-only */
  /*< private >*/
  gint ref_count;
  GDestroyNotify release;   /* frees data, or drops the borrowed owner */
  gpointer release_data;
  gboolean read_only;
  gboolean meta;            /* shape and dtype only, data is NULL */
  guint64 version;          /* bumped by nn_tensor_mark_written() */
  /* A provider's private layout (appended in ABI 2.0, layout.c): data is
   * NULL until nn_tensor_make_plain() fills it; the laid storage stays
   * until the tensor goes, readable by its provider while unwritten. */
  const struct _NnLayoutClass *layout;
  gpointer layout_data;     /* the class's description of the layout */
  gpointer laid;            /* the values in that layout */
  GDestroyNotify laid_free; /* frees laid */
  gint plain;               /* 1 once data holds the plain values */
  gint laid_stale;          /* 1 once the plain data may have been written */
  gint layout_lock;         /* g_bit_lock bit 0: one thread makes it plain */
};

/* Shapes */
NN_API gint64 nn_shape_numel (const NnShape *shape);
NN_API gboolean nn_shape_equal (const NnShape *a, const NnShape *b);
/* Returns: (transfer full) "[1, 3, 224, 224]". */
NN_API char *nn_shape_to_string (const NnShape *shape);
/* Parses "1,3,224,224" or "[1, 3, 224, 224]"; every extent must be >= 1.
 * Errors are NN_SHAPE_ERROR_INVALID naming the offending text. */
NN_API gboolean nn_shape_parse (const char *text, NnShape *out, GError **error);
/* Sets @out from @ndim extents.  Returns FALSE if ndim > NN_MAX_DIMS. */
NN_API gboolean nn_shape_set (NnShape *out, guint ndim, const gint64 *dims);

NN_API gsize nn_dtype_size (NnDType dtype);
/* Returns: (transfer none) the safetensors name: "F32", "I64", "F16",
 * "BF16", "F64", "I32", "I8", "U8", "BOOL". */
NN_API const char *nn_dtype_name (NnDType dtype);
/* Returns: (transfer none) PyTorch's name: "torch.float32", ... */
NN_API const char *nn_dtype_torch_name (NnDType dtype);
/* Parses a safetensors name or a PyTorch name ("float32", "torch.int64",
 * "long", "bool").  Returns FALSE for anything else. */
NN_API gboolean nn_dtype_parse (const char *text, NnDType *out);
NN_API gboolean nn_dtype_is_float (NnDType dtype);
/* Returns: (transfer full) "F32 or F16", for "expected ... found" errors. */
NN_API char *nn_dtype_mask_to_string (guint32 mask);

/* Returns: (transfer full) a zero-filled tensor that owns its storage,
 * or NULL if the shape's byte size overflows or memory is exhausted.
 * Large storage is mapped lazily: untouched pages cost no memory. */
NN_API NnTensor *nn_tensor_new (NnDType dtype, const NnShape *shape);
/* Returns: (transfer full) a tensor whose storage is @data, not copied.
 * @release (nullable) is called with @release_data when the last
 * reference goes.  @read_only tensors must not be written through. */
NN_API NnTensor *nn_tensor_new_borrowed (NnDType dtype, const NnShape *shape,
                                         gpointer data, gboolean read_only,
                                         GDestroyNotify release,
                                         gpointer release_data);
/* Returns: (transfer full) a tensor with a shape and dtype but no data
 * (data NULL), as PyTorch's meta device: what shape inference passes
 * around.  Never NULL for a valid shape. */
NN_API NnTensor *nn_tensor_new_meta (NnDType dtype, const NnShape *shape);
NN_API gboolean nn_tensor_is_meta (const NnTensor *t);
/* Records that @t's data was changed in place (an optimiser step, running
 * statistics, reset_parameters), so caches derived from it (a provider's
 * reordered weights) rebuild.  MT safe. */
NN_API void nn_tensor_mark_written (NnTensor *t);
/* Returns: the count of nn_tensor_mark_written() calls on @t; a cache keyed
 * on (tensor, data, version) is current. */
NN_API guint64 nn_tensor_get_version (const NnTensor *t);
/* Returns: (transfer full) @t converted to @dtype (a new tensor; a ref of
 * @t when it already has that dtype), as PyTorch's .to(dtype): floats
 * round to nearest even, float to int truncates toward zero, anything to
 * BOOL is != 0.  A meta tensor gives a meta tensor. */
NN_API NnTensor *nn_tensor_to_dtype (NnTensor *t, NnDType dtype);
/* Returns: (transfer full) a deep copy that owns its storage. */
NN_API NnTensor *nn_tensor_copy (const NnTensor *t);
/* Returns: (transfer full) a tensor sharing @t's storage with another
 * shape of the same element count, or NULL if the counts differ. */
NN_API NnTensor *nn_tensor_reshape (NnTensor *t, const NnShape *shape);
NN_API NnTensor *nn_tensor_ref (NnTensor *t);
NN_API void nn_tensor_unref (NnTensor *t);
NN_API gint64 nn_tensor_numel (const NnTensor *t);
NN_API gsize nn_tensor_nbytes (const NnTensor *t);
NN_API gboolean nn_tensor_is_read_only (const NnTensor *t);
/* Returns: (transfer none) the data as float*, or NULL if not F32. */
NN_API float *nn_tensor_f32 (const NnTensor *t);
/* Returns: (transfer none) the data as gint64*, or NULL if not I64. */
NN_API gint64 *nn_tensor_i64 (const NnTensor *t);

/* --- the storage pool (appended in ABI 2.0; docs/ENGINE.md) ------------
 * Storage of 1 MiB and more that nn_tensor_new() made is kept when a
 * forward of a built plan frees it (256 KiB and more while a training
 * tape is live; 32 MiB and more whenever it is freed) and handed out
 * again (zero-filled) to a later tensor of about the size, so that
 * repeated forwards reuse the same blocks: they neither map nor unmap
 * memory, and the heap does not spread over new pages each forward.  A
 * block under 32 MiB that no forward took for two forwards is freed.
 * NN_POOL_MB (default 512) caps what is kept; 0 keeps nothing.  Under
 * AddressSanitizer a kept block is poisoned until handed out again. */

/* Frees every kept block.  MT safe. */
NN_API void nn_tensor_pool_trim (void);
/* Returns: the bytes the pool keeps now.  MT safe. */
NN_API gsize nn_tensor_pool_get_bytes (void);
/* (appended in ABI 2.x) 64-byte aligned storage of @nbytes from the same
 * pool, for a provider's own buffers (the @laid values of
 * nn_tensor_new_laid_out()), so that they are reused as tensors' are.
 * Contents unspecified.  Returns: (transfer full) (nullable) the storage,
 * freed with nn_tensor_storage_free(); NULL when memory is exhausted.
 * MT safe. */
NN_API gpointer nn_tensor_storage_new (gsize nbytes);
/* Frees (or keeps for reuse) storage from nn_tensor_storage_new(); NULL
 * is ignored.  MT safe. */
NN_API void nn_tensor_storage_free (gpointer data);

/* --- appended in ABI 2.0 ----------------------------------------------- */
/* As nn_tensor_new(), but the contents are unspecified: for a result the
 * caller writes in full, which saves zero-filling a reused pool block
 * (training steps: every activation and gradient).
 * Returns: (transfer full) (nullable) the tensor, NULL if the shape's
 * size overflows or it cannot be allocated.  MT safe. */
NN_API NnTensor *nn_tensor_new_uninitialized (NnDType dtype, const NnShape *shape);

/* --- laid-out tensors (appended in ABI 2.0; docs/PLUGINS.md "Layouts") --
 * A provider (oneDNN) may return a tensor whose values sit in its own
 * blocked layout (nChw16c), so that its next step reads them without a
 * reorder.  Such a tensor has the logical dtype and shape of any other,
 * but data is NULL until it is made plain.  The core makes every tensor
 * plain before a type that does not declare NN_LAYER_LAYOUT_AWARE (or
 * NN_LAYER_ROUTES_ONLY) reads it, before hooks, the tape, the checked mode
 * and the caller of a root forward see it: a laid-out tensor never leaves
 * the providers that understand it. */

typedef struct _NnLayoutClass NnLayoutClass;
struct _NnLayoutClass {
  gsize struct_size;        /* sizeof (NnLayoutClass) */
  const char *name;         /* "onednn", in error messages */
  /* Writes @t's values from @laid (layout @layout_data) into @plain, a
   * row-major buffer of nn_tensor_nbytes (@t) bytes.  May run in several
   * threads at once on different tensors.  FALSE with @error on failure. */
  gboolean (*to_plain) (const NnTensor *t, gconstpointer layout_data,
                        gconstpointer laid, gpointer plain, GError **error);
  /* (nullable) Frees a tensor's layout_data when the tensor goes. */
  GDestroyNotify free_layout_data;
  gpointer reserved[4];
};

/* Returns: (transfer full) a tensor of @dtype and @shape whose values are
 * @laid (transfer full: freed with @laid_free) in @klass's layout
 * @layout_data (transfer full: freed with klass->free_layout_data).
 * @klass (transfer none) must outlive the tensor (a static in the
 * provider's plugin: its modules keep the plugin loaded while their
 * results live within a forward).  NULL for an invalid shape (@laid and
 * @layout_data are freed then). */
NN_API NnTensor *nn_tensor_new_laid_out (NnDType dtype, const NnShape *shape,
                                         const NnLayoutClass *klass,
                                         gpointer layout_data, gpointer laid,
                                         GDestroyNotify laid_free);
/* Returns: (transfer none) (nullable) the layout class of @t while its
 * laid values are current (also after nn_tensor_make_plain(), until the
 * plain data may have been written: nn_tensor_mark_written()), with
 * @layout_data and @laid (out) (optional) (transfer none); NULL for a
 * plain tensor.  MT safe. */
NN_API const NnLayoutClass *nn_tensor_get_layout (const NnTensor *t,
                                                  gpointer *layout_data,
                                                  gpointer *laid);
/* Whether @t's data holds its values in row-major order (every tensor but
 * a laid-out one not made plain yet; meta tensors count as plain).
 * MT safe. */
NN_API gboolean nn_tensor_is_plain (const NnTensor *t);
/* Makes @t plain in place: allocates its data and converts the laid values
 * into it once; then returns TRUE at once.  Several threads may race to
 * make one tensor plain: one converts, the others wait for it.  FALSE with
 * NN_MODULE_ERROR_FAILED naming the layout when memory is exhausted or the
 * conversion fails (@t is unchanged then).  MT safe. */
NN_API gboolean nn_tensor_make_plain (NnTensor *t, GError **error);

/* --- resident pages (appended in ABI 2.0; docs/ENGINE.md, Memory) ------
 * Drops @t's whole pages from the process's resident memory when its
 * storage is a read-only mapping of a weights file (a safetensors tensor
 * borrowed zero-copy, or a view of one); any other tensor is left as it
 * is.  The values stay: the next read maps the same pages again from the
 * page cache (a minor fault, no disk read).  For providers that keep
 * their own copy of a weight (a reordered layout) once they have read
 * the plain one.  MT safe; readers of @t at the same time see the same
 * values. */
NN_API void nn_tensor_release_pages (NnTensor *t);
/* For the same tensors as nn_tensor_release_pages() when the mapping is
 * of a file opened by path: fills @key with the file's device, inode,
 * size, modification and change times (ns) and the values' byte offset
 * in the file, and returns TRUE.  Equal keys and sizes mean the same bytes
 * of the same unchanged file, without reading them (a provider's cache of
 * converted weights).  FALSE for any other tensor (owned, converted,
 * built in memory), and when both times are whole seconds (a file system
 * that cannot tell two writes in one second apart).  MT safe. */
NN_API gboolean nn_tensor_get_file_key (const NnTensor *t, guint64 key[6]);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NnTensor, nn_tensor_unref)

G_END_DECLS

#endif
