/* Normalisation statistics, accumulated in double so that long rows keep
 * float32 accuracy (PyTorch accumulates float32 input in a wider type
 * too). */
#include "norm_stats.h"

#include <math.h>

void
nn_norm_moments (const float *x, gint64 count, double *mean, double *var)
{
  double sum = 0.0;
  for (gint64 i = 0; i < count; i++)
    sum += x[i];
  double m = count > 0 ? sum / (double) count : 0.0, sq = 0.0;
  for (gint64 i = 0; i < count; i++)
    sq += (x[i] - m) * (x[i] - m);
  *mean = m;
  *var = count > 0 ? sq / (double) count : 0.0;
}

void
nn_norm_channel_moments (const float *x, gint64 n, gint64 c, gint64 hw,
                         double *mean, double *var)
{
  for (gint64 ch = 0; ch < c; ch++) {
    double sum = 0.0;
    for (gint64 b = 0; b < n; b++) {
      const float *p = x + (b * c + ch) * hw;
      for (gint64 i = 0; i < hw; i++)
        sum += p[i];
    }
    double m = sum / (double) (n * hw), sq = 0.0;
    for (gint64 b = 0; b < n; b++) {
      const float *p = x + (b * c + ch) * hw;
      for (gint64 i = 0; i < hw; i++)
        sq += (p[i] - m) * (p[i] - m);
    }
    mean[ch] = m;
    var[ch] = sq / (double) (n * hw);
  }
}

void
nn_norm_apply (const float *x, float *y, gint64 n, gint64 c, gint64 hw,
               const double *mean, const double *var, gboolean per_sample,
               const float *w, const float *bias, double eps)
{
  for (gint64 b = 0; b < n; b++)
    for (gint64 ch = 0; ch < c; ch++) {
      gint64 k = per_sample ? b * c + ch : ch;
      /* Folded into one multiply-add per element. */
      double s = 1.0 / sqrt (var[k] + eps);
      if (w)
        s *= w[ch];
      const float sc = (float) s;
      const float sh = (float) ((bias ? bias[ch] : 0.0) - mean[k] * s);
      const float *restrict src = x + (b * c + ch) * hw;
      float *restrict dst = y + (b * c + ch) * hw;
      for (gint64 i = 0; i < hw; i++)
        dst[i] = src[i] * sc + sh;
    }
}
