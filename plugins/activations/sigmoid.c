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

static NnValue *
sigmoid_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return nn_act_map (args, sigmoid_kernel, NULL, error);
}

static NnValue *
silu_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return nn_act_map (args, silu_kernel, NULL, error);
}

static NnValue *
hardsigmoid_forward (NnModule *self, NnCall *call, const NnArgs *args,
                     GError **error)
{
  return nn_act_map (args, hardsigmoid_kernel, NULL, error);
}

static const char *const sigmoid_aliases[] = {
  "sigmoid", "torch.sigmoid", "torch.nn.functional.sigmoid", "Tensor.sigmoid",
  NULL
};
static const char *const silu_aliases[] = {
  "silu", "torch.nn.functional.silu", NULL
};
static const char *const hardsigmoid_aliases[] = {
  "hardsigmoid", "torch.nn.functional.hardsigmoid", NULL
};
static const char *const hardswish_aliases[] = {
  "hardswish", "torch.nn.functional.hardswish", NULL
};

static NnValue *
hardswish_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return nn_act_map (args, hardswish_kernel, NULL, error);
}

/* d sigmoid = y (1 - y); d silu = s (1 + x (1 - s)) with s = sigmoid (x). */
static float
sigmoid_deriv (float x, float y)
{
  return y * (1.0f - y);
}

static NnValue *
sigmoid_backward (NnModule *self, NnCall *call, const NnArgs *args,
                  const NnValue *out, const NnValue *grad_out, GError **error)
{
  return nn_act_backward_map (args, out, grad_out, sigmoid_deriv, error);
}

static float
silu_deriv (float x, float y)
{
  float s = 1.0f / (1.0f + nn_act_expf (-x));
  return s * (1.0f + x * (1.0f - s));
}

static NnValue *
silu_backward (NnModule *self, NnCall *call, const NnArgs *args,
               const NnValue *out, const NnValue *grad_out, GError **error)
{
  return nn_act_backward_map (args, out, grad_out, silu_deriv, error);
}

/* PyTorch's hardsigmoid_backward: 1/6 strictly inside (-3, 3);
 * hardswish_backward: 0 below -3, x / 3 + 1/2 up to 3, 1 above. */
static float
hardsigmoid_deriv (float x, float y)
{
  return (x > -3.0f && x < 3.0f) ? 1.0f / 6.0f : 0.0f;
}

static NnValue *
hardsigmoid_backward (NnModule *self, NnCall *call, const NnArgs *args,
                      const NnValue *out, const NnValue *grad_out, GError **error)
{
  return nn_act_backward_map (args, out, grad_out, hardsigmoid_deriv, error);
}

static float
hardswish_deriv (float x, float y)
{
  return x < -3.0f ? 0.0f : x <= 3.0f ? x / 3.0f + 0.5f : 1.0f;
}

static NnValue *
hardswish_backward (NnModule *self, NnCall *call, const NnArgs *args,
                    const NnValue *out, const NnValue *grad_out, GError **error)
{
  return nn_act_backward_map (args, out, grad_out, hardswish_deriv, error);
}

const NnLayerType nn_sigmoid_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Sigmoid",
  .doc = "logistic sigmoid 1 / (1 + exp(-x))",
  .schema = NULL,
  .n_schema = 0,
  .args = nn_act_input_args,
  .n_args = G_N_ELEMENTS (nn_act_input_args),
  .aliases = sigmoid_aliases,
  .create = nn_act_create_nothing,
  .forward = sigmoid_forward,
  .backward = sigmoid_backward,
  .infer = nn_act_infer_same,
  .fuse = &nn_sigmoid_fuse,
};

const NnLayerType nn_silu_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "SiLU",
  .doc = "sigmoid linear unit x * sigmoid(x)",
  .schema = inplace_schema,
  .n_schema = G_N_ELEMENTS (inplace_schema),
  .args = nn_act_inplace_args,
  .n_args = G_N_ELEMENTS (nn_act_inplace_args),
  .aliases = silu_aliases,
  .create = nn_act_create_nothing,
  .forward = silu_forward,
  .backward = silu_backward,
  .infer = nn_act_infer_same,
  .extra_repr = nn_act_inplace_repr,
  .fuse = &nn_silu_fuse,
};

/* PyTorch gives Hardsigmoid and Hardswish an inplace flag but no
 * extra_repr: they print as "Hardsigmoid()" either way. */
const NnLayerType nn_hardsigmoid_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Hardsigmoid",
  .doc = "relu6(x + 3) / 6",
  .schema = inplace_schema,
  .n_schema = G_N_ELEMENTS (inplace_schema),
  .args = nn_act_inplace_args,
  .n_args = G_N_ELEMENTS (nn_act_inplace_args),
  .aliases = hardsigmoid_aliases,
  .create = nn_act_create_nothing,
  .forward = hardsigmoid_forward,
  .backward = hardsigmoid_backward,
  .infer = nn_act_infer_same,
};

const NnLayerType nn_hardswish_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Hardswish",
  .doc = "x * relu6(x + 3) / 6",
  .schema = inplace_schema,
  .n_schema = G_N_ELEMENTS (inplace_schema),
  .args = nn_act_inplace_args,
  .n_args = G_N_ELEMENTS (nn_act_inplace_args),
  .aliases = hardswish_aliases,
  .create = nn_act_create_nothing,
  .forward = hardswish_forward,
  .backward = hardswish_backward,
  .infer = nn_act_infer_same,
  .fuse = &nn_hardswish_fuse,
};
