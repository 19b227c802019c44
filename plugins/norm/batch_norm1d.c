/* BatchNorm1d: [N, C] or [N, C, L] input normalised per channel, and
 * BatchNorm3d: [N, C, D, H, W] (video, volumes), the same computation.  In
 * eval mode by the running statistics, or by the batch's own without them
 * (track_running_stats=False); in training mode (nn_module_train) by the
 * batch's, updating the running ones, as torch.nn.BatchNorm1d.  The
 * running-statistics update and the backward are BatchNorm2d's. */
#include "norm.h"
#include "norm_stats.h"
#include "../common/nn-layer-util.h"

#include <nnkit/train.h>

static const NnSchemaKey batch_norm1d_schema[] = {
  { "num_features", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "channels C (dim 1 of the input)" },
  { "eps", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "1e-05", 0, 0,
    NULL, "added to the variance for numerical stability" },
  { "momentum", NN_KIND_FLOAT, 0,
    NN_KEY_OPTIONAL | NN_KEY_NULLABLE | NN_KEY_HAS_MIN | NN_KEY_HAS_MAX, "0.1",
    0, 1, NULL, "running statistics update factor (training only); None: "
    "cumulative average" },
  { "affine", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "true", 0, 0, NULL,
    "learnable per-channel weight and bias" },
  { "track_running_stats", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "true", 0, 0,
    NULL, "keep running_mean and running_var buffers; else use batch "
    "statistics" },
};

static gboolean
batch_norm1d_create (NnModule *self, GError **error)
{
  NnShape c = { 1, { nn_module_config_int (self, "num_features") } };
  NnShape scalar = { 0 };
  /* PyTorch's registration order, which fixes the state_dict order. */
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

/* PyTorch's reset_running_stats() then reset_parameters(). */
static void
batch_norm1d_reset_parameters (NnModule *self, GRand *rng)
{
  nn_lu_fill (self, "weight", 1.0f);
  nn_lu_fill (self, "bias", 0.0f);
  nn_lu_fill (self, "running_mean", 0.0f);
  nn_lu_fill (self, "running_var", 1.0f);
  NnTensor *nbt = nn_module_get_buffer (self, "num_batches_tracked");
  if (nbt)
    *nn_tensor_i64 (nbt) = 0;
}

/* The product of the dims after N and C: the positions per channel. */
static gint64
spatial (const NnShape *s)
{
  gint64 hw = 1;
  for (guint i = 2; i < s->ndim; i++)
    hw *= s->dims[i];
  return hw;
}

/* @three_d: BatchNorm3d, whose input is 5-d; else BatchNorm1d's 2-d or 3-d. */
static NnValue *
batch_norm_run (NnModule *self, const NnArgs *args, gboolean three_d,
                GError **error)
{
  NnTensor *input = nn_args_tensor (args, 0);
  const NnShape *s = &input->shape;
  gint64 c = nn_module_config_int (self, "num_features");
  gboolean tracked = nn_module_config_bool (self, "track_running_stats");
  if (three_d ? s->ndim != 5 : (s->ndim != 2 && s->ndim != 3)) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "expected %s input (got %uD input)", three_d ? "5D" : "2D or 3D",
                 s->ndim);
    return NULL;
  }
  gboolean affine = nn_module_config_bool (self, "affine");
  /* Without tensors of size C PyTorch accepts any channel count. */
  if (s->dims[1] != c && (tracked || affine)) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "%s should contain %" G_GINT64_FORMAT " elements not %"
                 G_GINT64_FORMAT, tracked ? "running_mean" : "weight",
                 s->dims[1], c);
    return NULL;
  }
  c = s->dims[1];
  gint64 n = s->dims[0], hw = spatial (s);
  gboolean use_batch = !tracked || nn_module_is_training (self);
  if (use_batch && n * hw <= 1) {
    g_autofree char *found = nn_shape_to_string (s);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Expected more than 1 value per channel when training, got "
                 "input size %s", found);
    return NULL;
  }
  NnTensor *out = nn_lu_new_f32 (s, nn_tensor_is_meta (input));
  if (!out || nn_tensor_is_meta (input))
    return nn_lu_result (out, error);

  const float *x = nn_tensor_f32 (input);
  g_autofree double *mean = g_new (double, c);
  g_autofree double *var = g_new (double, c);
  if (!use_batch) {
    const float *rm = nn_tensor_f32 (nn_module_get_buffer (self, "running_mean"));
    const float *rv = nn_tensor_f32 (nn_module_get_buffer (self, "running_var"));
    for (gint64 i = 0; i < c; i++) {
      mean[i] = rm[i];
      var[i] = rv[i];
    }
  } else {
    nn_norm_channel_moments (x, n, c, hw, mean, var);
    if (tracked && !nn_norm_update_running (self, mean, var, c, n * hw, error)) {
      nn_tensor_unref (out);
      return NULL;
    }
  }
  NnTensor *wt = nn_module_get_parameter (self, "weight");
  NnTensor *bt = nn_module_get_parameter (self, "bias");
  nn_norm_apply (x, nn_tensor_f32 (out), n, c, hw, mean, var, FALSE,
                 wt ? nn_tensor_f32 (wt) : NULL, bt ? nn_tensor_f32 (bt) : NULL,
                 nn_module_config_float (self, "eps"));
  return nn_value_take_tensor (out);
}

static NnValue *
batch_norm1d_forward (NnModule *self, NnCall *call, const NnArgs *args,
                      GError **error)
{
  return batch_norm_run (self, args, FALSE, error);
}

static NnValue *
batch_norm3d_forward (NnModule *self, NnCall *call, const NnArgs *args,
                      GError **error)
{
  return batch_norm_run (self, args, TRUE, error);
}

static NnValue *
batch_norm1d_backward (NnModule *self, NnCall *call, const NnArgs *args,
                       const NnValue *out, const NnValue *grad_out,
                       GError **error)
{
  NnTensor *input = nn_args_tensor (args, 0);
  const NnShape *s = &input->shape;
  return nn_norm_batch_backward (self, input, s->dims[0], s->dims[1],
                                 spatial (s), grad_out);
}

const NnLayerType nn_batch_norm1d_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "BatchNorm1d",
  .doc = "batch normalisation of [N, C] or [N, C, L] input",
  .schema = batch_norm1d_schema,
  .n_schema = G_N_ELEMENTS (batch_norm1d_schema),
  .create = batch_norm1d_create,
  .forward = batch_norm1d_forward,
  .backward = batch_norm1d_backward,
  .infer = batch_norm1d_forward,
  .extra_repr = nn_norm_batch_extra_repr,
  .reset_parameters = batch_norm1d_reset_parameters,
  .count_macs = nn_norm_count_macs,
};

const NnLayerType nn_batch_norm3d_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "BatchNorm3d",
  .doc = "batch normalisation of [N, C, D, H, W] input",
  .schema = batch_norm1d_schema,
  .n_schema = G_N_ELEMENTS (batch_norm1d_schema),
  .create = batch_norm1d_create,
  .forward = batch_norm3d_forward,
  .backward = batch_norm1d_backward,
  .infer = batch_norm3d_forward,
  .extra_repr = nn_norm_batch_extra_repr,
  .reset_parameters = batch_norm1d_reset_parameters,
  .count_macs = nn_norm_count_macs,
};
