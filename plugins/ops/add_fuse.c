/* ops plugin: what the execution plan may fuse with add
 * (docs/ENGINE.md, "Fusion").  As an absorbed step add is a residual add
 * (NN_FUSE_AS_ADD): a producer declaring NN_FUSE_ACCEPT_ADD adds the other
 * operand in its own epilogue.  As a producer it applies the activation
 * after it in the same pass: act (input + other). */
#include "ops.h"

/* Elements per block: the sum is still in cache when the activation
 * reads it. */
#define ADD_BLOCK 2048

static gboolean
add_describe (NnModule *self, NnFuseOp *op)
{
  op->role = NN_FUSE_AS_ADD;
  return TRUE;
}

static gboolean
alpha_is_one (const NnValue *alpha)
{
  if (!alpha || nn_value_is_none (alpha))
    return TRUE;
  if (nn_value_kind (alpha) == NN_VALUE_INT)
    return nn_value_get_int (alpha) == 1;
  return nn_value_kind (alpha) == NN_VALUE_FLOAT
         && nn_value_get_float (alpha) == 1.0;
}

static NnValue *
add_forward_fused (NnModule *self, NnCall *call, const NnArgs *args,
                   const NnEpilogue *ep, GError **error)
{
  NnValue *va = nn_args_get (args, 0), *vb = nn_args_get (args, 1);
  NnTensor *a = nn_value_get_tensor (va), *b = nn_value_get_tensor (vb);

  /* The core gives an add producer an activation only. */
  if (ep->n_channels > 0 || ep->residual)
    {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "add: a fused epilogue with an affine or a residual is not "
                   "supported (the core asked for one add does not declare)");
      return NULL;
    }
  if (a && b && a->dtype == NN_DTYPE_F32 && b->dtype == NN_DTYPE_F32
      && !nn_tensor_is_meta (a) && !nn_tensor_is_meta (b)
      && nn_shape_equal (&a->shape, &b->shape)
      && alpha_is_one (nn_args_get (args, 2)))
    {
      NnTensor *out = nn_tensor_new (NN_DTYPE_F32, &a->shape);
      if (!out)
        {
          g_autofree char *s = nn_shape_to_string (&a->shape);
          g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                       "add: cannot allocate the result %s", s);
          return NULL;
        }
      const float *x = nn_tensor_f32 (a), *y = nn_tensor_f32 (b);
      float *z = nn_tensor_f32 (out);
      gint64 n = nn_tensor_numel (out);
      for (gint64 i = 0; i < n; i += ADD_BLOCK)
        {
          gint64 w = MIN (ADD_BLOCK, n - i);
          for (gint64 k = i; k < i + w; k++)
            z[k] = x[k] + y[k];
          nn_fuse_apply_act (z + i, (gsize) w, ep->act, ep->alpha, ep->beta);
        }
      return nn_value_take_tensor (out);
    }

  /* Broadcasting, a scalar or alpha: the op, then the activation on its
   * new result (float32 when every tensor operand is, as the core
   * checked). */
  NnValue *res = nn_ops_add_forward (self, call, args, error);
  NnTensor *t = res ? nn_value_get_tensor (res) : NULL;
  if (res && (!t || t->dtype != NN_DTYPE_F32 || t == a || t == b))
    {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "add: a fused activation needs a new float32 result");
      nn_value_unref (res);
      return NULL;
    }
  if (res)
    nn_fuse_apply_act (nn_tensor_f32 (t), (gsize) nn_tensor_numel (t), ep->act,
                       ep->alpha, ep->beta);
  return res;
}

const NnFuseInfo nn_ops_add_fuse = {
  .struct_size = sizeof (NnFuseInfo),
  .act_kinds = NN_ACT_BIT (NN_ACT_RELU) | NN_ACT_BIT (NN_ACT_CLIP)
               | NN_ACT_BIT (NN_ACT_SILU) | NN_ACT_BIT (NN_ACT_HARDSWISH)
               | NN_ACT_BIT (NN_ACT_GELU_ERF) | NN_ACT_BIT (NN_ACT_GELU_TANH)
               | NN_ACT_BIT (NN_ACT_SIGMOID) | NN_ACT_BIT (NN_ACT_TANH),
  .forward_fused = add_forward_fused,
  .describe = add_describe,
};
