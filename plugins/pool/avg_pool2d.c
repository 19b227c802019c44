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

static void
avg_pool2d_plane (gconstpointer ctx, const float *x, float *y)
{
  const AvgPoolPlane *p = ctx;
  const NnPoolGeom *g = &p->cfg.geom;
  for (gint64 oh = 0; oh < p->ext.oh; oh++) {
    gint64 h0 = oh * g->stride[0] - g->padding[0];
    /* A window is clipped to the padded input first (ceil_mode windows
     * may run past it): that is the size count_include_pad divides by. */
    gint64 h1 = MIN (h0 + g->kernel[0], p->ext.h + g->padding[0]);
    gint64 ph = h1 - h0;
    h0 = MAX (h0, 0);
    h1 = MIN (h1, p->ext.h);
    for (gint64 ow = 0; ow < p->ext.ow; ow++) {
      gint64 w0 = ow * g->stride[1] - g->padding[1];
      gint64 w1 = MIN (w0 + g->kernel[1], p->ext.w + g->padding[1]);
      gint64 pw = w1 - w0;
      w0 = MAX (w0, 0);
      w1 = MIN (w1, p->ext.w);
      if (h0 >= h1 || w0 >= w1) {
        y[oh * p->ext.ow + ow] = 0.0f;
        continue;
      }
      float sum = 0.0f;
      for (gint64 ih = h0; ih < h1; ih++)
        for (gint64 iw = w0; iw < w1; iw++)
          sum += x[ih * p->ext.w + iw];
      gint64 div;
      if (p->cfg.divisor_override)
        div = p->cfg.divisor_override;
      else if (p->cfg.count_include_pad)
        div = ph * pw;
      else
        div = (h1 - h0) * (w1 - w0);
      y[oh * p->ext.ow + ow] = sum / (float) div;
    }
  }
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
  .extra_repr = avg_pool2d_extra_repr,
};
