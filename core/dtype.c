/* nnkit core: the element types, their names (safetensors' and
 * PyTorch's), and conversion between them with PyTorch's rounding. */
#include "nn-private.h"

#include <math.h>
#include <string.h>

typedef struct {
  const char *name;        /* safetensors */
  const char *torch;       /* torch.<name> */
  const char *aliases[3];  /* other spellings torch accepts */
  gsize size;
  gboolean is_float;
} DTypeInfo;

static const DTypeInfo dtypes[NN_DTYPE_COUNT_] = {
  [NN_DTYPE_F32] = { "F32", "torch.float32", { "float32", "float" }, 4, TRUE },
  [NN_DTYPE_I64] = { "I64", "torch.int64", { "int64", "long" }, 8, FALSE },
  [NN_DTYPE_F16] = { "F16", "torch.float16", { "float16", "half" }, 2, TRUE },
  [NN_DTYPE_BF16] = { "BF16", "torch.bfloat16", { "bfloat16" }, 2, TRUE },
  [NN_DTYPE_F64] = { "F64", "torch.float64", { "float64", "double" }, 8, TRUE },
  [NN_DTYPE_I32] = { "I32", "torch.int32", { "int32", "int" }, 4, FALSE },
  [NN_DTYPE_I8] = { "I8", "torch.int8", { "int8" }, 1, FALSE },
  [NN_DTYPE_U8] = { "U8", "torch.uint8", { "uint8" }, 1, FALSE },
  [NN_DTYPE_BOOL] = { "BOOL", "torch.bool", { "bool" }, 1, FALSE },
};

static gboolean
valid (NnDType d)
{
  return (guint) d < NN_DTYPE_COUNT_;
}

gsize
nn_dtype_size (NnDType dtype)
{
  return valid (dtype) ? dtypes[dtype].size : 0;
}

const char *
nn_dtype_name (NnDType dtype)
{
  return valid (dtype) ? dtypes[dtype].name : "?";
}

const char *
nn_dtype_torch_name (NnDType dtype)
{
  return valid (dtype) ? dtypes[dtype].torch : "?";
}

gboolean
nn_dtype_is_float (NnDType dtype)
{
  return valid (dtype) && dtypes[dtype].is_float;
}

gboolean
nn_dtype_parse (const char *text, NnDType *out)
{
  if (!text)
    return FALSE;
  const char *bare = g_str_has_prefix (text, "torch.") ? text + 6 : text;
  for (guint d = 0; d < NN_DTYPE_COUNT_; d++) {
    gboolean hit = strcmp (text, dtypes[d].name) == 0
                   || strcmp (text, dtypes[d].torch) == 0;
    for (guint a = 0; !hit && a < G_N_ELEMENTS (dtypes[d].aliases); a++)
      hit = dtypes[d].aliases[a] && strcmp (bare, dtypes[d].aliases[a]) == 0;
    if (hit) {
      if (out)
        *out = (NnDType) d;
      return TRUE;
    }
  }
  return FALSE;
}

char *
nn_dtype_mask_to_string (guint32 mask)
{
  if (mask == 0)
    mask = NN_DTYPE_BIT (NN_DTYPE_F32);
  GString *s = g_string_new (NULL);
  guint n = 0, total = 0;
  for (guint d = 0; d < NN_DTYPE_COUNT_; d++)
    if (mask & NN_DTYPE_BIT (d))
      total++;
  for (guint d = 0; d < NN_DTYPE_COUNT_; d++) {
    if (!(mask & NN_DTYPE_BIT (d)))
      continue;
    if (n)
      g_string_append (s, n + 1 == total ? " or " : ", ");
    g_string_append (s, dtypes[d].name);
    n++;
  }
  return g_string_free (s, FALSE);
}

/* --- element conversion -------------------------------------------------- */

static float
bits_to_float (guint32 bits)
{
  float f;
  memcpy (&f, &bits, 4);
  return f;
}

static guint32
float_to_bits (float f)
{
  guint32 b;
  memcpy (&b, &f, 4);
  return b;
}

float
nn_half_to_float (guint16 h)
{
  guint32 sign = (guint32) (h & 0x8000u) << 16;
  guint32 exp = (h >> 10) & 0x1fu;
  guint32 mant = h & 0x3ffu;
  if (exp == 0) {
    /* zero or subnormal: mant * 2^-24, exact in float */
    float v = ldexpf ((float) mant, -24);
    return sign ? -v : v;
  }
  if (exp == 31)
    return bits_to_float (sign | 0x7f800000u | (mant << 13));
  return bits_to_float (sign | ((exp + 112u) << 23) | (mant << 13));
}

/* float32 to IEEE half, round to nearest even, overflow to infinity. */
guint16
nn_float_to_half (float f)
{
  guint32 x = float_to_bits (f);
  guint16 sign = (guint16) ((x >> 16) & 0x8000u);
  guint32 exp = (x >> 23) & 0xffu;
  guint32 mant = x & 0x7fffffu;
  if (exp == 0xff) /* inf or nan (keep nan quiet) */
    return sign | 0x7c00u | (mant ? 0x200u | (mant >> 13) : 0);
  gint e = (gint) exp - 127 + 15;
  if (e >= 31)
    return sign | 0x7c00u;
  if (e <= 0) {
    if (e < -10)
      return sign; /* below half of the smallest subnormal */
    mant |= 0x800000u;
    guint shift = (guint) (14 - e);
    guint32 half = mant >> shift;
    guint32 rem = mant & ((1u << shift) - 1);
    guint32 mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1)))
      half++;
    return sign | (guint16) half;
  }
  guint32 half = ((guint32) e << 10) | (mant >> 13);
  guint32 rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1)))
    half++; /* a carry into the exponent is still correct (up to inf) */
  return sign | (guint16) half;
}

guint16
nn_float_to_bf16 (float f)
{
  guint32 x = float_to_bits (f);
  if ((x & 0x7fffffffu) > 0x7f800000u)
    return (guint16) ((x >> 16) | 0x40u); /* quiet nan */
  guint32 lsb = (x >> 16) & 1u;
  x += 0x7fffu + lsb;
  return (guint16) (x >> 16);
}

/* Every element goes through double, which holds F32/F16/BF16 exactly and
 * I8..I32 exactly; I64 <-> I64 and I64 -> float are handled apart so large
 * integers are not rounded twice. */
static double
load_double (NnDType d, const guint8 *p)
{
  switch (d) {
  case NN_DTYPE_F32: { float v; memcpy (&v, p, 4); return v; }
  case NN_DTYPE_F64: { double v; memcpy (&v, p, 8); return v; }
  case NN_DTYPE_F16: { guint16 v; memcpy (&v, p, 2); return nn_half_to_float (v); }
  case NN_DTYPE_BF16: { guint16 v; memcpy (&v, p, 2); return bits_to_float ((guint32) v << 16); }
  case NN_DTYPE_I64: { gint64 v; memcpy (&v, p, 8); return (double) v; }
  case NN_DTYPE_I32: { gint32 v; memcpy (&v, p, 4); return v; }
  case NN_DTYPE_I8: return (gint8) *p;
  case NN_DTYPE_U8: return *p;
  case NN_DTYPE_BOOL: return *p != 0;
  default: return 0;
  }
}

static gint64
load_int (NnDType d, const guint8 *p)
{
  if (d == NN_DTYPE_I64) {
    gint64 v;
    memcpy (&v, p, 8);
    return v;
  }
  double v = load_double (d, p);
  /* Truncation toward zero; out-of-range values are undefined in C, so
   * they saturate here (PyTorch's result there is unspecified too). */
  if (isnan (v))
    return 0;
  if (v >= 9.2233720368547758e18)
    return G_MAXINT64;
  if (v <= -9.2233720368547758e18)
    return G_MININT64;
  return (gint64) v;
}

static void
store (NnDType d, guint8 *p, NnDType from, const guint8 *src)
{
  if (d == NN_DTYPE_BOOL) {
    *p = load_double (from, src) != 0.0; /* nan is True, as in PyTorch */
    return;
  }
  if (!dtypes[d].is_float) {
    gint64 v = load_int (from, src);
    switch (d) {
    case NN_DTYPE_I64: memcpy (p, &v, 8); break;
    case NN_DTYPE_I32: { gint32 w = (gint32) (guint32) v; memcpy (p, &w, 4); break; }
    case NN_DTYPE_I8: *p = (guint8) v; break; /* wraps, as PyTorch */
    case NN_DTYPE_U8: *p = (guint8) v; break;
    default: break;
    }
    return;
  }
  double v = from == NN_DTYPE_I64 ? (double) load_int (from, src) : load_double (from, src);
  switch (d) {
  case NN_DTYPE_F32: { float f = (float) v; memcpy (p, &f, 4); break; }
  case NN_DTYPE_F64: memcpy (p, &v, 8); break;
  case NN_DTYPE_F16: { guint16 h = nn_float_to_half ((float) v); memcpy (p, &h, 2); break; }
  case NN_DTYPE_BF16: { guint16 h = nn_float_to_bf16 ((float) v); memcpy (p, &h, 2); break; }
  default: break;
  }
}

void
nn_dtype_convert (NnDType from, const void *src, NnDType to, void *dst,
                  gsize n)
{
  gsize fs = nn_dtype_size (from), ts = nn_dtype_size (to);
  if (from == to) {
    memcpy (dst, src, n * fs);
    return;
  }
  const guint8 *s = src;
  guint8 *d = dst;
  for (gsize i = 0; i < n; i++)
    store (to, d + i * ts, from, s + i * fs);
}

NnTensor *
nn_tensor_to_dtype (NnTensor *t, NnDType dtype)
{
  g_return_val_if_fail (t != NULL && valid (dtype), NULL);
  if (t->dtype == dtype)
    return nn_tensor_ref (t);
  if (nn_tensor_is_meta (t))
    return nn_tensor_new_meta (dtype, &t->shape);
  if (!nn_tensor_make_plain (t, NULL))
    return NULL;
  NnTensor *out = nn_tensor_new (dtype, &t->shape);
  if (!out)
    return NULL;
  nn_dtype_convert (t->dtype, t->data, dtype, out->data,
                    (gsize) nn_tensor_numel (t));
  return out;
}
