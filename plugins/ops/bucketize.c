/* ops plugin: bucketize and searchsorted, the index at which each value
 * would be inserted into sorted boundaries (binning numeric features,
 * NeRF's hierarchical sampling).  NaN values go past the end, as in
 * PyTorch. */
#include "ops.h"

#include <math.h>

/* The insertion point of @v in @b[0..m): the first b[i] >= v, or with
 * @right the first b[i] > v. */
static gint64
insertion_point (const NnTensor *b, gint64 base, gint64 m, double v, gboolean right)
{
  if (isnan (v))
    return m;
  gint64 lo = 0, hi = m;
  while (lo < hi)
    {
      gint64 mid = lo + (hi - lo) / 2;
      double x = nn_ops_get_f (b, base + mid);
      if (right ? x <= v : x < v)
        lo = mid + 1;
      else
        hi = mid;
    }
  return lo;
}

/* @values searched in @seq: a 1-d seq for every value, or one row of seq
 * per row of values when their leading dims match. */
static NnValue *
search (const char *op, NnTensor *seq, NnTensor *values, gboolean right, gboolean i32,
        GError **error)
{
  guint sn = seq->shape.ndim, vn = values->shape.ndim;
  gboolean rows = sn > 1;
  if (sn == 0)
    {
      nn_ops_shape_fail (error, "%s(): boundaries tensor should have at least 1 dimension", op);
      return NULL;
    }
  if (rows)
    {
      gboolean match = vn == sn;
      for (guint d = 0; match && d + 1 < sn; d++)
        match = seq->shape.dims[d] == values->shape.dims[d];
      if (!match)
        {
          g_autofree char *a = nn_shape_to_string (&seq->shape);
          g_autofree char *b = nn_shape_to_string (&values->shape);
          nn_ops_shape_fail (error, "torch.searchsorted(): boundaries tensor should be 1 "
                             "dimension or the first N-1 dimensions of boundaries tensor and "
                             "input value tensor must match, but we got boundaries tensor %s "
                             "and input value tensor %s", a, b);
          return NULL;
        }
    }
  gboolean meta = nn_tensor_is_meta (seq) || nn_tensor_is_meta (values);
  NnTensor *out = nn_ops_new (meta, i32 ? NN_DTYPE_I32 : NN_DTYPE_I64, &values->shape, error);
  if (!out || meta)
    return nn_ops_take (out);
  gint64 m = seq->shape.dims[sn - 1], n = nn_tensor_numel (values);
  gint64 k = vn ? values->shape.dims[vn - 1] : 1;
  for (gint64 e = 0; e < n; e++)
    {
      gint64 base = rows && k ? (e / k) * m : 0;
      nn_ops_set_i (out, e, insertion_point (seq, base, m, nn_ops_get_f (values, e), right));
    }
  return nn_value_take_tensor (out);
}

/* A value argument: a tensor, or a Python number as a 0-d tensor. */
static NnTensor *
values_arg (const NnValue *v)
{
  if (nn_value_kind (v) == NN_VALUE_TENSOR)
    return nn_tensor_ref (nn_value_get_tensor (v));
  return nn_ops_scalar_tensor (v, NN_DTYPE_F64);
}

static NnValue *
bucketize_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *b = nn_args_tensor (args, 1);
  if (b->shape.ndim != 1)
    {
      nn_ops_shape_fail (error, "boundaries tensor must be 1 dimension, but got dim(%u)",
                         b->shape.ndim);
      return NULL;
    }
  g_autoptr (NnTensor) v = values_arg (nn_args_get (args, 0));
  if (!v)
    {
      nn_ops_fail (error, "bucketize(): out of memory");
      return NULL;
    }
  return search ("bucketize", b, v, nn_args_bool (args, 3), nn_args_bool (args, 2), error);
}

static NnValue *
searchsorted_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  gboolean right = nn_args_bool (args, 3);
  NnValue *side = nn_args_get (args, 4);
  if (!nn_value_is_none (side))
    {
      const char *s = nn_value_get_string (side);
      if (g_strcmp0 (s, "left") != 0 && g_strcmp0 (s, "right") != 0)
        {
          nn_ops_fail (error, "torch.searchsorted(): side can only be 'left' or 'right' but "
                       "got %s", s);
          return NULL;
        }
      if (right && g_strcmp0 (s, "left") == 0)
        {
          nn_ops_fail (error, "torch.searchsorted(): side and right can't be set to "
                       "opposites, got side of left while right was True");
          return NULL;
        }
      right = g_strcmp0 (s, "right") == 0;
    }
  if (!nn_value_is_none (nn_args_get (args, 5)))
    {
      nn_ops_fail (error, "torch.searchsorted(): sorter is not supported by nnkit; sort "
                   "the sequence first (torch.sort) and pass it sorted");
      return NULL;
    }
  g_autoptr (NnTensor) v = values_arg (nn_args_get (args, 1));
  if (!v)
    {
      nn_ops_fail (error, "searchsorted(): out of memory");
      return NULL;
    }
  return search ("searchsorted", nn_args_tensor (args, 0), v, right, nn_args_bool (args, 2),
                 error);
}

#define SEARCH_KWARGS                                                                   \
  { "out_int32", NN_ARG_BOOL, 0, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY, "false",           \
    "int32 result instead of int64" },                                                  \
  { "right", NN_ARG_BOOL, 0, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY, "false",               \
    "the first boundary > value instead of >= value" }

static const NnArgSpec bucketize_args[] = {
  { "input", NN_ARG_TENSOR | NN_ARG_INT | NN_ARG_FLOAT, NN_OPS_ALL, 0, NULL,
    "values (a tensor or a number)" },
  { "boundaries", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "1-d increasing boundaries" },
  SEARCH_KWARGS,
};
static const NnArgSpec searchsorted_args[] = {
  { "sorted_sequence", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL,
    "1-d, or rows matching the values' leading dims, increasing" },
  { "input", NN_ARG_TENSOR | NN_ARG_INT | NN_ARG_FLOAT, NN_OPS_ALL, 0, NULL,
    "values (a tensor or a number)" },
  SEARCH_KWARGS,
  { "side", NN_ARG_STRING | NN_ARG_NONE, 0, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY, "null",
    "'left' or 'right' (as right=True)" },
  { "sorter", NN_ARG_TENSOR | NN_ARG_NONE, NN_OPS_ALL, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY,
    "null", "not supported: must be None" },
};
static const char *const bucketize_aliases[] = { "torch.bucketize", NULL };
static const char *const searchsorted_aliases[] = { "torch.searchsorted", NULL };
static NN_OPS_TYPE (bucketize_type, "bucketize", "the bucket of each value among boundaries",
                    bucketize_args, bucketize_aliases, bucketize_fn);
static NN_OPS_TYPE (searchsorted_type, "searchsorted",
                    "insertion points of values into a sorted sequence", searchsorted_args,
                    searchsorted_aliases, searchsorted_fn);

const NnLayerType *const nn_ops_bucketize_types[] = {
  &bucketize_type, &searchsorted_type, NULL,
};
