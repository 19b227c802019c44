/* dnnl plugin: the float32 matrix-product ops (matmul and its aliases
 * torch.matmul, operator.matmul, Tensor.__matmul__; mm; bmm;
 * torch.nn.functional.linear) on oneDNN's matmul primitive.  Each is the
 * ops plugin's type (plugins/ops/matmul.c, compiled in) with only forward
 * replaced: anything but float32 operands of shapes the product takes
 * (other dtypes, meta tensors, empty or mismatched operands, bias shapes
 * other than [out_features]) runs the reference forward, which computes
 * or reports it exactly as without this provider. */
#include "dnnl-private.h"
#include "ops.h"

#include <string.h>

/* The ops plugin's entry point is not compiled in; its op types name
 * this create (ops have no config and no state). */
gboolean
nn_ops_create (NnModule *self, GError **error)
{
  return TRUE;
}

static const NnLayerType *
reference (const char *name)
{
  for (const NnLayerType *const *t = nn_ops_matmul_types; *t; t++)
    if (g_str_equal ((*t)->name, name))
      return *t;
  g_assert_not_reached ();
  return NULL;
}

static const NnLayerType *ref_matmul, *ref_mm, *ref_bmm, *ref_linear;

static gboolean
usable (NnTensor *t)
{
  return t && t->dtype == NN_DTYPE_F32 && !nn_tensor_is_meta (t)
         && t->shape.ndim >= 1 && nn_tensor_numel (t) > 0;
}

/* Plans @a @ @b as torch.matmul does (a 1-d left operand is a row, a 1-d
 * right one a column, the dims they gain dropped; batch dims broadcast;
 * @exact_batch: mm and bmm, which do not broadcast).  FALSE when the
 * reference should run: errors, empty results, other dtypes. */
static gboolean
plan_product (NnTensor *a, NnTensor *b, gboolean exact_batch,
              NnDnnlMatmulKey *key, NnShape *out)
{
  if (!usable (a) || !usable (b))
    return FALSE;
  gint64 ad[NN_MAX_DIMS + 1], bd[NN_MAX_DIMS + 1];
  guint an = a->shape.ndim, bn = b->shape.ndim;
  gboolean drop_m = an == 1, drop_n = bn == 1;
  memcpy (ad + (an == 1), a->shape.dims, sizeof (gint64) * an);
  memcpy (bd, b->shape.dims, sizeof (gint64) * bn);
  if (drop_m)
    ad[0] = 1, an = 2;
  if (drop_n)
    bd[1] = 1, bn = 2;
  guint nd = MAX (an, bn);
  if (nd > NN_DNNL_MATMUL_MAX_DIMS || ad[an - 1] != bd[bn - 2])
    return FALSE;
  nn_dnnl_matmul_key_init (key, nd);
  /* Right-aligned, the shorter operand's batch padded with ones. */
  for (guint i = 0; i < nd; i++)
    {
      key->a_dims[i] = i < nd - an ? 1 : ad[i - (nd - an)];
      key->b_dims[i] = i < nd - bn ? 1 : bd[i - (nd - bn)];
    }
  out->ndim = 0;
  for (guint i = 0; i + 2 < nd; i++)
    {
      gint64 x = key->a_dims[i], y = key->b_dims[i];
      if (x != y && (exact_batch || (x != 1 && y != 1)))
        return FALSE;
      key->c_dims[i] = MAX (x, y);
      out->dims[out->ndim++] = key->c_dims[i];
    }
  key->c_dims[nd - 2] = key->a_dims[nd - 2];
  key->c_dims[nd - 1] = key->b_dims[nd - 1];
  if (!drop_m)
    out->dims[out->ndim++] = key->c_dims[nd - 2];
  if (!drop_n)
    out->dims[out->ndim++] = key->c_dims[nd - 1];
  nn_dnnl_matmul_key_contiguous (key->a_dims, nd, key->a_strides);
  nn_dnnl_matmul_key_contiguous (key->b_dims, nd, key->b_strides);
  return nn_shape_numel (out) > 0;
}

/* Runs @key into a new tensor of @out; the reference @ref when oneDNN
 * declines. */
static NnValue *
run (const NnLayerType *ref, NnModule *self, NnCall *call, const NnArgs *args,
     const NnDnnlMatmulKey *key, const NnShape *out, NnTensor *a, NnTensor *b,
     NnTensor *bias, GError **error)
{
  NnTensor *r = nn_tensor_new_uninitialized (NN_DTYPE_F32, out);
  if (!r)
    {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "%s: cannot allocate the result", ref->name);
      return NULL;
    }
  switch (nn_dnnl_matmul_run (key, nn_tensor_f32 (a), nn_tensor_f32 (b),
                              bias ? nn_tensor_f32 (bias) : NULL,
                              nn_tensor_f32 (r), error))
    {
    case NN_DNNL_DONE:
      return nn_value_take_tensor (r);
    case NN_DNNL_DECLINED:
      nn_tensor_unref (r);
      return ref->forward (self, call, args, error);
    case NN_DNNL_FAILED:
    default:
      nn_tensor_unref (r);
      return NULL;
    }
}

static NnValue *
product_forward (const NnLayerType *ref, guint need_nd, NnModule *self,
                 NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *a = nn_args_tensor (args, 0), *b = nn_args_tensor (args, 1);
  NnDnnlMatmulKey key;
  NnShape out;

  if ((need_nd && (!a || !b || a->shape.ndim != need_nd || b->shape.ndim != need_nd))
      || !plan_product (a, b, need_nd != 0, &key, &out))
    return ref->forward (self, call, args, error);
  return run (ref, self, call, args, &key, &out, a, b, NULL, error);
}

static NnValue *
dnnl_matmul_forward (NnModule *self, NnCall *call, const NnArgs *args,
                     GError **error)
{
  return product_forward (ref_matmul, 0, self, call, args, error);
}

static NnValue *
dnnl_mm_forward (NnModule *self, NnCall *call, const NnArgs *args,
                 GError **error)
{
  return product_forward (ref_mm, 2, self, call, args, error);
}

static NnValue *
dnnl_bmm_forward (NnModule *self, NnCall *call, const NnArgs *args,
                  GError **error)
{
  return product_forward (ref_bmm, 3, self, call, args, error);
}

/* F.linear (x [..., in], weight [out, in], bias [out] or None): the rows
 * of x times the weight read transposed through its strides. */
static NnValue *
dnnl_linear_fn_forward (NnModule *self, NnCall *call, const NnArgs *args,
                        GError **error)
{
  NnTensor *x = nn_args_tensor (args, 0), *w = nn_args_tensor (args, 1);
  NnTensor *bias = nn_args_tensor (args, 2);

  if (!usable (x) || !usable (w) || w->shape.ndim != 2
      || x->shape.dims[x->shape.ndim - 1] != w->shape.dims[1]
      || (bias && (!usable (bias) || bias->shape.ndim != 1
                   || bias->shape.dims[0] != w->shape.dims[0])))
    return ref_linear->forward (self, call, args, error);
  gint64 in_f = w->shape.dims[1], out_f = w->shape.dims[0];
  NnDnnlMatmulKey key;
  nn_dnnl_matmul_key_init (&key, 2);
  key.bias = bias != NULL;
  key.a_dims[0] = nn_tensor_numel (x) / in_f;
  key.a_dims[1] = in_f;
  key.a_strides[0] = in_f;
  key.a_strides[1] = 1;
  key.b_dims[0] = in_f;
  key.b_dims[1] = out_f;
  key.b_strides[0] = 1;
  key.b_strides[1] = in_f;
  key.c_dims[0] = key.a_dims[0];
  key.c_dims[1] = out_f;
  NnShape out = x->shape;
  out.dims[out.ndim - 1] = out_f;
  return run (ref_linear, self, call, args, &key, &out, x, w, bias, error);
}

typedef NnValue *(*ForwardFunc) (NnModule *self, NnCall *call,
                                const NnArgs *args, GError **error);

static void
setup (NnLayerType *t, const NnLayerType *ref, ForwardFunc forward,
       const char *doc)
{
  nn_dnnl_provider_init (t, ref, doc);
  t->forward = forward;
  t->supports = nn_dnnl_supports_cpu;
}

void
nn_dnnl_matmul_setup (NnLayerType *t)
{
  ref_matmul = reference ("matmul");
  setup (t, ref_matmul, dnnl_matmul_forward,
         "matrix product with broadcasting on oneDNN's matmul (float32)");
}

void
nn_dnnl_mm_setup (NnLayerType *t)
{
  ref_mm = reference ("mm");
  setup (t, ref_mm, dnnl_mm_forward,
         "product of two matrices on oneDNN's matmul (float32)");
}

void
nn_dnnl_bmm_setup (NnLayerType *t)
{
  ref_bmm = reference ("bmm");
  setup (t, ref_bmm, dnnl_bmm_forward,
         "batched product of 3-d tensors on oneDNN's matmul (float32)");
}

void
nn_dnnl_linear_fn_setup (NnLayerType *t)
{
  ref_linear = reference ("linear");
  setup (t, ref_linear, dnnl_linear_fn_forward,
         "input @ weight.T + bias on oneDNN's matmul (float32)");
}
