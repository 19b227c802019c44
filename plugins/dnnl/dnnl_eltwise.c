/* dnnl plugin: ReLU and add on laid-out tensors, so that a residual block
 * (conv -> add -> relu -> conv) keeps oneDNN's blocked layout from one
 * convolution to the next.  Both work element by element on the blocked
 * buffers, padding included: relu (0) and 0 + 0 are 0, so the padding
 * stays zero.  Anything else (plain operands, broadcasting, another dtype,
 * alpha, two different layouts, an epilogue other than ReLU) runs the
 * reference type, compiled in, on plain tensors. */
#include "dnnl-private.h"

#include <string.h>

extern const NnLayerType nn_relu_type;
extern const NnLayerType *const nn_ops_arith_types[];

typedef struct {
  const float *x, *y;   /* y NULL: x alone */
  float *z;
  gboolean relu;        /* then max (z, 0); NaN propagates, as ReLU's */
} EltJob;

static void
elt_range (gsize begin, gsize end, gpointer data)
{
  EltJob *j = data;
  if (j->y)
    for (gsize i = begin; i < end; i++)
      j->z[i] = j->x[i] + j->y[i];
  else
    for (gsize i = begin; i < end; i++)
      j->z[i] = j->x[i];
  if (j->relu)
    for (gsize i = begin; i < end; i++)
      j->z[i] = j->z[i] < 0.0f ? 0.0f : j->z[i];
}

/* z = x (+ y) (then relu) over the blocked buffers of @x and @y (same
 * layout @md) into a new tensor of @x's shape and layout.  Returns
 * (transfer full) or NULL with @error. */
static NnTensor *
eltwise_laid (NnCall *call, NnTensor *x, const dnnl_memory_desc_t *md,
              const void *xl, const void *yl, gboolean relu, GError **error)
{
  NnTensor *z = nn_dnnl_tensor_new_laid (&x->shape, md, error);
  void *zl = NULL;
  if (!z || !nn_dnnl_tensor_md (z, &zl))
    {
      if (z)
        nn_tensor_unref (z);
      return NULL;
    }
  gsize n = dnnl_memory_desc_get_size (md) / sizeof (float);
  EltJob j = { xl, yl, zl, relu };
  nn_thread_pool_parallel_for_work (nn_call_get_thread_pool (call), n, (gint64) n,
                                    elt_range, &j);
  return z;
}

/* --- ReLU ---------------------------------------------------------------- */

static NnValue *
dnnl_relu_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *x = nn_args_tensor (args, 0);
  void *xl = NULL;
  const dnnl_memory_desc_t *md = nn_dnnl_tensor_md (x, &xl);

  if (md && x->dtype == NN_DTYPE_F32 && nn_dnnl_may_lay_out (call))
    {
      NnTensor *z = eltwise_laid (call, x, md, xl, NULL, TRUE, error);
      return z ? nn_value_take_tensor (z) : NULL;
    }
  if (!nn_tensor_make_plain (x, error))
    return NULL;
  return nn_relu_type.forward (self, call, args, error);
}

void
nn_dnnl_relu_setup (NnLayerType *t)
{
  *t = nn_relu_type;
  t->doc = "ReLU, also on oneDNN's laid-out tensors, as torch.nn.ReLU";
  t->aliases = NULL;
  t->rank = NN_DNNL_RANK;
  t->flags |= NN_LAYER_LAYOUT_AWARE;
  t->forward = dnnl_relu_forward;
}

/* --- add ----------------------------------------------------------------- */

static const NnLayerType *add_reference;
static NnFuseInfo add_fuse;

/* alpha is 1 (the default, or given as 1, 1.0 or True). */
static gboolean
alpha_is_one (const NnArgs *args)
{
  if (nn_args_n (args) < 3)
    return TRUE;
  const NnValue *v = nn_args_get (args, 2);
  switch (nn_value_kind (v))
    {
    case NN_VALUE_INT:
      return nn_value_get_int (v) == 1;
    case NN_VALUE_FLOAT:
      return nn_value_get_float (v) == 1.0;
    case NN_VALUE_BOOL:
      return nn_value_get_bool (v);
    default:
      return FALSE;
    }
}

/* The forward, with the epilogue @ep (nullable) of a fused plan step when
 * the reference declares one (an activation after the add). */
static NnValue *
dnnl_add_run (NnModule *self, NnCall *call, const NnArgs *args,
              const NnEpilogue *ep, GError **error)
{
  NnTensor *a = nn_value_get_tensor (nn_args_get (args, 0));
  NnTensor *b = nn_value_get_tensor (nn_args_get (args, 1));
  void *al = NULL, *bl = NULL;
  const dnnl_memory_desc_t *amd = a ? nn_dnnl_tensor_md (a, &al) : NULL;
  const dnnl_memory_desc_t *bmd = b ? nn_dnnl_tensor_md (b, &bl) : NULL;
  gboolean relu = ep && ep->act == NN_ACT_RELU && ep->alpha == 0.0f;

  /* Two results of oneDNN steps in one layout: the blocked buffers line
   * up element for element. */
  if (amd && bmd && dnnl_memory_desc_equal (amd, bmd)
      && a->dtype == NN_DTYPE_F32 && b->dtype == NN_DTYPE_F32
      && nn_shape_equal (&a->shape, &b->shape) && alpha_is_one (args)
      && (!ep || (ep->n_channels == 0 && (relu || ep->act == NN_ACT_NONE)))
      && nn_dnnl_may_lay_out (call))
    {
      NnTensor *z = eltwise_laid (call, a, amd, al, bl, relu, error);
      return z ? nn_value_take_tensor (z) : NULL;
    }
  if ((a && !nn_tensor_make_plain (a, error)) || (b && !nn_tensor_make_plain (b, error)))
    return NULL;
  return ep ? add_reference->fuse->forward_fused (self, call, args, ep, error)
            : add_reference->forward (self, call, args, error);
}

static NnValue *
dnnl_add_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return dnnl_add_run (self, call, args, NULL, error);
}

void
nn_dnnl_add_setup (NnLayerType *t)
{
  /* ops/arith.c, compiled in, lists it under its name. */
  for (guint i = 0; nn_ops_arith_types[i] && !add_reference; i++)
    if (strcmp (nn_ops_arith_types[i]->name, "add") == 0)
      add_reference = nn_ops_arith_types[i];
  g_assert (add_reference != NULL);
  *t = *add_reference;
  t->doc = "input + alpha * other, also on oneDNN's laid-out tensors";
  t->aliases = NULL;
  t->rank = NN_DNNL_RANK;
  t->flags |= NN_LAYER_LAYOUT_AWARE;
  t->forward = dnnl_add_forward;
  /* A fused epilogue the reference may declare reaches this file first:
   * its forward_fused reads plain tensors only. */
  if (add_reference->fuse && add_reference->fuse->forward_fused)
    {
      add_fuse = *add_reference->fuse;
      add_fuse.forward_fused = dnnl_add_run;
      t->fuse = &add_fuse;
    }
}
