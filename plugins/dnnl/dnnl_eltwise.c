/* dnnl plugin: ReLU, add and mul on laid-out tensors, so that a residual
 * block (conv -> add -> relu -> conv) or a squeeze-excitation scale
 * (x * sigmoid (fc (pool (x))), a per-channel factor) keeps oneDNN's
 * blocked layout from one convolution to the next.  ReLU and add work  Both work element by element on the blocked
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
  gboolean mul;         /* x * y instead of x + y */
} EltJob;

static void
elt_range (gsize begin, gsize end, gpointer data)
{
  EltJob *j = data;
  if (j->y && j->mul)
    for (gsize i = begin; i < end; i++)
      j->z[i] = j->x[i] * j->y[i];
  else if (j->y)
    for (gsize i = begin; i < end; i++)
      j->z[i] = j->x[i] + j->y[i];
  else
    for (gsize i = begin; i < end; i++)
      j->z[i] = j->x[i];
  if (j->relu)
    for (gsize i = begin; i < end; i++)
      j->z[i] = j->z[i] < 0.0f ? 0.0f : j->z[i];
}

/* z = x (+ or * y) (then relu) over the blocked buffers of @x and @y
 * (same layout @md) into a new tensor of @x's shape and layout.  Returns
 * (transfer full) or NULL with @error. */
static NnTensor *
eltwise_laid2 (NnCall *call, NnTensor *x, const dnnl_memory_desc_t *md,
               const void *xl, const void *yl, gboolean relu, gboolean mul,
               GError **error)
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
  EltJob j = { xl, yl, zl, relu, mul };
  nn_thread_pool_parallel_for_work (nn_call_get_thread_pool (call), n, (gint64) n,
                                    elt_range, &j);
  return z;
}

static NnTensor *
eltwise_laid (NnCall *call, NnTensor *x, const dnnl_memory_desc_t *md,
              const void *xl, const void *yl, gboolean relu, GError **error)
{
  return eltwise_laid2 (call, x, md, xl, yl, relu, FALSE, error);
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
  nn_dnnl_provider_init (t, &nn_relu_type, "ReLU, also on oneDNN's laid-out tensors, as torch.nn.ReLU");
  t->flags |= NN_LAYER_LAYOUT_AWARE;
  t->forward = dnnl_relu_forward;
}

/* --- add ----------------------------------------------------------------- */

static const NnLayerType *add_reference, *mul_reference;
static NnFuseInfo add_fuse;

/* ops/arith.c, compiled in, lists its types under their names. */
static const NnLayerType *
arith_reference (const char *name)
{
  for (guint i = 0; nn_ops_arith_types[i]; i++)
    if (strcmp (nn_ops_arith_types[i]->name, name) == 0)
      return nn_ops_arith_types[i];
  return NULL;
}

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
  add_reference = arith_reference ("add");
  g_assert (add_reference != NULL);
  nn_dnnl_provider_init (t, add_reference, "input + alpha * other, also on oneDNN's laid-out tensors");
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

/* --- mul: a laid-out tensor times a plain factor broadcast to it --------- */

/* oneDNN's binary primitive reads the blocked src0 and a plain src1 whose
 * dims are 1 or src0's (a per-channel scale [N, C, 1, 1]), and writes dst
 * in src0's layout.  Cached by the key's bytes (zeroed first). */
typedef struct {
  dnnl_memory_desc_t laid;
  gint64 bdims[4];
} MulKey;

static NnDnnlCache mul_cache;

static gboolean
mul_build (gconstpointer k, NnDnnlCached *e, GError **error)
{
  const MulKey *key = k;
  dnnl_dims_t bd = { key->bdims[0], key->bdims[1], key->bdims[2], key->bdims[3] };
  dnnl_binary_desc_t desc;

  e->md[0] = key->laid;
  e->md[2] = key->laid;
  return nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&e->md[1], 4, bd, dnnl_f32, dnnl_abcd),
                     "factor md", error)
         && nn_dnnl_ok (dnnl_binary_desc_init (&desc, dnnl_binary_mul, &e->md[0],
                                               &e->md[1], &e->md[2]),
                        "describing the product", error)
         && nn_dnnl_cached_build (e, &desc, key->laid.dims[0] * key->laid.dims[1]
                                  * key->laid.dims[2] * key->laid.dims[3],
                                  NN_WORK_GRAIN, error);
}

/* @f's dims right-aligned to @x's 4, each 1 or @x's; FALSE otherwise. */
static gboolean
factor_dims (const NnTensor *x, const NnTensor *f, gint64 out[4])
{
  if (x->shape.ndim != 4 || f->shape.ndim > 4)
    return FALSE;
  for (guint i = 0; i < 4; i++)
    {
      guint from_end = 4 - i;
      out[i] = from_end <= f->shape.ndim ? f->shape.dims[f->shape.ndim - from_end] : 1;
      if (out[i] != 1 && out[i] != x->shape.dims[i])
        return FALSE;
    }
  return TRUE;
}

/* x * f on the primitive, or NULL leaving @error unset when oneDNN has no
 * (non-reference) implementation. */
static NnTensor *
mul_laid (NnCall *call, NnTensor *x, const dnnl_memory_desc_t *md, void *xl,
          NnTensor *f, const gint64 bdims[4], GError **error)
{
  MulKey key;
  memset (&key, 0, sizeof key);
  key.laid = *md;
  memcpy (key.bdims, bdims, sizeof key.bdims);
  NnDnnlCached *e = nn_dnnl_cache_get (&mul_cache, &key, sizeof key, mul_build, error);
  if (!e)
    return NULL;
  NnTensor *z = e->prim ? nn_dnnl_tensor_new_laid (&x->shape, md, error) : NULL;
  void *zl = NULL;
  gboolean ok = z && nn_dnnl_tensor_md (z, &zl);
  if (ok)
    {
      const int ids[] = { DNNL_ARG_SRC_0, DNNL_ARG_SRC_1, DNNL_ARG_DST };
      const dnnl_memory_desc_t *mds[] = { &e->md[0], &e->md[1], &e->md[2] };
      void *data[] = { xl, f->data, zl };
      ok = nn_dnnl_cached_run (e, 3, ids, mds, data, error);
    }
  nn_dnnl_cached_unref (e);
  if (!ok && z)
    g_clear_pointer (&z, nn_tensor_unref);
  return z;
}

static NnValue *
dnnl_mul_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *a = nn_value_get_tensor (nn_args_get (args, 0));
  NnTensor *b = nn_value_get_tensor (nn_args_get (args, 1));
  void *al = NULL, *bl = NULL;
  const dnnl_memory_desc_t *amd = a ? nn_dnnl_tensor_md (a, &al) : NULL;
  const dnnl_memory_desc_t *bmd = b ? nn_dnnl_tensor_md (b, &bl) : NULL;
  /* Two operands in one layout and shape: element by element (0 * 0 in
   * the padding). */
  if (amd && bmd && dnnl_memory_desc_equal (amd, bmd)
      && a->dtype == NN_DTYPE_F32 && b->dtype == NN_DTYPE_F32
      && nn_shape_equal (&a->shape, &b->shape) && nn_dnnl_may_lay_out (call))
    {
      NnTensor *z = eltwise_laid2 (call, a, amd, al, bl, FALSE, TRUE, error);
      return z ? nn_value_take_tensor (z) : NULL;
    }
  /* A laid-out operand of the result's shape times a float32 factor that
   * broadcasts to it, made plain if it is not (products commute exactly
   * in floating point, so the order does not matter). */
  gint64 bdims[4];
  NnTensor *x = NULL, *f = NULL;
  const dnnl_memory_desc_t *md = NULL;
  void *xl = NULL;
  if (amd && b && factor_dims (a, b, bdims))
    x = a, f = b, md = amd, xl = al;
  else if (bmd && a && factor_dims (b, a, bdims))
    x = b, f = a, md = bmd, xl = bl;

  if (x && f && x->dtype == NN_DTYPE_F32 && f->dtype == NN_DTYPE_F32
      && nn_dnnl_may_lay_out (call))
    {
      GError *local = NULL;
      if (!nn_tensor_make_plain (f, error))
        return NULL;
      NnTensor *z = mul_laid (call, x, md, xl, f, bdims, &local);
      if (z)
        return nn_value_take_tensor (z);
      if (local)
        {
          g_propagate_error (error, local);
          return NULL;
        }
    }
  if ((a && !nn_tensor_make_plain (a, error)) || (b && !nn_tensor_make_plain (b, error)))
    return NULL;
  return mul_reference->forward (self, call, args, error);
}

void
nn_dnnl_mul_setup (NnLayerType *t)
{
  mul_reference = arith_reference ("mul");
  g_assert (mul_reference != NULL);
  nn_dnnl_provider_init (t, mul_reference, "input * other, also a oneDNN laid-out tensor times a factor");
  t->flags |= NN_LAYER_LAYOUT_AWARE;
  t->forward = dnnl_mul_forward;
}

/* Before the plugin is unmapped. */
__attribute__ ((destructor)) static void
dnnl_eltwise_unload (void)
{
  nn_dnnl_cache_clear (&mul_cache);
}
