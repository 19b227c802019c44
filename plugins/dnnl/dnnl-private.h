/* dnnl plugin: oneDNN providers of Conv2d, Linear, MaxPool2d, AvgPool2d
 * and BatchNorm2d.  Each type is the reference type's vtable (schema,
 * signature, create, infer, repr: compiled in from the reference
 * families) with a oneDNN forward and a supports() check, at a rank above
 * the reference.  Private to the plugin. */
#ifndef NN_DNNL_PRIVATE_H
#define NN_DNNL_PRIVATE_H

#include <nnkit/plugin.h>
#include <oneapi/dnnl/dnnl.h>

G_BEGIN_DECLS

/* Above the OpenBLAS reference (NN_RANK_PRIMARY). */
#define NN_DNNL_RANK (NN_RANK_PRIMARY + 64)

/* Each type file fills @t from its reference type. */
void nn_dnnl_conv2d_setup (NnLayerType *t);
void nn_dnnl_linear_setup (NnLayerType *t);
void nn_dnnl_max_pool2d_setup (NnLayerType *t);
void nn_dnnl_avg_pool2d_setup (NnLayerType *t);
void nn_dnnl_batch_norm2d_setup (NnLayerType *t);

/* Sets @error from a failed oneDNN call (naming @what) and returns FALSE;
 * returns TRUE for dnnl_success. */
gboolean nn_dnnl_ok (dnnl_status_t st, const char *what, GError **error);

/* Returns: (transfer none) the process's CPU engine, NULL with @error. */
dnnl_engine_t nn_dnnl_engine (GError **error);

/* A primitive ready to run on plain (user-layout) buffers: the source and
 * destination are reordered around it when it chose other layouts. */
typedef struct {
  dnnl_primitive_t prim;
  dnnl_primitive_t reorder_in, reorder_out;  /* (nullable) */
  dnnl_memory_t user_src, user_dst;          /* handles set per call */
  dnnl_memory_t src, dst;                    /* the primitive's layouts */
  dnnl_memory_t scratch;                     /* (nullable) */
  dnnl_stream_t stream;
} NnDnnlPrim;

/* Creates the primitive of @pd (transfer none; attr must have asked for
 * a user scratchpad) for plain @user_src and @user_dst layouts. */
gboolean nn_dnnl_prim_init (NnDnnlPrim *p, const_dnnl_primitive_desc_t pd,
                            const dnnl_memory_desc_t *user_src,
                            const dnnl_memory_desc_t *user_dst,
                            GError **error);
/* Runs it on @x and @y (plain layouts) with @extra arguments (weights,
 * bias, statistics), on nn_get_num_threads() OpenMP threads. */
gboolean nn_dnnl_prim_run (NnDnnlPrim *p, const float *x, float *y,
                           int n_extra, const dnnl_exec_arg_t *extra,
                           GError **error);
void nn_dnnl_prim_clear (NnDnnlPrim *p);

/* Returns: (transfer full) (nullable) a primitive attr asking for a user
 * scratchpad, so that no scratch is shared between modules. */
dnnl_primitive_attr_t nn_dnnl_attr_new (GError **error);

/* Returns: a library-allocated memory of layout @to holding @data (plain
 * layout @from) reordered; NULL with @error.  Weights are reordered once
 * per module with this. */
dnnl_memory_t nn_dnnl_reorder_new (const dnnl_memory_desc_t *from,
                                   const void *data,
                                   const dnnl_memory_desc_t *to,
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
/* Frees @m's slot and state; from the type's destroy. */
void nn_dnnl_slot_drop (NnModule *m);

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

G_END_DECLS

#endif
