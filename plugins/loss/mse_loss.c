/* MSELoss: the squared error (x - y)^2, reduced, as
 * torch.nn.functional.mse_loss on same-shape tensors. */
#include "loss.h"

static const NnSchemaKey mse_schema[] = { NN_LOSS_REDUCTION_KEY };

/* F.mse_loss(input, target, size_average=None, reduce=None,
 * reduction='mean'). */
static const NnArgSpec mse_args[] = {
  { "input", NN_ARG_TENSOR, NN_DTYPE_BIT (NN_DTYPE_F32), 0, NULL,
    "float32, any shape" },
  { "target", NN_ARG_TENSOR, NN_DTYPE_BIT (NN_DTYPE_F32), 0, NULL,
    "float32, the input's shape" },
  NN_LOSS_LEGACY_ARGS,
  NN_LOSS_REDUCTION_ARG,
};

static const char *const mse_aliases[] = {
  "mse_loss", "torch.nn.functional.mse_loss", NULL
};

static NnValue *
mse_infer (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnLossReduction r;
  NnTensor *x = nn_args_tensor (args, 0);
  if (!nn_loss_reduction (self, args, 4, &r, error)
      || !nn_loss_same_shape (x, nn_args_tensor (args, 1), error))
    return NULL;
  NnShape none = { 0 };
  return nn_value_take_tensor (
      nn_tensor_new_meta (NN_DTYPE_F32, r == NN_LOSS_NONE ? &x->shape : &none));
}

static NnValue *
mse_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnLossReduction r;
  NnTensor *x = nn_args_tensor (args, 0), *y = nn_args_tensor (args, 1);
  if (!nn_loss_reduction (self, args, 4, &r, error)
      || !nn_loss_same_shape (x, y, error))
    return NULL;
  const float *xd = nn_tensor_f32 (x), *yd = nn_tensor_f32 (y);
  gint64 n = nn_tensor_numel (x);
  NnTensor *e = nn_tensor_new (NN_DTYPE_F32, &x->shape);
  float *ed = nn_tensor_f32 (e);
  double total = 0.0;
  for (gint64 i = 0; i < n; i++) {
    double d = (double) xd[i] - yd[i];
    ed[i] = (float) (d * d);
    total += d * d;
  }
  if (r == NN_LOSS_NONE)
    return nn_value_take_tensor (e);
  nn_tensor_unref (e);
  return nn_loss_scalar (r == NN_LOSS_SUM ? total : total / (double) n);
}

/* d input = 2 (x - y) * scale, d target its negation. */
static NnValue *
mse_backward (NnModule *self, NnCall *call, const NnArgs *args,
              const NnValue *out, const NnValue *grad_out, GError **error)
{
  NnLossReduction r;
  NnTensor *x = nn_args_tensor (args, 0), *y = nn_args_tensor (args, 1);
  if (!nn_loss_reduction (self, args, 4, &r, error))
    return NULL;
  const float *xd = nn_tensor_f32 (x), *yd = nn_tensor_f32 (y);
  const float *g = nn_tensor_f32 (nn_value_get_tensor (grad_out));
  gint64 n = nn_tensor_numel (x);
  NnTensor *dx = nn_tensor_new (NN_DTYPE_F32, &x->shape);
  NnTensor *dy = nn_tensor_new (NN_DTYPE_F32, &x->shape);
  float *a = nn_tensor_f32 (dx), *b = nn_tensor_f32 (dy);
  for (gint64 i = 0; i < n; i++) {
    double v = 2.0 * ((double) xd[i] - yd[i]) * nn_loss_grad_scale (r, g, i, n);
    a[i] = (float) v;
    b[i] = (float) -v;
  }
  return nn_loss_grads (dx, dy);
}

static gboolean
mse_create (NnModule *self, GError **error)
{
  return TRUE;
}

const NnLayerType nn_mse_loss_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "MSELoss",
  .doc = "mean squared error, with backward",
  .schema = mse_schema,
  .n_schema = G_N_ELEMENTS (mse_schema),
  .args = mse_args,
  .n_args = G_N_ELEMENTS (mse_args),
  .aliases = mse_aliases,
  .create = mse_create,
  .forward = mse_forward,
  .infer = mse_infer,
  .backward = mse_backward,
};
