/* recurrent plugin: the layer types it registers and the gate arithmetic
 * they share.  Private to the plugin. */
#ifndef NN_RECURRENT_H
#define NN_RECURRENT_H

#include <nnkit/plugin.h>

extern const NnLayerType nn_rnn_type;
extern const NnLayerType nn_lstm_type;
extern const NnLayerType nn_gru_type;
extern const NnLayerType nn_rnn_cell_type;
extern const NnLayerType nn_lstm_cell_type;
extern const NnLayerType nn_gru_cell_type;

typedef enum {
  NN_RNN_TANH,
  NN_RNN_RELU,
  NN_RNN_LSTM,
  NN_RNN_GRU,
} NnRnnMode;

/* Gates per hidden unit: 1, 4 (i, f, g, o) or 3 (r, z, n). */
guint nn_rnn_gates (NnRnnMode mode);

/* One layer direction's tensors (transfer none); b_ih, b_hh and w_hr
 * nullable. */
typedef struct {
  const float *w_ih, *w_hh, *b_ih, *b_hh, *w_hr;
} NnRnnWeights;

/* Runs one direction of one layer over @len steps of @batch rows:
 * @x [len, batch, in] contiguous, from state @h [batch, out] and (LSTM)
 * @c [batch, hidden], both updated in place, writing step t's h of row b
 * to @y + t * @y_t_stride + b * @y_b_stride (@y nullable: no per-step
 * output).  @reverse walks the steps backwards.  The input projection of
 * all steps is one sgemm.  The caller has checked nn_blas_ready(). */
void nn_rnn_run_direction (NnRnnMode mode, const NnRnnWeights *w,
                           const float *x, gint64 len, gint64 batch,
                           gint64 in, gint64 hidden, gint64 out, float *h,
                           float *c, float *y, gint64 y_t_stride,
                           gint64 y_b_stride, gboolean reverse);

/* The per-step hidden product of one layer direction (rnn_gemm.c):
 * W_hh [gate, out] (transfer none), packed transposed once when this CPU
 * runs the packed kernel (AVX2 and FMA), else used by OpenBLAS. */
typedef struct {
  const float *w_hh;
  float *wt;          /* (nullable) [out, gate] */
  gint64 gate, out;
} NnRnnHidden;

/* Whether this CPU (nn_cpu_info_get(), NN_CPU_DISABLE honoured) runs the
 * packed kernel. */
gboolean nn_rnn_hidden_packable (void);
void nn_rnn_hidden_init (NnRnnHidden *hd, const float *w_hh, gint64 gate,
                         gint64 out);
void nn_rnn_hidden_clear (NnRnnHidden *hd);
/* @c [rows, gate] = (@accumulate: @c +) @h [rows, out] W_hh^T.  Runs in
 * the calling thread. */
void nn_rnn_hidden_product (const NnRnnHidden *hd, gint64 rows,
                            const float *h, float *c, gboolean accumulate);

/* The config's nonlinearity (RNN, RNNCell): FALSE with PyTorch's error
 * for anything but 'tanh' and 'relu'. */
gboolean nn_rnn_read_nonlinearity (NnModule *self, NnRnnMode *mode,
                                   GError **error);

/* uniform(-1/sqrt(hidden_size), 1/sqrt(hidden_size)) on every own
 * tensor, as RNNBase and RNNCellBase reset_parameters. */
void nn_rnn_reset_parameters (NnModule *self, GRand *rng);

guint64 nn_rnn_count_macs (NnModule *self, const NnArgs *args,
                           const NnValue *out);

#endif
