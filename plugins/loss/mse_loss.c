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

static double
mse_elem (double x, double y)
{
  return (x - y) * (x - y);
}

/* d input = 2 (x - y), d target its negation. */
static void
mse_elem_grad (double x, double y, double *dx, double *dy)
{
  *dx = 2.0 * (x - y);
  *dy = -*dx;
}

static NnValue *
mse_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnLossReduction r;
  NnTensor *x = nn_args_tensor (args, 0), *y = nn_args_tensor (args, 1);
  if (!nn_loss_reduction (self, args, 4, &r, error)
      || !nn_loss_same_shape (x, y, error))
    return NULL;
  return nn_loss_pointwise (x, y, r, mse_elem);
}

static NnValue *
mse_backward (NnModule *self, NnCall *call, const NnArgs *args,
              const NnValue *out, const NnValue *grad_out, GError **error)
{
  NnLossReduction r;
  if (!nn_loss_reduction (self, args, 4, &r, error))
    return NULL;
  return nn_loss_pointwise_backward (nn_args_tensor (args, 0),
                                     nn_args_tensor (args, 1), r, grad_out,
                                     mse_elem_grad);
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
