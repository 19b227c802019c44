/* ops plugin: tensor indexing shared by getitem and setitem.  Private. */
#ifndef NN_OPS_INDEX_H
#define NN_OPS_INDEX_H

#include "ops.h"

/* An index resolved against a tensor: the basic part as a strided view
 * (@shape, element @strides, @base offset), and at most one advanced
 * index @adv (transfer none: an integer tensor, or a bool mask spanning
 * dims @adv_dim ..), applied to the view's dim @adv_dim. */
typedef struct {
  NnShape shape;
  gint64 strides[NN_MAX_DIMS];
  gint64 base;
  NnTensor *adv;
  guint adv_dim;
} NnOpsIndexPlan;

gboolean nn_ops_index_plan (NnTensor *in, const NnValue *idx,
                            NnOpsIndexPlan *plan, GError **error);
/* @idx itself, or a list of ints as an int64 tensor.  (transfer full) */
NnValue *nn_ops_index_value (const NnValue *idx, GError **error);
/* Normalises index @i into [0, @size) with PyTorch's out-of-bounds error. */
gboolean nn_ops_check_index (gint64 *i, gint64 size, guint dim,
                             GError **error);
/* Python's slice.indices() for a positive step. */
gboolean nn_ops_slice_bounds (const NnValue *sl, gint64 size, gint64 *start,
                              gint64 *len, gint64 *step, GError **error);
/* Picks @idx along @dim: in's dims before @dim, idx's dims, the rest.
 * (transfer full) */
NnTensor *nn_ops_take_along (NnTensor *in, guint dim, NnTensor *idx,
                             GError **error);
/* Keeps dims [@dim, @dim + mask.ndim) where @mask is true, as one dim;
 * refuses meta tensors (the count depends on data).  (transfer full) */
NnTensor *nn_ops_take_mask (NnTensor *in, guint dim, NnTensor *mask,
                            GError **error);
/* Several integer tensor indices next to each other (x[i, j]): returns
 * (transfer full) the index with them replaced by one linear index, and
 * sets @folded (transfer full) to @in with their dims folded into one;
 * other indices are returned as they are (a ref) with @folded NULL.
 * Tensors apart or mixed with masks are refused (PyTorch's other rules). */
NnValue *nn_ops_fold_tensor_indices (NnTensor *in, const NnValue *idx,
                                     NnTensor **folded, GError **error);

#endif
