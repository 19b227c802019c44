/* BCEWithLogitsLoss: binary cross entropy on logits, in the stable form
 * max(x, 0) - x y + log(1 + exp(-|x|)), as
 * torch.nn.functional.binary_cross_entropy_with_logits. */
#include "loss.h"

#include <math.h>

static const NnSchemaKey bce_schema[] = { NN_LOSS_REDUCTION_KEY };

/* F.binary_cross_entropy_with_logits(input, target, weight=None,
 * size_average=None, reduce=None, reduction='mean', pos_weight=None). */
static const NnArgSpec bce_args[] = {
  { "input", NN_ARG_TENSOR, NN_DTYPE_BIT (NN_DTYPE_F32), 0, NULL,
    "float32 logits, any shape" },
  { "target", NN_ARG_TENSOR, NN_DTYPE_BIT (NN_DTYPE_F32), 0, NULL,
    "float32 probabilities, the input's shape" },
  { "weight", NN_ARG_TENSOR | NN_ARG_NONE, NN_DTYPES_ALL, NN_ARG_OPTIONAL,
    "null", "per-element weights: only None" },
  NN_LOSS_LEGACY_ARGS,
  NN_LOSS_REDUCTION_ARG,
  { "pos_weight", NN_ARG_TENSOR | NN_ARG_NONE, NN_DTYPES_ALL,
    NN_ARG_OPTIONAL, "null", "positive-class weights: only None" },
};

static const char *const bce_aliases[] = {
  "binary_cross_entropy_with_logits",
  "torch.nn.functional.binary_cross_entropy_with_logits", NULL
};

static gboolean
bce_check (NnModule *self, const NnArgs *args, NnLossReduction *r,
           GError **error)
{
  return nn_loss_refuse_tensor (args, 2, "weight", error)
         && nn_loss_refuse_tensor (args, 6, "pos_weight", error)
         && nn_loss_reduction (self, args, 5, r, error)
         && nn_loss_same_shape (nn_args_tensor (args, 0),
                                nn_args_tensor (args, 1), error);
}

static NnValue *
bce_infer (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnLossReduction r;
  if (!bce_check (self, args, &r, error))
    return NULL;
  NnShape none = { 0 };
  NnTensor *x = nn_args_tensor (args, 0);
  return nn_value_take_tensor (
      nn_tensor_new_meta (NN_DTYPE_F32, r == NN_LOSS_NONE ? &x->shape : &none));
}

static double
bce_elem (double x, double y)
{
  return MAX (x, 0.0) - x * y + log1p (exp (-fabs (x)));
}

/* d input = sigmoid (x) - y, d target = -x. */
static void
bce_elem_grad (double x, double y, double *dx, double *dy)
{
  *dx = 1.0 / (1.0 + exp (-x)) - y;
  *dy = -x;
}

static NnValue *
bce_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnLossReduction r;
  if (!bce_check (self, args, &r, error))
    return NULL;
  return nn_loss_pointwise (nn_args_tensor (args, 0), nn_args_tensor (args, 1),
                            r, bce_elem);
}

static NnValue *
bce_backward (NnModule *self, NnCall *call, const NnArgs *args,
              const NnValue *out, const NnValue *grad_out, GError **error)
{
  NnLossReduction r;
  if (!bce_check (self, args, &r, error))
    return NULL;
  return nn_loss_pointwise_backward (nn_args_tensor (args, 0),
                                     nn_args_tensor (args, 1), r, grad_out,
                                     bce_elem_grad);
}

static gboolean
bce_create (NnModule *self, GError **error)
{
  return TRUE;
}

const NnLayerType nn_bce_with_logits_loss_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "BCEWithLogitsLoss",
  .doc = "binary cross entropy on logits, with backward",
  .schema = bce_schema,
  .n_schema = G_N_ELEMENTS (bce_schema),
  .args = bce_args,
  .n_args = G_N_ELEMENTS (bce_args),
  .aliases = bce_aliases,
  .create = bce_create,
  .forward = bce_forward,
  .infer = bce_infer,
  .backward = bce_backward,
};
