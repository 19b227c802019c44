/* AvgPool2d: mean over sliding windows, as torch.nn.AvgPool2d, with
 * PyTorch's divisor rules for padding, ceil_mode and divisor_override. */
#include "pool.h"

static const NnSchemaKey avg_pool2d_schema[] = {
  { "kernel_size", NN_KIND_INT_TUPLE, 2, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "size of the window to average" },
  { "stride", NN_KIND_INT_TUPLE, 2,
    NN_KEY_OPTIONAL | NN_KEY_NULLABLE | NN_KEY_HAS_MIN, "null", 1, 0, NULL,
    "stride of the window; None means kernel_size" },
  { "padding", NN_KIND_INT_TUPLE, 2, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "0", 0, 0,
    NULL, "implicit zero padding on both sides, at most kernel_size / 2" },
  { "ceil_mode", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "use ceil instead of floor for the output size" },
  { "count_include_pad", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "true", 0, 0, NULL,
    "count the zero padding in the divisor" },
  { "divisor_override", NN_KIND_INT, 0,
    NN_KEY_OPTIONAL | NN_KEY_NULLABLE | NN_KEY_HAS_MIN, "null", 1, 0, NULL,
    "if set, the divisor of every window; None uses the window size" },
};

typedef struct {
  NnPoolGeom geom;
  gboolean count_include_pad;
  gint64 divisor_override; /* 0: none */
} AvgPool;

typedef struct {
  AvgPool cfg;
  NnPoolExtent ext; /* set per call */
} AvgPoolPlane;

static gboolean
avg_pool2d_create (NnModule *self, GError **error)
{
  AvgPool *cfg = g_new0 (AvgPool, 1);
  if (!nn_pool_geom_read (self, FALSE, &cfg->geom, error)) {
    g_free (cfg);
    return FALSE;
  }
  cfg->count_include_pad = nn_module_config_bool (self, "count_include_pad");
  if (!nn_module_config_is_null (self, "divisor_override"))
    cfg->divisor_override = nn_module_config_int (self, "divisor_override");
  nn_module_set_private (self, cfg);
  return TRUE;
}

static void
avg_pool2d_destroy (NnModule *self)
{
  g_free (nn_module_get_private (self));
}

static NnValue *
avg_pool2d_infer (NnModule *self, NnCall *call, const NnArgs *args,
                  GError **error)
{
  const AvgPool *cfg = nn_module_get_private (self);
  return nn_pool_infer_windows (&cfg->geom, nn_args_tensor (args, 0), error);
}

/* The input rows [*h0, *h1) and columns [*w0, *w1) of output (oh, ow)
 * and its divisor; FALSE for a window wholly in the padding (output 0). */
static gboolean
avg_window (const AvgPool *cfg, const NnPoolExtent *ext, gint64 oh, gint64 ow,
            gint64 *h0, gint64 *h1, gint64 *w0, gint64 *w1, gint64 *div)
{
  const NnPoolGeom *g = &cfg->geom;
  gint64 a0 = oh * g->stride[0] - g->padding[0];
  /* A window is clipped to the padded input first (ceil_mode windows
   * may run past it): that is the size count_include_pad divides by. */
  gint64 a1 = MIN (a0 + g->kernel[0], ext->h + g->padding[0]);
  gint64 ph = a1 - a0;
  gint64 b0 = ow * g->stride[1] - g->padding[1];
  gint64 b1 = MIN (b0 + g->kernel[1], ext->w + g->padding[1]);
  gint64 pw = b1 - b0;
  *h0 = MAX (a0, 0);
  *h1 = MIN (a1, ext->h);
  *w0 = MAX (b0, 0);
  *w1 = MIN (b1, ext->w);
  if (*h0 >= *h1 || *w0 >= *w1)
    return FALSE;
  if (cfg->divisor_override)
    *div = cfg->divisor_override;
  else if (cfg->count_include_pad)
    *div = ph * pw;
  else
    *div = (*h1 - *h0) * (*w1 - *w0);
  return TRUE;
}

static void
avg_pool2d_plane (gconstpointer ctx, const float *x, float *y)
{
  const AvgPoolPlane *p = ctx;
  for (gint64 oh = 0; oh < p->ext.oh; oh++)
    for (gint64 ow = 0; ow < p->ext.ow; ow++) {
      gint64 h0, h1, w0, w1, div;
      if (!avg_window (&p->cfg, &p->ext, oh, ow, &h0, &h1, &w0, &w1, &div)) {
        y[oh * p->ext.ow + ow] = 0.0f;
        continue;
      }
      float sum = 0.0f;
      for (gint64 ih = h0; ih < h1; ih++)
        for (gint64 iw = w0; iw < w1; iw++)
          sum += x[ih * p->ext.w + iw];
      y[oh * p->ext.ow + ow] = sum / (float) div;
    }
}

/* Each window spreads its gradient / divisor over the input cells it
 * averaged (PyTorch's avg_pool2d_backward). */
static NnValue *
avg_pool2d_backward (NnModule *self, NnCall *call, const NnArgs *args,
                     const NnValue *out, const NnValue *grad_out,
                     GError **error)
{
  const AvgPool *cfg = nn_module_get_private (self);
  NnTensor *input = nn_args_tensor (args, 0);
  NnTensor *gt = nn_value_get_tensor (grad_out);
  const guint nd = input->shape.ndim;
  NnPoolExtent ext = { 0 };
  ext.h = input->shape.dims[nd - 2];
  ext.w = input->shape.dims[nd - 1];
  ext.oh = gt->shape.dims[nd - 2];
  ext.ow = gt->shape.dims[nd - 1];
  const gint64 plane = ext.h * ext.w;
  const gint64 planes = plane > 0 ? nn_tensor_numel (input) / plane : 0;
  NnTensor *dx = nn_pool_alloc (&input->shape, error);
  if (!dx)
    return NULL;
  const float *go = nn_tensor_f32 (gt);
  float *d = nn_tensor_f32 (dx);
  for (gint64 pl = 0; pl < planes; pl++) {
    float *dp = d + pl * ext.h * ext.w;
    const float *gp = go + pl * ext.oh * ext.ow;
    for (gint64 oh = 0; oh < ext.oh; oh++)
      for (gint64 ow = 0; ow < ext.ow; ow++) {
        gint64 h0, h1, w0, w1, div;
        if (!avg_window (cfg, &ext, oh, ow, &h0, &h1, &w0, &w1, &div))
          continue;
        float v = gp[oh * ext.ow + ow] / (float) div;
        for (gint64 ih = h0; ih < h1; ih++)
          for (gint64 iw = w0; iw < w1; iw++)
            dp[ih * ext.w + iw] += v;
      }
  }
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (dx));
  return res;
}

static NnValue *
avg_pool2d_forward (NnModule *self, NnCall *call, const NnArgs *args,
                    GError **error)
{
  AvgPoolPlane p = { *(const AvgPool *) nn_module_get_private (self) };
  return nn_pool_run_windows (&p.cfg.geom, nn_args_tensor (args, 0), &p.ext,
                              avg_pool2d_plane, &p, error);
}

static const char *const avg_pool2d_aliases[] = {
  "avg_pool2d", "torch.nn.functional.avg_pool2d", NULL
};

static char *
avg_pool2d_extra_repr (NnModule *self)
{
  g_autofree char *k = nn_module_config_repr (self, "kernel_size");
  g_autofree char *s = nn_module_config_is_null (self, "stride")
                         ? g_strdup (k) : nn_module_config_repr (self, "stride");
  g_autofree char *p = nn_module_config_repr (self, "padding");
  return g_strdup_printf ("kernel_size=%s, stride=%s, padding=%s", k, s, p);
}

const NnLayerType nn_avg_pool2d_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "AvgPool2d",
  .doc = "2D average pooling over NCHW input (ceil_mode, count_include_pad)",
  .schema = avg_pool2d_schema,
  .n_schema = G_N_ELEMENTS (avg_pool2d_schema),
  .create = avg_pool2d_create,
  .args = nn_pool_input_args,
  .n_args = G_N_ELEMENTS (nn_pool_input_args),
  .aliases = avg_pool2d_aliases,
  .destroy = avg_pool2d_destroy,
  .infer = avg_pool2d_infer,
  .forward = avg_pool2d_forward,
  .backward = avg_pool2d_backward,
  .extra_repr = avg_pool2d_extra_repr,
};
