/* ops plugin: several integer tensor indices next to each other,
 * x[rows, cols] (CLIP's pooled token x[arange(b), ids.argmax(-1)], a
 * classifier's last real token).  Their dims are folded into one and the
 * indices into one linear index, which the one-tensor path then takes. */
#include "index.h"

static gboolean
is_int_tensor (const NnValue *v)
{
  return nn_value_kind (v) == NN_VALUE_TENSOR
         && !nn_dtype_is_float (nn_value_get_tensor (v)->dtype)
         && nn_value_get_tensor (v)->dtype != NN_DTYPE_BOOL;
}

/* Input dims consumed by index items before item @upto (an ellipsis
 * takes what the whole index leaves). */
static guint
dims_before (const NnTensor *in, const NnValue *idx, guint upto)
{
  guint used = 0, n = nn_value_n_items (idx);
  for (guint i = 0; i < n; i++)
    {
      NnValueKind k = nn_value_kind (nn_value_item (idx, i));
      if (k != NN_VALUE_NONE && k != NN_VALUE_ELLIPSIS)
        used++;
    }
  guint d = 0;
  for (guint i = 0; i < upto; i++)
    {
      NnValueKind k = nn_value_kind (nn_value_item (idx, i));
      if (k == NN_VALUE_ELLIPSIS)
        d += in->shape.ndim > used ? in->shape.ndim - used : 0;
      else if (k != NN_VALUE_NONE)
        d++;
    }
  return d;
}

/* The linear index of @k broadcast index tensors @t over input dims
 * [@d0, @d0 + k): (transfer full), meta when any input is. */
static NnTensor *
linear_index (const NnTensor *in, guint d0, NnTensor *const *t, guint k,
              GError **error)
{
  NnShape b = t[0]->shape;
  gboolean meta = nn_tensor_is_meta (t[0]);
  for (guint j = 1; j < k; j++)
    {
      NnShape next;
      if (!nn_ops_broadcast (&b, &t[j]->shape, &next, NULL))
        {
          GString *shapes = g_string_new (NULL);
          for (guint i = 0; i < k; i++)
            {
              g_autofree char *s = nn_shape_to_string (&t[i]->shape);
              g_string_append_printf (shapes, "%s%s", i ? ", " : "", s);
            }
          nn_ops_shape_fail (error, "shape mismatch: indexing tensors could not be "
                             "broadcast together with shapes %s", shapes->str);
          g_string_free (shapes, TRUE);
          return NULL;
        }
      b = next;
      meta = meta || nn_tensor_is_meta (t[j]);
    }
  NnTensor *lin = nn_ops_new (meta, NN_DTYPE_I64, &b, error);
  if (!lin || meta)
    return lin;
  gint64 st[NN_MAX_DIMS][NN_MAX_DIMS], n = nn_shape_numel (&b);
  for (guint j = 0; j < k; j++)
    nn_ops_bcast_strides (&t[j]->shape, &b, st[j]);
  NnOpsIter it;
  nn_ops_iter_init (&it, &b);
  for (gint64 e = 0; e < n; e++, nn_ops_iter_next (&it))
    {
      gint64 acc = 0;
      for (guint j = 0; j < k; j++)
        {
          gint64 off = 0;
          for (guint d = 0; d < b.ndim; d++)
            off += it.idx[d] * st[j][d];
          gint64 v = nn_ops_get_i (t[j], off);
          if (!nn_ops_check_index (&v, in->shape.dims[d0 + j], d0 + j, error))
            {
              nn_tensor_unref (lin);
              return NULL;
            }
          acc = acc * in->shape.dims[d0 + j] + v;
        }
      nn_tensor_i64 (lin)[e] = acc;
    }
  return lin;
}

NnValue *
nn_ops_fold_tensor_indices (NnTensor *in, const NnValue *idx, NnTensor **folded,
                            GError **error)
{
  *folded = NULL;
  if (nn_value_kind (idx) != NN_VALUE_TUPLE)
    return nn_value_ref ((NnValue *) idx);
  guint n = nn_value_n_items (idx), first = n, count = 0, last = 0;
  for (guint i = 0; i < n; i++)
    if (nn_value_kind (nn_value_item (idx, i)) == NN_VALUE_TENSOR)
      {
        first = MIN (first, i);
        last = i;
        count++;
      }
  if (count < 2)
    return nn_value_ref ((NnValue *) idx);
  NnTensor *t[NN_MAX_DIMS];
  for (guint i = first; i <= last; i++)
    if (!is_int_tensor (nn_value_item (idx, i)) || last - first + 1 > NN_MAX_DIMS)
      {
        /* PyTorch moves the result's indexed dims to the front when other
         * items separate the tensors; masks mix in other rules again. */
        nn_ops_fail (error, "indexing with several tensor indices is supported by "
                     "nnkit when they are integer tensors next to each other "
                     "(x[i, j], x[:, i, j]); found other items between them or a "
                     "bool mask among them");
        return NULL;
      }
    else
      t[i - first] = nn_value_get_tensor (nn_value_item (idx, i));
  guint k = last - first + 1, d0 = dims_before (in, idx, first);
  if (d0 + k > in->shape.ndim)
    {
      nn_ops_shape_fail (error, "too many indices for tensor of dimension %u",
                         in->shape.ndim);
      return NULL;
    }
  g_autoptr (NnTensor) lin = linear_index (in, d0, t, k, error);
  if (!lin)
    return NULL;
  NnShape fs = { 0 };
  for (guint d = 0; d < in->shape.ndim; d++)
    {
      if (d > d0 && d < d0 + k)
        fs.dims[fs.ndim - 1] *= in->shape.dims[d];
      else
        fs.dims[fs.ndim++] = in->shape.dims[d];
    }
  *folded = nn_tensor_reshape (in, &fs);
  if (!*folded)
    {
      nn_ops_fail (error, "indexing: cannot fold the indexed dims");
      return NULL;
    }
  NnValue *out = nn_value_new_tuple ();
  for (guint i = 0; i < n; i++)
    {
      if (i == first)
        nn_value_append (out, nn_value_new_tensor (lin));
      else if (i < first || i > last)
        nn_value_append (out, nn_value_ref (nn_value_item (idx, i)));
    }
  return out;
}
