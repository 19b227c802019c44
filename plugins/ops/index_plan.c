/* ops plugin: tensor indexing shared by getitem and setitem: ints, slices
 * (positive steps, Python's clamping), None, Ellipsis, tuples of those,
 * and one integer index tensor or bool mask (index_multi.c folds several
 * adjacent integer ones into one first). */
#include "index.h"

#include <string.h>

gboolean
nn_ops_check_index (gint64 *i, gint64 size, guint dim, GError **error)
{
  if (*i < -size || *i >= size)
    return nn_ops_shape_fail (error, "index %" G_GINT64_FORMAT " is out of "
                              "bounds for dimension %u with size %"
                              G_GINT64_FORMAT, *i, dim, size);
  if (*i < 0)
    *i += size;
  return TRUE;
}

/* Python's slice.indices() for a positive step. */
gboolean
nn_ops_slice_bounds (const NnValue *sl, gint64 size, gint64 *start, gint64 *len,
              gint64 *step, GError **error)
{
  NnValue *a = nn_value_item (sl, 0), *b = nn_value_item (sl, 1),
          *c = nn_value_item (sl, 2);
  gint64 st = nn_value_is_none (c) ? 1 : nn_value_get_int (c);
  if (st <= 0)
    return nn_ops_fail (error, "step must be greater than zero");
  gint64 lo = nn_value_is_none (a) ? 0 : nn_value_get_int (a);
  gint64 hi = nn_value_is_none (b) ? size : nn_value_get_int (b);
  if (lo < 0)
    lo = MAX (lo + size, 0);
  if (hi < 0)
    hi = MAX (hi + size, 0);
  lo = MIN (lo, size);
  hi = MIN (hi, size);
  *start = lo;
  *step = st;
  *len = hi > lo ? (hi - lo + st - 1) / st : 0;
  return TRUE;
}

/* Picks @idx (an integer tensor of any shape) along @dim: the result's
 * shape is in's dims before @dim, idx's dims, then in's dims after it. */
NnTensor *
nn_ops_take_along (NnTensor *in, guint dim, NnTensor *idx, GError **error)
{
  NnShape shape = { 0 };
  if (in->shape.ndim - 1 + idx->shape.ndim > NN_MAX_DIMS)
    {
      nn_ops_shape_fail (error, "indexing: the result would have more than %d "
                         "dims", NN_MAX_DIMS);
      return NULL;
    }
  for (guint d = 0; d < dim; d++)
    shape.dims[shape.ndim++] = in->shape.dims[d];
  for (guint d = 0; d < idx->shape.ndim; d++)
    shape.dims[shape.ndim++] = idx->shape.dims[d];
  for (guint d = dim + 1; d < in->shape.ndim; d++)
    shape.dims[shape.ndim++] = in->shape.dims[d];
  gboolean meta = nn_tensor_is_meta (in) || nn_tensor_is_meta (idx);
  g_autoptr (NnTensor) out = nn_ops_new (meta, in->dtype, &shape, error);
  if (!out || meta)
    return g_steal_pointer (&out);
  gint64 outer = 1, inner = 1, size = in->shape.dims[dim];
  for (guint d = 0; d < dim; d++)
    outer *= in->shape.dims[d];
  for (guint d = dim + 1; d < in->shape.ndim; d++)
    inner *= in->shape.dims[d];
  gint64 n = nn_tensor_numel (idx);
  gsize es = nn_dtype_size (in->dtype);
  for (gint64 k = 0; k < n; k++)
    {
      gint64 j = nn_ops_get_i (idx, k);
      if (!nn_ops_check_index (&j, size, dim, error))
        return NULL;
      for (gint64 o = 0; o < outer; o++)
        memcpy ((guint8 *) out->data + ((o * n + k) * inner) * es,
                (guint8 *) in->data + ((o * size + j) * inner) * es,
                inner * es);
    }
  return g_steal_pointer (&out);
}

/* Keeps the elements of dims [@dim, @dim + mask.ndim) where @mask is
 * true, as one dim of their count. */
NnTensor *
nn_ops_take_mask (NnTensor *in, guint dim, NnTensor *mask, GError **error)
{
  if (nn_tensor_is_meta (in) || nn_tensor_is_meta (mask))
    {
      nn_ops_fail (error, "indexing with a bool mask gives a shape that "
                   "depends on the mask's values; shape inference cannot "
                   "compute it (nnkit refuses rather than guess)");
      return NULL;
    }
  for (guint d = 0; d < mask->shape.ndim; d++)
    if (dim + d >= in->shape.ndim
        || mask->shape.dims[d] != in->shape.dims[dim + d])
      {
        g_autofree char *a = nn_shape_to_string (&mask->shape);
        g_autofree char *b = nn_shape_to_string (&in->shape);
        nn_ops_shape_fail (error, "The shape of the mask %s at index %u does "
                           "not match the shape of the indexed tensor %s at "
                           "index %u", a, d, b, dim + d);
        return NULL;
      }
  gint64 n = nn_tensor_numel (mask), count = 0;
  const guint8 *m = mask->data;
  for (gint64 k = 0; k < n; k++)
    count += m[k] != 0;
  NnShape idx_shape = { 1, { count } };
  g_autoptr (NnTensor) idx = nn_tensor_new (NN_DTYPE_I64, &idx_shape);
  for (gint64 k = 0, c = 0; k < n; k++)
    if (m[k])
      nn_tensor_i64 (idx)[c++] = k;
  /* Fold the masked dims into one, then take along it. */
  NnShape folded = { 0 };
  for (guint d = 0; d < dim; d++)
    folded.dims[folded.ndim++] = in->shape.dims[d];
  folded.dims[folded.ndim++] = n;
  for (guint d = dim + mask->shape.ndim; d < in->shape.ndim; d++)
    folded.dims[folded.ndim++] = in->shape.dims[d];
  g_autoptr (NnTensor) f = nn_tensor_reshape (in, &folded);
  return nn_ops_take_along (f, dim, idx, error);
}

gboolean
nn_ops_index_plan (NnTensor *in, const NnValue *idx, NnOpsIndexPlan *plan,
                   GError **error)
{
  /* One list of index items; a tuple spreads. */
  const NnValue *items[2 * NN_MAX_DIMS + 1];
  guint n = 0;
  if (nn_value_kind (idx) == NN_VALUE_TUPLE)
    {
      if (nn_value_n_items (idx) > G_N_ELEMENTS (items))
        {
          return nn_ops_shape_fail (error, "too many indices for tensor of "
                                    "dimension %u", in->shape.ndim);
        }
      for (guint i = 0; i < nn_value_n_items (idx); i++)
        items[n++] = nn_value_item (idx, i);
    }
  else
    items[n++] = idx;

  /* Dims each item consumes: None and ... none, a mask its ndim. */
  guint used = 0, ellipses = 0;
  for (guint i = 0; i < n; i++)
    {
      NnValueKind k = nn_value_kind (items[i]);
      if (k == NN_VALUE_ELLIPSIS)
        ellipses++;
      else if (k == NN_VALUE_TENSOR
               && nn_value_get_tensor (items[i])->dtype == NN_DTYPE_BOOL)
        used += nn_value_get_tensor (items[i])->shape.ndim;
      else if (k != NN_VALUE_NONE)
        used++;
    }
  if (ellipses > 1)
    {
      nn_ops_fail (error, "an index can only have a single ellipsis ('...')");
      return FALSE;
    }
  if (used > in->shape.ndim)
    {
      nn_ops_shape_fail (error, "too many indices for tensor of dimension %u",
                         in->shape.ndim);
      return FALSE;
    }

  gint64 own[NN_MAX_DIMS], strides[NN_MAX_DIMS], base = 0;
  nn_ops_strides (&in->shape, own);
  NnShape shape = { 0 };
  guint d = 0; /* next input dim */
  gint adv_dim = -1;
  NnTensor *adv = NULL;
  for (guint i = 0; i < n; i++)
    {
      const NnValue *it = items[i];
      NnValueKind k = nn_value_kind (it);
      if (shape.ndim >= NN_MAX_DIMS && k != NN_VALUE_INT)
        {
          nn_ops_shape_fail (error, "indexing: the result would have more "
                             "than %d dims", NN_MAX_DIMS);
          return FALSE;
        }
      switch (k)
        {
        case NN_VALUE_NONE:
          shape.dims[shape.ndim] = 1;
          strides[shape.ndim++] = 0;
          break;
        case NN_VALUE_ELLIPSIS:
          for (guint r = 0; r < in->shape.ndim - used; r++, d++)
            {
              shape.dims[shape.ndim] = in->shape.dims[d];
              strides[shape.ndim++] = own[d];
            }
          break;
        case NN_VALUE_BOOL:
          /* x[True] adds a dim in PyTorch, unlike the int 1 it equals. */
          return nn_ops_fail (error, "indexing a tensor with a Python bool is "
                              "not supported by nnkit");
        case NN_VALUE_INT:
          {
            gint64 j = nn_value_get_int (it);
            if (!nn_ops_check_index (&j, in->shape.dims[d], d, error))
              return FALSE;
            base += j * own[d++];
            break;
          }
        case NN_VALUE_SLICE:
          {
            gint64 start, len, step;
            if (!nn_ops_slice_bounds (it, in->shape.dims[d], &start, &len, &step, error))
              return FALSE;
            base += start * own[d];
            shape.dims[shape.ndim] = len;
            strides[shape.ndim++] = step * own[d++];
            break;
          }
        case NN_VALUE_TENSOR:
          {
            NnTensor *t = nn_value_get_tensor (it);
            if (adv)
              {
                nn_ops_fail (error, "indexing with more than one tensor index "
                             "is not supported by nnkit");
                return FALSE;
              }
            if (t->dtype != NN_DTYPE_BOOL && nn_dtype_is_float (t->dtype))
              {
                nn_ops_fail (error, "tensors used as indices must be long, "
                             "int, byte or bool tensors, found %s",
                             nn_dtype_name (t->dtype));
                return FALSE;
              }
            adv = t;
            adv_dim = (gint) shape.ndim;
            /* Keep the indexed dims whole for now; the tensor picks later. */
            guint span = t->dtype == NN_DTYPE_BOOL ? t->shape.ndim : 1;
            if (shape.ndim + span > NN_MAX_DIMS)
              {
                nn_ops_shape_fail (error, "indexing: too many dims");
                return FALSE;
              }
            for (guint r = 0; r < span; r++, d++)
              {
                shape.dims[shape.ndim] = in->shape.dims[d];
                strides[shape.ndim++] = own[d];
              }
            break;
          }
        default:
          {
            g_autofree char *s = nn_value_to_string (it);
            nn_ops_fail (error, "only integers, slices (`:`), ellipsis "
                         "(`...`), None and long or bool tensors are valid "
                         "indices, found %s", s);
            return FALSE;
          }
        }
    }
  for (; d < in->shape.ndim; d++)
    {
      if (shape.ndim >= NN_MAX_DIMS)
        {
          nn_ops_shape_fail (error, "indexing: too many dims");
          return FALSE;
        }
      shape.dims[shape.ndim] = in->shape.dims[d];
      strides[shape.ndim++] = own[d];
    }
  plan->shape = shape;
  memcpy (plan->strides, strides, sizeof strides);
  plan->base = base;
  plan->adv = adv;
  plan->adv_dim = adv_dim < 0 ? 0 : (guint) adv_dim;
  if (adv && adv->dtype == NN_DTYPE_U8)
    return nn_ops_fail (error, "indexing with a uint8 tensor is deprecated in "
                        "PyTorch and not supported by nnkit; use a bool tensor");
  return TRUE;
}

NnValue *
nn_ops_index_value (const NnValue *idx, GError **error)
{
  if (nn_value_kind (idx) != NN_VALUE_LIST)
    return nn_value_ref ((NnValue *) idx);
  /* x[[0, 2]]: a list of ints indexes like a long tensor. */
  NnShape s = { 1, { nn_value_n_items (idx) } };
  g_autoptr (NnTensor) t = nn_tensor_new (NN_DTYPE_I64, &s);
  for (guint i = 0; i < nn_value_n_items (idx); i++)
    if (!nn_ops_int_value (nn_value_item (idx, i), &nn_tensor_i64 (t)[i]))
      {
        nn_ops_fail (error, "a list index must hold ints");
        return NULL;
      }
  return nn_value_new_tensor (t);
}
