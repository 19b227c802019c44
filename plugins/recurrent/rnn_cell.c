/* RNNCell, LSTMCell and GRUCell: one step of the recurrence, as torch.nn
 * defines them, on [N, input_size] or unbatched [input_size] input;
 * LSTMCell returns (h', c'). */
#include "recurrent.h"
#include "nn-blas.h"
#include "../common/nn-layer-util.h"

static const char *const nonlinearities[] = { "tanh", "relu", NULL };

#define CELL_KEYS                                                          \
  { "input_size", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,        \
    "features of the input" },                                             \
  { "hidden_size", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,       \
    "features of the hidden state" },                                      \
  { "bias", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "true", 0, 0, NULL,          \
    "bias_ih and bias_hh" }

static const NnSchemaKey rnn_cell_schema[] = {
  CELL_KEYS,
  { "nonlinearity", NN_KIND_ENUM, 0, NN_KEY_OPTIONAL, "\"tanh\"", 0, 0,
    nonlinearities, "tanh or relu" },
};
static const NnSchemaKey cell_schema[] = { CELL_KEYS };

static const NnArgSpec cell_args[] = {
  { "input", NN_ARG_TENSOR, 0, 0, NULL, "[N, input_size] or [input_size]" },
  { "hx", NN_ARG_TENSOR | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "h [N, hidden_size]; None: zeros" },
};
static const NnArgSpec lstm_cell_args[] = {
  { "input", NN_ARG_TENSOR, 0, 0, NULL, "[N, input_size] or [input_size]" },
  { "hx", NN_ARG_SEQ | NN_ARG_NONE, 0, NN_ARG_OPTIONAL | NN_ARG_CHECK_ITEMS,
    "null", "(h, c), each [N, hidden_size]; None: zeros" },
};

typedef struct {
  NnRnnMode mode;
  gint64 in, hidden;
} Cell;

static gboolean
cell_setup (NnModule *self, NnRnnMode mode, GError **error)
{
  Cell *c = g_new0 (Cell, 1);
  nn_module_set_private (self, c);
  c->mode = mode;
  if (mode == NN_RNN_TANH && !nn_rnn_read_nonlinearity (self, &c->mode, error))
    return FALSE;
  c->in = nn_module_config_int (self, "input_size");
  c->hidden = nn_module_config_int (self, "hidden_size");
  gint64 gate = nn_rnn_gates (c->mode) * c->hidden;
  NnShape wih = { 2, { gate, c->in } }, whh = { 2, { gate, c->hidden } };
  NnShape b = { 1, { gate } };
  nn_module_add_parameter (self, "weight_ih", NN_DTYPE_F32, &wih);
  nn_module_add_parameter (self, "weight_hh", NN_DTYPE_F32, &whh);
  if (nn_module_config_bool (self, "bias")) {
    nn_module_add_parameter (self, "bias_ih", NN_DTYPE_F32, &b);
    nn_module_add_parameter (self, "bias_hh", NN_DTYPE_F32, &b);
  }
  return TRUE;
}

static gboolean rnn_cell_create (NnModule *self, GError **error) { return cell_setup (self, NN_RNN_TANH, error); }
static gboolean lstm_cell_create (NnModule *self, GError **error) { return cell_setup (self, NN_RNN_LSTM, error); }
static gboolean gru_cell_create (NnModule *self, GError **error) { return cell_setup (self, NN_RNN_GRU, error); }

static void
cell_destroy (NnModule *self)
{
  g_free (nn_module_get_private (self));
}

static const float *
param (NnModule *self, const char *name)
{
  NnTensor *t = nn_module_get_parameter (self, name);
  return t ? nn_tensor_f32 (t) : NULL;
}

/* Checks a state tensor against the input's batch, PyTorch's wording. */
static gboolean
check_state (NnTensor *t, guint ndim, gint64 n, gint64 hidden, int which,
             GError **error)
{
  if (t->shape.ndim != ndim) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "hidden%d: expected a %uD state like the input, found %uD",
                 which, ndim, t->shape.ndim);
    return FALSE;
  }
  gint64 tn = ndim == 2 ? t->shape.dims[0] : 1, th = t->shape.dims[ndim - 1];
  if (tn != n) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Input batch size %" G_GINT64_FORMAT " doesn't match hidden%d "
                 "batch size %" G_GINT64_FORMAT, n, which, tn);
    return FALSE;
  }
  if (th != hidden) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "hidden%d has inconsistent hidden_size: got %" G_GINT64_FORMAT
                 ", expected %" G_GINT64_FORMAT, which, th, hidden);
    return FALSE;
  }
  return TRUE;
}

static NnValue *
cell_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  const Cell *c = nn_module_get_private (self);
  NnTensor *input = nn_args_tensor (args, 0);
  const NnShape *s = &input->shape;
  if (s->ndim != 1 && s->ndim != 2) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "%s: Expected input to be 1-D or 2-D but received %u-D tensor",
                 nn_module_get_type_name (self), s->ndim);
    return NULL;
  }
  if (s->dims[s->ndim - 1] != c->in) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "input has inconsistent input_size: got %" G_GINT64_FORMAT
                 " expected %" G_GINT64_FORMAT, s->dims[s->ndim - 1], c->in);
    return NULL;
  }
  gint64 n = s->ndim == 2 ? s->dims[0] : 1;
  NnValue *hx = nn_args_get (args, 1);
  NnTensor *h0 = NULL, *c0 = NULL;
  if (!nn_value_is_none (hx)) {
    if (c->mode == NN_RNN_LSTM) {
      if (nn_value_n_items (hx) != 2
          || nn_value_kind (nn_value_item (hx, 0)) != NN_VALUE_TENSOR
          || nn_value_kind (nn_value_item (hx, 1)) != NN_VALUE_TENSOR) {
        g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                     "LSTMCell: expected hx to be a tuple (h, c) of two tensors");
        return NULL;
      }
      h0 = nn_value_get_tensor (nn_value_item (hx, 0));
      c0 = nn_value_get_tensor (nn_value_item (hx, 1));
    } else {
      h0 = nn_value_get_tensor (hx);
    }
    if (!check_state (h0, s->ndim, n, c->hidden, 0, error)
        || (c0 && !check_state (c0, s->ndim, n, c->hidden, 1, error)))
      return NULL;
  }
  NnShape hs = *s;
  hs.dims[hs.ndim - 1] = c->hidden;
  gboolean meta = nn_tensor_is_meta (input);
  if (!meta && !nn_blas_ready (error))
    return NULL;
  NnTensor *h = nn_lu_new_f32 (&hs, meta);
  NnTensor *cn = c->mode == NN_RNN_LSTM ? nn_lu_new_f32 (&hs, meta) : NULL;
  if (!h || (c->mode == NN_RNN_LSTM && !cn)) {
    g_clear_pointer (&h, nn_tensor_unref);
    g_clear_pointer (&cn, nn_tensor_unref);
    return nn_lu_result (NULL, error);
  }
  if (!meta) {
    if (h0)
      memcpy (nn_tensor_f32 (h), nn_tensor_f32 (h0), sizeof (float) * n * c->hidden);
    if (c0)
      memcpy (nn_tensor_f32 (cn), nn_tensor_f32 (c0), sizeof (float) * n * c->hidden);
    NnRnnWeights w = { param (self, "weight_ih"), param (self, "weight_hh"),
                       param (self, "bias_ih"), param (self, "bias_hh"), NULL };
    nn_rnn_run_direction (c->mode, &w, nn_tensor_f32 (input), 1, n, c->in,
                          c->hidden, c->hidden, nn_tensor_f32 (h),
                          cn ? nn_tensor_f32 (cn) : NULL, NULL, 0, 0, FALSE);
  }
  if (c->mode != NN_RNN_LSTM)
    return nn_value_take_tensor (h);
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (h));
  nn_value_append (res, nn_value_take_tensor (cn));
  return res;
}

static char *
cell_extra_repr (NnModule *self)
{
  const Cell *c = nn_module_get_private (self);
  GString *s = g_string_new (NULL);
  g_string_append_printf (s, "%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT, c->in,
                          c->hidden);
  if (!nn_module_config_bool (self, "bias"))
    g_string_append (s, ", bias=False");
  if (c->mode == NN_RNN_RELU)
    g_string_append (s, ", nonlinearity=relu");
  return g_string_free (s, FALSE);
}

#define CELL_TYPE(var_, name_, doc_, schema_, args_, create_)              \
  const NnLayerType var_ = {                                              \
    .struct_size = sizeof (NnLayerType), .name = name_, .doc = doc_,      \
    .schema = schema_, .n_schema = G_N_ELEMENTS (schema_),                \
    .args = args_, .n_args = G_N_ELEMENTS (args_),                        \
    .create = create_, .destroy = cell_destroy, .forward = cell_forward,  \
    .infer = cell_forward, .extra_repr = cell_extra_repr,                 \
    .reset_parameters = nn_rnn_reset_parameters,                          \
    .count_macs = nn_rnn_count_macs,                                      \
  }

CELL_TYPE (nn_rnn_cell_type, "RNNCell", "one Elman RNN step; returns h'",
           rnn_cell_schema, cell_args, rnn_cell_create);
CELL_TYPE (nn_lstm_cell_type, "LSTMCell", "one LSTM step; returns (h', c')",
           cell_schema, lstm_cell_args, lstm_cell_create);
CELL_TYPE (nn_gru_cell_type, "GRUCell", "one GRU step; returns h'",
           cell_schema, cell_args, gru_cell_create);
