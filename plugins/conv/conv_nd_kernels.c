/* Kernels of Conv1d and ConvTranspose1d/2d on [n, C, H, W] float32 (H = 1
 * for 1-d): im2col + sgemm for the convolution, sgemm + col2im for the
 * transposed one, one gemm per image and group. */
#include "conv_nd.h"
#include "nn-blas.h"

#include <cblas.h>
#include <string.h>

gint64
nn_convnd_source (NnConvNdPad mode, gint64 p, gint64 before, gint64 n)
{
  gint64 i = p - before;
  if (i >= 0 && i < n)
    return i;
  switch (mode) {
  case NN_CONVND_REFLECT:
    return i < 0 ? -i : 2 * (n - 1) - i;
  case NN_CONVND_REPLICATE:
    return i < 0 ? 0 : n - 1;
  case NN_CONVND_CIRCULAR:
    return ((i % n) + n) % n;
  default:
    return -1;
  }
}

/* Unfolds channels [c0, c0 + cg) of one image into col [cg * kh * kw,
 * ho * wo]. */
static void
im2col (const NnConvNd *g, const float *img, gint64 c0, gint64 cg, gint64 h,
        gint64 w, gint64 ho, gint64 wo, float *col)
{
  for (gint64 c = 0; c < cg; c++)
    for (gint64 ki = 0; ki < g->k[0]; ki++)
      for (gint64 kj = 0; kj < g->k[1]; kj++) {
        float *dst = col + ((c * g->k[0] + ki) * g->k[1] + kj) * ho * wo;
        const float *plane = img + (c0 + c) * h * w;
        for (gint64 oi = 0; oi < ho; oi++) {
          gint64 si = nn_convnd_source (g->pad_mode, oi * g->s[0] + ki * g->d[0], g->pad0[0], h);
          for (gint64 oj = 0; oj < wo; oj++) {
            gint64 sj = nn_convnd_source (g->pad_mode, oj * g->s[1] + kj * g->d[1], g->pad0[1], w);
            dst[oi * wo + oj] = (si < 0 || sj < 0) ? 0.0f : plane[si * w + sj];
          }
        }
      }
}

void
nn_convnd_forward_kernel (const NnConvNd *g, const float *x, gint64 n,
                          gint64 h, gint64 w, const float *weight,
                          const float *bias, gint64 ho, gint64 wo, float *y)
{
  gint64 cg = g->in_channels / g->groups, og = g->out_channels / g->groups;
  gint64 kk = cg * g->k[0] * g->k[1], hw = ho * wo;
  float *col = g_new (float, MAX (kk * hw, 1));
  nn_blas_prepare ();
  for (gint64 b = 0; b < n; b++) {
    const float *img = x + b * g->in_channels * h * w;
    float *out = y + b * g->out_channels * hw;
    for (gint64 gr = 0; gr < g->groups; gr++) {
      im2col (g, img, gr * cg, cg, h, w, ho, wo, col);
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) og,
                   (int) hw, (int) kk, 1.0f, weight + gr * og * kk, (int) kk,
                   col, (int) hw, 0.0f, out + gr * og * hw, (int) hw);
    }
    if (bias)
      for (gint64 o = 0; o < g->out_channels; o++)
        for (gint64 i = 0; i < hw; i++)
          out[o * hw + i] += bias[o];
  }
  g_free (col);
}

void
nn_convnd_transpose_kernel (const NnConvNd *g, const float *x, gint64 n,
                            gint64 h, gint64 w, const float *weight,
                            const float *bias, gint64 ho, gint64 wo, float *y)
{
  /* weight [in, out / groups, kh, kw]: per group, col = W_g^T x_g is
   * [og * kh * kw, h * w], each entry scattered to its output pixel. */
  gint64 cg = g->in_channels / g->groups, og = g->out_channels / g->groups;
  gint64 kk = og * g->k[0] * g->k[1], hw = h * w;
  float *col = g_new (float, MAX (kk * hw, 1));
  nn_blas_prepare ();
  for (gint64 b = 0; b < n; b++) {
    const float *img = x + b * g->in_channels * hw;
    float *out = y + b * g->out_channels * ho * wo;
    for (gint64 gr = 0; gr < g->groups; gr++) {
      cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, (int) kk, (int) hw,
                   (int) cg, 1.0f, weight + gr * cg * kk, (int) kk,
                   img + gr * cg * hw, (int) hw, 0.0f, col, (int) hw);
      for (gint64 o = 0; o < og; o++)
        for (gint64 ki = 0; ki < g->k[0]; ki++)
          for (gint64 kj = 0; kj < g->k[1]; kj++) {
            const float *src = col + ((o * g->k[0] + ki) * g->k[1] + kj) * hw;
            float *plane = out + (gr * og + o) * ho * wo;
            for (gint64 i = 0; i < h; i++) {
              gint64 oi = i * g->s[0] - g->pad0[0] + ki * g->d[0];
              if (oi < 0 || oi >= ho)
                continue;
              for (gint64 j = 0; j < w; j++) {
                gint64 oj = j * g->s[1] - g->pad0[1] + kj * g->d[1];
                if (oj >= 0 && oj < wo)
                  plane[oi * wo + oj] += src[i * w + j];
              }
            }
          }
    }
    if (bias)
      for (gint64 o = 0; o < g->out_channels; o++)
        for (gint64 i = 0; i < ho * wo; i++)
          out[o * ho * wo + i] += bias[o];
  }
  g_free (col);
}
