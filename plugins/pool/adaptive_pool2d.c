/* AdaptiveAvgPool2d and AdaptiveMaxPool2d: a fixed output size, window i
 * spanning [floor(i * in / out), ceil((i + 1) * in / out)) as in PyTorch. */
#include "pool.h"

#include <math.h>

static const NnSchemaKey adaptive_avg_pool2d_schema[] = {
  { "output_size", NN_KIND_INT_TUPLE, 2, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "target output size H x W, an int for a square" },
};

static const NnSchemaKey adaptive_max_pool2d_schema[] = {
  { "output_size", NN_KIND_INT_TUPLE, 2, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "target output size H x W, an int for a square" },
  { "return_indices", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "also return the argmax indices (not supported: must be false)" },
};

typedef struct {
  gint64 h, w, oh, ow;
} AdaptivePlane;

static gboolean
adaptive_avg_pool2d_create (NnModule *self, GError **error)
{
  return TRUE;
}

static gboolean
adaptive_max_pool2d_create (NnModule *self, GError **error)
{
  if (nn_module_config_bool (self, "return_indices")) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_OUT_OF_RANGE,
                 "key 'return_indices' must be false: a "
                 "module returns one tensor, found true");
    return FALSE;
  }
  return TRUE;
}

static gboolean
adaptive_out_shape (NnModule *self, const NnShape *in, NnShape *out,
                    GError **error)
{
  if (!nn_pool_check_input (in, error))
    return FALSE;
  gint64 size[2];
  nn_module_config_ints (self, "output_size", size, 2);
  *out = *in;
  out->dims[in->ndim - 2] = size[0];
  out->dims[in->ndim - 1] = size[1];
  return TRUE;
}

static inline gint64
window_start (gint64 i, gint64 in, gint64 out)
{
  return i * in / out;
}

static inline gint64
window_end (gint64 i, gint64 in, gint64 out)
{
  return ((i + 1) * in + out - 1) / out;
}

/* Sum of @n contiguous floats in 8 independent partial sums: the adds
 * pipeline and vectorise, and a long global-average row loses less
 * precision than with one running sum. */
static float
sum_row (const float *x, gint64 n)
{
  float acc[8] = { 0 };
  gint64 i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++)
      acc[j] += x[i + j];
  float s = 0.0f;
  for (; i < n; i++)
    s += x[i];
  return s + ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

static void
adaptive_avg_plane (gconstpointer ctx, const float *x, float *y)
{
  const AdaptivePlane *p = ctx;
  for (gint64 oh = 0; oh < p->oh; oh++) {
    gint64 h0 = window_start (oh, p->h, p->oh), h1 = window_end (oh, p->h, p->oh);
    for (gint64 ow = 0; ow < p->ow; ow++) {
      gint64 w0 = window_start (ow, p->w, p->ow), w1 = window_end (ow, p->w, p->ow);
      float sum = 0.0f;
      /* Whole rows are one contiguous run: the global average pool. */
      if (w0 == 0 && w1 == p->w)
        sum = sum_row (x + h0 * p->w, (h1 - h0) * p->w);
      else
        for (gint64 ih = h0; ih < h1; ih++)
          sum += sum_row (x + ih * p->w + w0, w1 - w0);
      y[oh * p->ow + ow] = sum / (float) ((h1 - h0) * (w1 - w0));
    }
  }
}

static void
adaptive_max_plane (gconstpointer ctx, const float *x, float *y)
{
  const AdaptivePlane *p = ctx;
  for (gint64 oh = 0; oh < p->oh; oh++) {
    gint64 h0 = window_start (oh, p->h, p->oh), h1 = window_end (oh, p->h, p->oh);
    for (gint64 ow = 0; ow < p->ow; ow++) {
      gint64 w0 = window_start (ow, p->w, p->ow), w1 = window_end (ow, p->w, p->ow);
      float m = -INFINITY;
      for (gint64 ih = h0; ih < h1; ih++)
        for (gint64 iw = w0; iw < w1; iw++) {
          float v = x[ih * p->w + iw];
          if (v > m || isnan (v))
            m = v;
        }
      y[oh * p->ow + ow] = m;
    }
  }
}

static NnValue *
adaptive_infer (NnModule *self, NnCall *call, const NnArgs *args,
                GError **error)
{
  NnShape out_shape;
  if (!adaptive_out_shape (self, &nn_args_tensor (args, 0)->shape, &out_shape,
                           error))
    return NULL;
  return nn_value_take_tensor (nn_tensor_new_meta (NN_DTYPE_F32, &out_shape));
}

static NnValue *
adaptive_forward (NnModule *self, const NnArgs *args, NnPoolPlaneFunc fn,
                  GError **error)
{
  NnShape out_shape;
  NnTensor *input = nn_args_tensor (args, 0);
  const float *x = nn_tensor_f32 (input);
  if (!adaptive_out_shape (self, &input->shape, &out_shape, error))
    return NULL;
  guint h = out_shape.ndim - 2;
  AdaptivePlane p = { input->shape.dims[h], input->shape.dims[h + 1],
                      out_shape.dims[h], out_shape.dims[h + 1] };
  NnTensor *out = nn_pool_alloc (&out_shape, error);
  if (!out)
    return NULL;
  gint64 planes = nn_shape_numel (&out_shape) / (p.oh * p.ow);
  nn_pool_for_planes (planes, p.h * p.w, p.oh * p.ow, x, nn_tensor_f32 (out),
                      fn, &p);
  return nn_value_take_tensor (out);
}

static NnValue *
adaptive_avg_pool2d_forward (NnModule *self, NnCall *call, const NnArgs *args,
                             GError **error)
{
  return adaptive_forward (self, args, adaptive_avg_plane, error);
}

static NnValue *
adaptive_max_pool2d_forward (NnModule *self, NnCall *call, const NnArgs *args,
                             GError **error)
{
  return adaptive_forward (self, args, adaptive_max_plane, error);
}

static const char *const adaptive_avg_pool2d_aliases[] = {
  "adaptive_avg_pool2d", "torch.nn.functional.adaptive_avg_pool2d",
  "torch._C._nn.adaptive_avg_pool2d", NULL
};
static const char *const adaptive_max_pool2d_aliases[] = {
  "adaptive_max_pool2d", "torch.nn.functional.adaptive_max_pool2d", NULL
};

/* Each output gradient is spread evenly over its window. */
static NnValue *
adaptive_avg_pool2d_backward (NnModule *self, NnCall *call, const NnArgs *args,
                              const NnValue *out, const NnValue *grad_out,
                              GError **error)
{
  NnTensor *input = nn_args_tensor (args, 0);
  NnTensor *gt = nn_value_get_tensor (grad_out);
  const guint nd = input->shape.ndim;
  const gint64 h = input->shape.dims[nd - 2], w = input->shape.dims[nd - 1];
  const gint64 oh_n = gt->shape.dims[nd - 2], ow_n = gt->shape.dims[nd - 1];
  const gint64 planes = nn_tensor_numel (input) / (h * w);
  NnTensor *dx = nn_pool_alloc (&input->shape, error);
  if (!dx)
    return NULL;
  const float *go = nn_tensor_f32 (gt);
  float *d = nn_tensor_f32 (dx);
  for (gint64 pl = 0; pl < planes; pl++)
    for (gint64 oh = 0; oh < oh_n; oh++) {
      gint64 h0 = window_start (oh, h, oh_n), h1 = window_end (oh, h, oh_n);
      for (gint64 ow = 0; ow < ow_n; ow++) {
        gint64 w0 = window_start (ow, w, ow_n), w1 = window_end (ow, w, ow_n);
        float v = go[(pl * oh_n + oh) * ow_n + ow] / (float) ((h1 - h0) * (w1 - w0));
        for (gint64 ih = h0; ih < h1; ih++)
          for (gint64 iw = w0; iw < w1; iw++)
            d[(pl * h + ih) * w + iw] += v;
      }
    }
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (dx));
  return res;
}

static char *
adaptive_extra_repr (NnModule *self)
{
  g_autofree char *s = nn_module_config_repr (self, "output_size");
  return g_strdup_printf ("output_size=%s", s);
}

const NnLayerType nn_adaptive_avg_pool2d_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "AdaptiveAvgPool2d",
  .doc = "2D average pooling to a fixed output size",
  .schema = adaptive_avg_pool2d_schema,
  .n_schema = G_N_ELEMENTS (adaptive_avg_pool2d_schema),
  .args = nn_pool_input_args,
  .n_args = G_N_ELEMENTS (nn_pool_input_args),
  .aliases = adaptive_avg_pool2d_aliases,
  .create = adaptive_avg_pool2d_create,
  .infer = adaptive_infer,
  .forward = adaptive_avg_pool2d_forward,
  .backward = adaptive_avg_pool2d_backward,
  .extra_repr = adaptive_extra_repr,
};

const NnLayerType nn_adaptive_max_pool2d_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "AdaptiveMaxPool2d",
  .doc = "2D max pooling to a fixed output size",
  .schema = adaptive_max_pool2d_schema,
  .n_schema = G_N_ELEMENTS (adaptive_max_pool2d_schema),
  .args = nn_pool_input_args,
  .n_args = G_N_ELEMENTS (nn_pool_input_args),
  .aliases = adaptive_max_pool2d_aliases,
  .create = adaptive_max_pool2d_create,
  .infer = adaptive_infer,
  .forward = adaptive_max_pool2d_forward,
  .extra_repr = adaptive_extra_repr,
};
