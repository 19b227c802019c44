/* LayerNorm: normalises over the last len(normalized_shape) dims with
 * per-element affine parameters of that shape, as torch.nn.LayerNorm
 * (1.13: no separate `bias` switch). */
#include "norm.h"
#include "norm_stats.h"
#include "../common/nn-layer-util.h"

#include <nnkit/train.h>

static const NnSchemaKey layer_norm_schema[] = {
  { "normalized_shape", NN_KIND_JSON, 0, 0, NULL, 0, 0, NULL,
    "trailing shape to normalise over: an int or a list of ints" },
  { "eps", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "1e-05", 0, 0,
    NULL, "added to the variance for numerical stability" },
  { "elementwise_affine", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "true", 0, 0,
    NULL, "learnable weight and bias of normalized_shape" },
};

typedef struct {
  NnShape norm; /* normalized_shape */
} LayerNorm;

/* Reads an int or a list of ints >= 1 into @out, as PyTorch turns an int
 * into a 1-tuple. */
static gboolean
read_norm_shape (JsonNode *node, NnShape *out, GError **error)
{
  out->ndim = 0;
  if (JSON_NODE_HOLDS_VALUE (node)
      && json_node_get_value_type (node) == G_TYPE_INT64) {
    out->ndim = 1;
    out->dims[0] = json_node_get_int (node);
  } else if (JSON_NODE_HOLDS_ARRAY (node)) {
    JsonArray *a = json_node_get_array (node);
    guint n = json_array_get_length (a);
    if (n == 0 || n > NN_MAX_DIMS)
      goto bad;
    for (guint i = 0; i < n; i++) {
      JsonNode *e = json_array_get_element (a, i);
      if (!JSON_NODE_HOLDS_VALUE (e)
          || json_node_get_value_type (e) != G_TYPE_INT64)
        goto bad;
      out->dims[out->ndim++] = json_node_get_int (e);
    }
  } else {
    goto bad;
  }
  for (guint i = 0; i < out->ndim; i++)
    if (out->dims[i] < 1)
      goto bad;
  return TRUE;
bad:
  g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_WRONG_KIND,
               "key 'normalized_shape' must be an int >= 1 or a list of 1 to "
               "%d such ints", NN_MAX_DIMS);
  return FALSE;
}

static gboolean
layer_norm_create (NnModule *self, GError **error)
{
  LayerNorm *ln = g_new0 (LayerNorm, 1);
  nn_module_set_private (self, ln);
  if (!read_norm_shape (nn_module_config_node (self, "normalized_shape"),
                        &ln->norm, error))
    return FALSE;
  if (nn_module_config_bool (self, "elementwise_affine")) {
    nn_module_add_parameter (self, "weight", NN_DTYPE_F32, &ln->norm);
    nn_module_add_parameter (self, "bias", NN_DTYPE_F32, &ln->norm);
  }
  return TRUE;
}

static void
layer_norm_destroy (NnModule *self)
{
  g_free (nn_module_get_private (self));
}

static void
layer_norm_reset_parameters (NnModule *self, GRand *rng)
{
  nn_lu_fill (self, "weight", 1.0f);
  nn_lu_fill (self, "bias", 0.0f);
}

/* "[4, 5]" and "[*, 4, 5]" as PyTorch's message prints them. */
static gboolean
check_input (const LayerNorm *ln, const NnShape *in, GError **error)
{
  gboolean ok = in->ndim >= ln->norm.ndim;
  for (guint i = 0; ok && i < ln->norm.ndim; i++)
    ok = in->dims[in->ndim - ln->norm.ndim + i] == ln->norm.dims[i];
  if (ok)
    return TRUE;
  g_autofree char *ns = nn_shape_to_string (&ln->norm);
  g_autofree char *found = nn_shape_to_string (in);
  g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
               "Given normalized_shape=%s, expected input with shape [*, %.*s], "
               "but got input of size%s", ns, (int) strlen (ns) - 2, ns + 1,
               found);
  return FALSE;
}

static NnValue *
layer_norm_forward (NnModule *self, NnCall *call, const NnArgs *args,
                    GError **error)
{
  const LayerNorm *ln = nn_module_get_private (self);
  NnTensor *input = nn_args_tensor (args, 0);
  if (!check_input (ln, &input->shape, error))
    return NULL;
  NnTensor *out = nn_lu_new_f32 (&input->shape, nn_tensor_is_meta (input));
  if (!out || nn_tensor_is_meta (input))
    return nn_lu_result (out, error);

  gint64 d = nn_shape_numel (&ln->norm);
  gint64 rows = d > 0 ? nn_tensor_numel (input) / d : 0;
  const float *x = nn_tensor_f32 (input);
  float *y = nn_tensor_f32 (out);
  NnTensor *wt = nn_module_get_parameter (self, "weight");
  NnTensor *bt = nn_module_get_parameter (self, "bias");
  const float *w = wt ? nn_tensor_f32 (wt) : NULL;
  const float *b = bt ? nn_tensor_f32 (bt) : NULL;
  double eps = nn_module_config_float (self, "eps");
  for (gint64 r = 0; r < rows; r++) {
    double mean, var;
    nn_norm_moments (x + r * d, d, &mean, &var);
    const float rstd = (float) (1.0 / sqrt (var + eps));
    const float m = (float) mean;
    const float *restrict src = x + r * d;
    float *restrict dst = y + r * d;
    for (gint64 i = 0; i < d; i++) {
      float v = (src[i] - m) * rstd;
      dst[i] = w ? v * w[i] + b[i] : v;
    }
  }
  return nn_value_take_tensor (out);
}

/* Per row, with xhat = (x - mean) * rstd and h = g * weight:
 * dx = rstd * (h - mean(h) - xhat * mean(h * xhat)); d weight += g * xhat,
 * d bias += g (PyTorch's layer_norm_backward), sums in double. */
static NnValue *
layer_norm_backward (NnModule *self, NnCall *call, const NnArgs *args,
                     const NnValue *out, const NnValue *grad_out,
                     GError **error)
{
  const LayerNorm *ln = nn_module_get_private (self);
  NnTensor *input = nn_args_tensor (args, 0);
  NnTensor *dxt = nn_tensor_new (NN_DTYPE_F32, &input->shape);
  if (!dxt)
    return nn_lu_result (NULL, error);
  gint64 d = nn_shape_numel (&ln->norm);
  gint64 rows = d > 0 ? nn_tensor_numel (input) / d : 0;
  const float *x = nn_tensor_f32 (input);
  const float *g = nn_tensor_f32 (nn_value_get_tensor (grad_out));
  float *dx = nn_tensor_f32 (dxt);
  NnTensor *wt = nn_module_get_parameter (self, "weight");
  const float *w = wt ? nn_tensor_f32 (wt) : NULL;
  float *dw = wt ? nn_module_grad_f32 (self, "weight") : NULL;
  float *db = wt ? nn_module_grad_f32 (self, "bias") : NULL;
  double eps = nn_module_config_float (self, "eps");
  g_autofree double *xhat = g_new (double, MAX (d, 1));
  for (gint64 r = 0; r < rows; r++) {
    const float *src = x + r * d, *gr = g + r * d;
    double mean, var;
    nn_norm_moments (src, d, &mean, &var);
    double rstd = 1.0 / sqrt (var + eps), sh = 0.0, shx = 0.0;
    for (gint64 i = 0; i < d; i++) {
      xhat[i] = (src[i] - mean) * rstd;
      double h = w ? (double) gr[i] * w[i] : gr[i];
      sh += h;
      shx += h * xhat[i];
      if (dw)
        dw[i] += (float) (gr[i] * xhat[i]);
      if (db)
        db[i] += gr[i];
    }
    sh /= (double) d;
    shx /= (double) d;
    for (gint64 i = 0; i < d; i++) {
      double h = w ? (double) gr[i] * w[i] : gr[i];
      dx[r * d + i] = (float) (rstd * (h - sh - xhat[i] * shx));
    }
  }
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (dxt));
  return res;
}

static char *
layer_norm_extra_repr (NnModule *self)
{
  const LayerNorm *ln = nn_module_get_private (self);
  GString *s = g_string_new ("(");
  for (guint i = 0; i < ln->norm.ndim; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? ", " : "",
                            ln->norm.dims[i]);
  g_string_append (s, ln->norm.ndim == 1 ? ",)" : ")");
  g_autofree char *eps = nn_module_config_repr (self, "eps");
  g_string_append_printf (s, ", eps=%s, elementwise_affine=%s", eps,
                          nn_lu_py_bool (nn_module_config_bool (self, "elementwise_affine")));
  return g_string_free (s, FALSE);
}

static guint64
layer_norm_count_macs (NnModule *self, const NnArgs *args, const NnValue *out)
{
  return nn_lu_count_macs_params (self, out, FALSE);
}

const NnLayerType nn_layer_norm_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "LayerNorm",
  .doc = "normalisation over the trailing normalized_shape dims",
  .schema = layer_norm_schema,
  .n_schema = G_N_ELEMENTS (layer_norm_schema),
  .create = layer_norm_create,
  .destroy = layer_norm_destroy,
  .forward = layer_norm_forward,
  .backward = layer_norm_backward,
  .infer = layer_norm_forward,
  .extra_repr = layer_norm_extra_repr,
  .reset_parameters = layer_norm_reset_parameters,
  .count_macs = layer_norm_count_macs,
};
