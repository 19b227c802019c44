/* dnnl plugin: oneDNN providers of Conv2d, Linear, MaxPool2d, AvgPool2d
 * and BatchNorm2d.  Each type is the reference type's vtable (schema,
 * signature, create, infer, repr: compiled in from the reference
 * families) with a oneDNN forward and a supports() check, at a rank above
 * the reference.  Private to the plugin. */
#ifndef NN_DNNL_PRIVATE_H
#define NN_DNNL_PRIVATE_H

#include <nnkit/plugin.h>
#include <oneapi/dnnl/dnnl.h>

#include "pool.h"

G_BEGIN_DECLS

/* Above the OpenBLAS reference (NN_RANK_PRIMARY). */
#define NN_DNNL_RANK (NN_RANK_PRIMARY + 64)

/* Starts a provider's type as a copy of its reference type @ref with
 * @doc (static) and this plugin's rank; the reference's aliases keep
 * naming the type whichever provider runs it, so the copy has none.  The
 * caller then sets its own slots and flags. */
void nn_dnnl_provider_init (NnLayerType *t, const NnLayerType *ref,
                            const char *doc);
/* The supports check of a provider that takes every config: oneDNN's
 * kernels need SSE4.1 at least. */
gboolean nn_dnnl_supports_cpu (const NnLayerType *type, JsonObject *config,
                               const NnArgs *args, const NnCpuInfo *cpu);

/* Each type file fills @t from its reference type. */
void nn_dnnl_conv2d_setup (NnLayerType *t);
void nn_dnnl_linear_setup (NnLayerType *t);
void nn_dnnl_max_pool2d_setup (NnLayerType *t);
void nn_dnnl_avg_pool2d_setup (NnLayerType *t);
void nn_dnnl_adaptive_avg_pool2d_setup (NnLayerType *t);
void nn_dnnl_batch_norm2d_setup (NnLayerType *t);
void nn_dnnl_matmul_setup (NnLayerType *t);
void nn_dnnl_mm_setup (NnLayerType *t);
void nn_dnnl_bmm_setup (NnLayerType *t);
void nn_dnnl_linear_fn_setup (NnLayerType *t);
void nn_dnnl_mha_setup (NnLayerType *t);
void nn_dnnl_softmax_setup (NnLayerType *t);
void nn_dnnl_log_softmax_setup (NnLayerType *t);
void nn_dnnl_layer_norm_setup (NnLayerType *t);
/* ReLU, add and mul on laid-out tensors (dnnl_eltwise.c). */
void nn_dnnl_relu_setup (NnLayerType *t);
void nn_dnnl_add_setup (NnLayerType *t);
void nn_dnnl_mul_setup (NnLayerType *t);
void nn_dnnl_cat_setup (NnLayerType *t);
/* Backward setups: each adds the oneDNN backward to a type filled by its
 * forward setup above (dnnl_*_bwd.c). */
void nn_dnnl_conv2d_backward_setup (NnLayerType *t);
/* Conv2d's forward in training mode (dnnl_conv2d_bwd.c): FALSE when it
 * leaves the call to the inference forward (an unusual shape, oneDNN
 * declined); TRUE when it ran it, *@out NULL with @error on failure. */
gboolean nn_dnnl_conv2d_train_forward (NnModule *self, NnCall *call, const NnArgs *args,
                                       NnValue **out, GError **error);
void nn_dnnl_batch_norm2d_backward_setup (NnLayerType *t);
/* Run after the backward setup: a training forward's input is made plain
 * before the chained forward reads it (dnnl_batch_norm2d.c). */
void nn_dnnl_batch_norm2d_layout_setup (NnLayerType *t);

/* Sets @error from a failed oneDNN call (naming @what) and returns FALSE;
 * returns TRUE for dnnl_success. */
gboolean nn_dnnl_ok (dnnl_status_t st, const char *what, GError **error);

/* Returns: (transfer none) the process's CPU engine, NULL with @error. */
dnnl_engine_t nn_dnnl_engine (GError **error);

/* --- shared scratchpads (dnnl_scratch.c) -------------------------------- */

/* Returns (transfer full: give it back) a 64-byte-aligned buffer of at
 * least @size bytes for one run's scratchpad, NULL with @error.  Buffers
 * are pooled across the provider's primitives.  Thread-safe. */
void *nn_dnnl_scratch_take (gsize size, GError **error);
/* Returns @buf (nullable) to the pool once the run using it has waited. */
void nn_dnnl_scratch_give (void *buf);

/* A primitive ready to run on plain (user-layout) buffers: the source and
 * destination are reordered around it when it chose other layouts. */
typedef struct {
  dnnl_primitive_t prim;
  dnnl_primitive_t reorder_in, reorder_out;  /* (nullable) */
  dnnl_memory_t user_src, user_dst;          /* handles set per call */
  dnnl_memory_t src, dst;                    /* the primitive's layouts */
  /* (nullable) the scratchpad's memory; its buffer is taken from the
   * pool (nn_dnnl_scratch_take) for each run. */
  dnnl_memory_t scratch;
  gsize scratch_size;
  dnnl_stream_t stream;
  gint64 macs;        /* a run's multiply-adds when known, else 0 */
  /* The primitive's own src and dst layouts, and memories of those
   * layouts whose handles are a laid-out tensor's storage per call. */
  dnnl_memory_desc_t src_md, dst_md;
  dnnl_memory_t lay_src, lay_dst;
  /* src and dst get a buffer from the core's storage pool for each run
   * that needs them, or keep one made on first use where their layout
   * pads (run_buffer): a step reading and leaving laid-out tensors never
   * needs either. */
  void *src_kept, *dst_kept;
  /* A sum post-op's plain operand reordered into dst_md (made on first
   * use): sum_user wraps it, reorder_sum copies it. */
  dnnl_memory_t sum_user;
  dnnl_primitive_t reorder_sum;
  /* A laid-out input in another layout than src_md, reordered straight
   * into src (made on first use, for relayout_md): one pass, where
   * making it plain and reordering that in took two. */
  dnnl_memory_desc_t relayout_md;
  dnnl_memory_t relayout_from;
  dnnl_primitive_t relayout;
} NnDnnlPrim;

/* Creates the primitive of @pd (transfer none; attr must have asked for
 * a user scratchpad) for plain @user_src and @user_dst layouts. */
gboolean nn_dnnl_prim_init (NnDnnlPrim *p, const_dnnl_primitive_desc_t pd,
                            const dnnl_memory_desc_t *user_src,
                            const dnnl_memory_desc_t *user_dst,
                            GError **error);
/* Runs it on @x and @y (plain layouts) with @extra arguments (weights,
 * bias, statistics), on nn_get_num_threads() OpenMP threads, or
 * nn_threads_for_work (macs, NN_GEMM_GRAIN) when the builder set macs. */
gboolean nn_dnnl_prim_run (NnDnnlPrim *p, const float *x, float *y,
                           int n_extra, const dnnl_exec_arg_t *extra,
                           GError **error);
void nn_dnnl_prim_clear (NnDnnlPrim *p);
/* Runs @p on @x, plain or laid out (read as is when its layout is the
 * primitive's src layout, else made plain first), into a new tensor of
 * @out_shape: laid out in the primitive's dst layout when @lay_out and
 * that layout is not plain, else plain.  Returns (transfer full) the
 * result, NULL with @error.  Counts the activation reorders it runs. */
NnTensor *nn_dnnl_prim_run_tensor (NnDnnlPrim *p, NnTensor *x,
                                   const NnShape *out_shape, gboolean lay_out,
                                   int n_extra, const dnnl_exec_arg_t *extra,
                                   GError **error);

/* --- laid-out tensors (dnnl_layout.c) ----------------------------------- */

/* The layout class of tensors whose values are in a oneDNN memory
 * descriptor's layout (nChw16c, nChw8c); layout_data is a
 * dnnl_memory_desc_t. */
extern const NnLayoutClass nn_dnnl_layout_class;
/* Returns: (transfer none) (nullable) the descriptor of @t's current
 * oneDNN layout, with its storage in @laid (out); NULL when @t is plain
 * or in another provider's layout. */
const dnnl_memory_desc_t *nn_dnnl_tensor_md (NnTensor *t, void **laid);
/* Returns: (transfer full) a zero-filled tensor of @shape laid out as @md
 * (its padding stays zero for consumers that read it), NULL with @error. */
NnTensor *nn_dnnl_tensor_new_laid (const NnShape *shape,
                                   const dnnl_memory_desc_t *md, GError **error);
/* Whether a provider running in @call may leave its result laid out:
 * nn_call_may_lay_out() (no tape, layouts on). */
gboolean nn_dnnl_may_lay_out (NnCall *call);
/* A plain row-major descriptor of @md's dims, in @out. */
gboolean nn_dnnl_plain_md (const dnnl_memory_desc_t *md, dnnl_memory_desc_t *out);

/* Sets the calling thread's OpenMP thread count for a primitive doing
 * @work (multiply-adds or elements; 0: unknown) at @grain per thread:
 * nn_threads_for_work(), or all of nnkit's threads for unknown work.
 * oneDNN reads the count twice: when it creates a primitive (most kernels
 * split their work for that many threads then, for good) and when it
 * runs one, so a primitive is built and run with the same call. */
void nn_dnnl_set_threads (gint64 work, gint64 grain);

/* Returns: (transfer full) (nullable) a primitive attr asking for a user
 * scratchpad (shared, dnnl_scratch.c), after setting the thread count
 * the primitive is to be created with (nn_dnnl_set_threads): all of
 * nnkit's threads for nn_dnnl_attr_new(). */
dnnl_primitive_attr_t nn_dnnl_attr_new (GError **error);
dnnl_primitive_attr_t nn_dnnl_attr_new_for (gint64 work, gint64 grain,
                                            GError **error);

/* Returns: a memory of layout @to holding @data (plain layout @from)
 * reordered, in a buffer of its own (dnnl_weights_mem.c); NULL with
 * @error.  Weights are reordered once per module with this; free the
 * result with nn_dnnl_weights_free(). */
dnnl_memory_t nn_dnnl_reorder_new (const dnnl_memory_desc_t *from,
                                   const void *data,
                                   const dnnl_memory_desc_t *to,
                                   GError **error);
/* The same, @plain (nullable) the tensor whose values @data are when
 * they are a parameter read in place: a weights file's identity then
 * names the cached reorder instead of the bytes (dnnl_weights_cache.c). */
dnnl_memory_t nn_dnnl_reorder_weights (const dnnl_memory_desc_t *from,
                                       const void *data, NnTensor *plain,
                                       const dnnl_memory_desc_t *to,
                                       GError **error);
/* Makes (transfer full, g_free) the plain values to reorder, or NULL when
 * they cannot be allocated. */
typedef float *(*NnDnnlMakeWeights) (gpointer user_data);
/* The same for values computed from @plain's with @derived's bytes (a
 * folded BatchNorm's scale) by @make, which runs only when no earlier
 * process cached this reorder: with @plain read in place from a file,
 * the file's identity and @derived name the entry, so a hit neither
 * reads the plain weights nor computes anything. */
dnnl_memory_t nn_dnnl_reorder_weights_derived (const dnnl_memory_desc_t *from,
                                               NnTensor *plain,
                                               const void *derived,
                                               gsize derived_len,
                                               NnDnnlMakeWeights make,
                                               gpointer user_data,
                                               const dnnl_memory_desc_t *to,
                                               GError **error);
/* Returns: a memory of layout @md over a fresh zeroed mapping of its own,
 * with transparent huge pages asked for; NULL with @error.  Free it with
 * nn_dnnl_weights_free() (dnnl_weights_mem.c). */
dnnl_memory_t nn_dnnl_weights_memory_new (const dnnl_memory_desc_t *md,
                                          GError **error);
/* Destroys @m (nullable), made by nn_dnnl_weights_memory_new() or
 * nn_dnnl_reorder_new(), and unmaps its buffer. */
void nn_dnnl_weights_free (dnnl_memory_t m);

/* The on-disk cache of reordered weights (dnnl_weights_cache.c). */
typedef struct _NnDnnlCacheKey NnDnnlCacheKey;
struct _NnDnnlCacheKey { guint64 h[2]; };
/* FALSE when the cache is off (NN_DNNL_WEIGHTS_CACHE=off, or weights were
 * replaced in this process) or a layout is not a plain blocked one. */
gboolean nn_dnnl_weights_cache_key (const dnnl_memory_desc_t *from,
                                    const void *data, NnTensor *plain,
                                    const void *derived, gsize derived_len,
                                    const dnnl_memory_desc_t *to,
                                    NnDnnlCacheKey *key);
/* Returns: (nullable) the cached @bytes of @key, mapped privately; unmap
 * with nn_dnnl_weights_cache_unmap(). */
void *nn_dnnl_weights_cache_map (const NnDnnlCacheKey *key, gsize bytes);
void nn_dnnl_weights_cache_unmap (void *data, gsize bytes);
/* Writes @data under @key (best effort: any failure leaves no entry). */
void nn_dnnl_weights_cache_store (const NnDnnlCacheKey *key,
                                  const void *data, gsize bytes);
/* No more lookups or stores in this process (weights were replaced). */
void nn_dnnl_weights_cache_stop (void);
/* Returns: a memory of layout @to over the cached reorder of @key, NULL
 * when there is none (dnnl_weights_mem.c); free with
 * nn_dnnl_weights_free(). */
dnnl_memory_t nn_dnnl_weights_memory_cached (const NnDnnlCacheKey *key,
                                             const dnnl_memory_desc_t *to);

/* Adds @act (NN_ACT_NONE: nothing) as an eltwise post-op of @attr, for
 * a fused epilogue (dnnl_prim_cache.c). */
gboolean nn_dnnl_attr_add_act (dnnl_primitive_attr_t attr, NnActKind act,
                               float alpha, float beta, GError **error);
/* As nn_dnnl_attr_add_act, after a sum post-op when @sum: the primitive
 * then adds what its destination holds (a fused residual add). */
gboolean nn_dnnl_attr_add_sum_act (dnnl_primitive_attr_t attr, gboolean sum,
                                   NnActKind act, float alpha, float beta,
                                   GError **error);


/* Per-module state of a provider, kept beside the module (whose private
 * data belongs to the reference type's create).  The slot's lock is held
 * from nn_dnnl_slot_lock() to nn_dnnl_slot_unlock(): one forward at a
 * time per module, each using all threads. */
typedef struct {
  GMutex lock;
  gpointer state;               /* the type's */
  GDestroyNotify state_free;
} NnDnnlSlot;

/* Returns: (transfer none) @m's slot, locked; created on first use. */
NnDnnlSlot *nn_dnnl_slot_lock (NnModule *m);
void nn_dnnl_slot_unlock (NnDnnlSlot *slot);
/* The end of a weighted forward (Conv2d, Linear): runs @prim (NULL when
 * building the state failed, @error then set) on @x into @out with
 * @weights and @bias (nullable), unlocks @slot, and returns (transfer full)
 * @out as a value, or NULL after dropping @out. */
NnValue *nn_dnnl_run_weighted (NnDnnlSlot *slot, NnDnnlPrim *prim,
                               dnnl_memory_t weights, dnnl_memory_t bias,
                               NnTensor *x, NnTensor *out, GError **error);
/* As nn_dnnl_run_weighted, on @x plain or laid out, into a new result of
 * @out_shape laid out when @lay_out (nn_dnnl_prim_run_tensor), first
 * filled with @sum (nullable) for a sum post-op. */
NnValue *nn_dnnl_run_weighted_tensor (NnDnnlSlot *slot, NnDnnlPrim *prim,
                                      dnnl_memory_t weights, dnnl_memory_t bias,
                                      NnTensor *x, const NnShape *out_shape,
                                      gboolean lay_out, NnTensor *sum,
                                      GError **error);
/* Frees @m's slot and state; from the type's destroy. */
void nn_dnnl_slot_drop (NnModule *m);

/* A product of rows with a weight [out_f, in_f] (+ bias [out_f]) on
 * oneDNN's inner product, the weights reordered once into its layout
 * (dnnl_linear.c): Linear's state, and MultiheadAttention's in-projection.
 * nn_dnnl_inner_get() returns (transfer none) @slot's state for these
 * operands, built or rebuilt when the rows, the weight or bias tensors
 * (NnDnnlSeen) or the epilogue @ep (nullable) changed; NULL with @error
 * set when oneDNN fails.  Call with @slot locked. */
typedef struct _NnDnnlInner NnDnnlInner;
NnDnnlInner *nn_dnnl_inner_new (gint64 rows, gint64 in_f, gint64 out_f,
                                NnTensor *w, NnTensor *b, const NnEpilogue *ep,
                                GError **error);
NnDnnlInner *nn_dnnl_inner_get (NnDnnlSlot *slot, NnModule *self, gint64 rows,
                                gint64 in_f, gint64 out_f, NnTensor *w,
                                NnTensor *b, const NnEpilogue *ep,
                                GError **error);
/* @x [rows, in_f] to @y [rows, out_f]. */
gboolean nn_dnnl_inner_run (NnDnnlInner *s, const float *x, float *y,
                            GError **error);
void nn_dnnl_inner_free (gpointer s);

/* A tensor cached by pointer, with a reference so the address cannot be
 * reused by another tensor while the cache lives; load_state_dict swaps
 * tensors, so a different tensor or data pointer means new weights; an
 * optimiser step or a BatchNorm update writes in place and bumps the
 * tensor's version. */
typedef struct {
  NnTensor *tensor;   /* (nullable) holds a reference */
  gpointer data;
  guint64 version;    /* nn_tensor_get_version(): in-place writes */
} NnDnnlSeen;

gboolean nn_dnnl_seen_same (const NnDnnlSeen *s, NnTensor *t);
void nn_dnnl_seen_set (NnDnnlSeen *s, NnTensor *t);
void nn_dnnl_seen_clear (NnDnnlSeen *s);

/* --- primitives cached by shape (dnnl_prim_cache.c) -------------------- */

typedef enum {
  NN_DNNL_DONE,
  NN_DNNL_DECLINED,   /* oneDNN implements no such primitive: no error */
  NN_DNNL_FAILED,     /* @error set */
} NnDnnlResult;

#define NN_DNNL_CACHED_MAX_ARGS 6

/* A primitive built for one key (prim NULL: oneDNN declined it) and the
 * memory descriptors its runs wrap the caller's buffers in. */
typedef struct {
  gint ref_count;
  dnnl_primitive_t prim;     /* (nullable) */
  dnnl_memory_desc_t md[NN_DNNL_CACHED_MAX_ARGS];
  dnnl_memory_desc_t scratch_md;
  /* A run's size and grain (nn_dnnl_set_threads): the primitive is
   * created and every run made on the same thread count. */
  gint64 work, grain;
} NnDnnlCached;

/* A process-wide cache: zero-initialised static storage is ready. */
typedef struct {
  GMutex lock;
  GHashTable *table;
} NnDnnlCache;

/* Fills @e's descriptors and primitive for @key (nn_dnnl_cached_build);
 * FALSE with @error on failure. */
typedef gboolean (*NnDnnlBuildFunc) (gconstpointer key, NnDnnlCached *e,
                                     GError **error);

/* Returns: (transfer full) the entry of @key (@key_size bytes, compared
 * bytewise: zero the padding), built by @build on first use; NULL with
 * @error.  Thread-safe. */
NnDnnlCached *nn_dnnl_cache_get (NnDnnlCache *cache, gconstpointer key, gsize key_size,
                                 NnDnnlBuildFunc build, GError **error);
void nn_dnnl_cached_unref (NnDnnlCached *e);
/* Empties @cache; from the user's destructor. */
void nn_dnnl_cache_clear (NnDnnlCache *cache);
/* Creates @e's primitive from @desc with a user scratchpad, for runs of
 * @work at @grain (its size in multiply-adds at NN_GEMM_GRAIN or elements
 * at NN_WORK_GRAIN; the key fixes it); TRUE leaving prim NULL when oneDNN
 * has no implementation. */
gboolean nn_dnnl_cached_build (NnDnnlCached *e, const_dnnl_op_desc_t desc,
                               gint64 work, gint64 grain,
                               GError **error);
/* Runs @e's primitive with @n arguments (@arg_ids, layouts @mds, the
 * caller's buffers @data) and a scratchpad of its own, on the thread
 * count it was built for (nn_dnnl_cached_build's work and grain).
 * Several threads may run one entry at once. */
/* The same for any primitive: @n operands (any number), a scratchpad of
 * @scratch_md (nullable: none) from the pool, on the thread count of
 * @work at @grain (nn_dnnl_set_threads), on a stream of its own. */
gboolean nn_dnnl_run_args (dnnl_primitive_t prim, const dnnl_memory_desc_t *scratch_md,
                           gint64 work, gint64 grain, int n, const int *arg_ids,
                           const dnnl_memory_desc_t *const *mds, void *const *data,
                           GError **error);
gboolean nn_dnnl_cached_run (NnDnnlCached *e,
                             int n, const int *arg_ids,
                             const dnnl_memory_desc_t *const *mds, void *const *data,
                             GError **error);

/* Softmax (@log_it: log_softmax) of float32 [outer, size, inner] along
 * size, @x into @y (the same buffer allowed), on a cached primitive
 * (dnnl_softmax.c). */
NnDnnlResult nn_dnnl_softmax_run (gint64 outer, gint64 size, gint64 inner,
                                  gboolean log_it, const float *x, float *y,
                                  GError **error);

/* --- matrix products (dnnl_matmul_cache.c) ----------------------------- */

#define NN_DNNL_MATMUL_MAX_DIMS NN_MAX_DIMS

/* A float32 product C = A @ B (+ bias): A [batch..., m, k] and B
 * [batch..., k, n] with element strides (so transposed and head-strided
 * views need no copy), batch dims equal or 1 (broadcast), C contiguous
 * [batch..., m, n]; @bias, when set, is [n] added to every row.  Zero the
 * key first (nn_dnnl_matmul_key_init): it is hashed by its bytes. */
typedef struct {
  guint nd;                                   /* 2 .. NN_DNNL_MATMUL_MAX_DIMS */
  gboolean bias;
  gint64 a_dims[NN_DNNL_MATMUL_MAX_DIMS], a_strides[NN_DNNL_MATMUL_MAX_DIMS];
  gint64 b_dims[NN_DNNL_MATMUL_MAX_DIMS], b_strides[NN_DNNL_MATMUL_MAX_DIMS];
  gint64 c_dims[NN_DNNL_MATMUL_MAX_DIMS];
} NnDnnlMatmulKey;

void nn_dnnl_matmul_key_init (NnDnnlMatmulKey *key, guint nd);
/* Row-major strides of @dims (extents 0 count as 1). */
void nn_dnnl_matmul_key_contiguous (const gint64 *dims, guint nd, gint64 *strides);
/* Runs the product of @key on nn_get_num_threads() OpenMP threads.  The
 * primitive is built on first use of @key's shapes and strides and
 * cached process-wide (thread-safe; several threads may run one
 * primitive at once). */
NnDnnlResult nn_dnnl_matmul_run (const NnDnnlMatmulKey *key, const float *a,
                                       const float *b, const float *bias, float *c,
                                       GError **error);

/* The pooling @alg over @geom's windows on oneDNN, on a plain input or a
 * oneDNN step's laid-out result (the result laid out likewise when the
 * call allows); inputs oneDNN would get wrong (a max pool's NaN, empty or
 * malformed shapes) go to @reference's forward (dnnl_pool2d.c). */
NnValue *nn_dnnl_pool_forward (NnModule *self, NnCall *call,
                               const NnArgs *args, dnnl_alg_kind_t alg,
                               const NnPoolGeom *geom,
                               const NnLayerType *reference, GError **error);

G_END_DECLS

#endif
