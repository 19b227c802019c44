/* ops plugin: getitem on tensors (ints, slices, None, Ellipsis, tuples of
 * them, one bool mask or integer index tensor) and on tuples, lists and
 * dicts; select, narrow, index_select, gather.
 *
 * A bool mask's result size depends on the data, so shape inference
 * refuses it with a message rather than guess. */
#include "index.h"

#include <string.h>

#define INDEX_DTYPES (NN_DTYPE_BIT (NN_DTYPE_I64) | NN_DTYPE_BIT (NN_DTYPE_I32))

/* Python's slice.indices() for tuples and lists, negative steps too. */
static gboolean
seq_slice (const NnValue *sl, gint64 n, gint64 *start, gint64 *len,
           gint64 *step, GError **error)
{
  NnValue *a = nn_value_item (sl, 0), *b = nn_value_item (sl, 1),
          *c = nn_value_item (sl, 2);
  gint64 st = nn_value_is_none (c) ? 1 : nn_value_get_int (c);
  if (st == 0)
    return nn_ops_fail (error, "slice step cannot be zero");
  if (st > 0)
    return nn_ops_slice_bounds (sl, n, start, len, step, error);
  gint64 lo = nn_value_is_none (a) ? n - 1 : nn_value_get_int (a);
  gint64 hi = nn_value_is_none (b) ? -1 : nn_value_get_int (b);
  if (!nn_value_is_none (a) && lo < 0)
    lo += n;
  if (!nn_value_is_none (b) && hi < 0)
    hi += n;
  lo = CLAMP (lo, -1, n - 1);
  hi = CLAMP (hi, -1, n - 1);
  *start = lo;
  *step = st;
  *len = lo > hi ? (lo - hi - 1) / -st + 1 : 0;
  return TRUE;
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
      if (!seq_slice (idx, n, &start, &len, &step, error))
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
getitem_tensor (NnTensor *in, const NnValue *index, GError **error)
{
  g_autoptr (NnTensor) folded = NULL;
  g_autoptr (NnValue) idx = nn_ops_fold_tensor_indices (in, index, &folded, error);
  if (!idx)
    return NULL;
  if (folded)
    in = folded;
  NnOpsIndexPlan plan;
  if (!nn_ops_index_plan (in, idx, &plan, error))
    return NULL;
  g_autoptr (NnTensor) basic = nn_ops_gather (in, &plan.shape, plan.strides,
                                              plan.base, error);
  if (!basic || !plan.adv)
    return nn_ops_take (g_steal_pointer (&basic));
  if (plan.adv->dtype == NN_DTYPE_BOOL)
    return nn_ops_take (nn_ops_take_mask (basic, plan.adv_dim, plan.adv, error));
  return nn_ops_take (nn_ops_take_along (basic, plan.adv_dim, plan.adv, error));
}

/* Makes @v's tensors plain: a tensor, or the items of a tuple or list
 * (one level, as an index holds them). */
static gboolean
make_plain_shallow (const NnValue *v, GError **error)
{
  if (nn_value_kind (v) == NN_VALUE_TENSOR)
    return nn_tensor_make_plain (nn_value_get_tensor (v), error);
  if (nn_value_kind (v) != NN_VALUE_TUPLE && nn_value_kind (v) != NN_VALUE_LIST)
    return TRUE;
  for (guint i = 0; i < nn_value_n_items (v); i++)
    {
      const NnValue *item = nn_value_item (v, i);
      if (nn_value_kind (item) == NN_VALUE_TENSOR
          && !nn_tensor_make_plain (nn_value_get_tensor (item), error))
        return FALSE;
    }
  return TRUE;
}

/* Layout-aware (NN_LAYER_LAYOUT_AWARE): an item of a list, tuple or dict
 * is handed on as it is, so a oneDNN result in a list (DenseNet's
 * features) keeps its layout; only indexing into a tensor reads data,
 * and makes that tensor plain first. */
static NnValue *
getitem_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnValue *obj = nn_args_get (args, 0), *idx = nn_args_get (args, 1);
  switch (nn_value_kind (obj))
    {
    case NN_VALUE_TENSOR:
      {
        if (!make_plain_shallow (obj, error) || !make_plain_shallow (idx, error))
          return NULL;
        g_autoptr (NnValue) iv = nn_ops_index_value (idx, error);
        if (!iv)
          return NULL;
        return getitem_tensor (nn_value_get_tensor (obj), iv, error);
      }
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
      g_autoptr (NnTensor) r = nn_ops_take_along (v, 0, idx, error);
      if (!r)
        return NULL;
      return nn_ops_take (nn_tensor_is_meta (r)
                          ? nn_tensor_new_meta (r->dtype, &in->shape)
                          : nn_tensor_reshape (r, &in->shape));
    }
  return nn_ops_take (nn_ops_take_along (in, dim, idx, error));
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

/* F.one_hot(tensor, num_classes=-1): int64, a last dim of num_classes
 * with 1 at each value.  num_classes=-1 takes the largest value + 1, a
 * size that depends on the data, which shape inference refuses to guess,
 * as for bool masks. */
static NnValue *
one_hot_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  gint64 classes = nn_args_int (args, 1), n = nn_tensor_numel (in);
  gboolean meta = nn_tensor_is_meta (in);
  if (in->shape.ndim + 1 > NN_MAX_DIMS)
    {
      nn_ops_shape_fail (error, "one_hot of a %u-d tensor: the result would have "
                         "more than %d dims", in->shape.ndim, NN_MAX_DIMS);
      return NULL;
    }
  if (classes < -1)
    {
      nn_ops_fail (error, "num_classes should be -1 or non-negative, found %"
                   G_GINT64_FORMAT, classes);
      return NULL;
    }
  if (classes == -1)
    {
      if (meta)
        {
          nn_ops_fail (error, "one_hot with num_classes=-1 gives a shape that "
                       "depends on the values (the largest + 1); shape inference "
                       "cannot compute it: pass num_classes");
          return NULL;
        }
      if (n == 0)
        {
          nn_ops_fail (error, "Can not infer total number of classes from empty "
                       "tensor.");
          return NULL;
        }
      for (gint64 i = 0; i < n; i++)
        classes = MAX (classes, nn_ops_get_i (in, i) + 1);
    }
  NnShape shape = in->shape;
  shape.dims[shape.ndim++] = classes;
  NnTensor *out = nn_ops_new (meta, NN_DTYPE_I64, &shape, error);
  if (!out || meta)
    return nn_ops_take (out);
  gint64 *y = nn_tensor_i64 (out);
  for (gint64 i = 0; i < n; i++)
    {
      gint64 v = nn_ops_get_i (in, i);
      if (v < 0 || v >= classes)
        {
          nn_tensor_unref (out);
          nn_ops_fail (error, v < 0 ? "Class values must be non-negative."
                                    : "Class values must be smaller than num_classes.");
          return NULL;
        }
      y[i * classes + v] = 1;
    }
  return nn_value_take_tensor (out);
}

/* scatter(input, dim, index, src|value) and scatter_add(input, dim, index,
 * src): a copy of @input where, for every position i of @index, the entry
 * at index[i] along @dim takes src[i] (or @value), or has it added.  Mixture
 * of experts' dense gates, one-hot targets, label smoothing. */
static NnValue *
scatter_run (const NnArgs *args, gboolean add, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0), *idx = nn_args_tensor (args, 2);
  NnValue *srcv = nn_args_get (args, 3);
  NnTensor *src = nn_value_kind (srcv) == NN_VALUE_TENSOR ? nn_value_get_tensor (srcv) : NULL;
  const char *op = add ? "scatter_add" : "scatter";
  guint dim;
  if (!nn_ops_dim (nn_args_int (args, 1), MAX (in->shape.ndim, 1), &dim, error))
    return NULL;
  if (!add && nn_args_n (args) > 4 && !nn_value_is_none (nn_args_get (args, 4)))
    {
      nn_ops_fail (error, "scatter(): the reduce argument is not supported");
      return NULL;
    }
  if (src && src->dtype != in->dtype)
    {
      nn_ops_fail (error, "%s(): Expected self.dtype to be equal to src.dtype", op);
      return NULL;
    }
  guint nd = MAX (in->shape.ndim, 1);
  if (MAX (idx->shape.ndim, 1) != nd || (src && MAX (src->shape.ndim, 1) != nd))
    {
      nn_ops_shape_fail (error, "Index tensor must have the same number of dimensions "
                         "as %s tensor", src && MAX (src->shape.ndim, 1) != nd ? "src"
                                                                             : "self");
      return NULL;
    }
  for (guint d = 0; d < idx->shape.ndim; d++)
    {
      gint64 isz = idx->shape.dims[d];
      if ((d != dim && in->shape.ndim && isz > in->shape.dims[d])
          || (src && src->shape.ndim && isz > src->shape.dims[d]))
        {
          g_autofree char *a = nn_shape_to_string (&idx->shape);
          g_autofree char *b = nn_shape_to_string (&in->shape);
          g_autofree char *c = src ? nn_shape_to_string (&src->shape) : g_strdup ("");
          nn_ops_shape_fail (error, "Expected index %s to be smaller than self %s apart "
                             "from dimension %u%s%s", a, b, dim,
                             src ? " and to be smaller size than src " : "", c);
          return NULL;
        }
    }
  gboolean meta = nn_tensor_is_meta (in) || nn_tensor_is_meta (idx)
                  || (src && nn_tensor_is_meta (src));
  NnTensor *out = meta ? nn_tensor_new_meta (in->dtype, &in->shape) : nn_tensor_copy (in);
  if (!out || meta)
    return nn_ops_take (out);
  gint64 own[NN_MAX_DIMS], src_st[NN_MAX_DIMS], n = nn_tensor_numel (idx);
  gint64 size = in->shape.ndim ? in->shape.dims[dim] : 1;
  double value = src ? 0 : nn_value_get_float (srcv);
  nn_ops_strides (&in->shape, own);
  if (src)
    nn_ops_strides (&src->shape, src_st);
  NnOpsIter it;
  nn_ops_iter_init (&it, &idx->shape);
  for (gint64 i = 0; i < n; i++, nn_ops_iter_next (&it))
    {
      gint64 j = nn_ops_get_i (idx, i);
      if (j < 0 || j >= size)
        {
          nn_tensor_unref (out);
          nn_ops_shape_fail (error, "index %" G_GINT64_FORMAT " is out of bounds for "
                             "dimension %u with size %" G_GINT64_FORMAT, j, dim, size);
          return NULL;
        }
      gint64 at = 0, from = 0;
      for (guint d = 0; d < in->shape.ndim; d++)
        {
          at += (d == dim ? j : it.idx[d]) * own[d];
          if (src)
            from += it.idx[d] * src_st[d];
        }
      gboolean ints = !nn_dtype_is_float (in->dtype);
      if (ints && src)
        {
          gint64 v = nn_ops_get_i (src, from);
          nn_ops_set_i (out, at, add ? nn_ops_get_i (out, at) + v : v);
        }
      else
        {
          double v = src ? nn_ops_get_f (src, from) : value;
          nn_ops_set_f (out, at, add ? nn_ops_get_f (out, at) + v : v);
        }
    }
  return nn_value_take_tensor (out);
}

static NnValue *
scatter_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return scatter_run (args, FALSE, error);
}

static NnValue *
scatter_add_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return scatter_run (args, TRUE, error);
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

static const NnArgSpec one_hot_args[] = {
  { "tensor", NN_ARG_TENSOR, NN_DTYPE_BIT (NN_DTYPE_I64), 0, NULL, "int64 class values" },
  { "num_classes", NN_ARG_INT, 0, NN_ARG_OPTIONAL, "-1",
    "size of the new last dim; -1: the largest value + 1" },
};

static const NnArgSpec scatter_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" },
  { "dim", NN_ARG_INT, 0, 0, NULL, "dim the index values address" },
  { "index", NN_ARG_TENSOR, INDEX_DTYPES, 0, NULL, "int64 or int32 positions" },
  { "src", NN_ARG_TENSOR | NN_ARG_SCALAR, NN_OPS_ALL, 0, NULL,
    "tensor of values (input's dtype), or one number (value=)" },
  { "reduce", NN_ARG_STRING | NN_ARG_NONE, 0, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY, "null",
    "not supported: must be None" },
};
static const NnArgSpec scatter_add_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" },
  { "dim", NN_ARG_INT, 0, 0, NULL, "dim the index values address" },
  { "index", NN_ARG_TENSOR, INDEX_DTYPES, 0, NULL, "int64 or int32 positions" },
  { "src", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "values to add (input's dtype)" },
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

NN_OPS_MOVE_BACKWARD (getitem_type, getitem_args, getitem_fn)
static NN_OPS_FLAGS_TYPE (getitem_type, "getitem", "obj[index], as Python",
                          NN_LAYER_OP | NN_LAYER_ALIASES | NN_LAYER_LAYOUT_AWARE,
                          getitem_args, getitem_aliases, getitem_fn,
                          getitem_type_backward);
NN_OPS_MOVE_VIEW_TYPE (select_type, "select", "input[..., index, ...] at dim",
                    select_args, select_aliases, select_fn);
NN_OPS_MOVE_VIEW_TYPE (narrow_type, "narrow", "input[start:start+length] at dim",
                    narrow_args, narrow_aliases, narrow_fn);
NN_OPS_MOVE_TYPE (index_select_type, "index_select",
                    "the entries of dim listed in index", index_args,
                    index_select_aliases, index_select_fn);
NN_OPS_MOVE_TYPE (gather_type, "gather",
                    "out[i][j] = input[index[i][j]][j] along dim", index_args,
                    gather_aliases, gather_fn);

static const char *const scatter_aliases[] = {
  "torch.scatter", "Tensor.scatter", "Tensor.scatter_", NULL };
static const char *const scatter_add_aliases[] = {
  "torch.scatter_add", "Tensor.scatter_add", "Tensor.scatter_add_", NULL };
static NN_OPS_TYPE (scatter_type, "scatter", "a copy with src written at index along dim",
                    scatter_args, scatter_aliases, scatter_fn);
static NN_OPS_TYPE (scatter_add_type, "scatter_add", "a copy with src added at index along dim",
                    scatter_add_args, scatter_add_aliases, scatter_add_fn);
static const char *const one_hot_aliases[] = {
  "torch.nn.functional.one_hot", NULL };
static NN_OPS_TYPE (one_hot_type, "one_hot", "int64 one-hot encoding of class values",
                    one_hot_args, one_hot_aliases, one_hot_fn);

const NnLayerType *const nn_ops_index_types[] = {
  &getitem_type, &select_type, &narrow_type, &index_select_type, &gather_type,
  &one_hot_type, &scatter_type, &scatter_add_type, NULL,
};
