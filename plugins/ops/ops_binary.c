/* ops plugin: binary element-wise ops over tensors and Python scalars,
 * with broadcasting and PyTorch's type promotion. */
#include "ops.h"

/* Two Python numbers: Python's own arithmetic, giving a Python number. */
static NnValue *
binary_python (const NnOpsBinary *op, const NnValue *a, const NnValue *b,
               const NnValue *alpha, GError **error)
{
  gboolean any_float = nn_value_kind (a) == NN_VALUE_FLOAT
                       || nn_value_kind (b) == NN_VALUE_FLOAT
                       || (alpha && nn_value_kind (alpha) == NN_VALUE_FLOAT);
  if (any_float || op->int_to_float)
    {
      double vb = nn_value_get_float (b);
      if (alpha)
        vb *= nn_value_get_float (alpha);
      if (op->int_to_float && vb == 0)
        {
          nn_ops_fail (error, "%s: float division by zero", op->name);
          return NULL;
        }
      double r = op->f (nn_value_get_float (a), vb);
      return op->out_bool ? nn_value_new_bool (r != 0) : nn_value_new_float (r);
    }
  gint64 vb = nn_value_get_int (b), r;
  if (alpha)
    vb = (gint64) ((guint64) vb * (guint64) nn_value_get_int (alpha));
  if (!op->i (nn_value_get_int (a), vb, &r, error))
    return NULL;
  if (op->out_bool)
    return nn_value_new_bool (r != 0);
  return nn_value_new_int (r);
}

static NnTensor *
operand (const NnValue *v, NnDType compute)
{
  if (nn_value_kind (v) == NN_VALUE_TENSOR)
    return nn_tensor_ref (nn_value_get_tensor (v));
  return nn_ops_scalar_tensor (v, compute);
}

static gboolean
check_kind (const NnOpsBinary *op, const NnValue *v, const char *which,
            GError **error)
{
  if (nn_value_kind (v) == NN_VALUE_TENSOR || nn_ops_is_scalar_value (v))
    return TRUE;
  return nn_ops_fail (error, "%s(): argument '%s' must be a Tensor or a "
                      "number, found %s", op->name, which,
                      nn_value_kind_name (nn_value_kind (v)));
}

/* float32 by runs on the op's own kernel (x * scale, x + bias: one
 * kernel call per run instead of an iterator step per element). */
static NnValue *
binary_f32_runs (const NnOpsBinary *op, NnTensor *ta, NnTensor *tb,
                 NnTensor *out)
{
  const NnShape *ins[] = { &ta->shape, &tb->shape };
  const float *x = ta->data, *y = tb->data;
  float *z = out->data;
  NnOpsRuns r;
  if (nn_tensor_numel (out) == 0)
    return nn_value_take_tensor (out);
  nn_ops_runs_init (&r, &out->shape, 2, ins);
  for (gint64 i = 0; i < r.runs; i++, nn_ops_iter_next (&r.outer))
    op->f32 (x + r.outer.off[0], r.step[0], y + r.outer.off[1], r.step[1],
             z + i * r.inner, r.inner);
  return nn_value_take_tensor (out);
}

NnValue *
nn_ops_binary (const NnOpsBinary *op, const NnValue *a, const NnValue *b,
               const NnValue *alpha, GError **error)
{
  if (!check_kind (op, a, "input", error) || !check_kind (op, b, "other", error))
    return NULL;
  if (alpha && nn_value_kind (alpha) == NN_VALUE_INT
      && nn_value_get_int (alpha) == 1)
    alpha = NULL;
  if (nn_ops_is_scalar_value (a) && nn_ops_is_scalar_value (b))
    return binary_python (op, a, b, alpha, error);

  const NnValue *vals[] = { a, b };
  NnDType common = nn_ops_result_type (vals, 2);
  if (alpha && !nn_dtype_is_float (common)
      && nn_value_kind (alpha) == NN_VALUE_FLOAT)
    {
      nn_ops_fail (error, "For integral input tensors, argument alpha must "
                   "not be a floating point number.");
      return NULL;
    }
  if (op->check && !op->check (common, a, b, error))
    return NULL;
  NnDType compute = common;
  if (op->int_to_float && !nn_dtype_is_float (common))
    compute = NN_DTYPE_F32;
  NnDType out_dtype = op->out_bool ? NN_DTYPE_BOOL : compute;

  g_autoptr (NnTensor) ta = operand (a, compute);
  g_autoptr (NnTensor) tb = operand (b, compute);
  NnShape shape;
  if (!nn_ops_broadcast (&ta->shape, &tb->shape, &shape, error))
    return NULL;
  gboolean meta = nn_tensor_is_meta (ta) || nn_tensor_is_meta (tb);
  NnTensor *out = nn_ops_new (meta, out_dtype, &shape, error);
  if (!out || meta)
    return nn_ops_take (out);

  gint64 n = nn_shape_numel (&shape);
  if (nn_dtype_is_float (compute))
    {
      double al = alpha ? nn_ops_round_to (compute, nn_value_get_float (alpha)) : 1;
      if (op->f32 && !alpha && compute == NN_DTYPE_F32 && ta->dtype == NN_DTYPE_F32
          && tb->dtype == NN_DTYPE_F32 && out_dtype == NN_DTYPE_F32)
        return binary_f32_runs (op, ta, tb, out);
      if (!alpha && compute == NN_DTYPE_F32 && ta->dtype == NN_DTYPE_F32
          && tb->dtype == NN_DTYPE_F32 && out_dtype == NN_DTYPE_F32
          && nn_shape_equal (&ta->shape, &tb->shape))
        {
          const float *x = ta->data, *y = tb->data;
          float *z = out->data;
          for (gint64 i = 0; i < n; i++)
            z[i] = (float) op->f (x[i], y[i]);
          return nn_value_take_tensor (out);
        }
      NnOpsIter it;
      nn_ops_iter_init (&it, &shape);
      nn_ops_iter_add (&it, &ta->shape);
      nn_ops_iter_add (&it, &tb->shape);
      if (!alpha && compute == NN_DTYPE_F32 && ta->dtype == NN_DTYPE_F32
          && tb->dtype == NN_DTYPE_F32 && out_dtype == NN_DTYPE_F32)
        {
          /* Broadcast float32, the common case (x + bias, x * scale). */
          const float *x = ta->data, *y = tb->data;
          float *z = out->data;
          for (gint64 i = 0; i < n; i++, nn_ops_iter_next (&it))
            z[i] = (float) op->f (x[it.off[0]], y[it.off[1]]);
          return nn_value_take_tensor (out);
        }
      for (gint64 i = 0; i < n; i++, nn_ops_iter_next (&it))
        {
          double x = nn_ops_round_to (compute, nn_ops_get_f (ta, it.off[0]));
          double y = nn_ops_round_to (compute, nn_ops_get_f (tb, it.off[1]));
          if (alpha)
            y = nn_ops_round_to (compute, y * al);
          nn_ops_set_f (out, i, nn_ops_round_to (compute, op->f (x, y)));
        }
      return nn_value_take_tensor (out);
    }

  gint64 al = alpha ? nn_value_get_int (alpha) : 1;
  NnOpsIter it;
  nn_ops_iter_init (&it, &shape);
  nn_ops_iter_add (&it, &ta->shape);
  nn_ops_iter_add (&it, &tb->shape);
  g_autoptr (NnTensor) cast = nn_ops_new (FALSE, compute, &(NnShape) { 0 }, error);
  for (gint64 i = 0; i < n; i++, nn_ops_iter_next (&it))
    {
      gint64 r;
      /* alpha scales in wrapping int64 arithmetic, as PyTorch's. */
      gint64 y = (gint64) ((guint64) nn_ops_get_i (tb, it.off[1]) * (guint64) al);
      if (!op->i (nn_ops_get_i (ta, it.off[0]), y, &r, error))
        {
          nn_tensor_unref (out);
          return NULL;
        }
      /* Wrap to the common integer dtype first, as the kernel computes in
       * it (uint8 arithmetic wraps at 256). */
      nn_ops_set_i (cast, 0, r);
      nn_ops_set_i (out, i, nn_ops_get_i (cast, 0));
    }
  return nn_value_take_tensor (out);
}
