/* LogSoftmax and Softmin along one dim, as torch.nn.LogSoftmax and
 * Softmin, with PyTorch's legacy implicit dim when dim is None (0 for
 * 0-, 1- and 3-d input, else 1).  The functional log_softmax is the ops
 * plugin's. */
#include "pointwise.h"
#include "../common/nn-layer-util.h"
#include "../common/nn-grad-util.h"

static const NnSchemaKey dim_schema[] = {
  { "dim", NN_KIND_INT, 0, NN_KEY_OPTIONAL | NN_KEY_NULLABLE, "null", 0, 0,
    NULL, "dimension reduced over, negative from the end; None: PyTorch's "
    "implicit choice" },
};

/* @negate: Softmin, softmax of -x; else log(softmax(x)). */
static NnValue *
run (NnModule *self, const NnArgs *args, gboolean negate, GError **error)
{
  NnTensor *input = nn_args_tensor (args, 0);
  const NnShape *s = &input->shape;
  gint64 d = nn_module_config_is_null (self, "dim")
                 ? ((s->ndim == 0 || s->ndim == 1 || s->ndim == 3) ? 0 : 1)
                 : nn_module_config_int (self, "dim");
  guint dim;
  if (!nn_lu_wrap_dim (d, s->ndim, &dim, error))
    return NULL;
  NnTensor *out = nn_lu_new_f32 (s, nn_tensor_is_meta (input));
  if (!out || nn_tensor_is_meta (input))
    return nn_lu_result (out, error);
  gint64 len = s->ndim ? s->dims[dim] : 1;
  gint64 outer = nn_lu_prod (s, 0, dim), inner = nn_lu_prod (s, dim + 1, s->ndim);
  const float *x = nn_tensor_f32 (input);
  float *y = nn_tensor_f32 (out);
  const double sign = negate ? -1.0 : 1.0;
  for (gint64 o = 0; o < outer; o++)
    for (gint64 i = 0; i < inner; i++) {
      const float *src = x + o * len * inner + i;
      float *dst = y + o * len * inner + i;
      double mx = -INFINITY, sum = 0.0;
      for (gint64 k = 0; k < len; k++)
        mx = fmax (mx, sign * src[k * inner]);
      for (gint64 k = 0; k < len; k++)
        sum += exp (sign * src[k * inner] - mx);
      double lse = mx + log (sum);
      for (gint64 k = 0; k < len; k++) {
        double v = sign * src[k * inner] - lse;
        dst[k * inner] = (float) (negate ? exp (v) : v);
      }
    }
  return nn_value_take_tensor (out);
}

/* Log-softmax's gradient from its output; Softmin's is softmax's,
 * negated (the input was -x). */
static NnValue *
run_backward (NnModule *self, const NnArgs *args, const NnValue *out,
              const NnValue *grad_out, gboolean negate, GError **error)
{
  const NnShape *s = &nn_args_tensor (args, 0)->shape;
  gint64 d = nn_module_config_is_null (self, "dim")
                 ? ((s->ndim == 0 || s->ndim == 1 || s->ndim == 3) ? 0 : 1)
                 : nn_module_config_int (self, "dim");
  guint dim;
  if (!nn_lu_wrap_dim (d, s->ndim, &dim, error))
    return NULL;
  NnTensor *dx = nn_tensor_new (NN_DTYPE_F32, s);
  if (!dx)
    return nn_lu_result (NULL, error);
  gint64 len = s->ndim ? s->dims[dim] : 1;
  nn_grad_softmax (nn_tensor_f32 (nn_value_get_tensor (out)),
                   nn_tensor_f32 (nn_value_get_tensor (grad_out)),
                   nn_tensor_f32 (dx), nn_lu_prod (s, 0, dim), len,
                   nn_lu_prod (s, dim + 1, s->ndim), !negate,
                   negate ? -1.0f : 1.0f);
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (dx));
  return res;
}

static NnValue *
log_softmax_backward (NnModule *self, NnCall *call, const NnArgs *args,
                      const NnValue *out, const NnValue *grad_out, GError **error)
{
  return run_backward (self, args, out, grad_out, FALSE, error);
}

static NnValue *
softmin_backward (NnModule *self, NnCall *call, const NnArgs *args,
                  const NnValue *out, const NnValue *grad_out, GError **error)
{
  return run_backward (self, args, out, grad_out, TRUE, error);
}

static NnValue *
log_softmax_forward (NnModule *self, NnCall *call, const NnArgs *args,
                     GError **error)
{
  return run (self, args, FALSE, error);
}

static NnValue *
softmin_forward (NnModule *self, NnCall *call, const NnArgs *args,
                 GError **error)
{
  return run (self, args, TRUE, error);
}

static char *
dim_extra_repr (NnModule *self)
{
  g_autofree char *d = nn_module_config_repr (self, "dim");
  return g_strdup_printf ("dim=%s", d);
}

const NnLayerType nn_log_softmax_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "LogSoftmax",
  .doc = "log(softmax(x)) along dim",
  .schema = dim_schema,
  .n_schema = G_N_ELEMENTS (dim_schema),
  .create = nn_pw_create_nothing,
  .forward = log_softmax_forward,
  .backward = log_softmax_backward,
  .infer = log_softmax_forward,
  .extra_repr = dim_extra_repr,
};

const NnLayerType nn_softmin_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Softmin",
  .doc = "softmax(-x) along dim",
  .schema = dim_schema,
  .n_schema = G_N_ELEMENTS (dim_schema),
  .create = nn_pw_create_nothing,
  .forward = softmin_forward,
  .backward = softmin_backward,
  .infer = softmin_forward,
  .extra_repr = dim_extra_repr,
};
