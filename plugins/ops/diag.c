/* ops plugin: diag (a vector to a diagonal matrix, a matrix to its
 * diagonal) and diag_embed (the last dim onto the diagonal of two new
 * dims), with an offset from the main diagonal, as PyTorch's. */
#include "ops.h"

#include <string.h>

static void
copy_elem (NnTensor *dst, gint64 at, const NnTensor *src, gint64 from)
{
  gsize es = nn_dtype_size (src->dtype);
  memcpy ((guint8 *) dst->data + at * es, (const guint8 *) src->data + from * es, es);
}

static NnValue *
diag_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  gint64 k = nn_args_int (args, 1);
  if (in->shape.ndim != 1 && in->shape.ndim != 2)
    {
      nn_ops_shape_fail (error, "matrix or a vector expected (diag() takes 1-d or 2-d "
                         "tensors, found %u-d)", in->shape.ndim);
      return NULL;
    }
  gboolean meta = nn_tensor_is_meta (in);
  if (in->shape.ndim == 1)
    {
      gint64 n = in->shape.dims[0], m = n + (k < 0 ? -k : k);
      NnShape os = { 2, { m, m } };
      NnTensor *out = nn_ops_new (meta, in->dtype, &os, error);
      if (!out || meta)
        return nn_ops_take (out);
      for (gint64 i = 0; i < n; i++)
        copy_elem (out, k >= 0 ? i * m + i + k : (i - k) * m + i, in, i);
      return nn_value_take_tensor (out);
    }
  gint64 r = in->shape.dims[0], c = in->shape.dims[1];
  gint64 len = k >= 0 ? MAX (MIN (r, c - k), 0) : MAX (MIN (r + k, c), 0);
  NnShape os = { 1, { len } };
  NnTensor *out = nn_ops_new (meta, in->dtype, &os, error);
  if (!out || meta)
    return nn_ops_take (out);
  for (gint64 i = 0; i < len; i++)
    copy_elem (out, i, in, k >= 0 ? i * c + i + k : (i - k) * c + i);
  return nn_value_take_tensor (out);
}

static NnValue *
diag_embed_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  gint64 off = nn_args_int (args, 1);
  guint nd = in->shape.ndim + 1, d1, d2;
  if (in->shape.ndim == 0 || nd > NN_MAX_DIMS)
    {
      nn_ops_shape_fail (error, "diag_embed(): expected a tensor of 1 to %d dims, found %u",
                         NN_MAX_DIMS - 1, in->shape.ndim);
      return NULL;
    }
  if (!nn_ops_dim (nn_args_int (args, 2), nd, &d1, error)
      || !nn_ops_dim (nn_args_int (args, 3), nd, &d2, error))
    return NULL;
  if (d1 == d2)
    {
      nn_ops_shape_fail (error, "diagonal dimensions cannot be identical %" G_GINT64_FORMAT
                         ", %" G_GINT64_FORMAT, nn_args_int (args, 2), nn_args_int (args, 3));
      return NULL;
    }
  gint64 last = in->shape.dims[in->shape.ndim - 1];
  gint64 m = last + (off < 0 ? -off : off);
  /* The input's leading dims fill the output's other dims in order. */
  NnShape os = { nd };
  for (guint d = 0, j = 0; d < nd; d++)
    os.dims[d] = d == d1 || d == d2 ? m : in->shape.dims[j++];
  gboolean meta = nn_tensor_is_meta (in);
  NnTensor *out = nn_ops_new (meta, in->dtype, &os, error);
  if (!out || meta)
    return nn_ops_take (out);
  NnOpsIter it;
  nn_ops_iter_init (&it, &os);
  gint64 total = nn_shape_numel (&os);
  for (gint64 e = 0; e < total; e++, nn_ops_iter_next (&it))
    {
      gint64 a = it.idx[d1], b = it.idx[d2];
      if (b - a != off)
        continue;
      gint64 from = 0;
      for (guint d = 0; d < nd; d++)
        if (d != d1 && d != d2)
          from = from * os.dims[d] + it.idx[d];
      from = from * last + (off >= 0 ? a : b);
      copy_elem (out, e, in, from);
    }
  return nn_value_take_tensor (out);
}

static const NnArgSpec diag_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "1-d or 2-d tensor" },
  { "diagonal", NN_ARG_INT, 0, NN_ARG_OPTIONAL, "0", "offset: > 0 above the main diagonal" },
};
static const NnArgSpec diag_embed_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor whose last dim is the diagonal" },
  { "offset", NN_ARG_INT, 0, NN_ARG_OPTIONAL, "0", "offset: > 0 above the main diagonal" },
  { "dim1", NN_ARG_INT, 0, NN_ARG_OPTIONAL, "-2", "first dim of the matrices" },
  { "dim2", NN_ARG_INT, 0, NN_ARG_OPTIONAL, "-1", "second dim of the matrices" },
};
static const char *const diag_aliases[] = { "torch.diag", "Tensor.diag", NULL };
static const char *const diag_embed_aliases[] = {
  "torch.diag_embed", "Tensor.diag_embed", NULL };
static NN_OPS_TYPE (diag_type, "diag", "a diagonal matrix from a vector, or a matrix's diagonal",
                    diag_args, diag_aliases, diag_fn);
static NN_OPS_TYPE (diag_embed_type, "diag_embed", "the last dim on the diagonal of two new dims",
                    diag_embed_args, diag_embed_aliases, diag_embed_fn);

const NnLayerType *const nn_ops_diag_types[] = { &diag_type, &diag_embed_type, NULL };
