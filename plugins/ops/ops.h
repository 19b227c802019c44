/* ops plugin: PyTorch's functional ops as layer types flagged NN_LAYER_OP,
 * one file per group, each exporting a NULL-terminated table of types.
 * This header holds the helpers they share: element access over every
 * dtype, broadcasting, PyTorch's type promotion, Python scalars on either
 * side, dim normalisation.  Private to the plugin.
 *
 * Every op's forward also serves as its infer: when its tensors are meta
 * tensors it computes only the result's shape and dtype, so the two can
 * never disagree.  Runtime errors are NN_SHAPE_ERROR_MISMATCH for shapes
 * and dims, NN_MODULE_ERROR_FAILED otherwise, in PyTorch's words.
 */
#ifndef NN_OPS_H
#define NN_OPS_H

#include <nnkit/plugin.h>

extern const NnLayerType *const nn_ops_arith_types[];
extern const NnLayerType *const nn_ops_shape_types[];
extern const NnLayerType *const nn_ops_pad_types[];
extern const NnLayerType *const nn_ops_join_types[];
extern const NnLayerType *const nn_ops_index_types[];
extern const NnLayerType *const nn_ops_setitem_types[];
extern const NnLayerType *const nn_ops_reduce_types[];
extern const NnLayerType *const nn_ops_cumulative_types[];
extern const NnLayerType *const nn_ops_sort_types[];
extern const NnLayerType *const nn_ops_norm_types[];
extern const NnLayerType *const nn_ops_matmul_types[];
extern const NnLayerType *const nn_ops_einsum_types[];
extern const NnLayerType *const nn_ops_softmax_types[];
extern const NnLayerType *const nn_ops_unary_types[];
extern const NnLayerType *const nn_ops_compare_types[];
extern const NnLayerType *const nn_ops_create_types[];
extern const NnLayerType *const nn_ops_convert_types[];
extern const NnLayerType *const nn_ops_layer_norm_types[];
extern const NnLayerType *const nn_ops_concat_types[];
extern const NnLayerType *const nn_ops_index_add_types[];
extern const NnLayerType *const nn_ops_meshgrid_types[];
extern const NnLayerType *const nn_ops_cdist_types[];
extern const NnLayerType *const nn_ops_pointwise3_types[];
extern const NnLayerType *const nn_ops_diag_types[];
extern const NnLayerType *const nn_ops_bucketize_types[];
extern const NnLayerType *const nn_ops_tensor_split_types[];

/* Declares an op type whose forward also serves as infer; @bw_ (nullable) its backward (docs/TRAINING.md). */
#define NN_OPS_FLAGS_TYPE(var_, name_, doc_, flags_, args_, aliases_, fn_, bw_) \
  const NnLayerType var_ = {                                              \
    .struct_size = sizeof (NnLayerType),                                  \
    .name = name_,                                                        \
    .doc = doc_,                                                          \
    .flags = (flags_),                                                    \
    .args = args_,                                                        \
    .n_args = G_N_ELEMENTS (args_),                                       \
    .aliases = aliases_,                                                  \
    .create = nn_ops_create,                                              \
    .forward = fn_,                                                       \
    .infer = fn_,                                                         \
    .backward = bw_,                                                      \
  }
#define NN_OPS_GRAD_TYPE(var_, name_, doc_, args_, aliases_, fn_, bw_)    \
  NN_OPS_FLAGS_TYPE (var_, name_, doc_, NN_LAYER_OP, args_, aliases_, fn_, bw_)
#define NN_OPS_TYPE(var_, name_, doc_, args_, aliases_, fn_)              \
  NN_OPS_GRAD_TYPE (var_, name_, doc_, args_, aliases_, fn_, NULL)

/* A forward (and infer) of an op. */
typedef NnValue *(*NnOpsForward) (NnModule *self, NnCall *call,
                                  const NnArgs *args, GError **error);

/* The backward of an op that only moves, copies or repeats the elements
 * of argument 0 (a tensor, or a sequence or dict of tensors as cat's):
 * reruns @fn with argument 0's tensors replaced by int64 tensors of their
 * element positions and sums the gradient back to the positions the
 * result names (ops_grad.c).  Returns (transfer full) the one-item tuple
 * of argument 0's gradient. */
NnValue *nn_ops_move_backward (NnOpsForward fn, const NnArgSpec *specs,
                               guint n_specs, NnModule *self,
                               NnCall *call, const NnArgs *args, const NnValue *out,
                               const NnValue *grad_out, GError **error);

/* The backward of movement op var_ (see nn_ops_move_backward). */
#define NN_OPS_MOVE_BACKWARD(var_, args_, fn_)                             \
  static NnValue *var_##_backward (NnModule *self, NnCall *call,          \
                            const NnArgs *args, const NnValue *out,       \
                            const NnValue *grad_out, GError **error)      \
  {                                                                       \
    return nn_ops_move_backward (fn_, args_, G_N_ELEMENTS (args_), self,  \
                                 call, args, out, grad_out, error);       \
  }

/* Declares a movement op with its backward; written without a leading
 * `static`, unlike NN_OPS_TYPE. */
#define NN_OPS_MOVE_TYPE(var_, name_, doc_, args_, aliases_, fn_)         \
  NN_OPS_MOVE_BACKWARD (var_, args_, fn_)                                 \
  static NN_OPS_GRAD_TYPE (var_, name_, doc_, args_, aliases_, fn_,       \
                           var_##_backward)
/* An op whose result may be its input or share its storage, as PyTorch's
 * views (reshape, getitem, to the same dtype): NN_LAYER_ALIASES tells the
 * checked mode (NN_CHECK=1) it is by design. */
#define NN_OPS_VIEW_GRAD_TYPE(var_, name_, doc_, args_, aliases_, fn_, bw_) \
  NN_OPS_FLAGS_TYPE (var_, name_, doc_, NN_LAYER_OP | NN_LAYER_ALIASES,    \
                     args_, aliases_, fn_, bw_)
#define NN_OPS_VIEW_TYPE(var_, name_, doc_, args_, aliases_, fn_)         \
  NN_OPS_VIEW_GRAD_TYPE (var_, name_, doc_, args_, aliases_, fn_, NULL)

/* A movement op whose result may share its input's storage (getitem,
 * transpose, expand...): the movement backward and NN_LAYER_ALIASES. */
#define NN_OPS_MOVE_VIEW_TYPE(var_, name_, doc_, args_, aliases_, fn_)    \
  NN_OPS_MOVE_BACKWARD (var_, args_, fn_)                                 \
  static NN_OPS_VIEW_GRAD_TYPE (var_, name_, doc_, args_, aliases_, fn_,  \
                                var_##_backward)

/* Tensor arguments of ops take every dtype unless they say otherwise. */
#define NN_OPS_ALL NN_DTYPES_ALL

/* add's forward (arith.c) and what the plan may fuse with it
 * (add_fuse.c). */
NnValue *nn_ops_add_forward (NnModule *self, NnCall *call, const NnArgs *args,
                             GError **error);
extern const NnFuseInfo nn_ops_add_fuse;

/* The create of every op: ops have no config and no tensors. */
gboolean nn_ops_create (NnModule *self, GError **error);

/* --- element access: every dtype, as double or as int64 ------------------ */

double nn_ops_get_f (const NnTensor *t, gint64 i);
gint64 nn_ops_get_i (const NnTensor *t, gint64 i);
/* Stores with PyTorch's conversion: float to int truncates, anything to
 * BOOL is != 0, to F16/BF16 rounds to nearest even. */
void nn_ops_set_f (NnTensor *t, gint64 i, double v);
void nn_ops_set_i (NnTensor *t, gint64 i, gint64 v);
/* @v rounded to @dtype's precision, as a value cast to a float dtype. */
double nn_ops_round_to (NnDType dtype, double v);

/* --- results ------------------------------------------------------------- */

/* A new tensor of @dtype and @shape: a meta tensor when @meta, else
 * zero-filled.  NULL with @error set when memory runs out.
 * Returns: (transfer full). */
NnTensor *nn_ops_new (gboolean meta, NnDType dtype, const NnShape *shape,
                      GError **error);
/* Returns: (transfer full) a tensor value taking over @t (transfer full),
 * or NULL when @t is NULL. */
NnValue *nn_ops_take (NnTensor *t);
/* Sets @error to NN_MODULE_ERROR_FAILED with a printf message; FALSE. */
gboolean nn_ops_fail (GError **error, const char *fmt, ...) G_GNUC_PRINTF (2, 3);
/* Sets @error to NN_SHAPE_ERROR_MISMATCH with a printf message; FALSE. */
gboolean nn_ops_shape_fail (GError **error, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

/* --- dims, sizes, dtypes ------------------------------------------------- */

/* Normalises @dim against @ndim (0-d tensors take -1 and 0), with
 * PyTorch's "Dimension out of range (expected to be in range of [-2, 1],
 * but got 2)". */
gboolean nn_ops_dim (gint64 dim, guint ndim, guint *out, GError **error);
/* Reads sizes given as ints (varargs tuple) or one tuple/list of ints, as
 * view(2, 3) and view((2, 3)) both are.  0-d integer tensors count as
 * ints.  @what names the argument in errors. */
gboolean nn_ops_sizes (const NnValue *v, const char *what, gint64 *out,
                       guint *n_out, GError **error);
/* An int-like value: INT, BOOL, or a one-element integer tensor with data. */
gboolean nn_ops_int_value (const NnValue *v, gint64 *out);
/* Reads a dtype argument: a string ("torch.int64", "float32") or None
 * (@out untouched, FALSE returned in @given). */
gboolean nn_ops_dtype_arg (const NnValue *v, NnDType *out, gboolean *given,
                           GError **error);
/* PyTorch's short dtype name for messages: "Float", "Long", "Bool". */
const char *nn_ops_dtype_short (NnDType dtype);
/* torch.promote_types on two dtypes. */
NnDType nn_ops_promote (NnDType a, NnDType b);
/* torch.result_type over values that are tensors or Python scalars
 * (INT, FLOAT, BOOL), with PyTorch's three priority groups: tensors with
 * dims, 0-d tensors, Python numbers.  NULL items are skipped. */
NnDType nn_ops_result_type (const NnValue *const *vals, guint n);
gboolean nn_ops_is_scalar_value (const NnValue *v);

/* --- broadcasting -------------------------------------------------------- */

/* The broadcast shape of @a and @b, with PyTorch's "The size of tensor a
 * (3) must match the size of tensor b (4) at non-singleton dimension 1". */
gboolean nn_ops_broadcast (const NnShape *a, const NnShape *b, NnShape *out,
                           GError **error);
/* Element strides of @in seen through broadcast shape @out: 0 on
 * broadcast dims; @strides has out->ndim entries. */
void nn_ops_bcast_strides (const NnShape *in, const NnShape *out,
                           gint64 *strides);
/* Row-major contiguous strides of @s. */
void nn_ops_strides (const NnShape *s, gint64 *strides);
/* @s read as [@outer, @size, @inner] around @dim (a 0-d shape is 1, 1, 1),
 * for ops that walk one dim of every row. */
void nn_ops_around_dim (const NnShape *s, guint dim, gint64 *outer, gint64 *size,
                        gint64 *inner);

/* Walks a shape in row-major order, keeping up to 4 operands' offsets. */
typedef struct {
  guint ndim;
  guint n_ops;
  gint64 dims[NN_MAX_DIMS];
  gint64 idx[NN_MAX_DIMS];
  gint64 strides[4][NN_MAX_DIMS];
  gint64 off[4];
} NnOpsIter;

void nn_ops_iter_init (NnOpsIter *it, const NnShape *shape);
/* Adds an operand of shape @in broadcast to the iterator's shape. */
void nn_ops_iter_add (NnOpsIter *it, const NnShape *in);
/* Adds an operand with explicit element @strides and @base offset. */
void nn_ops_iter_add_strided (NnOpsIter *it, const gint64 *strides,
                              gint64 base);
void nn_ops_iter_next (NnOpsIter *it);

/* A broadcast walk over a result shape as runs (ops_runs.c): @inner
 * elements per run, in which operand k advances @step[k] (0 or its
 * contiguous step) per element; @outer's off[k] is operand k's offset at
 * the start of each of the @runs runs (nn_ops_iter_next between runs). */
#define NN_OPS_RUNS_MAX 3
typedef struct {
  gint64 inner, runs;
  gint64 step[NN_OPS_RUNS_MAX];
  NnOpsIter outer;
} NnOpsRuns;

/* @ins: the @n_ops operands' shapes, each broadcastable to @out. */
void nn_ops_runs_init (NnOpsRuns *r, const NnShape *out, guint n_ops,
                       const NnShape *const *ins);

/* --- element-wise ops ---------------------------------------------------- */

/* A binary element-wise op.  The float function computes in double on
 * operands already rounded to the common dtype; the int function on
 * int64 (bools as 0/1).  @out_bool: the result is BOOL (comparisons).
 * @int_to_float: integral inputs give F32 (true division). */
typedef struct {
  const char *name;
  double (*f) (double a, double b);
  /* Returns FALSE with @error set (integer division by zero). */
  gboolean (*i) (gint64 a, gint64 b, gint64 *out, GError **error);
  gboolean out_bool;
  gboolean int_to_float;
  /* (nullable) extra dtype check on the common dtype and operand dtypes. */
  gboolean (*check) (NnDType common, const NnValue *a, const NnValue *b,
                     GError **error);
  /* (nullable) float32 in and out, no alpha: @n results z[i] = x[i * sx]
   * op y[i * sy] (steps of a run, NnOpsRuns), exactly as f rounds them. */
  void (*f32) (const float *x, gint64 sx, const float *y, gint64 sy,
               float *z, gint64 n);
} NnOpsBinary;

/* Applies @op to tensors or Python scalars @a and @b with broadcasting and
 * type promotion; two Python scalars give a Python scalar, as operator.add
 * on ints does.  @alpha (nullable, NULL = 1) scales @b first, as add's
 * alpha.  Returns (transfer full). */
NnValue *nn_ops_binary (const NnOpsBinary *op, const NnValue *a,
                        const NnValue *b, const NnValue *alpha,
                        GError **error);

/* Maps @in element-wise to a new tensor of @out_dtype with @f in double
 * (meta in, meta out).  Returns (transfer full). */
NnTensor *nn_ops_map_f (NnTensor *in, NnDType out_dtype,
                        double (*f) (double x, gpointer data), gpointer data,
                        GError **error);

/* A new contiguous tensor of @shape whose element at index (i0, i1, ...)
 * is @in's element at @base + sum(ik * strides[k]): permutes, expands,
 * slices.  Meta in, meta out.  Returns (transfer full). */
NnTensor *nn_ops_gather (NnTensor *in, const NnShape *shape,
                         const gint64 *strides, gint64 base, GError **error);
/* Copies the elements of @src at sum(ik * strides[k]) (element strides,
 * any sign or 0) to contiguous @dst of @shape, @es bytes each
 * (strided_copy.c).  The two must not overlap. */
void nn_ops_strided_copy (guint8 *dst, const guint8 *src, const NnShape *shape,
                          const gint64 *strides, gsize es);
/* Elements @start .. @start + @len - 1 of @dim (both already checked),
 * as a new tensor (transfer full).  Meta in, meta out. */
NnTensor *nn_ops_narrow (NnTensor *in, guint dim, gint64 start, gint64 len,
                         GError **error);
/* @in without dim @dim, at index @index (checked).  (transfer full) */
NnTensor *nn_ops_select (NnTensor *in, guint dim, gint64 index,
                         GError **error);


/* C[m,n] = A[m,k] @ B[k,n] (B given as [n,k] when @b_trans), row-major,
 * float32 or float64 through OpenBLAS; C is overwritten (a zero-filled C
 * stays zero when k is 0).  The caller has checked nn_blas_ready(). */
void nn_ops_gemm (NnDType dt, gint64 m, gint64 n, gint64 k, const void *a,
                  const void *b, gboolean b_trans, void *c);

/* A tensor for a Python scalar value in @dtype, 0-d (transfer full). */
NnTensor *nn_ops_scalar_tensor (const NnValue *v, NnDType dtype);

#endif
