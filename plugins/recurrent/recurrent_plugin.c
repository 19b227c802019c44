/* recurrent plugin: entry point.  Registers RNN, LSTM, GRU and their
 * cells. */
#include "recurrent.h"

static const NnLayerType *const recurrent_types[] = {
  &nn_rnn_type,
  &nn_lstm_type,
  &nn_gru_type,
  &nn_rnn_cell_type,
  &nn_lstm_cell_type,
  &nn_gru_cell_type,
};

static gboolean
recurrent_init (NnPlugin *plugin, GError **error)
{
  for (gsize i = 0; i < G_N_ELEMENTS (recurrent_types); i++)
    if (!nn_plugin_register_type (plugin, recurrent_types[i], error))
      return FALSE;
  return TRUE;
}

NN_PLUGIN_DEFINE ("recurrent", "0.1.0", "MIT",
                  "RNN, LSTM, GRU, RNNCell, LSTMCell and GRUCell",
                  recurrent_init)
