/* The exponential linear units, as torch.nn.ELU, SELU and CELU, and their
 * functional spellings F.elu, F.selu, F.celu. */
#include "pointwise.h"

#include <math.h>

/* SELU's constants, from the paper as PyTorch spells them. */
#define SELU_ALPHA 1.6732632423543772848170429916717
#define SELU_SCALE 1.0507009873554804934193349852946

/* p: alpha, input scale (1 / alpha for CELU), output scale. */
static void
elu_core (const float *restrict x, float *restrict y, gint64 n, double alpha,
          double in_scale, double out_scale)
{
  for (gint64 i = 0; i < n; i++)
    y[i] = (float) (out_scale * (x[i] > 0.0f ? x[i]
                                 : alpha * expm1 (x[i] * in_scale)));
}

static void
elu_kernel (const float *restrict x, float *restrict y, gint64 n, const double *p)
{
  elu_core (x, y, n, p[0], 1.0, 1.0);
}

static void
selu_kernel (const float *restrict x, float *restrict y, gint64 n, const double *p)
{
  elu_core (x, y, n, SELU_ALPHA, 1.0, SELU_SCALE);
}

static void
celu_kernel (const float *restrict x, float *restrict y, gint64 n, const double *p)
{
  elu_core (x, y, n, p[0], 1.0 / p[0], 1.0);
}

static gboolean
celu_check (const double *p, GError **error)
{
  if (p[0] == 0.0) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "ZeroDivisionError: alpha cannot be 0 for CELU");
    return FALSE;
  }
  return TRUE;
}

/* PyTorch's elu_backward on the input: out_scale where x > 0, else
 * in_scale * alpha * out_scale * exp(x * in_scale). */
static double
elu_core_deriv (float x, double alpha, double in_scale, double out_scale)
{
  return x > 0.0f ? out_scale : in_scale * alpha * out_scale * exp (x * in_scale);
}

static double
elu_deriv (float x, float y, const double *p)
{
  return elu_core_deriv (x, p[0], 1.0, 1.0);
}

static double
selu_deriv (float x, float y, const double *p)
{
  return elu_core_deriv (x, SELU_ALPHA, 1.0, SELU_SCALE);
}

static double
celu_deriv (float x, float y, const double *p)
{
  return elu_core_deriv (x, p[0], 1.0 / p[0], 1.0);
}

static const char *const alpha_params[] = { "alpha" };
static const NnPwFunc elu_func = { elu_kernel, alpha_params, 1, NULL, elu_deriv };
static const NnPwFunc selu_func = { selu_kernel, NULL, 0, NULL, selu_deriv };
static const NnPwFunc celu_func = { celu_kernel, alpha_params, 1, celu_check, celu_deriv };

static const NnSchemaKey alpha_schema[] = {
  NN_PW_NUMBER_KEY ("alpha", "1.0", "scale of the negative branch"),
  NN_PW_INPLACE_KEY,
};
static const NnSchemaKey selu_schema[] = { NN_PW_INPLACE_KEY };

static char *
alpha_extra_repr (NnModule *self)
{
  g_autofree char *a = nn_module_config_repr (self, "alpha");
  return g_strdup_printf ("alpha=%s%s", a, nn_pw_inplace_suffix (self));
}

static char *
selu_extra_repr (NnModule *self)
{
  return nn_module_config_bool (self, "inplace") ? g_strdup ("inplace=True") : NULL;
}

NN_PW_MODULE_TYPE (nn_elu_type, "ELU", "x if x > 0 else alpha * (exp(x) - 1)",
                   alpha_schema, G_N_ELEMENTS (alpha_schema), elu_func, alpha_extra_repr);
NN_PW_MODULE_TYPE (nn_selu_type, "SELU", "scale * ELU(x, alpha) with SELU's "
                   "fixed constants", selu_schema, G_N_ELEMENTS (selu_schema), selu_func, selu_extra_repr);
NN_PW_MODULE_TYPE (nn_celu_type, "CELU", "max(0, x) + min(0, alpha * "
                   "(exp(x / alpha) - 1))", alpha_schema, G_N_ELEMENTS (alpha_schema), celu_func,
                   alpha_extra_repr);

static const NnArgSpec alpha_fn_args[] = {
  NN_PW_INPUT_ARG,
  { "alpha", NN_ARG_FLOAT, 0, NN_ARG_OPTIONAL, "1.0", "scale of the negative branch" },
  NN_PW_INPLACE_ARG,
};
static const NnArgSpec selu_fn_args[] = { NN_PW_INPUT_ARG, NN_PW_INPLACE_ARG };

static const char *const elu_fn_aliases[] = { "torch.nn.functional.elu", NULL };
static const char *const selu_fn_aliases[] = { "torch.nn.functional.selu", NULL };
static const char *const celu_fn_aliases[] = { "torch.nn.functional.celu", NULL };

NN_PW_OP_TYPE (nn_elu_fn_type, "elu", "F.elu", alpha_fn_args, elu_fn_aliases, elu_func);
NN_PW_OP_TYPE (nn_selu_fn_type, "selu", "F.selu", selu_fn_args, selu_fn_aliases, selu_func);
NN_PW_OP_TYPE (nn_celu_fn_type, "celu", "F.celu", alpha_fn_args, celu_fn_aliases, celu_func);
