/* Plugins' shared helpers: exp, sigmoid, tanh and erf on 8 floats at
 * once (GCC/Clang vector extensions: SSE2 pairs on baseline x86-64,
 * wider where the compiler targets it), for the recurrent gates and
 * GELU, where libm's scalar expm1f, tanhf and erff took a third of an
 * LSTM's time and an eighth of a GPT's.  exp is Cephes' expf polynomial
 * (a few ulp); erf is Abramowitz-Stegun 7.1.26 (absolute error below
 * 1.5e-7), inside what the PyTorch checks allow.  Header-only, not
 * installed. */
#ifndef NN_VECMATH_H
#define NN_VECMATH_H

#include <glib.h>
#include <string.h>

/* Only static inline functions take and return these, so the 32-byte
 * vector ABI note of GCC (-Wpsabi) concerns no call that exists. */
#pragma GCC diagnostic ignored "-Wpsabi"

typedef float NnV8f __attribute__ ((vector_size (32)));
typedef gint32 NnV8i __attribute__ ((vector_size (32)));
typedef guint32 NnV8u __attribute__ ((vector_size (32)));

#define NN_V8(x) ((NnV8f) { x, x, x, x, x, x, x, x })

/* The helpers are always inlined, so a caller compiled for AVX2 (a
 * target ("avx2,fma") function picked at run time with nn_cpu_has())
 * runs them on 8-float registers. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NN_VECMATH_AVX2 1
#endif

/* Lanes of @mask (-1 or 0 per lane, as comparisons give) from @a, the
 * others from @b. */
__attribute__ ((always_inline)) static inline NnV8f
nn_v8_select (NnV8i mask, NnV8f a, NnV8f b)
{
  return (NnV8f) ((mask & (NnV8i) a) | (~mask & (NnV8i) b));
}

/* e^x, x clamped to [-87, 88] so results stay normal floats; a NaN
 * compares false, is kept and propagates. */
__attribute__ ((always_inline)) static inline NnV8f
nn_v8_exp (NnV8f x)
{
  x = nn_v8_select (x < NN_V8 (-87.0f), NN_V8 (-87.0f), x);
  x = nn_v8_select (x > NN_V8 (88.0f), NN_V8 (88.0f), x);
  /* k = round (x / ln 2) by the 1.5 * 2^23 trick: its low bits are k. */
  NnV8f t = x * NN_V8 (1.44269504088896341f) + NN_V8 (12582912.0f);
  NnV8i k = (NnV8i) t - (NnV8i) NN_V8 (12582912.0f);
  NnV8f kf = t - NN_V8 (12582912.0f);
  NnV8f r = x - kf * NN_V8 (0.693359375f) + kf * NN_V8 (2.12194440e-4f);
  NnV8f p = NN_V8 (1.9875691500e-4f);
  p = p * r + NN_V8 (1.3981999507e-3f);
  p = p * r + NN_V8 (8.3334519073e-3f);
  p = p * r + NN_V8 (4.1665795894e-2f);
  p = p * r + NN_V8 (1.6666665459e-1f);
  p = p * r + NN_V8 (5.0000001201e-1f);
  p = p * r * r + r + NN_V8 (1.0f);
  /* 2^k built in the exponent bits; k is in -126 .. 127 here. */
  NnV8u two_k = (NnV8u) (k + 127) << 23;
  return p * (NnV8f) two_k;
}

__attribute__ ((always_inline)) static inline NnV8f
nn_v8_sigmoid (NnV8f x)
{
  return NN_V8 (1.0f) / (NN_V8 (1.0f) + nn_v8_exp (-x));
}

/* tanh x = 2 sigmoid (2x) - 1: absolute error a few 1e-8 near 0. */
__attribute__ ((always_inline)) static inline NnV8f
nn_v8_tanh (NnV8f x)
{
  return NN_V8 (2.0f) / (NN_V8 (1.0f) + nn_v8_exp (NN_V8 (-2.0f) * x)) - NN_V8 (1.0f);
}

/* erf x = sign (x) (1 - (a1 t + ... + a5 t^5) e^(-x^2)), t = 1 / (1 + p |x|)
 * (Abramowitz and Stegun 7.1.26). */
__attribute__ ((always_inline)) static inline NnV8f
nn_v8_erf (NnV8f x)
{
  NnV8i sign = (NnV8i) x & (NnV8i) NN_V8 (-0.0f);
  NnV8f ax = (NnV8f) ((NnV8i) x ^ sign);
  NnV8f t = NN_V8 (1.0f) / (NN_V8 (1.0f) + NN_V8 (0.3275911f) * ax);
  NnV8f p = NN_V8 (1.061405429f);
  p = p * t + NN_V8 (-1.453152027f);
  p = p * t + NN_V8 (1.421413741f);
  p = p * t + NN_V8 (-0.284496736f);
  p = p * t + NN_V8 (0.254829592f);
  NnV8f y = NN_V8 (1.0f) - p * t * nn_v8_exp (-(ax * ax));
  return (NnV8f) ((NnV8i) y | sign);
}

/* @n (<= 8) floats of @p as a vector, the rest 0. */
__attribute__ ((always_inline)) static inline NnV8f
nn_v8_load (const float *p, gint64 n)
{
  NnV8f v = NN_V8 (0.0f);
  if (G_LIKELY (n == 8))
    memcpy (&v, p, sizeof v);   /* a fixed size: one unaligned load */
  else
    memcpy (&v, p, sizeof (float) * (gsize) n);
  return v;
}

__attribute__ ((always_inline)) static inline void
nn_v8_store (float *p, NnV8f v, gint64 n)
{
  if (G_LIKELY (n == 8))
    memcpy (p, &v, sizeof v);
  else
    memcpy (p, &v, sizeof (float) * (gsize) n);
}

#endif
