/* ops plugin: index_add(input, dim, index, source, *, alpha=1), a copy of
 * input where row index[i] along dim has alpha * source's row i added:
 * message passing over an edge list (graph networks' aggregation). */
#include "ops.h"

/* PyTorch's checks, in its order and words where it has them. */
static gboolean
index_add_check (const NnTensor *in, guint dim, const NnTensor *idx,
                 const NnTensor *src, GError **error)
{
  if (idx->shape.ndim > 1)
    {
      g_autofree char *s = nn_shape_to_string (&idx->shape);
      return nn_ops_shape_fail (error, "index_add_(): Index is supposed to be a vector, "
                                "but got dim: %u with type: %s and size: %s",
                                idx->shape.ndim, nn_ops_dtype_short (idx->dtype), s);
    }
  if (src->dtype != in->dtype)
    return nn_ops_fail (error, "index_add_(): self (%s) and source (%s) must have the "
                        "same scalar type", nn_ops_dtype_short (in->dtype),
                        nn_ops_dtype_short (src->dtype));
  gint64 n = nn_tensor_numel (idx);
  gint64 src_n = src->shape.ndim ? src->shape.dims[MIN (dim, src->shape.ndim - 1)] : 1;
  if (MAX (src->shape.ndim, 1) != MAX (in->shape.ndim, 1) || src_n != n)
    return nn_ops_shape_fail (error, "index_add_(): Number of indices (%" G_GINT64_FORMAT
                              ") should be equal to source.size(dim): (%" G_GINT64_FORMAT
                              "), for dim: %u (source %u-d, self %u-d)", n, src_n, dim,
                              src->shape.ndim, in->shape.ndim);
  for (guint d = 0; d < in->shape.ndim; d++)
    if (d != dim && src->shape.dims[d] != in->shape.dims[d])
      {
        g_autofree char *a = nn_shape_to_string (&src->shape);
        g_autofree char *b = nn_shape_to_string (&in->shape);
        return nn_ops_shape_fail (error, "index_add_(): source %s must match self %s "
                                  "apart from dimension %u", a, b, dim);
      }
  return TRUE;
}

static NnValue *
index_add_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0), *idx = nn_args_tensor (args, 2),
           *src = nn_args_tensor (args, 3);
  NnValue *alphav = nn_args_get (args, 4);
  guint dim;
  if (!nn_ops_dim (nn_args_int (args, 1), in->shape.ndim, &dim, error)
      || !index_add_check (in, dim, idx, src, error))
    return NULL;
  gboolean meta = nn_tensor_is_meta (in) || nn_tensor_is_meta (idx)
                  || nn_tensor_is_meta (src);
  NnTensor *out = meta ? nn_tensor_new_meta (in->dtype, &in->shape) : nn_tensor_copy (in);
  if (!out || meta)
    return nn_ops_take (out);
  /* [outer, size, inner] for input, [outer, n, inner] for source. */
  gint64 n = nn_tensor_numel (idx), outer, size, inner;
  nn_ops_around_dim (&in->shape, dim, &outer, &size, &inner);
  gboolean ints = !nn_dtype_is_float (in->dtype);
  double alpha = nn_value_kind (alphav) == NN_VALUE_FLOAT ? nn_value_get_float (alphav)
                                                          : (double) nn_value_get_int (alphav);
  /* PyTorch truncates a float alpha for an integer tensor. */
  gint64 ialpha = (gint64) alpha;
  for (gint64 i = 0; i < n; i++)
    {
      gint64 j = nn_ops_get_i (idx, i);
      if (j < 0 || j >= size)
        {
          nn_tensor_unref (out);
          nn_ops_shape_fail (error, "index out of range in self (index %" G_GINT64_FORMAT
                             ", dimension %u of size %" G_GINT64_FORMAT ")", j, dim, size);
          return NULL;
        }
      for (gint64 o = 0; o < outer; o++)
        for (gint64 k = 0; k < inner; k++)
          {
            gint64 at = (o * size + j) * inner + k, from = (o * n + i) * inner + k;
            if (ints)
              nn_ops_set_i (out, at, nn_ops_get_i (out, at) + ialpha * nn_ops_get_i (src, from));
            else
              nn_ops_set_f (out, at, nn_ops_get_f (out, at) + alpha * nn_ops_get_f (src, from));
          }
    }
  return nn_value_take_tensor (out);
}

static const NnArgSpec index_add_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" },
  { "dim", NN_ARG_INT, 0, 0, NULL, "dim the indices address" },
  { "index", NN_ARG_TENSOR, NN_DTYPE_BIT (NN_DTYPE_I64) | NN_DTYPE_BIT (NN_DTYPE_I32), 0,
    NULL, "int64 or int32 vector of rows" },
  { "source", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "rows to add (input's dtype)" },
  { "alpha", NN_ARG_INT | NN_ARG_FLOAT | NN_ARG_BOOL, 0, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY,
    "1", "scale of source" },
};
static const char *const index_add_aliases[] = {
  "torch.index_add", "Tensor.index_add", "Tensor.index_add_", NULL };
static NN_OPS_TYPE (index_add_type, "index_add", "a copy with source's rows added at index",
                    index_add_args, index_add_aliases, index_add_fn);

const NnLayerType *const nn_ops_index_add_types[] = { &index_add_type, NULL };
