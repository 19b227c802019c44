/* nnkit core: the pointwise activations a fused epilogue applies
 * (NnActKind), with the activation types' own formulas, so a fused and an
 * unfused plan agree to rounding.  Knows no type. */
#include "nn-private.h"

#include <math.h>

static inline float
clampf (float v, float lo, float hi)
{
  /* NaN passes through, as PyTorch's clamp. */
  return v < lo ? lo : (v > hi ? hi : v);
}

void
nn_fuse_apply_act (float *y, gsize n, NnActKind act, float alpha, float beta)
{
  const float k = (float) (M_2_SQRTPI * M_SQRT1_2); /* sqrt(2 / pi) */

  switch (act) {
  case NN_ACT_RELU:
    for (gsize i = 0; i < n; i++)
      y[i] = y[i] < 0.0f ? alpha * y[i] : y[i];
    break;
  case NN_ACT_CLIP:
    for (gsize i = 0; i < n; i++)
      y[i] = clampf (y[i], alpha, beta);
    break;
  case NN_ACT_SILU:
    for (gsize i = 0; i < n; i++)
      y[i] = y[i] / (1.0f + expf (-y[i]));
    break;
  case NN_ACT_HARDSWISH:
    for (gsize i = 0; i < n; i++)
      y[i] = y[i] * clampf (y[i] + 3.0f, 0.0f, 6.0f) / 6.0f;
    break;
  case NN_ACT_GELU_ERF:
    for (gsize i = 0; i < n; i++)
      y[i] = y[i] * 0.5f * (1.0f + erff (y[i] * (float) M_SQRT1_2));
    break;
  case NN_ACT_GELU_TANH:
    for (gsize i = 0; i < n; i++) {
      float v = y[i];
      y[i] = 0.5f * v * (1.0f + tanhf (k * (v + 0.044715f * v * v * v)));
    }
    break;
  case NN_ACT_SIGMOID:
    for (gsize i = 0; i < n; i++)
      y[i] = 1.0f / (1.0f + expf (-y[i]));
    break;
  case NN_ACT_TANH:
    for (gsize i = 0; i < n; i++)
      y[i] = tanhf (y[i]);
    break;
  case NN_ACT_NONE:
  case NN_ACT_N_KINDS:
    break;
  }
}
