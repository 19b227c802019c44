/* ops plugin: getitem on tensors (ints, slices, None, Ellipsis, tuples of
 * them, one bool mask or integer index tensor) and on tuples, lists and
 * dicts; select, narrow, index_select, gather.
 *
 * A bool mask's result size depends on the data, so shape inference
 * refuses it with a message rather than guess. */
#include "ops.h"

#include <string.h>

#define INDEX_DTYPES (NN_DTYPE_BIT (NN_DTYPE_I64) | NN_DTYPE_BIT (NN_DTYPE_I32))

static gboolean
check_index (gint64 *i, gint64 size, guint dim, GError **error)
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
static gboolean
slice_bounds (const NnValue *sl, gint64 size, gint64 *start, gint64 *len,
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
static NnTensor *
take_along (NnTensor *in, guint dim, NnTensor *idx, GError **error)
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
      if (!check_index (&j, size, dim, error))
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
static NnTensor *
take_mask (NnTensor *in, guint dim, NnTensor *mask, GError **error)
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
  return take_along (f, dim, idx, error);
}

static NnValue *
getitem_seq (const NnValue *obj, const NnValue *idx, GError **error)
{
  NnValueKind k = nn_value_kind (obj), ik = nn_value_kind (idx);
  const char *what = k == NN_VALUE_LIST ? "list" : "tuple";
  gint64 n = nn_value_n_items (obj);
  if (ik == NN_VALUE_SLICE)
    {
      gint64 start, len, step;
      if (!slice_bounds (idx, n, &start, &len, &step, error))
        return NULL;
      NnValue *out = k == NN_VALUE_LIST ? nn_value_new_list ()
                                        : nn_value_new_tuple ();
      for (gint64 i = 0; i < len; i++)
        nn_value_append (out, nn_value_ref (nn_value_item (obj, start + i * step)));
      return out;
    }
  gint64 i;
  if (!nn_ops_int_value (idx, &i))
    {
      nn_ops_fail (error, "%s indices must be integers or slices, not %s",
                   what, nn_value_kind_name (ik));
      return NULL;
    }
  if (i < -n || i >= n)
    {
      nn_ops_fail (error, "%s index out of range (index %" G_GINT64_FORMAT
                   ", length %" G_GINT64_FORMAT ")", what, i, n);
      return NULL;
    }
  return nn_value_ref (nn_value_item (obj, i < 0 ? i + n : i));
}

static NnValue *
getitem_tensor (NnTensor *in, const NnValue *idx, GError **error)
{
  /* One list of index items; a tuple spreads. */
  const NnValue *items[2 * NN_MAX_DIMS + 1];
  guint n = 0;
  if (nn_value_kind (idx) == NN_VALUE_TUPLE)
    {
      if (nn_value_n_items (idx) > G_N_ELEMENTS (items))
        {
          nn_ops_shape_fail (error, "too many indices for tensor of dimension "
                             "%u", in->shape.ndim);
          return NULL;
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
      return NULL;
    }
  if (used > in->shape.ndim)
    {
      nn_ops_shape_fail (error, "too many indices for tensor of dimension %u",
                         in->shape.ndim);
      return NULL;
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
          return NULL;
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
        case NN_VALUE_INT:
        case NN_VALUE_BOOL:
          {
            gint64 j = nn_value_get_int (it);
            if (!check_index (&j, in->shape.dims[d], d, error))
              return NULL;
            base += j * own[d++];
            break;
          }
        case NN_VALUE_SLICE:
          {
            gint64 start, len, step;
            if (!slice_bounds (it, in->shape.dims[d], &start, &len, &step, error))
              return NULL;
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
                return NULL;
              }
            if (t->dtype != NN_DTYPE_BOOL && nn_dtype_is_float (t->dtype))
              {
                nn_ops_fail (error, "tensors used as indices must be long, "
                             "int, byte or bool tensors, found %s",
                             nn_dtype_name (t->dtype));
                return NULL;
              }
            adv = t;
            adv_dim = (gint) shape.ndim;
            /* Keep the indexed dims whole for now; the tensor picks later. */
            guint span = t->dtype == NN_DTYPE_BOOL ? t->shape.ndim : 1;
            if (shape.ndim + span > NN_MAX_DIMS)
              {
                nn_ops_shape_fail (error, "indexing: too many dims");
                return NULL;
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
            return NULL;
          }
        }
    }
  for (; d < in->shape.ndim; d++)
    {
      if (shape.ndim >= NN_MAX_DIMS)
        {
          nn_ops_shape_fail (error, "indexing: too many dims");
          return NULL;
        }
      shape.dims[shape.ndim] = in->shape.dims[d];
      strides[shape.ndim++] = own[d];
    }
  g_autoptr (NnTensor) basic = nn_ops_gather (in, &shape, strides, base, error);
  if (!basic || !adv)
    return nn_ops_take (g_steal_pointer (&basic));
  if (adv->dtype == NN_DTYPE_BOOL)
    return nn_ops_take (take_mask (basic, (guint) adv_dim, adv, error));
  if (adv->dtype == NN_DTYPE_U8)
    {
      nn_ops_fail (error, "indexing with a uint8 tensor is deprecated in "
                   "PyTorch and not supported by nnkit; use a bool tensor");
      return NULL;
    }
  return nn_ops_take (take_along (basic, (guint) adv_dim, adv, error));
}

static NnValue *
getitem_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnValue *obj = nn_args_get (args, 0), *idx = nn_args_get (args, 1);
  switch (nn_value_kind (obj))
    {
    case NN_VALUE_TENSOR:
      if (nn_value_kind (idx) == NN_VALUE_LIST)
        {
          /* x[[0, 2]]: a list of ints indexes like a long tensor. */
          NnShape s = { 1, { nn_value_n_items (idx) } };
          g_autoptr (NnTensor) t = nn_tensor_new (NN_DTYPE_I64, &s);
          for (guint i = 0; i < nn_value_n_items (idx); i++)
            if (!nn_ops_int_value (nn_value_item (idx, i),
                                   &nn_tensor_i64 (t)[i]))
              {
                nn_ops_fail (error, "a list index must hold ints");
                return NULL;
              }
          g_autoptr (NnValue) tv = nn_value_new_tensor (t);
          return getitem_tensor (nn_value_get_tensor (obj), tv, error);
        }
      return getitem_tensor (nn_value_get_tensor (obj), idx, error);
    case NN_VALUE_TUPLE:
    case NN_VALUE_LIST:
      return getitem_seq (obj, idx, error);
    case NN_VALUE_DICT:
      {
        const char *key = nn_value_get_string (idx);
        NnValue *v = key ? nn_value_dict_lookup (obj, key) : NULL;
        if (!v)
          {
            g_autofree char *s = nn_value_to_string (idx);
            nn_ops_fail (error, "KeyError: %s", s);
            return NULL;
          }
        return nn_value_ref (v);
      }
    default:
      nn_ops_fail (error, "'%s' object is not subscriptable",
                   nn_value_kind_name (nn_value_kind (obj)));
      return NULL;
    }
}

static NnValue *
select_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  guint dim;
  gint64 index = nn_args_int (args, 2);
  if (in->shape.ndim == 0)
    {
      nn_ops_shape_fail (error, "select() cannot be applied to a 0-dim tensor.");
      return NULL;
    }
  if (!nn_ops_dim (nn_args_int (args, 1), in->shape.ndim, &dim, error))
    return NULL;
  if (index < -in->shape.dims[dim] || index >= in->shape.dims[dim])
    {
      g_autofree char *s = nn_shape_to_string (&in->shape);
      nn_ops_shape_fail (error, "select(): index %" G_GINT64_FORMAT " out of "
                         "range for tensor of size %s at dimension %u", index,
                         s, dim);
      return NULL;
    }
  if (index < 0)
    index += in->shape.dims[dim];
  return nn_ops_take (nn_ops_select (in, dim, index, error));
}

static NnValue *
narrow_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  guint dim;
  gint64 start, len = nn_args_int (args, 3);
  if (!nn_ops_int_value (nn_args_get (args, 2), &start))
    {
      nn_ops_fail (error, "narrow(): start must be an int or a 0-dim integer "
                   "tensor");
      return NULL;
    }
  if (in->shape.ndim == 0)
    {
      nn_ops_shape_fail (error, "narrow() cannot be applied to a 0-dim tensor.");
      return NULL;
    }
  if (!nn_ops_dim (nn_args_int (args, 1), in->shape.ndim, &dim, error))
    return NULL;
  gint64 size = in->shape.dims[dim];
  if (start < -size || start > size)
    {
      nn_ops_shape_fail (error, "start out of range (expected to be in range "
                         "of [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "], but "
                         "got %" G_GINT64_FORMAT ")", -size, size, start);
      return NULL;
    }
  if (start < 0)
    start += size;
  if (len < 0 || start > size - len)
    {
      nn_ops_shape_fail (error, "start (%" G_GINT64_FORMAT ") + length (%"
                         G_GINT64_FORMAT ") exceeds dimension size (%"
                         G_GINT64_FORMAT ").", start, len, size);
      return NULL;
    }
  return nn_ops_take (nn_ops_narrow (in, dim, start, len, error));
}

static NnValue *
index_select_fn (NnModule *self, NnCall *call, const NnArgs *args,
                 GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0), *idx = nn_args_tensor (args, 2);
  guint dim;
  if (idx->shape.ndim > 1)
    {
      nn_ops_shape_fail (error, "index_select(): Index is supposed to be a "
                         "vector");
      return NULL;
    }
  if (!nn_ops_dim (nn_args_int (args, 1), in->shape.ndim, &dim, error))
    return NULL;
  if (in->shape.ndim == 0)
    {
      NnShape one = { 1, { 1 } };
      g_autoptr (NnTensor) v = nn_tensor_is_meta (in)
        ? nn_tensor_new_meta (in->dtype, &one) : nn_tensor_reshape (in, &one);
      g_autoptr (NnTensor) r = take_along (v, 0, idx, error);
      if (!r)
        return NULL;
      return nn_ops_take (nn_tensor_is_meta (r)
                          ? nn_tensor_new_meta (r->dtype, &in->shape)
                          : nn_tensor_reshape (r, &in->shape));
    }
  return nn_ops_take (take_along (in, dim, idx, error));
}

static NnValue *
gather_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0), *idx = nn_args_tensor (args, 2);
  guint dim;
  if (!nn_ops_dim (nn_args_int (args, 1), in->shape.ndim, &dim, error))
    return NULL;
  if (MAX (idx->shape.ndim, 1) != MAX (in->shape.ndim, 1))
    {
      nn_ops_shape_fail (error, "Index tensor must have the same number of "
                         "dimensions as input tensor");
      return NULL;
    }
  for (guint d = 0; d < idx->shape.ndim && in->shape.ndim; d++)
    if (d != dim && idx->shape.dims[d] > in->shape.dims[d])
      {
        g_autofree char *a = nn_shape_to_string (&idx->shape);
        g_autofree char *b = nn_shape_to_string (&in->shape);
        nn_ops_shape_fail (error, "Size does not match at dimension %u "
                           "expected index %s to be smaller than self %s apart "
                           "from dimension %u", d, a, b, dim);
        return NULL;
      }
  gboolean meta = nn_tensor_is_meta (in) || nn_tensor_is_meta (idx);
  NnTensor *out = nn_ops_new (meta, in->dtype, &idx->shape, error);
  if (!out || meta)
    return nn_ops_take (out);
  gint64 own[NN_MAX_DIMS], n = nn_tensor_numel (idx);
  gint64 size = in->shape.ndim ? in->shape.dims[dim] : 1;
  gsize es = nn_dtype_size (in->dtype);
  nn_ops_strides (&in->shape, own);
  NnOpsIter it;
  nn_ops_iter_init (&it, &idx->shape);
  for (gint64 i = 0; i < n; i++, nn_ops_iter_next (&it))
    {
      gint64 j = nn_ops_get_i (idx, i);
      if (j < -size || j >= size)
        {
          nn_tensor_unref (out);
          nn_ops_shape_fail (error, "index %" G_GINT64_FORMAT " is out of "
                             "bounds for dimension %u with size %"
                             G_GINT64_FORMAT, j, dim, size);
          return NULL;
        }
      if (j < 0)
        j += size;
      gint64 src = 0;
      for (guint d = 0; d < in->shape.ndim; d++)
        src += (d == dim ? j : it.idx[d]) * own[d];
      memcpy ((guint8 *) out->data + i * es, (guint8 *) in->data + src * es, es);
    }
  return nn_value_take_tensor (out);
}

static const NnArgSpec getitem_args[] = {
  { "obj", NN_ARG_TENSOR | NN_ARG_SEQ | NN_ARG_DICT, NN_OPS_ALL, 0, NULL,
    "tensor, tuple, list or dict" },
  { "index", NN_ARG_ANY, NN_OPS_ALL, 0, NULL,
    "int, slice, None, ..., tuple of those, index tensor, or dict key" },
};
static const NnArgSpec select_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" },
  { "dim", NN_ARG_INT, 0, 0, NULL, "dim to remove" },
  { "index", NN_ARG_INT, 0, 0, NULL, "position along dim" },
};
static const NnArgSpec narrow_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" },
  { "dim", NN_ARG_INT, 0, 0, NULL, "dim to narrow" },
  { "start", NN_ARG_INT | NN_ARG_TENSOR, NN_DTYPES_INT, 0, NULL, "first index" },
  { "length", NN_ARG_INT, 0, 0, NULL, "number of elements kept" },
};
static const NnArgSpec index_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" },
  { "dim", NN_ARG_INT, 0, 0, NULL, "dim to index" },
  { "index", NN_ARG_TENSOR, INDEX_DTYPES, 0, NULL, "int64 or int32 indices" },
};

static const char *const getitem_aliases[] = {
  "operator.getitem", "Tensor.__getitem__", NULL };
static const char *const select_aliases[] = {
  "torch.select", "Tensor.select", NULL };
static const char *const narrow_aliases[] = {
  "torch.narrow", "Tensor.narrow", NULL };
static const char *const index_select_aliases[] = {
  "torch.index_select", "Tensor.index_select", NULL };
static const char *const gather_aliases[] = {
  "torch.gather", "Tensor.gather", NULL };

static NN_OPS_TYPE (getitem_type, "getitem", "obj[index], as Python",
                    getitem_args, getitem_aliases, getitem_fn);
static NN_OPS_TYPE (select_type, "select", "input[..., index, ...] at dim",
                    select_args, select_aliases, select_fn);
static NN_OPS_TYPE (narrow_type, "narrow", "input[start:start+length] at dim",
                    narrow_args, narrow_aliases, narrow_fn);
static NN_OPS_TYPE (index_select_type, "index_select",
                    "the entries of dim listed in index", index_args,
                    index_select_aliases, index_select_fn);
static NN_OPS_TYPE (gather_type, "gather",
                    "out[i][j] = input[index[i][j]][j] along dim", index_args,
                    gather_aliases, gather_fn);

const NnLayerType *const nn_ops_index_types[] = {
  &getitem_type, &select_type, &narrow_type, &index_select_type, &gather_type,
  NULL,
};
