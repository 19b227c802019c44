/* ops plugin: sort, argsort and topk along one dim.  Sorting is stable
 * (GLib's merge sort), NaN counts as the largest value, as PyTorch's. */
#include "ops.h"

#include <math.h>
#include <string.h>

typedef struct {
  const NnTensor *t;
  gint64 base, stride;
  gboolean descending;
} Row;

static int
compare (gconstpointer pa, gconstpointer pb, gpointer data)
{
  const Row *r = data;
  gint64 a = *(const gint64 *) pa, b = *(const gint64 *) pb;
  int c;
  if (nn_dtype_is_float (r->t->dtype))
    {
      double x = nn_ops_get_f (r->t, r->base + a * r->stride);
      double y = nn_ops_get_f (r->t, r->base + b * r->stride);
      gboolean nx = isnan (x), ny = isnan (y);
      c = nx || ny ? (nx > ny) - (nx < ny) : (x > y) - (x < y);
    }
  else
    {
      gint64 x = nn_ops_get_i (r->t, r->base + a * r->stride);
      gint64 y = nn_ops_get_i (r->t, r->base + b * r->stride);
      c = (x > y) - (x < y);
    }
  return r->descending ? -c : c;
}

/* Sorts every row of @in along @dim and keeps the first @k of each:
 * @values (nullable) and @indices get shape in's with dim @dim = k. */
static gboolean
sorted_rows (NnTensor *in, guint dim, gint64 k, gboolean descending,
             NnTensor **values, NnTensor **indices, GError **error)
{
  NnShape shape = in->shape;
  guint nd = in->shape.ndim;
  if (nd)
    shape.dims[dim] = k;
  gboolean meta = nn_tensor_is_meta (in);
  if (values && !(*values = nn_ops_new (meta, in->dtype, &shape, error)))
    return FALSE;
  if (!(*indices = nn_ops_new (meta, NN_DTYPE_I64, &shape, error)))
    return FALSE;
  if (meta)
    return TRUE;
  gint64 size = nd ? in->shape.dims[dim] : 1, outer = 1, inner = 1;
  for (guint i = 0; i < dim && nd; i++)
    outer *= in->shape.dims[i];
  for (guint i = dim + 1; i < nd; i++)
    inner *= in->shape.dims[i];
  gsize es = nn_dtype_size (in->dtype);
  g_autofree gint64 *order = g_new (gint64, MAX (size, 1));
  for (gint64 o = 0; o < outer; o++)
    for (gint64 j = 0; j < inner; j++)
      {
        Row r = { in, o * size * inner + j, inner, descending };
        for (gint64 i = 0; i < size; i++)
          order[i] = i;
        g_qsort_with_data (order, (gint) size, sizeof (gint64), compare, &r);
        for (gint64 i = 0; i < k; i++)
          {
            gint64 dst = o * k * inner + i * inner + j;
            nn_tensor_i64 (*indices)[dst] = order[i];
            if (values)
              memcpy ((guint8 *) (*values)->data + dst * es,
                      (guint8 *) in->data + (r.base + order[i] * inner) * es,
                      es);
          }
      }
  return TRUE;
}

static NnValue *
pair (NnTensor *values, NnTensor *indices)
{
  NnValue *t = nn_value_new_tuple ();
  nn_value_append (t, nn_value_take_tensor (values));
  nn_value_append (t, nn_value_take_tensor (indices));
  return t;
}

static NnValue *
sort_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  guint dim;
  if (!nn_ops_dim (nn_args_int (args, 1), in->shape.ndim, &dim, error))
    return NULL;
  NnTensor *v = NULL, *i = NULL;
  gint64 size = in->shape.ndim ? in->shape.dims[dim] : 1;
  if (!sorted_rows (in, dim, size, nn_args_bool (args, 2), &v, &i, error))
    {
      g_clear_pointer (&v, nn_tensor_unref);
      g_clear_pointer (&i, nn_tensor_unref);
      return NULL;
    }
  return pair (v, i);
}

static NnValue *
argsort_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  guint dim;
  if (!nn_ops_dim (nn_args_int (args, 1), in->shape.ndim, &dim, error))
    return NULL;
  NnTensor *i = NULL;
  gint64 size = in->shape.ndim ? in->shape.dims[dim] : 1;
  if (!sorted_rows (in, dim, size, nn_args_bool (args, 2), NULL, &i, error))
    {
      g_clear_pointer (&i, nn_tensor_unref);
      return NULL;
    }
  return nn_value_take_tensor (i);
}

static NnValue *
topk_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  gint64 k = nn_args_int (args, 1);
  guint dim;
  if (!nn_ops_dim (nn_args_int (args, 2), in->shape.ndim, &dim, error))
    return NULL;
  gint64 size = in->shape.ndim ? in->shape.dims[dim] : 1;
  if (k < 0 || k > size)
    {
      nn_ops_shape_fail (error, "selected index k out of range");
      return NULL;
    }
  NnTensor *v = NULL, *i = NULL;
  /* Sorted or not, the k extremes come in order: PyTorch leaves the
   * unsorted order unspecified. */
  if (!sorted_rows (in, dim, k, nn_args_bool (args, 3), &v, &i, error))
    {
      g_clear_pointer (&v, nn_tensor_unref);
      g_clear_pointer (&i, nn_tensor_unref);
      return NULL;
    }
  return pair (v, i);
}

#define T_IN { "input", NN_ARG_TENSOR, NN_DTYPES_FLOAT | NN_DTYPES_INT, 0, NULL, \
               "tensor" }

static const NnArgSpec sort_args[] = {
  T_IN,
  { "dim", NN_ARG_INT, 0, NN_ARG_OPTIONAL, "-1", "dim to sort along" },
  { "descending", NN_ARG_BOOL, 0, NN_ARG_OPTIONAL, "false", "largest first" },
  { "stable", NN_ARG_BOOL | NN_ARG_NONE, 0, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY,
    "false", "ignored: nnkit's sort is always stable" },
};
static const NnArgSpec argsort_args[] = {
  T_IN,
  { "dim", NN_ARG_INT, 0, NN_ARG_OPTIONAL, "-1", "dim to sort along" },
  { "descending", NN_ARG_BOOL, 0, NN_ARG_OPTIONAL, "false", "largest first" },
};
static const NnArgSpec topk_args[] = {
  T_IN,
  { "k", NN_ARG_INT, 0, 0, NULL, "how many" },
  { "dim", NN_ARG_INT, 0, NN_ARG_OPTIONAL, "-1", "dim to search" },
  { "largest", NN_ARG_BOOL, 0, NN_ARG_OPTIONAL, "true",
    "the largest (else the smallest)" },
  { "sorted", NN_ARG_BOOL, 0, NN_ARG_OPTIONAL, "true",
    "ignored: the result is always sorted" },
};
static const char *const sort_aliases[] = { "torch.sort", "Tensor.sort", NULL };
static const char *const argsort_aliases[] = {
  "torch.argsort", "Tensor.argsort", NULL };
static const char *const topk_aliases[] = { "torch.topk", "Tensor.topk", NULL };

static NN_OPS_TYPE (sort_type, "sort", "(values, indices) sorted along dim",
                    sort_args, sort_aliases, sort_fn);
static NN_OPS_TYPE (argsort_type, "argsort", "indices that sort along dim",
                    argsort_args, argsort_aliases, argsort_fn);
static NN_OPS_TYPE (topk_type, "topk", "(values, indices) of the k extremes",
                    topk_args, topk_aliases, topk_fn);

const NnLayerType *const nn_ops_sort_types[] = {
  &sort_type, &argsort_type, &topk_type, NULL,
};
