/* Thresholding activations: Hardshrink, Softshrink and Threshold, as
 * torch.nn defines them, and F.hardshrink, F.softshrink, F.threshold. */
#include "pointwise.h"

#include <math.h>

static void
hardshrink_kernel (const float *restrict x, float *restrict y, gint64 n,
                   const double *p)
{
  const float l = (float) p[0];
  for (gint64 i = 0; i < n; i++)
    y[i] = (x[i] >= -l && x[i] <= l) ? 0.0f : x[i];
}

static void
softshrink_kernel (const float *restrict x, float *restrict y, gint64 n,
                   const double *p)
{
  const float l = (float) p[0];
  for (gint64 i = 0; i < n; i++)
    y[i] = x[i] > l ? x[i] - l : x[i] < -l ? x[i] + l : 0.0f;
}

/* p: threshold, value.  y = x > threshold ? x : value. */
static void
threshold_kernel (const float *restrict x, float *restrict y, gint64 n,
                  const double *p)
{
  const float t = (float) p[0], v = (float) p[1];
  for (gint64 i = 0; i < n; i++)
    y[i] = x[i] > t ? x[i] : v;
}

static gboolean
softshrink_check (const double *p, GError **error)
{
  if (p[0] < 0) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "lambda must be greater or equal to 0, but found to be %g.", p[0]);
    return FALSE;
  }
  return TRUE;
}

static const char *const lambd_params[] = { "lambd" };
static const char *const threshold_params[] = { "threshold", "value" };
/* Both shrinks pass the gradient outside [-lambd, lambd], as PyTorch's
 * hardshrink_backward and softshrink_backward; Threshold where x > t. */
static double
shrink_deriv (float x, float y, const double *p)
{
  const float l = (float) p[0];
  return (x >= -l && x <= l) ? 0.0 : 1.0;
}

static double
threshold_deriv (float x, float y, const double *p)
{
  return x <= (float) p[0] ? 0.0 : 1.0;
}

static const NnPwFunc hardshrink_func = { hardshrink_kernel, lambd_params, 1, NULL,
                                          shrink_deriv };
static const NnPwFunc softshrink_func = { softshrink_kernel, lambd_params, 1, softshrink_check,
                                          shrink_deriv };
static const NnPwFunc threshold_func = { threshold_kernel, threshold_params, 2, NULL,
                                         threshold_deriv };

static const NnSchemaKey lambd_schema[] = {
  NN_PW_NUMBER_KEY ("lambd", "0.5", "half-width of the band mapped to 0"),
};
static const NnSchemaKey threshold_schema[] = {
  { "threshold", NN_KIND_JSON, 0, 0, NULL, 0, 0, NULL,
    "values above it pass" },
  { "value", NN_KIND_JSON, 0, 0, NULL, 0, 0, NULL,
    "what the others become" },
  NN_PW_INPLACE_KEY,
};

static char *
lambd_extra_repr (NnModule *self)
{
  return nn_module_config_repr (self, "lambd");
}

static char *
threshold_extra_repr (NnModule *self)
{
  g_autofree char *t = nn_module_config_repr (self, "threshold");
  g_autofree char *v = nn_module_config_repr (self, "value");
  return g_strdup_printf ("threshold=%s, value=%s%s", t, v,
                          nn_pw_inplace_suffix (self));
}

NN_PW_MODULE_TYPE (nn_hardshrink_type, "Hardshrink", "0 if |x| <= lambd else x",
                   lambd_schema, G_N_ELEMENTS (lambd_schema), hardshrink_func,
                   lambd_extra_repr);
NN_PW_MODULE_TYPE (nn_softshrink_type, "Softshrink",
                   "x - lambd, x + lambd, or 0 inside [-lambd, lambd]",
                   lambd_schema, G_N_ELEMENTS (lambd_schema), softshrink_func,
                   lambd_extra_repr);
NN_PW_MODULE_TYPE (nn_threshold_type, "Threshold", "x if x > threshold else value",
                   threshold_schema, G_N_ELEMENTS (threshold_schema),
                   threshold_func, threshold_extra_repr);

static const NnArgSpec lambd_fn_args[] = {
  NN_PW_INPUT_ARG,
  { "lambd", NN_ARG_FLOAT, 0, NN_ARG_OPTIONAL, "0.5",
    "half-width of the band mapped to 0" },
};
static const NnArgSpec threshold_fn_args[] = {
  NN_PW_INPUT_ARG,
  { "threshold", NN_ARG_FLOAT, 0, 0, NULL, "values above it pass" },
  { "value", NN_ARG_FLOAT, 0, 0, NULL, "what the others become" },
  NN_PW_INPLACE_ARG,
};

static const char *const hardshrink_fn_aliases[] = { "torch.nn.functional.hardshrink", NULL };
static const char *const softshrink_fn_aliases[] = { "torch.nn.functional.softshrink", NULL };
static const char *const threshold_fn_aliases[] = { "torch.nn.functional.threshold", NULL };

NN_PW_OP_TYPE (nn_hardshrink_fn_type, "hardshrink", "F.hardshrink", lambd_fn_args,
               hardshrink_fn_aliases, hardshrink_func);
NN_PW_OP_TYPE (nn_softshrink_fn_type, "softshrink", "F.softshrink", lambd_fn_args,
               softshrink_fn_aliases, softshrink_func);
NN_PW_OP_TYPE (nn_threshold_fn_type, "threshold", "F.threshold", threshold_fn_args,
               threshold_fn_aliases, threshold_func);
