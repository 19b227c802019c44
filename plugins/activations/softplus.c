/* The smooth rectifiers and squashers: Softplus, Mish, LogSigmoid,
 * Softsign and Tanhshrink, as torch.nn defines them, and their functional
 * spellings. */
#include "pointwise.h"

#include <math.h>

/* p: beta, threshold.  Linear where beta * x > threshold, as PyTorch. */
static void
softplus_kernel (const float *restrict x, float *restrict y, gint64 n,
                 const double *p)
{
  for (gint64 i = 0; i < n; i++) {
    double bx = p[0] * x[i];
    y[i] = bx > p[1] ? x[i] : (float) (log1p (exp (bx)) / p[0]);
  }
}

static void
mish_kernel (const float *restrict x, float *restrict y, gint64 n, const double *p)
{
  for (gint64 i = 0; i < n; i++) {
    double sp = x[i] > 20.0f ? x[i] : log1p (exp (x[i]));
    y[i] = (float) (x[i] * tanh (sp));
  }
}

/* log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)), stable for large |x|. */
static void
log_sigmoid_kernel (const float *restrict x, float *restrict y, gint64 n,
                    const double *p)
{
  for (gint64 i = 0; i < n; i++)
    y[i] = (float) (fmin (x[i], 0.0) - log1p (exp (-fabs (x[i]))));
}

static void
softsign_kernel (const float *restrict x, float *restrict y, gint64 n,
                 const double *p)
{
  for (gint64 i = 0; i < n; i++)
    y[i] = x[i] / (1.0f + fabsf (x[i]));
}

static void
tanhshrink_kernel (const float *restrict x, float *restrict y, gint64 n,
                   const double *p)
{
  for (gint64 i = 0; i < n; i++)
    y[i] = x[i] - tanhf (x[i]);
}

static const char *const softplus_params[] = { "beta", "threshold" };
/* Derivatives as PyTorch's backward formulas write them. */
static double
softplus_deriv (float x, float y, const double *p)
{
  double bx = p[0] * x;
  if (bx > p[1])
    return 1.0;
  double z = exp (bx);
  return z / (z + 1.0);
}

static double
mish_deriv (float x, float y, const double *p)
{
  double sp = x > 20.0f ? x : log1p (exp (x));
  double t = tanh (sp), s = 1.0 / (1.0 + exp (-(double) x));
  return t + x * s * (1.0 - t * t);
}

/* d log(sigmoid(x)) = sigmoid(-x). */
static double
log_sigmoid_deriv (float x, float y, const double *p)
{
  return 1.0 / (1.0 + exp ((double) x));
}

static double
softsign_deriv (float x, float y, const double *p)
{
  double d = 1.0 + fabs ((double) x);
  return 1.0 / (d * d);
}

static double
tanhshrink_deriv (float x, float y, const double *p)
{
  double t = tanh ((double) x);
  return t * t;
}

static const NnPwFunc softplus_func = { softplus_kernel, softplus_params, 2, NULL,
                                        softplus_deriv };
static const NnPwFunc mish_func = { mish_kernel, NULL, 0, NULL, mish_deriv };
static const NnPwFunc log_sigmoid_func = { log_sigmoid_kernel, NULL, 0, NULL,
                                           log_sigmoid_deriv };
static const NnPwFunc softsign_func = { softsign_kernel, NULL, 0, NULL, softsign_deriv };
static const NnPwFunc tanhshrink_func = { tanhshrink_kernel, NULL, 0, NULL,
                                          tanhshrink_deriv };

static const NnSchemaKey softplus_schema[] = {
  NN_PW_NUMBER_KEY ("beta", "1", "sharpness: log(1 + exp(beta * x)) / beta"),
  NN_PW_NUMBER_KEY ("threshold", "20", "linear above beta * x > threshold"),
};
static const NnSchemaKey mish_schema[] = { NN_PW_INPLACE_KEY };

static char *
softplus_extra_repr (NnModule *self)
{
  g_autofree char *b = nn_module_config_repr (self, "beta");
  g_autofree char *t = nn_module_config_repr (self, "threshold");
  return g_strdup_printf ("beta=%s, threshold=%s", b, t);
}

static char *
mish_extra_repr (NnModule *self)
{
  return nn_module_config_bool (self, "inplace") ? g_strdup ("inplace=True") : NULL;
}

NN_PW_MODULE_TYPE (nn_softplus_type, "Softplus", "log(1 + exp(beta * x)) / beta",
                   softplus_schema, G_N_ELEMENTS (softplus_schema), softplus_func, softplus_extra_repr);
NN_PW_MODULE_TYPE (nn_mish_type, "Mish", "x * tanh(softplus(x))", mish_schema,
                   G_N_ELEMENTS (mish_schema), mish_func, mish_extra_repr);
NN_PW_MODULE_TYPE (nn_log_sigmoid_type, "LogSigmoid", "log(sigmoid(x))", NULL,
                   0, log_sigmoid_func, NULL);
NN_PW_MODULE_TYPE (nn_softsign_type, "Softsign", "x / (1 + |x|)", NULL, 0,
                   softsign_func, NULL);
NN_PW_MODULE_TYPE (nn_tanhshrink_type, "Tanhshrink", "x - tanh(x)", NULL, 0,
                   tanhshrink_func, NULL);

static const NnArgSpec softplus_fn_args[] = {
  NN_PW_INPUT_ARG,
  { "beta", NN_ARG_FLOAT, 0, NN_ARG_OPTIONAL, "1", "sharpness" },
  { "threshold", NN_ARG_FLOAT, 0, NN_ARG_OPTIONAL, "20",
    "linear above beta * x > threshold" },
};
static const NnArgSpec mish_fn_args[] = { NN_PW_INPUT_ARG, NN_PW_INPLACE_ARG };
static const NnArgSpec input_fn_args[] = { NN_PW_INPUT_ARG };

static const char *const softplus_fn_aliases[] = { "torch.nn.functional.softplus", NULL };
static const char *const mish_fn_aliases[] = { "torch.nn.functional.mish", NULL };
static const char *const log_sigmoid_fn_aliases[] = { "torch.nn.functional.logsigmoid", NULL };
static const char *const softsign_fn_aliases[] = { "torch.nn.functional.softsign", NULL };
static const char *const tanhshrink_fn_aliases[] = { "torch.nn.functional.tanhshrink", NULL };

NN_PW_OP_TYPE (nn_softplus_fn_type, "softplus", "F.softplus", softplus_fn_args,
               softplus_fn_aliases, softplus_func);
NN_PW_OP_TYPE (nn_mish_fn_type, "mish", "F.mish", mish_fn_args, mish_fn_aliases,
               mish_func);
NN_PW_OP_TYPE (nn_log_sigmoid_fn_type, "logsigmoid", "F.logsigmoid", input_fn_args,
               log_sigmoid_fn_aliases, log_sigmoid_func);
NN_PW_OP_TYPE (nn_softsign_fn_type, "softsign", "F.softsign", input_fn_args,
               softsign_fn_aliases, softsign_func);
NN_PW_OP_TYPE (nn_tanhshrink_fn_type, "tanhshrink", "F.tanhshrink", input_fn_args,
               tanhshrink_fn_aliases, tanhshrink_func);
