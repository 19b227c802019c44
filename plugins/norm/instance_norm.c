/* InstanceNorm1d and InstanceNorm2d: statistics per sample and channel
 * over the spatial dims, as torch.nn.InstanceNormNd in eval mode: with
 * track_running_stats the running statistics are used instead.  Batched
 * ([N, C, *]) and unbatched ([C, *]) inputs. */
#include "norm.h"
#include "norm_stats.h"
#include "../common/nn-layer-util.h"

static const NnSchemaKey instance_norm_schema[] = {
  { "num_features", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "channels C of an [N, C, *] or [C, *] input" },
  { "eps", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "1e-05", 0, 0,
    NULL, "added to the variance for numerical stability" },
  { "momentum", NN_KIND_FLOAT, 0,
    NN_KEY_OPTIONAL | NN_KEY_NULLABLE | NN_KEY_HAS_MIN | NN_KEY_HAS_MAX, "0.1",
    0, 1, NULL, "running statistics update factor (training only)" },
  { "affine", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "learnable per-channel weight and bias" },
  { "track_running_stats", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0,
    NULL, "keep running_mean and running_var buffers, used in eval mode" },
};

static gboolean
instance_norm_create (NnModule *self, GError **error)
{
  NnShape c = { 1, { nn_module_config_int (self, "num_features") } };
  NnShape scalar = { 0 };
  if (nn_module_config_bool (self, "affine")) {
    nn_module_add_parameter (self, "weight", NN_DTYPE_F32, &c);
    nn_module_add_parameter (self, "bias", NN_DTYPE_F32, &c);
  }
  if (nn_module_config_bool (self, "track_running_stats")) {
    nn_module_add_buffer (self, "running_mean", NN_DTYPE_F32, &c, TRUE);
    nn_module_add_buffer (self, "running_var", NN_DTYPE_F32, &c, TRUE);
    nn_module_add_buffer (self, "num_batches_tracked", NN_DTYPE_I64, &scalar,
                          TRUE);
  }
  return TRUE;
}

static void
instance_norm_reset_parameters (NnModule *self, GRand *rng)
{
  nn_lu_fill (self, "weight", 1.0f);
  nn_lu_fill (self, "bias", 0.0f);
  nn_lu_fill (self, "running_mean", 0.0f);
  nn_lu_fill (self, "running_var", 1.0f);
  NnTensor *nbt = nn_module_get_buffer (self, "num_batches_tracked");
  if (nbt)
    *nn_tensor_i64 (nbt) = 0;
}

/* @spatial: 1 for InstanceNorm1d, 2 for InstanceNorm2d. */
static NnValue *
instance_norm_run (NnModule *self, const NnArgs *args, guint spatial,
                   GError **error)
{
  NnTensor *input = nn_args_tensor (args, 0);
  const NnShape *s = &input->shape;
  gint64 c = nn_module_config_int (self, "num_features");
  if (s->ndim != spatial + 1 && s->ndim != spatial + 2) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "expected %uD or %uD input (got %uD input)", spatial + 1,
                 spatial + 2, s->ndim);
    return NULL;
  }
  gboolean batched = s->ndim == spatial + 2;
  gint64 n = batched ? s->dims[0] : 1;
  gint64 ch = s->dims[batched ? 1 : 0];
  gint64 hw = nn_lu_prod (s, batched ? 2 : 1, s->ndim);
  gboolean tracked = nn_module_config_bool (self, "track_running_stats");
  if (ch != c && (tracked || nn_module_config_bool (self, "affine"))) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "expected input's size at dim=%d to match num_features (%"
                 G_GINT64_FORMAT "), but got: %" G_GINT64_FORMAT ".",
                 batched ? 1 : 0, c, ch);
    return NULL;
  }
  if (!tracked && hw <= 1) {
    g_autofree char *found = nn_shape_to_string (s);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Expected more than 1 spatial element when training, got "
                 "input size %s", found);
    return NULL;
  }
  NnTensor *out = nn_lu_new_f32 (s, nn_tensor_is_meta (input));
  if (!out || nn_tensor_is_meta (input))
    return nn_lu_result (out, error);

  const float *x = nn_tensor_f32 (input);
  g_autofree double *mean = g_new (double, n * ch);
  g_autofree double *var = g_new (double, n * ch);
  if (tracked) {
    const float *rm = nn_tensor_f32 (nn_module_get_buffer (self, "running_mean"));
    const float *rv = nn_tensor_f32 (nn_module_get_buffer (self, "running_var"));
    for (gint64 i = 0; i < n * ch; i++) {
      mean[i] = rm[i % ch];
      var[i] = rv[i % ch];
    }
  } else {
    for (gint64 i = 0; i < n * ch; i++)
      nn_norm_moments (x + i * hw, hw, &mean[i], &var[i]);
  }
  NnTensor *wt = nn_module_get_parameter (self, "weight");
  NnTensor *bt = nn_module_get_parameter (self, "bias");
  nn_norm_apply (x, nn_tensor_f32 (out), n, ch, hw, mean, var, TRUE,
                 wt ? nn_tensor_f32 (wt) : NULL, bt ? nn_tensor_f32 (bt) : NULL,
                 nn_module_config_float (self, "eps"));
  return nn_value_take_tensor (out);
}

static NnValue *
instance_norm1d_forward (NnModule *self, NnCall *call, const NnArgs *args,
                         GError **error)
{
  return instance_norm_run (self, args, 1, error);
}

static NnValue *
instance_norm2d_forward (NnModule *self, NnCall *call, const NnArgs *args,
                         GError **error)
{
  return instance_norm_run (self, args, 2, error);
}

char *
nn_norm_batch_extra_repr (NnModule *self)
{
  g_autofree char *eps = nn_module_config_repr (self, "eps");
  g_autofree char *mom = nn_module_config_repr (self, "momentum");
  return g_strdup_printf ("%" G_GINT64_FORMAT ", eps=%s, momentum=%s, "
                          "affine=%s, track_running_stats=%s",
                          nn_module_config_int (self, "num_features"), eps, mom,
                          nn_lu_py_bool (nn_module_config_bool (self, "affine")),
                          nn_lu_py_bool (nn_module_config_bool (self, "track_running_stats")));
}

guint64
nn_norm_count_macs (NnModule *self, const NnArgs *args, const NnValue *out)
{
  return nn_lu_count_macs_params (self, out, FALSE);
}

const NnLayerType nn_instance_norm1d_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "InstanceNorm1d",
  .doc = "per-sample, per-channel normalisation of [N, C, L] or [C, L] input",
  .schema = instance_norm_schema,
  .n_schema = G_N_ELEMENTS (instance_norm_schema),
  .create = instance_norm_create,
  .forward = instance_norm1d_forward,
  .infer = instance_norm1d_forward,
  .extra_repr = nn_norm_batch_extra_repr,
  .reset_parameters = instance_norm_reset_parameters,
  .count_macs = nn_norm_count_macs,
};

const NnLayerType nn_instance_norm2d_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "InstanceNorm2d",
  .doc = "per-sample, per-channel normalisation of [N, C, H, W] or [C, H, W] input",
  .schema = instance_norm_schema,
  .n_schema = G_N_ELEMENTS (instance_norm_schema),
  .create = instance_norm_create,
  .forward = instance_norm2d_forward,
  .infer = instance_norm2d_forward,
  .extra_repr = nn_norm_batch_extra_repr,
  .reset_parameters = instance_norm_reset_parameters,
  .count_macs = nn_norm_count_macs,
};
