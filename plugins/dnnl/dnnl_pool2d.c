/* dnnl plugin: MaxPool2d and AvgPool2d on oneDNN's pooling, on plain
 * NCHW or on a oneDNN step's laid-out result (read in its blocked layout,
 * the result left in it).  PyTorch's ceil_mode becomes extra right/bottom
 * padding. */
#include "dnnl-private.h"
#include "pool.h"

typedef struct {
  NnShape in;   /* the 4-D input shape the primitive was built for */
  gboolean laid;             /* built for a laid-out input: */
  dnnl_memory_desc_t in_md;  /* its layout */
  NnDnnlPrim prim;
} PoolState;

static void
pool_state_free (gpointer p)
{
  PoolState *s = p;

  nn_dnnl_prim_clear (&s->prim);
  g_free (s);
}

static PoolState *
pool_state_new (dnnl_alg_kind_t alg, const NnPoolGeom *geom,
                const NnShape *in4, const NnShape *out4,
                const dnnl_memory_desc_t *in_md, GError **error)
{
  PoolState *s = g_new0 (PoolState, 1);
  dnnl_engine_t eng = nn_dnnl_engine (error);
  dnnl_memory_desc_t src, dst, dst_any;
  dnnl_pooling_v2_desc_t desc;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_dims_t sd = { in4->dims[0], in4->dims[1], in4->dims[2], in4->dims[3] };
  dnnl_dims_t dd = { out4->dims[0], out4->dims[1], out4->dims[2], out4->dims[3] };
  dnnl_dims_t strides = { geom->stride[0], geom->stride[1] };
  dnnl_dims_t kernel = { geom->kernel[0], geom->kernel[1] };
  dnnl_dims_t dil = { geom->dilation[0] - 1, geom->dilation[1] - 1 };
  dnnl_dims_t pl = { geom->padding[0], geom->padding[1] };
  dnnl_dims_t pr;

  /* The right padding that makes oneDNN's floor division give PyTorch's
   * (possibly ceil-mode) output size; never less than the left. */
  for (int i = 0; i < 2; i++)
    {
      gint64 need = (out4->dims[2 + i] - 1) * geom->stride[i]
                    + geom->dilation[i] * (geom->kernel[i] - 1) + 1
                    - in4->dims[2 + i] - geom->padding[i];
      pr[i] = MAX (need, geom->padding[i]);
    }
  s->in = *in4;
  s->laid = in_md != NULL;
  if (in_md)
    s->in_md = *in_md;
  /* On a laid-out input the pooling runs in that layout and chooses its
   * result's (the same blocking); on a plain one, plain in and out. */
  gboolean ok = eng
    && nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&src, 4, sd, dnnl_f32, dnnl_nchw), "src md", error)
    && nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&dst, 4, dd, dnnl_f32, dnnl_nchw), "dst md", error)
    && nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&dst_any, 4, dd, dnnl_f32, dnnl_format_tag_any), "dst md", error)
    && nn_dnnl_ok (dnnl_pooling_v2_forward_desc_init (&desc, dnnl_forward_inference,
                                                      alg, in_md ? in_md : &src,
                                                      in_md ? &dst_any : &dst, strides,
                                                      kernel, dil, pl, pr),
                   "describing the pooling", error)
    && (attr = nn_dnnl_attr_new (error))
    && nn_dnnl_ok (dnnl_primitive_desc_create (&pd, &desc, attr, eng, NULL),
                   "choosing a pooling", error)
    && nn_dnnl_prim_init (&s->prim, pd, &src, &dst, error);
  if (pd)
    dnnl_primitive_desc_destroy (pd);
  if (attr)
    dnnl_primitive_attr_destroy (attr);
  if (!ok)
    {
      pool_state_free (s);
      return NULL;
    }
  return s;
}

/* TRUE when @x holds a NaN.  A branch-free OR so it vectorises. */
static gboolean
any_nan (const float *x, gint64 n)
{
  int found = 0;
  for (gint64 i = 0; i < n; i++)
    found |= x[i] != x[i];
  return found != 0;
}

NnValue *
nn_dnnl_pool_forward (NnModule *self, NnCall *call, const NnArgs *args,
                      dnnl_alg_kind_t alg, const NnPoolGeom *geom,
                      const NnLayerType *reference, GError **error)
{
  NnTensor *x = nn_args_tensor (args, 0);
  NnShape os, in4, out4;
  void *laid = NULL;
  const dnnl_memory_desc_t *xmd = nn_dnnl_tensor_md (x, &laid);

  if (!xmd && !nn_tensor_make_plain (x, error))
    return NULL;
  /* PyTorch's max pooling propagates NaN, oneDNN's drops it: an input
   * with a NaN goes to the reference (a scan is cheap beside the pool;
   * a laid-out input's padding is zeros). */
  if (x->dtype != NN_DTYPE_F32 || nn_tensor_numel (x) == 0
      || !nn_pool_geom_out_shape (geom, &x->shape, &os, NULL)
      || (alg == dnnl_pooling_max
          && (xmd ? any_nan (laid, (gint64) (dnnl_memory_desc_get_size (xmd) / sizeof (float)))
                  : any_nan (nn_tensor_f32 (x), nn_tensor_numel (x)))))
    return !nn_tensor_make_plain (x, error) ? NULL
           : reference->forward (self, call, args, error);
  in4 = x->shape;
  out4 = os;
  if (x->shape.ndim == 3)
    {
      in4 = (NnShape) { 4, { 1, x->shape.dims[0], x->shape.dims[1], x->shape.dims[2] } };
      out4 = (NnShape) { 4, { 1, os.dims[0], os.dims[1], os.dims[2] } };
    }
  /* A laid-out input of another rank than the 4-D primitive's is read
   * plain (the 3-D case wraps a batch of one around it). */
  if (xmd && xmd->ndims != 4)
    {
      if (!nn_tensor_make_plain (x, error))
        return NULL;
      xmd = NULL;
    }

  NnDnnlSlot *slot = nn_dnnl_slot_lock (self);
  PoolState *s = slot->state;
  if (s && (!nn_shape_equal (&s->in, &in4) || s->laid != (xmd != NULL)
            || (xmd && !dnnl_memory_desc_equal (&s->in_md, xmd))))
    {
      pool_state_free (s);
      slot->state = s = NULL;
    }
  if (!s)
    {
      slot->state = s = pool_state_new (alg, geom, &in4, &out4, xmd, error);
      slot->state_free = pool_state_free;
    }
  NnTensor *out = s ? nn_dnnl_prim_run_tensor (&s->prim, x, &os,
                                               nn_dnnl_may_lay_out (call),
                                               0, NULL, error)
                    : NULL;
  nn_dnnl_slot_unlock (slot);
  return out ? nn_value_take_tensor (out) : NULL;
}

static NnValue *
dnnl_max_pool2d_forward (NnModule *self, NnCall *call, const NnArgs *args,
                         GError **error)
{
  return nn_dnnl_pool_forward (self, call, args, dnnl_pooling_max,
                       nn_module_get_private (self), &nn_max_pool2d_type,
                       error);
}

static NnValue *
dnnl_avg_pool2d_forward (NnModule *self, NnCall *call, const NnArgs *args,
                         GError **error)
{
  NnPoolGeom geom;

  /* The reference's create checked the config; reading it cannot fail. */
  if (!nn_pool_geom_read (self, FALSE, &geom, error))
    return NULL;
  return nn_dnnl_pool_forward (self, call, args,
                               nn_module_config_bool (self, "count_include_pad")
                                 ? dnnl_pooling_avg_include_padding
                                 : dnnl_pooling_avg_exclude_padding,
                               &geom, &nn_avg_pool2d_type, error);
}

/* The (output, indices) tuple of return_indices is the reference's. */
static gboolean
dnnl_max_pool2d_supports (const NnLayerType *type, JsonObject *config,
                          const NnArgs *args, const NnCpuInfo *cpu)
{
  return !json_object_get_boolean_member_with_default (config, "return_indices", FALSE)
         && nn_cpu_has (cpu, NN_CPU_SSE4_1);
}

/* oneDNN divides every window by kernel_size when padding counts, but
 * PyTorch clips ceil_mode's overhanging windows to the padded input; and
 * it has no divisor_override.  Those stay with the reference. */
static gboolean
dnnl_avg_pool2d_supports (const NnLayerType *type, JsonObject *config,
                          const NnArgs *args, const NnCpuInfo *cpu)
{
  JsonNode *div = json_object_get_member (config, "divisor_override");
  gboolean ceil = json_object_get_boolean_member_with_default (config, "ceil_mode", FALSE);
  gboolean count_pad = json_object_get_boolean_member_with_default (
    config, "count_include_pad", TRUE);

  return (!div || JSON_NODE_HOLDS_NULL (div)) && !(ceil && count_pad)
         && nn_cpu_has (cpu, NN_CPU_SSE4_1);
}

static void
dnnl_max_pool2d_destroy (NnModule *self)
{
  nn_dnnl_slot_drop (self);
  if (nn_max_pool2d_type.destroy)
    nn_max_pool2d_type.destroy (self);
}

static void
dnnl_avg_pool2d_destroy (NnModule *self)
{
  nn_dnnl_slot_drop (self);
  if (nn_avg_pool2d_type.destroy)
    nn_avg_pool2d_type.destroy (self);
}

void
nn_dnnl_max_pool2d_setup (NnLayerType *t)
{
  nn_dnnl_provider_init (t, &nn_max_pool2d_type, "MaxPool2d on oneDNN, as torch.nn.MaxPool2d");
  t->flags |= NN_LAYER_LAYOUT_AWARE;
  t->forward = dnnl_max_pool2d_forward;
  t->supports = dnnl_max_pool2d_supports;
  t->destroy = dnnl_max_pool2d_destroy;
}

void
nn_dnnl_avg_pool2d_setup (NnLayerType *t)
{
  nn_dnnl_provider_init (t, &nn_avg_pool2d_type, "AvgPool2d on oneDNN, as torch.nn.AvgPool2d");
  t->flags |= NN_LAYER_LAYOUT_AWARE;
  t->forward = dnnl_avg_pool2d_forward;
  t->supports = dnnl_avg_pool2d_supports;
  t->destroy = dnnl_avg_pool2d_destroy;
}
