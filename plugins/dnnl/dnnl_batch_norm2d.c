/* dnnl plugin: BatchNorm2d in eval mode (running statistics) on oneDNN.
 * The statistics and affine tensors are passed by pointer on every call,
 * so loading new ones needs no rebuild. */
#include "dnnl-private.h"
#include <nnkit/train.h>
#include "norm.h"

typedef struct {
  NnShape in;        /* the input shape the primitive was built for */
  gboolean laid;             /* built for a laid-out input: */
  dnnl_memory_desc_t in_md;  /* its layout (the result keeps it) */
  gboolean affine;
  NnDnnlPrim prim;
  dnnl_memory_t mean, var, scale, shift;   /* handles set per call */
} BnState;

static void
bn_state_free (gpointer p)
{
  BnState *s = p;

  nn_dnnl_prim_clear (&s->prim);
  if (s->mean) dnnl_memory_destroy (s->mean);
  if (s->var) dnnl_memory_destroy (s->var);
  if (s->scale) dnnl_memory_destroy (s->scale);
  if (s->shift) dnnl_memory_destroy (s->shift);
  g_free (s);
}

static BnState *
bn_state_new (const NnShape *in, const dnnl_memory_desc_t *in_md, double eps,
              gboolean affine, GError **error)
{
  BnState *s = g_new0 (BnState, 1);
  dnnl_engine_t eng = nn_dnnl_engine (error);
  dnnl_memory_desc_t data, ch;
  dnnl_batch_normalization_desc_t desc;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_dims_t dd = { in->dims[0], in->dims[1], in->dims[2], in->dims[3] };
  dnnl_dims_t cd = { in->dims[1] };
  unsigned flags = dnnl_use_global_stats
                   | (affine ? dnnl_use_scale | dnnl_use_shift : 0);

  s->in = *in;
  s->laid = in_md != NULL;
  if (in_md)
    s->in_md = *in_md;
  s->affine = affine;
  gboolean ok = eng
    && nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&data, 4, dd, dnnl_f32, dnnl_nchw), "data md", error)
    && nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&ch, 1, cd, dnnl_f32, dnnl_x), "channel md", error)
    && nn_dnnl_ok (dnnl_batch_normalization_forward_desc_init (
                     &desc, dnnl_forward_inference, in_md ? in_md : &data,
                     (float) eps, flags),
                   "describing the batch norm", error)
    && (attr = nn_dnnl_attr_new (error))
    && nn_dnnl_ok (dnnl_primitive_desc_create (&pd, &desc, attr, eng, NULL),
                   "choosing a batch norm", error)
    && nn_dnnl_prim_init (&s->prim, pd, &data, &data, error)
    && nn_dnnl_ok (dnnl_memory_create (&s->mean, &ch, eng, DNNL_MEMORY_NONE), "mean", error)
    && nn_dnnl_ok (dnnl_memory_create (&s->var, &ch, eng, DNNL_MEMORY_NONE), "variance", error)
    && (!affine
        || (nn_dnnl_ok (dnnl_memory_create (&s->scale, &ch, eng, DNNL_MEMORY_NONE), "scale", error)
            && nn_dnnl_ok (dnnl_memory_create (&s->shift, &ch, eng, DNNL_MEMORY_NONE), "shift", error)));
  if (pd)
    dnnl_primitive_desc_destroy (pd);
  if (attr)
    dnnl_primitive_attr_destroy (attr);
  if (!ok)
    {
      bn_state_free (s);
      return NULL;
    }
  return s;
}

static gboolean
channel_tensor_ok (NnTensor *t, gint64 c)
{
  NnShape want = { 1, { c } };
  return t && nn_tensor_f32 (t) && nn_shape_equal (&t->shape, &want);
}

static NnValue *
dnnl_batch_norm2d_forward (NnModule *self, NnCall *call, const NnArgs *args,
                           GError **error)
{
  const gint64 c = nn_module_config_int (self, "num_features");
  const gboolean affine = nn_module_config_bool (self, "affine");
  NnTensor *x = nn_args_tensor (args, 0);
  NnTensor *w = affine ? nn_module_get_parameter (self, "weight") : NULL;
  NnTensor *b = affine ? nn_module_get_parameter (self, "bias") : NULL;
  NnTensor *rm = nn_module_get_buffer (self, "running_mean");
  NnTensor *rv = nn_module_get_buffer (self, "running_var");
  void *laid = NULL;
  const dnnl_memory_desc_t *xmd = nn_dnnl_tensor_md (x, &laid);

  /* Our laid-out input is normalised in its layout; any other is plain. */
  if ((!xmd || xmd->ndims != 4) && !nn_tensor_make_plain (x, error))
    return NULL;
  if (xmd && xmd->ndims != 4)
    xmd = NULL;

  /* Train mode uses batch statistics and updates the running ones: the
   * reference does that (docs/TRAINING.md); oneDNN here is inference.  A
   * plain input goes to the reference too: oneDNN's plain-layout kernel
   * (ncsp_bnorm) ran DenseNet's BatchNorms after torch.cat at a quarter
   * of the reference's speed, and slower still on two threads. */
  if (!xmd || nn_module_is_training (self)
      || x->shape.ndim != 4 || x->shape.dims[1] != c || nn_tensor_numel (x) == 0
      || x->dtype != NN_DTYPE_F32 || !channel_tensor_ok (rm, c) || !channel_tensor_ok (rv, c)
      || (affine && (!channel_tensor_ok (w, c) || !channel_tensor_ok (b, c))))
    return !nn_tensor_make_plain (x, error) ? NULL
           : nn_batch_norm2d_type.forward (self, call, args, error);

  NnDnnlSlot *slot = nn_dnnl_slot_lock (self);
  BnState *s = slot->state;
  if (s && (!nn_shape_equal (&s->in, &x->shape) || s->laid != (xmd != NULL)
            || (xmd && !dnnl_memory_desc_equal (&s->in_md, xmd))))
    {
      bn_state_free (s);
      slot->state = s = NULL;
    }
  if (!s)
    {
      slot->state = s = bn_state_new (&x->shape, xmd,
                                      nn_module_config_float (self, "eps"),
                                      affine, error);
      slot->state_free = bn_state_free;
    }
  NnTensor *out = NULL;
  gboolean ok = s
    && nn_dnnl_ok (dnnl_memory_set_data_handle (s->mean, rm->data), "mean", error)
    && nn_dnnl_ok (dnnl_memory_set_data_handle (s->var, rv->data), "variance", error)
    && (!affine
        || (nn_dnnl_ok (dnnl_memory_set_data_handle (s->scale, w->data), "scale", error)
            && nn_dnnl_ok (dnnl_memory_set_data_handle (s->shift, b->data), "shift", error)));
  if (ok)
    {
      dnnl_exec_arg_t extra[4] = { { DNNL_ARG_MEAN, s->mean },
                                   { DNNL_ARG_VARIANCE, s->var },
                                   { DNNL_ARG_SCALE, s->scale },
                                   { DNNL_ARG_SHIFT, s->shift } };
      out = nn_dnnl_prim_run_tensor (&s->prim, x, &x->shape,
                                     nn_dnnl_may_lay_out (call),
                                     affine ? 4 : 2, extra, error);
    }
  nn_dnnl_slot_unlock (slot);
  return out ? nn_value_take_tensor (out) : NULL;
}

/* Without running statistics PyTorch normalises by the batch's own:
 * that stays with the reference. */
static gboolean
dnnl_batch_norm2d_supports (const NnLayerType *type, JsonObject *config,
                            const NnArgs *args, const NnCpuInfo *cpu)
{
  return json_object_get_boolean_member_with_default (config, "track_running_stats", TRUE)
         && nn_cpu_has (cpu, NN_CPU_SSE4_1);
}

static void
dnnl_batch_norm2d_destroy (NnModule *self)
{
  nn_dnnl_slot_drop (self);
  if (nn_batch_norm2d_type.destroy)
    nn_batch_norm2d_type.destroy (self);
}

/* The forward the other setups left (the training path chained before
 * this file's eval forward, dnnl_batch_norm2d_bwd.c): it reads plain
 * tensors, so a training call gets its input plain. */
static NnValue *(*chained_forward) (NnModule *, NnCall *, const NnArgs *, GError **);

static NnValue *
layout_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  if (nn_module_is_training (self)
      && !nn_tensor_make_plain (nn_args_tensor (args, 0), error))
    return NULL;
  return chained_forward (self, call, args, error);
}

void
nn_dnnl_batch_norm2d_layout_setup (NnLayerType *t)
{
  chained_forward = t->forward;
  t->forward = layout_forward;
}

void
nn_dnnl_batch_norm2d_setup (NnLayerType *t)
{
  nn_dnnl_provider_init (t, &nn_batch_norm2d_type, "BatchNorm2d (running statistics) on oneDNN, as torch.nn.BatchNorm2d");
  /* oneDNN reads F32 weights itself: they are converted at load. */
  t->flags &= ~(guint) NN_LAYER_HALF_WEIGHTS;
  t->flags |= NN_LAYER_LAYOUT_AWARE;
  t->forward = dnnl_batch_norm2d_forward;
  t->supports = dnnl_batch_norm2d_supports;
  t->destroy = dnnl_batch_norm2d_destroy;
}
