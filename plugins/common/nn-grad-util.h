/* Backward helpers shared by several plugin families (each plugin is its
 * own shared object, so these are static inline).  Private to plugins. */
#ifndef NN_GRAD_UTIL_H
#define NN_GRAD_UTIL_H

#include <glib.h>
#include <math.h>

/* The input gradient of softmax (@log_form FALSE) or log_softmax (TRUE)
 * along a dim of length @len, over [@outer, @len, @inner] float32 data:
 * softmax: dx = y * (g - sum(g * y)); log_softmax: dx = g - exp(y) * sum(g),
 * as PyTorch's _softmax_backward_data and _log_softmax_backward_data.
 * @sign -1 negates dx (Softmin is softmax(-x)).  Sums in double. */
static inline void
nn_grad_softmax (const float *y, const float *g, float *dx, gint64 outer,
                 gint64 len, gint64 inner, gboolean log_form, float sign)
{
  for (gint64 o = 0; o < outer; o++)
    for (gint64 i = 0; i < inner; i++) {
      gint64 base = o * len * inner + i;
      double s = 0.0;
      for (gint64 k = 0; k < len; k++) {
        gint64 at = base + k * inner;
        s += log_form ? (double) g[at] : (double) g[at] * y[at];
      }
      for (gint64 k = 0; k < len; k++) {
        gint64 at = base + k * inner;
        double v = log_form ? g[at] - exp ((double) y[at]) * s
                            : y[at] * (g[at] - s);
        dx[at] = (float) (sign * v);
      }
    }
}

#endif
