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

static NnTensor *
tanh_forward (NnModule *self, NnCall *call, NnTensor *input, GError **error)
{
  return nn_act_map (self, input, tanh_kernel, NULL, error);
}

const NnLayerType nn_tanh_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Tanh",
  .doc = "hyperbolic tangent",
  .schema = NULL,
  .n_schema = 0,
  .create = nn_act_create_nothing,
  .forward = tanh_forward,
};
