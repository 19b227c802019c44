/* Tanh: the hyperbolic tangent, as torch.nn.Tanh. */
#include "activations.h"

#include <math.h>

static void
tanh_kernel (const float *restrict x, float *restrict y, gint64 n,
             gconstpointer params)
{
  for (gint64 i = 0; i < n; i++)
    y[i] = tanhf (x[i]);
}

static NnValue *
tanh_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return nn_act_map (args, tanh_kernel, NULL, error);
}

/* d tanh = 1 - y^2, from the output. */
static float
tanh_deriv (float x, float y)
{
  return 1.0f - y * y;
}

static NnValue *
tanh_backward (NnModule *self, NnCall *call, const NnArgs *args,
               const NnValue *out, const NnValue *grad_out, GError **error)
{
  return nn_act_backward_map (args, out, grad_out, tanh_deriv, error);
}

static const char *const tanh_aliases[] = {
  "tanh", "torch.tanh", "torch.nn.functional.tanh", "Tensor.tanh", NULL
};

const NnLayerType nn_tanh_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Tanh",
  .doc = "hyperbolic tangent",
  .schema = NULL,
  .n_schema = 0,
  .args = nn_act_input_args,
  .n_args = G_N_ELEMENTS (nn_act_input_args),
  .aliases = tanh_aliases,
  .create = nn_act_create_nothing,
  .forward = tanh_forward,
  .backward = tanh_backward,
  .infer = nn_act_infer_same,
  .fuse = &nn_tanh_fuse,
};
