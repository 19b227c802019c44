/* The recurrence of RNN, LSTM and GRU for one layer direction: all input
 * projections (and the biases) in one sgemm, then per step the hidden
 * projection (rnn_gemm.c, added onto the step's input part) and the
 * gates, as PyTorch's cells define them, 8 units at a time
 * (nn-vecmath.h). */
#include "recurrent.h"

#include <cblas.h>
#include "nn-blas.h"
#include "../common/nn-vecmath.h"

#include <string.h>

guint
nn_rnn_gates (NnRnnMode mode)
{
  return mode == NN_RNN_LSTM ? 4 : mode == NN_RNN_GRU ? 3 : 1;
}

/* The gates of @n (<= 8) units from j on, for one row: @g holds the
 * pre-activations (input and hidden products, biases but GRU's b_hn
 * added; gate k at k * @hidden), @gh GRU's hidden product (its n part
 * still without b_hn, which is @b_hn, nullable), @c LSTM's cell (in
 * place), @hp the row's previous h (GRU); the new h goes to @hb. */
__attribute__ ((always_inline)) static inline void
gates (NnRnnMode mode, const float *g, const float *gh, const float *b_hn,
       gint64 hidden, gint64 j, gint64 n, float *c, const float *hp,
       float *hb)
{
  switch (mode) {
  case NN_RNN_TANH:
    nn_v8_store (hb + j, nn_v8_tanh (nn_v8_load (g + j, n)), n);
    break;
  case NN_RNN_RELU: {
    NnV8f v = nn_v8_load (g + j, n);
    nn_v8_store (hb + j, nn_v8_select (v > NN_V8 (0.0f), v, NN_V8 (0.0f)), n);
    break;
  }
  case NN_RNN_LSTM: {
    NnV8f i = nn_v8_sigmoid (nn_v8_load (g + j, n));
    NnV8f f = nn_v8_sigmoid (nn_v8_load (g + hidden + j, n));
    NnV8f gg = nn_v8_tanh (nn_v8_load (g + 2 * hidden + j, n));
    NnV8f o = nn_v8_sigmoid (nn_v8_load (g + 3 * hidden + j, n));
    NnV8f cn = f * nn_v8_load (c + j, n) + i * gg;
    nn_v8_store (c + j, cn, n);
    nn_v8_store (hb + j, o * nn_v8_tanh (cn), n);
    break;
  }
  case NN_RNN_GRU: {
    NnV8f r = nn_v8_sigmoid (nn_v8_load (g + j, n) + nn_v8_load (gh + j, n));
    NnV8f z = nn_v8_sigmoid (nn_v8_load (g + hidden + j, n)
                             + nn_v8_load (gh + hidden + j, n));
    NnV8f hn = nn_v8_load (gh + 2 * hidden + j, n);
    if (b_hn)
      hn += nn_v8_load (b_hn + j, n);
    NnV8f nn = nn_v8_tanh (nn_v8_load (g + 2 * hidden + j, n) + r * hn);
    nn_v8_store (hb + j, (NN_V8 (1.0f) - z) * nn + z * nn_v8_load (hp + j, n), n);
    break;
  }
  }
}

/* One step's gates over every row: new h (LSTM: h_full) and c. */
typedef struct {
  NnRnnMode mode;
  const float *xt, *hp, *b_hn;
  gint64 batch, hidden, gate, out;
  float *c, *h, *hfull;
} StepGates;

__attribute__ ((always_inline)) static inline void
step_gates_body (const StepGates *s)
{
  for (gint64 b = 0; b < s->batch; b++) {
    float *hb = s->mode == NN_RNN_LSTM ? s->hfull + b * s->hidden : s->h + b * s->out;
    for (gint64 j = 0; j < s->hidden; j += 8)
      gates (s->mode, s->xt + b * s->gate, s->hp ? s->hp + b * s->gate : NULL,
             s->b_hn, s->hidden, j, MIN (8, s->hidden - j),
             s->c ? s->c + b * s->hidden : NULL, s->h + b * s->out, hb);
  }
}

#ifdef NN_VECMATH_AVX2
/* The same body on 8-float registers (picked as the packed product is). */
__attribute__ ((target ("avx2,fma"))) static void
step_gates_avx2 (const StepGates *s)
{
  step_gates_body (s);
}
#endif

static void
step_gates (const StepGates *s)
{
#ifdef NN_VECMATH_AVX2
  if (nn_rnn_hidden_packable ()) {
    step_gates_avx2 (s);
    return;
  }
#endif
  step_gates_body (s);
}

void
nn_rnn_run_direction (NnRnnMode mode, const NnRnnWeights *w, const float *x,
                      gint64 len, gint64 batch, gint64 in, gint64 hidden,
                      gint64 out, float *h, float *c, float *y,
                      gint64 y_t_stride, gint64 y_b_stride, gboolean reverse)
{
  gint64 gate = nn_rnn_gates (mode) * hidden;
  gboolean gru = mode == NN_RNN_GRU;
  float *xp = g_new (float, MAX (len * batch * gate, 1));
  float *hp = gru ? g_new (float, MAX (batch * gate, 1)) : NULL;
  float *hfull = g_new (float, MAX (batch * hidden, 1));
  float *bias = g_new0 (float, MAX (gate, 1));
  /* xp[t * batch + b] = x[t, b] W_ih^T + b_ih + b_hh, every step at once;
   * GRU keeps b_hn apart (r multiplies it). */
  nn_blas_prepare_work (len * batch * gate * in);
  if (len * batch > 0)
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) (len * batch),
                 (int) gate, (int) in, 1.0f, x, (int) in, w->w_ih, (int) in,
                 0.0f, xp, (int) gate);
  for (gint64 j = 0; j < gate; j++)
    bias[j] = (w->b_ih ? w->b_ih[j] : 0.0f)
              + (w->b_hh && (!gru || j < 2 * hidden) ? w->b_hh[j] : 0.0f);
  for (gint64 r = 0; r < len * batch; r++)
    for (gint64 j = 0; j < gate; j++)
      xp[r * gate + j] += bias[j];
  const float *b_hn = gru && w->b_hh ? w->b_hh + 2 * hidden : NULL;
  NnRnnHidden hd;
  nn_rnn_hidden_init (&hd, w->w_hh, gate, out);
  /* The steps' products are small: often one thread (the grain rule). */
  nn_blas_prepare_work (batch * gate * out);
  for (gint64 s = 0; s < len; s++) {
    gint64 t = reverse ? len - 1 - s : s;
    float *xt = xp + t * batch * gate;
    /* h W_hh^T added onto the step's input part (beta 1), except GRU's,
     * whose n gate needs it apart. */
    nn_rnn_hidden_product (&hd, batch, h, gru ? hp : xt, !gru);
    StepGates sg = { mode, xt, hp, b_hn, batch, hidden, gate, out, c, h, hfull };
    step_gates (&sg);
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
  nn_rnn_hidden_clear (&hd);
  g_free (xp);
  g_free (hp);
  g_free (hfull);
  g_free (bias);
}
