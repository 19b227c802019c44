/* Elementwise module and op types: parameter reading and the apply step
 * shared by LeakyReLU, ELU, Softplus, the shrinks and their functional
 * spellings. */
#include "pointwise.h"
#include "../common/nn-layer-util.h"

double
nn_pw_number (NnModule *self, const char *key)
{
  JsonNode *n = nn_module_config_node (self, key);
  return n ? json_node_get_double (n) : 0.0;
}

gboolean
nn_pw_create (NnModule *self, const NnPwFunc *f, GError **error)
{
  for (guint i = 0; i < f->n_params; i++) {
    JsonNode *n = nn_module_config_node (self, f->params[i]);
    GType t = n && JSON_NODE_HOLDS_VALUE (n) ? json_node_get_value_type (n)
                                             : G_TYPE_INVALID;
    if (t != G_TYPE_INT64 && t != G_TYPE_DOUBLE) {
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_WRONG_KIND,
                   "key '%s' must be a number", f->params[i]);
      return FALSE;
    }
  }
  return TRUE;
}

static NnValue *
apply (const NnPwFunc *f, NnTensor *input, const double *p, GError **error)
{
  if (f->check && !f->check (p, error))
    return NULL;
  NnTensor *out = nn_lu_new_f32 (&input->shape, nn_tensor_is_meta (input));
  if (out && !nn_tensor_is_meta (input))
    f->kernel (nn_tensor_f32 (input), nn_tensor_f32 (out),
               nn_tensor_numel (input), p);
  return nn_lu_result (out, error);
}

NnValue *
nn_pw_module_forward (NnModule *self, const NnPwFunc *f, const NnArgs *args,
                      GError **error)
{
  double p[NN_PW_MAX_PARAMS] = { 0 };
  for (guint i = 0; i < f->n_params; i++)
    p[i] = nn_pw_number (self, f->params[i]);
  return apply (f, nn_args_tensor (args, 0), p, error);
}

NnValue *
nn_pw_op_forward (const NnPwFunc *f, const NnArgs *args, GError **error)
{
  double p[NN_PW_MAX_PARAMS] = { 0 };
  for (guint i = 0; i < f->n_params; i++)
    p[i] = nn_args_float (args, i + 1);
  return apply (f, nn_args_tensor (args, 0), p, error);
}

static NnValue *
apply_backward (const NnPwFunc *f, const NnArgs *args, const NnValue *out,
                const NnValue *grad_out, const double *p, GError **error)
{
  NnTensor *input = nn_args_tensor (args, 0);
  NnTensor *dx = nn_lu_new_f32 (&input->shape, FALSE);
  if (!dx)
    return nn_lu_result (NULL, error);
  const float *x = nn_tensor_f32 (input);
  const float *y = nn_tensor_f32 (nn_value_get_tensor (out));
  const float *g = nn_tensor_f32 (nn_value_get_tensor (grad_out));
  float *d = nn_tensor_f32 (dx);
  for (gint64 i = 0, n = nn_tensor_numel (dx); i < n; i++)
    d[i] = (float) (g[i] * f->deriv (x[i], y[i], p));
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (dx));
  return res;
}

NnValue *
nn_pw_module_backward (NnModule *self, const NnPwFunc *f, const NnArgs *args,
                       const NnValue *out, const NnValue *grad_out,
                       GError **error)
{
  double p[NN_PW_MAX_PARAMS] = { 0 };
  for (guint i = 0; i < f->n_params; i++)
    p[i] = nn_pw_number (self, f->params[i]);
  return apply_backward (f, args, out, grad_out, p, error);
}

NnValue *
nn_pw_op_backward (const NnPwFunc *f, const NnArgs *args, const NnValue *out,
                   const NnValue *grad_out, GError **error)
{
  double p[NN_PW_MAX_PARAMS] = { 0 };
  for (guint i = 0; i < f->n_params; i++)
    p[i] = nn_args_float (args, i + 1);
  return apply_backward (f, args, out, grad_out, p, error);
}

const char *
nn_pw_inplace_suffix (NnModule *self)
{
  return nn_module_config_bool (self, "inplace") ? ", inplace=True" : "";
}

gboolean
nn_pw_create_nothing (NnModule *self, GError **error)
{
  return TRUE;
}
