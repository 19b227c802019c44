/* ops plugin: element-wise ops of three operands and nan_to_num: lerp,
 * addcmul, addcdiv (an EMA update, an optimiser-style step written in a
 * forward) and nan_to_num, with PyTorch's broadcasting and dtype rules. */
#include "ops.h"

#include <float.h>
#include <math.h>

/* The broadcast shape of @n tensors. */
static gboolean
broadcast3 (NnTensor *const *t, guint n, NnShape *out, GError **error)
{
  *out = t[0]->shape;
  for (guint i = 1; i < n; i++)
    {
      NnShape next;
      if (!nn_ops_broadcast (out, &t[i]->shape, &next, error))
        return FALSE;
      *out = next;
    }
  return TRUE;
}

typedef enum { P_LERP, P_ADDCMUL, P_ADDCDIV } Pointwise3;

static double
apply (Pointwise3 op, double a, double b, double c, double value)
{
  switch (op)
    {
    case P_LERP:
      /* PyTorch's two-sided form: exact at weight 0 and 1. */
      return fabs (c) < 0.5 ? a + c * (b - a) : b - (b - a) * (1 - c);
    case P_ADDCMUL:
      return a + value * b * c;
    default:
      return a + value * (b / c);
    }
}

static NnValue *
pointwise3 (const NnArgs *args, Pointwise3 op, GError **error)
{
  static const char *const names[] = { "lerp", "addcmul", "addcdiv" };
  NnValue *third = nn_args_get (args, 2);
  NnTensor *t[3] = { nn_args_tensor (args, 0), nn_args_tensor (args, 1), NULL };
  g_autoptr (NnTensor) weight = NULL;
  NnDType dt;
  double value = 1;
  if (op == P_LERP)
    {
      dt = t[0]->dtype;
      if (!nn_dtype_is_float (dt))
        {
          nn_ops_fail (error, "lerp(): \"lerp_kernel\" not implemented for '%s'",
                       nn_ops_dtype_short (dt));
          return NULL;
        }
      if (nn_value_kind (third) == NN_VALUE_TENSOR)
        t[2] = nn_value_get_tensor (third);
      else
        t[2] = weight = nn_ops_scalar_tensor (third, dt);
      for (guint i = 1; i < 3; i++)
        if (t[i]->dtype != dt)
          {
            g_autofree char *want = g_ascii_strdown (nn_ops_dtype_short (dt), -1);
            g_autofree char *got = g_ascii_strdown (nn_ops_dtype_short (t[i]->dtype), -1);
            nn_ops_fail (error, "expected dtype %s for `%s` but got dtype %s", want,
                         i == 1 ? "end" : "weight", got);
            return NULL;
          }
    }
  else
    {
      t[2] = nn_value_get_tensor (third);
      const NnValue *vals[3] = { nn_args_get (args, 0), nn_args_get (args, 1), third };
      dt = nn_ops_result_type (vals, 3);
      NnValue *v = nn_args_get (args, 3);
      value = nn_value_kind (v) == NN_VALUE_FLOAT ? nn_value_get_float (v)
                                                  : (double) nn_value_get_int (v);
      if (op == P_ADDCDIV && !nn_dtype_is_float (t[1]->dtype)
          && !nn_dtype_is_float (t[2]->dtype))
        {
          nn_ops_fail (error, "Integer division with addcdiv is no longer supported, "
                       "and in a future  release addcdiv will perform a true division "
                       "of tensor1 and tensor2.");
          return NULL;
        }
    }
  if (!t[2])
    {
      nn_ops_fail (error, "%s(): out of memory", names[op]);
      return NULL;
    }
  NnShape os;
  if (!broadcast3 (t, 3, &os, error))
    return NULL;
  gboolean meta = nn_tensor_is_meta (t[0]) || nn_tensor_is_meta (t[1])
                  || nn_tensor_is_meta (t[2]);
  NnTensor *out = nn_ops_new (meta, dt, &os, error);
  if (!out || meta)
    return nn_ops_take (out);
  NnOpsIter it;
  nn_ops_iter_init (&it, &os);
  for (guint i = 0; i < 3; i++)
    nn_ops_iter_add (&it, &t[i]->shape);
  gint64 n = nn_shape_numel (&os);
  for (gint64 e = 0; e < n; e++, nn_ops_iter_next (&it))
    {
      if (nn_dtype_is_float (dt))
        nn_ops_set_f (out, e, apply (op, nn_ops_get_f (t[0], it.off[0]),
                                     nn_ops_get_f (t[1], it.off[1]),
                                     nn_ops_get_f (t[2], it.off[2]), value));
      else
        nn_ops_set_i (out, e, nn_ops_get_i (t[0], it.off[0])
                              + (gint64) value * nn_ops_get_i (t[1], it.off[1])
                                  * nn_ops_get_i (t[2], it.off[2]));
    }
  return nn_value_take_tensor (out);
}

static NnValue *
lerp_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return pointwise3 (args, P_LERP, error);
}

static NnValue *
addcmul_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return pointwise3 (args, P_ADDCMUL, error);
}

static NnValue *
addcdiv_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return pointwise3 (args, P_ADDCDIV, error);
}

/* nan_to_num(input, nan=0.0, posinf=None, neginf=None): None infinities
 * become the dtype's largest and lowest finite values; integers are
 * copied. */
static NnValue *
nan_to_num_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  NnTensor *out = nn_ops_new (nn_tensor_is_meta (in), in->dtype, &in->shape, error);
  if (!out || nn_tensor_is_meta (in))
    return nn_ops_take (out);
  gint64 n = nn_tensor_numel (in);
  if (!nn_dtype_is_float (in->dtype))
    {
      for (gint64 e = 0; e < n; e++)
        nn_ops_set_i (out, e, nn_ops_get_i (in, e));
      return nn_value_take_tensor (out);
    }
  double big;
  switch (in->dtype)
    {
    case NN_DTYPE_F64: big = DBL_MAX; break;
    case NN_DTYPE_F16: big = 65504.0; break;
    case NN_DTYPE_BF16: big = 3.3895313892515355e38; break;
    default: big = FLT_MAX; break;
    }
  NnValue *nv = nn_args_get (args, 1), *pv = nn_args_get (args, 2), *mv = nn_args_get (args, 3);
  double nanv = nn_value_is_none (nv) ? 0 : nn_value_get_float (nv);
  double pos = nn_value_is_none (pv) ? big : nn_value_get_float (pv);
  double neg = nn_value_is_none (mv) ? -big : nn_value_get_float (mv);
  for (gint64 e = 0; e < n; e++)
    {
      double v = nn_ops_get_f (in, e);
      nn_ops_set_f (out, e, isnan (v) ? nanv : isinf (v) ? (v > 0 ? pos : neg) : v);
    }
  return nn_value_take_tensor (out);
}

static const NnArgSpec lerp_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "start (a float tensor)" },
  { "end", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "end, input's dtype" },
  { "weight", NN_ARG_TENSOR | NN_ARG_INT | NN_ARG_FLOAT, NN_OPS_ALL, 0, NULL,
    "a number or a tensor of input's dtype" },
};
static const NnArgSpec addc_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor added to" },
  { "tensor1", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "first factor" },
  { "tensor2", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "second factor (divisor for addcdiv)" },
  { "value", NN_ARG_INT | NN_ARG_FLOAT | NN_ARG_BOOL, 0, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY,
    "1", "scale of the product" },
};
static const NnArgSpec nan_to_num_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" },
  { "nan", NN_ARG_FLOAT | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "0.0", "what NaN becomes" },
  { "posinf", NN_ARG_FLOAT | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "what +inf becomes (None: the largest finite value)" },
  { "neginf", NN_ARG_FLOAT | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "what -inf becomes (None: the lowest finite value)" },
};
static const char *const lerp_aliases[] = {
  "torch.lerp", "Tensor.lerp", "Tensor.lerp_", NULL };
static const char *const addcmul_aliases[] = {
  "torch.addcmul", "Tensor.addcmul", "Tensor.addcmul_", NULL };
static const char *const addcdiv_aliases[] = {
  "torch.addcdiv", "Tensor.addcdiv", "Tensor.addcdiv_", NULL };
static const char *const nan_to_num_aliases[] = {
  "torch.nan_to_num", "Tensor.nan_to_num", "Tensor.nan_to_num_", NULL };
static NN_OPS_TYPE (lerp_type, "lerp", "input + weight * (end - input)", lerp_args,
                    lerp_aliases, lerp_fn);
static NN_OPS_TYPE (addcmul_type, "addcmul", "input + value * tensor1 * tensor2", addc_args,
                    addcmul_aliases, addcmul_fn);
static NN_OPS_TYPE (addcdiv_type, "addcdiv", "input + value * tensor1 / tensor2", addc_args,
                    addcdiv_aliases, addcdiv_fn);
static NN_OPS_TYPE (nan_to_num_type, "nan_to_num", "NaN and infinities replaced by numbers",
                    nan_to_num_args, nan_to_num_aliases, nan_to_num_fn);

const NnLayerType *const nn_ops_pointwise3_types[] = {
  &lerp_type, &addcmul_type, &addcdiv_type, &nan_to_num_type, NULL,
};
