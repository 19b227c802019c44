/* loss plugin: entry point and the helpers shared by the losses. */
#include "loss.h"

#include <string.h>

const char *const nn_loss_reductions[] = { "none", "mean", "sum", NULL };

static const NnLayerType *const loss_types[] = {
  &nn_cross_entropy_loss_type,
  &nn_mse_loss_type,
  &nn_bce_with_logits_loss_type,
};

gboolean
nn_loss_reduction (NnModule *self, const NnArgs *args, guint i,
                   NnLossReduction *out, GError **error)
{
  NnValue *v = nn_args_get (args, i);
  const char *s = nn_value_is_none (v) ? nn_module_config_string (self, "reduction")
                                       : nn_value_get_string (v);
  for (guint k = 0; nn_loss_reductions[k]; k++)
    if (s && strcmp (s, nn_loss_reductions[k]) == 0) {
      *out = (NnLossReduction) k;
      return TRUE;
    }
  g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_ARGUMENTS,
               "reduction '%s' is not valid (expected 'none', 'mean' or "
               "'sum')", s ? s : "");
  return FALSE;
}

gboolean
nn_loss_refuse_tensor (const NnArgs *args, guint i, const char *name,
                       GError **error)
{
  if (nn_value_is_none (nn_args_get (args, i)))
    return TRUE;
  g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_ARGUMENTS,
               "%s is not supported by nnkit's losses; only None", name);
  return FALSE;
}

NnValue *
nn_loss_scalar (double v)
{
  NnShape s = { 0 };
  NnTensor *t = nn_tensor_new (NN_DTYPE_F32, &s);
  nn_tensor_f32 (t)[0] = (float) v;
  return nn_value_take_tensor (t);
}

double
nn_loss_grad_scale (NnLossReduction r, const float *g, gint64 i, gint64 count)
{
  if (r == NN_LOSS_NONE)
    return g[i];
  if (r == NN_LOSS_SUM)
    return g[0];
  return (double) g[0] / (double) count;
}

NnValue *
nn_loss_grads (NnTensor *a, NnTensor *b)
{
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, a ? nn_value_take_tensor (a) : nn_value_new_none ());
  nn_value_append (res, b ? nn_value_take_tensor (b) : nn_value_new_none ());
  return res;
}

gboolean
nn_loss_same_shape (NnTensor *input, NnTensor *target, GError **error)
{
  if (nn_shape_equal (&input->shape, &target->shape))
    return TRUE;
  g_autofree char *a = nn_shape_to_string (&input->shape);
  g_autofree char *b = nn_shape_to_string (&target->shape);
  g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
               "target shape %s must equal the input shape %s", b, a);
  return FALSE;
}

NnValue *
nn_loss_pointwise (NnTensor *x, NnTensor *y, NnLossReduction r,
                   NnLossElem elem)
{
  const float *xd = nn_tensor_f32 (x), *yd = nn_tensor_f32 (y);
  gint64 n = nn_tensor_numel (x);
  NnTensor *e = nn_tensor_new (NN_DTYPE_F32, &x->shape);
  float *ed = nn_tensor_f32 (e);
  double total = 0.0;
  for (gint64 i = 0; i < n; i++) {
    double l = elem (xd[i], yd[i]);
    ed[i] = (float) l;
    total += l;
  }
  if (r == NN_LOSS_NONE)
    return nn_value_take_tensor (e);
  nn_tensor_unref (e);
  return nn_loss_scalar (r == NN_LOSS_SUM ? total : total / (double) n);
}

NnValue *
nn_loss_pointwise_backward (NnTensor *x, NnTensor *y, NnLossReduction r,
                            const NnValue *grad_out, NnLossElemGrad grad)
{
  const float *xd = nn_tensor_f32 (x), *yd = nn_tensor_f32 (y);
  const float *g = nn_tensor_f32 (nn_value_get_tensor (grad_out));
  gint64 n = nn_tensor_numel (x);
  NnTensor *dx = nn_tensor_new (NN_DTYPE_F32, &x->shape);
  NnTensor *dy = nn_tensor_new (NN_DTYPE_F32, &x->shape);
  float *a = nn_tensor_f32 (dx), *b = nn_tensor_f32 (dy);
  for (gint64 i = 0; i < n; i++) {
    double sc = nn_loss_grad_scale (r, g, i, n), da, db;
    grad (xd[i], yd[i], &da, &db);
    a[i] = (float) (da * sc);
    b[i] = (float) (db * sc);
  }
  return nn_loss_grads (dx, dy);
}

static gboolean
loss_init (NnPlugin *plugin, GError **error)
{
  for (gsize i = 0; i < G_N_ELEMENTS (loss_types); i++)
    if (!nn_plugin_register_type (plugin, loss_types[i], error))
      return FALSE;
  return TRUE;
}

NN_PLUGIN_DEFINE ("loss", "0.1.0", "MIT",
                  "CrossEntropyLoss, MSELoss and BCEWithLogitsLoss with backward",
                  loss_init)
