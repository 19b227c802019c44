/* conv plugin: the loops around sgemm: im2col, the direct depthwise
 * kernel and the non-zero padding modes.  Each
 * function is single-threaded; conv2d.c splits the depthwise channels
 * over threads and OpenBLAS threads the gemms. */
#include "conv.h"

#include <string.h>

/* Build the hot loops for AVX2 as well when the compiler can, picked at
 * load time, so the plugin stays runnable on any x86-64. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define NN_CONV_HOT __attribute__ ((target_clones ("arch=x86-64-v3", "default")))
#else
#define NN_CONV_HOT
#endif

/* Output columns [lo, hi) whose input column ow * stride + off lies in
 * [0, w): the span needing no padding test. */
static void
valid_span (gint64 off, gint64 stride, gint64 w, gint64 wo, gint64 *lo,
            gint64 *hi)
{
  gint64 a = off >= 0 ? 0 : (-off + stride - 1) / stride;
  gint64 b = w - off <= 0 ? 0 : (w - off + stride - 1) / stride;
  a = MIN (a, wo);
  b = MIN (b, wo);
  *lo = a;
  *hi = MAX (a, b);
}

void
nn_conv_im2col (const float *in, gint64 c, gint64 h, gint64 w,
                const NnConvGeom *g, gint64 ho, gint64 wo, float *col)
{
  const gint64 hw = ho * wo;

  for (gint64 ci = 0; ci < c; ci++)
    for (gint64 ki = 0; ki < g->kh; ki++)
      for (gint64 kj = 0; kj < g->kw; kj++)
        {
          float *row = col + ((ci * g->kh + ki) * g->kw + kj) * hw;
          gint64 off = kj * g->dw - g->pad_left, lo, hi;
          valid_span (off, g->sw, w, wo, &lo, &hi);
          for (gint64 oh = 0; oh < ho; oh++)
            {
              float *dst = row + oh * wo;
              gint64 ih = oh * g->sh + ki * g->dh - g->pad_top;
              if (ih < 0 || ih >= h)
                {
                  memset (dst, 0, (gsize) wo * sizeof (float));
                  continue;
                }
              const float *src = in + (ci * h + ih) * w + off;
              if (lo > 0)
                memset (dst, 0, (gsize) lo * sizeof (float));
              if (g->sw == 1)
                memcpy (dst + lo, src + lo, (gsize) (hi - lo) * sizeof (float));
              else
                for (gint64 ow = lo; ow < hi; ow++)
                  dst[ow] = src[ow * g->sw];
              if (hi < wo)
                memset (dst + hi, 0, (gsize) (wo - hi) * sizeof (float));
            }
        }
}

/* out[lo..hi) += wv * src[ow * stride]: the depthwise inner loop, split
 * so the unit-stride case vectorises. */
NN_CONV_HOT static void
axpy_strided (float *restrict out, const float *restrict src, float wv,
              gint64 lo, gint64 hi, gint64 stride)
{
  if (stride == 1)
    for (gint64 ow = lo; ow < hi; ow++)
      out[ow] += wv * src[ow];
  else if (stride == 2)
    for (gint64 ow = lo; ow < hi; ow++)
      out[ow] += wv * src[2 * ow];
  else
    for (gint64 ow = lo; ow < hi; ow++)
      out[ow] += wv * src[ow * stride];
}

/* One output row of a 3x3 depthwise tap set over input rows r0..r2, for
 * the columns [lo, hi) whose taps all fall inside the row: nine
 * multiply-adds per output kept in registers, no bounds tests. */
static inline void
dw3x3_interior (float *restrict o, const float *r0, const float *r1,
                const float *r2, const float *w, float b, gint64 lo,
                gint64 hi, gint64 s, gint64 off, gint64 d)
{
  const float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4];
  const float w5 = w[5], w6 = w[6], w7 = w[7], w8 = w[8];

  if (s == 1 && d == 1)
    for (gint64 ow = lo; ow < hi; ow++)
      {
        gint64 i = ow + off;
        o[ow] = b + w0 * r0[i] + w1 * r0[i + 1] + w2 * r0[i + 2]
                + w3 * r1[i] + w4 * r1[i + 1] + w5 * r1[i + 2]
                + w6 * r2[i] + w7 * r2[i + 1] + w8 * r2[i + 2];
      }
  else
    for (gint64 ow = lo; ow < hi; ow++)
      {
        gint64 i = ow * s + off;
        o[ow] = b + w0 * r0[i] + w1 * r0[i + d] + w2 * r0[i + 2 * d]
                + w3 * r1[i] + w4 * r1[i + d] + w5 * r1[i + 2 * d]
                + w6 * r2[i] + w7 * r2[i + d] + w8 * r2[i + 2 * d];
      }
}

/* A 3x3 depthwise plane.  Rows above or below the image read a real row
 * with zero weights, so the interior loop needs no row tests either. */
NN_CONV_HOT static void
dw3x3_plane (const float *plane, gint64 h, gint64 w, const float *wk,
             float b, const NnConvGeom *g, gint64 ho, gint64 wo, float *o)
{
  /* Interior columns: the first and the last tap both inside the row. */
  gint64 a0, b0, a2, b2;
  valid_span (-g->pad_left, g->sw, w, wo, &a0, &b0);
  valid_span (2 * g->dw - g->pad_left, g->sw, w, wo, &a2, &b2);
  const gint64 lo = MAX (a0, a2);
  const gint64 hi = MAX (lo, MIN (b0, b2));

  for (gint64 oh = 0; oh < ho; oh++)
    {
      float wrow[9];
      const float *rows[3];
      float *orow = o + oh * wo;
      for (int ki = 0; ki < 3; ki++)
        {
          gint64 ih = oh * g->sh + ki * g->dh - g->pad_top;
          gboolean in = ih >= 0 && ih < h;
          rows[ki] = plane + (in ? ih : 0) * w;
          for (int kj = 0; kj < 3; kj++)
            wrow[ki * 3 + kj] = in ? wk[ki * 3 + kj] : 0.0f;
        }
      dw3x3_interior (orow, rows[0], rows[1], rows[2], wrow, b, lo, hi,
                      g->sw, -g->pad_left, g->dw);
      /* The few border columns, with bounds tests. */
      for (gint64 ow = 0; ow < wo; ow++)
        {
          if (ow == lo && hi > lo)
            ow = hi;
          if (ow >= wo)
            break;
          float acc = b;
          for (int kj = 0; kj < 3; kj++)
            {
              gint64 iw = ow * g->sw + kj * g->dw - g->pad_left;
              if (iw < 0 || iw >= w)
                continue;
              for (int ki = 0; ki < 3; ki++)
                acc += wrow[ki * 3 + kj] * rows[ki][iw];
            }
          orow[ow] = acc;
        }
    }
}

/* Any other kernel: row by row, so one output row stays in L1 across all
 * taps. */
static void
dw_generic_plane (const float *plane, gint64 h, gint64 w, const float *wk,
                  float b, const NnConvGeom *g, gint64 ho, gint64 wo,
                  float *o)
{
  for (gint64 oh = 0; oh < ho; oh++)
    {
      float *orow = o + oh * wo;
      for (gint64 ow = 0; ow < wo; ow++)
        orow[ow] = b;
      for (gint64 ki = 0; ki < g->kh; ki++)
        {
          gint64 ih = oh * g->sh + ki * g->dh - g->pad_top;
          if (ih < 0 || ih >= h)
            continue;
          const float *irow = plane + ih * w;
          for (gint64 kj = 0; kj < g->kw; kj++)
            {
              gint64 off = kj * g->dw - g->pad_left, lo, hi;
              valid_span (off, g->sw, w, wo, &lo, &hi);
              if (lo < hi)
                axpy_strided (orow, irow + off, wk[ki * g->kw + kj], lo, hi,
                              g->sw);
            }
        }
    }
}

void
nn_conv_depthwise (const float *in, gint64 h, gint64 w, const float *weight,
                   const float *bias, const NnConvGeom *g, gint64 ho,
                   gint64 wo, gint64 oc_begin, gint64 oc_end, float *out)
{
  const gint64 mult = g->out_channels / g->in_channels;
  const gint64 taps = g->kh * g->kw;
  const gboolean k3 = g->kh == 3 && g->kw == 3;

  for (gint64 oc = oc_begin; oc < oc_end; oc++)
    {
      const float *plane = in + (oc / mult) * h * w;
      float b = bias ? bias[oc] : 0.0f;
      float *o = out + oc * ho * wo;
      if (k3)
        dw3x3_plane (plane, h, w, weight + oc * taps, b, g, ho, wo, o);
      else
        dw_generic_plane (plane, h, w, weight + oc * taps, b, g, ho, wo, o);
    }
}

/* Source index for padded position @i of an extent-@n axis.  The shape
 * check guarantees reflect pads < n and circular pads <= n. */
static gint64
pad_index (gint64 i, gint64 n, NnConvPadMode mode)
{
  if (i >= 0 && i < n)
    return i;
  switch (mode)
    {
    case NN_CONV_PAD_REFLECT:
      return i < 0 ? -i : 2 * (n - 1) - i;
    case NN_CONV_PAD_CIRCULAR:
      return ((i % n) + n) % n;
    case NN_CONV_PAD_REPLICATE:
    case NN_CONV_PAD_ZEROS:
    default:
      return i < 0 ? 0 : n - 1;
    }
}

void
nn_conv_pad_image (const float *in, gint64 c, gint64 h, gint64 w,
                   const NnConvGeom *g, float *out)
{
  const gint64 ph = h + g->pad_top + g->pad_bottom;
  const gint64 pw = w + g->pad_left + g->pad_right;

  for (gint64 ci = 0; ci < c; ci++)
    for (gint64 y = 0; y < ph; y++)
      {
        const float *src = in + (ci * h + pad_index (y - g->pad_top, h, g->pad_mode)) * w;
        float *dst = out + (ci * ph + y) * pw;
        for (gint64 x = 0; x < g->pad_left; x++)
          dst[x] = src[pad_index (x - g->pad_left, w, g->pad_mode)];
        memcpy (dst + g->pad_left, src, (gsize) w * sizeof (float));
        for (gint64 x = g->pad_left + w; x < pw; x++)
          dst[x] = src[pad_index (x - g->pad_left, w, g->pad_mode)];
      }
}
