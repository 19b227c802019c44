/* ops plugin: cumsum and cumprod along one dim. */
#include "ops.h"

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
  guint nd = in->shape.ndim;
  gint64 size = nd ? in->shape.dims[dim] : 1, outer = 1, inner = 1;
  for (guint i = 0; i < dim && nd; i++)
    outer *= in->shape.dims[i];
  for (guint i = dim + 1; i < nd; i++)
    inner *= in->shape.dims[i];
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
  &cumsum_type, &cumprod_type, NULL,
};
