/* ops plugin: meshgrid(*tensors, indexing='ij'), the coordinate grids of
 * 0-d and 1-d tensors (a detection head's cell offsets, positional
 * grids).  'xy' swaps the first two output dims, as NumPy does. */
#include "ops.h"


static NnValue *
meshgrid_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnValue *ts = nn_args_get (args, 0);
  /* meshgrid(a, b) and meshgrid([a, b]) are one call. */
  if (nn_value_n_items (ts) == 1 && nn_value_kind (nn_value_item (ts, 0)) != NN_VALUE_TENSOR)
    ts = nn_value_item (ts, 0);
  const char *indexing = nn_value_is_none (nn_args_get (args, 1))
                           ? "ij" : nn_value_get_string (nn_args_get (args, 1));
  guint n = nn_value_n_items (ts);
  gboolean xy = g_strcmp0 (indexing, "xy") == 0;
  if (!xy && g_strcmp0 (indexing, "ij") != 0)
    {
      nn_ops_fail (error, "torch.meshgrid: indexing must be one of \"xy\" or \"ij\", "
                   "but received: %s", indexing);
      return NULL;
    }
  if (n == 0 || n > NN_MAX_DIMS)
    {
      nn_ops_fail (error, "torch.meshgrid: expected 1 to %d tensors, got %u", NN_MAX_DIMS, n);
      return NULL;
    }
  NnShape grid = { n };
  NnTensor *in[NN_MAX_DIMS];
  gboolean meta = FALSE;
  for (guint i = 0; i < n; i++)
    {
      NnValue *v = nn_value_item (ts, i);
      if (nn_value_kind (v) != NN_VALUE_TENSOR)
        {
          nn_ops_fail (error, "torch.meshgrid: expected tensors, found %s at position %u",
                       nn_value_kind_name (nn_value_kind (v)), i);
          return NULL;
        }
      in[i] = nn_value_get_tensor (v);
      if (in[i]->shape.ndim > 1)
        {
          nn_ops_shape_fail (error, "torch.meshgrid: Expected 0D or 1D tensor in the "
                             "tensor list but got: %u-d (tensor %u)", in[i]->shape.ndim, i);
          return NULL;
        }
      if (in[i]->dtype != in[0]->dtype)
        {
          nn_ops_fail (error, "torch.meshgrid: expects all tensors to have the same dtype, "
                       "found %s and %s", nn_ops_dtype_short (in[0]->dtype),
                       nn_ops_dtype_short (in[i]->dtype));
          return NULL;
        }
      grid.dims[i] = nn_tensor_numel (in[i]);
      meta = meta || nn_tensor_is_meta (in[i]);
    }
  /* Output dim of input i: i, but 0 and 1 trade places for 'xy'. */
  NnShape os = grid;
  if (xy && n >= 2)
    {
      os.dims[0] = grid.dims[1];
      os.dims[1] = grid.dims[0];
    }
  gint64 st[NN_MAX_DIMS];
  nn_ops_strides (&os, st);
  NnValue *res = nn_value_new_tuple ();
  for (guint i = 0; i < n; i++)
    {
      NnTensor *t = nn_ops_new (meta, in[i]->dtype, &os, error);
      if (!t)
        {
          nn_value_unref (res);
          return NULL;
        }
      nn_value_append (res, nn_value_take_tensor (t));
      if (meta)
        continue;
      guint od = xy && n >= 2 && i < 2 ? 1 - i : i;
      gint64 total = nn_shape_numel (&os);
      for (gint64 e = 0; e < total; e++)
        {
          gint64 k = (e / st[od]) % os.dims[od];
          if (nn_dtype_is_float (t->dtype))
            nn_ops_set_f (t, e, nn_ops_get_f (in[i], k));
          else
            nn_ops_set_i (t, e, nn_ops_get_i (in[i], k));
        }
    }
  return res;
}

static const NnArgSpec meshgrid_args[] = {
  { "tensors", NN_ARG_TENSOR | NN_ARG_SEQ, NN_OPS_ALL, NN_ARG_VARIADIC, NULL,
    "0-d or 1-d tensors, or one list of them" },
  { "indexing", NN_ARG_STRING | NN_ARG_NONE, 0, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY, "null",
    "'ij' (None: PyTorch 1.13's default) or 'xy'" },
};
static const char *const meshgrid_aliases[] = { "torch.meshgrid", NULL };
static NN_OPS_TYPE (meshgrid_type, "meshgrid", "coordinate grids of 1-d tensors",
                    meshgrid_args, meshgrid_aliases, meshgrid_fn);

const NnLayerType *const nn_ops_meshgrid_types[] = { &meshgrid_type, NULL };
