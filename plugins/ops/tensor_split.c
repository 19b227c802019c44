/* torch.tensor_split: pieces along a dim, by a count of sections (the
 * first size % n one longer, as numpy's array_split) or before each of
 * the given indices (MViT splits its class token off with indices=(1,)).
 * The exporter passes the `sections=` and `indices=` spellings as
 * indices_or_sections. */
#include "ops.h"

/* PyTorch's slice bounds: a negative index counts from the end, then
 * both are clamped into [0, size] and an end before the start is empty. */
static void
slice_bounds (gint64 size, gint64 start, gint64 end, gint64 *at, gint64 *len)
{
  if (start < 0)
    start += size;
  if (end < 0)
    end += size;
  start = CLAMP (start, 0, size);
  end = CLAMP (end, start, size);
  *at = start;
  *len = end - start;
}

static gboolean
append_piece (NnValue *out, NnTensor *in, guint dim, gint64 at, gint64 len, GError **error)
{
  NnTensor *p = nn_ops_narrow (in, dim, at, len, error);
  if (!p)
    return FALSE;
  nn_value_append (out, nn_value_take_tensor (p));
  return TRUE;
}

static NnValue *
by_sections (NnTensor *in, guint dim, gint64 n, GError **error)
{
  if (n <= 0)
    {
      nn_ops_fail (error, "number of sections must be larger than 0, got %"
                   G_GINT64_FORMAT, n);
      return NULL;
    }
  gint64 size = in->shape.dims[dim], at = 0;
  g_autoptr (NnValue) out = nn_value_new_tuple ();
  for (gint64 i = 0; i < n; i++)
    {
      gint64 len = size / n + (i < size % n);
      if (!append_piece (out, in, dim, at, len, error))
        return NULL;
      at += len;
    }
  return g_steal_pointer (&out);
}

static NnValue *
by_indices (NnTensor *in, guint dim, NnValue *indices, GError **error)
{
  gint64 size = in->shape.dims[dim], start = 0;
  g_autoptr (NnValue) out = nn_value_new_tuple ();
  guint n = nn_value_n_items (indices);
  for (guint i = 0; i <= n; i++)
    {
      gint64 end = size, at, len;
      if (i < n && !nn_ops_int_value (nn_value_item (indices, i), &end))
        {
          g_autofree char *s = nn_value_to_string (indices);
          nn_ops_fail (error, "tensor_split expected indices to be ints, found %s", s);
          return NULL;
        }
      slice_bounds (size, start, end, &at, &len);
      if (!append_piece (out, in, dim, at, len, error))
        return NULL;
      start = end;
    }
  return g_steal_pointer (&out);
}

static NnValue *
tensor_split_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  NnValue *how = nn_args_get (args, 1);
  guint dim;
  if (in->shape.ndim == 0)
    {
      nn_ops_shape_fail (error, "tensor_split expected at least a 1-dimensional tensor, "
                         "but got a tensor with 0 dims");
      return NULL;
    }
  if (!nn_ops_dim (nn_args_int (args, 2), in->shape.ndim, &dim, error))
    return NULL;
  if (nn_value_kind (how) == NN_VALUE_INT)
    return by_sections (in, dim, nn_value_get_int (how), error);
  return by_indices (in, dim, how, error);
}

static const NnArgSpec tensor_split_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor to split" },
  { "indices_or_sections", NN_ARG_INT | NN_ARG_SEQ, 0, 0, NULL,
    "number of sections, or the indices to split before" },
  { "dim", NN_ARG_INT, 0, NN_ARG_OPTIONAL, "0", "dim to split" },
};
static const char *const tensor_split_aliases[] = {
  "torch.tensor_split", "Tensor.tensor_split", NULL };

NN_OPS_MOVE_VIEW_TYPE (tensor_split_type, "tensor_split",
                       "pieces by a count of sections or before indices",
                       tensor_split_args, tensor_split_aliases, tensor_split_fn);

const NnLayerType *const nn_ops_tensor_split_types[] = {
  &tensor_split_type, NULL,
};
