/* PReLU: x > 0 ? x : a * x with a learnable slope a, one per channel (dim
 * 1) or one shared, as torch.nn.PReLU; and F.prelu(input, weight). */
#include "pointwise.h"
#include "../common/nn-layer-util.h"

#include <nnkit/train.h>

static const NnSchemaKey prelu_schema[] = {
  { "num_parameters", NN_KIND_INT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "1",
    1, 0, NULL, "1 (one shared slope) or the channel count C" },
  { "init", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL, "0.25", 0, 0, NULL,
    "initial slope, for reset_parameters" },
};

static gboolean
prelu_create (NnModule *self, GError **error)
{
  NnShape s = { 1, { nn_module_config_int (self, "num_parameters") } };
  nn_module_add_parameter (self, "weight", NN_DTYPE_F32, &s);
  return TRUE;
}

static void
prelu_reset_parameters (NnModule *self, GRand *rng)
{
  nn_lu_fill (self, "weight", (float) nn_module_config_float (self, "init"));
}

/* PyTorch's rule: one slope fits anything; several need dim 1 (dim 0 of
 * a 1-d input counts as channel size 1) to match. */
static NnValue *
prelu_apply (NnTensor *input, NnTensor *weight, GError **error)
{
  const NnShape *s = &input->shape;
  gint64 np = nn_tensor_numel (weight);
  if (np > 1 && s->ndim == 0) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Not allow zero-dim input tensor.");
    return NULL;
  }
  gint64 c = s->ndim >= 2 ? s->dims[1] : 1;
  if (np > 1 && np != c) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Mismatch of parameter numbers and input channel size. Found "
                 "parameter numbers = %" G_GINT64_FORMAT " and channel size = %"
                 G_GINT64_FORMAT ".", np, c);
    return NULL;
  }
  NnTensor *out = nn_lu_new_f32 (s, nn_tensor_is_meta (input));
  if (!out || nn_tensor_is_meta (input) || nn_tensor_is_meta (weight))
    return nn_lu_result (out, error);
  const float *x = nn_tensor_f32 (input), *a = nn_tensor_f32 (weight);
  float *y = nn_tensor_f32 (out);
  gint64 inner = nn_lu_prod (s, 2, s->ndim), n = nn_tensor_numel (input);
  for (gint64 i = 0; i < n; i++) {
    float slope = np > 1 ? a[(i / inner) % c] : a[0];
    y[i] = x[i] > 0.0f ? x[i] : x[i] * slope;
  }
  return nn_value_take_tensor (out);
}

/* d input = g where x > 0, else g * slope; d slope = sum of g * x over
 * x <= 0, per channel or all in one (PyTorch's prelu_backward).  @dw is
 * NULL when the slope needs no gradient; it is accumulated into. */
static NnValue *
prelu_grad (NnTensor *input, NnTensor *weight, const NnValue *grad_out,
            float *dw, gboolean want_dw_value)
{
  const NnShape *s = &input->shape;
  gint64 np = nn_tensor_numel (weight);
  gint64 c = s->ndim >= 2 ? s->dims[1] : 1;
  gint64 inner = nn_lu_prod (s, 2, s->ndim), n = nn_tensor_numel (input);
  NnTensor *dx = nn_tensor_new (NN_DTYPE_F32, s);
  NnTensor *dwt = want_dw_value ? nn_tensor_new (NN_DTYPE_F32, &weight->shape) : NULL;
  if (!dw && dwt)
    dw = nn_tensor_f32 (dwt);
  const float *x = nn_tensor_f32 (input), *a = nn_tensor_f32 (weight);
  const float *g = nn_tensor_f32 (nn_value_get_tensor (grad_out));
  float *d = nn_tensor_f32 (dx);
  for (gint64 i = 0; i < n; i++) {
    gint64 k = np > 1 ? (i / inner) % c : 0;
    if (x[i] > 0.0f) {
      d[i] = g[i];
    } else {
      d[i] = g[i] * a[k];
      if (dw)
        dw[k] += g[i] * x[i];
    }
  }
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (dx));
  if (dwt)
    nn_value_append (res, nn_value_take_tensor (dwt));
  return res;
}

static NnValue *
prelu_backward (NnModule *self, NnCall *call, const NnArgs *args,
                const NnValue *out, const NnValue *grad_out, GError **error)
{
  return prelu_grad (nn_args_tensor (args, 0),
                     nn_module_get_parameter (self, "weight"), grad_out,
                     nn_module_grad_f32 (self, "weight"), FALSE);
}

static NnValue *
prelu_fn_backward (NnModule *self, NnCall *call, const NnArgs *args,
                   const NnValue *out, const NnValue *grad_out, GError **error)
{
  return prelu_grad (nn_args_tensor (args, 0), nn_args_tensor (args, 1),
                     grad_out, NULL, TRUE);
}

static NnValue *
prelu_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return prelu_apply (nn_args_tensor (args, 0),
                      nn_module_get_parameter (self, "weight"), error);
}

static char *
prelu_extra_repr (NnModule *self)
{
  return g_strdup_printf ("num_parameters=%" G_GINT64_FORMAT,
                          nn_module_config_int (self, "num_parameters"));
}

static guint64
prelu_count_macs (NnModule *self, const NnArgs *args, const NnValue *out)
{
  return nn_lu_count_macs_params (self, out, FALSE);
}

const NnLayerType nn_prelu_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "PReLU",
  .doc = "x if x > 0 else weight * x, weight learnable per channel or shared",
  .schema = prelu_schema,
  .n_schema = G_N_ELEMENTS (prelu_schema),
  .create = prelu_create,
  .forward = prelu_forward,
  .backward = prelu_backward,
  .infer = prelu_forward,
  .extra_repr = prelu_extra_repr,
  .reset_parameters = prelu_reset_parameters,
  .count_macs = prelu_count_macs,
};

static const NnArgSpec prelu_fn_args[] = {
  NN_PW_INPUT_ARG,
  { "weight", NN_ARG_TENSOR, 0, 0, NULL, "slopes: 1 or C values" },
};

static const char *const prelu_fn_aliases[] = { "torch.nn.functional.prelu", NULL };

static NnValue *
prelu_fn_forward (NnModule *self, NnCall *call, const NnArgs *args,
                  GError **error)
{
  return prelu_apply (nn_args_tensor (args, 0), nn_args_tensor (args, 1), error);
}

const NnLayerType nn_prelu_fn_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "prelu",
  .doc = "F.prelu",
  .flags = NN_LAYER_OP,
  .args = prelu_fn_args,
  .n_args = G_N_ELEMENTS (prelu_fn_args),
  .aliases = prelu_fn_aliases,
  .create = nn_pw_create_nothing,
  .forward = prelu_fn_forward,
  .backward = prelu_fn_backward,
  .infer = prelu_fn_forward,
};
