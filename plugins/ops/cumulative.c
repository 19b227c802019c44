/* ops plugin: cumsum, cumprod, cummax and cummin along one dim. */
#include "ops.h"

#include <math.h>

static NnValue *
cumulative (const NnArgs *args, gboolean prod, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  guint dim;
  NnDType dt;
  gboolean given;
  if (!nn_ops_dim (nn_args_int (args, 1), in->shape.ndim, &dim, error)
      || !nn_ops_dtype_arg (nn_args_get (args, 2), &dt, &given, error))
    return NULL;
  g_autoptr (NnTensor) conv = given ? nn_tensor_to_dtype (in, dt) : NULL;
  if (conv)
    in = conv;
  /* Integers and bools accumulate in int64, as PyTorch's. */
  NnDType out_dtype = nn_dtype_is_float (in->dtype) ? in->dtype : NN_DTYPE_I64;
  NnTensor *out = nn_ops_new (nn_tensor_is_meta (in), out_dtype, &in->shape,
                              error);
  if (!out || nn_tensor_is_meta (in))
    return nn_ops_take (out);
  gint64 outer, size, inner;
  nn_ops_around_dim (&in->shape, dim, &outer, &size, &inner);
  for (gint64 o = 0; o < outer; o++)
    for (gint64 j = 0; j < inner; j++)
      {
        gint64 base = o * size * inner + j;
        double fa = prod ? 1 : 0;
        guint64 ia = prod ? 1 : 0; /* wraps as int64 does */
        for (gint64 k = 0; k < size; k++)
          {
            gint64 at = base + k * inner;
            if (out_dtype == NN_DTYPE_I64)
              {
                guint64 v = (guint64) nn_ops_get_i (in, at);
                ia = prod ? ia * v : ia + v;
                nn_ops_set_i (out, at, (gint64) ia);
              }
            else
              {
                /* Accumulate in the result's precision, as PyTorch does. */
                double v = nn_ops_get_f (in, at);
                fa = nn_ops_round_to (out_dtype, prod ? fa * v : fa + v);
                nn_ops_set_f (out, at, fa);
              }
          }
      }
  return nn_value_take_tensor (out);
}

static NnValue *
cumsum_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return cumulative (args, FALSE, error);
}

static NnValue *
cumprod_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return cumulative (args, TRUE, error);
}

/* cummax / cummin: (values, indices), the running extreme and where it
 * was last reached (ties move the index, as in PyTorch); a NaN, once
 * seen, stays, with the index of the latest NaN. */
static NnValue *
cum_extreme (const NnArgs *args, gboolean max, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  guint dim;
  if (!nn_ops_dim (nn_args_int (args, 1), in->shape.ndim, &dim, error))
    return NULL;
  gboolean meta = nn_tensor_is_meta (in);
  g_autoptr (NnTensor) vals = nn_ops_new (meta, in->dtype, &in->shape, error);
  g_autoptr (NnTensor) idx = vals ? nn_ops_new (meta, NN_DTYPE_I64, &in->shape, error) : NULL;
  if (!idx)
    return NULL;
  gint64 outer, size, inner;
  nn_ops_around_dim (&in->shape, dim, &outer, &size, &inner);
  gboolean fl = nn_dtype_is_float (in->dtype);
  for (gint64 o = 0; o < outer && !meta; o++)
    for (gint64 j = 0; j < inner; j++)
      {
        gint64 base = o * size * inner + j, best_at = 0;
        double best = 0;
        for (gint64 k = 0; k < size; k++)
          {
            gint64 at = base + k * inner;
            double v = fl ? nn_ops_get_f (in, at) : (double) nn_ops_get_i (in, at);
            gboolean take = k == 0 || isnan (v)
                            || (!isnan (best) && (max ? v >= best : v <= best));
            if (take)
              {
                best = v;
                best_at = k;
              }
            nn_ops_set_i (idx, at, best_at);
            /* Copy the element itself, so int64 values stay exact. */
            gint64 from = base + best_at * inner;
            if (fl)
              nn_ops_set_f (vals, at, nn_ops_get_f (in, from));
            else
              nn_ops_set_i (vals, at, nn_ops_get_i (in, from));
          }
      }
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (g_steal_pointer (&vals)));
  nn_value_append (res, nn_value_take_tensor (g_steal_pointer (&idx)));
  return res;
}

static NnValue *
cummax_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return cum_extreme (args, TRUE, error);
}

static NnValue *
cummin_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return cum_extreme (args, FALSE, error);
}

static const NnArgSpec cum_extreme_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" },
  { "dim", NN_ARG_INT, 0, 0, NULL, "dim to run along" },
};
static const char *const cummax_aliases[] = { "torch.cummax", "Tensor.cummax", NULL };
static const char *const cummin_aliases[] = { "torch.cummin", "Tensor.cummin", NULL };
static NN_OPS_TYPE (cummax_type, "cummax", "(values, indices) of the running maximum",
                    cum_extreme_args, cummax_aliases, cummax_fn);
static NN_OPS_TYPE (cummin_type, "cummin", "(values, indices) of the running minimum",
                    cum_extreme_args, cummin_aliases, cummin_fn);

static const NnArgSpec cum_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" },
  { "dim", NN_ARG_INT, 0, 0, NULL, "dim to accumulate along" },
  { "dtype", NN_ARG_STRING | NN_ARG_NONE, 0, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY,
    "null", "convert the input to this dtype first" },
};
static const char *const cumsum_aliases[] = {
  "torch.cumsum", "Tensor.cumsum", "Tensor.cumsum_", NULL };
static const char *const cumprod_aliases[] = {
  "torch.cumprod", "Tensor.cumprod", "Tensor.cumprod_", NULL };

static NN_OPS_TYPE (cumsum_type, "cumsum", "running sum along dim", cum_args,
                    cumsum_aliases, cumsum_fn);
static NN_OPS_TYPE (cumprod_type, "cumprod", "running product along dim",
                    cum_args, cumprod_aliases, cumprod_fn);

const NnLayerType *const nn_ops_cumulative_types[] = {
  &cumsum_type, &cumprod_type, &cummax_type, &cummin_type, NULL,
};
