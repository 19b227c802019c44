/* The sigmoid family: Sigmoid, SiLU (x * sigmoid(x)) and their piecewise
 * linear versions Hardsigmoid and Hardswish, with PyTorch's formulas. */
#include "activations.h"

#include <math.h>

static const NnSchemaKey inplace_schema[] = { NN_ACT_INPLACE_KEY };

static void
sigmoid_kernel (const float *restrict x, float *restrict y, gint64 n,
                gconstpointer params)
{
  for (gint64 i = 0; i < n; i++)
    y[i] = 1.0f / (1.0f + nn_act_expf (-x[i]));
}

static void
silu_kernel (const float *restrict x, float *restrict y, gint64 n,
             gconstpointer params)
{
  for (gint64 i = 0; i < n; i++)
    y[i] = x[i] / (1.0f + nn_act_expf (-x[i]));
}

/* relu6(x + 3) / 6, NaN-preserving like the clamp in hardtanh.c. */
static inline float
hard_gate (float v)
{
  float t = v + 3.0f;
  t = t < 0.0f ? 0.0f : t;
  return t > 6.0f ? 6.0f : t;
}

static void
hardsigmoid_kernel (const float *restrict x, float *restrict y, gint64 n,
                    gconstpointer params)
{
  for (gint64 i = 0; i < n; i++)
    y[i] = hard_gate (x[i]) / 6.0f;
}

static void
hardswish_kernel (const float *restrict x, float *restrict y, gint64 n,
                  gconstpointer params)
{
  for (gint64 i = 0; i < n; i++)
    y[i] = x[i] * hard_gate (x[i]) / 6.0f;
}

static NnTensor *
sigmoid_forward (NnModule *self, NnCall *call, NnTensor *input, GError **error)
{
  return nn_act_map (self, input, sigmoid_kernel, NULL, error);
}

static NnTensor *
silu_forward (NnModule *self, NnCall *call, NnTensor *input, GError **error)
{
  return nn_act_map (self, input, silu_kernel, NULL, error);
}

static NnTensor *
hardsigmoid_forward (NnModule *self, NnCall *call, NnTensor *input,
                     GError **error)
{
  return nn_act_map (self, input, hardsigmoid_kernel, NULL, error);
}

static NnTensor *
hardswish_forward (NnModule *self, NnCall *call, NnTensor *input, GError **error)
{
  return nn_act_map (self, input, hardswish_kernel, NULL, error);
}

const NnLayerType nn_sigmoid_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Sigmoid",
  .doc = "logistic sigmoid 1 / (1 + exp(-x))",
  .schema = NULL,
  .n_schema = 0,
  .create = nn_act_create_nothing,
  .forward = sigmoid_forward,
};

const NnLayerType nn_silu_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "SiLU",
  .doc = "sigmoid linear unit x * sigmoid(x)",
  .schema = inplace_schema,
  .n_schema = G_N_ELEMENTS (inplace_schema),
  .create = nn_act_create_nothing,
  .forward = silu_forward,
  .extra_repr = nn_act_inplace_repr,
};

/* PyTorch gives Hardsigmoid and Hardswish an inplace flag but no
 * extra_repr: they print as "Hardsigmoid()" either way. */
const NnLayerType nn_hardsigmoid_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Hardsigmoid",
  .doc = "relu6(x + 3) / 6",
  .schema = inplace_schema,
  .n_schema = G_N_ELEMENTS (inplace_schema),
  .create = nn_act_create_nothing,
  .forward = hardsigmoid_forward,
};

const NnLayerType nn_hardswish_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Hardswish",
  .doc = "x * relu6(x + 3) / 6",
  .schema = inplace_schema,
  .n_schema = G_N_ELEMENTS (inplace_schema),
  .create = nn_act_create_nothing,
  .forward = hardswish_forward,
};
