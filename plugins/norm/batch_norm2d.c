/* BatchNorm2d.  In training mode (nn_module_train) the batch statistics
 * normalise and update the running ones, as PyTorch does.  In eval mode,
 * as torch.nn.BatchNorm2d after .eval(): the
 * running statistics normalise each channel; without them
 * (track_running_stats=False) PyTorch uses the batch's own statistics even
 * in eval mode, and so do we. */
#include "norm.h"

#include <nnkit/train.h>

#include <math.h>

static const NnSchemaKey batch_norm2d_schema[] = {
  { "num_features", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "number of channels C of an [N, C, H, W] input" },
  { "eps", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "1e-05", 0, 0,
    NULL, "added to the variance for numerical stability" },
  { "momentum", NN_KIND_FLOAT, 0,
    NN_KEY_OPTIONAL | NN_KEY_NULLABLE | NN_KEY_HAS_MIN | NN_KEY_HAS_MAX, "0.1",
    0, 1, NULL, "running statistics update factor (training only); None: "
    "cumulative average" },
  { "affine", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "true", 0, 0, NULL,
    "learnable per-channel weight and bias" },
  { "track_running_stats", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "true", 0, 0, NULL,
    "keep running_mean and running_var buffers; else use batch statistics" },
};

static gboolean
batch_norm2d_create (NnModule *self, GError **error)
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
    nn_module_add_buffer (self, "num_batches_tracked", NN_DTYPE_I64, &scalar, TRUE);
  }
  return TRUE;
}

static void
fill (NnTensor *t, float v)
{
  if (!t)
    return;
  float *d = nn_tensor_f32 (t);
  for (gint64 i = 0, n = nn_tensor_numel (t); i < n; i++)
    d[i] = v;
}

/* PyTorch's reset_running_stats() then reset_parameters(): no randomness. */
static void
batch_norm2d_reset_parameters (NnModule *self, GRand *rng)
{
  fill (nn_module_get_parameter (self, "weight"), 1.0f);
  fill (nn_module_get_parameter (self, "bias"), 0.0f);
  fill (nn_module_get_buffer (self, "running_mean"), 0.0f);
  fill (nn_module_get_buffer (self, "running_var"), 1.0f);
  NnTensor *nbt = nn_module_get_buffer (self, "num_batches_tracked");
  if (nbt)
    *(gint64 *) nbt->data = 0;
}

static const NnArgSpec batch_norm2d_args[] = {
  { "input", NN_ARG_TENSOR, NN_DTYPE_BIT (NN_DTYPE_F32), 0, NULL,
    "float32 [N, num_features, H, W]" },
};

static gboolean
batch_norm2d_out_shape (NnModule *self, const NnShape *in, NnShape *out,
                        GError **error)
{
  gint64 c = nn_module_config_int (self, "num_features");
  if (in->ndim != 4 || in->dims[1] != c) {
    g_autofree char *found = nn_shape_to_string (in);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "expected input [N, %" G_GINT64_FORMAT ", H, W], "
                 "found %s", c, found);
    return FALSE;
  }
  *out = *in;
  return TRUE;
}

/* Per-channel mean and biased variance over N, H and W, accumulated in
 * double, for the track_running_stats=False case. */
static void
batch_stats (const float *x, gint64 n, gint64 c, gint64 hw, double *mean,
             double *var)
{
  for (gint64 ch = 0; ch < c; ch++) {
    double sum = 0.0;
    for (gint64 b = 0; b < n; b++) {
      const float *p = x + (b * c + ch) * hw;
      for (gint64 i = 0; i < hw; i++)
        sum += p[i];
    }
    double m = sum / (double) (n * hw), sq = 0.0;
    for (gint64 b = 0; b < n; b++) {
      const float *p = x + (b * c + ch) * hw;
      for (gint64 i = 0; i < hw; i++)
        sq += (p[i] - m) * (p[i] - m);
    }
    mean[ch] = m;
    var[ch] = sq / (double) (n * hw);
  }
}

/* The buffer @name of @self made writable (weights loaded zero-copy are
 * read-only mappings).  Returns: (transfer none) (nullable). */
static NnTensor *
writable_buffer (NnModule *self, const char *name, GError **error)
{
  NnTensor *t = nn_module_get_buffer (self, name);
  if (!t || !nn_tensor_is_read_only (t))
    return t;
  g_autoptr (NnTensor) copy = nn_tensor_copy (t);
  if (!copy || !nn_module_set_tensor (self, name, copy, error))
    return NULL;
  return nn_module_get_buffer (self, name);
}

/* Training mode, as PyTorch: num_batches_tracked += 1, then running
 * stats move by momentum (None: the cumulative average 1 / tracked) toward
 * the batch mean and the unbiased batch variance. */
gboolean
nn_norm_update_running (NnModule *self, const double *mean, const double *var,
                gint64 c, gint64 count, GError **error)
{
  NnTensor *rm = writable_buffer (self, "running_mean", error);
  NnTensor *rv = rm ? writable_buffer (self, "running_var", error) : NULL;
  NnTensor *nbt = rv ? writable_buffer (self, "num_batches_tracked", error) : NULL;
  if (!rm || !rv || (!nbt && nn_module_get_buffer (self, "num_batches_tracked")))
    return FALSE;
  gint64 tracked = 0;
  if (nbt && nbt->dtype == NN_DTYPE_I64)
    tracked = ++*(gint64 *) nbt->data;
  double f = nn_module_config_is_null (self, "momentum")
                 ? (tracked > 0 ? 1.0 / (double) tracked : 0.0)
                 : nn_module_config_float (self, "momentum");
  double unbias = count > 1 ? (double) count / (double) (count - 1) : 1.0;
  float *m = nn_tensor_f32 (rm), *v = nn_tensor_f32 (rv);
  for (gint64 ch = 0; ch < c; ch++) {
    m[ch] = (float) ((1.0 - f) * m[ch] + f * mean[ch]);
    v[ch] = (float) ((1.0 - f) * v[ch] + f * var[ch] * unbias);
  }
  nn_tensor_mark_written (rm);
  nn_tensor_mark_written (rv);
  return TRUE;
}

static NnValue *
batch_norm2d_infer (NnModule *self, NnCall *call, const NnArgs *args,
                    GError **error)
{
  NnShape shape;
  if (!batch_norm2d_out_shape (self, &nn_args_tensor (args, 0)->shape, &shape,
                               error))
    return NULL;
  return nn_value_take_tensor (nn_tensor_new_meta (NN_DTYPE_F32, &shape));
}

/* (transfer full) (nullable) */
static NnTensor *
as_f32 (NnTensor *t)
{
  return t ? nn_tensor_to_dtype (t, NN_DTYPE_F32) : NULL;
}

/* y = x * scale + shift over planes [begin, end) of (batch, channel). */
typedef struct {
  const float *x;
  float *y;
  const float *scale, *shift;
  gint64 c, hw;
} Affine;

static void
affine_planes (gsize begin, gsize end, gpointer data)
{
  const Affine *a = data;
  for (gsize i = begin; i < end; i++) {
    const float sc = a->scale[i % a->c], sh = a->shift[i % a->c];
    const float *restrict src = a->x + i * a->hw;
    float *restrict dst = a->y + i * a->hw;
    for (gint64 j = 0; j < a->hw; j++)
      dst[j] = src[j] * sc + sh;
  }
}

static NnValue *
batch_norm2d_forward (NnModule *self, NnCall *call, const NnArgs *args,
                      GError **error)
{
  NnShape shape;
  NnTensor *input = nn_args_tensor (args, 0);
  const float *x = nn_tensor_f32 (input);
  if (!batch_norm2d_out_shape (self, &input->shape, &shape, error))
    return NULL;
  gint64 n = shape.dims[0], c = shape.dims[1], hw = shape.dims[2] * shape.dims[3];
  double eps = nn_module_config_float (self, "eps");
  /* F16/BF16 tensors kept as stored convert per call (a ref when F32). */
  g_autoptr (NnTensor) w = as_f32 (nn_module_get_parameter (self, "weight"));
  g_autoptr (NnTensor) b = as_f32 (nn_module_get_parameter (self, "bias"));
  g_autoptr (NnTensor) rm = as_f32 (nn_module_get_buffer (self, "running_mean"));
  g_autoptr (NnTensor) rv = as_f32 (nn_module_get_buffer (self, "running_var"));

  g_autofree double *mean = g_new (double, c);
  g_autofree double *var = g_new (double, c);
  if (rm && rv && !nn_module_is_training (self)) {
    for (gint64 ch = 0; ch < c; ch++) {
      mean[ch] = nn_tensor_f32 (rm)[ch];
      var[ch] = nn_tensor_f32 (rv)[ch];
    }
  } else {
    batch_stats (x, n, c, hw, mean, var);
    if (rm && rv && !nn_norm_update_running (self, mean, var, c, n * hw, error))
      return NULL;
  }

  /* Folded into one multiply-add per element: y = x * scale + shift. */
  g_autofree float *scale = g_new (float, c);
  g_autofree float *shift = g_new (float, c);
  for (gint64 ch = 0; ch < c; ch++) {
    double s = 1.0 / sqrt (var[ch] + eps);
    if (w)
      s *= nn_tensor_f32 (w)[ch];
    scale[ch] = (float) s;
    shift[ch] = (float) ((b ? nn_tensor_f32 (b)[ch] : 0.0) - mean[ch] * s);
  }

  NnTensor *out = nn_tensor_new (NN_DTYPE_F32, &shape);
  if (!out) {
    g_autofree char *s = nn_shape_to_string (&shape);
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "cannot allocate the float32 output %s", s);
    return NULL;
  }
  Affine a = { x, nn_tensor_f32 (out), scale, shift, c, hw };
  nn_thread_pool_parallel_for_work (nn_call_get_thread_pool (call),
                                    (gsize) (n * c), 2 * n * c * hw,
                                    affine_planes, &a);
  return nn_value_take_tensor (out);
}

/* With batch statistics (training, or no running stats):
 *   dx = w invstd / M (M g - sum g - xhat sum (g xhat)),
 * with running statistics: dx = g w invstd; dweight = sum (g xhat) and
 * dbias = sum g per channel either way. */
NnValue *
nn_norm_batch_backward (NnModule *self, NnTensor *input, gint64 n, gint64 c,
                        gint64 hw, const NnValue *grad_out)
{
  const NnShape *shape = &input->shape;
  double eps = nn_module_config_float (self, "eps"), m_count = (double) (n * hw);
  NnTensor *w = nn_module_get_parameter (self, "weight");
  NnTensor *rm = nn_module_get_buffer (self, "running_mean");
  NnTensor *rv = nn_module_get_buffer (self, "running_var");
  gboolean batch = nn_module_is_training (self) || !rm || !rv;
  const float *x = nn_tensor_f32 (input);
  const float *g = nn_tensor_f32 (nn_value_get_tensor (grad_out));
  g_autofree double *mean = g_new (double, c);
  g_autofree double *var = g_new (double, c);
  if (batch)
    batch_stats (x, n, c, hw, mean, var);
  else
    for (gint64 ch = 0; ch < c; ch++) {
      mean[ch] = nn_tensor_f32 (rm)[ch];
      var[ch] = nn_tensor_f32 (rv)[ch];
    }
  float *gw = nn_module_grad_f32 (self, "weight");
  float *gb = nn_module_grad_f32 (self, "bias");
  NnTensor *dx = nn_tensor_new (NN_DTYPE_F32, shape);
  float *d = nn_tensor_f32 (dx);
  for (gint64 ch = 0; ch < c; ch++) {
    double invstd = 1.0 / sqrt (var[ch] + eps), sg = 0.0, sgx = 0.0;
    for (gint64 b = 0; b < n; b++) {
      const float *xp = x + (b * c + ch) * hw, *gp = g + (b * c + ch) * hw;
      for (gint64 i = 0; i < hw; i++) {
        sg += gp[i];
        sgx += gp[i] * ((double) xp[i] - mean[ch]) * invstd;
      }
    }
    if (gw)
      gw[ch] += (float) sgx;
    if (gb)
      gb[ch] += (float) sg;
    double scale = (w ? nn_tensor_f32 (w)[ch] : 1.0) * invstd;
    for (gint64 b = 0; b < n; b++) {
      const float *xp = x + (b * c + ch) * hw, *gp = g + (b * c + ch) * hw;
      float *dp = d + (b * c + ch) * hw;
      for (gint64 i = 0; i < hw; i++) {
        double xhat = ((double) xp[i] - mean[ch]) * invstd;
        dp[i] = batch ? (float) (scale * (gp[i] - sg / m_count - xhat * sgx / m_count))
                      : (float) (scale * gp[i]);
      }
    }
  }
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (dx));
  return res;
}

static NnValue *
batch_norm2d_backward (NnModule *self, NnCall *call, const NnArgs *args,
                       const NnValue *out, const NnValue *grad_out,
                       GError **error)
{
  NnTensor *input = nn_args_tensor (args, 0);
  const NnShape *s = &input->shape;
  return nn_norm_batch_backward (self, input, s->dims[0], s->dims[1],
                                 s->dims[2] * s->dims[3], grad_out);
}

static char *
batch_norm2d_extra_repr (NnModule *self)
{
  g_autofree char *eps = nn_module_config_repr (self, "eps");
  g_autofree char *mom = nn_module_config_repr (self, "momentum");
  g_autofree char *aff = nn_module_config_repr (self, "affine");
  g_autofree char *trs = nn_module_config_repr (self, "track_running_stats");
  return g_strdup_printf ("%" G_GINT64_FORMAT ", eps=%s, momentum=%s, affine=%s, "
                          "track_running_stats=%s",
                          nn_module_config_int (self, "num_features"), eps, mom,
                          aff, trs);
}

/* torchinfo counts output_size[0] * numel for each of weight and bias. */
static guint64
batch_norm2d_count_macs (NnModule *self, const NnArgs *args, const NnValue *out)
{
  NnTensor *y = nn_value_get_tensor (out);
  if (!nn_module_config_bool (self, "affine") || !y || y->shape.ndim == 0)
    return 0;
  return (guint64) y->shape.dims[0] * 2u * (guint64) nn_module_config_int (self, "num_features");
}

/* As an absorbed step of a fused plan (docs/ENGINE.md, "Fusion"): in
 * eval mode with running statistics, a per-channel affine on dim 1. */
static gboolean
batch_norm2d_describe (NnModule *self, NnFuseOp *op)
{
  if (nn_module_is_training (self)
      || !nn_module_get_buffer (self, "running_mean")
      || !nn_module_get_buffer (self, "running_var"))
    return FALSE;
  op->role = NN_FUSE_AS_AFFINE;
  op->channel_dim = 1;
  op->n_channels = nn_module_config_int (self, "num_features");
  return TRUE;
}

/* scale = weight / sqrt (running_var + eps), shift = bias - mean * scale,
 * in double as the forward computes them. */
static gboolean
batch_norm2d_fill_affine (NnModule *self, float *scale, float *shift)
{
  gint64 c = nn_module_config_int (self, "num_features");
  double eps = nn_module_config_float (self, "eps");
  g_autoptr (NnTensor) w = as_f32 (nn_module_get_parameter (self, "weight"));
  g_autoptr (NnTensor) b = as_f32 (nn_module_get_parameter (self, "bias"));
  g_autoptr (NnTensor) rm = as_f32 (nn_module_get_buffer (self, "running_mean"));
  g_autoptr (NnTensor) rv = as_f32 (nn_module_get_buffer (self, "running_var"));
  if (!rm || !rv || nn_tensor_numel (rm) != c || nn_tensor_numel (rv) != c
      || (w && nn_tensor_numel (w) != c) || (b && nn_tensor_numel (b) != c))
    return FALSE;
  for (gint64 ch = 0; ch < c; ch++) {
    double sc = 1.0 / sqrt ((double) nn_tensor_f32 (rv)[ch] + eps);
    if (w)
      sc *= nn_tensor_f32 (w)[ch];
    scale[ch] = (float) sc;
    shift[ch] = (float) ((b ? nn_tensor_f32 (b)[ch] : 0.0)
                         - nn_tensor_f32 (rm)[ch] * sc);
  }
  return TRUE;
}

const NnFuseInfo nn_batch_norm2d_fuse = {
  .struct_size = sizeof (NnFuseInfo),
  .describe = batch_norm2d_describe,
  .fill_affine = batch_norm2d_fill_affine,
};

const NnLayerType nn_batch_norm2d_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "BatchNorm2d",
  .doc = "batch normalisation of NCHW input with running statistics (eval mode)",
  .schema = batch_norm2d_schema,
  .n_schema = G_N_ELEMENTS (batch_norm2d_schema),
  .flags = NN_LAYER_HALF_WEIGHTS,
  .args = batch_norm2d_args,
  .n_args = G_N_ELEMENTS (batch_norm2d_args),
  .create = batch_norm2d_create,
  .infer = batch_norm2d_infer,
  .forward = batch_norm2d_forward,
  .fuse = &nn_batch_norm2d_fuse,
  .backward = batch_norm2d_backward,
  .extra_repr = batch_norm2d_extra_repr,
  .reset_parameters = batch_norm2d_reset_parameters,
  .count_macs = batch_norm2d_count_macs,
};
