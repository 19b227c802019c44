/* ops plugin: softmax and log_softmax along one dim, as the functions
 * (F.softmax, torch.softmax, Tensor.softmax); the Softmax layer type
 * lives in the activations family. */
#include "ops.h"
#include "../common/nn-grad-util.h"

#include <math.h>

/* The float32 case without per-element dtype dispatch: exp once per
 * element (expf, as PyTorch's float kernels), sums in double. */
static void
softmax_f32 (const float *x, float *y, gint64 outer, gint64 size, gint64 inner,
             gboolean log_it)
{
  for (gint64 o = 0; o < outer; o++)
    for (gint64 j = 0; j < inner; j++)
      {
        const float *xr = x + o * size * inner + j;
        float *yr = y + o * size * inner + j;
        float mx = -INFINITY;
        double sum = 0;
        for (gint64 k = 0; k < size; k++)
          mx = fmaxf (mx, xr[k * inner]);
        for (gint64 k = 0; k < size; k++)
          {
            float e = expf (xr[k * inner] - mx);
            sum += e;
            if (!log_it)
              yr[k * inner] = e;
          }
        if (log_it)
          {
            float lse = (float) log (sum);
            for (gint64 k = 0; k < size; k++)
              yr[k * inner] = xr[k * inner] - mx - lse;
          }
        else
          {
            float inv = (float) (1.0 / sum);
            for (gint64 k = 0; k < size; k++)
              yr[k * inner] *= inv;
          }
      }
}

static NnValue *
softmax_common (const NnArgs *args, gboolean log_it, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  NnValue *dimv = nn_args_get (args, 1);
  /* torch.softmax(input, dim, dtype) puts dtype third; F.softmax has
   * _stacklevel there. */
  NnValue *dtv = nn_args_get (args, 3);
  if (nn_value_kind (nn_args_get (args, 2)) == NN_VALUE_STRING)
    dtv = nn_args_get (args, 2);
  NnDType dt;
  gboolean given;
  if (!nn_ops_dtype_arg (dtv, &dt, &given, error))
    return NULL;
  g_autoptr (NnTensor) conv = given ? nn_tensor_to_dtype (in, dt) : NULL;
  if (conv)
    in = conv;
  if (!nn_dtype_is_float (in->dtype))
    {
      nn_ops_fail (error, "\"%s\" not implemented for '%s'",
                   log_it ? "log_softmax_lastdim_kernel_impl"
                          : "softmax_lastdim_kernel_impl",
                   nn_ops_dtype_short (in->dtype));
      return NULL;
    }
  guint nd = in->shape.ndim, dim;
  gint64 d = nn_value_is_none (dimv)
    ? ((nd == 0 || nd == 1 || nd == 3) ? 0 : 1) /* PyTorch's implicit dim */
    : nn_value_get_int (dimv);
  if (!nn_ops_dim (d, nd, &dim, error))
    return NULL;
  NnTensor *out = nn_ops_new (nn_tensor_is_meta (in), in->dtype, &in->shape,
                              error);
  if (!out || nn_tensor_is_meta (in))
    return nn_ops_take (out);
  gint64 size = nd ? in->shape.dims[dim] : 1, outer = 1, inner = 1;
  for (guint i = 0; i < dim && nd; i++)
    outer *= in->shape.dims[i];
  for (guint i = dim + 1; i < nd; i++)
    inner *= in->shape.dims[i];
  if (in->dtype == NN_DTYPE_F32)
    {
      softmax_f32 (in->data, out->data, outer, size, inner, log_it);
      return nn_value_take_tensor (out);
    }
  for (gint64 o = 0; o < outer; o++)
    for (gint64 j = 0; j < inner; j++)
      {
        gint64 base = o * size * inner + j;
        double mx = -INFINITY, sum = 0;
        for (gint64 k = 0; k < size; k++)
          mx = fmax (mx, nn_ops_get_f (in, base + k * inner));
        for (gint64 k = 0; k < size; k++)
          sum += exp (nn_ops_get_f (in, base + k * inner) - mx);
        double lse = log (sum);
        for (gint64 k = 0; k < size; k++)
          {
            double v = nn_ops_get_f (in, base + k * inner) - mx;
            nn_ops_set_f (out, base + k * inner,
                          log_it ? v - lse : exp (v) / sum);
          }
      }
  return nn_value_take_tensor (out);
}

static NnValue *
softmax_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return softmax_common (args, FALSE, error);
}

static NnValue *
log_softmax_fn (NnModule *self, NnCall *call, const NnArgs *args,
                GError **error)
{
  return softmax_common (args, TRUE, error);
}

/* Float32 only: the tape's gradients are float32. */
static NnValue *
softmax_backward_common (const NnArgs *args, const NnValue *out,
                         const NnValue *grad_out, gboolean log_it,
                         GError **error)
{
  NnTensor *y = nn_value_get_tensor (out);
  if (y->dtype != NN_DTYPE_F32)
    {
      nn_ops_fail (error, "backward of %s supports float32 only, found %s",
                   log_it ? "log_softmax" : "softmax", nn_dtype_name (y->dtype));
      return NULL;
    }
  NnValue *dimv = nn_args_get (args, 1);
  guint nd = y->shape.ndim, dim;
  gint64 d = nn_value_is_none (dimv)
    ? ((nd == 0 || nd == 1 || nd == 3) ? 0 : 1)
    : nn_value_get_int (dimv);
  if (!nn_ops_dim (d, nd, &dim, error))
    return NULL;
  gint64 size = nd ? y->shape.dims[dim] : 1, outer = 1, inner = 1;
  for (guint i = 0; i < dim && nd; i++)
    outer *= y->shape.dims[i];
  for (guint i = dim + 1; i < nd; i++)
    inner *= y->shape.dims[i];
  NnTensor *dx = nn_ops_new (FALSE, NN_DTYPE_F32, &y->shape, error);
  if (!dx)
    return NULL;
  nn_grad_softmax (nn_tensor_f32 (y),
                   nn_tensor_f32 (nn_value_get_tensor (grad_out)),
                   nn_tensor_f32 (dx), outer, size, inner, log_it, 1.0f);
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (dx));
  return res;
}

static NnValue *
softmax_backward (NnModule *self, NnCall *call, const NnArgs *args,
                  const NnValue *out, const NnValue *grad_out, GError **error)
{
  return softmax_backward_common (args, out, grad_out, FALSE, error);
}

static NnValue *
log_softmax_backward (NnModule *self, NnCall *call, const NnArgs *args,
                      const NnValue *out, const NnValue *grad_out,
                      GError **error)
{
  return softmax_backward_common (args, out, grad_out, TRUE, error);
}

static const NnArgSpec softmax_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" },
  { "dim", NN_ARG_INT | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "dim to normalise (None: PyTorch's implicit choice)" },
  { "_stacklevel", NN_ARG_INT | NN_ARG_STRING | NN_ARG_NONE, 0,
    NN_ARG_OPTIONAL, "3", "ignored (F.*), or dtype (torch.*)" },
  { "dtype", NN_ARG_STRING | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "convert the input to this dtype first" },
};

static const char *const softmax_aliases[] = {
  "torch.softmax", "torch.nn.functional.softmax", "Tensor.softmax",
  "torch.special.softmax", NULL };
static const char *const log_softmax_aliases[] = {
  "torch.log_softmax", "torch.nn.functional.log_softmax",
  "Tensor.log_softmax", "torch.special.log_softmax", NULL };

static NN_OPS_GRAD_TYPE (softmax_type, "softmax", "exp(x) / sum(exp(x)) along dim",
                         softmax_args, softmax_aliases, softmax_fn, softmax_backward);
static NN_OPS_GRAD_TYPE (log_softmax_type, "log_softmax", "log of softmax along dim",
                         softmax_args, log_softmax_aliases, log_softmax_fn,
                         log_softmax_backward);

const NnLayerType *const nn_ops_softmax_types[] = {
  &softmax_type, &log_softmax_type, NULL,
};
