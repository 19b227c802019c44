/* MaxPool2d: max over dilated sliding windows, as torch.nn.MaxPool2d;
 * return_indices gives PyTorch's (output, indices) tuple, each index into
 * its input's H * W plane (what MaxUnpool2d takes). */
#include "pool.h"

#include <math.h>

static const NnSchemaKey max_pool2d_schema[] = {
  { "kernel_size", NN_KIND_INT_TUPLE, 2, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "size of the window to take a max over" },
  { "stride", NN_KIND_INT_TUPLE, 2,
    NN_KEY_OPTIONAL | NN_KEY_NULLABLE | NN_KEY_HAS_MIN, "null", 1, 0, NULL,
    "stride of the window; None means kernel_size" },
  { "padding", NN_KIND_INT_TUPLE, 2, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "0", 0, 0,
    NULL, "implicit -inf padding on both sides, at most kernel_size / 2" },
  { "dilation", NN_KIND_INT_TUPLE, 2, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "1", 1, 0,
    NULL, "spacing between the elements of a window" },
  { "return_indices", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "also return each window's argmax, an int64 index into its H * W plane" },
  { "ceil_mode", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "use ceil instead of floor for the output size" },
};

typedef struct {
  NnPoolGeom geom;
  NnPoolExtent ext; /* set per call */
} MaxPoolPlane;

/* The private state; geom first, as oneDNN's provider reads it as one. */
typedef struct {
  NnPoolGeom geom;
  gboolean indices; /* return_indices */
} MaxPoolState;

static gboolean
max_pool2d_create (NnModule *self, GError **error)
{
  MaxPoolState *st = g_new0 (MaxPoolState, 1);
  if (!nn_pool_geom_read (self, TRUE, &st->geom, error)) {
    g_free (st);
    return FALSE;
  }
  st->indices = nn_module_config_bool (self, "return_indices");
  nn_module_set_private (self, st);
  return TRUE;
}

static void
max_pool2d_destroy (NnModule *self)
{
  g_free (nn_module_get_private (self));
}

static NnValue *
max_pool2d_infer (NnModule *self, NnCall *call, const NnArgs *args,
                  GError **error)
{
  const MaxPoolState *st = nn_module_get_private (self);
  NnValue *out = nn_pool_infer_windows (&st->geom, nn_args_tensor (args, 0), error);
  if (!out || !st->indices)
    return out;
  NnTensor *y = nn_value_get_tensor (out);
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (nn_tensor_new_meta (NN_DTYPE_F32, &y->shape)));
  nn_value_append (res, nn_value_take_tensor (nn_tensor_new_meta (NN_DTYPE_I64, &y->shape)));
  nn_value_unref (out);
  return res;
}

static void
max_pool2d_plane (gconstpointer ctx, const float *x, float *y)
{
  const MaxPoolPlane *p = ctx;
  const NnPoolGeom *g = &p->geom;
  for (gint64 oh = 0; oh < p->ext.oh; oh++) {
    gint64 h0 = oh * g->stride[0] - g->padding[0];
    gint64 h1 = MIN (h0 + (g->kernel[0] - 1) * g->dilation[0] + 1, p->ext.h);
    while (h0 < 0)
      h0 += g->dilation[0];
    for (gint64 ow = 0; ow < p->ext.ow; ow++) {
      gint64 w0 = ow * g->stride[1] - g->padding[1];
      gint64 w1 = MIN (w0 + (g->kernel[1] - 1) * g->dilation[1] + 1, p->ext.w);
      while (w0 < 0)
        w0 += g->dilation[1];
      float m = -INFINITY;
      for (gint64 ih = h0; ih < h1; ih += g->dilation[0]) {
        const float *row = x + ih * p->ext.w;
        for (gint64 iw = w0; iw < w1; iw += g->dilation[1]) {
          float v = row[iw];
          /* NaN wins, as in PyTorch, so a NaN input is never hidden. */
          if (v > m || isnan (v))
            m = v;
        }
      }
      y[oh * p->ext.ow + ow] = m;
    }
  }
}

/* Window (@oh, @ow)'s argmax in plane @x, as PyTorch's CPU kernel picks
 * it: the first maximum, or the last NaN; the window's first element when
 * all are -inf. */
static gint64
max_pool2d_argmax (const NnPoolGeom *g, const NnPoolExtent *e,
                   const float *x, gint64 oh, gint64 ow)
{
  gint64 h0 = oh * g->stride[0] - g->padding[0];
  gint64 h1 = MIN (h0 + (g->kernel[0] - 1) * g->dilation[0] + 1, e->h);
  gint64 w0 = ow * g->stride[1] - g->padding[1];
  gint64 w1 = MIN (w0 + (g->kernel[1] - 1) * g->dilation[1] + 1, e->w);
  while (h0 < 0)
    h0 += g->dilation[0];
  while (w0 < 0)
    w0 += g->dilation[1];
  gint64 at = h0 * e->w + w0;
  float m = -INFINITY;
  for (gint64 ih = h0; ih < h1; ih += g->dilation[0])
    for (gint64 iw = w0; iw < w1; iw += g->dilation[1]) {
      float v = x[ih * e->w + iw];
      if (v > m || isnan (v)) {
        m = v;
        at = ih * e->w + iw;
      }
    }
  return at;
}

/* (output, indices): plane by plane, one thread (SegNet-sized inputs; the
 * oneDNN provider declines this config, so this is the only path). */
static NnValue *
max_pool2d_with_indices (const NnPoolGeom *g, NnTensor *input, GError **error)
{
  NnShape os;
  if (!nn_pool_geom_out_shape (g, &input->shape, &os, error))
    return NULL;
  const guint hd = os.ndim - 2;
  NnPoolExtent e = { input->shape.dims[hd], input->shape.dims[hd + 1],
                     os.dims[hd], os.dims[hd + 1] };
  NnTensor *y = nn_pool_alloc (&os, error);
  if (!y)
    return NULL;
  NnTensor *idx = nn_tensor_new (NN_DTYPE_I64, &os);
  if (!idx) {
    g_autofree char *s = nn_shape_to_string (&os);
    nn_tensor_unref (y);
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "cannot allocate the int64 indices %s", s);
    return NULL;
  }
  const float *x = nn_tensor_f32 (input);
  float *yv = nn_tensor_f32 (y);
  gint64 *iv = nn_tensor_i64 (idx);
  const gint64 planes = nn_shape_numel (&os) / MAX (e.oh * e.ow, 1);
  for (gint64 pl = 0; pl < planes; pl++) {
    const float *xp = x + pl * e.h * e.w;
    for (gint64 oh = 0; oh < e.oh; oh++)
      for (gint64 ow = 0; ow < e.ow; ow++) {
        gint64 o = (pl * e.oh + oh) * e.ow + ow;
        iv[o] = max_pool2d_argmax (g, &e, xp, oh, ow);
        yv[o] = xp[iv[o]];
      }
  }
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (y));
  nn_value_append (res, nn_value_take_tensor (idx));
  return res;
}

static NnValue *
max_pool2d_forward (NnModule *self, NnCall *call, const NnArgs *args,
                    GError **error)
{
  const MaxPoolState *st = nn_module_get_private (self);
  if (st->indices)
    return max_pool2d_with_indices (&st->geom, nn_args_tensor (args, 0), error);
  MaxPoolPlane p = { st->geom };
  return nn_pool_run_windows (&p.geom, nn_args_tensor (args, 0), &p.ext,
                              max_pool2d_plane, &p, error);
}

typedef struct {
  const NnPoolGeom *g;
  NnPoolExtent e;
  const float *x, *go;
  float *d;
} MaxBackJob;

/* Planes [@begin, @end): each output gradient goes to the element the
 * forward picked (PyTorch's argmax). */
static void
max_pool2d_backward_planes (gsize begin, gsize end, gpointer data)
{
  const MaxBackJob *j = data;
  const NnPoolExtent *e = &j->e;
  for (gint64 pl = (gint64) begin; pl < (gint64) end; pl++) {
    const float *xp = j->x + pl * e->h * e->w;
    float *dp = j->d + pl * e->h * e->w;
    for (gint64 oh = 0; oh < e->oh; oh++)
      for (gint64 ow = 0; ow < e->ow; ow++)
        dp[max_pool2d_argmax (j->g, e, xp, oh, ow)]
          += j->go[(pl * e->oh + oh) * e->ow + ow];
  }
}

/* Planes are independent: they split over the thread pool (a training
 * step's only pooling backward that is not tiny). */
static NnValue *
max_pool2d_backward (NnModule *self, NnCall *call, const NnArgs *args,
                     const NnValue *out, const NnValue *grad_out,
                     GError **error)
{
  const MaxPoolState *st = nn_module_get_private (self);
  NnTensor *input = nn_args_tensor (args, 0);
  if (st->indices) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "MaxPool2d(return_indices=True) has no backward in nnkit: "
                 "train with return_indices=False");
    return NULL;
  }
  NnTensor *gt = nn_value_get_tensor (grad_out);
  const guint nd = input->shape.ndim;
  MaxBackJob j = { &st->geom,
                   { input->shape.dims[nd - 2], input->shape.dims[nd - 1],
                     gt->shape.dims[nd - 2], gt->shape.dims[nd - 1] },
                   nn_tensor_f32 (input), nn_tensor_f32 (gt), NULL };
  const gint64 planes = nn_tensor_numel (input) / MAX (j.e.h * j.e.w, 1);
  NnTensor *dx = nn_pool_alloc (&input->shape, error);
  if (!dx)
    return NULL;
  j.d = nn_tensor_f32 (dx);
  if (nn_tensor_numel (input) < (1 << 17))
    max_pool2d_backward_planes (0, (gsize) planes, &j);
  else
    nn_thread_pool_parallel_for (nn_call_get_thread_pool (call), (gsize) planes,
                                 max_pool2d_backward_planes, &j);
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (dx));
  return res;
}

static const char *const max_pool2d_aliases[] = {
  "max_pool2d", "torch.nn.functional.max_pool2d", "torch.max_pool2d", NULL
};

static char *
max_pool2d_extra_repr (NnModule *self)
{
  g_autofree char *k = nn_module_config_repr (self, "kernel_size");
  g_autofree char *s = nn_module_config_is_null (self, "stride")
                         ? g_strdup (k) : nn_module_config_repr (self, "stride");
  g_autofree char *p = nn_module_config_repr (self, "padding");
  g_autofree char *d = nn_module_config_repr (self, "dilation");
  g_autofree char *c = nn_module_config_repr (self, "ceil_mode");
  return g_strdup_printf ("kernel_size=%s, stride=%s, padding=%s, dilation=%s, "
                          "ceil_mode=%s", k, s, p, d, c);
}

const NnLayerType nn_max_pool2d_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "MaxPool2d",
  .doc = "2D max pooling over NCHW input (padding, dilation, ceil_mode)",
  .schema = max_pool2d_schema,
  .n_schema = G_N_ELEMENTS (max_pool2d_schema),
  .create = max_pool2d_create,
  .args = nn_pool_input_args,
  .n_args = G_N_ELEMENTS (nn_pool_input_args),
  .aliases = max_pool2d_aliases,
  .destroy = max_pool2d_destroy,
  .infer = max_pool2d_infer,
  .forward = max_pool2d_forward,
  .backward = max_pool2d_backward,
  .extra_repr = max_pool2d_extra_repr,
};
