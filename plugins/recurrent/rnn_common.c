/* Configuration, initialisation and cost shared by the recurrent types. */
#include "recurrent.h"
#include "../common/nn-layer-util.h"

gboolean
nn_rnn_read_nonlinearity (NnModule *self, NnRnnMode *mode, GError **error)
{
  const char *s = nn_module_config_string (self, "nonlinearity");
  if (g_strcmp0 (s, "tanh") == 0)
    *mode = NN_RNN_TANH;
  else if (g_strcmp0 (s, "relu") == 0)
    *mode = NN_RNN_RELU;
  else {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_OUT_OF_RANGE,
                 "Unknown nonlinearity '%s'", s ? s : "");
    return FALSE;
  }
  return TRUE;
}

void
nn_rnn_reset_parameters (NnModule *self, GRand *rng)
{
  double stdv = 1.0 / sqrt ((double) nn_module_config_int (self, "hidden_size"));
  for (guint i = 0; i < nn_module_n_parameters (self); i++) {
    const char *name = NULL;
    nn_module_parameter_at (self, i, &name);
    nn_module_init_uniform (self, name, stdv, rng);
  }
}

guint64
nn_rnn_count_macs (NnModule *self, const NnArgs *args, const NnValue *out)
{
  return nn_lu_count_macs_params (self, out, FALSE);
}
