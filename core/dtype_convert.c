/* nnkit core: the dtypes a safetensors file may hold, and their conversion
 * to the tensor dtypes, F32 and I64. */
#include "safetensors-private.h"

#include <math.h>
#include <string.h>

const NnStDTypeInfo nn_st_dtypes[] = {
  [NN_ST_F32] = { "F32", 4 },
  [NN_ST_F16] = { "F16", 2 },
  [NN_ST_BF16] = { "BF16", 2 },
  [NN_ST_F64] = { "F64", 8 },
  [NN_ST_I64] = { "I64", 8 },
};

gboolean
nn_st_dtype_lookup (const char *name, NnStDType *out)
{
  for (guint i = 0; i < G_N_ELEMENTS (nn_st_dtypes); i++) {
    if (strcmp (nn_st_dtypes[i].name, name) == 0) {
      *out = (NnStDType) i;
      return TRUE;
    }
  }
  return FALSE;
}

/* Elements are read with memcpy: the data may be unaligned. */
static guint16
load_u16 (const guint8 *p)
{
  guint16 v;
  memcpy (&v, p, 2);
  return GUINT16_FROM_LE (v);
}

static guint32
load_u32 (const guint8 *p)
{
  guint32 v;
  memcpy (&v, p, 4);
  return GUINT32_FROM_LE (v);
}

static guint64
load_u64 (const guint8 *p)
{
  guint64 v;
  memcpy (&v, p, 8);
  return GUINT64_FROM_LE (v);
}

static float
bits_to_float (guint32 bits)
{
  float f;
  memcpy (&f, &bits, 4);
  return f;
}

/* IEEE half to single: every half value is exactly representable. */
static float
half_to_float (guint16 h)
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

void
nn_st_convert_f32 (NnStDType dtype, const guint8 *src, float *dst, gsize n)
{
  switch (dtype) {
  case NN_ST_F32:
    if (G_BYTE_ORDER == G_LITTLE_ENDIAN) {
      memcpy (dst, src, n * 4);
      break;
    }
    for (gsize i = 0; i < n; i++)
      dst[i] = bits_to_float (load_u32 (src + 4 * i));
    break;
  case NN_ST_F16:
    for (gsize i = 0; i < n; i++)
      dst[i] = half_to_float (load_u16 (src + 2 * i));
    break;
  case NN_ST_BF16:
    /* bfloat16 is the top half of a float32 */
    for (gsize i = 0; i < n; i++)
      dst[i] = bits_to_float ((guint32) load_u16 (src + 2 * i) << 16);
    break;
  case NN_ST_F64:
    for (gsize i = 0; i < n; i++) {
      guint64 bits = load_u64 (src + 8 * i);
      double d;
      memcpy (&d, &bits, 8);
      dst[i] = (float) d;
    }
    break;
  case NN_ST_I64:
    for (gsize i = 0; i < n; i++)
      dst[i] = (float) (gint64) load_u64 (src + 8 * i);
    break;
  }
}

void
nn_st_convert_i64 (const guint8 *src, gint64 *dst, gsize n)
{
  for (gsize i = 0; i < n; i++)
    dst[i] = (gint64) load_u64 (src + 8 * i);
}
