/* dnnl plugin: AdaptiveAvgPool2d on oneDNN's average pooling, when the
 * output size divides the input's (every window then has the same size
 * and stride: the global average pool of a classifier or of a
 * squeeze-excitation block).  The point is the layout: a laid-out input is
 * pooled as it is, where the reference made the whole activation plain
 * first (efficientnet_b0: 16 of its 27 reorders per forward).  Other
 * sizes, PyTorch's overlapping windows, stay with the reference. */
#include "dnnl-private.h"

/* The windows of output size @out over @in as a plain pooling, when every
 * one has the same size: FALSE otherwise. */
static gboolean
uniform_windows (const NnShape *in, const gint64 out[2], NnPoolGeom *geom)
{
  guint h = in->ndim - 2;

  memset (geom, 0, sizeof *geom);
  for (int i = 0; i < 2; i++)
    {
      gint64 n = in->dims[h + i];
      if (out[i] < 1 || n < out[i] || n % out[i] != 0)
        return FALSE;
      geom->kernel[i] = geom->stride[i] = n / out[i];
      geom->dilation[i] = 1;
    }
  return TRUE;
}

static NnValue *
dnnl_adaptive_avg_pool2d_forward (NnModule *self, NnCall *call,
                                  const NnArgs *args, GError **error)
{
  NnTensor *x = nn_args_tensor (args, 0);
  const NnLayerType *ref = &nn_adaptive_avg_pool2d_type;
  gint64 out[2];
  NnPoolGeom geom;

  nn_module_config_ints (self, "output_size", out, 2);
  /* No padding in uniform windows: both of oneDNN's averages divide by
   * the window's size, as PyTorch does. */
  if (x && (x->shape.ndim == 3 || x->shape.ndim == 4)
      && uniform_windows (&x->shape, out, &geom))
    return nn_dnnl_pool_forward (self, call, args,
                                 dnnl_pooling_avg_exclude_padding, &geom,
                                 ref, error);
  if (x && !nn_tensor_make_plain (x, error))
    return NULL;
  return ref->forward (self, call, args, error);
}

static void
dnnl_adaptive_avg_pool2d_destroy (NnModule *self)
{
  nn_dnnl_slot_drop (self);
  if (nn_adaptive_avg_pool2d_type.destroy)
    nn_adaptive_avg_pool2d_type.destroy (self);
}

void
nn_dnnl_adaptive_avg_pool2d_setup (NnLayerType *t)
{
  nn_dnnl_provider_init (t, &nn_adaptive_avg_pool2d_type,
                         "AdaptiveAvgPool2d on oneDNN where the output size "
                         "divides the input's, as torch.nn.AdaptiveAvgPool2d");
  t->flags |= NN_LAYER_LAYOUT_AWARE;
  t->forward = dnnl_adaptive_avg_pool2d_forward;
  t->supports = nn_dnnl_supports_cpu;
  t->destroy = dnnl_adaptive_avg_pool2d_destroy;
}
