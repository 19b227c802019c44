/* ops plugin: element access over every dtype, result tensors, errors. */
#include "ops.h"

#include <math.h>
#include <string.h>

static float
half_to_float (guint16 h)
{
  guint32 sign = (guint32) (h & 0x8000) << 16;
  guint32 exp = (h >> 10) & 0x1f;
  guint32 man = h & 0x3ff;
  float f;
  if (exp == 0)
    f = ldexpf ((float) man, -24);
  else if (exp == 31)
    f = man ? NAN : INFINITY;
  else
    f = ldexpf ((float) (man | 0x400), (int) exp - 25);
  return sign ? -f : f;
}

/* Round to nearest even through float's bits, as PyTorch's c10::Half. */
static guint16
float_to_half (float f)
{
  guint32 x;
  memcpy (&x, &f, 4);
  guint16 sign = (x >> 16) & 0x8000;
  guint32 ax = x & 0x7fffffff;
  if (ax > 0x7f800000)
    return sign | 0x7e00;
  if (ax >= 0x477ff000) /* rounds to >= 65520: infinity */
    return sign | 0x7c00;
  if (ax < 0x38800000) /* subnormal half */
    {
      float af;
      memcpy (&af, &ax, 4);
      return sign | (guint16) lrintf (af * 16777216.0f);
    }
  guint32 mant_odd = (ax >> 13) & 1;
  ax += 0xc8000fff + mant_odd; /* rebias exponent, round to nearest even */
  return sign | (guint16) (ax >> 13);
}

static float
bf16_to_float (guint16 b)
{
  guint32 x = (guint32) b << 16;
  float f;
  memcpy (&f, &x, 4);
  return f;
}

static guint16
float_to_bf16 (float f)
{
  guint32 x;
  memcpy (&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000)
    return 0x7fc0;
  x += 0x7fff + ((x >> 16) & 1);
  return (guint16) (x >> 16);
}

double
nn_ops_get_f (const NnTensor *t, gint64 i)
{
  switch (t->dtype)
    {
    case NN_DTYPE_F32: return ((const float *) t->data)[i];
    case NN_DTYPE_F64: return ((const double *) t->data)[i];
    case NN_DTYPE_F16: return half_to_float (((const guint16 *) t->data)[i]);
    case NN_DTYPE_BF16: return bf16_to_float (((const guint16 *) t->data)[i]);
    default: return (double) nn_ops_get_i (t, i);
    }
}

gint64
nn_ops_get_i (const NnTensor *t, gint64 i)
{
  switch (t->dtype)
    {
    case NN_DTYPE_I64: return ((const gint64 *) t->data)[i];
    case NN_DTYPE_I32: return ((const gint32 *) t->data)[i];
    case NN_DTYPE_I8: return ((const gint8 *) t->data)[i];
    case NN_DTYPE_U8: return ((const guint8 *) t->data)[i];
    case NN_DTYPE_BOOL: return ((const guint8 *) t->data)[i] != 0;
    default:
      {
        double v = nn_ops_get_f (t, i);
        /* Out-of-range float to int is undefined in C: saturate. */
        if (isnan (v))
          return 0;
        if (v >= 9.2233720368547758e18)
          return G_MAXINT64;
        if (v <= -9.2233720368547758e18)
          return G_MININT64;
        return (gint64) v;
      }
    }
}

void
nn_ops_set_f (NnTensor *t, gint64 i, double v)
{
  switch (t->dtype)
    {
    case NN_DTYPE_F32: ((float *) t->data)[i] = (float) v; return;
    case NN_DTYPE_F64: ((double *) t->data)[i] = v; return;
    case NN_DTYPE_F16: ((guint16 *) t->data)[i] = float_to_half ((float) v); return;
    case NN_DTYPE_BF16: ((guint16 *) t->data)[i] = float_to_bf16 ((float) v); return;
    case NN_DTYPE_BOOL: ((guint8 *) t->data)[i] = v != 0; return;
    default:
      if (isnan (v))
        v = 0;
      else if (v >= 9.2233720368547758e18)
        v = 9.2233720368547748e18;
      else if (v <= -9.2233720368547758e18)
        v = -9.2233720368547758e18;
      nn_ops_set_i (t, i, (gint64) v);
    }
}

void
nn_ops_set_i (NnTensor *t, gint64 i, gint64 v)
{
  switch (t->dtype)
    {
    case NN_DTYPE_I64: ((gint64 *) t->data)[i] = v; return;
    case NN_DTYPE_I32: ((gint32 *) t->data)[i] = (gint32) v; return;
    case NN_DTYPE_I8: ((gint8 *) t->data)[i] = (gint8) v; return;
    case NN_DTYPE_U8: ((guint8 *) t->data)[i] = (guint8) v; return;
    case NN_DTYPE_BOOL: ((guint8 *) t->data)[i] = v != 0; return;
    default: nn_ops_set_f (t, i, (double) v);
    }
}

double
nn_ops_round_to (NnDType dtype, double v)
{
  switch (dtype)
    {
    case NN_DTYPE_F32: return (float) v;
    case NN_DTYPE_F16: return half_to_float (float_to_half ((float) v));
    case NN_DTYPE_BF16: return bf16_to_float (float_to_bf16 ((float) v));
    default: return v;
    }
}

NnTensor *
nn_ops_new (gboolean meta, NnDType dtype, const NnShape *shape, GError **error)
{
  NnTensor *t = meta ? nn_tensor_new_meta (dtype, shape)
                     : nn_tensor_new (dtype, shape);
  if (!t)
    {
      g_autofree char *s = nn_shape_to_string (shape);
      nn_ops_fail (error, "cannot allocate a %s tensor of shape %s",
                   nn_dtype_name (dtype), s);
    }
  return t;
}

NnValue *
nn_ops_take (NnTensor *t)
{
  return t ? nn_value_take_tensor (t) : NULL;
}

gboolean
nn_ops_fail (GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error_literal (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED, msg);
  return FALSE;
}

gboolean
nn_ops_shape_fail (GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error_literal (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH, msg);
  return FALSE;
}

NnTensor *
nn_ops_scalar_tensor (const NnValue *v, NnDType dtype)
{
  NnShape s = { 0 };
  NnTensor *t = nn_tensor_new (dtype, &s);
  if (nn_value_kind (v) == NN_VALUE_FLOAT)
    nn_ops_set_f (t, 0, nn_value_get_float (v));
  else
    nn_ops_set_i (t, 0, nn_value_get_int (v));
  return t;
}

NnTensor *
nn_ops_map_f (NnTensor *in, NnDType out_dtype,
              double (*f) (double x, gpointer data), gpointer data,
              GError **error)
{
  NnTensor *out = nn_ops_new (nn_tensor_is_meta (in), out_dtype, &in->shape,
                              error);
  if (!out || nn_tensor_is_meta (in))
    return out;
  gint64 n = nn_tensor_numel (in);
  if (in->dtype == NN_DTYPE_F32 && out_dtype == NN_DTYPE_F32)
    {
      const float *x = in->data;
      float *y = out->data;
      for (gint64 i = 0; i < n; i++)
        y[i] = (float) f (x[i], data);
      return out;
    }
  for (gint64 i = 0; i < n; i++)
    nn_ops_set_f (out, i, f (nn_ops_get_f (in, i), data));
  return out;
}

NnTensor *
nn_ops_gather (NnTensor *in, const NnShape *shape, const gint64 *strides,
               gint64 base, GError **error)
{
  NnTensor *out = nn_ops_new (nn_tensor_is_meta (in), in->dtype, shape, error);
  if (!out || nn_tensor_is_meta (in))
    return out;
  gsize es = nn_dtype_size (in->dtype);
  nn_ops_strided_copy (out->data, (const guint8 *) in->data + base * es,
                       shape, strides, es);
  return out;
}

NnTensor *
nn_ops_narrow (NnTensor *in, guint dim, gint64 start, gint64 len,
               GError **error)
{
  gint64 strides[NN_MAX_DIMS];
  nn_ops_strides (&in->shape, strides);
  NnShape shape = in->shape;
  shape.dims[dim] = len;
  return nn_ops_gather (in, &shape, strides, start * strides[dim], error);
}

NnTensor *
nn_ops_select (NnTensor *in, guint dim, gint64 index, GError **error)
{
  gint64 own[NN_MAX_DIMS], strides[NN_MAX_DIMS];
  nn_ops_strides (&in->shape, own);
  NnShape shape = { 0 };
  for (guint i = 0; i < in->shape.ndim; i++)
    if (i != dim)
      {
        strides[shape.ndim] = own[i];
        shape.dims[shape.ndim++] = in->shape.dims[i];
      }
  return nn_ops_gather (in, &shape, strides, index * own[dim], error);
}
