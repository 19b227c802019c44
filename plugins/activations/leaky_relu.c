/* LeakyReLU: x > 0 ? x : negative_slope * x, as torch.nn.LeakyReLU, and
 * F.leaky_relu(input, negative_slope, inplace). */
#include "pointwise.h"

static void
leaky_relu_kernel (const float *restrict x, float *restrict y, gint64 n,
                   const double *p)
{
  const float s = (float) p[0];
  for (gint64 i = 0; i < n; i++)
    y[i] = x[i] > 0.0f ? x[i] : x[i] * s;
}

static const char *const leaky_relu_params[] = { "negative_slope" };
/* 1 where x > 0, else the slope (PyTorch: the slope at 0). */
static double
leaky_relu_deriv (float x, float y, const double *p)
{
  return x > 0.0f ? 1.0 : (double) (float) p[0];
}

static const NnPwFunc leaky_relu_func = { leaky_relu_kernel, leaky_relu_params, 1, NULL,
                                          leaky_relu_deriv };

static const NnSchemaKey leaky_relu_schema[] = {
  NN_PW_NUMBER_KEY ("negative_slope", "0.01", "slope for negative inputs"),
  NN_PW_INPLACE_KEY,
};

static char *
leaky_relu_extra_repr (NnModule *self)
{
  g_autofree char *s = nn_module_config_repr (self, "negative_slope");
  return g_strdup_printf ("negative_slope=%s%s", s, nn_pw_inplace_suffix (self));
}

NN_PW_MODULE_TYPE (nn_leaky_relu_type, "LeakyReLU",
                   "x if x > 0 else negative_slope * x", leaky_relu_schema,
                   G_N_ELEMENTS (leaky_relu_schema), leaky_relu_func, leaky_relu_extra_repr);

static const NnArgSpec leaky_relu_fn_args[] = {
  NN_PW_INPUT_ARG,
  { "negative_slope", NN_ARG_FLOAT, 0, NN_ARG_OPTIONAL, "0.01",
    "slope for negative inputs" },
  NN_PW_INPLACE_ARG,
};

static const char *const leaky_relu_fn_aliases[] = {
  "torch.nn.functional.leaky_relu", NULL
};

NN_PW_OP_TYPE (nn_leaky_relu_fn_type, "leaky_relu", "F.leaky_relu",
               leaky_relu_fn_args, leaky_relu_fn_aliases, leaky_relu_func);
