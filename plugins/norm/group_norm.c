/* GroupNorm: statistics per sample over groups of num_channels /
 * num_groups channels, then a per-channel affine, as torch.nn.GroupNorm;
 * also F.group_norm's spelling through the functional alias. */
#include "norm.h"
#include "norm_stats.h"
#include "../common/nn-layer-util.h"

static const NnSchemaKey group_norm_schema[] = {
  { "num_groups", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "number of channel groups; divides num_channels" },
  { "num_channels", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "channels C of an [N, C, *] input" },
  { "eps", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "1e-05", 0, 0,
    NULL, "added to the variance for numerical stability" },
  { "affine", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "true", 0, 0, NULL,
    "learnable per-channel weight and bias" },
};

static gboolean
group_norm_create (NnModule *self, GError **error)
{
  gint64 g = nn_module_config_int (self, "num_groups");
  gint64 c = nn_module_config_int (self, "num_channels");
  if (c % g != 0) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                 "num_channels must be divisible by num_groups (found "
                 "num_channels=%" G_GINT64_FORMAT ", num_groups=%"
                 G_GINT64_FORMAT ")", c, g);
    return FALSE;
  }
  NnShape cs = { 1, { c } };
  if (nn_module_config_bool (self, "affine")) {
    nn_module_add_parameter (self, "weight", NN_DTYPE_F32, &cs);
    nn_module_add_parameter (self, "bias", NN_DTYPE_F32, &cs);
  }
  return TRUE;
}

static void
group_norm_reset_parameters (NnModule *self, GRand *rng)
{
  nn_lu_fill (self, "weight", 1.0f);
  nn_lu_fill (self, "bias", 0.0f);
}

/* GroupNorm of @input with @g groups; @w and @b (nullable) must hold one
 * value per channel. */
static NnValue *
group_norm_run (NnTensor *input, gint64 g, NnTensor *wt, NnTensor *bt,
                double eps, GError **error)
{
  const NnShape *s = &input->shape;
  if (s->ndim < 2) {
    nn_lu_shape_error (error, "input [N, C, *] of at least 2 dims", s);
    return NULL;
  }
  gint64 c = s->dims[1];
  if (c % g != 0) {
    g_autofree char *found = nn_shape_to_string (s);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Expected number of channels in input to be divisible by "
                 "num_groups, but got input of shape %s and num_groups=%"
                 G_GINT64_FORMAT, found, g);
    return NULL;
  }
  NnTensor *params[] = { wt, bt };
  for (guint k = 0; k < 2; k++)
    if (params[k] && nn_tensor_numel (params[k]) != c) {
      g_autofree char *ws = nn_shape_to_string (&params[k]->shape);
      g_autofree char *found = nn_shape_to_string (s);
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "Expected %s to be a vector of size equal to the number of "
                   "channels in input, but got %s of shape %s and input of "
                   "shape %s", k ? "bias" : "weight", k ? "bias" : "weight",
                   ws, found);
      return NULL;
    }
  gboolean meta = nn_tensor_is_meta (input) || (wt && nn_tensor_is_meta (wt))
                  || (bt && nn_tensor_is_meta (bt));
  NnTensor *out = nn_lu_new_f32 (s, meta);
  if (!out || meta)
    return nn_lu_result (out, error);

  gint64 n = s->dims[0], hw = nn_lu_prod (s, 2, s->ndim), cg = c / g;
  const float *x = nn_tensor_f32 (input);
  g_autofree double *mean = g_new (double, MAX (n * c, 1));
  g_autofree double *var = g_new (double, MAX (n * c, 1));
  for (gint64 b = 0; b < n; b++)
    for (gint64 k = 0; k < g; k++) {
      double m, v;
      nn_norm_moments (x + (b * c + k * cg) * hw, cg * hw, &m, &v);
      for (gint64 j = 0; j < cg; j++) {
        mean[b * c + k * cg + j] = m;
        var[b * c + k * cg + j] = v;
      }
    }
  nn_norm_apply (x, nn_tensor_f32 (out), n, c, hw, mean, var, TRUE,
                 wt ? nn_tensor_f32 (wt) : NULL, bt ? nn_tensor_f32 (bt) : NULL,
                 eps);
  return nn_value_take_tensor (out);
}

static NnValue *
group_norm_forward (NnModule *self, NnCall *call, const NnArgs *args,
                    GError **error)
{
  NnTensor *input = nn_args_tensor (args, 0);
  gint64 c = nn_module_config_int (self, "num_channels");
  if (input->shape.ndim >= 2 && input->shape.dims[1] != c) {
    g_autofree char *found = nn_shape_to_string (&input->shape);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Expected weight to be a vector of size equal to the number "
                 "of channels in input, but got weight of shape [%"
                 G_GINT64_FORMAT "] and input of shape %s", c, found);
    return NULL;
  }
  return group_norm_run (input, nn_module_config_int (self, "num_groups"),
                         nn_module_get_parameter (self, "weight"),
                         nn_module_get_parameter (self, "bias"),
                         nn_module_config_float (self, "eps"), error);
}

static char *
group_norm_extra_repr (NnModule *self)
{
  g_autofree char *eps = nn_module_config_repr (self, "eps");
  return g_strdup_printf ("%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                          ", eps=%s, affine=%s",
                          nn_module_config_int (self, "num_groups"),
                          nn_module_config_int (self, "num_channels"), eps,
                          nn_lu_py_bool (nn_module_config_bool (self, "affine")));
}

static guint64
group_norm_count_macs (NnModule *self, const NnArgs *args, const NnValue *out)
{
  return nn_lu_count_macs_params (self, out, FALSE);
}

const NnLayerType nn_group_norm_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "GroupNorm",
  .doc = "normalisation over channel groups of [N, C, *] input",
  .schema = group_norm_schema,
  .n_schema = G_N_ELEMENTS (group_norm_schema),
  .create = group_norm_create,
  .forward = group_norm_forward,
  .infer = group_norm_forward,
  .extra_repr = group_norm_extra_repr,
  .reset_parameters = group_norm_reset_parameters,
  .count_macs = group_norm_count_macs,
};

/* F.group_norm(input, num_groups, weight=None, bias=None, eps=1e-05). */
static const NnArgSpec group_norm_fn_args[] = {
  { "input", NN_ARG_TENSOR, 0, 0, NULL, "[N, C, *]" },
  { "num_groups", NN_ARG_INT, 0, 0, NULL, "groups; divides C" },
  { "weight", NN_ARG_TENSOR | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "per-channel scale [C]" },
  { "bias", NN_ARG_TENSOR | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "per-channel shift [C]" },
  { "eps", NN_ARG_FLOAT, 0, NN_ARG_OPTIONAL, "1e-05", "added to the variance" },
};

static const char *const group_norm_fn_aliases[] = {
  "torch.nn.functional.group_norm", NULL
};

static gboolean
group_norm_fn_create (NnModule *self, GError **error)
{
  return TRUE;
}

static NnValue *
group_norm_fn_forward (NnModule *self, NnCall *call, const NnArgs *args,
                       GError **error)
{
  gint64 g = nn_args_int (args, 1);
  if (g < 1) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "num_groups must be at least 1, found %" G_GINT64_FORMAT, g);
    return NULL;
  }
  return group_norm_run (nn_args_tensor (args, 0), g, nn_args_tensor (args, 2),
                         nn_args_tensor (args, 3), nn_args_float (args, 4), error);
}

const NnLayerType nn_group_norm_fn_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "group_norm",
  .doc = "F.group_norm: GroupNorm with weight and bias as arguments",
  .flags = NN_LAYER_OP,
  .args = group_norm_fn_args,
  .n_args = G_N_ELEMENTS (group_norm_fn_args),
  .aliases = group_norm_fn_aliases,
  .create = group_norm_fn_create,
  .forward = group_norm_fn_forward,
  .infer = group_norm_fn_forward,
};
