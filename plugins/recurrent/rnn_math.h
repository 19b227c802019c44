/* recurrent plugin: exp, sigmoid and tanh on 8 floats at once for the
 * gates (GCC/Clang vector extensions: SSE2 pairs on baseline x86-64,
 * wider where the compiler targets it).  libm's scalar expm1f and tanhf
 * were a third of an LSTM's time; these are within a few ulp of them
 * (Cephes' expf polynomial), far inside the 1e-4 PyTorch checks allow.
 * Private to the plugin. */
#ifndef NN_RNN_MATH_H
#define NN_RNN_MATH_H

#include <glib.h>
#include <string.h>

/* Only static inline functions take and return these, so the 32-byte
 * vector ABI note of GCC (-Wpsabi) concerns no call that exists. */
#pragma GCC diagnostic ignored "-Wpsabi"

typedef float NnV8f __attribute__ ((vector_size (32)));
typedef gint32 NnV8i __attribute__ ((vector_size (32)));
typedef guint32 NnV8u __attribute__ ((vector_size (32)));

#define NN_V8(x) ((NnV8f) { x, x, x, x, x, x, x, x })

/* Lanes of @mask (-1 or 0 per lane, as comparisons give) from @a, the
 * others from @b. */
static inline NnV8f
nn_v8_select (NnV8i mask, NnV8f a, NnV8f b)
{
  return (NnV8f) ((mask & (NnV8i) a) | (~mask & (NnV8i) b));
}

/* e^x, x clamped to [-87, 88] so results stay normal floats; a NaN
 * compares false, is kept and propagates. */
static inline NnV8f
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

static inline NnV8f
nn_v8_sigmoid (NnV8f x)
{
  return NN_V8 (1.0f) / (NN_V8 (1.0f) + nn_v8_exp (-x));
}

/* tanh x = 2 sigmoid (2x) - 1: absolute error a few 1e-8 near 0. */
static inline NnV8f
nn_v8_tanh (NnV8f x)
{
  return NN_V8 (2.0f) / (NN_V8 (1.0f) + nn_v8_exp (NN_V8 (-2.0f) * x)) - NN_V8 (1.0f);
}

/* @n (<= 8) floats of @p as a vector, the rest 0. */
static inline NnV8f
nn_v8_load (const float *p, gint64 n)
{
  NnV8f v = NN_V8 (0.0f);
  if (G_LIKELY (n == 8))
    memcpy (&v, p, sizeof v);   /* a fixed size: one unaligned load */
  else
    memcpy (&v, p, sizeof (float) * (gsize) n);
  return v;
}

static inline void
nn_v8_store (float *p, NnV8f v, gint64 n)
{
  if (G_LIKELY (n == 8))
    memcpy (p, &v, sizeof v);
  else
    memcpy (p, &v, sizeof (float) * (gsize) n);
}

#endif
