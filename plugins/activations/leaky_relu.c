/* LeakyReLU: x > 0 ? x : negative_slope * x, as torch.nn.LeakyReLU, and
 * F.leaky_relu(input, negative_slope, inplace); RReLU and F.rrelu, its
 * randomised form: x >= 0 ? x : a * x.  In eval a is the fixed slope
 * (lower + upper) / 2, as PyTorch's; in training each negative element
 * draws a from U(lower, upper) with the call's generator (seeded by the
 * tape, docs/TRAINING.md).  (One file: the oneDNN plugin builds the
 * family's type table from a fixed list of this family's files.) */
#include "activations.h"
#include "pointwise.h"

#include <nnkit/train.h>

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

static const NnSchemaKey rrelu_schema[] = {
  NN_PW_NUMBER_KEY ("lower", "0.125", "lower bound of the negative slope"),
  NN_PW_NUMBER_KEY ("upper", "0.3333333333333333", "upper bound of the negative slope"),
  NN_PW_INPLACE_KEY,
};

/* F.rrelu(input, lower=1/8, upper=1/3, training=False, inplace=False). */
static const NnArgSpec rrelu_fn_args[] = {
  NN_ACT_INPUT_ARG,
  { "lower", NN_ARG_FLOAT, 0, NN_ARG_OPTIONAL, "0.125", "lower bound of the slope" },
  { "upper", NN_ARG_FLOAT, 0, NN_ARG_OPTIONAL, "0.3333333333333333",
    "upper bound of the slope" },
  { "training", NN_ARG_BOOL, 0, NN_ARG_OPTIONAL, "false", "draw random slopes" },
  NN_ACT_INPLACE_ARG,
};

static const char *const rrelu_params[] = { "lower", "upper" };
static const NnPwFunc rrelu_keys = { .params = rrelu_params, .n_params = 2 };

static gboolean
rrelu_create (NnModule *self, GError **error)
{
  return nn_pw_create (self, &rrelu_keys, error);
}

static NnValue *
rrelu_run (NnCall *call, const NnArgs *args, double lower, double upper,
           gboolean training, GError **error)
{
  NnTensor *x = nn_args_tensor (args, 0);
  NnTensor *y = nn_act_alloc_full (&x->shape, error);
  if (!y)
    return NULL;
  const float *xd = nn_tensor_f32 (x);
  float *yd = nn_tensor_f32 (y);
  gint64 n = nn_tensor_numel (x);
  if (training) {
    GRand *rng = nn_call_get_rng (call);
    for (gint64 i = 0; i < n; i++)
      yd[i] = xd[i] >= 0.0f ? xd[i]
                            : xd[i] * (float) g_rand_double_range (rng, lower, upper);
  } else {
    const float a = (float) ((lower + upper) / 2.0);
    for (gint64 i = 0; i < n; i++)
      yd[i] = xd[i] >= 0.0f ? xd[i] : xd[i] * a;
  }
  return nn_value_take_tensor (y);
}

/* The slope each element got, read back from the output where the input
 * is negative (a draw in training), 1 elsewhere. */
static NnValue *
rrelu_grad (const NnArgs *args, const NnValue *out, const NnValue *grad_out,
            GError **error)
{
  NnTensor *x = nn_args_tensor (args, 0), *y = nn_value_get_tensor (out);
  NnTensor *g = nn_value_get_tensor (grad_out);
  NnTensor *dx = nn_act_alloc_full (&x->shape, error);
  if (!dx)
    return NULL;
  const float *xd = nn_tensor_f32 (x), *yd = nn_tensor_f32 (y), *gd = nn_tensor_f32 (g);
  float *d = nn_tensor_f32 (dx);
  for (gint64 i = 0, n = nn_tensor_numel (x); i < n; i++)
    d[i] = xd[i] < 0.0f ? gd[i] * (yd[i] / xd[i]) : gd[i];
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (dx));
  return res;
}

static NnValue *
rrelu_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return rrelu_run (call, args, nn_pw_number (self, "lower"), nn_pw_number (self, "upper"),
                    nn_module_is_training (self), error);
}

static NnValue *
rrelu_backward (NnModule *self, NnCall *call, const NnArgs *args, const NnValue *out,
                const NnValue *grad_out, GError **error)
{
  return rrelu_grad (args, out, grad_out, error);
}

static NnValue *
rrelu_fn_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return rrelu_run (call, args, nn_args_float (args, 1), nn_args_float (args, 2),
                    nn_args_bool (args, 3), error);
}

static NnValue *
rrelu_fn_backward (NnModule *self, NnCall *call, const NnArgs *args, const NnValue *out,
                   const NnValue *grad_out, GError **error)
{
  return rrelu_grad (args, out, grad_out, error);
}

/* The shape only: inference never draws from the generator. */
static NnValue *
rrelu_infer (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return nn_act_infer_same (self, call, args, error);
}

static char *
rrelu_extra_repr (NnModule *self)
{
  g_autofree char *lo = nn_module_config_repr (self, "lower");
  g_autofree char *hi = nn_module_config_repr (self, "upper");
  return g_strdup_printf ("lower=%s, upper=%s%s", lo, hi, nn_pw_inplace_suffix (self));
}

const NnLayerType nn_rrelu_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "RReLU",
  .doc = "x if x >= 0 else a * x; a = (lower + upper) / 2 in eval, U(lower, upper) in training",
  .schema = rrelu_schema,
  .n_schema = G_N_ELEMENTS (rrelu_schema),
  .args = nn_act_input_args,
  .n_args = G_N_ELEMENTS (nn_act_input_args),
  .create = rrelu_create,
  .infer = rrelu_infer,
  .forward = rrelu_forward,
  .backward = rrelu_backward,
  .extra_repr = rrelu_extra_repr,
};

static const char *const rrelu_fn_aliases[] = { "torch.nn.functional.rrelu", NULL };

const NnLayerType nn_rrelu_fn_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "rrelu",
  .doc = "F.rrelu: RReLU with its bounds and training flag as arguments",
  .flags = NN_LAYER_OP,
  .args = rrelu_fn_args,
  .n_args = G_N_ELEMENTS (rrelu_fn_args),
  .aliases = rrelu_fn_aliases,
  .create = nn_act_create_nothing,
  .infer = rrelu_infer,
  .forward = rrelu_fn_forward,
  .backward = rrelu_fn_backward,
};
