/* The recurrence of RNN, LSTM and GRU for one layer direction: all input
 * projections in one sgemm, then per step the hidden projection (sgemm)
 * and the gates, as PyTorch's cells define them. */
#include "recurrent.h"

#include <cblas.h>
#include "nn-blas.h"
#include <math.h>
#include <string.h>

guint
nn_rnn_gates (NnRnnMode mode)
{
  return mode == NN_RNN_LSTM ? 4 : mode == NN_RNN_GRU ? 3 : 1;
}

static inline float
sigmoid (float v)
{
  return 1.0f / (1.0f + expf (-v));
}

void
nn_rnn_run_direction (NnRnnMode mode, const NnRnnWeights *w, const float *x,
                      gint64 len, gint64 batch, gint64 in, gint64 hidden,
                      gint64 out, float *h, float *c, float *y,
                      gint64 y_t_stride, gint64 y_b_stride, gboolean reverse)
{
  gint64 gate = nn_rnn_gates (mode) * hidden;
  float *xp = g_new (float, MAX (len * batch * gate, 1));
  float *hp = g_new (float, MAX (batch * gate, 1));
  float *hfull = g_new (float, MAX (batch * hidden, 1));
  /* xp[t * batch + b] = x[t, b] W_ih^T (+ b_ih), every step at once. */
  nn_blas_prepare_work (len * batch * gate * in);
  if (len * batch > 0)
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) (len * batch),
                 (int) gate, (int) in, 1.0f, x, (int) in, w->w_ih, (int) in,
                 0.0f, xp, (int) gate);
  if (w->b_ih)
    for (gint64 r = 0; r < len * batch; r++)
      for (gint64 j = 0; j < gate; j++)
        xp[r * gate + j] += w->b_ih[j];
  /* The steps' products are small: often one thread (the grain rule). */
  nn_blas_prepare_work (batch * gate * out);
  for (gint64 s = 0; s < len; s++) {
    gint64 t = reverse ? len - 1 - s : s;
    const float *xt = xp + t * batch * gate;
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) batch,
                 (int) gate, (int) out, 1.0f, h, (int) out, w->w_hh, (int) out,
                 0.0f, hp, (int) gate);
    if (w->b_hh)
      for (gint64 b = 0; b < batch; b++)
        for (gint64 j = 0; j < gate; j++)
          hp[b * gate + j] += w->b_hh[j];
    for (gint64 b = 0; b < batch; b++) {
      const float *gx = xt + b * gate, *gh = hp + b * gate;
      float *hb = mode == NN_RNN_LSTM ? hfull + b * hidden : h + b * out;
      for (gint64 j = 0; j < hidden; j++) {
        switch (mode) {
        case NN_RNN_TANH:
          hb[j] = tanhf (gx[j] + gh[j]);
          break;
        case NN_RNN_RELU:
          hb[j] = fmaxf (gx[j] + gh[j], 0.0f);
          break;
        case NN_RNN_LSTM: {
          float ig = sigmoid (gx[j] + gh[j]);
          float fg = sigmoid (gx[hidden + j] + gh[hidden + j]);
          float gg = tanhf (gx[2 * hidden + j] + gh[2 * hidden + j]);
          float og = sigmoid (gx[3 * hidden + j] + gh[3 * hidden + j]);
          float cn = fg * c[b * hidden + j] + ig * gg;
          c[b * hidden + j] = cn;
          hb[j] = og * tanhf (cn);
          break;
        }
        case NN_RNN_GRU: {
          float r = sigmoid (gx[j] + gh[j]);
          float z = sigmoid (gx[hidden + j] + gh[hidden + j]);
          float n = tanhf (gx[2 * hidden + j] + r * gh[2 * hidden + j]);
          hb[j] = (1.0f - z) * n + z * hb[j];
          break;
        }
        }
      }
    }
    if (mode == NN_RNN_LSTM) {
      if (w->w_hr)
        /* h = h_full W_hr^T: the projection of LSTM's proj_size. */
        cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) batch,
                     (int) out, (int) hidden, 1.0f, hfull, (int) hidden,
                     w->w_hr, (int) hidden, 0.0f, h, (int) out);
      else
        memcpy (h, hfull, sizeof (float) * batch * hidden);
    }
    if (y)
      for (gint64 b = 0; b < batch; b++)
        memcpy (y + t * y_t_stride + b * y_b_stride, h + b * out,
                sizeof (float) * out);
  }
  g_free (xp);
  g_free (hp);
  g_free (hfull);
}
