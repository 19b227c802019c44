/* ops plugin: dims, size arguments, dtype arguments and PyTorch's type
 * promotion (c10/core/ScalarType.h, ATen's native/TypeProperties.cpp). */
#include "ops.h"

gboolean
nn_ops_dim (gint64 dim, guint ndim, guint *out, GError **error)
{
  gint64 n = ndim ? ndim : 1;
  if (dim < -n || dim >= n)
    return nn_ops_shape_fail (error,
                              "Dimension out of range (expected to be in range "
                              "of [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                              "], but got %" G_GINT64_FORMAT ")",
                              -n, n - 1, dim);
  *out = (guint) (dim < 0 ? dim + n : dim);
  return TRUE;
}

gboolean
nn_ops_int_value (const NnValue *v, gint64 *out)
{
  switch (nn_value_kind (v))
    {
    case NN_VALUE_INT:
    case NN_VALUE_BOOL:
      *out = nn_value_get_int (v);
      return TRUE;
    case NN_VALUE_TENSOR:
      {
        NnTensor *t = nn_value_get_tensor (v);
        if (nn_tensor_is_meta (t) || nn_dtype_is_float (t->dtype)
            || nn_tensor_numel (t) != 1)
          return FALSE;
        *out = nn_ops_get_i (t, 0);
        return TRUE;
      }
    default:
      return FALSE;
    }
}

gboolean
nn_ops_sizes (const NnValue *v, const char *what, gint64 *out, guint *n_out,
              GError **error)
{
  NnValueKind k = nn_value_kind (v);
  if (k != NN_VALUE_TUPLE && k != NN_VALUE_LIST)
    {
      if (!nn_ops_int_value (v, out))
        goto bad;
      *n_out = 1;
      return TRUE;
    }
  guint n = nn_value_n_items (v);
  /* view((2, 3)) and view([2, 3]): one sequence argument holds the sizes. */
  if (n == 1)
    {
      NnValueKind k0 = nn_value_kind (nn_value_item (v, 0));
      if (k0 == NN_VALUE_TUPLE || k0 == NN_VALUE_LIST)
        return nn_ops_sizes (nn_value_item (v, 0), what, out, n_out, error);
    }
  if (n > NN_MAX_DIMS)
    return nn_ops_shape_fail (error, "%s: %u sizes, at most %d dims are "
                              "supported", what, n, NN_MAX_DIMS);
  for (guint i = 0; i < n; i++)
    if (!nn_ops_int_value (nn_value_item (v, i), &out[i]))
      goto bad;
  *n_out = n;
  return TRUE;

bad:
  {
    g_autofree char *s = nn_value_to_string (v);
    return nn_ops_fail (error, "%s must be a tuple of ints, found %s", what, s);
  }
}

gboolean
nn_ops_dtype_arg (const NnValue *v, NnDType *out, gboolean *given,
                  GError **error)
{
  *given = FALSE;
  if (nn_value_is_none (v))
    return TRUE;
  const char *s = nn_value_get_string (v);
  if (nn_value_kind (v) != NN_VALUE_STRING || !nn_dtype_parse (s, out))
    {
      g_autofree char *r = nn_value_to_string (v);
      return nn_ops_fail (error, "dtype: expected a torch dtype such as "
                          "'torch.float32', found %s", r);
    }
  *given = TRUE;
  return TRUE;
}

const char *
nn_ops_dtype_short (NnDType dtype)
{
  static const char *const names[NN_DTYPE_COUNT_] = {
    [NN_DTYPE_F32] = "Float", [NN_DTYPE_I64] = "Long",
    [NN_DTYPE_F16] = "Half", [NN_DTYPE_BF16] = "BFloat16",
    [NN_DTYPE_F64] = "Double", [NN_DTYPE_I32] = "Int",
    [NN_DTYPE_I8] = "Char", [NN_DTYPE_U8] = "Byte", [NN_DTYPE_BOOL] = "Bool",
  };
  return (guint) dtype < NN_DTYPE_COUNT_ ? names[dtype] : "?";
}

/* Rank inside a kind: bool < ints < floats, as promote_types' lattice. */
static int
int_rank (NnDType d)
{
  switch (d)
    {
    case NN_DTYPE_U8:
    case NN_DTYPE_I8: return 1;
    case NN_DTYPE_I32: return 3;
    case NN_DTYPE_I64: return 4;
    default: return 0;
    }
}

static int
float_rank (NnDType d)
{
  switch (d)
    {
    case NN_DTYPE_F16:
    case NN_DTYPE_BF16: return 1;
    case NN_DTYPE_F32: return 2;
    case NN_DTYPE_F64: return 3;
    default: return 0;
    }
}

NnDType
nn_ops_promote (NnDType a, NnDType b)
{
  if (a == b)
    return a;
  if (a == NN_DTYPE_BOOL)
    return b;
  if (b == NN_DTYPE_BOOL)
    return a;
  gboolean fa = nn_dtype_is_float (a), fb = nn_dtype_is_float (b);
  if (fa && !fb)
    return a;
  if (fb && !fa)
    return b;
  if (fa)
    {
      /* Half and BFloat16 meet at Float. */
      if (float_rank (a) == float_rank (b))
        return NN_DTYPE_F32;
      return float_rank (a) > float_rank (b) ? a : b;
    }
  /* uint8 with int8 is int16 in PyTorch; nnkit has no I16, so the nearest
   * wider integer holds every value of both. */
  if (int_rank (a) == int_rank (b))
    return NN_DTYPE_I32;
  return int_rank (a) > int_rank (b) ? a : b;
}

gboolean
nn_ops_is_scalar_value (const NnValue *v)
{
  NnValueKind k = nn_value_kind (v);
  return k == NN_VALUE_INT || k == NN_VALUE_FLOAT || k == NN_VALUE_BOOL;
}

#define NO_DTYPE NN_DTYPE_COUNT_

static NnDType
promote_opt (NnDType acc, NnDType d)
{
  return acc == NO_DTYPE ? d : nn_ops_promote (acc, d);
}

/* ATen's combine_categories: a lower-priority group only raises the
 * result's category (bool < int < float), never its width. */
static NnDType
combine (NnDType higher, NnDType lower)
{
  if (higher != NO_DTYPE && nn_dtype_is_float (higher))
    return higher;
  if (lower == NO_DTYPE)
    return higher;
  if (higher == NN_DTYPE_BOOL || nn_dtype_is_float (lower))
    return higher == NO_DTYPE ? lower : nn_ops_promote (higher, lower);
  if (higher != NO_DTYPE)
    return higher;
  return lower;
}

NnDType
nn_ops_result_type (const NnValue *const *vals, guint n)
{
  NnDType dim = NO_DTYPE, zero = NO_DTYPE, wrapped = NO_DTYPE;
  for (guint i = 0; i < n; i++)
    {
      const NnValue *v = vals[i];
      if (!v)
        continue;
      switch (nn_value_kind (v))
        {
        case NN_VALUE_TENSOR:
          {
            NnTensor *t = nn_value_get_tensor (v);
            if (t->shape.ndim == 0)
              zero = promote_opt (zero, t->dtype);
            else
              dim = promote_opt (dim, t->dtype);
            break;
          }
        case NN_VALUE_FLOAT:
          /* A Python float is the default dtype, float32. */
          wrapped = promote_opt (wrapped, NN_DTYPE_F32);
          break;
        case NN_VALUE_INT:
          wrapped = promote_opt (wrapped, NN_DTYPE_I64);
          break;
        case NN_VALUE_BOOL:
          wrapped = promote_opt (wrapped, NN_DTYPE_BOOL);
          break;
        default:
          break;
        }
    }
  NnDType r = combine (dim, combine (zero, wrapped));
  return r == NO_DTYPE ? NN_DTYPE_F32 : r;
}
